//! The scheduled sweep (docs/diagnosis.md, "Detection and exactly-once"): find failed exports nobody told us about, publish each once.
//!
//! Per table, ListExports (newest first) is read only down to the table's high-water mark: the
//! newest export such that it and every older one were terminal (and, if FAILED, published)
//! when seen. A steady sweep therefore costs one ListExports call per table, and work grows
//! with new exports, not with the 90 days of history. Exports seen IN_PROGRESS stay above the
//! mark and are listed again until they end.
//!
//! Calls: every mark and the cursor in one BatchGetItem; per table, its pages and, when it has
//! exports that are not COMPLETED, one BatchGetItem of what the ledger holds about them; the
//! events in PutEvents batches; the ledger writes of a group of tables in BatchWriteItem
//! batches, after the group's events. A failure dated by its id is not described here: the
//! remediation its event triggers describes it.

use super::report::SweepReport;
use super::App;
use crate::arn::partition_of;
use crate::error::Error;
use crate::intake::FAILED_DETAIL_TYPE;
use crate::model::{
    export_started_ms, ExportDescription, ExportRequest, ExportStatus, ExportSummary,
};
use crate::ports::{Ledger, OutboundEvent, SweepMarks, SweepState, SweepWrite};
use futures_util::future::join_all;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

pub const EVENT_SOURCE: &str = "ddb-export-remediator";
/// Stop starting new tables when less than this is left before the function's deadline.
pub(super) const SAFETY_MARGIN: Duration = Duration::from_secs(15);
/// Tables swept concurrently.
const TABLES_AT_ONCE: usize = 4;
/// How long an export may have run before it failed, for the look-back: a failure whose id says
/// it started more than look-back + this ago is old without a DescribeExport. (An export that ran
/// longer and failed inside the look-back is the one case this misses.)
const LONGEST_RUN_SECS: i64 = 24 * 3600;

/// How a FAILED export's age compares with the look-back window (docs/diagnosis.md, "Detection and exactly-once").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Inside the window: publish it.
    Recent,
    /// Ended (or, without an end time, started) before the window: count it, never publish it.
    Old,
}

/// The age from the export id alone: `Some(Old)` when it started too long ago to have failed
/// inside the window, `None` when only DescribeExport can tell.
pub fn age_from_id(export_arn: &str, now: i64, lookback_secs: i64) -> Option<Age> {
    let started = export_started_ms(export_arn)? / 1000;
    if started < now - lookback_secs - LONGEST_RUN_SECS {
        Some(Age::Old)
    } else if started >= now - lookback_secs {
        Some(Age::Recent)
    } else {
        None
    }
}

/// The age from DescribeExport: its end time, else its start time, else the id's stamp.
pub fn age_from_description(d: &ExportDescription, now: i64, lookback_secs: i64) -> Age {
    let when = d
        .end_time
        .or(d.start_time)
        .map(|t| t as i64)
        .or_else(|| export_started_ms(&d.export_arn).map(|ms| ms / 1000));
    match when {
        Some(t) if t < now - lookback_secs => Age::Old,
        _ => Age::Recent,
    }
}

