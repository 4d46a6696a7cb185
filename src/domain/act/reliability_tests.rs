//! Exactly once under lost answers, transient read failures and crashes, on the fakes: each
//! mechanism of docs/reliability.md, and each point where a killed process can stop.

use crate::config::Config;
use crate::domain::report::{AppliedStatus, RemediationResult};
use crate::domain::App;
use crate::error::Error;
use crate::fakes::*;
use crate::model::Mode;
use crate::ports::IncidentStatus;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// GIVEN a cross-account bucket in an organization account with the member role, and an export
/// without --s3-bucket-owner that failed with a bare Access Denied: one retry fixes it.
fn world() -> Shared {
    let world = world_with_table();
    {
        let mut w = world.write().unwrap();
        w.buckets.insert(
            "amzn-s3-demo-bucket".into(),
            FakeBucket {
                policy: Some(grant_policy("amzn-s3-demo-bucket")),
                ..FakeBucket::owned_by(DATA_ACCOUNT)
            },
        );
        w.org_accounts = Some(vec![TABLE_ACCOUNT.into(), DATA_ACCOUNT.into()]);
        w.member_roles = vec![DATA_ACCOUNT.into()];
        w.exports.push(failed_export(
            request("amzn-s3-demo-bucket"),
            "S3AccessDenied",
            "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: X)",
        ));
    }
    world
}

fn config() -> Config {
    Config {
        mode: Mode::Apply,
        ledger_table_name: Some("ledger".into()),
        member_role_name: Some("DdbExportRemediatorMember".into()),
        ..Config::default()
    }
}

/// An app on the world whose clock the test moves.
fn app_with_clock(world: &Shared) -> (App, Arc<OffsetClock>) {
    let clock = Arc::new(OffsetClock::default());
    let mut app = app(world, config());
    app.clock = clock.clone();
    (app, clock)
}

fn event() -> Value {
    json!({"exportArn": EXPORT_ARN})
}

async fn deliver(app: &App, owner: &str) -> Result<RemediationResult, Error> {
    app.handle_as(&event(), None, Some(owner)).await
}

/// A delivery killed where the world's crash point fires: it never returns and is dropped.
async fn deliver_and_kill(app: &App, owner: &str) {
    let run = tokio::time::timeout(Duration::from_secs(600), deliver(app, owner)).await;
    assert!(run.is_err(), "the delivery was to be killed: {run:?}");
}

fn status(world: &Shared) -> IncidentStatus {
    world.read().unwrap().ledger[EXPORT_ARN].status
}

/// Distinct exports started (DynamoDB answers a resent token with the export it started).
fn starts(world: &Shared) -> usize {
    world.read().unwrap().started.len()
}

fn sweep() -> Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

#[tokio::test(start_paused = true)]
async fn a_claim_whose_answer_was_lost_and_was_sent_again_is_recognised_as_ours() {
    let world = world();
    world.write().unwrap().replay_writes.extend([
        "ledger:ClaimIncident",
        "ledger:SettleIncident",
        "ledger:SettleIncident(final)",
    ]);
    let (app, _) = app_with_clock(&world);
    let result = deliver(&app, "req-1").await.unwrap();
    assert_eq!(result.applied[0].status, AppliedStatus::Done);
    assert_eq!(starts(&world), 1);
    assert_eq!(status(&world), IncidentStatus::Retried);
    assert!(world.read().unwrap().open.is_empty());
    // The next deliveries find it settled.
    let again = deliver(&app, "req-2").await.unwrap();
    assert_eq!(again.applied[0].status, AppliedStatus::Skipped);
    assert_eq!(starts(&world), 1);
}

#[tokio::test(start_paused = true)]
async fn a_transient_read_failure_records_nothing_final_and_the_next_delivery_retries() {
    let world = world();
    world
        .write()
        .unwrap()
        .throttled
        .push("dynamodb:GetResourcePolicy");
    let (app, _) = app_with_clock(&world);
    let err = deliver(&app, "req-1").await.unwrap_err();
    assert_eq!(err.error_type(), "EvidenceIncomplete");
    assert!(
        matches!(&err, Error::EvidenceIncomplete(reads) if reads == &["dynamodb:GetResourcePolicy"])
    );
    // Given back: PENDING (claimable at once), listed due for the sweep; nothing started.
    assert_eq!(status(&world), IncidentStatus::Pending);
    assert_eq!(starts(&world), 0);
    assert!(world.read().unwrap().open.contains_key(EXPORT_ARN));
    // A delivery with complete evidence is not blocked.
    let result = deliver(&app, "req-2").await.unwrap();
    assert_eq!(result.applied[0].status, AppliedStatus::Done);
    assert_eq!(starts(&world), 1);
    assert_eq!(status(&world), IncidentStatus::Retried);
}

