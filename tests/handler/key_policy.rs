//! PATCH_KEY_POLICY and rollback against the emulator, which enforces the seeded key's policy
//! for exports (tools/moto_server.py): the pipeline role's export fails until the key policy
//! names it.

use crate::helpers::*;
use ddb_export_remediator::Config;
use serde_json::{json, Value};

fn patch_config() -> Config {
    Config {
        key_policy_patch: true,
        ..ledger_config()
    }
}

async fn key_policy(key_arn: &Value) -> String {
    let kms = aws_sdk_kms::Client::new(&sdk().await);
    kms.get_key_policy()
        .key_id(key_arn.as_str().unwrap())
        .policy_name("default")
        .send()
        .await
        .expect("GetKeyPolicy")
        .policy()
        .expect("policy")
        .to_string()
}

async fn put_key_policy(key_arn: &Value, policy: &str) {
    let kms = aws_sdk_kms::Client::new(&sdk().await);
    kms.put_key_policy()
        .key_id(key_arn.as_str().unwrap())
        .policy_name("default")
        .policy(policy)
        .send()
        .await
        .expect("PutKeyPolicy");
}

/// The CloudTrail start event of the seeded export, as the pipeline role made it.
fn started_by_pipeline(seeded: &Value) -> Value {
    let mut start: Value =
        serde_json::from_str(include_str!("../../events/cloudtrail-export-started.json")).unwrap();
    let role = seeded["exporterRoleArn"].clone();
    start["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = role;
    start["detail"]["responseElements"]["exportDescription"]["exportArn"] =
        seeded["exportArn"].clone();
    start
}

/// Starts the seeded export again as the pipeline role; returns its final status.
async fn export_as_pipeline(seeded: &Value) -> String {
    let sts = aws_sdk_sts::Client::new(&sdk().await);
    let c = sts
        .assume_role()
        .role_arn(seeded["exporterRoleArn"].as_str().unwrap())
        .role_session_name("pipeline")
        .send()
        .await
        .expect("AssumeRole")
        .credentials
        .expect("credentials");
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "pipeline",
    );
    let config = sdk()
        .await
        .to_builder()
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build();
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let out = ddb
        .export_table_to_point_in_time()
        .table_arn(seeded["tableArn"].as_str().unwrap())
        .s3_bucket(seeded["bucket"].as_str().unwrap())
        .s3_sse_algorithm(aws_sdk_dynamodb::types::S3SseAlgorithm::Kms)
        .s3_sse_kms_key_id(seeded["keyArn"].as_str().unwrap())
        .send()
        .await
        .expect("ExportTableToPointInTime");
    let arn = out.export_description().unwrap().export_arn().unwrap();
    wait_export(arn).await.0
}

fn failure_event(seeded: &Value) -> Value {
    json!({"detail-type": "DynamoDB Export Failed", "source": "ddb-export-remediator",
           "detail": {"exportArn": seeded["exportArn"]}})
}

fn statuses(result: &Value) -> Vec<(String, String)> {
    result["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn patch_on_adds_the_statement_the_retry_completes_and_rollback_restores_exactly() {
    let seeded = seed("kms-key-policy-denies");
    assert_eq!(seeded["exportStatus"], "FAILED", "{seeded:#}");
    let original = key_policy(&seeded["keyArn"]).await;
    let app = app(patch_config()).await;
    invoke(&app, started_by_pipeline(&seeded)).await.unwrap();

    // WHEN the failure is delivered
    let result = invoke(&app, failure_event(&seeded)).await.unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("KMS_KEY_POLICY_DENIES_EXPORTER", "CONFIRMED")],
        "{result:#}"
    );
    assert_eq!(
        statuses(&result),
        vec![
            ("PATCH_KEY_POLICY".to_string(), "DONE".to_string()),
            ("RETRY_EXPORT".to_string(), "DONE".to_string())
        ],
        "{result:#}"
    );
    // THEN the key policy holds the exporter's statement, and nothing else changed
    let patched = key_policy(&seeded["keyArn"]).await;
    let doc: Value = serde_json::from_str(&patched).unwrap();
    let before: Value = serde_json::from_str(&original).unwrap();
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements[..2], before["Statement"].as_array().unwrap()[..]);
    assert_eq!(statements[2]["Principal"]["AWS"], seeded["exporterRoleArn"]);
    assert_eq!(
        statements[2]["Action"],
        json!(["kms:GenerateDataKey", "kms:Decrypt"])
    );
    let retry = result["applied"][1]["result"]["exportArn"]
        .as_str()
        .unwrap();
    assert_eq!(wait_export(retry).await.0, "COMPLETED");
    // The pipeline's own next export now succeeds too.
    assert_eq!(export_as_pipeline(&seeded).await, "COMPLETED");
    let change_id = result["applied"][0]["result"]["changeId"].clone();
    assert!(change_id.as_str().unwrap().starts_with("kpc-"));

    // A second delivery changes nothing.
    let again = invoke(&app, failure_event(&seeded)).await.unwrap();
    assert!(
        statuses(&again).iter().all(|(_, s)| s == "SKIPPED"),
        "{again:#}"
    );
    assert_eq!(key_policy(&seeded["keyArn"]).await, patched);

    // Rollback restores the policy byte for byte; a second rollback has nothing to do.
    let rollback = json!({"rollback": {"changeId": change_id}});
    let restored = invoke(&app, rollback.clone()).await.unwrap();
    assert_eq!(restored["rollback"]["outcome"], "RESTORED", "{restored:#}");
    assert_eq!(key_policy(&seeded["keyArn"]).await, original);
    assert_eq!(
        export_as_pipeline(&seeded).await,
        "FAILED",
        "the grant is gone again"
    );
    let twice = invoke(&app, rollback).await.unwrap();
    assert_eq!(twice["rollback"]["outcome"], "NOTHING_TO_DO");
}

