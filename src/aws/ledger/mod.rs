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
//! | `INFLIGHT` | `<export arn>` | organization mode: an export to describe at `nextCheckAt` until it ends |
//! | `MARKER` | `<name>` | a named number, e.g. the organization sweep's last slot |
//! | `CHANGE#<change id>` | `KEY_POLICY` | a key-policy change: before/after policy, who, why, status (never expires) |

use super::{classify, missing};
use crate::model::{ExportRequest, PatchPurpose};
use crate::ports::{
    ChangeStatus, Claim, InFlight, IncidentRecord, IncidentStatus, KeyPolicyChange, Ledger,
    Lineage, PortResult, StartRecord, SweepState,
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

mod items;
use items::*;

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

    #[tracing::instrument(skip(self))]
    async fn track_in_flight(
        &self,
        export_arn: &str,
        next_check_at: i64,
        checks: u32,
        now: i64,
    ) -> PortResult<()> {
        // Exports run for hours at most; a week covers a poller that stopped for days.
        let mut item = base("INFLIGHT".into(), export_arn, now);
        item.insert("expiresAt".into(), n(now + 7 * 24 * 3600));
        item.insert("nextCheckAt".into(), n(next_check_at));
        item.insert("checks".into(), n(checks));
        self.put("ledger:TrackInFlight", item).await
    }

    #[tracing::instrument(skip(self))]
    async fn in_flight_due(&self, now: i64, limit: usize) -> PortResult<Vec<InFlight>> {
        const OP: &str = "ledger:InFlightDue";
        // One partition, read in 1 MB pages: the poller's cost follows the exports in flight.
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("nextCheckAt <= :now")
                .expression_attribute_values(":pk", s("INFLIGHT"))
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for item in page.items() {
                if let Some(arn) = get_s(item, "sk") {
                    out.push(InFlight {
                        export_arn: arn.to_string(),
                        checks: get_n(item, "checks").unwrap_or(0),
                    });
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    #[tracing::instrument(skip(self))]
    async fn untrack_in_flight(&self, export_arn: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s("INFLIGHT"))
            .key("sk", s(export_arn))
            .send()
            .await
            .map_err(|e| classify("ledger:UntrackInFlight", e))?;
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    async fn marker(&self, name: &str) -> PortResult<Option<i64>> {
        let item = self.get("ledger:GetMarker", "MARKER".into(), name).await?;
        Ok(item.and_then(|i| get_n(&i, "value")))
    }

    #[tracing::instrument(skip(self))]
    async fn set_marker(&self, name: &str, value: i64, now: i64) -> PortResult<()> {
        let mut item = base("MARKER".into(), name, now);
        item.insert("value".into(), n(value));
        self.put("ledger:SetMarker", item).await
    }
}

#[cfg(test)]
mod tests;
