use super::*;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
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
async fn sweep_records_ask_again_for_unprocessed_keys_and_carry_the_start() {
    let sweep_item = |state: &str| {
        let mut item = key(export_pk(ARN), SWEEP_SK);
        item.insert("state".into(), s(state));
        item
    };
    let start_item = || {
        let mut item = key(export_pk(ARN), START_SK);
        item.insert(
            "caller".into(),
            s("arn:aws:iam::111122223333:role/Exporter"),
        );
        item.insert(
            "request".into(),
            s(r#"{"tableArn":"arn:t","s3Bucket":"recorded-bucket"}"#),
        );
        item
    };
    // Two keys an export (its SWEEP and START records); the first answer leaves one unread.
    let first = mock!(Client::batch_get_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|m| m.get("ledger"))
                .is_some_and(|k| k.keys().len() == 4)
        })
        .then_output(move || {
            let unprocessed = KeysAndAttributes::builder()
                .keys(key(export_pk(ARN), SWEEP_SK))
                .build()
                .unwrap();
            BatchGetItemOutput::builder()
                .responses("ledger", vec![start_item()])
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
    let records = ledger
        .sweep_records(&[ARN.to_string(), "arn:other".to_string()])
        .await
        .unwrap();
    let record = &records[ARN];
    assert_eq!(record.state, Some(SweepState::Published));
    let start = record.start.as_ref().unwrap();
    assert_eq!(
        start.request.as_ref().map(|r| r.s3_bucket.as_str()),
        Some("recorded-bucket")
    );
    assert!(!records.contains_key("arn:other"));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

fn requests(r: &BatchWriteItemInput) -> &[WriteRequest] {
    r.request_items()
        .and_then(|m| m.get("ledger"))
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn put_items(r: &BatchWriteItemInput) -> Vec<&Item> {
    requests(r)
        .iter()
        .filter_map(|w| w.put_request().map(|p| p.item()))
        .collect()
}

fn in_progress(i: usize) -> SweepWrite {
    SweepWrite::State {
        export_arn: format!("{ARN}-{i}"),
        state: SweepState::InProgress,
    }
}

#[tokio::test]
async fn sweep_writes_go_25_a_call_and_unprocessed_ones_are_sent_again() {
    let writes: Vec<SweepWrite> = (0..29).map(in_progress).collect();
    let full = mock!(Client::batch_write_item)
        .match_requests(|r| requests(r).len() == 25)
        .then_output(|| {
            let unprocessed = (0..2)
                .map(|i| sweep_write(&in_progress(i), 1).request().unwrap())
                .collect();
            BatchWriteItemOutput::builder()
                .set_unprocessed_items(Some(HashMap::from([("ledger".to_string(), unprocessed)])))
                .build()
        });
    let rest = mock!(Client::batch_write_item)
        .match_requests(|r| requests(r).len() == 4)
        .then_output(|| BatchWriteItemOutput::builder().build());
    let again = mock!(Client::batch_write_item)
        .match_requests(|r| requests(r).len() == 2)
        .then_output(|| BatchWriteItemOutput::builder().build());
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&full, &rest, &again]),
        "ledger",
    );
    ledger.sweep_writes(&writes, 1).await.unwrap();
    assert_eq!(
        (full.num_calls(), rest.num_calls(), again.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn only_the_last_sweep_write_of_a_record_is_sent() {
    // DynamoDB refuses a BatchWriteItem with two writes of one key.
    let writes = [
        in_progress(0),
        SweepWrite::Mark {
            table_arn: "arn:table".into(),
            export_arn: ARN.into(),
        },
        SweepWrite::State {
            export_arn: format!("{ARN}-0"),
            state: SweepState::Published,
        },
        SweepWrite::Cursor(Some("arn:table".into())),
        SweepWrite::Cursor(None),
    ];
    let one = mock!(Client::batch_write_item)
        .match_requests(|r| {
            let puts = put_items(r);
            requests(r).len() == 3
                && puts.iter().any(|i| get_s(i, "state") == Some("PUBLISHED"))
                && puts
                    .iter()
                    .all(|i| get_s(i, "state") != Some("IN_PROGRESS"))
                && requests(r).iter().any(|w| w.delete_request().is_some())
        })
        .then_output(|| BatchWriteItemOutput::builder().build());
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&one]),
        "ledger",
    );
    ledger.sweep_writes(&writes, 1).await.unwrap();
    assert_eq!(one.num_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn sweep_writes_left_unprocessed_after_the_resends_are_an_error() {
    let stuck = mock!(Client::batch_write_item).then_output(|| {
        let unprocessed = vec![sweep_write(&in_progress(0), 1).request().unwrap()];
        BatchWriteItemOutput::builder()
            .set_unprocessed_items(Some(HashMap::from([("ledger".to_string(), unprocessed)])))
            .build()
    });
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&stuck]),
        "ledger",
    );
    let err = ledger.sweep_writes(&[in_progress(0)], 1).await.unwrap_err();
    assert_eq!(err.kind, AwsErrorKind::Throttled);
    assert_eq!(stuck.num_calls(), 1 + BATCH_RETRIES as usize);
}

#[tokio::test]
async fn the_marks_the_cursor_and_the_followed_count_are_read_in_one_call() {
    let tables: Vec<String> = (0..10).map(|i| format!("arn:table/t{i}")).collect();
    let read = mock!(Client::batch_get_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|m| m.get("ledger"))
                .is_some_and(|k| k.keys().len() == 12 && k.consistent_read() == Some(true))
        })
        .then_output(|| {
            let mut mark = key(table_pk("arn:table/t3"), MARK_SK);
            mark.insert("mark".into(), s(ARN));
            let mut cursor = key(CURSOR_PK.into(), CURSOR_SK);
            cursor.insert("table".into(), s("arn:table/t5"));
            let mut following = key("MARKER".into(), "following");
            following.insert("value".into(), n(2));
            BatchGetItemOutput::builder()
                .responses("ledger", vec![mark, cursor, following])
                .build()
        });
    let ledger = DynamoLedger::new(
        mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&read]),
        "ledger",
    );
    let marks = ledger.sweep_marks(&tables).await.unwrap();
    assert_eq!(
        marks,
        SweepMarks {
            marks: HashMap::from([("arn:table/t3".to_string(), ARN.to_string())]),
            cursor: Some("arn:table/t5".into()),
            following: 2,
        }
    );
    assert_eq!(read.num_calls(), 1);
}