pub async fn sweep(
    app: &App,
    ledger: &dyn Ledger,
    deadline: Option<Instant>,
    now: i64,
) -> Result<SweepReport, Error> {
    let mut report = SweepReport::default();
    let (account, _) = app.identity.whoami().await?;
    let mut names = app.exports.table_names().await?;
    names.sort();
    let partition = partition_of(&app.region);
    let arns: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                "arn:{partition}:dynamodb:{}:{account}:table/{n}",
                app.region
            )
        })
        // The ledger's own table is not swept: one ListExports call fewer on every sweep, and
        // a failed export of the function's own state is not one to remediate.
        .filter(|arn| {
            app.config
                .ledger_table_name
                .as_deref()
                .is_none_or(|l| !is_table(arn, l))
        })
        .collect();
    // Every mark and the cursor in one read.
    let SweepMarks {
        marks,
        cursor,
        following,
    } = ledger.sweep_marks(&arns).await?;
    // The retries this function started, followed to their outcome (the in-flight poller),
    // only while the ledger counts one: a run with none in flight reads nothing more.
    if following > 0 {
        let mut org = super::report::OrgSweepReport::default();
        super::org_sweep::poll_in_flight(app, ledger, now, &mut report, &mut org).await?;
    }
    let start = cursor
        .as_deref()
        .and_then(|c| arns.iter().position(|a| a.as_str() >= c))
        .unwrap_or(0);
    report.resumed_from = cursor.clone();
    // A few tables at a time: each table's pages are sequential (NextToken), tables are not.
    // The cursor names the first table of a group, so a resumed sweep redoes at most a group.
    let groups: Vec<&[String]> = arns[start..].chunks(TABLES_AT_ONCE).collect();
    for (i, group) in groups.iter().enumerate() {
        // tokio's clock: the real one in the function, a paused one in tests.
        let left = |d: Instant| {
            tokio::time::Instant::from_std(d).saturating_duration_since(tokio::time::Instant::now())
        };
        if deadline.is_some_and(|d| left(d) < SAFETY_MARGIN) {
            ledger
                .sweep_writes(&[SweepWrite::Cursor(Some(group[0].clone()))], now)
                .await?;
            report.stopped_at = Some(group[0].clone());
            return Ok(report);
        }
        let last = i + 1 == groups.len();
        let finish = (last && cursor.is_some()).then_some(SweepWrite::Cursor(None));
        sweep_group(app, ledger, group, &marks, now, finish, &mut report).await?;
    }
    if groups.is_empty() && cursor.is_some() {
        ledger
            .sweep_writes(&[SweepWrite::Cursor(None)], now)
            .await?;
    }
    Ok(report)
}

/// Open incidents the sweep takes over per run (each is a whole remediation).
const TAKEOVERS_MAX: usize = 25;

/// The ledger's open incidents whose claim expired (its delivery died or timed out), that were
/// given back PENDING, or that were listed but never claimed: each is handled again here, with
/// the sweep's own owner token. The claim decides: if a delivery got there first, the takeover
/// reports "already handled" and changes nothing. Runs in apply mode only (only apply claims).
pub(super) async fn take_over_expired(
    app: &App,
    ledger: &dyn Ledger,
    deadline: Option<Instant>,
    owner: &str,
    report: &mut SweepReport,
) -> Result<(), Error> {
    if app.config.mode != crate::model::Mode::Apply {
        return Ok(());
    }
    let due = ledger
        .open_incidents_due(app.clock.now(), TAKEOVERS_MAX)
        .await?;
    let left = |d: Instant| {
        tokio::time::Instant::from_std(d).saturating_duration_since(tokio::time::Instant::now())
    };
    for arn in due {
        if deadline.is_some_and(|d| left(d) < SAFETY_MARGIN) {
            // The next sweep finds it again: it stays open and due.
            break;
        }
        let mut incident = crate::model::Incident::new(crate::model::IncidentSource::Sweep);
        incident.place =
            crate::arn::Arn::parse("exportArn", &arn)
                .ok()
                .map(|a| crate::model::Place {
                    account: a.account,
                    region: a.region,
                });
        incident.export_arn = Some(arn.clone());
        incident.owner = Some(owner.to_string());
        match Box::pin(app.remediate_where(incident)).await {
            Ok(_) => report.taken_over.push(arn),
            Err(e) => {
                tracing::warn!(export_arn = %arn, error.type = e.error_type(), transient = e.is_transient(), "takeover of an open incident failed");
                report
                    .errors
                    .push(format!("takeover of {arn}: {}", e.public_message()));
                // One that will fail the same way every time (the export is gone, the event was
                // invalid) is not handled again; a transient failure stays open for the next run.
                if !e.is_transient() {
                    ledger.unlist_open(&arn).await?;
                }
            }
        }
    }
    Ok(())
}

