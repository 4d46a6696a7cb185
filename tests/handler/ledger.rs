//! Exactly-once and detection against the emulator: the DynamoDB ledger's conditional writes,
//! the sweep over a thousand exports, lineage and start attribution.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_export_remediator::{aws, Config};
use serde_json::{json, Value};

fn manual(export_arn: &Value) -> Value {
    json!({"exportArn": export_arn, "mode": "apply"})
}

fn sweep_event() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

#[tokio::test]
async fn two_concurrent_deliveries_of_one_failure_start_exactly_one_retry() {
    let seeded = seed("cross-account-no-owner");
    let app = app(ledger_config()).await;
    let event = manual(&seeded["exportArn"]);
    let (a, b) = tokio::join!(invoke(&app, event.clone()), invoke(&app, event.clone()));
    // moto's conditional writes are not atomic across its threads (DynamoDB's are): should both
    // claims win there, the owner-conditional settle lets one write and the other stands down
    // with `LeaseLost`, writing nothing more. Any other error is a failure.
    let answered: Vec<Value> = [a, b]
        .into_iter()
        .filter_map(|r| match r {
            Ok(v) => Some(v),
            Err(d) if d.error_type == "LeaseLost" => None,
            Err(d) => panic!("unexpected error: {d:?}"),
        })
        .collect();
    let statuses: Vec<String> = answered
        .iter()
        .map(|r| r["applied"][0]["status"].as_str().unwrap().to_string())
        .collect();
    let done: Vec<&Value> = answered
        .iter()
        .filter(|r| r["applied"][0]["status"] == "DONE")
        .collect();
    match done.as_slice() {
        // The ledger's claim: one delivery retries, the other is skipped.
        [_] => assert!(
            answered.len() == 1 || statuses.contains(&"SKIPPED".to_string()),
            "{statuses:?}"
        ),
        // moto's conditional writes are not atomic across its threads (DynamoDB's are); should
        // both claims win there, the shared ClientToken still answers with one export.
        [x, y] => assert_eq!(
            x["applied"][0]["result"]["exportArn"],
            y["applied"][0]["result"]["exportArn"]
        ),
        _ => panic!("no delivery retried: {statuses:?}"),
    }
    assert_eq!(
        export_count(seeded["tableArn"].as_str().unwrap()).await,
        2,
        "the original and one retry"
    );

    let late = invoke(&app, event).await.unwrap();
    assert_eq!(late["applied"][0]["status"], "SKIPPED");
    assert!(late["notes"].to_string().contains("RETRIED"), "{late:#}");
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
}

