//! The organization sweep (`ORG_MODE=on`), whose cost grows with new exports, not with
//! accounts × Regions. Detection is event first (the spokes forward every export call); then:
//!
//! 1. **The in-flight poller** describes only the exports the ledger tracks since their start
//!    event, each through the spoke of its account and Region, with back-off, and publishes a
//!    FAILED one once (the sweep's publish-once record). Idle, it costs one ledger Query.
//! 2. **The safety net** catches what the events missed (no trail, a Region outside the rules,
//!    best-effort delivery). Every (account, Region) shard has a fixed slot of the day; a run
//!    sweeps the shards of the slots since the previous run, each table down to its high-water
//!    mark, so each shard is visited once a day, spread over the day.

use super::report::{OrgSweepReport, SweepReport};
use super::sweep::{self, age_from_description, Age, EVENT_SOURCE};
use super::App;
use crate::arn::Arn;
use crate::error::Error;
use crate::intake::FAILED_DETAIL_TYPE;
use crate::model::{ExportDescription, ExportStatus, Place};
use crate::ports::{InFlight, Ledger, OutboundEvent, SweepState, SweepWrite};
use futures_util::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// Slots in a day: the template's `rate(5 minutes)` schedule runs once per slot.
pub const SLOTS: i64 = 288;
pub const SLOT_SECS: i64 = 24 * 3600 / SLOTS;
/// The ledger marker that holds the last slot swept.
const MARKER: &str = "org-sweep-slot";
/// Most in-flight exports one run describes.
const POLL_LIMIT: usize = 1000;
/// Sites polled or swept concurrently.
const SITES_AT_ONCE: usize = 4;

/// The shard's slot of the day: a stable hash (FNV-1a), so a shard keeps its slot across runs
/// and deployments.
pub fn slot_of(account: &str, region: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in account.bytes().chain([b'/']).chain(region.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SLOTS as u64) as i64
}

/// Seconds until an export seen IN_PROGRESS `checks` times is described again: 1, 2, 4 … 60 min.
pub fn backoff(checks: u32) -> i64 {
    (60_i64 << checks.min(6)).min(3600)
}

/// The slots (absolute numbers, `now / SLOT_SECS`) this run covers: those after the last run's,
/// up to now, at most a day of them. `None`: this slot was swept already.
pub fn slots_due(last: Option<i64>, now: i64) -> Option<std::ops::RangeInclusive<i64>> {
    let current = now.div_euclid(SLOT_SECS);
    match last {
        Some(l) if l >= current => None,
        Some(l) => Some((l + 1).max(current - SLOTS + 1)..=current),
        None => Some(current..=current),
    }
}

pub(super) async fn org_sweep(
    app: &App,
    ledger: &dyn Ledger,
    deadline: Option<Instant>,
    now: i64,
) -> Result<SweepReport, Error> {
    let mut report = SweepReport::default();
    let mut org = OrgSweepReport::default();
    poll_in_flight(app, ledger, now, &mut report, &mut org).await?;
    safety_net(app, ledger, deadline, now, &mut report, &mut org).await?;
    report.organization = Some(org);
    Ok(report)
}

fn place_of(export_arn: &str) -> Option<Place> {
    let a = Arn::parse("exportArn", export_arn).ok()?;
    Some(Place {
        account: a.account,
        region: a.region,
    })
}

/// The event the sweep publishes for a new failure, with where it happened.
fn failed_event(d: &ExportDescription, place: &Place) -> OutboundEvent {
    OutboundEvent {
        source: EVENT_SOURCE.into(),
        detail_type: FAILED_DETAIL_TYPE.into(),
        detail: json!({
            "exportArn": d.export_arn,
            "tableArn": d.request.table_arn,
            "accountId": place.account,
            "region": place.region,
            "failureCode": d.failure_code,
            "failureMessage": d.failure_message,
            "s3Bucket": d.request.s3_bucket,
            "s3BucketOwner": d.request.s3_bucket_owner,
            "s3SseAlgorithm": d.request.s3_sse_algorithm,
            "s3SseKmsKeyId": d.request.s3_sse_kms_key_id,
        }),
        resources: vec![d.export_arn.clone()],
    }
}

