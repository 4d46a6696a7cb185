//! What every cause family of the diagnosis room shares: the failure as reported, evidence
//! items, the finding constructor, the parsed bucket policy, and the request fixes a finding
//! proposes (plan applies them too). Imports only `model`, `arn` and `policy`.

use crate::arn::Arn;
use crate::model::{
    Cause, Confidence, Correction, Evidence, EvidenceItem, ExportRequest, Finding, Incident,
    IncidentSource, Remedy, SseAlgorithm,
};

/// The failure as reported: DescribeExport first, else the trigger's own code and message.
pub(crate) struct Failure<'a> {
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub source: &'static str,
}

pub(crate) fn failure<'a>(incident: &'a Incident, evidence: &'a Evidence) -> Failure<'a> {
    if let Some(e) = &evidence.export {
        if e.failure_code.is_some() || e.failure_message.is_some() {
            return Failure {
                code: e.failure_code.as_deref(),
                message: e.failure_message.as_deref(),
                source: "dynamodb:DescribeExport",
            };
        }
    }
    let source = match incident.source {
        IncidentSource::Cloudtrail => "cloudtrail:ExportTableToPointInTime",
        _ => "event",
    };
    Failure {
        code: incident.failure_code.as_deref(),
        message: incident.failure_message.as_deref(),
        source,
    }
}

pub(crate) fn ev(fact: impl Into<String>, source: &str) -> EvidenceItem {
    EvidenceItem {
        fact: fact.into(),
        source: source.to_string(),
    }
}

pub(crate) fn finding(
    cause: Cause,
    confidence: Confidence,
    summary: String,
    evidence: Vec<EvidenceItem>,
    text: String,
) -> Finding {
    Finding {
        cause,
        confidence,
        summary,
        evidence,
        remedy: Remedy {
            text,
            command: None,
            statement: None,
        },
        correction: None,
        patch: None,
    }
}

/// The bucket policy as the evidence holds it, parsed once for the SSE rules and the evaluator
/// (the JSON parse is most of a diagnosis's cost).
pub(crate) struct BucketDoc<'a> {
    pub text: &'a str,
    pub json: serde_json::Value,
}

pub(crate) fn bucket_doc(evidence: &Evidence) -> Option<BucketDoc<'_>> {
    let text = evidence.bucket.as_ref()?.policy.get()?;
    if text.len() > crate::policy::MAX_POLICY_BYTES {
        return None;
    }
    serde_json::from_str(text)
        .ok()
        .map(|json| BucketDoc { text, json })
}

/// The object ARN the export writes first, for matching policy resources.
pub(crate) fn started_object_arn(request: &ExportRequest, evidence: &Evidence) -> String {
    let partition = Arn::table("tableArn", &request.table_arn)
        .map(|a| a.partition)
        .unwrap_or_else(|_| "aws".into());
    let export_id = evidence
        .export
        .as_ref()
        .and_then(|e| e.export_arn.rsplit('/').next().map(str::to_string))
        .unwrap_or_else(|| "00000000000000-00000000".into());
    let prefix = request.key_prefix();
    format!(
        "arn:{partition}:s3:::{}/{prefix}AWSDynamoDB/{export_id}/_started",
        request.s3_bucket
    )
}

pub fn apply_correction(request: &mut ExportRequest, c: &Correction) {
    if let Some(o) = &c.s3_bucket_owner {
        request.s3_bucket_owner = Some(o.clone());
    }
    if let Some(a) = c.s3_sse_algorithm {
        request.s3_sse_algorithm = Some(a);
        if a == SseAlgorithm::Aes256 {
            request.s3_sse_kms_key_id = None;
        }
    }
    if let Some(k) = &c.s3_sse_kms_key_id {
        request.s3_sse_kms_key_id = Some(k.clone());
    }
}
