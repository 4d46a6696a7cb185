//! Following a retry to its outcome, on the fakes: one outcome per incident, published once.

use crate::config::Config;
use crate::domain::outcome::{GaveUpReason, OutcomeKind, Verdict};
use crate::fakes::*;
use crate::model::{ExportStatus, Mode};
use serde_json::{json, Value};

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
        let mut failed = failed_export(
            request("amzn-s3-demo-bucket"),
            "S3AccessDenied",
            "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: X)",
        );
        failed.end_time = Some(1_795_500_000.0);
        w.exports.push(failed);
    }
    world
}

fn config(mode: Mode) -> Config {
    Config {
        mode,
        member_role_name: Some("DdbExportRemediatorMember".into()),
        ledger_table_name: Some("ledger".into()),
        ..Config::default()
    }
}

fn failure() -> Value {
    json!({"exportArn": EXPORT_ARN})
}

fn sweep() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

/// The outcome events published so far.
fn outcomes(world: &Shared) -> Vec<Value> {
    world
        .read()
        .unwrap()
        .published
        .iter()
        .filter(|e| e.detail.get("outcome").is_some())
        .map(|e| e.detail.clone())
        .collect()
}

/// The retry's check is due now (the back-off would otherwise wait a minute).
fn due(world: &Shared) {
    for v in world.write().unwrap().in_flight.values_mut() {
        v.0 = 0;
    }
}

/// GIVEN the retry the first delivery started has COMPLETED with `items` items.
fn complete(world: &Shared, retry_arn: &str, items: i64) {
    let mut w = world.write().unwrap();
    let mut e = failed_export(request("amzn-s3-demo-bucket"), "", "");
    e.export_arn = retry_arn.to_string();
    e.status = ExportStatus::Completed;
    e.failure_code = None;
    e.failure_message = None;
    e.end_time = Some(1_795_500_360.0);
    e.item_count = Some(items);
    w.exports.push(e);
}

fn retry_arn(r: &crate::domain::report::RemediationResult) -> String {
    r.applied[0].result["exportArn"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_retry_that_completes_gives_exactly_one_resolved_outcome_after_the_next_sweep() {
    let world = world();
    let app = app(&world, config(Mode::Apply));
    // WHEN the failure is delivered twice and the retry starts
    let first = app.handle(&failure(), None).await.unwrap();
    app.handle(&failure(), None).await.unwrap();
    assert_eq!(
        first.outcome, None,
        "a running retry leaves the incident open"
    );
    assert!(outcomes(&world).is_empty());
    let retry = retry_arn(&first);
    complete(&world, &retry, 1_204_332);
    due(&world);
    // AND the schedule runs twice
    let swept = app.handle(&sweep(), None).await.unwrap();
    due(&world);
    app.handle(&sweep(), None).await.unwrap();
    // THEN exactly one RESOLVED event, with the completed export, its items and the time
    let events = outcomes(&world);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "RESOLVED");
    let detail = &events[0]["outcomeDetail"]["verdict"];
    assert_eq!(detail["exportArn"], retry.as_str());
    assert_eq!(detail["itemCount"], 1_204_332);
    assert_eq!(detail["secondsToResolution"], 360);
    assert_eq!(
        swept.sweep.unwrap().outcomes[0].outcome,
        OutcomeKind::Resolved
    );
    // AND nothing is left in flight or counted as followed
    let w = world.read().unwrap();
    assert!(w.in_flight.is_empty());
    assert_eq!(w.markers.get("following").copied(), Some(0));
}

#[tokio::test]
async fn a_retry_that_disappears_gives_up_with_that_reason() {
    let world = world();
    let app = app(&world, config(Mode::Apply));
    app.handle(&failure(), None).await.unwrap();
    due(&world);
    // The fake's StartExport leaves no export behind: DescribeExport finds nothing.
    app.handle(&sweep(), None).await.unwrap();
    let events = outcomes(&world);
    assert_eq!(events.len(), 1);
    let o: crate::domain::outcome::Outcome =
        serde_json::from_value(events[0]["outcomeDetail"].clone()).unwrap();
    let Verdict::GaveUp(g) = o.verdict else {
        panic!("not GAVE_UP: {o:?}")
    };
    assert_eq!(g.reason, GaveUpReason::RetryDisappeared);
}

#[tokio::test]
async fn diagnose_mode_needs_a_person_once_with_the_plan_apply_would_run() {
    let world = world();
    let app = app(&world, config(Mode::Diagnose));
    let first = app.handle(&failure(), None).await.unwrap();
    app.handle(&failure(), None).await.unwrap();
    assert_eq!(first.outcome, Some(OutcomeKind::NeedsPerson));
    let events = outcomes(&world);
    assert_eq!(
        events.len(),
        1,
        "a duplicate delivery publishes no second outcome"
    );
    let verdict = &events[0]["outcomeDetail"]["verdict"];
    assert_eq!(verdict["reason"], "READ_ONLY_MODE");
    assert_eq!(verdict["wouldApply"][0]["action"], "RETRY_EXPORT");
    assert!(events[0]["headline"]
        .as_str()
        .unwrap()
        .starts_with("Needs a person:"));
}

#[tokio::test]
async fn an_outcome_the_bus_refused_is_published_by_the_next_delivery() {
    let world = world();
    let app = app(&world, config(Mode::Diagnose));
    // GIVEN the bus refuses the first outcome event (as if the run died before PutEvents)
    world.write().unwrap().refuse_events = 1;
    app.handle(&failure(), None).await.unwrap();
    assert!(outcomes(&world).is_empty());
    // WHEN the failure is delivered again
    app.handle(&failure(), None).await.unwrap();
    app.handle(&failure(), None).await.unwrap();
    // THEN the recorded outcome goes out, once
    assert_eq!(outcomes(&world).len(), 1);
}

#[tokio::test]
async fn a_sweep_with_nothing_followed_reads_no_in_flight_partition() {
    let world = world();
    let app = app(&world, config(Mode::Apply));
    let first = app.handle(&sweep(), None).await.unwrap().sweep.unwrap();
    let second = app.handle(&sweep(), None).await.unwrap().sweep.unwrap();
    // The marks' batch holds the count; with none followed no Query and no DescribeExport.
    assert_eq!((second.describe_calls, second.ledger_reads), (0, 0));
    assert!(first.outcomes.is_empty());
}

#[test]
fn a_parameter_change_is_named_shortly_and_other_changes_are_left_out() {
    assert_eq!(
        super::correction("S3BucketOwner: (none) -> 111122223333").as_deref(),
        Some("S3BucketOwner 111122223333")
    );
    assert_eq!(
        super::correction("ExportTime 1.5 is outside the restorable window; using 2"),
        None
    );
}