/// Sweeps a group of tables concurrently, then sends their ledger writes together, after the
/// group's events: batches of 25 instead of one call each. `finish` is added when every table
/// of the group was swept. The writes of the tables that finished go out even if another
/// failed; its error is returned after.
async fn sweep_group(
    app: &App,
    ledger: &dyn Ledger,
    group: &[String],
    marks: &HashMap<String, String>,
    now: i64,
    finish: Option<SweepWrite>,
    report: &mut SweepReport,
) -> Result<(), Error> {
    let parts = join_all(
        group
            .iter()
            .map(|table_arn| sweep_table(app, ledger, table_arn, marks.get(table_arn), now)),
    )
    .await;
    let mut writes = Vec::new();
    let mut failed = None;
    for part in parts {
        match part {
            Ok((part, w)) => {
                report.absorb(part);
                report.tables += 1;
                writes.extend(w);
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if failed.is_none() {
        writes.extend(finish);
    }
    if !writes.is_empty() {
        ledger.sweep_writes(&writes, now).await?;
    }
    failed.map_or(Ok(()), Err)
}

/// One site's tables, each down to its high-water mark: the organization sweep's shard (no
/// cursor: a shard is small, and an unfinished one is swept again in its next slot).
pub(super) async fn sweep_site(
    app: &App,
    ledger: &dyn Ledger,
    now: i64,
) -> Result<SweepReport, Error> {
    let mut report = SweepReport::default();
    let (account, _) = app.identity.whoami().await?;
    let partition = partition_of(&app.region);
    let mut arns: Vec<String> = app
        .exports
        .table_names()
        .await?
        .iter()
        .map(|n| {
            format!(
                "arn:{partition}:dynamodb:{}:{account}:table/{n}",
                app.region
            )
        })
        .collect();
    arns.sort();
    let SweepMarks { marks, .. } = ledger.sweep_marks(&arns).await?;
    for group in arns.chunks(TABLES_AT_ONCE) {
        sweep_group(app, ledger, group, &marks, now, None, &mut report).await?;
    }
    Ok(report)
}

/// Whether `table_arn` is the table `name_or_arn` names (a table name or ARN, as
/// LEDGER_TABLE_NAME may be).
fn is_table(table_arn: &str, name_or_arn: &str) -> bool {
    table_arn == name_or_arn
        || table_arn
            .rsplit_once(":table/")
            .is_some_and(|(_, name)| name == name_or_arn)
}

/// One table: its exports down to the mark, its new failures published. Returns the table's
/// ledger writes (states, the new mark) for the caller to send in batches.
async fn sweep_table(
    app: &App,
    ledger: &dyn Ledger,
    table_arn: &str,
    mark: Option<&String>,
    now: i64,
) -> Result<(SweepReport, Vec<SweepWrite>), Error> {
    let mut report = SweepReport::default();
    let mut writes = Vec::new();
    let mut listed: Vec<ExportSummary> = Vec::new();
    let mut token = None;
    loop {
        let page = app.exports.list_exports(Some(table_arn), token).await?;
        report.list_calls += 1;
        report.exports_listed += page.exports.len();
        let mut reached_mark = false;
        for e in page.exports {
            if mark.is_some_and(|m| e.export_arn.as_str() <= m.as_str()) {
                reached_mark = true;
                break;
            }
            listed.push(e);
        }
        token = page.next_token;
        if reached_mark || token.is_none() {
            break;
        }
    }
    if listed.is_empty() {
        return Ok((report, writes));
    }

    let open: Vec<String> = listed
        .iter()
        .filter(|e| e.status != ExportStatus::Completed)
        .map(|e| e.export_arn.clone())
        .collect();
    let records = if open.is_empty() {
        Default::default()
    } else {
        report.ledger_reads += 1;
        ledger.sweep_records(&open).await?
    };
    let state = |arn: &str| records.get(arn).and_then(|r| r.state);
    // Settled: published, or found too old before; neither is published again.
    let mut settled: HashSet<String> = open
        .iter()
        .filter(|a| matches!(state(a), Some(SweepState::Published | SweepState::TooOld)))
        .cloned()
        .collect();
    let lookback = i64::from(app.config.sweep_lookback_hours) * 3600;
    for e in listed
        .iter()
        .filter(|e| e.status == ExportStatus::InProgress)
    {
        if state(&e.export_arn).is_none() {
            writes.push(SweepWrite::State {
                export_arn: e.export_arn.clone(),
                state: SweepState::InProgress,
            });
        }
    }

    // Each new failure is described once: by the remediation its event triggers, which reads
    // DescribeExport anyway. The sweep describes only a failure whose id cannot tell whether it
    // is inside the look-back.
    let unsettled: Vec<&ExportSummary> = listed
        .iter()
        .filter(|e| e.status == ExportStatus::Failed && !settled.contains(&e.export_arn))
        .collect();
    let mut events = Vec::new();
    let mut undated: Vec<&ExportSummary> = Vec::new();
    for e in unsettled {
        // Its incident is in the ledger: a delivery got there (EventBridge's event, or an
        // earlier sweep's whose PUBLISHED record was lost). Not published again: an open one
        // is listed for the takeover above, a settled one is done. Read in the same
        // BatchGetItem as its sweep state, so this costs no extra call on a steady sweep.
        if records.get(&e.export_arn).is_some_and(|r| r.handled) {
            report.already_handled += 1;
            settled.insert(e.export_arn.clone());
            continue;
        }
        match age_from_id(&e.export_arn, now, lookback) {
            // Old by its id: nothing to record (the mark moves past it).
            Some(Age::Old) => {
                report.older_than_lookback += 1;
                settled.insert(e.export_arn.clone());
            }
            Some(Age::Recent) => {
                let start = records.get(&e.export_arn).and_then(|r| r.start.as_ref());
                let request = start.and_then(|s| s.request.as_ref());
                events.push(failed_event(&e.export_arn, table_arn, request, None));
            }
            None => undated.push(e),
        }
    }
    let described = join_all(
        undated
            .iter()
            .map(|e| app.exports.describe_export(&e.export_arn)),
    )
    .await;
    report.describe_calls += described.len();
    for (e, d) in undated.iter().zip(described) {
        match d {
            Ok(Some(d)) if age_from_description(&d, now, lookback) == Age::Old => {
                // Recorded, so that the next sweep does not describe it again.
                writes.push(SweepWrite::State {
                    export_arn: e.export_arn.clone(),
                    state: SweepState::TooOld,
                });
                report.older_than_lookback += 1;
                settled.insert(e.export_arn.clone());
            }
            Ok(Some(d)) => events.push(failed_event(
                &e.export_arn,
                &d.request.table_arn,
                Some(&d.request),
                Some(&d),
            )),
            Ok(None) => report
                .errors
                .push(format!("{}: DescribeExport found nothing", e.export_arn)),
            Err(err) => report.errors.push(err.reason()),
        }
    }
    if !events.is_empty() {
        let accepted = app.events.publish(&events).await?;
        for (event, ok) in events.iter().zip(accepted) {
            let arn = event.resources[0].clone();
            if ok {
                writes.push(SweepWrite::State {
                    export_arn: arn.clone(),
                    state: SweepState::Published,
                });
                settled.insert(arn.clone());
                report.published.push(arn);
            } else {
                report
                    .errors
                    .push(format!("{arn}: PutEvents did not accept the event"));
            }
        }
    }

    // The new mark: walk from the oldest listed export up while each one is settled.
    let new_mark = listed
        .iter()
        .rev()
        .take_while(|e| match e.status {
            ExportStatus::Completed => true,
            ExportStatus::Failed => settled.contains(&e.export_arn),
            ExportStatus::InProgress => false,
        })
        .last();
    if let Some(m) = new_mark {
        writes.push(SweepWrite::Mark {
            table_arn: table_arn.to_string(),
            export_arn: m.export_arn.clone(),
        });
    }
    Ok((report, writes))
}

/// The sweep's `DynamoDB Export Failed` event (intake: `parse_failed_event`). The destination,
/// when known (from DescribeExport, or the ledger's START record of the export's CloudTrail
/// start event), lets the diagnosing invocation read the bucket beside its own DescribeExport
/// (`Incident::announced`); the failure code and message only DescribeExport tells.
fn failed_event(
    export_arn: &str,
    table_arn: &str,
    request: Option<&ExportRequest>,
    described: Option<&ExportDescription>,
) -> OutboundEvent {
    let mut detail = Map::new();
    detail.insert("exportArn".into(), json!(export_arn));
    detail.insert("tableArn".into(), json!(table_arn));
    if let Some(d) = described {
        detail.insert("failureCode".into(), json!(d.failure_code));
        detail.insert("failureMessage".into(), json!(d.failure_message));
    }
    if let Some(r) = request {
        detail.insert("s3Bucket".into(), json!(r.s3_bucket));
        detail.insert("s3BucketOwner".into(), json!(r.s3_bucket_owner));
        detail.insert("s3SseAlgorithm".into(), json!(r.s3_sse_algorithm));
        detail.insert("s3SseKmsKeyId".into(), json!(r.s3_sse_kms_key_id));
    }
    OutboundEvent {
        source: EVENT_SOURCE.into(),
        detail_type: FAILED_DETAIL_TYPE.into(),
        detail: Value::Object(detail),
        resources: vec![export_arn.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::*;
    use crate::intake::{self, Trigger};
    use crate::model::Incident;
    use crate::ports::{Clock, StartRecord};

    fn now() -> i64 {
        crate::aws::SystemClock.now()
    }

    fn ledger_config() -> crate::config::Config {
        crate::config::Config {
            ledger_table_name: Some("ledger".into()),
            ..Default::default()
        }
    }

    /// A FAILED export of `table_arn` that started `secs_ago` and ran a minute, `n` making its
    /// id unique.
    fn add_failure(world: &Shared, table_arn: &str, secs_ago: i64, n: u32) -> String {
        add_failure_ended(world, table_arn, secs_ago, secs_ago - 60, n)
    }

    fn add_failure_ended(
        world: &Shared,
        table_arn: &str,
        secs_ago: i64,
        ended_secs_ago: i64,
        n: u32,
    ) -> String {
        let mut e = failed_export(request("amzn-s3-demo-bucket"), "S3AccessDenied", "x");
        e.request.table_arn = table_arn.into();
        e.export_arn = format!(
            "{table_arn}/export/{:014}-{n:08x}",
            (now() - secs_ago) * 1000
        );
        e.start_time = Some((now() - secs_ago) as f64);
        e.end_time = Some((now() - ended_secs_ago) as f64);
        world.write().unwrap().exports.push(e.clone());
        e.export_arn
    }

    fn add_table(world: &Shared, name: &str) -> String {
        let arn = format!("arn:aws:dynamodb:us-east-1:{TABLE_ACCOUNT}:table/{name}");
        let mut w = world.write().unwrap();
        let mut table = w.tables["orders"].clone();
        table.0.arn = arn.clone();
        w.tables.insert(name.into(), table);
        arn
    }

    /// The sweep's event as the failure-event rule delivers it, through the intake.
    fn delivered(event: &OutboundEvent) -> Incident {
        let envelope = json!({"detail-type": event.detail_type, "source": event.source,
                              "detail": event.detail});
        match intake::parse(&envelope).unwrap() {
            Trigger::Incident(i) => i,
            _ => panic!("not an incident: {envelope}"),
        }
    }

    async fn sweep_now(app: &App) -> Result<SweepReport, Error> {
        sweep(app, app.ledger.as_deref().unwrap(), None, now()).await
    }

    #[tokio::test]
    async fn a_failure_dated_by_its_id_is_published_undescribed_with_the_destination_its_start_recorded(
    ) {
        // GIVEN two failures an hour old, one whose start the CloudTrail watch recorded, and one
        // that started 25 h ago and failed an hour ago (its id cannot tell whether it failed
        // inside the 24 h look-back)
        let world = world_with_table();
        let watched = add_failure(&world, TABLE_ARN, 3600, 1);
        let unwatched = add_failure(&world, TABLE_ARN, 3500, 2);
        let undated = add_failure_ended(&world, TABLE_ARN, 25 * 3600, 3600, 3);
        let mut started = request("recorded-bucket");
        started.s3_bucket_owner = Some(DATA_ACCOUNT.into());
        world.write().unwrap().starts.insert(
            watched.clone(),
            StartRecord {
                caller: Some("arn:aws:iam::111122223333:role/Exporter".into()),
                request: Some(started),
            },
        );
        let app = app(&world, ledger_config());
        // WHEN the sweep runs
        let report = sweep_now(&app).await.unwrap();
        // THEN all three are published; only the undated one was described
        assert_eq!(report.published.len(), 3, "{report:?}");
        assert_eq!(report.describe_calls, 1);
        let events = world.read().unwrap().published.clone();
        let by_arn = |arn: &str| {
            let e = events
                .iter()
                .find(|e| e.resources == [arn.to_string()])
                .unwrap();
            (e.detail.clone(), delivered(e))
        };
        // AND each event is a valid `DynamoDB Export Failed` event for the intake: the watched
        // one names the recorded destination, the unwatched one only the export
        let (detail, incident) = by_arn(&watched);
        let announced = incident.announced.unwrap();
        assert_eq!(
            (
                announced.s3_bucket.as_str(),
                announced.s3_bucket_owner.as_deref()
            ),
            ("recorded-bucket", Some(DATA_ACCOUNT))
        );
        assert!(detail.get("failureCode").is_none(), "{detail}");
        let (detail, incident) = by_arn(&unwatched);
        assert!(incident.announced.is_none(), "{detail}");
        assert_eq!(incident.table_arn.as_deref(), Some(TABLE_ARN));
        // AND the described one carries what DescribeExport said
        let (detail, incident) = by_arn(&undated);
        assert_eq!(detail["failureCode"], "S3AccessDenied");
        assert_eq!(incident.announced.unwrap().s3_bucket, "amzn-s3-demo-bucket");
    }

    #[tokio::test]
    async fn a_sweep_that_dies_before_its_ledger_writes_publishes_again_once_then_never() {
        // GIVEN three new failures, and a ledger that refuses the sweep's writes
        let world = world_with_table();
        let failures: Vec<String> = (0..3)
            .map(|i| add_failure(&world, TABLE_ARN, 600, i))
            .collect();
        world.write().unwrap().denied.push("ledger:WriteSweep");
        let app = app(&world, ledger_config());
        // WHEN a sweep publishes their events and then cannot record them
        let err = sweep_now(&app).await.unwrap_err();
        assert!(
            matches!(&err, Error::Aws(e) if e.operation == "ledger:WriteSweep"),
            "{err:?}"
        );
        assert_eq!(world.read().unwrap().published.len(), 3);
        assert!(world.read().unwrap().marks.is_empty());
        // THEN the next sweep publishes each again (at least once: the remediation's claim makes
        // the duplicate act once) and records them
        world.write().unwrap().denied.clear();
        let second = sweep_now(&app).await.unwrap();
        let mut again = second.published.clone();
        again.sort();
        assert_eq!(again, failures);
        // AND no sweep after that publishes them
        let third = sweep_now(&app).await.unwrap();
        assert!(third.published.is_empty());
        assert_eq!(world.read().unwrap().published.len(), 6);
    }

    #[tokio::test]
    async fn a_failure_whose_incident_is_in_the_ledger_is_not_published_again() {
        // GIVEN three new failures: one a delivery claimed (its lease running), one settled,
        // one no delivery reached
        let world = world_with_table();
        let claimed = add_failure(&world, TABLE_ARN, 600, 1);
        let settled = add_failure(&world, TABLE_ARN, 590, 2);
        let unseen = add_failure(&world, TABLE_ARN, 580, 3);
        {
            let mut w = world.write().unwrap();
            let record = crate::ports::IncidentRecord::claimed(&claimed, "req-1", now() + 300);
            w.ledger.insert(claimed.clone(), record);
            let mut done = crate::ports::IncidentRecord::claimed(&settled, "req-2", 0);
            done.status = crate::ports::IncidentStatus::Retried;
            w.ledger.insert(settled.clone(), done);
        }
        let app = app(&world, ledger_config());
        // WHEN the sweep runs
        let report = sweep_now(&app).await.unwrap();
        // THEN only the unseen one is published, with the same one ledger read
        assert_eq!(report.published, vec![unseen.clone()], "{report:?}");
        assert_eq!(report.already_handled, 2);
        assert_eq!(report.ledger_reads, 1);
        // AND the mark moves past all three: the next sweep reads and publishes nothing
        assert_eq!(
            world.read().unwrap().marks.get(TABLE_ARN),
            Some(&unseen),
            "newest of the three"
        );
        let again = sweep_now(&app).await.unwrap();
        assert!(again.published.is_empty() && again.already_handled == 0);
        assert_eq!(again.ledger_reads, 0);
    }

    #[tokio::test]
    async fn a_group_of_tables_records_its_sweep_in_one_batch_and_the_ledger_table_is_not_swept() {
        // GIVEN six tables with a new failure each, and the ledger's own table with one
        let world = world_with_table();
        let mut tables = vec![TABLE_ARN.to_string()];
        for name in ["a", "b", "c", "d", "e"] {
            tables.push(add_table(&world, name));
        }
        for (i, t) in tables.iter().enumerate() {
            add_failure(&world, t, 600, i as u32);
        }
        let ledger_table = add_table(&world, "ledger");
        let ledger_failure = add_failure(&world, &ledger_table, 600, 99);
        let app = app(&world, ledger_config());
        // WHEN the sweep runs
        let report = sweep_now(&app).await.unwrap();
        // THEN it publishes the six, lists six tables and writes twice: one batch per group
        // of four tables
        assert_eq!(
            (report.tables, report.published.len()),
            (6, 6),
            "{report:?}"
        );
        assert!(!report.published.contains(&ledger_failure));
        assert_eq!(report.list_calls, 6);
        {
            let w = world.read().unwrap();
            assert_eq!(w.sweep_write_calls, 2);
            assert_eq!(w.marks.len(), 6);
            assert!(!w.marks.contains_key(&ledger_table));
        }
        // AND a steady sweep writes nothing
        let steady = sweep_now(&app).await.unwrap();
        assert_eq!((steady.list_calls, steady.published.len()), (6, 0));
        assert_eq!(world.read().unwrap().sweep_write_calls, 2);
    }

    #[tokio::test]
    async fn a_resumed_sweep_clears_its_cursor_in_its_last_batch() {
        let world = world_with_table();
        add_failure(&world, TABLE_ARN, 600, 1);
        let app = app(&world, ledger_config());
        let ledger = app.ledger.as_deref().unwrap();
        let out_of_time = Instant::now();
        let first = sweep(&app, ledger, Some(out_of_time), now()).await.unwrap();
        assert_eq!(first.stopped_at.as_deref(), Some(TABLE_ARN));
        assert_eq!(world.read().unwrap().sweep_write_calls, 1);
        let second = sweep_now(&app).await.unwrap();
        assert_eq!((second.tables, second.published.len()), (1, 1));
        let w = world.read().unwrap();
        assert!(w.cursor.is_none());
        assert_eq!(
            w.sweep_write_calls, 2,
            "the cursor cleared with the table's records"
        );
    }
}
