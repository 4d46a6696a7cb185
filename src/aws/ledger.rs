//! The ledger on DynamoDB (SPEC §8): `pk` (S) + `sk` (S), TTL attribute `expiresAt`.
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `EXPORT#<export arn>` | `INCIDENT` | claim, status, causes, lineage, retry token and time |
//! | `EXPORT#<retry arn>` | `LINEAGE` | root export, attempt, causes the retry was meant to fix |
//! | `EXPORT#<export arn>` | `START` | caller and parameters from the CloudTrail start event |
//! | `EXPORT#<export arn>` | `SWEEP` | IN_PROGRESS or PUBLISHED, as the sweep saw it |
//! | `TABLE#<table arn>` | `MARK` | the sweep's high-water mark for the table |
//! | `SWEEP` | `CURSOR` | the table where an unfinished sweep stopped |
//! | `CHANGE#<change id>` | `KEY_POLICY` | a key-policy change: before/after policy, who, why, status (never expires) |

use super::{classify, missing};
use crate::model::{ExportRequest, PatchPurpose};
use crate::ports::{
    ChangeStatus, Claim, IncidentRecord, IncidentStatus, KeyPolicyChange, Ledger, Lineage,
    PortResult, StartRecord, SweepState,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;

/// Records live as long as ListExports remembers an export (90 days).
const RETENTION_SECS: i64 = 90 * 24 * 3600;
const BATCH_GET_MAX: usize = 100;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, op: &'static str, pk: String, sk: &str) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        Ok(out.item)
    }

    async fn put(&self, op: &'static str, item: Item) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        Ok(())
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn export_pk(arn: &str) -> String {
    format!("EXPORT#{arn}")
}

fn base(pk: String, sk: &str, now: i64) -> Item {
    HashMap::from([
        ("pk".to_string(), s(pk)),
        ("sk".to_string(), s(sk)),
        ("updatedAt".to_string(), n(now)),
        ("expiresAt".to_string(), n(now + RETENTION_SECS)),
    ])
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n<T: std::str::FromStr>(item: &Item, key: &str) -> Option<T> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn causes_of(item: &Item) -> Vec<String> {
    get_s(item, "causes")
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

fn incident_item(r: &IncidentRecord, now: i64) -> Item {
    let mut item = base(export_pk(&r.export_arn), "INCIDENT", now);
    item.insert("exportArn".into(), s(&r.export_arn));
    item.insert("status".into(), s(r.status.as_str()));
    item.insert("leaseUntil".into(), n(r.lease_until));
    item.insert(
        "causes".into(),
        s(serde_json::to_string(&r.causes).unwrap_or_default()),
    );
    item.insert("attempt".into(), n(r.attempt));
    item.insert("rootExportArn".into(), s(&r.root_export_arn));
    let optional = [
        ("clientToken", r.client_token.clone().map(s)),
        ("exportTime", r.export_time.map(n)),
        ("retryExportArn", r.retry_export_arn.clone().map(s)),
        ("note", r.note.clone().map(s)),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.into(), v);
        }
    }
    item
}

fn incident_from(item: &Item) -> PortResult<IncidentRecord> {
    const OP: &str = "ledger:GetIncident";
    let status = get_s(item, "status")
        .and_then(IncidentStatus::parse)
        .ok_or_else(|| missing(OP, "a known status"))?;
    Ok(IncidentRecord {
        export_arn: get_s(item, "exportArn")
            .ok_or_else(|| missing(OP, "exportArn"))?
            .to_string(),
        status,
        lease_until: get_n(item, "leaseUntil").unwrap_or(0),
        causes: causes_of(item),
        attempt: get_n(item, "attempt").unwrap_or(0),
        root_export_arn: get_s(item, "rootExportArn").unwrap_or_default().to_string(),
        client_token: get_s(item, "clientToken").map(str::to_string),
        export_time: get_n(item, "exportTime"),
        retry_export_arn: get_s(item, "retryExportArn").map(str::to_string),
        note: get_s(item, "note").map(str::to_string),
    })
}

fn change_pk(id: &str) -> String {
    format!("CHANGE#{id}")
}

const CHANGE_SK: &str = "KEY_POLICY";

fn change_item(c: &KeyPolicyChange, now: i64) -> Item {
    let mut item = base(change_pk(&c.change_id), CHANGE_SK, now);
    // The audit record outlives the incident records: no TTL.
    item.remove("expiresAt");
    let strings = |v: &Vec<String>| s(serde_json::to_string(v).unwrap_or_default());
    for (k, v) in [
        ("changeId", s(&c.change_id)),
        ("keyArn", s(&c.key_arn)),
        ("purpose", s(c.purpose.as_str())),
        ("sid", s(&c.sid)),
        ("grantees", strings(&c.grantees)),
        ("beforePolicy", s(&c.before)),
        ("afterPolicy", s(&c.after)),
        ("status", s(c.status.as_str())),
        ("causes", strings(&c.causes)),
        ("actor", s(&c.actor)),
        ("createdAt", n(c.created_at)),
    ] {
        item.insert(k.into(), v);
    }
    if let Some(e) = &c.export_arn {
        item.insert("exportArn".into(), s(e));
    }
    if let Some(note) = &c.note {
        item.insert("note".into(), s(note));
    }
    item
}

fn change_from(item: &Item) -> PortResult<KeyPolicyChange> {
    const OP: &str = "ledger:GetKeyPolicyChange";
    let text = |k: &'static str| {
        get_s(item, k)
            .map(str::to_string)
            .ok_or_else(|| missing(OP, k))
    };
    let list = |k: &str| -> Vec<String> {
        get_s(item, k)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    };
    Ok(KeyPolicyChange {
        change_id: text("changeId")?,
        key_arn: text("keyArn")?,
        purpose: get_s(item, "purpose")
            .and_then(PatchPurpose::parse)
            .ok_or_else(|| missing(OP, "a known purpose"))?,
        sid: text("sid")?,
        grantees: list("grantees"),
        before: text("beforePolicy")?,
        after: text("afterPolicy")?,
        status: get_s(item, "status")
            .and_then(ChangeStatus::parse)
            .ok_or_else(|| missing(OP, "a known status"))?,
        export_arn: get_s(item, "exportArn").map(str::to_string),
        causes: list("causes"),
        actor: get_s(item, "actor").unwrap_or_default().to_string(),
        created_at: get_n(item, "createdAt").unwrap_or(0),
        note: get_s(item, "note").map(str::to_string),
    })
}

