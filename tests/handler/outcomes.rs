//! Every incident ends with one outcome, on the emulator: a retry the function started is
//! followed until DescribeExport says COMPLETED (RESOLVED), retries that keep failing end
//! GAVE_UP with each cause, and diagnose mode ends NEEDS_PERSON. Each outcome is captured from
//! the default bus by a rule on the top-level `outcome` field (the report topic's rule matches
//! the same field), so "exactly one" is what EventBridge delivered, not what we meant to send.
//!
//! What the emulator cannot show: how long a real export runs (moto's finish in a moment, and
//! the test moves the poller's next check to now instead of waiting the minute of back-off),
//! and EventBridge's at-least-once delivery (each delivery is invoked here by hand).

use crate::helpers::*;
use crate::runtime::run_logged;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_export_remediator::aws;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn schedule() -> Value {
    json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
}

/// The outcome events the capture rule received since the last call.
fn captured(endpoint: &str, queue: &Value) -> Vec<Value> {
    let read = seed_at(
        endpoint,
        &[
            "--queue",
            queue["queueUrl"].as_str().unwrap(),
            "read-events",
        ],
    );
    read["details"].as_array().cloned().unwrap_or_default()
}

async fn wait_at(endpoint: &str, export_arn: &str) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk_at(endpoint).await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = ddb
            .describe_export()
            .export_arn(export_arn)
            .send()
            .await
            .expect("DescribeExport");
        let status = d
            .export_description()
            .and_then(|d| d.export_status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        if status != "IN_PROGRESS" || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The minute of back-off has passed: the retry's next check is due (the in-flight row).
async fn due_now(endpoint: &str, ledger: &str, export_arn: &str) {
    aws_sdk_dynamodb::Client::new(&sdk_at(endpoint).await)
        .update_item()
        .table_name(ledger)
        .key("pk", AttributeValue::S("INFLIGHT".into()))
        .key("sk", AttributeValue::S(export_arn.into()))
        .update_expression("SET nextCheckAt = :zero")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .expect("UpdateItem");
}

/// The released binary, as Lambda runs it, against `endpoint` with the ledger `ledger`.
fn run_binary(endpoint: &str, ledger: &str, event: Value, extra: &[(&str, &str)]) -> Value {
    let mut env = vec![
        ("AWS_ENDPOINT_URL", endpoint),
        ("LEDGER_TABLE_NAME", ledger),
    ];
    env.extend_from_slice(extra);
    let ((kind, body), logs) = run_logged(event, &env);
    assert_eq!(kind, "response", "{body:#}\n{logs}");
    body
}

#[test]
fn a_cross_account_retry_that_completes_gives_exactly_one_resolved_after_the_next_schedule() {
    // Its own emulator: the sweep sees every table of the account, and the capture rule every
    // outcome on the bus.
    let moto = Moto::start();
    let endpoint = moto.endpoint.as_str();
    let seeded = seed_at(endpoint, &["cross-account-no-owner"]);
    seed_at(endpoint, &["--table", "ledger", "ledger"]);
    let queue = seed_at(endpoint, &["capture-outcomes"]);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // WHEN the failure is delivered: the function retries with the owner it found
    let first = run_binary(
        endpoint,
        "ledger",
        json!({"exportArn": seeded["exportArn"]}),
        &[],
    );
    assert_eq!(first["applied"][0]["status"], "DONE", "{first:#}");
    assert!(
        first.get("outcome").is_none(),
        "a running retry leaves it open"
    );
    let retry = first["applied"][0]["result"]["exportArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rt.block_on(wait_at(endpoint, &retry)), "COMPLETED");
    assert_eq!(captured(endpoint, &queue), Vec::<Value>::new());

    // AND the schedule runs after the back-off, then again
    rt.block_on(due_now(endpoint, "ledger", &retry));
    let swept = run_binary(endpoint, "ledger", schedule(), &[]);
    assert_eq!(
        swept["sweep"]["outcomes"][0]["outcome"], "RESOLVED",
        "{swept:#}"
    );
    let again = run_binary(endpoint, "ledger", schedule(), &[]);
    assert!(again["sweep"].get("outcomes").is_none(), "{again:#}");

    // THEN exactly one RESOLVED event reached the bus, naming the completed retry
    let events = captured(endpoint, &queue);
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["outcome"], "RESOLVED");
    let verdict = &event["outcomeDetail"]["verdict"];
    assert_eq!(verdict["exportArn"], retry.as_str());
    assert!(verdict["itemCount"].as_i64().is_some(), "{event:#}");
    assert!(verdict["secondsToResolution"]
        .as_i64()
        .is_some_and(|s| s >= 0));
    assert_eq!(verdict["causes"], json!(["BUCKET_OWNER_MISSING"]));
    assert!(event["headline"]
        .as_str()
        .is_some_and(|h| h.starts_with("Resolved:") && h.contains("COMPLETED")));
    eprintln!(
        "RESOLVED message:\n{}\n\n{}",
        event["headline"].as_str().unwrap_or(""),
        event["text"].as_str().unwrap_or("")
    );

    // AND the operator's view lists it, and tells its story with each retry's status
    let listed = doctor_at(
        endpoint,
        &["incidents", "--ledger-table", "ledger", "--output", "json"],
    );
    assert_eq!(listed["counts"]["RESOLVED"], 1, "{listed:#}");
    assert_eq!(listed["incidents"][0]["rootExportArn"], seeded["exportArn"]);
    let story = doctor_at(
        endpoint,
        &[
            "incidents",
            "--ledger-table",
            "ledger",
            "--output",
            "json",
            "show",
            &retry,
        ],
    );
    assert_eq!(story["outcome"], "RESOLVED", "{story:#}");
    assert_eq!(story["rootExportArn"], seeded["exportArn"]);
    assert_eq!(story["attempts"][0]["status"], "COMPLETED", "{story:#}");
}

/// `ddb-export-doctor` against `endpoint`, its JSON output.
fn doctor_at(endpoint: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export-doctor"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run ddb-export-doctor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

#[tokio::test]
async fn retries_that_fail_again_give_up_with_each_cause_once() {
    let moto = Moto::start();
    let endpoint = moto.endpoint.as_str();
    let seeded = seed_at(endpoint, &["cross-account-no-owner"]);
    seed_at(endpoint, &["--table", "ledger", "ledger"]);
    let queue = seed_at(endpoint, &["capture-outcomes"]);
    let (bucket, account) = (
        seeded["bucket"].as_str().unwrap(),
        seeded["bucketAccount"].as_str().unwrap(),
    );
    // GIVEN the retry (owner fixed) meets a bucket that starts requiring SSE-KMS while it runs
    seed_at(
        endpoint,
        &[
            "--bucket",
            bucket,
            "--account",
            account,
            "--seconds",
            "3",
            "delay-bucket",
        ],
    );
    let app = aws::build_app(
        ddb_export_remediator::Config {
            ledger_table_name: Some("ledger".into()),
            max_retries: 1,
            ..config()
        },
        &sdk_at(endpoint).await,
    );
    let first = invoke(&app, json!({"exportArn": seeded["exportArn"]}))
        .await
        .unwrap();
    assert_eq!(first["applied"][0]["status"], "DONE", "{first:#}");
    seed_at(
        endpoint,
        &["--bucket", bucket, "--account", account, "require-kms"],
    );
    let retry = first["applied"][0]["result"]["exportArn"].clone();
    assert_eq!(wait_at(endpoint, retry.as_str().unwrap()).await, "FAILED");
    // WHEN the retry's failure is delivered twice (MAX_RETRIES=1: no second retry)
    let second = invoke(&app, json!({"exportArn": retry})).await.unwrap();
    invoke(&app, json!({"exportArn": retry})).await.unwrap();
    // AND the schedule runs
    invoke(&app, schedule()).await.unwrap();
    // THEN one GAVE_UP, with the original failure's cause and the retry's
    assert_eq!(second["outcome"], "GAVE_UP", "{second:#}");
    let events = captured(endpoint, &queue);
    assert_eq!(events.len(), 1, "{events:#?}");
    let verdict = &events[0]["outcomeDetail"]["verdict"];
    assert_eq!(verdict["reason"], "MAX_RETRIES");
    let causes: Vec<Value> = verdict["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["causes"].clone())
        .collect();
    assert_eq!(
        causes,
        vec![
            json!(["BUCKET_OWNER_MISSING"]),
            json!(["SSE_MISMATCH_REQUIRES_KMS"])
        ],
        "{verdict:#}"
    );
    assert_eq!(
        events[0]["outcomeDetail"]["subject"]["rootExportArn"],
        seeded["exportArn"]
    );
    eprintln!(
        "GAVE_UP message:\n{}\n\n{}",
        events[0]["headline"].as_str().unwrap_or(""),
        events[0]["text"].as_str().unwrap_or("")
    );
}

#[test]
fn a_diagnose_mode_incident_needs_a_person_through_the_binary() {
    let moto = Moto::start();
    let endpoint = moto.endpoint.as_str();
    let seeded = seed_at(endpoint, &["cross-account-no-owner"]);
    seed_at(endpoint, &["--table", "ledger", "ledger"]);
    let queue = seed_at(endpoint, &["capture-outcomes"]);
    let event = json!({"exportArn": seeded["exportArn"]});
    let result = run_binary(endpoint, "ledger", event.clone(), &[("MODE", "diagnose")]);
    run_binary(endpoint, "ledger", event, &[("MODE", "diagnose")]);
    assert_eq!(result["outcome"], "NEEDS_PERSON", "{result:#}");
    let events = captured(endpoint, &queue);
    assert_eq!(
        events.len(),
        1,
        "a duplicate delivery publishes no second outcome"
    );
    let verdict = &events[0]["outcomeDetail"]["verdict"];
    assert_eq!(verdict["reason"], "READ_ONLY_MODE");
    assert_eq!(verdict["wouldApply"][0]["action"], "RETRY_EXPORT");
    assert!(verdict["command"]
        .as_str()
        .is_some_and(|c| c.contains("--s3-bucket-owner")));
}