/// What polling one site's tracked exports found.
#[derive(Default)]
struct Polled {
    failed: Vec<(ExportDescription, Place)>,
    reschedule: Vec<(String, i64, u32)>,
    done: Vec<String>,
    described: usize,
    running: usize,
    unreachable: usize,
    errors: Vec<String>,
}

async fn poll_site(app: &App, place: &Place, exports: &[InFlight], now: i64) -> Polled {
    let mut out = Polled::default();
    let later = |e: &InFlight| {
        (
            e.export_arn.clone(),
            now + backoff(e.checks),
            e.checks.saturating_add(1),
        )
    };
    let site = match app.site_for(place).await {
        Ok(site) => site,
        Err(e) => {
            out.unreachable = exports.len();
            out.errors.push(format!(
                "{}/{}: {}",
                place.account,
                place.region,
                e.reason()
            ));
            out.reschedule = exports.iter().map(later).collect();
            return out;
        }
    };
    let described = join_all(
        exports
            .iter()
            .map(|e| site.exports.describe_export(&e.export_arn)),
    )
    .await;
    out.described = described.len();
    for (e, d) in exports.iter().zip(described) {
        match d {
            Ok(Some(d)) => match d.status {
                ExportStatus::InProgress => {
                    out.running += 1;
                    out.reschedule.push(later(e));
                }
                ExportStatus::Completed => out.done.push(e.export_arn.clone()),
                ExportStatus::Failed => out.failed.push((d, place.clone())),
            },
            Ok(None) => {
                out.errors
                    .push(format!("{}: DescribeExport found nothing", e.export_arn));
                out.done.push(e.export_arn.clone());
            }
            Err(err) => {
                out.errors.push(err.reason());
                out.reschedule.push(later(e));
            }
        }
    }
    out
}

