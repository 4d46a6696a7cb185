//! The result's `text`: one plain-text paragraph a person reads in an e-mail (docs/observability.md, "Reports and alarms"): the
//! cause(s) and confidence, the export, the first line of the first remedy, what was applied and
//! where the full result is. EventBridge's input transformer cannot cut a string to its first
//! line, so the function writes this paragraph and the rule's template only adds links.
//!
//! EventBridge inserts a value into a string template without escaping it ("Common issues with
//! transforming input", EventBridge User Guide), so the paragraph carries no double quote,
//! backslash or control character: one line, safe inside `"<text>"`.

use super::{AppliedStatus, RemediationResult};
use serde::{Serialize, Serializer};

/// Longest paragraph, in characters: an e-mail summary, not the result.
pub const MAX_CHARS: usize = 1000;

/// Where the full result is, named the same way for every result.
const FULL_RESULT: &str = "Full result: the remediation result line in the function's log";

impl Serialize for RemediationResult {
    /// The derived fields (report.rs, `remote = "Self"`) followed by `text`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct WithText<'a> {
            #[serde(flatten, serialize_with = "derived")]
            result: &'a RemediationResult,
            text: String,
            /// The outcome's first line, on its own (the notification's first line).
            #[serde(skip_serializing_if = "Option::is_none")]
            headline: Option<String>,
        }
        fn derived<S: Serializer>(r: &&RemediationResult, s: S) -> Result<S::Ok, S::Error> {
            RemediationResult::serialize(r, s)
        }
        WithText {
            result: self,
            text: text(self),
            headline: self
                .outcome_detail
                .as_ref()
                .map(|o| plain(&crate::domain::outcome::text::headline(o))),
        }
        .serialize(serializer)
    }
}

/// The paragraph for one result.
pub fn text(r: &RemediationResult) -> String {
    if let Some(o) = &r.outcome_detail {
        // An incident that closes: the outcome's message after its first line (the event's
        // `headline`, which the notification shows first), its lines as sentences.
        let lines: Vec<String> = crate::domain::outcome::text::message(o)
            .lines()
            .skip(1)
            .map(end_sentence)
            .collect();
        return clip(&plain(&lines.join(" ")), MAX_CHARS);
    }
    let mut parts: Vec<String> = Vec::new();
    let export = r
        .incident
        .export_arn
        .as_deref()
        .map(|a| format!("export {a}"))
        .or_else(|| {
            r.incident
                .table_arn
                .as_deref()
                .map(|t| format!("an export of {t}"))
        });
    if !r.findings.is_empty() {
        let causes: Vec<String> = r
            .findings
            .iter()
            .map(|f| format!("{} ({})", f.cause.code(), name(f.confidence)))
            .collect();
        let subject = export.unwrap_or_else(|| "an export".into());
        parts.push(format!("{} for {subject}.", causes.join(", ")));
        if let Some(line) = r
            .findings
            .iter()
            .map(|f| first_line(&f.remedy.text))
            .find(|l| !l.is_empty())
        {
            parts.push(format!("Remedy: {}", end_sentence(line)));
        }
        parts.push(applied(r));
        for gap in &r.outside_write_scope {
            parts.push(format!(
                "Not retried by the function: {} is outside {}; to allow it, redeploy with {}.",
                gap.value, gap.parameter, gap.fragment
            ));
        }
    } else if let Some(s) = &r.sweep {
        let mut extra = String::new();
        if s.older_than_lookback > 0 {
            extra.push_str(&format!(
                ", {} older than the look-back not published",
                s.older_than_lookback
            ));
        }
        if !s.errors.is_empty() {
            extra.push_str(&format!(", {} errors", s.errors.len()));
        }
        parts.push(format!(
            "Sweep: {} tables, {} exports listed, {} failures published ({} ListExports, {} DescribeExport calls{extra}).",
            s.tables,
            s.exports_listed,
            s.published.len(),
            s.list_calls,
            s.describe_calls,
        ));
    } else if let Some(rb) = &r.rollback {
        parts.push(format!(
            "Rollback of {} on {}: {}. {}",
            rb.change_id,
            rb.key_arn,
            name(rb.outcome),
            end_sentence(first_line(&rb.detail))
        ));
    } else {
        let subject = export.unwrap_or_else(|| "this invocation".into());
        parts.push(format!("No failure cause found for {subject}."));
        if let Some(note) = r.notes.first() {
            parts.push(end_sentence(first_line(note)));
        }
    }
    parts.push(format!("{FULL_RESULT}."));
    clip(&plain(&parts.join(" ")), MAX_CHARS)
}

