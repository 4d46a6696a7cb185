//! The ledger on DynamoDB (docs/diagnosis.md, the ledger): `pk` (S) + `sk` (S), TTL attribute `expiresAt`.
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `EXPORT#<export arn>` | `INCIDENT` | claim (owner, lease), status, causes, lineage, retry token and time; no TTL while open |
//! | `OPEN` | `<export arn>` | an incident claimed or pending, due for the sweep at `dueAt` (never expires) |
//! | `EXPORT#<retry arn>` | `LINEAGE` | root export, attempt, causes the retry was meant to fix |
//! | `EXPORT#<export arn>` | `START` | caller and parameters from the CloudTrail start event |
//! | `EXPORT#<export arn>` | `SWEEP` | IN_PROGRESS, PUBLISHED or TOO_OLD, as the sweep saw it |
//! | `TABLE#<table arn>` | `MARK` | the sweep's high-water mark for the table |
//! | `SWEEP` | `CURSOR` | the table where an unfinished sweep stopped |
//! | `INFLIGHT` | `<export arn>` | organization mode: an export to describe at `nextCheckAt` until it ends |
//! | `MARKER` | `<name>` | a named number, e.g. the organization sweep's last slot |
//! | `CHANGE#<change id>` | `KEY_POLICY` | a key-policy change: before/after policy, who, why, status (never expires) |
//! | `EXPORT#<retry arn>` | `FOLLOW` | a retry the function follows until it ends: the incident so far (no expiry while open) |
//! | `EXPORT#<root export arn>` | `OUTCOME` | the incident's one outcome (conditional put) and whether its event was published |
//! | `OUTCOMES` | `<recorded at>#<root export arn>` | the same outcome, listed by time (`ddb-export-doctor incidents`) |
//!
//! Incidents and key-policy changes are written one at a time, under conditions; every
//! conditional write recognises its own earlier attempt (the owner token, the same change), so a
//! write that landed but whose answer was lost is not mistaken for someone else's. The sweep's
//! records (the last three rows) are read and written in batches (BatchGetItem,
//! BatchWriteItem), which take no conditions and need none (`ports::SweepWrite` says why).

use super::{classify, missing};
use crate::error::{AwsError, AwsErrorKind};
use crate::model::{ExportRequest, PatchPurpose};
use crate::ports::{
    ChangeStatus, Claim, InFlight, IncidentRecord, IncidentStatus, KeyPolicyChange, Ledger,
    Lineage, PortResult, StartRecord, SweepMarks, SweepRecord, SweepState, SweepWrite,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue,
    ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::future::join_all;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Records live as long as ListExports remembers an export (90 days).
const RETENTION_SECS: i64 = 90 * 24 * 3600;
/// Keys a BatchGetItem call may ask for, and writes a BatchWriteItem call may carry.
const BATCH_GET_MAX: usize = 100;
const BATCH_WRITE_MAX: usize = 25;
/// Times unprocessed keys or writes are sent again before giving up (about 3 s of pauses).
const BATCH_RETRIES: u32 = 6;

/// The pause before the `attempt`-th resend: 50 ms, doubling.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50 << attempt.saturating_sub(1).min(6))
}

fn unfinished(op: &'static str, left: usize) -> AwsError {
    AwsError::new(
        op,
        AwsErrorKind::Throttled,
        format!("{left} requests still unprocessed after {BATCH_RETRIES} resends"),
    )
}

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

    /// BatchGetItem, strongly consistent, 100 keys a call (calls concurrent); UnprocessedKeys
    /// are asked again after a growing pause, as AWS recommends.
    async fn batch_get(&self, op: &'static str, keys: Vec<Item>) -> PortResult<Vec<Item>> {
        let chunks = join_all(keys.chunks(BATCH_GET_MAX).map(|chunk| async move {
            let mut keys = chunk.to_vec();
            let mut items = Vec::new();
            for attempt in 0..=BATCH_RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| missing(op, &e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| classify(op, e))?;
                items.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if keys.is_empty() {
                    return Ok(items);
                }
            }
            Err(unfinished(op, keys.len()))
        }))
        .await;
        let mut items = Vec::new();
        for chunk in chunks {
            items.extend(chunk?);
        }
        Ok(items)
    }

    /// BatchWriteItem, 25 writes a call (calls concurrent); UnprocessedItems are sent again after
    /// a growing pause, as AWS recommends. DynamoDB refuses a call with two writes of one key, so
    /// only the last write of each key is sent. Every write lands, or this is an error.
    async fn batch_write(
        &self,
        op: &'static str,
        writes: impl DoubleEndedIterator<Item = Write>,
    ) -> PortResult<()> {
        let mut seen = HashSet::new();
        let mut requests = Vec::new();
        for w in writes.rev() {
            if seen.insert(w.key()) {
                requests.push(w.request().map_err(|e| missing(op, &e.to_string()))?);
            }
        }
        requests.reverse();
        let chunks = join_all(requests.chunks(BATCH_WRITE_MAX).map(|chunk| async move {
            let mut pending = chunk.to_vec();
            for attempt in 0..=BATCH_RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| classify(op, e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    return Ok(());
                }
            }
            Err(unfinished(op, pending.len()))
        }))
        .await;
        chunks.into_iter().collect()
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
mod outcomes;
use items::*;

