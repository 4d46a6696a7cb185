use super::*;
use crate::fakes::*;
use crate::model::ExportRequest;
use std::collections::HashSet;
use std::sync::Arc;

const HUB: &str = "999988887777";
const A: &str = "222233334444";
const B: &str = "555566667777";

fn export(account: &str, region: &str, id: &str, status: ExportStatus) -> ExportDescription {
    let table = format!("arn:aws:dynamodb:{region}:{account}:table/orders");
    ExportDescription {
        export_arn: format!("{table}/export/{id}"),
        status,
        request: ExportRequest {
            table_arn: table,
            s3_bucket: "amzn-s3-demo-bucket".into(),
            ..Default::default()
        },
        failure_code: (status == ExportStatus::Failed).then(|| "S3AccessDenied".into()),
        failure_message: None,
        start_time: None,
        end_time: None,
        item_count: None,
    }
}

/// A hub app in us-east-1 with the fake organization's spokes.
fn hub(world: &Shared, spokes: FakeSpokes) -> (App, Arc<FakeSpokes>) {
    let config = crate::Config {
        hub_account_id: Some(HUB.into()),
        member_role_name: Some("spoke".into()),
        ledger_table_name: Some("ledger".into()),
        spoke_regions: vec!["us-east-1".into(), "us-west-2".into()],
        ..crate::Config::default()
    };
    let spokes = Arc::new(spokes);
    let mut app = app(world, config);
    app.spokes = Some(spokes.clone());
    (app, spokes)
}

fn now() -> i64 {
    crate::aws::SystemClock.now()
}

use crate::ports::Clock;

#[tokio::test]
async fn the_poller_describes_only_tracked_exports_and_publishes_a_failure_once() {
    let world = world_with_table();
    let now = now();
    // A recent id (the look-back reads it), FAILED in A, us-west-2.
    let id = |n: u32| format!("{:014}-{n:08x}", (now - 600) * 1000);
    let failed = export(A, "us-west-2", &id(1), ExportStatus::Failed);
    let running = export(A, "us-west-2", &id(2), ExportStatus::InProgress);
    let done = export(B, "us-east-1", &id(3), ExportStatus::Completed);
    let untracked = export(B, "us-east-1", &id(4), ExportStatus::Failed);
    {
        let mut w = world.write().unwrap();
        w.exports = vec![failed.clone(), running.clone(), done.clone(), untracked];
        for e in [&failed, &running, &done] {
            w.in_flight.insert(e.export_arn.clone(), (now - 1, 0));
        }
        // Someone else's export, due later: not described now.
        w.in_flight.insert(
            format!("arn:aws:dynamodb:us-west-2:{B}:table/t/export/{}", id(5)),
            (now + 3600, 0),
        );
        // Nothing for the safety net in this run.
        w.markers
            .insert("org-sweep-slot".into(), now.div_euclid(SLOT_SECS));
    }
    let (app, spokes) = hub(&world, FakeSpokes::new(&world));
    let schedule = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events",
        "account": HUB, "region": "us-east-1", "detail": {}});
    let result = app.handle(&schedule, None).await.unwrap();
    let sweep = result.sweep.unwrap();
    let org = sweep.organization.unwrap();
    assert_eq!((org.polled, org.still_running), (3, 1));
    assert_eq!(sweep.published, std::slice::from_ref(&failed.export_arn));
    // One session per site: A/us-west-2 and B/us-east-1.
    let asked: HashSet<_> = spokes.asked.lock().unwrap().iter().cloned().collect();
    assert_eq!(
        asked,
        HashSet::from([
            (A.to_string(), "us-west-2".to_string()),
            (B.to_string(), "us-east-1".to_string())
        ])
    );
    {
        let w = world.read().unwrap();
        let event = &w.published[0];
        assert_eq!(event.detail["accountId"], A);
        assert_eq!(event.detail["region"], "us-west-2");
        assert_eq!(event.detail["s3Bucket"], "amzn-s3-demo-bucket");
        // The failure and the completed export are untracked; the running one waits 2 min.
        assert!(!w.in_flight.contains_key(&failed.export_arn));
        assert!(!w.in_flight.contains_key(&done.export_arn));
        assert_eq!(w.in_flight[&running.export_arn], (now + 60, 1));
        assert_eq!(
            w.sweep_states.get(&failed.export_arn),
            Some(&SweepState::Published)
        );
    }
    // The published event is the incident trigger the hub handles in A's account and Region.
    let event = serde_json::json!({"detail-type": "DynamoDB Export Failed",
        "source": "ddb-export-remediator", "account": HUB, "region": "us-east-1",
        "detail": world.read().unwrap().published[0].detail.clone()});
    match crate::intake::parse(&event).unwrap() {
        crate::intake::Trigger::Incident(i) => assert_eq!(
            i.place,
            Some(Place {
                account: A.into(),
                region: "us-west-2".into()
            })
        ),
        other => panic!("{other:?}"),
    }
    // A second run the same minute: nothing due, nothing described or published again.
    let again = app.handle(&schedule, None).await.unwrap().sweep.unwrap();
    assert_eq!(again.describe_calls, 0);
    assert!(again.published.is_empty());
    assert_eq!(world.read().unwrap().published.len(), 1);
}