#[tokio::test]
async fn patch_off_recommends_the_statement_and_leaves_the_policy_byte_identical() {
    let seeded = seed("kms-key-policy-denies");
    let original = key_policy(&seeded["keyArn"]).await;
    let app = app(ledger_config()).await;
    invoke(&app, started_by_pipeline(&seeded)).await.unwrap();
    let result = invoke(&app, failure_event(&seeded)).await.unwrap();
    let statement = &result["findings"][0]["remedy"]["statement"];
    assert_eq!(statement["Principal"]["AWS"], seeded["exporterRoleArn"]);
    assert_eq!(result["applied"], json!([]), "{result:#}");
    assert!(result["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("KEY_POLICY_PATCH=off")));
    assert_eq!(key_policy(&seeded["keyArn"]).await, original);
}

#[tokio::test]
async fn diagnose_and_plan_modes_change_no_key_policy() {
    let seeded = seed("kms-key-policy-denies");
    let original = key_policy(&seeded["keyArn"]).await;
    let app = app(patch_config()).await;
    invoke(&app, started_by_pipeline(&seeded)).await.unwrap();
    for mode in ["diagnose", "plan"] {
        let result = invoke(
            &app,
            json!({"exportArn": seeded["exportArn"], "mode": mode}),
        )
        .await
        .unwrap();
        assert!(
            statuses(&result).iter().all(|(_, s)| s == "SKIPPED"),
            "{result:#}"
        );
        assert_eq!(
            mode == "plan",
            result["plan"][0]["action"] == "PATCH_KEY_POLICY"
        );
    }
    assert_eq!(key_policy(&seeded["keyArn"]).await, original);
}

#[tokio::test]
async fn rollback_after_someone_else_changed_the_policy_is_refused_and_changes_nothing() {
    let seeded = seed("kms-key-policy-denies");
    let app = app(patch_config()).await;
    invoke(&app, started_by_pipeline(&seeded)).await.unwrap();
    let result = invoke(&app, failure_event(&seeded)).await.unwrap();
    let change_id = result["applied"][0]["result"]["changeId"].clone();
    assert!(change_id.is_string(), "{result:#}");

    // Someone else edits the key policy after the patch.
    let drifted = key_policy(&seeded["keyArn"])
        .await
        .replace("role/KeyAdmin\"", "role/SecurityTeam\"");
    put_key_policy(&seeded["keyArn"], &drifted).await;
    let refused = invoke(&app, json!({"rollback": {"changeId": change_id}}))
        .await
        .unwrap();
    assert_eq!(
        refused["rollback"]["outcome"], "REFUSED_DRIFT",
        "{refused:#}"
    );
    assert_eq!(key_policy(&seeded["keyArn"]).await, drifted);
}

#[tokio::test]
async fn an_unknown_change_id_is_a_typed_error() {
    let app = app(patch_config()).await;
    let err = invoke(
        &app,
        json!({"rollback": {"changeId": "kpc-000000000000000000000000"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "ChangeNotFound");
}
