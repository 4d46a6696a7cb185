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
async fn a_failure_in_member_a_us_west_2_is_diagnosed_retried_there_through_the_spoke_role_and_resolved(
) {
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

    // AND the hub's next scheduled run follows the retry through the spoke and closes the
    // incident RESOLVED, once (its back-off passed: the in-flight row is due now)
    let ledger = app.config.ledger_table_name.clone().unwrap();
    aws_sdk_dynamodb::Client::new(&sdk().await)
        .update_item()
        .table_name(&ledger)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("INFLIGHT".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(new_arn.into()),
        )
        .update_expression("SET nextCheckAt = :zero")
        .expression_attribute_values(
            ":zero",
            aws_sdk_dynamodb::types::AttributeValue::N("0".into()),
        )
        .send()
        .await
        .unwrap();
    let schedule = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let swept = invoke(&app, schedule.clone()).await.unwrap();
    let closed = &swept["sweep"]["outcomes"];
    assert_eq!(closed[0]["outcome"], "RESOLVED", "{swept:#}");
    assert_eq!(closed[0]["rootExportArn"], event["detail"]["exportArn"]);
    assert_eq!(closed.as_array().map(Vec::len), Some(1));
    let again = invoke(&app, schedule).await.unwrap();
    assert!(again["sweep"].get("outcomes").is_none(), "{again:#}");
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

#[tokio::test]
async fn the_org_sweep_polls_a_tracked_export_through_its_spoke_and_publishes_it_once() {
    use ddb_export_remediator::ports::Ledger;
    let seeded = seed("org-incident");
    let a = seeded["memberA"].as_str().unwrap();
    let export = seeded["exportArn"].as_str().unwrap();
    let mut app = hub_app(&seeded).await;
    app.config.spoke_regions = vec!["us-east-1".into(), "us-west-2".into()];
    let ledger = aws::DynamoLedger::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        app.config.ledger_table_name.clone().unwrap(),
    );
    // GIVEN the export's CloudTrail start event, as the spoke forwards it: it is tracked
    let start = json!({"version": "0", "id": "s", "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.dynamodb", "account": a, "region": "us-west-2", "resources": [],
        "time": "2026-12-02T00:00:00Z",
        "detail": {"eventSource": "dynamodb.amazonaws.com", "eventName": "ExportTableToPointInTime",
                   "awsRegion": "us-west-2", "recipientAccountId": a,
                   "requestParameters": {"tableArn": seeded["tableArn"], "s3Bucket": seeded["bucket"]},
                   "responseElements": {"exportDescription": {"exportArn": export}}}});
    invoke(&app, start).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let later = ledger.in_flight_due(now + 3600, 10).await.unwrap();
    assert_eq!(later.len(), 1, "{later:?}");
    assert_eq!(later[0].export_arn, export);
    // WHEN its check is due, and the safety net has nothing due this slot
    ledger
        .track_in_flight(export, now - 1, 0, now)
        .await
        .unwrap();
    ledger
        .set_marker("org-sweep-slot", now.div_euclid(300), now)
        .await
        .unwrap();
    let schedule = json!({"version": "0", "id": "t", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": seeded["hubAccount"], "region": "us-east-1",
        "time": "2026-12-02T00:00:00Z", "resources": [], "detail": {}});
    let result = invoke(&app, schedule.clone()).await.unwrap();
    // THEN the poller described it in A, us-west-2 (the hub cannot see it) and published it
    // (The emulator is shared with other tests: a slot that begins mid-test may let the safety
    // net publish their failures too, so this asserts on this export only.)
    let published = |r: &Value| -> Vec<String> {
        r["sweep"]["published"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        published(&result).contains(&export.to_string()),
        "{result:#}"
    );
    assert_eq!(result["sweep"]["organization"]["polled"], 1, "{result:#}");
    assert!(ledger
        .in_flight_due(now + 3600, 10)
        .await
        .unwrap()
        .is_empty());
    // AND a second run publishes nothing again
    let again = invoke(&app, schedule.clone()).await.unwrap();
    assert!(
        !published(&again).contains(&export.to_string()),
        "{again:#}"
    );
    assert_eq!(again["sweep"]["organization"]["polled"], 0, "{again:#}");
    // AND a whole day's safety net visits every (account, Region) shard through its spoke
    // and finds nothing new: the export is published already
    ledger
        .set_marker("org-sweep-slot", now.div_euclid(300) - 288, now)
        .await
        .unwrap();
    let day = invoke(&app, schedule).await.unwrap();
    let org = &day["sweep"]["organization"];
    let total = org["shardsTotal"].as_u64().unwrap();
    assert!(total >= 6, "{day:#}");
    assert_eq!(
        org["shardsSwept"].as_u64().unwrap() + org["unreachable"].as_u64().unwrap(),
        total,
        "{day:#}"
    );
    assert!(!published(&day).contains(&export.to_string()), "{day:#}");
}
