//! Organization mode end to end on the emulator (issue 19): a hub, two members in one OU with
//! both spoke StackSets deployed in us-east-1 and us-west-2; a failure in member A, us-west-2,
//! reaches the hub bus, and the hub function diagnoses and retries it there through the spoke
//! role. moto checks no trust policy (any role can be assumed): this shows the routing (the
//! right account and Region get the calls), not that AWS would admit the hub.

use crate::helpers::*;
use aws_config::Region;
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};

/// The hub function: the emulator's default account, ORG_MODE=on, the spoke role's name.
async fn hub_app(seeded: &Value) -> App {
    let buckets = seeded["exportBuckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    let config = Config {
        hub_account_id: Some(seeded["hubAccount"].as_str().unwrap().into()),
        member_role_name: Some(seeded["memberRoleName"].as_str().unwrap().into()),
        export_buckets: Some(ddb_export_remediator::config::Scope::Only(buckets)),
        ..ledger_config()
    };
    aws::build_app(config, &sdk().await)
}

/// The event that reached the hub with this detail-type.
fn received<'a>(seeded: &'a Value, detail_type: &str) -> &'a Value {
    seeded["hubEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["detail-type"] == detail_type)
        .unwrap_or_else(|| panic!("no {detail_type} on the hub bus: {seeded:#}"))
}

/// ListExports of a table in member A, us-west-2, as A (through the Organizations role).
async fn exports_in_a(seeded: &Value, table_arn: &str) -> Vec<(String, String)> {
    let sts = aws_sdk_sts::Client::new(&sdk().await);
    let a = seeded["memberA"].as_str().unwrap();
    let c = sts
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{a}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("check")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let creds = aws_credential_types::Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        None,
        "a",
    );
    let config = sdk()
        .await
        .to_builder()
        .region(Region::new("us-west-2"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build();
    let out = aws_sdk_dynamodb::Client::new(&config)
        .list_exports()
        .table_arn(table_arn)
        .send()
        .await
        .unwrap();
    out.export_summaries()
        .iter()
        .map(|e| {
            (
                e.export_arn().unwrap_or_default().to_string(),
                e.export_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_failure_in_member_a_us_west_2_is_diagnosed_and_retried_there_through_the_spoke_role() {
    let seeded = seed("org-incident");
    assert_eq!(seeded["exportStatus"], "FAILED", "{seeded:#}");
    let (a, b) = (
        seeded["memberA"].as_str().unwrap(),
        seeded["memberB"].as_str().unwrap(),
    );
    let role = format!(
        "arn:aws:iam::{a}:role/{}",
        seeded["memberRoleName"].as_str().unwrap()
    );
    // GIVEN the DynamoDB Export Failed event as the hub bus received it from A, us-west-2
    let event = received(&seeded, "DynamoDB Export Failed");
    assert_eq!(event["detail"]["accountId"], a);
    let app = hub_app(&seeded).await;
    // WHEN the hub function is invoked with it
    let result = invoke(&app, event.clone()).await.unwrap();
    // THEN the report names A, us-west-2 and the spoke role it went through
    let incident = &result["incident"];
    assert_eq!(incident["account"], a, "{result:#}");
    assert_eq!(incident["region"], "us-west-2");
    assert_eq!(incident["spoke"], json!({"roleArn": role, "assumed": true}));
    // AND the diagnosis read the export in A (under the hub's own credentials it does not
    // exist: the export ARN is A's) and found the missing bucket owner, B
    let owner = result["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "BUCKET_OWNER_MISSING")
        .unwrap_or_else(|| panic!("{result:#}"));
    assert!(owner["summary"].as_str().unwrap().contains(b), "{owner:#}");
    // AND the retry ran in A, us-west-2, with --s3-bucket-owner B, and completed there
    let retry = &result["applied"][0];
    assert_eq!(retry["action"], "RETRY_EXPORT", "{result:#}");
    assert_eq!(retry["status"], "DONE", "{result:#}");
    let new_arn = retry["result"]["exportArn"].as_str().unwrap();
    assert!(
        new_arn.starts_with(&format!("arn:aws:dynamodb:us-west-2:{a}:table/")),
        "{new_arn}"
    );
    let table = seeded["tableArn"].as_str().unwrap();
    let exports = exports_in_a(&seeded, table).await;
    assert_eq!(exports.len(), 2, "{exports:?}");
    let mut status = String::new();
    for _ in 0..100 {
        status = exports_in_a(&seeded, table)
            .await
            .into_iter()
            .find(|(arn, _)| arn == new_arn)
            .map(|(_, s)| s)
            .unwrap_or_default();
        if status != "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "COMPLETED", "{exports:?}");
}

#[tokio::test]
async fn a_recorded_cloudtrail_error_in_member_a_is_diagnosed_there_through_the_spoke_role() {
    let seeded = seed("org-incident");
    let a = seeded["memberA"].as_str().unwrap();
    // GIVEN the CloudTrail error event (PITR off) as the hub bus received it from A, us-west-2
    let event = received(&seeded, "AWS API Call via CloudTrail");
    assert_eq!(event["detail"]["recipientAccountId"], a);
    let app = hub_app(&seeded).await;
    let result = invoke(&app, event.clone()).await.unwrap();
    // THEN the report names A and us-west-2, and the diagnosis read A's table there: PITR off,
    // confirmed by DescribeContinuousBackups (the hub's own account has no such table)
    let incident = &result["incident"];
    assert_eq!(incident["account"], a, "{result:#}");
    assert_eq!(incident["region"], "us-west-2");
    assert_eq!(incident["spoke"]["assumed"], true);
    assert_eq!(incident["caller"], seeded["pipelineRole"]);
    let finding = |cause: &str| {
        result["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["cause"] == cause)
            .cloned()
    };
    let pitr = finding("PITR_DISABLED").unwrap_or_else(|| panic!("{result:#}"));
    assert_eq!(pitr["confidence"], "CONFIRMED", "{result:#}");
    assert!(
        finding("TABLE_NOT_FOUND").is_none(),
        "the table was looked up in the wrong account: {result:#}"
    );
    // The request also named member B's bucket without --s3-bucket-owner: found through the
    // spoke role in B, with clients in us-west-2.
    let owner = finding("BUCKET_OWNER_MISSING").unwrap_or_else(|| panic!("{result:#}"));
    let b = seeded["memberB"].as_str().unwrap();
    assert!(owner["summary"].as_str().unwrap().contains(b), "{owner:#}");
    assert!(finding("SCP_DENIES_S3_OR_KMS").is_none(), "{result:#}");
    // Nothing to retry: PITR is the table owner's decision.
    assert_eq!(result["applied"], json!([]), "{result:#}");
}

#[tokio::test]
async fn the_same_event_without_org_mode_is_refused_as_another_region() {
    let seeded = seed("org-incident");
    let event = received(&seeded, "DynamoDB Export Failed");
    let single = aws::build_app(config(), &sdk().await);
    let err = invoke(&single, event.clone()).await.unwrap_err();
    assert!(
        err.error_message.contains("us-west-2"),
        "{}",
        err.error_message
    );
}
