use super::*;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_mocks::{mock, mock_client, RuleMode};

const ARN: &str =
    "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c";

fn held_item() -> Item {
    let record = IncidentRecord {
        export_arn: ARN.into(),
        status: IncidentStatus::Retried,
        lease_until: 0,
        causes: vec!["BUCKET_OWNER_MISSING".into()],
        attempt: 1,
        root_export_arn: ARN.into(),
        client_token: Some("ddbxr-x-1".into()),
        export_time: Some(1_795_500_000.0),
        retry_export_arn: Some("arn:retry".into()),
        note: None,
    };
    incident_item(&record, 1_795_600_000)
}

#[tokio::test]
async fn claim_is_a_conditional_put_and_a_lost_race_reads_the_holder() {
    let won = mock!(Client::put_item)
        .match_requests(|r| {
            r.table_name() == Some("ledger")
                && r.condition_expression()
                    .is_some_and(|c| c.contains("attribute_not_exists(pk)"))
                && r.item().and_then(|i| i.get("sk")) == Some(&s("INCIDENT"))
        })
        .then_output(|| PutItemOutput::builder().build());
    let lost = mock!(Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        )
    });
    let read = mock!(Client::get_item)
        .match_requests(|r| r.consistent_read() == Some(true))
        .then_output(|| GetItemOutput::builder().set_item(Some(held_item())).build());
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&won, &lost, &read]),
        "ledger",
    );
    assert_eq!(
        ledger.claim(ARN, 100, 300).await.unwrap(),
        Claim::Won { previous: None }
    );
    match ledger.claim(ARN, 100, 300).await.unwrap() {
        Claim::Held(r) => {
            assert_eq!(r.status, IncidentStatus::Retried);
            assert_eq!(r.causes, vec!["BUCKET_OWNER_MISSING"]);
            assert_eq!(r.export_time, Some(1_795_500_000.0));
            assert_eq!(r.retry_export_arn.as_deref(), Some("arn:retry"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sweep_states_asks_again_for_unprocessed_keys() {
    let sweep_item = |state: &str| {
        HashMap::from([
            ("pk".to_string(), s(export_pk(ARN))),
            ("sk".to_string(), s("SWEEP")),
            ("state".to_string(), s(state)),
        ])
    };
    let first = mock!(Client::batch_get_item).then_output(move || {
        let unprocessed = KeysAndAttributes::builder()
            .keys(HashMap::from([
                ("pk".to_string(), s(export_pk(ARN))),
                ("sk".to_string(), s("SWEEP")),
            ]))
            .build()
            .unwrap();
        BatchGetItemOutput::builder()
            .responses("ledger", vec![])
            .unprocessed_keys("ledger", unprocessed)
            .build()
    });
    let second = mock!(Client::batch_get_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|m| m.get("ledger"))
                .is_some_and(|k| k.keys().len() == 1)
        })
        .then_output(move || {
            BatchGetItemOutput::builder()
                .responses("ledger", vec![sweep_item("PUBLISHED")])
                .build()
        });
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]),
        "ledger",
    );
    let states = ledger
        .sweep_states(&[ARN.to_string(), "arn:other".to_string()])
        .await
        .unwrap();
    assert_eq!(states.get(ARN), Some(&SweepState::Published));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
