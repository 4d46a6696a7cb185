//! The plan room (pure): findings + evidence + config → actions (docs/safety.md, "Safety"), or why there are
//! none. Reads `model`, `policy`, the shared rules and diagnosis's request corrections.

use super::access::{kms_generate, resource_side, s3_put};
use super::diagnosis::{apply_correction, started_object_arn};
use super::key_patch::{consumer_patch, merge, principal_of};
use crate::arn::{account_of, Arn};
use crate::config::{Config, Scope};
mod key;

pub use crate::model::{client_token, parse_token, root_hash};
use crate::model::{
    Cause, Confidence, Correction, Evidence, ExportRequest, ExportStatus, Finding, Incident,
    IncidentSource, KeyPatch, Lineage, PatchPurpose, SseAlgorithm,
};
use crate::policy::{DecisionKind, Policy, PolicyKind};
pub use key::principal_arn;
use key::*;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    RetryExport(Retry),
    /// docs/safety.md, "Key-policy patch"; planned only with KEY_POLICY_PATCH=on.
    PatchKeyPolicy(KeyPatch),
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
    /// Loop protection stopped a retry (recorded as GAVE_UP).
    pub gave_up: bool,
    /// The retry's lineage: the root export and this attempt.
    pub root_export_arn: Option<String>,
    /// A retry not started because its destination is outside the function's write scope.
    pub outside_scope: Vec<ScopeGap>,
}

/// A bucket or key a retry needs that EXPORT_BUCKETS / KEY_ARNS leave out (docs/safety.md, "Safety").
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeGap {
    /// The template parameter to extend: `ExportBuckets` or `KeyArns`.
    pub parameter: &'static str,
    /// The bucket name or key ARN the retry needs.
    pub value: String,
    /// What to add to `sam deploy`, keeping the entries the stack already has.
    pub fragment: String,
}

/// The retry's destination against the function's write scope; an unknown scope (the variable
/// unset, as in the CLI) lets it go, and a denial then becomes the next diagnosis.
fn scope_gaps(request: &ExportRequest, evidence: &Evidence, config: &Config) -> Vec<ScopeGap> {
    let gap = |parameter: &'static str, scope: &Scope, value: &str| {
        let current = scope.joined();
        let joined = if current.is_empty() {
            value.to_string()
        } else {
            format!("{current},{value}")
        };
        ScopeGap {
            parameter,
            value: value.to_string(),
            fragment: format!("--parameter-overrides {parameter}=\"{joined}\""),
        }
    };
    let mut out = Vec::new();
    if let Some(scope) = &config.export_buckets {
        if !scope.allows(&request.s3_bucket) {
            out.push(gap("ExportBuckets", scope, &request.s3_bucket));
        }
    }
    if let (Some(scope), Some(SseAlgorithm::Kms)) = (&config.key_arns, request.s3_sse_algorithm) {
        // The key as KMS resolved it (an alias names no ARN the scope could list).
        let given = request
            .s3_sse_kms_key_id
            .as_deref()
            .unwrap_or("alias/aws/s3");
        let arn = evidence
            .key(given)
            .and_then(|k| k.info.get().map(|i| i.arn.clone()))
            .unwrap_or_else(|| given.to_string());
        if !scope.allows(&arn) {
            out.push(gap("KeyArns", scope, &arn));
        }
    }
    out
}

impl Plan {
    fn none(note: impl Into<String>) -> Self {
        Self {
            notes: vec![note.into()],
            ..Self::default()
        }
    }
    fn give_up(note: impl Into<String>) -> Self {
        Self {
            gave_up: true,
            ..Self::none(note)
        }
    }
}

/// `ExportType` of an incremental export (API reference: FULL_EXPORT | INCREMENTAL_EXPORT).
pub const INCREMENTAL_EXPORT: &str = "INCREMENTAL_EXPORT";

