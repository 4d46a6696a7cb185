//! CloudWatch embedded metric format (EMF): JSON lines on stdout, which Lambda's log pipeline
//! turns into metrics without an API call. Namespace `DdbExportRemediator`.
//!
//! - per cause (dimension `Cause`): `FailuresSeen`, `Remediated`, `GaveUp`;
//! - per incident that closes (dimension `Cause`, the root failure's first cause):
//!   `IncidentsResolved`, `IncidentsGaveUp` or `IncidentsNeedPerson`, and for a resolved one
//!   `TimeToResolution` (seconds from the failure to the retry's completion); the three counts
//!   also without a dimension (the GAVE_UP alarm's metric);
//! - per result with applied actions (no dimension): `RetriesStarted`, `RetriesFailed`,
//!   `KeyPolicyChanges`;
//! - per result whose spoke role could not be assumed (no dimension): `SpokeUnreachable`
//!   (the account is in the report and the log line, not a dimension: one metric per account
//!   would cost per account);
//! - per sweep (no dimension): `SweepDuration` (ms), `SweepTables`, `SweepListCalls`,
//!   `SweepDescribeCalls`, `SweepPublished`, `SweepOlderThanLookback`, `SweepErrors`.
//!
//! An empty dimension set publishes a metric without dimensions ("A DimensionSet MAY be empty",
//! CloudWatch User Guide, "Specification: Embedded metric format").

use crate::domain::report::{AppliedStatus, ClosedIncident, RemediationResult};
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "DdbExportRemediator";

/// The EMF documents for one result. `elapsed_ms` is how long the invocation took (the sweep's
/// duration when the result is a sweep's). A healthy export or an observed start yields none.
pub fn documents(result: &RemediationResult, timestamp_ms: u128, elapsed_ms: u64) -> Vec<Value> {
    let remediated = result
        .applied
        .iter()
        .any(|a| a.status == AppliedStatus::Done);
    let gave_up = result.gave_up;
    let mut causes: Vec<&str> = result.findings.iter().map(|f| f.cause.code()).collect();
    causes.dedup();
    let mut docs: Vec<Value> = causes
        .into_iter()
        .map(|cause| {
            document(
                timestamp_ms,
                &[("Cause", cause)],
                &[
                    ("FailuresSeen", "Count", 1),
                    ("Remediated", "Count", u64::from(remediated)),
                    ("GaveUp", "Count", u64::from(gave_up)),
                ],
            )
        })
        .collect();
    if !result.applied.is_empty() {
        let count = |action: &str, status: AppliedStatus| {
            result
                .applied
                .iter()
                .filter(|a| a.action == action && a.status == status)
                .count() as u64
        };
        docs.push(document(
            timestamp_ms,
            &[],
            &[
                (
                    "RetriesStarted",
                    "Count",
                    count("RETRY_EXPORT", AppliedStatus::Done),
                ),
                (
                    "RetriesFailed",
                    "Count",
                    count("RETRY_EXPORT", AppliedStatus::Failed),
                ),
                (
                    "KeyPolicyChanges",
                    "Count",
                    count("PATCH_KEY_POLICY", AppliedStatus::Done),
                ),
            ],
        ));
    }
    if result.incident.spoke.as_ref().is_some_and(|s| !s.assumed) {
        docs.push(document(
            timestamp_ms,
            &[],
            &[("SpokeUnreachable", "Count", 1)],
        ));
    }
    // Outcomes: the remediation's own, and those the sweep's poller closed.
    let closed = result
        .outcome_detail
        .iter()
        .map(ClosedIncident::of)
        .chain(result.sweep.iter().flat_map(|s| s.outcomes.iter().cloned()));
    for c in closed {
        let mut metrics = vec![(c.outcome.metric(), "Count", 1)];
        if let Some(secs) = c.seconds_to_resolution {
            metrics.push(("TimeToResolution", "Seconds", secs.max(0) as u64));
        }
        docs.push(document(timestamp_ms, &[("Cause", &c.cause)], &metrics));
        // Without a dimension too: the GAVE_UP alarm and the outcome widget read the total.
        docs.push(document(
            timestamp_ms,
            &[],
            &[(c.outcome.metric(), "Count", 1)],
        ));
    }
    if let Some(s) = &result.sweep {
        docs.push(document(
            timestamp_ms,
            &[],
            &[
                ("SweepDuration", "Milliseconds", elapsed_ms),
                ("SweepTables", "Count", s.tables as u64),
                ("SweepListCalls", "Count", s.list_calls as u64),
                ("SweepDescribeCalls", "Count", s.describe_calls as u64),
                ("SweepPublished", "Count", s.published.len() as u64),
                (
                    "SweepOlderThanLookback",
                    "Count",
                    s.older_than_lookback as u64,
                ),
                ("SweepErrors", "Count", s.errors.len() as u64),
            ],
        ));
    }
    docs
}

