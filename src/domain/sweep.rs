//! The scheduled sweep (SPEC §3.2): find failed exports nobody told us about, publish each once.
//!
//! Per table, ListExports (newest first) is read only down to the table's high-water mark: the
//! newest export such that it and every older one were terminal (and, if FAILED, published)
//! when seen. A steady sweep therefore costs one ListExports call per table, and work grows
//! with new exports, not with the 90 days of history. Exports seen IN_PROGRESS stay above the
//! mark and are listed again until they end.

use super::report::SweepReport;
use super::App;
use crate::arn::partition_of;
use crate::error::Error;
use crate::intake::FAILED_DETAIL_TYPE;
use crate::model::{export_started_ms, ExportDescription, ExportStatus, ExportSummary};
use crate::ports::{Ledger, OutboundEvent, SweepState};
use futures_util::future::join_all;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

pub const EVENT_SOURCE: &str = "ddb-export-remediator";
/// Stop starting new tables when less than this is left before the function's deadline.
pub(super) const SAFETY_MARGIN: Duration = Duration::from_secs(15);
/// Tables swept concurrently.
const TABLES_AT_ONCE: usize = 4;
/// Ledger writes made concurrently.
const WRITES_AT_ONCE: usize = 25;
/// How long an export may have run before it failed, for the look-back: a failure whose id says
/// it started more than look-back + this ago is old without a DescribeExport. (An export that ran
/// longer and failed inside the look-back is the one case this misses.)
const LONGEST_RUN_SECS: i64 = 24 * 3600;

/// How a FAILED export's age compares with the look-back window (SPEC §3.2).
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
        .collect();
    let cursor = ledger.sweep_cursor().await?;
    let start = cursor
        .as_deref()
        .and_then(|c| arns.iter().position(|a| a.as_str() >= c))
        .unwrap_or(0);
    report.resumed_from = cursor.clone();
    // A few tables at a time: each table's pages are sequential (NextToken), tables are not.
    // The cursor names the first table of a group, so a resumed sweep redoes at most a group.
    for group in arns[start..].chunks(TABLES_AT_ONCE) {
        // tokio's clock: the real one in the function, a paused one in tests.
        let left = |d: Instant| {
            tokio::time::Instant::from_std(d).saturating_duration_since(tokio::time::Instant::now())
        };
        if deadline.is_some_and(|d| left(d) < SAFETY_MARGIN) {
            ledger.set_sweep_cursor(Some(&group[0]), now).await?;
            report.stopped_at = Some(group[0].clone());
            return Ok(report);
        }
        let parts = join_all(group.iter().map(|table_arn| async move {
            let mut part = SweepReport::default();
            sweep_table(app, ledger, table_arn, now, &mut part).await?;
            Ok::<_, Error>(part)
        }))
        .await;
        for part in parts {
            report.absorb(part?);
            report.tables += 1;
        }
    }
    if cursor.is_some() {
        ledger.set_sweep_cursor(None, now).await?;
    }
    Ok(report)
}

