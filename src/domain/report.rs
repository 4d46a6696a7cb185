//! The report room: the result of one invocation (docs/configuration.md, the result), returned, logged as one JSON line,
//! published. Act hands it typed outcomes; their JSON is built here, once.

use super::plan::{Action, Retry};
use crate::model::{Finding, Incident, IncidentSource, Mode, PatchPurpose};
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
    /// Buckets or keys a retry needed that EXPORT_BUCKETS / KEY_ARNS leave out (docs/safety.md, "Safety").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outside_write_scope: Vec<super::plan::ScopeGap>,
    /// Sweep results (a sweep has no single incident).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepReport>,
    /// A rollback's outcome (docs/safety.md, "Key-policy patch").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
    /// The plan gave up on the incident (the `GaveUp` metric); the notes say why.
    #[serde(skip)]
    pub gave_up: bool,
    /// How the incident ended, when this result closes it (`RESOLVED`, `GAVE_UP`,
    /// `NEEDS_PERSON`): a top-level field, so that an EventBridge rule matches it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<super::outcome::OutcomeKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_detail: Option<super::outcome::Outcome>,
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
    /// The account and Region the export ran in, when the trigger or its ARN says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Organization mode: the spoke role the reads and the retry went through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spoke: Option<SpokeAccess>,
}

/// How the function reached the incident's account (organization mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpokeAccess {
    pub role_arn: String,
    /// `false`: AssumeRole failed, so every fact of that account is Unknown and nothing changed.
    pub assumed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
            account: i.place.as_ref().map(|p| p.account.clone()),
            region: i.place.as_ref().map(|p| p.region.clone()),
            spoke: None,
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

/// Why an action failed, typed: act decides on `retryable`; `error_type` is the report's
/// `errorType`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActError {
    pub error_type: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl ActError {
    fn json(&self) -> Value {
        json!({"errorType": self.error_type, "message": self.message, "retryable": self.retryable})
    }
}

/// What act's RETRY_EXPORT did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    Started {
        export_arn: String,
        client_token: String,
    },
    Failed(ActError),
}

/// What act's PATCH_KEY_POLICY did.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOutcome {
    Patched {
        key_arn: String,
        sid: String,
        change_id: String,
        purpose: PatchPurpose,
        grantees: Vec<String>,
        /// The read-back showed the policy written.
        confirmed: bool,
        note: Option<String>,
    },
    /// The statement is already in the key policy.
    AlreadyPresent { key_arn: String, sid: String },
    Failed {
        key_arn: String,
        sid: String,
        /// Set once the audit record exists.
        change_id: Option<String>,
        error: ActError,
    },
}

/// What a rollback's ROLLBACK_KEY_POLICY write did.
#[derive(Debug, Clone, PartialEq)]
pub enum RollbackStep {
    Restored {
        key_arn: String,
        change_id: String,
        confirmed: bool,
    },
    Failed {
        key_arn: String,
        change_id: String,
        error: ActError,
    },
}

const EXPORTER_CAVEAT: &str = "which principal S3 and KMS see for an export (the role or its account) is unconfirmed: if the export still fails, the key's administrators may need to grant the account";

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (base.as_object_mut(), extra) {
        a.extend(b);
    }
    base
}

impl RetryOutcome {
    pub fn applied(&self) -> Applied {
        let (status, result) = match self {
            Self::Started {
                export_arn,
                client_token,
            } => (
                AppliedStatus::Done,
                json!({"exportArn": export_arn, "clientToken": client_token}),
            ),
            Self::Failed(e) => (AppliedStatus::Failed, e.json()),
        };
        Applied {
            action: "RETRY_EXPORT",
            status,
            result,
        }
    }
}

impl PatchOutcome {
    /// The change record's id, once one was written.
    pub fn change_id(&self) -> Option<&str> {
        match self {
            Self::Patched { change_id, .. } => Some(change_id),
            Self::Failed { change_id, .. } => change_id.as_deref(),
            Self::AlreadyPresent { .. } => None,
        }
    }

    pub fn applied(&self) -> Applied {
        let (status, result) = match self {
            Self::Patched {
                key_arn,
                sid,
                change_id,
                purpose,
                grantees,
                confirmed,
                note,
            } => {
                let mut r = json!({"keyArn": key_arn, "sid": sid, "changeId": change_id,
                    "purpose": purpose, "grantees": grantees, "confirmed": confirmed});
                if let Some(n) = note {
                    r["note"] = json!(n);
                }
                if *purpose == PatchPurpose::Exporter {
                    r["caveat"] = json!(EXPORTER_CAVEAT);
                }
                (AppliedStatus::Done, r)
            }
            Self::AlreadyPresent { key_arn, sid } => (
                AppliedStatus::Skipped,
                json!({"reason": "the statement is already in the key policy", "keyArn": key_arn, "sid": sid}),
            ),
            Self::Failed {
                key_arn,
                sid,
                change_id,
                error,
            } => {
                let mut ids = json!({"keyArn": key_arn, "sid": sid});
                if let Some(id) = change_id {
                    ids["changeId"] = json!(id);
                }
                (AppliedStatus::Failed, with(error.json(), ids))
            }
        };
        Applied {
            action: "PATCH_KEY_POLICY",
            status,
            result,
        }
    }
}

