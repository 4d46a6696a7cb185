use crate::helpers::*;
use ddb_export_remediator::model::Mode;
use ddb_export_remediator::Config;
use serde_json::{json, Value};

fn manual(seeded: &Value, mode: &str) -> Value {
    json!({"exportArn": seeded["exportArn"], "mode": mode})
}

fn retried_arn(result: &Value) -> String {
    assert_eq!(result["applied"][0]["action"], "RETRY_EXPORT", "{result:#}");
    assert_eq!(result["applied"][0]["status"], "DONE", "{result:#}");
    result["applied"][0]["result"]["exportArn"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn cross_account_export_without_owner_is_diagnosed_and_the_retry_completes() {
    let seeded = seed("cross-account-no-owner");
    assert_eq!(seeded["exportStatus"], "FAILED");
    let app = app(config()).await;
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();

    assert_eq!(
        causes(&result),
        vec![pair("BUCKET_OWNER_MISSING", "CONFIRMED")],
        "{result:#}"
    );
    let owner = seeded["bucketAccount"].as_str().unwrap();
    assert_eq!(result["plan"][0]["params"]["S3BucketOwner"], owner);
    assert_eq!(result["plan"][0]["params"]["S3Prefix"], "exports");
    let command = result["findings"][0]["remedy"]["command"].as_str().unwrap();
    assert!(
        command.contains(&format!("--s3-bucket-owner {owner}")),
        "{command}"
    );

    let retry = retried_arn(&result);
    assert_ne!(retry, seeded["exportArn"].as_str().unwrap());
    assert_eq!(wait_export(&retry).await, ("COMPLETED".to_string(), None));
}

#[tokio::test]
async fn duplicate_delivery_starts_no_second_export() {
    let seeded = seed("cross-account-no-owner");
    let app = app(config()).await;
    let first = retried_arn(&invoke(&app, manual(&seeded, "apply")).await.unwrap());
    let second = retried_arn(&invoke(&app, manual(&seeded, "apply")).await.unwrap());
    assert_eq!(
        first, second,
        "the deterministic ClientToken returns the first export"
    );
}

#[tokio::test]
async fn bucket_policy_requiring_kms_is_retried_with_the_default_key() {
    let seeded = seed("sse-kms-required");
    let app = app(config()).await;
    let event = json!({
        "detail-type": "DynamoDB Export Failed", "source": "ddb-export-remediator",
        "detail": {"exportArn": seeded["exportArn"], "failureCode": seeded["failureCode"], "failureMessage": seeded["failureMessage"]}
    });
    let result = invoke(&app, event).await.unwrap();
    assert_eq!(result["incident"]["source"], "event");
    assert_eq!(
        causes(&result),
        vec![pair("SSE_MISMATCH_REQUIRES_KMS", "CONFIRMED")],
        "{result:#}"
    );
    let key = seeded["keyArn"].as_str().unwrap();
    assert_eq!(
        result["plan"][0]["params"]["S3SseAlgorithm"], "KMS",
        "{result:#}"
    );
    assert_eq!(result["plan"][0]["params"]["S3SseKmsKeyId"], key);
    let evidence = result["findings"][0]["evidence"].to_string();
    assert!(
        evidence.contains("DenyNonKmsUploads") && !evidence.contains("DenyInsecureTransport"),
        "{evidence}"
    );
    assert_eq!(
        wait_export(&retried_arn(&result)).await,
        ("COMPLETED".to_string(), None)
    );
}

#[tokio::test]
async fn missing_bucket_is_reported_and_not_retried() {
    let seeded = seed("bucket-missing");
    assert_eq!(seeded["failureCode"], "S3NoSuchBucket");
    let app = app(config()).await;
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("BUCKET_NOT_FOUND", "CONFIRMED")],
        "{result:#}"
    );
    assert_eq!(result["plan"], json!([]));
    assert_eq!(result["applied"], json!([]));
}

#[tokio::test]
async fn completed_export_is_healthy() {
    let seeded = seed("same-account-ok");
    assert_eq!(seeded["exportStatus"], "COMPLETED");
    let app = app(config()).await;
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();
    assert_eq!(causes(&result), vec![]);
    assert!(
        result["notes"].to_string().contains("healthy"),
        "{result:#}"
    );
}