async fn poll_in_flight(
    app: &App,
    ledger: &dyn Ledger,
    now: i64,
    report: &mut SweepReport,
    org: &mut OrgSweepReport,
) -> Result<(), Error> {
    let due = ledger.in_flight_due(now, POLL_LIMIT).await?;
    report.ledger_reads += 1;
    if due.is_empty() {
        return Ok(());
    }
    // One session per account serves all of its exports.
    let mut by_site: BTreeMap<Place, Vec<InFlight>> = BTreeMap::new();
    for e in due {
        match place_of(&e.export_arn) {
            Some(p) => by_site.entry(p).or_default().push(e),
            None => ledger.untrack_in_flight(&e.export_arn).await?,
        }
    }
    let sites: Vec<(Place, Vec<InFlight>)> = by_site.into_iter().collect();
    let mut failed = Vec::new();
    for group in sites.chunks(SITES_AT_ONCE) {
        let polled = join_all(group.iter().map(|(p, e)| poll_site(app, p, e, now))).await;
        for p in polled {
            report.describe_calls += p.described;
            org.polled += p.described;
            org.still_running += p.running;
            org.unreachable += p.unreachable;
            report.errors.extend(p.errors);
            for (arn, at, checks) in p.reschedule {
                ledger.track_in_flight(&arn, at, checks, now).await?;
            }
            for arn in p.done {
                ledger.untrack_in_flight(&arn).await?;
            }
            failed.extend(p.failed);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    // Publish once: the safety net may have published one of them already.
    let arns: Vec<String> = failed.iter().map(|(d, _)| d.export_arn.clone()).collect();
    let records = ledger.sweep_records(&arns).await?;
    report.ledger_reads += 1;
    let lookback = i64::from(app.config.sweep_lookback_hours) * 3600;
    let mut events = Vec::new();
    // Recorded in one batch, then untracked: a lost batch only publishes again.
    let mut writes = Vec::new();
    let mut settled = Vec::new();
    for (d, place) in &failed {
        match records.get(&d.export_arn).and_then(|r| r.state) {
            Some(SweepState::Published | SweepState::TooOld) => {
                ledger.untrack_in_flight(&d.export_arn).await?;
            }
            _ if age_from_description(d, now, lookback) == Age::Old => {
                writes.push(SweepWrite::State {
                    export_arn: d.export_arn.clone(),
                    state: SweepState::TooOld,
                });
                settled.push(d.export_arn.clone());
                report.older_than_lookback += 1;
            }
            _ => events.push(failed_event(d, place)),
        }
    }
    let accepted = if events.is_empty() {
        Vec::new()
    } else {
        app.events.publish(&events).await?
    };
    for (event, ok) in events.iter().zip(accepted) {
        let arn = &event.resources[0];
        if ok {
            writes.push(SweepWrite::State {
                export_arn: arn.clone(),
                state: SweepState::Published,
            });
            settled.push(arn.clone());
            report.published.push(arn.clone());
        } else {
            // Still tracked and due: the next run publishes it.
            report
                .errors
                .push(format!("{arn}: PutEvents did not accept the event"));
        }
    }
    if !writes.is_empty() {
        ledger.sweep_writes(&writes, now).await?;
    }
    for arn in &settled {
        ledger.untrack_in_flight(arn).await?;
    }
    Ok(())
}

enum Shard {
    Swept(Box<SweepReport>),
    Failed(String),
    Unreachable(String),
}

async fn safety_net(
    app: &App,
    ledger: &dyn Ledger,
    deadline: Option<Instant>,
    now: i64,
    report: &mut SweepReport,
    org: &mut OrgSweepReport,
) -> Result<(), Error> {
    let last = ledger.marker(MARKER).await?;
    let Some(slots) = slots_due(last, now) else {
        return Ok(());
    };
    let hub = app.config.hub_account_id.clone().unwrap_or_default();
    let accounts = match app.accounts.account_ids().await {
        Ok(ids) if !ids.is_empty() => ids,
        Ok(_) => vec![hub],
        Err(e) => {
            report.errors.push(format!(
                "the organization's accounts could not be listed ({}); the safety net covers the hub's account only",
                e.reason()
            ));
            vec![hub]
        }
    };
    let regions = if app.config.spoke_regions.is_empty() {
        vec![app.region.clone()]
    } else {
        app.config.spoke_regions.clone()
    };
    let due: std::collections::HashSet<i64> = slots.clone().map(|s| s % SLOTS).collect();
    let mut shards = Vec::new();
    for account in &accounts {
        for region in &regions {
            org.shards_total += 1;
            if due.contains(&slot_of(account, region)) {
                shards.push(Place {
                    account: account.clone(),
                    region: region.clone(),
                });
            }
        }
    }
    for group in shards.chunks(SITES_AT_ONCE) {
        let left = |d: Instant| {
            tokio::time::Instant::from_std(d).saturating_duration_since(tokio::time::Instant::now())
        };
        if deadline.is_some_and(|d| left(d) < sweep::SAFETY_MARGIN) {
            // The marker stays: the next run covers these slots again (marks make it cheap).
            report.stopped_at = Some(format!("{}/{}", group[0].account, group[0].region));
            return Ok(());
        }
        let parts = join_all(group.iter().map(|place| async move {
            let at = format!("{}/{}", place.account, place.region);
            match app.site_for(place).await {
                Ok(site) => match sweep::sweep_site(&site, ledger, now).await {
                    Ok(part) => Shard::Swept(Box::new(part)),
                    Err(e) => Shard::Failed(format!("{at}: {e}")),
                },
                Err(e) => Shard::Unreachable(format!("{at}: {}", e.reason())),
            }
        }))
        .await;
        // One shard's failure (a throttled or denied account) never stops the others.
        for part in parts {
            match part {
                Shard::Swept(p) => {
                    org.shards_swept += 1;
                    report.absorb(*p);
                }
                Shard::Failed(e) => report.errors.push(e),
                Shard::Unreachable(e) => {
                    org.unreachable += 1;
                    report.errors.push(e);
                }
            }
        }
    }
    ledger.set_marker(MARKER, *slots.end(), now).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