#[async_trait]
impl Ledger for DynamoLedger {
    #[tracing::instrument(skip(self))]
    async fn claim(
        &self,
        export_arn: &str,
        owner: &str,
        now: i64,
        lease_secs: i64,
    ) -> PortResult<Claim> {
        const OP: &str = "ledger:ClaimIncident";
        let lease_until = now + lease_secs;
        // UpdateItem, not PutItem: the stored retry token, export time and attempt of an earlier
        // holder stay in the item, so a claim whose answer is lost loses nothing. An open
        // incident has no TTL (expiresAt is removed), so DynamoDB never deletes it under a lease.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(export_pk(export_arn)))
            .key("sk", s(INCIDENT_SK))
            .update_expression(
                "SET #st = :claimed, #ow = :me, leaseUntil = :lease, updatedAt = :now, \
                 exportArn = :arn, rootExportArn = if_not_exists(rootExportArn, :arn), \
                 attempt = if_not_exists(attempt, :zero) REMOVE expiresAt",
            )
            // Free; pending work to finish; a claim whose lease ran out; or our own claim
            // (the SDK sent an applied claim again after its answer was lost).
            .condition_expression(
                "attribute_not_exists(pk) OR #st = :pending \
                 OR (#st = :claimed AND (leaseUntil < :now OR #ow = :me))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_values(":pending", s(IncidentStatus::Pending.as_str()))
            .expression_attribute_values(":claimed", s(IncidentStatus::Claimed.as_str()))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":arn", s(export_arn))
            .expression_attribute_values(":zero", n(0))
            .return_values(ReturnValue::AllOld)
            // The item that failed the condition comes back in the error itself (PutItem and
            // UpdateItem API references, "ReturnValuesOnConditionCheckFailure"), so no read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
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
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    let held = match ccf.item().map(incident_from) {
                        Some(Ok(held)) => held,
                        // Without ALL_OLD in the error (an emulator may lack it), or with an
                        // item caught half-written (moto applies an update in steps; DynamoDB
                        // does not): a strongly consistent read.
                        _ => incident_from(
                            &self
                                .get(OP, export_pk(export_arn), INCIDENT_SK)
                                .await?
                                .ok_or_else(|| {
                                    missing(OP, "the incident that failed the condition")
                                })?,
                        )?,
                    };
                    if !held.status.is_open() {
                        // Settled for good: its listing (the caller's) can go; left behind,
                        // the sweep drops it.
                        if let Err(e) = self.unlist_open(export_arn).await {
                            tracing::warn!(error.message = %e.reason(), "open listing not removed; the sweep tidies it");
                        }
                    }
                    Ok(Claim::Held(held))
                }
                _ => Err(classify(OP, e)),
            },
        }
    }

    #[tracing::instrument(skip(self, record), fields(export_arn = %record.export_arn, status = record.status.as_str()))]
    async fn settle(&self, record: &IncidentRecord, now: i64) -> PortResult<bool> {
        const OP: &str = "ledger:SettleIncident";
        let owner = record
            .owner
            .as_deref()
            .ok_or_else(|| missing(OP, "an owner in the record to settle"))?;
        // Only the holder writes: a resend of an applied settle still finds its own token, so it
        // passes again; a delivery whose lease was taken over writes nothing.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(record, now)))
            .condition_expression("#ow = :me")
            .expression_attribute_names("#ow", "owner")
            .expression_attribute_values(":me", s(owner))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(classify(OP, e)),
        }
        // The listing follows, best effort: the settle has landed, and a listing left behind
        // only costs the sweep a read (it drops listings of settled incidents), while one not
        // moved forward still comes due when the claim's lease ends.
        let listing = match record.status {
            IncidentStatus::Claimed => Ok(()),
            // Given back (or waiting for a throttled call): due for the sweep now.
            IncidentStatus::Pending => self.list_open(&record.export_arn, now, now).await,
            _ => self.unlist_open(&record.export_arn).await,
        };
        if let Err(e) = listing {
            tracing::warn!(error.message = %e.reason(), "open listing not updated; the sweep tidies it");
        }
        Ok(true)
    }

    #[tracing::instrument(skip(self))]
    async fn open_incidents_due(&self, now: i64, limit: usize) -> PortResult<Vec<String>> {
        const OP: &str = "ledger:OpenIncidentsDue";
        // One partition, read in 1 MB pages: the cost follows the open incidents, not the table.
        let mut listed = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression("dueAt <= :now")
                .expression_attribute_values(":pk", s(OPEN_PK))
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            listed.extend(
                page.items()
                    .iter()
                    .filter_map(|i| get_s(i, "sk"))
                    .map(str::to_string),
            );
            start = page.last_evaluated_key;
            if start.is_none() || listed.len() >= limit.saturating_mul(4) {
                break;
            }
        }
        let keys = listed
            .iter()
            .map(|a| key(export_pk(a), INCIDENT_SK))
            .collect();
        let incidents: HashMap<String, IncidentRecord> = self
            .batch_get(OP, keys)
            .await?
            .iter()
            .filter_map(|i| incident_from(i).ok())
            .map(|r| (r.export_arn.clone(), r))
            .collect();
        let mut due = Vec::new();
        let mut settled = Vec::new();
        for arn in listed {
            match incidents.get(&arn) {
                // Listed but never claimed (its delivery died in between): handle it.
                None => due.push(arn),
                Some(r) if r.status == IncidentStatus::Pending => due.push(arn),
                Some(r) if r.status == IncidentStatus::Claimed && r.lease_until < now => {
                    due.push(arn)
                }
                Some(r) if r.status == IncidentStatus::Claimed => {}
                Some(_) => settled.push(arn),
            }
        }
        if !settled.is_empty() {
            self.batch_write(
                OP,
                settled
                    .iter()
                    .map(|a| Write::Delete(key(OPEN_PK.into(), a)))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
            .await?;
        }
        due.truncate(limit);
        Ok(due)
    }

    #[tracing::instrument(skip(self))]
    async fn list_open(&self, export_arn: &str, due_at: i64, now: i64) -> PortResult<()> {
        let mut item = key(OPEN_PK.into(), export_arn);
        item.insert("dueAt".into(), n(due_at));
        item.insert("updatedAt".into(), n(now));
        self.put("ledger:ListOpenIncident", item).await
    }

    #[tracing::instrument(skip(self))]
    async fn unlist_open(&self, export_arn: &str) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(OPEN_PK))
            .key("sk", s(export_arn))
            .send()
            .await
            .map_err(|e| classify("ledger:UnlistOpenIncident", e))?;
        Ok(())
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
        let mut item = base(export_pk(export_arn), START_SK, now);
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
            .get("ledger:GetStart", export_pk(export_arn), START_SK)
            .await?;
        Ok(item.as_ref().map(start_from))
    }

    #[tracing::instrument(skip(self, export_arns), fields(count = export_arns.len()))]
    async fn sweep_records(
        &self,
        export_arns: &[String],
    ) -> PortResult<HashMap<String, SweepRecord>> {
        let keys = export_arns
            .iter()
            .flat_map(|a| {
                [
                    key(export_pk(a), SWEEP_SK),
                    key(export_pk(a), START_SK),
                    key(export_pk(a), INCIDENT_SK),
                ]
            })
            .collect();
        let mut records: HashMap<String, SweepRecord> = HashMap::new();
        for item in self.batch_get("ledger:BatchGetSweepRecords", keys).await? {
            let Some(arn) = get_s(&item, "pk").and_then(|p| p.strip_prefix("EXPORT#")) else {
                continue;
            };
            let record = records.entry(arn.to_string()).or_default();
            match get_s(&item, "sk") {
                Some(SWEEP_SK) => record.state = Some(sweep_state_from(&item)),
                Some(START_SK) => record.start = Some(start_from(&item)),
                Some(INCIDENT_SK) => record.handled = incident_from(&item).is_ok(),
                _ => {}
            }
        }
        Ok(records)
    }

    #[tracing::instrument(skip(self, table_arns), fields(count = table_arns.len()))]
    async fn sweep_marks(&self, table_arns: &[String]) -> PortResult<SweepMarks> {
        let keys = table_arns
            .iter()
            .map(|t| key(table_pk(t), MARK_SK))
            .chain([
                key(CURSOR_PK.into(), CURSOR_SK),
                key("MARKER".into(), outcomes::FOLLOWING),
            ])
            .collect();
        let mut out = SweepMarks::default();
        for item in self.batch_get("ledger:BatchGetSweepMarks", keys).await? {
            match (get_s(&item, "pk"), get_s(&item, "sk")) {
                (Some(CURSOR_PK), Some(CURSOR_SK)) => {
                    out.cursor = get_s(&item, "table").map(str::to_string);
                }
                (Some("MARKER"), Some(outcomes::FOLLOWING)) => {
                    out.following = get_n(&item, "value").unwrap_or(0);
                }
                (Some(pk), Some(MARK_SK)) => {
                    if let (Some(table), Some(mark)) =
                        (pk.strip_prefix("TABLE#"), get_s(&item, "mark"))
                    {
                        out.marks.insert(table.to_string(), mark.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    #[tracing::instrument(skip(self, writes), fields(count = writes.len()))]
    async fn sweep_writes(&self, writes: &[SweepWrite], now: i64) -> PortResult<()> {
        self.batch_write(
            "ledger:WriteSweep",
            writes.iter().map(|w| sweep_write(w, now)),
        )
        .await
    }

    #[tracing::instrument(skip(self, change), fields(change_id = %change.change_id, key_arn = %change.key_arn))]
    async fn record_change(&self, change: &KeyPolicyChange, now: i64) -> PortResult<()> {
        const OP: &str = "ledger:RecordKeyPolicyChange";
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(change_item(change, now)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(ccf)) => {
                    let item = match ccf.item() {
                        Some(item) => Some(item.clone()),
                        None => {
                            self.get(OP, change_pk(&change.change_id), CHANGE_SK)
                                .await?
                        }
                    };
                    // The same change (same key, same after-policy, same actor), still only
                    // intended: our own write sent again after its answer was lost, or an
                    // interrupted delivery's record of this very change, which we resume.
                    match item.map(|i| change_from(&i)).transpose()? {
                        Some(c)
                            if c.key_arn == change.key_arn
                                && c.after == change.after
                                && c.actor == change.actor
                                && c.status == ChangeStatus::Pending =>
                        {
                            Ok(())
                        }
                        _ => Err(classify(OP, e)),
                    }
                }
                _ => Err(classify(OP, e)),
            },
        }
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
        let result = request
            .update_expression(update)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(ccf)) => {
                    let item = match ccf.item() {
                        Some(item) => Some(item.clone()),
                        None => self.get(OP, change_pk(change_id), CHANGE_SK).await?,
                    };
                    // Already in `to` with this very note: our move, sent again after its
                    // answer was lost.
                    Ok(item.is_some_and(|i| {
                        get_s(&i, "status") == Some(to.as_str())
                            && (note.is_none() || get_s(&i, "note") == note)
                    }))
                }
                _ => Err(classify(OP, e)),
            },
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

    async fn record_followed(
        &self,
        followed: &crate::domain::outcome::Followed,
        now: i64,
    ) -> PortResult<()> {
        self.put_followed(followed, now).await
    }

    async fn followed(
        &self,
        retry_export_arn: &str,
    ) -> PortResult<Option<crate::domain::outcome::Followed>> {
        self.get_followed(retry_export_arn).await
    }

    async fn end_followed(&self, retry_export_arn: &str, now: i64) -> PortResult<bool> {
        self.end_followed_record(retry_export_arn, now).await
    }

    async fn add_following(&self, delta: i64, now: i64) -> PortResult<()> {
        self.add_to_following(delta, now).await
    }

    #[tracing::instrument(skip(self, outcome), fields(root = %outcome.subject.root_export_arn, outcome = outcome.kind().as_str()))]
    async fn record_outcome(
        &self,
        outcome: &crate::domain::outcome::Outcome,
        now: i64,
    ) -> PortResult<(crate::ports::RecordedOutcome, bool)> {
        self.put_outcome(outcome, now).await
    }

    async fn outcome(
        &self,
        root_export_arn: &str,
    ) -> PortResult<Option<crate::ports::RecordedOutcome>> {
        self.get_outcome(root_export_arn).await
    }

    async fn outcome_published(&self, root_export_arn: &str, now: i64) -> PortResult<()> {
        self.set_outcome_published(root_export_arn, now).await
    }

    async fn outcomes_since(
        &self,
        since: i64,
        limit: usize,
    ) -> PortResult<Vec<crate::ports::RecordedOutcome>> {
        self.query_outcomes(since, limit).await
    }
}

#[cfg(test)]
mod tests;
