//! What a real account's first day asks of the function (issue 15), on the emulator: a long
//! history of old failures, a retry that keeps every parameter, a cross-account bucket whose
//! default is the AWS managed key, a completed export in a world that has changed, and the
//! function's write scope. Each AWS behaviour the emulator is patched to show is named where
//! it is used (tools/moto_server.py says how).

use crate::helpers::*;
use ddb_export_remediator::config::Scope;
use ddb_export_remediator::{aws, Config};
use serde_json::{json, Map, Value};

fn manual(seeded: &Value, mode: &str) -> Value {
    json!({"exportArn": seeded["exportArn"], "mode": mode})
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test]
async fn a_new_deployment_publishes_only_failures_inside_the_look_back() {
    // Its own emulator: the sweep sees every table of the account.
    let moto = Moto::start();
    // GIVEN 40 days of history: 12 old failures and 6 old completions, and 2 failures today
    let history = seed_at(&moto.endpoint, &["backdated-history"]);
    seed_at(&moto.endpoint, &["--table", "ledger", "ledger"]);
    let config = Config {
        ledger_table_name: Some("ledger".into()),
        ..config()
    };
    assert_eq!(config.sweep_lookback_hours, 24);
    let app = aws::build_app(config, &sdk_at(&moto.endpoint).await);
    let sweep = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});

    // WHEN the first sweep runs
    let first = invoke(&app, sweep.clone()).await.unwrap();
    let report = &first["sweep"];
    // THEN it publishes today's two and counts the twelve, describing none: every id dates its
    // export (today's are described by the remediations their events trigger)
    assert_eq!(
        strings(&report["published"]),
        strings(&history["recentFailed"]),
        "{report:#}"
    );
    assert_eq!(report["olderThanLookback"], 12, "{report:#}");
    assert_eq!(report["describeCalls"], 0, "failures are dated by their id");
    // AND every later sweep publishes nothing again
    let second = invoke(&app, sweep).await.unwrap();
    assert_eq!(second["sweep"]["published"], json!([]));
    assert_eq!(second["sweep"]["describeCalls"], 0);
    assert_eq!(second["sweep"]["olderThanLookback"], 0);
}

/// The CloudTrail event of the export's start, carrying the seeded request (lowerCamelCase).
fn start_event(seeded: &Value) -> Value {
    // The recorded event, moved into the seeded table's account.
    let text = include_str!("../../events/cloudtrail-export-started.json")
        .replace("111122223333", seeded["tableAccount"].as_str().unwrap());
    let mut event: Value = serde_json::from_str(&text).unwrap();
    let mut params = Map::new();
    for (k, v) in seeded["request"].as_object().unwrap() {
        let mut camel = k.clone();
        camel[..1].make_ascii_lowercase();
        let v = match v.as_object() {
            Some(spec) => Value::Object(
                spec.iter()
                    .map(|(k, v)| {
                        let mut c = k.clone();
                        c[..1].make_ascii_lowercase();
                        (c, v.clone())
                    })
                    .collect(),
            ),
            None => v.clone(),
        };
        params.insert(camel, v);
    }
    let account = seeded["tableAccount"].clone();
    event["account"] = account.clone();
    event["detail"]["recipientAccountId"] = account;
    event["detail"]["requestParameters"] = Value::Object(params);
    event["detail"]["responseElements"]["exportDescription"]["exportArn"] =
        seeded["exportArn"].clone();
    event
}

#[tokio::test]
async fn an_incremental_ion_export_under_a_deep_prefix_is_retried_with_all_of_it() {
    // GIVEN an incremental ION export to another account's bucket without --s3-bucket-owner,
    // whose FAILED description lacks S3Prefix, ExportType and ExportFormat (as AWS's can), and
    // whose start CloudTrail recorded
    let seeded = seed("incremental-ion");
    assert_eq!(seeded["exportStatus"], "FAILED", "{seeded:#}");
    assert_eq!(seeded["describedPrefix"], Value::Null);
    let app = app(ledger_config()).await;
    let recorded = invoke(&app, start_event(&seeded)).await.unwrap();
    assert!(
        recorded["notes"].to_string().contains("start recorded"),
        "{recorded:#}"
    );

    // WHEN the failure is remediated
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("BUCKET_OWNER_MISSING", "CONFIRMED")],
        "{result:#}"
    );
    assert_eq!(result["applied"][0]["status"], "DONE", "{result:#}");
    let retry = result["applied"][0]["result"]["exportArn"]
        .as_str()
        .unwrap()
        .to_string();

    // THEN the retry is the same export but for the owner: prefix, format, type and window
    let ddb = aws_sdk_dynamodb::Client::new(&sdk().await);
    let d = ddb
        .describe_export()
        .export_arn(&retry)
        .send()
        .await
        .unwrap();
    let d = d.export_description().unwrap();
    let asked = &seeded["request"];
    assert_eq!(d.s3_prefix(), asked["S3Prefix"].as_str());
    assert_eq!(d.export_format().map(|f| f.as_str()), Some("ION"));
    assert_eq!(
        d.export_type().map(|t| t.as_str()),
        Some("INCREMENTAL_EXPORT")
    );
    let spec = d.incremental_export_specification().expect("the window");
    let window = &asked["IncrementalExportSpecification"];
    assert_eq!(
        spec.export_from_time().map(|t| t.secs()),
        window["ExportFromTime"].as_i64()
    );
    assert_eq!(
        spec.export_to_time().map(|t| t.secs()),
        window["ExportToTime"].as_i64()
    );
    assert_eq!(
        spec.export_view_type().map(|v| v.as_str()),
        Some("NEW_IMAGE")
    );
    assert_eq!(d.s3_bucket_owner(), seeded["bucketAccount"].as_str());
    assert_eq!(wait_export(&retry).await, ("COMPLETED".to_string(), None));
}