#[async_trait]
impl Ledger for DynamoLedger {
    #[tracing::instrument(skip(self))]
    async fn claim(&self, export_arn: &str, now: i64, lease_secs: i64) -> PortResult<Claim> {
        const OP: &str = "ledger:ClaimIncident";
        let record = IncidentRecord::claimed(export_arn, now + lease_secs);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(&record, now)))
            // Free, or an earlier claim whose lease ran out, or pending work to finish.
            .condition_expression(
                "attribute_not_exists(pk) OR #st = :pending OR (#st = :claimed AND leaseUntil < :now)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", s(IncidentStatus::Pending.as_str()))
            .expression_attribute_values(":claimed", s(IncidentStatus::Claimed.as_str()))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let previous = match out.attributes {
                    Some(old) if !old.is_empty() => Some(incident_from(&old)?),
                    _ => None,
                };
                Ok(Claim::Won { previous })
            }
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                let item = self
                    .get(OP, export_pk(export_arn), "INCIDENT")
                    .await?
                    .ok_or_else(|| missing(OP, "the incident that failed the condition"))?;
                Ok(Claim::Held(incident_from(&item)?))
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    #[tracing::instrument(skip(self, record), fields(export_arn = %record.export_arn, status = record.status.as_str()))]
    async fn settle(&self, record: &IncidentRecord, now: i64) -> PortResult<()> {
        self.put("ledger:SettleIncident", incident_item(record, now))
            .await
    }

    #[tracing::instrument(skip(self))]
    async fn lineage(&self, export_arn: &str) -> PortResult<Option<Lineage>> {
        let item = self
            .get("ledger:GetLineage", export_pk(export_arn), "LINEAGE")
            .await?;
        Ok(item.map(|i| Lineage {
            root_export_arn: get_s(&i, "rootExportArn").unwrap_or(export_arn).to_string(),
            attempt: get_n(&i, "attempt").unwrap_or(1),
            causes: causes_of(&i),
            after_patch: i
                .get("afterPatch")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        }))
    }

    #[tracing::instrument(skip(self, lineage))]
    async fn record_lineage(
        &self,
        retry_export_arn: &str,
        lineage: &Lineage,
        now: i64,
    ) -> PortResult<()> {
        let mut item = base(export_pk(retry_export_arn), "LINEAGE", now);
        item.insert("rootExportArn".into(), s(&lineage.root_export_arn));
        item.insert("attempt".into(), n(lineage.attempt));
        item.insert(
            "causes".into(),
            s(serde_json::to_string(&lineage.causes).unwrap_or_default()),
        );
        item.insert(
            "afterPatch".into(),
            AttributeValue::Bool(lineage.after_patch),
        );
        self.put("ledger:RecordLineage", item).await
    }

    #[tracing::instrument(skip(self, start))]
    async fn record_start(
        &self,
        export_arn: &str,
        start: &StartRecord,
        now: i64,
    ) -> PortResult<()> {
        let mut item = base(export_pk(export_arn), "START", now);
        if let Some(c) = &start.caller {
            item.insert("caller".into(), s(c));
        }
        if let Some(r) = &start.request {
            item.insert(
                "request".into(),
                s(serde_json::to_string(r).unwrap_or_default()),
            );
        }
        self.put("ledger:RecordStart", item).await
    }

    #[tracing::instrument(skip(self))]
    async fn start_record(&self, export_arn: &str) -> PortResult<Option<StartRecord>> {
        let item = self
            .get("ledger:GetStart", export_pk(export_arn), "START")
            .await?;
        Ok(item.map(|i| StartRecord {
            caller: get_s(&i, "caller").map(str::to_string),
            request: get_s(&i, "request")
                .and_then(|r| serde_json::from_str::<ExportRequest>(r).ok()),
        }))
    }

    #[tracing::instrument(skip(self, export_arns), fields(count = export_arns.len()))]
    async fn sweep_states(
        &self,
        export_arns: &[String],
    ) -> PortResult<HashMap<String, SweepState>> {
        const OP: &str = "ledger:BatchGetSweepStates";
        let mut states = HashMap::new();
        for chunk in export_arns.chunks(BATCH_GET_MAX) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|a| {
                    HashMap::from([
                        ("pk".to_string(), s(export_pk(a))),
                        ("sk".to_string(), s("SWEEP")),
                    ])
                })
                .collect();
            // UnprocessedKeys come back under load; ask again a bounded number of times.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| missing(OP, &e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify(OP, e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let arn = get_s(&item, "pk").and_then(|p| p.strip_prefix("EXPORT#"));
                    let state = match get_s(&item, "state") {
                        Some("PUBLISHED") => SweepState::Published,
                        Some("TOO_OLD") => SweepState::TooOld,
                        _ => SweepState::InProgress,
                    };
                    if let Some(arn) = arn {
                        states.insert(arn.to_string(), state);
                    }
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !keys.is_empty() {
                return Err(missing(
                    OP,
                    "a complete answer after 5 tries (unprocessed keys remain)",
                ));
            }
        }
        Ok(states)
    }

    #[tracing::instrument(skip(self))]
    async fn set_sweep_state(
        &self,
        export_arn: &str,
        state: SweepState,
        now: i64,
    ) -> PortResult<()> {
        let mut item = base(export_pk(export_arn), "SWEEP", now);
        let text = match state {
            SweepState::InProgress => "IN_PROGRESS",
            SweepState::Published => "PUBLISHED",
            SweepState::TooOld => "TOO_OLD",
        };
        item.insert("state".into(), s(text));
        self.put("ledger:SetSweepState", item).await
    }

    #[tracing::instrument(skip(self))]
    async fn table_mark(&self, table_arn: &str) -> PortResult<Option<String>> {
        let item = self
            .get("ledger:GetTableMark", format!("TABLE#{table_arn}"), "MARK")
            .await?;
        Ok(item.and_then(|i| get_s(&i, "mark").map(str::to_string)))
    }

    #[tracing::instrument(skip(self))]
    async fn set_table_mark(&self, table_arn: &str, mark: &str, now: i64) -> PortResult<()> {
        let mut item = base(format!("TABLE#{table_arn}"), "MARK", now);
        item.insert("mark".into(), s(mark));
        self.put("ledger:SetTableMark", item).await
    }

    #[tracing::instrument(skip(self))]
    async fn sweep_cursor(&self) -> PortResult<Option<String>> {
        let item = self
            .get("ledger:GetSweepCursor", "SWEEP".into(), "CURSOR")
            .await?;
        Ok(item.and_then(|i| get_s(&i, "table").map(str::to_string)))
    }

    #[tracing::instrument(skip(self))]
    async fn set_sweep_cursor(&self, table_arn: Option<&str>, now: i64) -> PortResult<()> {
        match table_arn {
            Some(t) => {
                let mut item = base("SWEEP".into(), "CURSOR", now);
                item.insert("table".into(), s(t));
                self.put("ledger:SetSweepCursor", item).await
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s("SWEEP"))
                    .key("sk", s("CURSOR"))
                    .send()
                    .await
                    .map_err(|e| classify("ledger:ClearSweepCursor", e))?;
                Ok(())
            }
        }
    }

    #[tracing::instrument(skip(self, change), fields(change_id = %change.change_id, key_arn = %change.key_arn))]
    async fn record_change(&self, change: &KeyPolicyChange, now: i64) -> PortResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(change_item(change, now)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify("ledger:RecordKeyPolicyChange", e))?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn key_change(&self, change_id: &str) -> PortResult<Option<KeyPolicyChange>> {
        self.get("ledger:GetKeyPolicyChange", change_pk(change_id), CHANGE_SK)
            .await?
            .map(|i| change_from(&i))
            .transpose()
    }

    #[tracing::instrument(skip(self))]
    async fn set_change_status(
        &self,
        change_id: &str,
        from: ChangeStatus,
        to: ChangeStatus,
        note: Option<&str>,
        now: i64,
    ) -> PortResult<bool> {
        const OP: &str = "ledger:SetKeyPolicyChangeStatus";
        let mut update = "SET #st = :to, updatedAt = :now".to_string();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(change_pk(change_id)))
            .key("sk", s(CHANGE_SK))
            .condition_expression("#st = :from")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":from", s(from.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", n(now));
        if let Some(note) = note {
            update.push_str(", note = :note");
            request = request.expression_attribute_values(":note", s(note));
        }
        let result = request.update_expression(update).send().await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(OP, e)),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