#[tokio::test]
async fn an_account_whose_role_is_denied_is_retried_later_and_never_stops_the_others() {
    let world = world_with_table();
    let now = now();
    let id = |n: u32| format!("{:014}-{n:08x}", (now - 600) * 1000);
    let in_a = export(A, "us-west-2", &id(1), ExportStatus::Failed);
    let in_b = export(B, "us-west-2", &id(2), ExportStatus::Failed);
    {
        let mut w = world.write().unwrap();
        w.exports = vec![in_a.clone(), in_b.clone()];
        for e in [&in_a, &in_b] {
            w.in_flight.insert(e.export_arn.clone(), (now - 1, 0));
        }
        w.markers
            .insert("org-sweep-slot".into(), now.div_euclid(SLOT_SECS));
    }
    let mut spokes = FakeSpokes::new(&world);
    spokes.denied = vec![A.into()];
    let (app, _) = hub(&world, spokes);
    let sweep = org_sweep(&app, app.ledger.as_deref().unwrap(), None, now)
        .await
        .unwrap();
    assert_eq!(sweep.published, std::slice::from_ref(&in_b.export_arn));
    assert_eq!(sweep.organization.as_ref().unwrap().unreachable, 1);
    assert!(sweep.errors[0].contains(A), "{:?}", sweep.errors);
    // A's export stays tracked, checked again in a minute.
    assert_eq!(
        world.read().unwrap().in_flight[&in_a.export_arn],
        (now + 60, 1)
    );
}

#[test]
fn every_shard_has_one_slot_a_day_and_runs_cover_the_slots_since_the_last() {
    let day = 1_796_000_000 / 86_400 * 86_400;
    // Over 288 consecutive runs each shard is due exactly once.
    let shards: Vec<(String, &str)> = (0..200)
        .flat_map(|i| {
            ["us-east-1", "us-west-2"]
                .into_iter()
                .map(move |r| (format!("{:012}", 100_000_000_000u64 + i), r))
        })
        .collect();
    let mut seen = std::collections::HashMap::new();
    let mut last = Some(day / SLOT_SECS - 1);
    for run in 0..SLOTS {
        let now = day + run * SLOT_SECS + 7;
        let slots = slots_due(last, now).unwrap();
        assert_eq!(slots.clone().count(), 1);
        for (a, r) in &shards {
            if slots.clone().any(|s| s % SLOTS == slot_of(a, r)) {
                *seen.entry((a.clone(), *r)).or_insert(0) += 1;
            }
        }
        // The same slot again: nothing due.
        assert_eq!(slots_due(Some(*slots.end()), now + 10), None);
        last = Some(*slots.end());
    }
    assert_eq!(seen.len(), shards.len());
    assert!(seen.values().all(|n| *n == 1));
    // Spread: no slot holds more than a few of the 400 shards (≈ 1.4 each on average).
    let mut per_slot = vec![0; SLOTS as usize];
    for (a, r) in &shards {
        per_slot[slot_of(a, r) as usize] += 1;
    }
    assert!(*per_slot.iter().max().unwrap() <= 8, "{per_slot:?}");
    // After a gap of an hour, the next run covers the 12 slots it missed; after days, one day.
    assert_eq!(
        slots_due(Some(day / SLOT_SECS), day + 12 * SLOT_SECS)
            .unwrap()
            .count(),
        12
    );
    assert_eq!(slots_due(Some(0), day).unwrap().count(), SLOTS as usize);
    // Back-off: 1, 2, 4 … minutes, at most an hour.
    assert_eq!(
        (0..8).map(backoff).collect::<Vec<_>>(),
        [60, 120, 240, 480, 960, 1920, 3600, 3600]
    );
}