/// `lineage` is the ledger's record when the failed export is itself one of our retries;
/// `own_principal` is the function's own principal, which a retry runs as (docs/safety.md, "Safety").
pub fn plan(
    incident: &Incident,
    evidence: &Evidence,
    findings: &[Finding],
    config: &Config,
    lineage: Option<&Lineage>,
    own_principal: Option<&str>,
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
    if findings.is_empty() {
        return Plan::default();
    }
    let (patches, mut notes) = key_patches(findings, evidence, config);
    let patch_actions = || -> Vec<Action> {
        patches
            .iter()
            .cloned()
            .map(Action::PatchKeyPolicy)
            .collect()
    };
    let with = |mut p: Plan, notes: &[String]| {
        let mut all = notes.to_vec();
        all.append(&mut p.notes);
        p.notes = all;
        p
    };
    if export.status != ExportStatus::Failed {
        let mut p = Plan::none(format!("export is {:?}: nothing to retry", export.status));
        p.actions = patch_actions();
        return with(p, &notes);
    }
    let patched = |f: &Finding| {
        f.patch.as_ref().is_some_and(|p| {
            patches
                .iter()
                .any(|q| q.key_arn == p.key_arn && q.purpose == p.purpose)
        })
    };
    let unfixable: Vec<&str> = findings
        .iter()
        // What consumers can decrypt afterwards is not why the export failed.
        .filter(|f| f.cause != Cause::ConsumerCannotDecrypt)
        .filter(|f| f.correction.is_none() && !patched(f))
        .map(|f| f.cause.code())
        .collect();
    // docs/safety.md, "Safety": a retry right after a key-policy patch may fail only because KMS had not applied
    // it yet; that retry is retried once more, never again.
    let propagation = lineage.is_some_and(|l| l.after_patch)
        && unfixable == [Cause::KmsKeyPolicyDeniesExporter.code()];
    if !unfixable.is_empty() && !propagation {
        // A failure the function cannot fix gets no change at all: a key-policy patch alone
        // would widen a key for an export that still fails (the statement stays a recommendation).
        let mut p = Plan::none(format!(
            "no retry: not every finding is fixed by export parameters or a key-policy patch ({})",
            unfixable.join(", ")
        ));
        if !patches.is_empty() {
            p.notes.push(format!(
                "key-policy patch not applied: the export would still fail ({})",
                unfixable.join(", ")
            ));
        }
        return with(p, &notes);
    }

    let causes = cause_codes(findings);
    let (root, root_arn, attempt) = match lineage {
        Some(l) => (
            root_hash(&l.root_export_arn),
            Some(l.root_export_arn.clone()),
            l.attempt + 1,
        ),
        // Without a ledger record, our ClientToken still carries the lineage's hash and attempt.
        None => match export.request.client_token.as_deref().and_then(parse_token) {
            Some((root, previous)) => (root, None, previous + 1),
            None => (
                root_hash(&export.export_arn),
                Some(export.export_arn.clone()),
                1,
            ),
        },
    };
    let give_up = |note: String| Plan {
        root_export_arn: root_arn.clone(),
        ..Plan::give_up(note)
    };
    if let Some(l) = lineage.filter(|l| sorted(&l.causes) == causes && !propagation) {
        return with(
            give_up(format!(
                "gave up: retry attempt {} failed again with the same cause ({})",
                l.attempt,
                causes.join(", ")
            )),
            &notes,
        );
    }
    if attempt > config.max_retries {
        return with(
            give_up(format!(
                "gave up: attempt {attempt} would exceed MAX_RETRIES={}",
                config.max_retries
            )),
            &notes,
        );
    }

    let original = &export.request;
    let corrections: Vec<&Correction> = findings
        .iter()
        .filter_map(|f| f.correction.as_ref())
        .collect();
    if conflicting(&corrections) {
        return with(
            Plan::none("no retry: findings ask for conflicting parameters"),
            &notes,
        );
    }
    let mut request = original.clone();
    for c in &corrections {
        apply_correction(&mut request, c);
    }
    let mut changes = describe_changes(original, &request);
    for p in patches
        .iter()
        .filter(|p| p.purpose == PatchPurpose::Exporter)
    {
        changes.push(format!(
            "key policy of {}: statement {} for {}",
            p.key_arn,
            p.sid,
            p.grantees.join(", ")
        ));
    }
    if propagation {
        changes.push(
            "once more after the previous attempt's key-policy patch: KMS applies policy changes eventually"
                .to_string(),
        );
    }
    if changes.is_empty() {
        return with(
            Plan::none(
                "no retry: the corrections change no parameter of the failed export (a retry would fail the same way)",
            ),
            &notes,
        );
    }
    let gaps = scope_gaps(&request, evidence, config);
    if !gaps.is_empty() {
        for g in &gaps {
            notes.push(format!(
                "no retry: {} is outside this function's write scope ({}); extend it with `sam deploy {}`, or run the corrected command yourself: {}",
                g.value,
                g.parameter,
                g.fragment,
                super::command::export_command(&request)
            ));
        }
        return Plan {
            actions: patch_actions(),
            notes,
            outside_scope: gaps,
            ..Plan::default()
        };
    }
    if let Some(why) = own_access_denied(evidence, &request, &patches, own_principal) {
        notes.push(format!(
            "no retry: {why}. The retry would run as this function's role, and the function never grants itself access; the exporter's next run will succeed. Re-export now with: {}",
            super::command::export_command(&request)
        ));
        return Plan {
            actions: patch_actions(),
            notes,
            ..Plan::default()
        };
    }
    let pitr = evidence.pitr.get();
    let latest = pitr.and_then(|p| p.latest_restorable);
    let earliest = pitr.and_then(|p| p.earliest_restorable);
    // An incremental export is defined by its window (checked against the PITR window by the
    // diagnosis, INVALID_EXPORT_TIME); ExportTime belongs to full exports only.
    let incremental = original.incremental.is_some()
        || original.export_type.as_deref() == Some(INCREMENTAL_EXPORT);
    if incremental {
        request.export_type = Some(INCREMENTAL_EXPORT.into());
    }
    request.export_time = match (original.export_time, earliest, latest) {
        _ if incremental => None,
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
    let mut actions = patch_actions();
    actions.push(Action::RetryExport(Retry {
        client_token: client_token(&root, attempt),
        request,
        attempt,
        changes,
    }));
    Plan {
        actions,
        root_export_arn: root_arn,
        notes,
        ..Plan::default()
    }
}

/// The findings' cause codes, sorted: what a retry is meant to fix.
pub fn cause_codes(findings: &[Finding]) -> Vec<String> {
    sorted(
        &findings
            .iter()
            .map(|f| f.cause.code().to_string())
            .collect::<Vec<_>>(),
    )
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::{DATA_ACCOUNT, EXPORT_ARN};
    use crate::model::{Cause, Confidence, Fact, PitrInfo, Remedy};

    fn finding(cause: Cause, correction: Option<Correction>) -> Finding {
        Finding {
            cause,
            confidence: Confidence::Confirmed,
            summary: String::new(),
            evidence: Vec::new(),
            remedy: Remedy {
                text: String::new(),
                command: None,
                statement: None,
            },
            correction,
            patch: None,
        }
    }

    fn owner_fix() -> Finding {
        finding(
            Cause::BucketOwnerMissing,
            Some(Correction {
                s3_bucket_owner: Some(DATA_ACCOUNT.into()),
                ..Default::default()
            }),
        )
    }

    /// The shared fixture, with the table unread, PITR's window known and no bucket facts.
    fn evidence() -> Evidence {
        let mut e =
            crate::fakes::evidence("amzn-s3-demo-bucket", "S3AccessDenied", "Access Denied");
        e.table = Fact::unknown("dynamodb:DescribeTable", "not needed");
        e.pitr = Fact::known(
            "dynamodb:DescribeContinuousBackups",
            PitrInfo {
                enabled: true,
                earliest_restorable: Some(1_795_000_000.0),
                latest_restorable: Some(1_795_600_000.0),
            },
        );
        e.bucket = None;
        e
    }

    fn incident() -> Incident {
        let mut i = Incident::new(IncidentSource::Event);
        i.export_arn = Some(EXPORT_ARN.into());
        i
    }

    fn retry(p: &Plan) -> &Retry {
        match p.actions.last() {
            Some(Action::RetryExport(r)) => r,
            _ => panic!("no retry planned: {:?}", p.notes),
        }
    }

    #[test]
    fn fixable_finding_plans_one_retry_with_same_parameters_but_the_fix() {
        let p = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        let r = retry(&p);
        assert_eq!(r.attempt, 1);
        assert_eq!(r.client_token, client_token(&root_hash(EXPORT_ARN), 1));
        assert_eq!(
            r.request.client_token.as_deref(),
            Some(r.client_token.as_str())
        );
        assert_eq!(r.request.s3_bucket_owner.as_deref(), Some(DATA_ACCOUNT));
        assert_eq!(
            r.request.export_time,
            Some(1_795_500_000.0),
            "same ExportTime inside the window"
        );
        assert_eq!(r.request.s3_prefix.as_deref(), Some("exports"));
        assert_eq!(r.changes, vec!["S3BucketOwner: (none) -> 444455556666"]);
    }

    fn scoped(buckets: Option<&str>, keys: Option<&str>) -> Config {
        let mut vars = vec![];
        if let Some(b) = buckets {
            vars.push(("EXPORT_BUCKETS", b.to_string()));
        }
        if let Some(k) = keys {
            vars.push(("KEY_ARNS", k.to_string()));
        }
        Config::from_map(|n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())).unwrap()
    }

    #[test]
    fn a_bucket_outside_export_buckets_gets_no_retry_but_the_fragment_to_extend_it() {
        let p = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &scoped(Some("team-exports"), None),
            None,
            None,
        );
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert_eq!(p.outside_scope.len(), 1);
        let g = &p.outside_scope[0];
        assert_eq!(
            (g.parameter, g.value.as_str()),
            ("ExportBuckets", "amzn-s3-demo-bucket")
        );
        assert_eq!(
            g.fragment,
            "--parameter-overrides ExportBuckets=\"team-exports,amzn-s3-demo-bucket\""
        );
        assert!(
            p.notes[0].contains("--s3-bucket-owner 444455556666"),
            "{:?}",
            p.notes
        );
        // The same plan with the bucket inside the scope (or the scope unknown) retries.
        for cfg in [
            scoped(Some("team-exports,amzn-s3-demo-*"), None),
            scoped(None, None),
        ] {
            let p = plan(&incident(), &evidence(), &[owner_fix()], &cfg, None, None);
            assert!(p.outside_scope.is_empty());
            retry(&p);
        }
    }

    #[test]
    fn a_kms_retry_with_a_key_outside_key_arns_is_not_started() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let fix = finding(
            Cause::SseMismatchRequiresKms,
            Some(Correction {
                s3_sse_algorithm: Some(SseAlgorithm::Kms),
                s3_sse_kms_key_id: Some(key.into()),
                ..Default::default()
            }),
        );
        let other = "arn:aws:kms:us-east-1:111122223333:key/ffffffff-12ab-34cd-56ef-1234567890ab";
        let p = plan(
            &incident(),
            &evidence(),
            std::slice::from_ref(&fix),
            &scoped(Some("*"), Some(other)),
            None,
            None,
        );
        assert_eq!(p.outside_scope.len(), 1);
        assert_eq!(p.outside_scope[0].parameter, "KeyArns");
        assert_eq!(p.outside_scope[0].value, key);
        let p = plan(
            &incident(),
            &evidence(),
            &[fix],
            &scoped(Some("*"), Some(key)),
            None,
            None,
        );
        assert_eq!(retry(&p).request.s3_sse_kms_key_id.as_deref(), Some(key));
    }

    #[test]
    fn an_incremental_ion_export_is_retried_with_its_window_prefix_and_format() {
        let mut e = evidence();
        let window = crate::model::IncrementalSpec {
            export_from_time: Some(1_795_100_000.0),
            export_to_time: Some(1_795_103_600.0),
            export_view_type: Some("NEW_IMAGE".into()),
        };
        let export = e.export.as_mut().unwrap();
        export.request.s3_prefix = Some("lake/raw/orders/incremental/2026/11".into());
        export.request.export_format = Some("ION".into());
        export.request.export_type = None; // a FAILED export's description may lack it
        export.request.export_time = None;
        export.request.incremental = Some(window.clone());
        let p = plan(
            &incident(),
            &e,
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        let r = &retry(&p).request;
        assert_eq!(r.export_type.as_deref(), Some(INCREMENTAL_EXPORT));
        assert_eq!(r.incremental.as_ref(), Some(&window));
        assert_eq!(r.export_time, None, "ExportTime is for full exports only");
        assert_eq!(r.export_format.as_deref(), Some("ION"));
        assert_eq!(
            r.s3_prefix.as_deref(),
            Some("lake/raw/orders/incremental/2026/11")
        );
    }

    #[test]
    fn an_incremental_window_that_left_the_pitr_window_is_invalid_export_time_and_not_retried() {
        let mut e = evidence();
        let export = e.export.as_mut().unwrap();
        export.request.export_time = None;
        export.request.export_type = Some(INCREMENTAL_EXPORT.into());
        export.request.incremental = Some(crate::model::IncrementalSpec {
            export_from_time: Some(1_794_900_000.0),
            export_to_time: Some(1_794_903_600.0),
            export_view_type: None,
        });
        e.request = Some(export.request.clone());
        let mut findings = crate::domain::diagnosis::diagnose(&incident(), &e);
        let invalid = findings
            .iter()
            .find(|f| f.cause == Cause::InvalidExportTime)
            .expect("INVALID_EXPORT_TIME");
        assert!(
            invalid.remedy.text.contains("2026-11-18T11:06:40Z"),
            "{}",
            invalid.remedy.text
        );
        findings.push(owner_fix());
        let p = plan(&incident(), &e, &findings, &Config::default(), None, None);
        assert!(p.actions.is_empty());
        assert!(
            p.notes.iter().any(|n| n.contains("INVALID_EXPORT_TIME")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn token_is_deterministic_and_within_limits() {
        let a = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        let b = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        assert_eq!(retry(&a), retry(&b));
        let t = &retry(&a).client_token;
        assert!(t.starts_with("ddbxr-") && t.len() <= 64, "{t}");
        assert_eq!(parse_token(t), Some((root_hash(EXPORT_ARN), 1)));
        assert_eq!(parse_token("someone-elses-token"), None);
    }

    #[test]
    fn unfixable_finding_blocks_the_retry() {
        let p = plan(
            &incident(),
            &evidence(),
            &[owner_fix(), finding(Cause::RequesterPaysBucket, None)],
            &Config::default(),
            None,
            None,
        );
        assert!(p.actions.is_empty());
        assert!(
            p.notes[0].contains("REQUESTER_PAYS_BUCKET"),
            "{:?}",
            p.notes
        );
    }

    /// A key-policy patch alone would not make the export pass: the function changes nothing
    /// (the statement stays in the remedy).
    #[test]
    fn a_key_patch_is_not_applied_when_another_finding_is_unfixable() {
        let mut key = finding(Cause::KmsKeyPolicyDeniesExporter, None);
        key.patch = Some(
            crate::domain::key_patch::exporter_patch(
                crate::fakes::KEY_ARN,
                "arn:aws:iam::111122223333:role/Exporter",
                "us-east-1",
            )
            .unwrap(),
        );
        let config = Config {
            key_policy_patch: true,
            ..Config::default()
        };
        let alone = plan(
            &incident(),
            &evidence(),
            &[key.clone()],
            &config,
            None,
            None,
        );
        assert!(
            alone
                .actions
                .iter()
                .any(|a| matches!(a, Action::PatchKeyPolicy(_))),
            "{:?}",
            alone.notes
        );
        let p = plan(
            &incident(),
            &evidence(),
            &[key, finding(Cause::CallerMissingS3Permission, None)],
            &config,
            None,
            None,
        );
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(
            p.notes.iter().any(|n| n.contains("patch not applied")),
            "{:?}",
            p.notes
        );
    }

    /// No SSE flags over a bucket whose default key does not admit the function's role: the
    /// retry would fail as the function, so it is not started.
    #[test]
    fn the_bucket_default_key_must_admit_the_function_before_a_retry_without_flags() {
        let mut e = evidence();
        let key_arn = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let key_policy = |principal: &str| {
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "Root",
                "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:*",
                "Resource": "*"}]})
            .to_string()
        };
        let mut key = crate::model::KeyFacts {
            key_id: key_arn.into(),
            info: Fact::known(
                "kms:DescribeKey",
                crate::model::KeyInfo {
                    arn: key_arn.into(),
                    state: "Enabled".into(),
                    manager: "CUSTOMER".into(),
                    usage: "ENCRYPT_DECRYPT".into(),
                    spec: "SYMMETRIC_DEFAULT".into(),
                },
            ),
            policy: Fact::known(
                "kms:GetKeyPolicy",
                key_policy("arn:aws:iam::444455556666:root"),
            ),
            grants: Fact::known("kms:ListGrants", Vec::new()),
        };
        e.default_key = Some(key.clone());
        let mut request = e.request.clone().unwrap();
        request.s3_sse_algorithm = None;
        request.s3_sse_kms_key_id = None;
        let own = "arn:aws:sts::111122223333:assumed-role/ddb-export-remediator-fn/s";
        let why = own_access_denied(&e, &request, &[], Some(own));
        assert!(why.is_some_and(|w| w.contains(key_arn)));
        // A key policy that names the table account admits the function's role.
        key.policy = Fact::known(
            "kms:GetKeyPolicy",
            key_policy("arn:aws:iam::111122223333:root"),
        );
        e.default_key = Some(key);
        assert_eq!(own_access_denied(&e, &request, &[], Some(own)), None);
    }

    #[test]
    fn retry_of_our_own_retry_counts_attempts_up_to_max_retries() {
        let mut e = evidence();
        let root = root_hash(
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795400000000-00000000",
        );
        e.export.as_mut().unwrap().request.client_token = Some(client_token(&root, 1));
        let p = plan(
            &incident(),
            &e,
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        assert_eq!(retry(&p).attempt, 2);
        assert_eq!(retry(&p).client_token, client_token(&root, 2));

        e.export.as_mut().unwrap().request.client_token = Some(client_token(&root, 2));
        let p = plan(
            &incident(),
            &e,
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("MAX_RETRIES=2"));
    }

    #[test]
    fn corrections_that_change_nothing_do_not_retry() {
        let mut e = evidence();
        e.export.as_mut().unwrap().request.s3_bucket_owner = Some(DATA_ACCOUNT.into());
        let p = plan(
            &incident(),
            &e,
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("change no parameter"));
    }

    #[test]
    fn conflicting_corrections_do_not_retry() {
        let other = finding(
            Cause::BucketOwnerMismatch,
            Some(Correction {
                s3_bucket_owner: Some("999988887777".into()),
                ..Default::default()
            }),
        );
        let p = plan(
            &incident(),
            &evidence(),
            &[owner_fix(), other],
            &Config::default(),
            None,
            None,
        );
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("conflicting"));
    }

    #[test]
    fn export_time_outside_the_window_moves_to_the_latest_restorable_time() {
        let mut e = evidence();
        e.export.as_mut().unwrap().request.export_time = Some(1_700_000_000.0);
        let p = plan(
            &incident(),
            &e,
            &[owner_fix()],
            &Config::default(),
            None,
            None,
        );
        assert_eq!(retry(&p).request.export_time, Some(1_795_600_000.0));
        assert!(retry(&p)
            .changes
            .iter()
            .any(|c| c.contains("outside the restorable window")));
    }

    #[test]
    fn preflight_sync_failures_and_healthy_exports_never_retry() {
        let mut pre = incident();
        pre.source = IncidentSource::Preflight;
        assert!(plan(
            &pre,
            &evidence(),
            &[owner_fix()],
            &Config::default(),
            None,
            None
        )
        .actions
        .is_empty());

        let mut sync = evidence();
        sync.export = None;
        assert!(plan(
            &incident(),
            &sync,
            &[owner_fix()],
            &Config::default(),
            None,
            None
        )
        .actions
        .is_empty());

        let mut done = evidence();
        done.export.as_mut().unwrap().status = ExportStatus::Completed;
        assert!(plan(
            &incident(),
            &done,
            &[owner_fix()],
            &Config::default(),
            None,
            None
        )
        .actions
        .is_empty());

        let zero = Config {
            max_retries: 0,
            ..Config::default()
        };
        assert!(
            plan(&incident(), &evidence(), &[owner_fix()], &zero, None, None)
                .actions
                .is_empty()
        );
    }
}
