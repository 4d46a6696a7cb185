//! The ledger's outcome records: the retries the function follows, and each incident's one
//! outcome (a guard item keyed by the root export, and an index row to list them by time).

use super::items::*;
use super::*;
use crate::domain::outcome::{Followed, Outcome};
use crate::ports::RecordedOutcome;

pub(super) const FOLLOW_SK: &str = "FOLLOW";
pub(super) const OUTCOME_SK: &str = "OUTCOME";
pub(super) const OUTCOMES_PK: &str = "OUTCOMES";
/// The `MARKER` row counting followed retries not yet ended.
pub(super) const FOLLOWING: &str = "following";

fn index_sk(recorded_at: i64, root: &str) -> String {
    format!("{recorded_at:012}#{root}")
}

pub(super) fn followed_item(f: &Followed, now: i64) -> Item {
    let mut item = base(export_pk(&f.retry_export_arn), FOLLOW_SK, now);
    // An open incident does not expire (the TTL would end it without an outcome).
    item.remove("expiresAt");
    item.insert(
        "followed".into(),
        s(serde_json::to_string(f).unwrap_or_default()),
    );
    item
}

pub(super) fn followed_from(item: &Item) -> PortResult<Followed> {
    const OP: &str = "ledger:GetFollowed";
    get_s(item, "followed")
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| missing(OP, "a readable followed record"))
}

pub(super) fn outcome_item(pk: String, sk: &str, r: &RecordedOutcome, now: i64) -> Item {
    let mut item = base(pk, sk, now);
    item.insert(
        "outcome".into(),
        s(serde_json::to_string(&r.outcome).unwrap_or_default()),
    );
    item.insert("kind".into(), s(r.outcome.kind().as_str()));
    item.insert(
        "rootExportArn".into(),
        s(&r.outcome.subject.root_export_arn),
    );
    item.insert("recordedAt".into(), n(r.recorded_at));
    item.insert("published".into(), AttributeValue::Bool(r.published));
    item
}

pub(super) fn outcome_from(item: &Item) -> PortResult<RecordedOutcome> {
    const OP: &str = "ledger:GetOutcome";
    let outcome: Outcome = get_s(item, "outcome")
        .and_then(|t| serde_json::from_str(t).ok())
        .ok_or_else(|| missing(OP, "a readable outcome"))?;
    Ok(RecordedOutcome {
        outcome,
        recorded_at: get_n(item, "recordedAt").unwrap_or(0),
        published: item
            .get("published")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}

impl DynamoLedger {
    pub(super) async fn put_followed(&self, f: &Followed, now: i64) -> PortResult<()> {
        self.put("ledger:RecordFollowed", followed_item(f, now))
            .await
    }

    /// `ended` is set once, under a condition: exactly one caller sees `true`.
    pub(super) async fn end_followed_record(&self, retry: &str, now: i64) -> PortResult<bool> {
        const OP: &str = "ledger:EndFollowed";
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(export_pk(retry)))
            .key("sk", s(FOLLOW_SK))
            .update_expression("SET ended = :now, expiresAt = :exp")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(ended)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(now + RETENTION_SECS))
            .send()
            .await;
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

    /// An atomic counter: UpdateItem `ADD` creates the attribute at 0 when absent and adds
    /// (a negative number subtracts) without a read (DynamoDB Developer Guide, "Using update
    /// expressions in DynamoDB",
    /// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html).
    pub(super) async fn add_to_following(&self, delta: i64, now: i64) -> PortResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s("MARKER"))
            .key("sk", s(FOLLOWING))
            .update_expression("ADD #v :d SET updatedAt = :now")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":d", n(delta))
            .expression_attribute_values(":now", n(now))
            .send()
            .await
            .map_err(|e| classify("ledger:AddFollowing", e))?;
        Ok(())
    }

    pub(super) async fn get_followed(&self, retry: &str) -> PortResult<Option<Followed>> {
        match self
            .get("ledger:GetFollowed", export_pk(retry), FOLLOW_SK)
            .await?
        {
            Some(item) => Ok(Some(followed_from(&item)?)),
            None => Ok(None),
        }
    }

    /// The guard item is written under `attribute_not_exists(pk)`: one outcome per root export,
    /// whichever run (duplicate delivery, concurrent sweep) decides it first.
    pub(super) async fn put_outcome(
        &self,
        outcome: &Outcome,
        now: i64,
    ) -> PortResult<(RecordedOutcome, bool)> {
        const OP: &str = "ledger:RecordOutcome";
        let root = &outcome.subject.root_export_arn;
        let fresh = RecordedOutcome {
            outcome: outcome.clone(),
            recorded_at: now,
            published: false,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(outcome_item(export_pk(root), OUTCOME_SK, &fresh, now)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        let (recorded, ours) = match result {
            Ok(_) => (fresh, true),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                let item = self
                    .get(OP, export_pk(root), OUTCOME_SK)
                    .await?
                    .ok_or_else(|| missing(OP, "the outcome that failed the condition"))?;
                (outcome_from(&item)?, false)
            }
            Err(e) => return Err(classify(OP, e)),
        };
        // The index row (same key for every writer: the recorded time is the guard's), written
        // again by whoever meets the outcome unpublished, so a crash in between loses no row.
        if !recorded.published {
            self.put(
                "ledger:IndexOutcome",
                outcome_item(
                    OUTCOMES_PK.into(),
                    &index_sk(recorded.recorded_at, root),
                    &recorded,
                    now,
                ),
            )
            .await?;
        }
        Ok((recorded, ours))
    }

    pub(super) async fn get_outcome(&self, root: &str) -> PortResult<Option<RecordedOutcome>> {
        match self
            .get("ledger:GetOutcome", export_pk(root), OUTCOME_SK)
            .await?
        {
            Some(item) => Ok(Some(outcome_from(&item)?)),
            None => Ok(None),
        }
    }

    pub(super) async fn set_outcome_published(&self, root: &str, now: i64) -> PortResult<()> {
        let Some(mut r) = self.get_outcome(root).await? else {
            return Ok(());
        };
        r.published = true;
        self.put(
            "ledger:OutcomePublished",
            outcome_item(export_pk(root), OUTCOME_SK, &r, now),
        )
        .await?;
        self.put(
            "ledger:OutcomePublished",
            outcome_item(OUTCOMES_PK.into(), &index_sk(r.recorded_at, root), &r, now),
        )
        .await
    }

    pub(super) async fn query_outcomes(
        &self,
        since: i64,
        limit: usize,
    ) -> PortResult<Vec<RecordedOutcome>> {
        const OP: &str = "ledger:ListOutcomes";
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :since")
                .expression_attribute_values(":pk", s(OUTCOMES_PK))
                .expression_attribute_values(":since", s(format!("{since:012}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for item in page.items() {
                out.push(outcome_from(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}