#[tokio::test]
async fn the_safety_net_sweeps_each_due_shard_through_its_spoke_and_moves_the_marker() {
    let world = world_with_table();
    let now = now();
    {
        let mut w = world.write().unwrap();
        w.org_accounts = Some(vec![HUB.into(), A.into(), B.into()]);
        // The last run was a day ago: every shard is due.
        w.markers
            .insert("org-sweep-slot".into(), now.div_euclid(SLOT_SECS) - SLOTS);
    }
    let mut spokes = FakeSpokes::new(&world);
    spokes.denied = vec![B.into()];
    let (app, spokes) = hub(&world, spokes);
    let sweep = org_sweep(&app, app.ledger.as_deref().unwrap(), None, now)
        .await
        .unwrap();
    let org = sweep.organization.unwrap();
    assert_eq!(org.shards_total, 6);
    // B's two shards are unreachable; the hub's us-east-1 is the hub itself (no spoke).
    assert_eq!((org.shards_swept, org.unreachable), (4, 2));
    let asked: HashSet<_> = spokes.asked.lock().unwrap().iter().cloned().collect();
    assert!(!asked.contains(&(HUB.to_string(), "us-east-1".to_string())));
    assert!(asked.contains(&(A.to_string(), "us-west-2".to_string())));
    assert_eq!(
        world.read().unwrap().markers["org-sweep-slot"],
        now.div_euclid(SLOT_SECS)
    );
    // Each swept shard listed its tables once.
    let tables = world.read().unwrap().tables.len();
    assert_eq!(sweep.tables, 4 * tables);
}

#[tokio::test]
async fn a_start_by_the_spoke_role_is_our_own_retry_and_is_tracked_like_any_start() {
    let world = world_with_table();
    let (app, _) = hub(&world, FakeSpokes::new(&world));
    let table = format!("arn:aws:dynamodb:us-west-2:{A}:table/orders");
    let arn = format!("{table}/export/01700000000000-00000001");
    let event = serde_json::json!({"detail-type": "AWS API Call via CloudTrail",
        "source": "aws.dynamodb", "account": A, "region": "us-west-2",
        "detail": {"eventSource": "dynamodb.amazonaws.com", "eventName": "ExportTableToPointInTime",
            "awsRegion": "us-west-2", "recipientAccountId": A,
            "userIdentity": {"type": "AssumedRole",
                "arn": format!("arn:aws:sts::{A}:assumed-role/spoke/ddb-export-remediator-hub"),
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": format!("arn:aws:iam::{A}:role/spoke")}}},
            "requestParameters": {"tableArn": table, "s3Bucket": "amzn-s3-demo-bucket"},
            "responseElements": {"exportDescription": {"exportArn": arn}}}});
    let result = app.handle(&event, None).await.unwrap();
    assert!(
        result.notes.iter().any(|n| n.contains("own retry")),
        "{:?}",
        result.notes
    );
    let w = world.read().unwrap();
    assert!(w.in_flight.contains_key(&arn));
    assert!(
        !w.starts.contains_key(&arn),
        "our own retry is not an exporter's start"
    );
}