#[tokio::test]
async fn cloudtrail_pitr_failure_is_confirmed_from_the_event_and_the_table() {
    let seeded = seed("pitr-disabled");
    assert_eq!(
        seeded["startError"],
        "PointInTimeRecoveryUnavailableException"
    );
    let event = json!({
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.dynamodb",
        "detail": {"eventName": "ExportTableToPointInTime", "errorCode": "PointInTimeRecoveryUnavailableException",
                   "userIdentity": {"arn": "arn:aws:iam::123456789012:user/data-engineer"},
                   "requestParameters": {"tableArn": seeded["tableArn"], "s3Bucket": seeded["bucket"], "s3Prefix": "exports"}}
    });
    let result = invoke(&app(config()).await, event).await.unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("PITR_DISABLED", "CONFIRMED")],
        "{result:#}"
    );
    assert_eq!(
        result["findings"][0]["evidence"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        result["incident"]["caller"],
        "arn:aws:iam::123456789012:user/data-engineer"
    );
    assert_eq!(result["applied"], json!([]));
}

#[tokio::test]
async fn plan_mode_deployment_changes_nothing() {
    let seeded = seed("cross-account-no-owner");
    let app = app(Config {
        mode: Mode::Plan,
        ..config()
    })
    .await;
    let result = invoke(&app, manual(&seeded, "apply")).await.unwrap();
    assert_eq!(result["mode"], "plan");
    assert_eq!(result["applied"][0]["status"], "SKIPPED");
    let listed = export_count(seeded["tableArn"].as_str().unwrap()).await;
    assert_eq!(listed, 1, "only the original export exists");
}

#[tokio::test]
async fn unknown_export_is_an_export_not_found_diagnostic() {
    let app = app(config()).await;
    let err = invoke(&app, json!({"exportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/nope-table/export/01795508400000-9f8e7d6c"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "ExportNotFound");
}

#[tokio::test]
async fn malformed_event_is_an_invalid_event_diagnostic() {
    let app = app(config()).await;
    let err = invoke(&app, json!({"exportArn": 42})).await.unwrap_err();
    assert_eq!(err.error_type, "InvalidEvent");
}

#[tokio::test]
async fn sweep_lists_the_accounts_failed_exports() {
    let seeded = seed("bucket-missing");
    let result = invoke(
        &app(config()).await,
        json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
    )
    .await
    .unwrap();
    let failed = result["sweep"]["failedExports"].as_array().unwrap();
    assert!(failed.contains(&seeded["exportArn"]), "{result:#}");
    assert!(result["sweep"]["listCalls"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn two_accounts_a_bucket_policy_without_the_grant_is_confirmed_through_the_member_role() {
    let seeded = seed("cross-account-no-grant");
    assert_eq!(seeded["failureCode"], "S3AccessDenied", "{seeded}");
    let result = invoke(&app(config()).await, manual(&seeded, "apply"))
        .await
        .unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("BUCKET_POLICY_MISSING_GRANT", "CONFIRMED")],
        "{result:#}"
    );
    let statement = &result["findings"][0]["remedy"]["statement"];
    assert_eq!(
        statement["Principal"]["AWS"],
        format!(
            "arn:aws:iam::{}:root",
            seeded["tableAccount"].as_str().unwrap()
        )
    );
    assert_eq!(
        result["applied"],
        json!([]),
        "a grant is the bucket owner's to add; no retry"
    );
}

#[tokio::test]
async fn a_key_policy_that_leaves_the_exporter_out_is_confirmed_from_the_key_policy() {
    let seeded = seed("kms-key-policy-denies");
    let result = invoke(&app(config()).await, manual(&seeded, "apply"))
        .await
        .unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("KMS_KEY_POLICY_DENIES_EXPORTER", "CONFIRMED")],
        "{result:#}"
    );
    assert_eq!(result["applied"], json!([]));
}

#[tokio::test]
async fn a_role_that_may_not_write_to_s3_is_confirmed_from_its_iam_policies() {
    let seeded = seed("caller-lacks-s3");
    let result = invoke(&app(config()).await, manual(&seeded, "apply"))
        .await
        .unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("CALLER_MISSING_S3_PERMISSION", "CONFIRMED")],
        "{result:#}"
    );
    let statement = &result["findings"][0]["remedy"]["statement"];
    assert_eq!(statement["Action"][0], "s3:PutObject");
    assert!(result["findings"][0]["summary"]
        .as_str()
        .unwrap()
        .contains(seeded["roleArn"].as_str().unwrap()));
}