/// One EMF document: the directive, then each dimension and metric as a member of the root.
fn document(
    timestamp_ms: u128,
    dimensions: &[(&str, &str)],
    metrics: &[(&str, &str, u64)],
) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms as u64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }]
        }),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for (name, _, value) in metrics {
        doc.insert((*name).into(), json!(value));
    }
    Value::Object(doc)
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
            gave_up: false,
            outcome: None,
            outcome_detail: None,
        }
    }

    fn metric_names(doc: &Value) -> Vec<String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_closed_incident_counts_under_its_outcome_and_cause_with_its_time() {
        use crate::domain::outcome::{on_completed, Followed, Subject};
        let followed = Followed {
            subject: Subject {
                root_export_arn: "r".into(),
                failed_at: Some(100),
                ..Subject::default()
            },
            retry_export_arn: "x".into(),
            attempt: 1,
            causes: vec!["BUCKET_OWNER_MISSING".into()],
            ..Followed::default()
        };
        let outcome = on_completed(&followed, Some(5), Some(460));
        let mut sweep = crate::domain::report::SweepReport::default();
        sweep
            .outcomes
            .push(crate::domain::report::ClosedIncident::of(&outcome));
        let mut r = result(&[], None, vec![]);
        r.sweep = Some(sweep);
        let docs = documents(&r, 0, 1);
        let closed = docs
            .iter()
            .find(|d| metric_names(d).contains(&"IncidentsResolved".to_string()))
            .expect("an IncidentsResolved document");
        assert_eq!(closed["Cause"], "BUCKET_OWNER_MISSING");
        assert_eq!(closed["IncidentsResolved"], 1);
        assert_eq!(closed["TimeToResolution"], 360);
        // A remediation's own outcome counts the same way.
        let mut own = result(&[], None, vec![]);
        own.outcome_detail = Some(outcome);
        assert!(documents(&own, 0, 1)
            .iter()
            .any(|d| metric_names(d).contains(&"TimeToResolution".to_string())));
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
            0,
        );
        // The cause's document, then the applied actions' (asserted below).
        assert_eq!(docs.len(), 2);
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
        let mut gave_up = result(
            &[Cause::SseMismatchRequiresKms],
            None,
            vec!["gave up: attempt 3 would exceed MAX_RETRIES=2".into()],
        );
        gave_up.gave_up = true;
        let docs = documents(&gave_up, 0, 0);
        assert_eq!(
            (docs[0]["Remediated"].as_u64(), docs[0]["GaveUp"].as_u64()),
            (Some(0), Some(1))
        );
        assert!(documents(&result(&[], None, vec![]), 0, 0).is_empty());
    }

    fn members_are_present(d: &Value) {
        for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            assert!(d.get(m["Name"].as_str().unwrap()).is_some(), "{m}");
        }
    }

    #[test]
    fn applied_actions_count_retries_started_and_failed_and_key_policy_changes() {
        let mut r = result(&[Cause::KmsKeyPolicyDeniesExporter], None, vec![]);
        let applied = |action, status| Applied {
            action,
            status,
            result: json!({}),
        };
        r.applied = vec![
            applied("PATCH_KEY_POLICY", AppliedStatus::Done),
            applied("RETRY_EXPORT", AppliedStatus::Done),
            applied("RETRY_EXPORT", AppliedStatus::Failed),
        ];
        let docs = documents(&r, 0, 0);
        assert_eq!(docs.len(), 2);
        let d = &docs[1];
        assert_eq!(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(
            (
                d["RetriesStarted"].as_u64(),
                d["RetriesFailed"].as_u64(),
                d["KeyPolicyChanges"].as_u64()
            ),
            (Some(1), Some(1), Some(1))
        );
        members_are_present(d);
        // A skipped retry is neither started nor failed.
        r.applied = vec![applied("RETRY_EXPORT", AppliedStatus::Skipped)];
        let d = &documents(&r, 0, 0)[1];
        assert_eq!(
            (d["RetriesStarted"].as_u64(), d["RetriesFailed"].as_u64()),
            (Some(0), Some(0))
        );
    }

    #[test]
    fn a_sweep_reports_its_duration_and_calls() {
        let mut r = result(&[], None, vec![]);
        r.sweep = Some(crate::domain::report::SweepReport {
            tables: 7,
            exports_listed: 30,
            list_calls: 9,
            describe_calls: 2,
            published: vec!["a".into(), "b".into()],
            errors: vec!["x".into()],
            older_than_lookback: 40,
            ..Default::default()
        });
        let docs = documents(&r, 5, 1234);
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d["_aws"]["Timestamp"], 5);
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "SweepDuration", "Unit": "Milliseconds"})
        );
        let got: Vec<u64> = [
            "SweepDuration",
            "SweepTables",
            "SweepListCalls",
            "SweepDescribeCalls",
            "SweepPublished",
            "SweepOlderThanLookback",
            "SweepErrors",
        ]
        .iter()
        .map(|k| d[*k].as_u64().unwrap())
        .collect();
        assert_eq!(got, [1234, 7, 9, 2, 2, 40, 1]);
        members_are_present(d);
    }
}
