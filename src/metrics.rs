//! CloudWatch embedded metric format (EMF): one JSON line per result on stdout, which Lambda's
//! log pipeline turns into metrics without an API call. Namespace `DdbExportRemediator`.

use crate::domain::report::{AppliedStatus, RemediationResult};
use serde_json::{json, Value};

pub const NAMESPACE: &str = "DdbExportRemediator";

/// The EMF documents for one result: per cause, FailuresSeen / Remediated / GaveUp counts.
/// A result without findings (a healthy export, a sweep, an observed start) yields none.
pub fn documents(result: &RemediationResult, timestamp_ms: u128) -> Vec<Value> {
    let remediated = result
        .applied
        .iter()
        .any(|a| a.status == AppliedStatus::Done);
    let gave_up = result.notes.iter().any(|n| n.starts_with("gave up"));
    let mut causes: Vec<&str> = result.findings.iter().map(|f| f.cause.code()).collect();
    causes.dedup();
    causes
        .into_iter()
        .map(|cause| {
            json!({
                "_aws": {
                    "Timestamp": timestamp_ms as u64,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Cause"]],
                        "Metrics": [
                            {"Name": "FailuresSeen", "Unit": "Count"},
                            {"Name": "Remediated", "Unit": "Count"},
                            {"Name": "GaveUp", "Unit": "Count"}
                        ]
                    }]
                },
                "Cause": cause,
                "FailuresSeen": 1,
                "Remediated": u8::from(remediated),
                "GaveUp": u8::from(gave_up),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::{Applied, IncidentReport, RemediationResult};
    use crate::model::{Cause, Confidence, Finding, Incident, IncidentSource, Mode, Remedy};

    fn result(
        causes: &[Cause],
        applied: Option<AppliedStatus>,
        notes: Vec<String>,
    ) -> RemediationResult {
        RemediationResult {
            schema_version: 1,
            mode: Mode::Apply,
            incident: IncidentReport::from_incident(&Incident::new(IncidentSource::Event)),
            findings: causes
                .iter()
                .map(|c| Finding {
                    cause: *c,
                    confidence: Confidence::Confirmed,
                    summary: String::new(),
                    evidence: vec![],
                    remedy: Remedy {
                        text: String::new(),
                        command: None,
                        statement: None,
                    },
                    correction: None,
                    patch: None,
                })
                .collect(),
            plan: vec![],
            applied: applied
                .map(|s| {
                    vec![Applied {
                        action: "RETRY_EXPORT",
                        status: s,
                        result: json!({}),
                    }]
                })
                .unwrap_or_default(),
            notes,
            sweep: None,
            outside_write_scope: Vec::new(),
            rollback: None,
        }
    }

    #[test]
    fn one_document_per_cause_with_the_outcome() {
        let docs = documents(
            &result(
                &[Cause::BucketOwnerMissing],
                Some(AppliedStatus::Done),
                vec![],
            ),
            1_795_500_000_000,
        );
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Cause"]])
        );
        assert_eq!(
            (
                d["Cause"].as_str(),
                d["FailuresSeen"].as_u64(),
                d["Remediated"].as_u64(),
                d["GaveUp"].as_u64()
            ),
            (Some("BUCKET_OWNER_MISSING"), Some(1), Some(1), Some(0))
        );
        // Every metric named in the directive is a member of the document, as EMF requires.
        for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            assert!(d.get(m["Name"].as_str().unwrap()).is_some());
        }
    }

    #[test]
    fn give_ups_count_and_healthy_results_emit_nothing() {
        let docs = documents(
            &result(
                &[Cause::SseMismatchRequiresKms],
                None,
                vec!["gave up: attempt 3 would exceed MAX_RETRIES=2".into()],
            ),
            0,
        );
        assert_eq!(
            (docs[0]["Remediated"].as_u64(), docs[0]["GaveUp"].as_u64()),
            (Some(0), Some(1))
        );
        assert!(documents(&result(&[], None, vec![]), 0).is_empty());
    }
}
