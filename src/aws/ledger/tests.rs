use super::*;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
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
        owner: Some("req-first".into()),
        retry_request: None,
        after_patch: false,
    };
    incident_item(&record, 1_795_600_000)
}

fn ccf_update(item: Option<Item>) -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(
        ConditionalCheckFailedException::builder()
            .set_item(item)
            .build(),
    )
}

/// The claim is one conditional UpdateItem that a resend of itself passes (the owner token is
/// in the condition), keeps what an earlier holder stored, removes the TTL, and asks for the
/// item that failed the condition in the error itself.
#[tokio::test]
async fn claim_is_a_conditional_update_that_its_own_resend_passes_and_a_lost_race_reads_the_holder()
{
    let won = mock!(Client::update_item)
        .match_requests(|r| {
            let cond = r.condition_expression().unwrap_or_default();
            let update = r.update_expression().unwrap_or_default();
            r.table_name() == Some("ledger")
                && r.key().and_then(|k| k.get("sk")) == Some(&s("INCIDENT"))
                && cond.contains("attribute_not_exists(pk)")
                && cond.contains("#ow = :me")
                && cond.contains("leaseUntil < :now")
                && r.expression_attribute_values().and_then(|v| v.get(":me")) == Some(&s("req-1"))
                && update.contains("REMOVE expiresAt")
                && !update.contains("clientToken")
                && r.return_values_on_condition_check_failure()
                    == Some(&ReturnValuesOnConditionCheckFailure::AllOld)
        })
        .then_output(|| UpdateItemOutput::builder().build());
    let lost = mock!(Client::update_item).then_error(|| ccf_update(Some(held_item())));
    let unlisted = || {
        mock!(Client::delete_item)
            .match_requests(|r| r.key().and_then(|k| k.get("pk")) == Some(&s(OPEN_PK)))
            .then_output(|| DeleteItemOutput::builder().build())
    };
    // An emulator that leaves the item out of the error: a strongly consistent read.
    let bare = mock!(Client::update_item).then_error(|| ccf_update(None));
    let read = mock!(Client::get_item)
        .match_requests(|r| r.consistent_read() == Some(true))
        .then_output(|| GetItemOutput::builder().set_item(Some(held_item())).build());
    let ledger = DynamoLedger::new(
        mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&won, &lost, &unlisted(), &bare, &read, &unlisted()]
        ),
        "ledger",
    );
    assert_eq!(
        ledger.claim(ARN, "req-1", 100, 300).await.unwrap(),
        Claim::Won { previous: None }
    );
    for _ in 0..2 {
        match ledger.claim(ARN, "req-2", 100, 300).await.unwrap() {
            Claim::Held(r) => {
                assert_eq!(r.status, IncidentStatus::Retried);
                assert_eq!(r.owner.as_deref(), Some("req-first"));
                assert_eq!(r.causes, vec!["BUCKET_OWNER_MISSING"]);
                assert_eq!(r.export_time, Some(1_795_500_000.0));
                assert_eq!(r.retry_export_arn.as_deref(), Some("arn:retry"));
            }
            other => panic!("{other:?}"),
        }
    }
}

/// A settle writes only while its owner holds the claim: taken over, it writes nothing.
#[tokio::test]
async fn settle_is_conditional_on_the_owner_and_a_final_status_unlists_the_incident() {
    let mut record = IncidentRecord::claimed(ARN, "req-1", 400);
    record.status = IncidentStatus::Retried;
    let settled = mock!(Client::put_item)
        .match_requests(|r| {
            r.condition_expression() == Some("#ow = :me")
                && r.expression_attribute_values().and_then(|v| v.get(":me")) == Some(&s("req-1"))
                && r.item().is_some_and(|i| i.contains_key("expiresAt"))
        })
        .then_output(|| PutItemOutput::builder().build());
    let unlisted = mock!(Client::delete_item).then_output(|| DeleteItemOutput::builder().build());
    let taken = mock!(Client::put_item).then_error(|| {
        PutItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .set_item(Some(held_item()))
                .build(),
        )
    });
    let ledger = DynamoLedger::new(
        mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&settled, &unlisted, &taken]
        ),
        "ledger",
    );
    assert!(ledger.settle(&record, 200).await.unwrap());
    assert!(!ledger.settle(&record, 200).await.unwrap());
}

/// Open incidents carry no TTL; a settled one expires; a long note is cut.
#[test]
fn an_open_incident_never_expires_and_its_item_stays_small() {
    let mut record = IncidentRecord::claimed(ARN, "req-1", 400);
    record.note = Some("x".repeat(500_000));
    let item = incident_item(&record, 100);
    assert!(!item.contains_key("expiresAt"));
    assert_eq!(get_s(&item, "owner"), Some("req-1"));
    assert!(get_s(&item, "note").is_some_and(|n| n.len() <= 2_000));
    record.status = IncidentStatus::Pending;
    assert!(!incident_item(&record, 100).contains_key("expiresAt"));
    record.status = IncidentStatus::NoAction;
    assert!(incident_item(&record, 100).contains_key("expiresAt"));
}