#[tokio::test]
async fn a_cross_account_bucket_defaulting_to_aws_s3_is_retried_with_aes256() {
    // GIVEN an export without SSE flags to another account's bucket whose default encryption is
    // SSE-KMS with the AWS managed key (the emulator fails it as KMS would)
    let seeded = seed("cross-account-aws-s3-default");
    assert_eq!(seeded["exportStatus"], "FAILED", "{seeded:#}");
    let app = app(ledger_config()).await;
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();
    // THEN it is that cause, not UNCLASSIFIED, and the retry with AES256 completes
    assert_eq!(
        causes(&result),
        vec![pair("AWS_MANAGED_KEY_CROSS_ACCOUNT", "LIKELY")],
        "{result:#}"
    );
    assert_eq!(result["plan"][0]["params"]["S3SseAlgorithm"], "AES256");
    assert_eq!(result["applied"][0]["status"], "DONE", "{result:#}");
    let retry = result["applied"][0]["result"]["exportArn"]
        .as_str()
        .unwrap();
    assert_eq!(wait_export(retry).await, ("COMPLETED".to_string(), None));
}

#[tokio::test]
async fn a_completed_export_in_a_world_that_changed_gets_no_failure_cause() {
    // GIVEN an export that completed, after which the bucket began to require SSE-KMS
    let seeded = seed("same-account-ok");
    assert_eq!(seeded["exportStatus"], "COMPLETED");
    let bucket = seeded["bucket"].as_str().unwrap();
    seed_at(&moto().endpoint, &["--bucket", bucket, "require-kms"]);
    let table = seeded["tableArn"].as_str().unwrap();
    let before = export_count(table).await;
    // WHEN it is handled in apply mode
    let result = invoke(&ledger_app().await, manual(&seeded, "apply"))
        .await
        .unwrap();
    // THEN no finding, no retry, and a note of what would fail today
    assert_eq!(result["findings"], json!([]), "{result:#}");
    assert_eq!(result["applied"], json!([]));
    let notes = result["notes"].to_string();
    assert!(
        notes.contains("COMPLETED") && notes.contains("SSE_MISMATCH_REQUIRES_KMS"),
        "{notes}"
    );
    assert_eq!(export_count(table).await, before);
}

async fn ledger_app() -> ddb_export_remediator::App {
    app(ledger_config()).await
}

#[tokio::test]
async fn a_bucket_outside_export_buckets_gets_the_command_and_the_fragment_not_a_retry() {
    let seeded = seed("cross-account-no-owner");
    let bucket = seeded["bucket"].as_str().unwrap().to_string();
    let table = seeded["tableArn"].as_str().unwrap();
    let before = export_count(table).await;
    // GIVEN EXPORT_BUCKETS without the bucket
    let outside = Config {
        export_buckets: Some(Scope::Only(vec!["team-exports".into()])),
        ..config()
    };
    let result = invoke(&app(outside).await, manual(&seeded, "apply"))
        .await
        .unwrap();
    // THEN no retry; the result names the bucket, the parameter and the fragment, and the
    // finding still carries the corrected command
    assert_eq!(result["applied"], json!([]), "{result:#}");
    let gap = &result["outsideWriteScope"][0];
    assert_eq!(gap["parameter"], "ExportBuckets", "{result:#}");
    assert_eq!(gap["value"], bucket.as_str());
    assert_eq!(
        gap["fragment"],
        format!("--parameter-overrides ExportBuckets=\"team-exports,{bucket}\"")
    );
    let owner = seeded["bucketAccount"].as_str().unwrap();
    assert!(result["findings"][0]["remedy"]["command"]
        .as_str()
        .unwrap()
        .contains(&format!("--s3-bucket-owner {owner}")));
    assert_eq!(export_count(table).await, before);

    // WITH the bucket in EXPORT_BUCKETS the same failure is retried
    let inside = Config {
        export_buckets: Some(Scope::Only(vec!["team-exports".into(), bucket.clone()])),
        ..config()
    };
    let result = invoke(&app(inside).await, manual(&seeded, "apply"))
        .await
        .unwrap();
    assert_eq!(result["applied"][0]["status"], "DONE", "{result:#}");
    assert!(result.get("outsideWriteScope").is_none());
    assert_eq!(export_count(table).await, before + 1);
}
