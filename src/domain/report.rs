//! The result of one invocation (SPEC §6): returned, logged as one JSON line, published.

use super::plan::{Action, Retry};
use crate::model::{Finding, Incident, IncidentSource, Mode};
use serde::Serialize;
use serde_json::{json, Value};

pub const SCHEMA_VERSION: u32 = 1;

/// The readable `text` of a result, and the `Serialize` that adds it.
#[path = "report_text.rs"]
pub mod text;

/// `remote = "Self"`: the derived serializer is `RemediationResult::serialize`; the trait impl
/// in `text` calls it and appends `text`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", remote = "Self")]
pub struct RemediationResult {
    pub schema_version: u32,
    pub mode: Mode,
    pub incident: IncidentReport,
    pub findings: Vec<Finding>,
    pub plan: Vec<Value>,
    pub applied: Vec<Applied>,
    /// Why something was not planned or done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Buckets or keys a retry needed that EXPORT_BUCKETS / KEY_ARNS leave out (SPEC §7.1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_write_scope: Vec<super::plan::ScopeGap>,
    /// Sweep results (a sweep has no single incident).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// A rollback's outcome (SPEC §7.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RollbackOutcome {
    /// The before-policy is back.
    Restored,
    /// The key's policy already is the before-policy, or the change was rolled back before.
    NothingToDo,
    /// The policy is no longer what this function wrote: nothing changed.
    RefusedDrift,
    /// Diagnose or plan mode: what apply would do, nothing changed.
    WouldRestore,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    pub change_id: String,
    pub key_arn: String,
    pub outcome: RollbackOutcome,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentReport {
    pub source: IncidentSource,
    pub export_arn: Option<String>,
    pub table_arn: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub caller: Option<String>,
    /// With no caller known: the principals the diagnosis considered instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caller_candidates: Vec<String>,
}

impl IncidentReport {
    pub fn from_incident(i: &Incident) -> Self {
        Self {
            source: i.source,
            export_arn: i.export_arn.clone(),
            table_arn: i.table_arn.clone(),
            failure_code: i.failure_code.clone(),
            failure_message: i.failure_message.clone(),
            caller: i.caller.clone(),
            caller_candidates: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppliedStatus {
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub action: &'static str,
    pub status: AppliedStatus,
    pub result: Value,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub tables: usize,
    pub exports_listed: usize,
    pub list_calls: usize,
    pub describe_calls: usize,
    /// Batched ledger look-ups (one per table with open exports).
    pub ledger_reads: usize,
    /// FAILED exports found (the report-only sweep without a ledger).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_exports: Vec<String>,
    /// `DynamoDB Export Failed` events published, one per new failure.
    pub published: Vec<String>,
    /// FAILED exports that ended (or, without an end time, started) before the look-back
    /// window (SWEEP_LOOKBACK_HOURS): counted, never published or retried.
    pub older_than_lookback: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The table an earlier, unfinished sweep stopped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
    /// Where this sweep stopped for lack of time; the next one resumes there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
}

impl SweepReport {
    /// Adds one table's counts and lists to the sweep's.
    pub fn absorb(&mut self, part: SweepReport) {
        self.tables += part.tables;
        self.exports_listed += part.exports_listed;
        self.list_calls += part.list_calls;
        self.describe_calls += part.describe_calls;
        self.ledger_reads += part.ledger_reads;
        self.failed_exports.extend(part.failed_exports);
        self.published.extend(part.published);
        self.older_than_lookback += part.older_than_lookback;
        self.errors.extend(part.errors);
    }
}

pub fn action_name(action: &Action) -> &'static str {
    match action {
        Action::RetryExport(_) => "RETRY_EXPORT",
        Action::PatchKeyPolicy(_) => "PATCH_KEY_POLICY",
    }
}

/// A planned action as the report shows it: SDK parameter names, the token and what changed.
pub fn plan_entry(action: &Action) -> Value {
    match action {
        Action::RetryExport(r) => json!({
            "action": action_name(action),
            "params": retry_params(r),
            "attempt": r.attempt,
            "changes": r.changes,
        }),
        Action::PatchKeyPolicy(p) => json!({
            "action": action_name(action),
            "keyArn": p.key_arn,
            "sid": p.sid,
            "purpose": p.purpose,
            "statement": p.statement,
        }),
    }
}

fn retry_params(r: &Retry) -> Value {
    let q = &r.request;
    let mut p = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    put("TableArn", Some(json!(q.table_arn)));
    put("S3Bucket", Some(json!(q.s3_bucket)));
    put(
        "S3BucketOwner",
        q.s3_bucket_owner.as_ref().map(|v| json!(v)),
    );
    put("S3Prefix", q.s3_prefix.as_ref().map(|v| json!(v)));
    put(
        "S3SseAlgorithm",
        q.s3_sse_algorithm.map(|v| json!(v.as_str())),
    );
    put(
        "S3SseKmsKeyId",
        q.s3_sse_kms_key_id.as_ref().map(|v| json!(v)),
    );
    put("ExportFormat", q.export_format.as_ref().map(|v| json!(v)));
    put("ExportType", q.export_type.as_ref().map(|v| json!(v)));
    put("ExportTime", q.export_time.map(|v| json!(v)));
    put("ClientToken", Some(json!(r.client_token)));
    Value::Object(p)
}