/// The sweep reads the open partition (a Query, no Scan), hands back the expired, pending and
/// never-claimed incidents, and unlists the settled ones.
#[tokio::test]
async fn open_incidents_due_queries_one_partition_and_unlists_the_settled() {
    let open = |arn: &str| {
        let mut i = key(OPEN_PK.into(), arn);
        i.insert("dueAt".into(), n(50));
        i
    };
    let incident = |arn: &str, status: IncidentStatus, lease: i64| {
        let mut r = IncidentRecord::claimed(arn, "req-x", lease);
        r.status = status;
        incident_item(&r, 10)
    };
    let query = mock!(Client::query)
        .match_requests(|r| {
            r.key_condition_expression() == Some("pk = :pk")
                && r.expression_attribute_values().and_then(|v| v.get(":pk")) == Some(&s(OPEN_PK))
        })
        .then_output(move || {
            QueryOutput::builder()
                .set_items(Some(vec![
                    open("arn:expired"),
                    open("arn:pending"),
                    open("arn:held"),
                    open("arn:settled"),
                    open("arn:never-claimed"),
                ]))
                .build()
        });
    let read = mock!(Client::batch_get_item).then_output(move || {
        BatchGetItemOutput::builder()
            .responses(
                "ledger",
                vec![
                    incident("arn:expired", IncidentStatus::Claimed, 90),
                    incident("arn:pending", IncidentStatus::Pending, 0),
                    incident("arn:held", IncidentStatus::Claimed, 500),
                    incident("arn:settled", IncidentStatus::Retried, 0),
                ],
            )
            .build()
    });
    let unlist = mock!(Client::batch_write_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|m| m.get("ledger"))
                .is_some_and(|w| {
                    w.len() == 1
                        && w[0].delete_request().map(|d| d.key().get("sk"))
                            == Some(Some(&s("arn:settled")))
                })
        })
        .then_output(|| BatchWriteItemOutput::builder().build());
    let ledger = DynamoLedger::new(
        mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&query, &read, &unlist]
        ),
        "ledger",
    );
    let due = ledger.open_incidents_due(100, 10).await.unwrap();
    assert_eq!(due, ["arn:expired", "arn:pending", "arn:never-claimed"]);
}

/// A change record or status move that landed, sent again, meets itself: not refused.
#[tokio::test]
async fn a_resent_change_record_and_status_move_recognise_themselves() {
    let change = KeyPolicyChange {
        change_id: "kpc-1".into(),
        key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
        purpose: PatchPurpose::Exporter,
        sid: "Sid".into(),
        grantees: vec![],
        before: "{}".into(),
        after: "{\"a\":1}".into(),
        status: ChangeStatus::Pending,
        export_arn: None,
        causes: vec![],
        actor: "arn:aws:iam::111122223333:role/remediator".into(),
        created_at: 1,
        note: None,
    };
    let stored = change_item(&change, 1);
    let mut other = change.clone();
    other.after = "{\"b\":2}".into();
    let other_stored = change_item(&other, 1);
    let ccf_put = move |item: Item| {
        mock!(Client::put_item).then_error(move || {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder()
                    .set_item(Some(item.clone()))
                    .build(),
            )
        })
    };
    let mut applied = change_item(&change, 1);
    applied.insert("status".into(), s("APPLIED"));
    applied.insert("note".into(), s("applied and read back"));
    let moved = mock!(Client::update_item).then_error(move || ccf_update(Some(applied.clone())));
    let ledger = DynamoLedger::new(
        mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&ccf_put(stored), &ccf_put(other_stored), &moved]
        ),
        "ledger",
    );
    ledger.record_change(&change, 1).await.unwrap();
    assert!(ledger.record_change(&change, 1).await.is_err());
    assert!(ledger
        .set_change_status(
            "kpc-1",
            ChangeStatus::Pending,
            ChangeStatus::Applied,
            Some("applied and read back"),
            2
        )
        .await
        .unwrap());
}

#[tokio::test]
async fn sweep_records_ask_again_for_unprocessed_keys_and_carry_the_start_and_the_incident() {
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
    // The other export's incident: claimed by a delivery.
    let incident_item = || {
        let mut item = key(export_pk("arn:other"), INCIDENT_SK);
        item.insert("exportArn".into(), s("arn:other"));
        item.insert("status".into(), s("CLAIMED"));
        item
    };
    // Three keys an export (its SWEEP, START and INCIDENT records); the first answer leaves
    // one unread.
    let first = mock!(Client::batch_get_item)
        .match_requests(|r| {
            r.request_items()
                .and_then(|m| m.get("ledger"))
                .is_some_and(|k| k.keys().len() == 6)
        })
        .then_output(move || {
            let unprocessed = KeysAndAttributes::builder()
                .keys(key(export_pk(ARN), SWEEP_SK))
                .build()
                .unwrap();
            BatchGetItemOutput::builder()
                .responses("ledger", vec![start_item(), incident_item()])
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
    assert!(!record.handled, "no incident of its own");
    // The other export: nothing but its incident, so the sweep does not publish it again.
    assert_eq!(
        records["arn:other"],
        SweepRecord {
            handled: true,
            ..SweepRecord::default()
        }
    );
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