#[tokio::test(start_paused = true)]
async fn access_denied_is_an_answer_not_a_gap_and_its_diagnosis_is_final() {
    let world = world();
    world.write().unwrap().denied.push("s3:GetBucketPolicy");
    let (app, _) = app_with_clock(&world);
    deliver(&app, "req-1").await.unwrap();
    assert_ne!(status(&world), IncidentStatus::Pending);
    assert_ne!(status(&world), IncidentStatus::Claimed);
}

#[tokio::test(start_paused = true)]
async fn an_active_claim_holds_off_other_deliveries_and_after_its_lease_the_sweep_takes_over() {
    let world = world();
    // The first delivery dies right after its claim landed.
    world
        .write()
        .unwrap()
        .crash_after
        .push("ledger:ClaimIncident");
    let (app, clock) = app_with_clock(&world);
    deliver_and_kill(&app, "req-1").await;
    assert_eq!(status(&world), IncidentStatus::Claimed);
    let other = deliver(&app, "req-2").await.unwrap();
    assert_eq!(other.applied[0].status, AppliedStatus::Skipped);
    assert_eq!(starts(&world), 0);
    // Inside the lease the sweep leaves it alone.
    let swept = app
        .handle_as(&sweep(), None, Some("sweep-1"))
        .await
        .unwrap();
    assert!(swept.sweep.unwrap().taken_over.is_empty());
    clock.advance(i64::from(config().claim_lease_seconds) + 1);
    let swept = app
        .handle_as(&sweep(), None, Some("sweep-2"))
        .await
        .unwrap();
    assert_eq!(swept.sweep.unwrap().taken_over, [EXPORT_ARN]);
    assert_eq!(starts(&world), 1);
    assert_eq!(status(&world), IncidentStatus::Retried);
    assert!(world.read().unwrap().open.is_empty());
}