#[tokio::test]
async fn a_retry_that_fails_again_is_not_retried_again() {
    let seeded = seed("cross-account-no-owner");
    let app = app(ledger_config()).await;
    // The bucket now refuses every export, so the retry fails too.
    seed_at(
        &moto().endpoint,
        &[
            "--bucket",
            seeded["bucket"].as_str().unwrap(),
            "--account",
            seeded["bucketAccount"].as_str().unwrap(),
            "fail-bucket",
        ],
    );
    let first = invoke(&app, manual(&seeded["exportArn"])).await.unwrap();
    let retry = first["applied"][0]["result"]["exportArn"].clone();
    assert_eq!(wait_export(retry.as_str().unwrap()).await.0, "FAILED");

    // The ledger knows the retry's lineage: attempt 1 of the original export.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let lineage = ddb
        .get_item()
        .table_name(app.config.ledger_table_name.clone().unwrap())
        .key(
            "pk",
            AttributeValue::S(format!("EXPORT#{}", retry.as_str().unwrap())),
        )
        .key("sk", AttributeValue::S("LINEAGE".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("lineage item");
    assert_eq!(lineage["attempt"], AttributeValue::N("1".into()));
    assert_eq!(
        lineage["rootExportArn"],
        AttributeValue::S(seeded["exportArn"].as_str().unwrap().into())
    );

    let second = invoke(&app, manual(&retry)).await.unwrap();
    assert_eq!(second["applied"], json!([]), "{second:#}");
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
}

#[tokio::test]
async fn max_retries_zero_gives_up_at_once() {
    let seeded = seed("cross-account-no-owner");
    let app = app(Config {
        max_retries: 0,
        ..ledger_config()
    })
    .await;
    let result = invoke(&app, manual(&seeded["exportArn"])).await.unwrap();
    assert!(
        result["notes"][0].as_str().unwrap().contains("gave up"),
        "{result:#}"
    );
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 1);
}

#[tokio::test]
async fn a_watched_start_attributes_the_later_failure_to_the_recorded_caller() {
    let seeded = seed("cross-account-no-owner");
    let app = app(ledger_config()).await;
    let mut start: Value =
        serde_json::from_str(include_str!("../../events/cloudtrail-export-started.json")).unwrap();
    start["detail"]["responseElements"]["exportDescription"]["exportArn"] =
        seeded["exportArn"].clone();
    let recorded = invoke(&app, start).await.unwrap();
    assert!(
        recorded["notes"][0].as_str().unwrap().contains("recorded"),
        "{recorded:#}"
    );

    let failure = json!({"detail-type": "DynamoDB Export Failed", "source": "ddb-export-remediator",
                         "detail": {"exportArn": seeded["exportArn"]}});
    let result = invoke(&app, failure).await.unwrap();
    assert_eq!(
        result["incident"]["caller"],
        "arn:aws:iam::111122223333:role/DataPlatformExporter"
    );
}

#[tokio::test]
async fn a_sweep_over_a_thousand_exports_publishes_the_new_failures_once() {
    // Its own emulator: the sweep sees every table of the account.
    let moto = Moto::start();
    let bulk = seed_at(
        &moto.endpoint,
        &[
            "--tables",
            "10",
            "--exports",
            "1000",
            "--failed",
            "5",
            "bulk",
        ],
    );
    let queue = seed_at(&moto.endpoint, &["capture-events"]);
    seed_at(&moto.endpoint, &["--table", "ledger", "ledger"]);
    let config = Config {
        ledger_table_name: Some("ledger".into()),
        ..config()
    };
    let app = aws::build_app(config, &sdk_at(&moto.endpoint).await);

    let first = invoke(&app, sweep_event()).await.unwrap();
    let report = &first["sweep"];
    let mut published: Vec<&str> = report["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    published.sort();
    let mut failed: Vec<&str> = bulk["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(published, failed, "{report:#}");
    assert_eq!(report["exportsListed"], 1000);
    assert_eq!(
        report["describeCalls"], 0,
        "dated by their ids: each failure is described by its remediation, not the sweep"
    );
    let seen = seed_at(
        &moto.endpoint,
        &[
            "--queue",
            queue["queueUrl"].as_str().unwrap(),
            "count-events",
        ],
    );
    assert_eq!(seen["events"], 5, "{seen}");
    assert!(seen["byExport"]
        .as_object()
        .unwrap()
        .values()
        .all(|n| n == 1));

    let second = invoke(&app, sweep_event()).await.unwrap();
    let report = &second["sweep"];
    assert_eq!(report["published"], json!([]));
    assert_eq!(report["describeCalls"], 0);
    // 10 tables (the ledger's own is not swept): one ListExports call each, whatever the
    // history.
    assert_eq!(report["listCalls"], 10, "{report:#}");
    let seen = seed_at(
        &moto.endpoint,
        &[
            "--queue",
            queue["queueUrl"].as_str().unwrap(),
            "count-events",
        ],
    );
    assert_eq!(seen["events"], 0);
}

/// GIVEN a cross-account export without an owner; its retry (attempt 1) fixes the owner but,
/// while it runs, the bucket starts requiring SSE-KMS, so the retry fails with a new cause.
async fn retry_that_fails_with_a_new_cause(
    max_retries: u32,
) -> (Value, Value, ddb_export_remediator::App) {
    let seeded = seed("cross-account-no-owner");
    let (bucket, account) = (
        seeded["bucket"].as_str().unwrap(),
        seeded["bucketAccount"].as_str().unwrap(),
    );
    seed_at(
        &moto().endpoint,
        &[
            "--bucket",
            bucket,
            "--account",
            account,
            "--seconds",
            "5",
            "delay-bucket",
        ],
    );
    let app = app(Config {
        max_retries,
        ..ledger_config()
    })
    .await;
    let first = invoke(&app, manual(&seeded["exportArn"])).await.unwrap();
    assert_eq!(first["applied"][0]["status"], "DONE", "{first:#}");
    seed_at(
        &moto().endpoint,
        &["--bucket", bucket, "--account", account, "require-kms"],
    );
    let retry = first["applied"][0]["result"]["exportArn"].clone();
    assert_eq!(wait_export(retry.as_str().unwrap()).await.0, "FAILED");
    (seeded, retry, app)
}

#[tokio::test]
async fn a_retry_failing_with_a_new_cause_is_retried_again_within_max_retries() {
    let (seeded, retry, app) = retry_that_fails_with_a_new_cause(2).await;
    let second = invoke(&app, manual(&retry)).await.unwrap();
    assert_eq!(
        causes(&second),
        vec![pair("SSE_MISMATCH_REQUIRES_KMS", "CONFIRMED")],
        "{second:#}"
    );
    assert_eq!(second["plan"][0]["attempt"], 2);
    assert_eq!(second["applied"][0]["status"], "DONE");
    let third = second["applied"][0]["result"]["exportArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_export(&third).await, ("COMPLETED".to_string(), None));
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 3);
}

#[tokio::test]
async fn a_retry_that_fails_again_stops_at_max_retries() {
    let (seeded, retry, app) = retry_that_fails_with_a_new_cause(1).await;
    let second = invoke(&app, manual(&retry)).await.unwrap();
    assert_eq!(
        causes(&second),
        vec![pair("SSE_MISMATCH_REQUIRES_KMS", "CONFIRMED")],
        "{second:#}"
    );
    assert_eq!(second["applied"], json!([]));
    assert!(
        second["notes"][0]
            .as_str()
            .unwrap()
            .contains("MAX_RETRIES=1"),
        "{second:#}"
    );
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
}

/// A delivery that died right after its claim (its lease has run out): the sweep finds it in
/// the ledger's open partition (a Query), takes it over with a conditional UpdateItem, retries
/// once, and a resent claim of the dead delivery's own token would still be recognised.
#[tokio::test]
async fn a_claim_whose_delivery_died_is_taken_over_by_the_sweep_and_retried_once() {
    use ddb_export_remediator::ports::{Claim, IncidentStatus, Ledger};
    let seeded = seed("cross-account-no-owner");
    let config = ledger_config();
    let table = config.ledger_table_name.clone().unwrap();
    let app = app(config).await;
    let export_arn = seeded["exportArn"].as_str().unwrap();
    let ledger = aws::DynamoLedger::new(aws_sdk_dynamodb::Client::new(&sdk().await), table);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // The dead delivery listed the incident, then claimed it; its lease is already over.
    ledger
        .list_open(export_arn, now - 90, now - 100)
        .await
        .unwrap();
    let claim = ledger
        .claim(export_arn, "dead", now - 100, 10)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Won { previous: None });
    // Its resend (the SDK's retry after a lost answer) is its own, not "someone else's".
    assert!(matches!(
        ledger.claim(export_arn, "dead", now - 100, 10).await.unwrap(),
        Claim::Won { previous: Some(p) } if p.owner.as_deref() == Some("dead")
    ));
    // A live claim holds off another owner, and the item returned in the error names its owner.
    let live = ledger.claim(export_arn, "dead", now, 300).await.unwrap();
    assert!(matches!(live, Claim::Won { .. }));
    match ledger.claim(export_arn, "other", now, 300).await.unwrap() {
        Claim::Held(r) => assert_eq!(r.owner.as_deref(), Some("dead")),
        won => panic!("{won:?}"),
    }
    assert!(ledger.open_incidents_due(now, 10).await.unwrap().is_empty());
    // The dead delivery's lease ends.
    ledger
        .claim(export_arn, "dead", now - 100, 10)
        .await
        .unwrap();
    assert_eq!(
        ledger.open_incidents_due(now, 10).await.unwrap(),
        [export_arn]
    );
    let swept = invoke(&app, sweep_event()).await.unwrap();
    assert_eq!(swept["sweep"]["takenOver"][0], export_arn, "{swept:#}");
    assert_eq!(
        export_count(seeded["tableArn"].as_str().unwrap()).await,
        2,
        "the original and one retry"
    );
    match ledger.claim(export_arn, "late", now, 300).await.unwrap() {
        Claim::Held(r) => assert_eq!(r.status, IncidentStatus::Retried),
        won => panic!("{won:?}"),
    }
    assert!(ledger
        .open_incidents_due(now + 1000, 10)
        .await
        .unwrap()
        .is_empty());
}