/// A unit enum's serialized name (`CONFIRMED`, `apply`, `REFUSED_DRIFT`).
fn name<T: Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What was done: each applied action with its handle, or why nothing was.
fn applied(r: &RemediationResult) -> String {
    if r.applied.is_empty() {
        if !r.outside_write_scope.is_empty() {
            // The scope sentence that follows says why, from the typed gap.
            return "Applied: nothing.".into();
        }
        return match r.notes.first() {
            Some(n) => format!(
                "Applied: nothing ({}).",
                first_line(n).trim_end_matches('.')
            ),
            None => format!("Applied: nothing (mode {}).", name(r.mode)),
        };
    }
    let done: Vec<String> = r
        .applied
        .iter()
        .map(|a| {
            let status = match a.status {
                AppliedStatus::Done => "DONE",
                AppliedStatus::Skipped => "SKIPPED",
                AppliedStatus::Failed => "FAILED",
            };
            let handle = ["exportArn", "changeId", "message"]
                .iter()
                .find_map(|k| a.result.get(*k).and_then(|v| v.as_str()))
                .map(|h| format!(" {}", first_line(h)))
                .unwrap_or_default();
            format!("{} {status}{handle}", a.action)
        })
        .collect();
    format!("Applied: {}.", done.join("; "))
}

fn first_line(s: &str) -> &str {
    s.trim().lines().next().unwrap_or("").trim()
}