async fn sweep_table(
    app: &App,
    ledger: &dyn Ledger,
    table_arn: &str,
    now: i64,
    report: &mut SweepReport,
) -> Result<(), Error> {
    let mark = ledger.table_mark(table_arn).await?;
    let mut listed: Vec<ExportSummary> = Vec::new();
    let mut token = None;
    loop {
        let page = app.exports.list_exports(Some(table_arn), token).await?;
        report.list_calls += 1;
        report.exports_listed += page.exports.len();
        let mut reached_mark = false;
        for e in page.exports {
            if mark.as_deref().is_some_and(|m| e.export_arn.as_str() <= m) {
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
        return Ok(());
    }

    let open: Vec<String> = listed
        .iter()
        .filter(|e| e.status != ExportStatus::Completed)
        .map(|e| e.export_arn.clone())
        .collect();
    let states = if open.is_empty() {
        Default::default()
    } else {
        report.ledger_reads += 1;
        ledger.sweep_states(&open).await?
    };
    // Settled: published, or found too old before; neither is published again.
    let mut published: HashSet<String> = states
        .iter()
        .filter(|(_, s)| matches!(s, SweepState::Published | SweepState::TooOld))
        .map(|(a, _)| a.clone())
        .collect();
    let lookback = i64::from(app.config.sweep_lookback_hours) * 3600;
    for e in listed
        .iter()
        .filter(|e| e.status == ExportStatus::InProgress)
    {
        if !states.contains_key(&e.export_arn) {
            ledger
                .set_sweep_state(&e.export_arn, SweepState::InProgress, now)
                .await?;
        }
    }

    let unsettled: Vec<&ExportSummary> = listed
        .iter()
        .filter(|e| e.status == ExportStatus::Failed && !published.contains(&e.export_arn))
        .collect();
    let mut new_failures: Vec<&ExportSummary> = Vec::new();
    for e in unsettled {
        // Old by its id: no DescribeExport, and nothing to record (the mark moves past it).
        if age_from_id(&e.export_arn, now, lookback) == Some(Age::Old) {
            report.older_than_lookback += 1;
            published.insert(e.export_arn.clone());
        } else {
            new_failures.push(e);
        }
    }
    let described = join_all(
        new_failures
            .iter()
            .map(|e| app.exports.describe_export(&e.export_arn)),
    )
    .await;
    report.describe_calls += described.len();
    let mut events = Vec::new();
    for (e, d) in new_failures.iter().zip(described) {
        match d {
            Ok(Some(d)) if age_from_description(&d, now, lookback) == Age::Old => {
                // Recorded, so that the next sweep does not describe it again.
                ledger
                    .set_sweep_state(&e.export_arn, SweepState::TooOld, now)
                    .await?;
                report.older_than_lookback += 1;
                published.insert(e.export_arn.clone());
            }
            Ok(Some(d)) => events.push(OutboundEvent {
                source: EVENT_SOURCE.into(),
                detail_type: FAILED_DETAIL_TYPE.into(),
                // The destination lets the diagnosing invocation read the bucket beside its
                // own DescribeExport (intake: `Incident::announced`).
                detail: json!({
                    "exportArn": d.export_arn,
                    "tableArn": d.request.table_arn,
                    "failureCode": d.failure_code,
                    "failureMessage": d.failure_message,
                    "s3Bucket": d.request.s3_bucket,
                    "s3BucketOwner": d.request.s3_bucket_owner,
                    "s3SseAlgorithm": d.request.s3_sse_algorithm,
                    "s3SseKmsKeyId": d.request.s3_sse_kms_key_id,
                }),
                resources: vec![e.export_arn.clone()],
            }),
            Ok(None) => report
                .errors
                .push(format!("{}: DescribeExport found nothing", e.export_arn)),
            Err(err) => report.errors.push(err.reason()),
        }
    }
    if !events.is_empty() {
        let accepted = app.events.publish(&events).await?;
        let mut done = Vec::new();
        for (event, ok) in events.iter().zip(accepted) {
            let arn = event.resources[0].clone();
            if ok {
                done.push(arn);
            } else {
                report
                    .errors
                    .push(format!("{arn}: PutEvents did not accept the event"));
            }
        }
        for chunk in done.chunks(WRITES_AT_ONCE) {
            let writes = join_all(
                chunk
                    .iter()
                    .map(|arn| ledger.set_sweep_state(arn, SweepState::Published, now)),
            )
            .await;
            for (arn, w) in chunk.iter().zip(writes) {
                w?;
                published.insert(arn.clone());
                report.published.push(arn.clone());
            }
        }
    }

    // The new mark: walk from the oldest listed export up while each one is settled.
    let new_mark = listed
        .iter()
        .rev()
        .take_while(|e| match e.status {
            ExportStatus::Completed => true,
            ExportStatus::Failed => published.contains(&e.export_arn),
            ExportStatus::InProgress => false,
        })
        .last();
    if let Some(m) = new_mark {
        ledger.set_table_mark(table_arn, &m.export_arn, now).await?;
    }
    Ok(())
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
    for group in arns.chunks(TABLES_AT_ONCE) {
        let parts = join_all(group.iter().map(|table_arn| async move {
            let mut part = SweepReport::default();
            sweep_table(app, ledger, table_arn, now, &mut part).await?;
            Ok::<_, Error>(part)
        }))
        .await;
        for part in parts {
            report.absorb(part?);
            report.tables += 1;
        }
    }
    Ok(report)
}