/// SIGKILL at each point of the act stage: the lease and the sweep lead to exactly one retry.
#[tokio::test(start_paused = true)]
async fn a_delivery_killed_anywhere_is_finished_by_the_sweep_with_exactly_one_retry() {
    let points: [(&str, bool); 5] = [
        ("ledger:ClaimIncident", true),
        ("ledger:SettleIncident", true),
        ("dynamodb:ExportTableToPointInTime", false),
        ("dynamodb:ExportTableToPointInTime", true),
        ("ledger:SettleIncident(final)", false),
    ];
    for (op, after) in points {
        let world = world();
        {
            let mut w = world.write().unwrap();
            match after {
                true => w.crash_after.push(op),
                false => w.crash_before.push(op),
            }
        }
        let (app, clock) = app_with_clock(&world);
        deliver_and_kill(&app, "req-1").await;
        clock.advance(i64::from(config().claim_lease_seconds) + 1);
        let swept = app
            .handle_as(&sweep(), None, Some("sweep-1"))
            .await
            .unwrap();
        assert_eq!(
            swept.sweep.unwrap().taken_over,
            [EXPORT_ARN],
            "{op} {after}"
        );
        assert_eq!(starts(&world), 1, "{op} {after}");
        assert_eq!(status(&world), IncidentStatus::Retried, "{op} {after}");
        // A late redelivery of the killed one changes nothing.
        deliver(&app, "req-1").await.unwrap();
        assert_eq!(starts(&world), 1, "{op} {after}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_start_whose_answer_was_lost_is_sent_again_with_the_stored_token_and_time() {
    let world = world();
    world
        .write()
        .unwrap()
        .lost_answers
        .push("dynamodb:ExportTableToPointInTime");
    let (app, _) = app_with_clock(&world);
    let first = deliver(&app, "req-1").await.unwrap();
    assert_eq!(first.applied[0].status, AppliedStatus::Failed);
    assert_eq!(status(&world), IncidentStatus::Pending);
    let second = deliver(&app, "req-2").await.unwrap();
    assert_eq!(second.applied[0].status, AppliedStatus::Done);
    assert_eq!(starts(&world), 1);
    let w = world.read().unwrap();
    assert_eq!(w.ledger[EXPORT_ARN].status, IncidentStatus::Retried);
    assert_eq!(
        w.ledger[EXPORT_ARN].retry_export_arn.as_deref(),
        Some(first_retry_arn().as_str())
    );
}

fn first_retry_arn() -> String {
    format!("{TABLE_ARN}/export/01795600000000-00000001")
}

#[tokio::test(start_paused = true)]
async fn export_conflict_on_our_own_token_finds_the_export_it_started() {
    let world = world();
    let (app, _) = app_with_clock(&world);
    // Plan the retry once to learn its token, then let "an earlier delivery" have started it
    // with other parameters.
    let planned = app
        .handle(&json!({"exportArn": EXPORT_ARN, "mode": "plan"}), None)
        .await
        .unwrap();
    let token = planned.plan[0]["params"]["ClientToken"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{:?}", planned.plan));
    {
        let mut w = world.write().unwrap();
        w.started_listed = true;
        let mut other = request("amzn-s3-demo-bucket");
        other.s3_prefix = Some("elsewhere".into());
        w.started.push((other.clone(), token.clone()));
        w.exports.push(crate::model::ExportDescription {
            export_arn: first_retry_arn(),
            status: crate::model::ExportStatus::InProgress,
            request: crate::model::ExportRequest {
                client_token: Some(token),
                ..other
            },
            failure_code: None,
            failure_message: None,
            start_time: None,
            end_time: None,
        });
    }
    let result = deliver(&app, "req-1").await.unwrap();
    assert_eq!(result.applied[0].status, AppliedStatus::Done);
    assert_eq!(starts(&world), 1);
    let w = world.read().unwrap();
    assert_eq!(w.ledger[EXPORT_ARN].status, IncidentStatus::Retried);
    assert_eq!(
        w.ledger[EXPORT_ARN].retry_export_arn.as_deref(),
        Some(first_retry_arn().as_str())
    );
}

#[tokio::test(start_paused = true)]
async fn a_settle_after_a_takeover_writes_nothing() {
    let world = world();
    let (app, clock) = app_with_clock(&world);
    let ledger = app.ledger.clone().unwrap();
    let now = clock_now(&app);
    assert!(matches!(
        ledger.claim(EXPORT_ARN, "req-1", now, 10).await.unwrap(),
        crate::ports::Claim::Won { .. }
    ));
    clock.advance(11);
    let later = clock_now(&app);
    assert!(matches!(
        ledger.claim(EXPORT_ARN, "req-2", later, 10).await.unwrap(),
        crate::ports::Claim::Won { .. }
    ));
    let mut stale = crate::ports::IncidentRecord::claimed(EXPORT_ARN, "req-1", 0);
    stale.status = IncidentStatus::NoAction;
    assert!(!ledger.settle(&stale, later).await.unwrap());
    assert_eq!(status(&world), IncidentStatus::Claimed);
}

fn clock_now(app: &App) -> i64 {
    app.clock.now()
}

#[tokio::test(start_paused = true)]
async fn a_describe_export_that_failed_transiently_leaves_the_incident_to_the_sweep() {
    let world = world();
    world
        .write()
        .unwrap()
        .throttled
        .push("dynamodb:DescribeExport");
    let (app, _) = app_with_clock(&world);
    let err = deliver(&app, "req-1").await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(world.read().unwrap().open.contains_key(EXPORT_ARN));
    let swept = app
        .handle_as(&sweep(), None, Some("sweep-1"))
        .await
        .unwrap();
    assert_eq!(swept.sweep.unwrap().taken_over, [EXPORT_ARN]);
    assert_eq!(starts(&world), 1);
    assert_eq!(status(&world), IncidentStatus::Retried);
    assert!(world.read().unwrap().open.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_open_listing_the_sweep_can_never_handle_is_dropped_once() {
    let world = world();
    let gone = format!("{TABLE_ARN}/export/01795508400000-00000000");
    world.write().unwrap().open.insert(gone.clone(), 0);
    let (app, _) = app_with_clock(&world);
    let swept = app
        .handle_as(&sweep(), None, Some("sweep-1"))
        .await
        .unwrap();
    let report = swept.sweep.unwrap();
    assert!(report.taken_over.is_empty());
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(!world.read().unwrap().open.contains_key(&gone));
}

/// Deterministic pseudo-random numbers (a fixed-seed LCG; no timing, no OS entropy).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

/// 300 fault schedules, each: three deliveries of one failure with random lost answers (ledger
/// writes applied and resent, a start applied and answered 500), transient read failures, and a
/// kill at a random point; Lambda's two retries of a delivery that failed; then sweeps after the
/// lease. Every schedule ends with exactly one retry started and the incident RETRIED.
#[tokio::test(start_paused = true)]
async fn random_fault_schedules_end_in_exactly_one_retry_each() {
    const SEED: u64 = 24;
    const SCHEDULES: usize = 300;
    let replays = [
        "ledger:ClaimIncident",
        "ledger:SettleIncident",
        "ledger:SettleIncident(final)",
    ];
    let crashes: [(&str, bool); 6] = [
        ("ledger:ClaimIncident", false),
        ("ledger:ClaimIncident", true),
        ("ledger:SettleIncident", true),
        ("dynamodb:ExportTableToPointInTime", false),
        ("dynamodb:ExportTableToPointInTime", true),
        ("ledger:SettleIncident(final)", false),
    ];
    let reads = [
        "dynamodb:GetResourcePolicy",
        "dynamodb:DescribeExport",
        "s3:ListBuckets",
    ];
    let mut rng = Lcg(SEED);
    let (mut killed, mut failed_deliveries, mut sweeps_needed) = (0, 0, 0);
    for schedule in 0..SCHEDULES {
        let world = world();
        {
            let mut w = world.write().unwrap();
            for op in replays {
                if rng.next(3) == 0 {
                    w.replay_writes.push(op);
                }
            }
            if rng.next(4) == 0 {
                w.lost_answers.push("dynamodb:ExportTableToPointInTime");
            }
            if rng.next(3) == 0 {
                w.throttled.push(reads[rng.next(reads.len())]);
            }
            if rng.next(2) == 0 {
                let (op, after) = crashes[rng.next(crashes.len())];
                match after {
                    true => w.crash_after.push(op),
                    false => w.crash_before.push(op),
                }
            }
        }
        let (app, clock) = app_with_clock(&world);
        for delivery in 0..3 {
            // A delivery that fails is retried twice, with its request id.
            for _attempt in 0..3 {
                let owner = format!("req-{delivery}");
                match tokio::time::timeout(Duration::from_secs(600), deliver(&app, &owner)).await {
                    Err(_) => {
                        killed += 1;
                        break;
                    }
                    Ok(Ok(_)) => break,
                    Ok(Err(e)) => {
                        assert!(e.is_transient(), "schedule {schedule}: {e:?}");
                        failed_deliveries += 1;
                    }
                }
            }
        }
        let mut sweeps = 0;
        while world
            .read()
            .unwrap()
            .ledger
            .get(EXPORT_ARN)
            .map(|r| r.status)
            != Some(IncidentStatus::Retried)
        {
            sweeps += 1;
            assert!(
                sweeps <= 3,
                "schedule {schedule}: {:?}",
                world.read().unwrap().ledger
            );
            clock.advance(i64::from(config().claim_lease_seconds) + 1);
            app.handle_as(&sweep(), None, Some(&format!("sweep-{sweeps}")))
                .await
                .unwrap();
        }
        sweeps_needed += usize::from(sweeps > 0);
        assert_eq!(starts(&world), 1, "schedule {schedule}");
        assert!(world.read().unwrap().open.is_empty(), "schedule {schedule}");
    }
    println!(
        "seed {SEED}: {SCHEDULES} schedules, {killed} deliveries killed, {failed_deliveries} failed and retried, {sweeps_needed} finished by the sweep; 0 lost, 0 duplicates"
    );
}
