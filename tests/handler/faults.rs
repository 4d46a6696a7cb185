//! Fault injection: the function talks to the emulator through tools/latency_proxy.py, which
//! answers chosen calls with throttling, 5xx or a reset connection. The function retries with
//! backoff (the SDK's standard mode), leaves no change half-applied, and loses no incident: the
//! ledger holds it PENDING (or CLAIMED with its token) and the next delivery finishes it.

use crate::helpers::*;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A fault-injecting proxy in front of the shared emulator; stopped when dropped.
struct Proxy {
    endpoint: String,
    child: Child,
}

impl Proxy {
    fn start() -> Proxy {
        let mut child = Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tools/latency_proxy.py"
            ))
            .args(["--upstream", &moto().endpoint, "--delay-ms", "0"])
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("proxy ready line");
        let endpoint = line
            .strip_prefix("PROXY_READY ")
            .unwrap_or_else(|| panic!("proxy said {line:?}"))
            .trim()
            .to_string();
        Proxy { endpoint, child }
    }

    fn admin(&self, method: &str, body: &str) -> Value {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect to the proxy");
        write!(
            s,
            "{method} /__faults HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).expect("proxy admin JSON")
    }

    fn inject(&self, rules: Value) {
        self.admin("POST", &rules.to_string());
    }

    /// Faults injected so far, over every rule.
    fn injected(&self) -> u64 {
        self.admin("GET", "")
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["injected"].as_u64().unwrap_or(0))
            .sum()
    }

    async fn app(&self, config: Config) -> App {
        aws::build_app(config, &sdk_at(&self.endpoint).await)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manual(seeded: &Value) -> Value {
    json!({"exportArn": seeded["exportArn"], "mode": "apply"})
}

async fn incident_status(config: &Config, export_arn: &Value) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let item = ddb
        .get_item()
        .table_name(config.ledger_table_name.clone().unwrap())
        .key(
            "pk",
            AttributeValue::S(format!("EXPORT#{}", export_arn.as_str().unwrap())),
        )
        .key("sk", AttributeValue::S("INCIDENT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("incident item");
    item["status"].as_s().unwrap().clone()
}

#[tokio::test]
async fn a_throttled_export_call_is_retried_with_backoff_and_starts_one_retry() {
    let seeded = seed("cross-account-no-owner");
    let proxy = Proxy::start();
    proxy.inject(json!([{"match": "ExportTableToPointInTime", "kind": "throttle", "count": 2}]));
    let app = proxy.app(ledger_config()).await;
    let result = invoke(&app, manual(&seeded)).await.unwrap();
    assert_eq!(result["applied"][0]["status"], "DONE", "{result:#}");
    assert_eq!(proxy.injected(), 2);
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
}

#[tokio::test]
async fn an_export_call_that_keeps_failing_stays_pending_and_the_next_delivery_finishes_it() {
    let seeded = seed("cross-account-no-owner");
    let proxy = Proxy::start();
    proxy.inject(json!([{"match": "ExportTableToPointInTime", "kind": "503", "count": 100}]));
    let config = ledger_config();
    let app = proxy.app(config.clone()).await;
    let failed = invoke(&app, manual(&seeded)).await.unwrap();
    assert_eq!(failed["applied"][0]["status"], "FAILED", "{failed:#}");
    assert_eq!(failed["applied"][0]["result"]["retryable"], true);
    assert!(proxy.injected() >= 3, "the SDK tried more than once");
    assert_eq!(
        incident_status(&config, &seeded["exportArn"]).await,
        "PENDING"
    );
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 1);

    proxy.inject(json!([]));
    let done = invoke(&app, manual(&seeded)).await.unwrap();
    assert_eq!(done["applied"][0]["status"], "DONE", "{done:#}");
    assert_eq!(
        incident_status(&config, &seeded["exportArn"]).await,
        "RETRIED"
    );
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
}

#[tokio::test]
async fn a_key_policy_write_on_a_reset_connection_changes_nothing_and_is_finished_later() {
    let seeded = seed("kms-key-policy-denies");
    let proxy = Proxy::start();
    let config = Config {
        key_policy_patch: true,
        ..ledger_config()
    };
    let app = proxy.app(config.clone()).await;
    let mut start: Value =
        serde_json::from_str(include_str!("../../events/cloudtrail-export-started.json")).unwrap();
    start["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        seeded["exporterRoleArn"].clone();
    start["detail"]["responseElements"]["exportDescription"]["exportArn"] =
        seeded["exportArn"].clone();
    invoke(&app, start).await.unwrap();
    let kms = aws_sdk_kms::Client::new(&sdk().await);
    let policy = || async {
        kms.get_key_policy()
            .key_id(seeded["keyArn"].as_str().unwrap())
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
    };
    let before = policy().await;

    proxy.inject(json!([{"match": "PutKeyPolicy", "kind": "reset", "count": 100}]));
    let failed = invoke(&app, manual(&seeded)).await.unwrap();
    let statuses: Vec<_> = failed["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["FAILED", "SKIPPED"], "{failed:#}");
    assert_eq!(policy().await, before, "nothing half-applied");
    assert_eq!(
        incident_status(&config, &seeded["exportArn"]).await,
        "PENDING"
    );
    assert!(proxy.injected() >= 3);

    proxy.inject(json!([]));
    let done = invoke(&app, manual(&seeded)).await.unwrap();
    let statuses: Vec<_> = done["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["DONE", "DONE"], "{done:#}");
    assert_ne!(policy().await, before);
}

#[tokio::test]
async fn a_ledger_write_lost_after_the_retry_started_is_finished_without_a_second_export() {
    let seeded = seed("cross-account-no-owner");
    let proxy = Proxy::start();
    let config = ledger_config();
    let app = proxy.app(config.clone()).await;
    // PutItem 1 claims the incident, 2 stores the token and time; from the 3rd (the retry's
    // lineage) on, the ledger answers 500.
    proxy.inject(json!([{"match": "PutItem", "kind": "500", "after": 2, "count": 100}]));
    let err = invoke(&app, manual(&seeded)).await.unwrap_err();
    assert_eq!(err.error_type, "UpstreamError");
    assert_eq!(export_count(seeded["tableArn"].as_str().unwrap()).await, 2);
    assert_eq!(
        incident_status(&config, &seeded["exportArn"]).await,
        "CLAIMED"
    );

    // The claim's lease runs out (simulated), and the event is delivered again.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    ddb.update_item()
        .table_name(config.ledger_table_name.clone().unwrap())
        .key(
            "pk",
            AttributeValue::S(format!("EXPORT#{}", seeded["exportArn"].as_str().unwrap())),
        )
        .key("sk", AttributeValue::S("INCIDENT".into()))
        .update_expression("SET leaseUntil = :zero")
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    proxy.inject(json!([]));
    let done = invoke(&app, manual(&seeded)).await.unwrap();
    assert_eq!(done["applied"][0]["status"], "DONE", "{done:#}");
    assert_eq!(
        export_count(seeded["tableArn"].as_str().unwrap()).await,
        2,
        "the stored ClientToken returned the first retry"
    );
    assert_eq!(
        incident_status(&config, &seeded["exportArn"]).await,
        "RETRIED"
    );
}

#[tokio::test]
async fn a_throttled_listing_does_not_stop_the_sweep() {
    let seeded = seed("cross-account-no-owner");
    let proxy = Proxy::start();
    proxy.inject(json!([{"match": "ListExports", "kind": "throttle", "count": 2}]));
    let app = proxy.app(ledger_config()).await;
    let sweep = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let result = invoke(&app, sweep).await.unwrap();
    let published = result["sweep"]["published"].as_array().unwrap();
    assert!(
        published.contains(&seeded["exportArn"]),
        "{:#}",
        result["sweep"]
    );
    assert_eq!(proxy.injected(), 2);
}