impl RollbackStep {
    pub fn applied(&self) -> Applied {
        let (status, result) = match self {
            Self::Restored {
                key_arn,
                change_id,
                confirmed,
            } => (
                AppliedStatus::Done,
                json!({"keyArn": key_arn, "changeId": change_id, "confirmed": confirmed}),
            ),
            Self::Failed {
                key_arn,
                change_id,
                error,
            } => (
                AppliedStatus::Failed,
                with(
                    error.json(),
                    json!({"keyArn": key_arn, "changeId": change_id}),
                ),
            ),
        };
        Applied {
            action: "ROLLBACK_KEY_POLICY",
            status,
            result,
        }
    }
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
    /// FAILED exports not published because their incident is already in the ledger (a
    /// delivery reached it; the open listing and the takeover carry it from there).
    #[serde(skip_serializing_if = "is_zero")]
    pub already_handled: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The table an earlier, unfinished sweep stopped at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_from: Option<String>,
    /// Where this sweep stopped for lack of time; the next one resumes there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// Organization mode: what the run covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrgSweepReport>,
    /// Open incidents handled again by this sweep: their claim's lease had run out (the
    /// delivery died), or they were given back PENDING.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taken_over: Vec<String>,
    /// Incidents this run closed (a followed retry ended): each was published as its own
    /// `DynamoDB Export Remediation` event with its outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<ClosedIncident>,
}

/// An incident the sweep's poller closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosedIncident {
    pub root_export_arn: String,
    pub outcome: super::outcome::OutcomeKind,
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_resolution: Option<i64>,
}

impl ClosedIncident {
    pub fn of(o: &super::outcome::Outcome) -> Self {
        Self {
            root_export_arn: o.subject.root_export_arn.clone(),
            outcome: o.kind(),
            cause: o.cause().to_string(),
            seconds_to_resolution: o.seconds_to_resolution(),
        }
    }
}

/// The organization sweep's own counts (ORG_MODE=on).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgSweepReport {
    /// Exports the in-flight poller described (tracked since their start event).
    pub polled: usize,
    /// Of those, still running (checked again later, with back-off).
    pub still_running: usize,
    /// Safety-net shards (account, Region) swept in this run, and in the organization.
    pub shards_swept: usize,
    pub shards_total: usize,
    /// Shards or polled exports whose spoke role could not be assumed.
    pub unreachable: usize,
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
        self.already_handled += part.already_handled;
        self.errors.extend(part.errors);
        self.outcomes.extend(part.outcomes);
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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

#[cfg(test)]
mod tests {
    use super::*;

    fn denied() -> ActError {
        ActError {
            error_type: "AccessDenied",
            message: "kms:PutKeyPolicy access denied: no".into(),
            retryable: false,
        }
    }

    #[test]
    fn act_outcomes_keep_the_report_json_shape() {
        let failed = PatchOutcome::Failed {
            key_arn: "k".into(),
            sid: "s".into(),
            change_id: Some("kpc-1".into()),
            error: denied(),
        };
        assert_eq!(failed.change_id(), Some("kpc-1"));
        let a = failed.applied();
        assert_eq!(a.status, AppliedStatus::Failed);
        assert_eq!(
            a.result.to_string(),
            r#"{"errorType":"AccessDenied","message":"kms:PutKeyPolicy access denied: no","retryable":false,"keyArn":"k","sid":"s","changeId":"kpc-1"}"#
        );
        let patched = PatchOutcome::Patched {
            key_arn: "k".into(),
            sid: "s".into(),
            change_id: "kpc-2".into(),
            purpose: PatchPurpose::Exporter,
            grantees: vec!["g".into()],
            confirmed: false,
            note: Some("n".into()),
        };
        let r = patched.applied().result;
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "keyArn",
                "sid",
                "changeId",
                "purpose",
                "grantees",
                "confirmed",
                "note",
                "caveat"
            ]
        );
        let retry = RetryOutcome::Failed(ActError {
            retryable: true,
            ..denied()
        })
        .applied();
        assert_eq!(
            (retry.action, retry.result["retryable"].as_bool()),
            ("RETRY_EXPORT", Some(true))
        );
        let restored = RollbackStep::Restored {
            key_arn: "k".into(),
            change_id: "kpc-3".into(),
            confirmed: true,
        }
        .applied();
        assert_eq!(
            restored.result.to_string(),
            r#"{"keyArn":"k","changeId":"kpc-3","confirmed":true}"#
        );
    }
}
