//! Plan (pure): findings + evidence + config → actions (SPEC §7.1), or why there are none.

use super::diagnosis::apply_correction;
use super::evidence::Evidence;
use crate::config::Config;
use crate::intake::CLIENT_TOKEN_PREFIX;
use crate::model::{Correction, ExportRequest, ExportStatus, Finding, Incident, IncidentSource};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RetryExport(Retry),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// The parameters to send, `ExportTime` always explicit when known.
    pub request: ExportRequest,
    pub client_token: String,
    /// 1 for the first retry of a root export.
    pub attempt: u32,
    /// What differs from the failed export, in words.
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Why an action was not planned.
    pub notes: Vec<String>,
}

impl Plan {
    fn none(note: impl Into<String>) -> Self {
        Self {
            actions: Vec::new(),
            notes: vec![note.into()],
        }
    }
}

/// The lineage encoded in our ClientToken: `ddbxr-<32 hex of the root export ARN's SHA-256>-<attempt>`.
pub fn client_token(root_hash: &str, attempt: u32) -> String {
    format!("{CLIENT_TOKEN_PREFIX}{root_hash}-{attempt}")
}

pub fn root_hash(export_arn: &str) -> String {
    let digest = Sha256::digest(export_arn.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// `(root hash, attempt)` when the token is one this function issued.
pub fn parse_token(token: &str) -> Option<(String, u32)> {
    let rest = token.strip_prefix(CLIENT_TOKEN_PREFIX)?;
    let (hash, attempt) = rest.rsplit_once('-')?;
    let ok = hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(())?;
    Some((hash.to_string(), attempt.parse().ok()?))
}

pub fn plan(
    incident: &Incident,
    evidence: &Evidence,
    findings: &[Finding],
    config: &Config,
) -> Plan {
    if incident.source == IncidentSource::Preflight {
        return Plan::none(
            "preflight: nothing has run yet; the findings give the corrected command",
        );
    }
    let Some(export) = &evidence.export else {
        return Plan::none(
            "no export was started (the call itself failed): the findings give the corrected command for the caller",
        );
    };
    if export.status != ExportStatus::Failed {
        return Plan::none(format!("export is {:?}: nothing to retry", export.status));
    }
    if findings.is_empty() {
        return Plan::none("no findings: nothing to fix");
    }
    let unfixable: Vec<&str> = findings
        .iter()
        .filter(|f| f.correction.is_none())
        .map(|f| f.cause.code())
        .collect();
    if !unfixable.is_empty() {
        return Plan::none(format!(
            "no retry: not every finding is fixed by export parameters ({})",
            unfixable.join(", ")
        ));
    }

    let (root, attempt) = match export.request.client_token.as_deref().and_then(parse_token) {
        Some((root, previous)) => (root, previous + 1),
        None => (root_hash(&export.export_arn), 1),
    };
    if attempt > config.max_retries {
        return Plan::none(format!(
            "no retry: attempt {attempt} would exceed MAX_RETRIES={}",
            config.max_retries
        ));
    }

    let original = &export.request;
    let corrections: Vec<&Correction> = findings
        .iter()
        .filter_map(|f| f.correction.as_ref())
        .collect();
    if conflicting(&corrections) {
        return Plan::none("no retry: findings ask for conflicting parameters");
    }
    let mut request = original.clone();
    for c in &corrections {
        apply_correction(&mut request, c);
    }
    let mut changes = describe_changes(original, &request);
    if changes.is_empty() {
        return Plan::none(
            "no retry: the corrections change no parameter of the failed export (a retry would fail the same way)",
        );
    }
    let pitr = evidence.pitr.get();
    let latest = pitr.and_then(|p| p.latest_restorable);
    let earliest = pitr.and_then(|p| p.earliest_restorable);
    request.export_time = match (original.export_time, earliest, latest) {
        (Some(t), Some(lo), Some(hi)) if t < lo || t > hi => {
            changes.push(format!(
                "ExportTime {t} is outside the restorable window; using the latest restorable time {hi}"
            ));
            Some(hi)
        }
        (Some(t), _, _) => Some(t),
        (None, _, Some(hi)) => {
            changes.push(format!(
                "ExportTime pinned to the latest restorable time {hi}"
            ));
            Some(hi)
        }
        (None, _, None) => None,
    };
    request.client_token = Some(client_token(&root, attempt));
    Plan {
        actions: vec![Action::RetryExport(Retry {
            client_token: client_token(&root, attempt),
            request,
            attempt,
            changes,
        })],
        notes: Vec::new(),
    }
}

fn describe_changes(before: &ExportRequest, after: &ExportRequest) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |name: &str, a: Option<String>, b: Option<String>| {
        if a != b {
            out.push(format!(
                "{name}: {} -> {}",
                a.as_deref().unwrap_or("(none)"),
                b.as_deref().unwrap_or("(none)")
            ));
        }
    };
    diff(
        "S3BucketOwner",
        before.s3_bucket_owner.clone(),
        after.s3_bucket_owner.clone(),
    );
    diff(
        "S3SseAlgorithm",
        before.s3_sse_algorithm.map(|a| a.as_str().to_string()),
        after.s3_sse_algorithm.map(|a| a.as_str().to_string()),
    );
    diff(
        "S3SseKmsKeyId",
        before.s3_sse_kms_key_id.clone(),
        after.s3_sse_kms_key_id.clone(),
    );
    out
}

fn conflicting(corrections: &[&Correction]) -> bool {
    fn differ<T: PartialEq>(values: impl Iterator<Item = T>) -> bool {
        let v: Vec<T> = values.collect();
        v.windows(2).any(|w| w[0] != w[1])
    }
    differ(
        corrections
            .iter()
            .filter_map(|c| c.s3_bucket_owner.as_ref()),
    ) || differ(corrections.iter().filter_map(|c| c.s3_sse_algorithm))
        || differ(
            corrections
                .iter()
                .filter_map(|c| c.s3_sse_kms_key_id.as_ref()),
        )
}