fn end_sentence(s: &str) -> String {
    if s.is_empty() || s.ends_with(['.', '!', '?', ':']) {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// One line without the characters a JSON string template would need escaped.
fn plain(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::ScopeGap;
    use crate::domain::report::{
        Applied, IncidentReport, RollbackOutcome, RollbackReport, SweepReport,
    };
    use crate::model::{Cause, Confidence, Finding, Incident, IncidentSource, Mode, Remedy};
    use serde_json::json;

    const EXPORT: &str =
        "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01700000000000-abcdef12";

    fn finding(cause: Cause, confidence: Confidence, remedy: &str) -> Finding {
        Finding {
            cause,
            confidence,
            summary: "summary".into(),
            evidence: vec![],
            remedy: Remedy {
                text: remedy.into(),
                command: Some("aws dynamodb export-table-to-point-in-time --s3-bucket b".into()),
                statement: None,
            },
            correction: None,
            patch: None,
        }
    }

    fn result(
        findings: Vec<Finding>,
        applied: Vec<Applied>,
        notes: Vec<String>,
    ) -> RemediationResult {
        let mut incident = Incident::new(IncidentSource::Sweep);
        incident.export_arn = Some(EXPORT.into());
        RemediationResult {
            schema_version: 1,
            mode: Mode::Apply,
            incident: IncidentReport::from_incident(&incident),
            findings,
            plan: vec![],
            applied,
            notes,
            outside_write_scope: Vec::new(),
            sweep: None,
            rollback: None,
            gave_up: false,
            outcome: None,
            outcome_detail: None,
        }
    }

    #[test]
    fn a_finding_reads_as_cause_export_first_remedy_line_applied_and_where() {
        let r = result(
            vec![
                finding(
                    Cause::BucketOwnerMissing,
                    Confidence::Confirmed,
                    "Pass the bucket owner's account id.\nThe bucket belongs to 444455556666.",
                ),
                finding(
                    Cause::SseMismatchRequiresKms,
                    Confidence::Likely,
                    "Use SSE-KMS",
                ),
            ],
            vec![Applied {
                action: "RETRY_EXPORT",
                status: AppliedStatus::Done,
                result: json!({"exportArn": "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/0170-retry"}),
            }],
            vec![],
        );
        let t = text(&r);
        assert_eq!(
            t,
            format!(
                "BUCKET_OWNER_MISSING (CONFIRMED), SSE_MISMATCH_REQUIRES_KMS (LIKELY) for export {EXPORT}. \
                 Remedy: Pass the bucket owner's account id. \
                 Applied: RETRY_EXPORT DONE arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/0170-retry. \
                 Full result: the remediation result line in the function's log."
            )
        );
        assert!(!t.contains("444455556666"), "only the remedy's first line");
    }

    #[test]
    fn nothing_applied_says_why_from_the_first_note() {
        let r = result(
            vec![finding(
                Cause::BucketOwnerMissing,
                Confidence::Confirmed,
                "Fix it",
            )],
            vec![],
            vec!["retry not started: bucket b is outside EXPORT_BUCKETS.".into()],
        );
        assert!(
            text(&r).contains(
                "Remedy: Fix it. Applied: nothing (retry not started: bucket b is outside EXPORT_BUCKETS)."
            ),
            "{}",
            text(&r)
        );
        let quiet = result(
            vec![finding(
                Cause::BucketOwnerMissing,
                Confidence::Possible,
                "x",
            )],
            vec![],
            vec![],
        );
        assert!(text(&quiet).contains("Applied: nothing (mode apply)."));
        let mut outside = quiet.clone();
        outside.outside_write_scope = vec![ScopeGap {
            parameter: "ExportBuckets",
            value: "other-bucket".into(),
            fragment: "--parameter-overrides ExportBuckets=\"mine,other-bucket\"".into(),
        }];
        assert!(
            text(&outside).contains(
                "Applied: nothing. Not retried by the function: other-bucket is outside ExportBuckets; to allow it, \
                 redeploy with --parameter-overrides ExportBuckets='mine,other-bucket'."
            ),
            "{}",
            text(&outside)
        );
    }

    #[test]
    fn the_paragraph_is_one_line_without_quotes_backslashes_or_control_characters() {
        let r = result(
            vec![finding(
                Cause::BucketOwnerMissing,
                Confidence::Confirmed,
                "Add \"S3BucketOwner\": a\\b\tc\r\nsecond line",
            )],
            vec![Applied {
                action: "PATCH_KEY_POLICY",
                status: AppliedStatus::Failed,
                result: json!({"message": "MalformedPolicyDocument: \"x\"\nmore"}),
            }],
            vec![],
        );
        let t = text(&r);
        assert!(
            !t.chars().any(|c| c == '"' || c == '\\' || c.is_control()),
            "{t}"
        );
        assert!(t.contains("Remedy: Add 'S3BucketOwner': a/b c."), "{t}");
        assert!(
            t.contains("PATCH_KEY_POLICY FAILED MalformedPolicyDocument: 'x'."),
            "{t}"
        );
        // Inside a JSON string template the paragraph stays one valid string.
        let v: serde_json::Value = serde_json::from_str(&format!("\"{t}\"")).unwrap();
        assert_eq!(v.as_str(), Some(t.as_str()));
    }

    #[test]
    fn a_long_remedy_is_clipped() {
        let r = result(
            vec![finding(
                Cause::BucketOwnerMissing,
                Confidence::Confirmed,
                &"word ".repeat(400),
            )],
            vec![],
            vec![],
        );
        let t = text(&r);
        assert_eq!(t.chars().count(), MAX_CHARS);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn sweeps_rollbacks_and_healthy_results_have_their_own_sentence() {
        let mut sweep = result(vec![], vec![], vec![]);
        sweep.incident.export_arn = None;
        sweep.sweep = Some(SweepReport {
            tables: 3,
            exports_listed: 12,
            list_calls: 4,
            describe_calls: 2,
            published: vec!["a".into(), "b".into()],
            ..Default::default()
        });
        assert!(text(&sweep).starts_with(
            "Sweep: 3 tables, 12 exports listed, 2 failures published (4 ListExports, 2 DescribeExport calls)."
        ));
        if let Some(s) = sweep.sweep.as_mut() {
            s.older_than_lookback = 40;
        }
        assert!(text(&sweep).contains(
            "(4 ListExports, 2 DescribeExport calls, 40 older than the look-back not published)."
        ));
        let mut rb = result(vec![], vec![], vec![]);
        rb.rollback = Some(RollbackReport {
            change_id: "kpc-1".into(),
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            outcome: RollbackOutcome::RefusedDrift,
            detail: "the policy changed since".into(),
        });
        assert!(text(&rb).starts_with(
            "Rollback of kpc-1 on arn:aws:kms:us-east-1:111122223333:key/k: REFUSED_DRIFT. the policy changed since."
        ));
        let healthy = result(
            vec![],
            vec![],
            vec!["export completed: healthy, nothing to do".into()],
        );
        assert_eq!(
            text(&healthy),
            format!("No failure cause found for export {EXPORT}. export completed: healthy, nothing to do. Full result: the remediation result line in the function's log.")
        );
    }

    #[test]
    fn the_serialized_result_keeps_every_field_and_adds_text_last() {
        let r = result(
            vec![finding(
                Cause::BucketOwnerMissing,
                Confidence::Confirmed,
                "Fix it",
            )],
            vec![],
            vec!["n".into()],
        );
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schemaVersion",
                "mode",
                "incident",
                "findings",
                "plan",
                "applied",
                "notes",
                "text"
            ]
        );
        assert_eq!(v["schemaVersion"], 1);
        assert_eq!(v["findings"][0]["cause"], "BUCKET_OWNER_MISSING");
        assert_eq!(v["text"].as_str(), Some(text(&r).as_str()));
    }
}
