//! The organization scenario: a member account whose OU's SCP denies kms:GenerateDataKey.
//! The function runs as that account and reads the SCPs through ORG_ROLE_ARN.

use crate::helpers::*;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};

/// The function deployed in the seeded member account.
async fn member_app(seeded: &Value, org_role: Option<&str>) -> App {
    let c = &seeded["credentials"];
    let creds = Credentials::new(
        c["accessKeyId"].as_str().unwrap(),
        c["secretAccessKey"].as_str().unwrap(),
        c["sessionToken"].as_str().map(str::to_string),
        None,
        "member",
    );
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto().endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(creds)
        .load()
        .await;
    let config = Config {
        org_role_arn: org_role.map(str::to_string),
        ..config()
    };
    aws::build_app(config, &sdk)
}

#[tokio::test]
async fn an_scp_denying_data_keys_is_confirmed_through_the_org_role() {
    let seeded = seed("scp-denies-kms");
    assert_eq!(seeded["exportStatus"], "FAILED", "{seeded:#}");
    let app = member_app(&seeded, seeded["orgRoleArn"].as_str()).await;
    let result = invoke(
        &app,
        json!({"exportArn": seeded["exportArn"], "mode": "apply"}),
    )
    .await
    .unwrap();
    assert_eq!(
        causes(&result),
        vec![pair("SCP_DENIES_S3_OR_KMS", "CONFIRMED")],
        "{result:#}"
    );
    let summary = result["findings"][0]["summary"].as_str().unwrap();
    let scp = seeded["scpId"].as_str().unwrap();
    assert!(summary.contains("kms:GenerateDataKey"), "{summary}");
    assert!(
        summary.contains(&format!("({scp})/NoDataKeys")),
        "{summary}"
    );
    // Nothing a retry can fix: the plan says so and nothing was started.
    assert_eq!(result["applied"], json!([]), "{result:#}");
}

#[tokio::test]
async fn without_a_readable_organization_the_scp_stays_unknown_and_is_not_blamed() {
    let seeded = seed("scp-denies-kms");
    // The member account's own credentials cannot list the organization's policies.
    let app = member_app(&seeded, None).await;
    let result = invoke(
        &app,
        json!({"exportArn": seeded["exportArn"], "mode": "diagnose"}),
    )
    .await
    .unwrap();
    let found = causes(&result);
    assert!(
        !found
            .iter()
            .any(|(c, conf)| c == "SCP_DENIES_S3_OR_KMS" && conf == "CONFIRMED"),
        "{result:#}"
    );
    assert_eq!(found, vec![pair("UNCLASSIFIED", "POSSIBLE")], "{result:#}");
    let evidence = result["findings"][0]["evidence"].to_string();
    assert!(
        evidence.contains("organizations:ListPoliciesForTarget"),
        "{evidence}"
    );
}
