//! Plan (pure): findings + evidence + config → actions (SPEC §7.1), or why there are none.

use super::diagnosis::apply_correction;
use super::evidence::Evidence;
use crate::config::Config;
use crate::intake::CLIENT_TOKEN_PREFIX;
use crate::model::{Correction, ExportRequest, ExportStatus, Finding, Incident, IncidentSource};
use crate::ports::Lineage;
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
    /// Loop protection stopped a retry (recorded as GAVE_UP).
    pub gave_up: bool,
    /// The retry's lineage: the root export and this attempt.
    pub root_export_arn: Option<String>,
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

/// `lineage` is the ledger's record when the failed export is itself one of our retries.
pub fn plan(
    incident: &Incident,
    evidence: &Evidence,
    findings: &[Finding],
    config: &Config,
    lineage: Option<&Lineage>,
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
    if export.status != ExportStatus::Failed {
        return Plan::none(format!("export is {:?}: nothing to retry", export.status));
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
    if let Some(l) = lineage.filter(|l| sorted(&l.causes) == causes) {
        return give_up(format!(
            "gave up: retry attempt {} failed again with the same cause ({})",
            l.attempt,
            causes.join(", ")
        ));
    }
    if attempt > config.max_retries {
        return give_up(format!(
            "gave up: attempt {attempt} would exceed MAX_RETRIES={}",
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
        root_export_arn: root_arn,
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
    use crate::domain::evidence::Evidence;
    use crate::fakes::{failed_export, request, DATA_ACCOUNT, EXPORT_ARN, TABLE_ACCOUNT};
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

    fn evidence() -> Evidence {
        let req = request("amzn-s3-demo-bucket");
        Evidence {
            table_account: TABLE_ACCOUNT.into(),
            export: Some(failed_export(
                req.clone(),
                "S3AccessDenied",
                "Access Denied",
            )),
            request: Some(req),
            table: Fact::unknown("dynamodb:DescribeTable", "not needed"),
            pitr: Fact::known(
                "dynamodb:DescribeContinuousBackups",
                PitrInfo {
                    enabled: true,
                    earliest_restorable: Some(1_795_000_000.0),
                    latest_restorable: Some(1_795_600_000.0),
                },
            ),
            bucket: None,
            export_key: None,
            default_key: None,
            caller_policies: None,
        }
    }

    fn incident() -> Incident {
        let mut i = Incident::new(IncidentSource::Event);
        i.export_arn = Some(EXPORT_ARN.into());
        i
    }

    fn retry(p: &Plan) -> &Retry {
        match p.actions.first() {
            Some(Action::RetryExport(r)) => r,
            None => panic!("no retry planned: {:?}", p.notes),
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

    #[test]
    fn token_is_deterministic_and_within_limits() {
        let a = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &Config::default(),
            None,
        );
        let b = plan(
            &incident(),
            &evidence(),
            &[owner_fix()],
            &Config::default(),
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
        );
        assert!(p.actions.is_empty());
        assert!(
            p.notes[0].contains("REQUESTER_PAYS_BUCKET"),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn retry_of_our_own_retry_counts_attempts_up_to_max_retries() {
        let mut e = evidence();
        let root = root_hash(
            "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795400000000-00000000",
        );
        e.export.as_mut().unwrap().request.client_token = Some(client_token(&root, 1));
        let p = plan(&incident(), &e, &[owner_fix()], &Config::default(), None);
        assert_eq!(retry(&p).attempt, 2);
        assert_eq!(retry(&p).client_token, client_token(&root, 2));

        e.export.as_mut().unwrap().request.client_token = Some(client_token(&root, 2));
        let p = plan(&incident(), &e, &[owner_fix()], &Config::default(), None);
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("MAX_RETRIES=2"));
    }

    #[test]
    fn corrections_that_change_nothing_do_not_retry() {
        let mut e = evidence();
        e.export.as_mut().unwrap().request.s3_bucket_owner = Some(DATA_ACCOUNT.into());
        let p = plan(&incident(), &e, &[owner_fix()], &Config::default(), None);
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
        );
        assert!(p.actions.is_empty());
        assert!(p.notes[0].contains("conflicting"));
    }

    #[test]
    fn export_time_outside_the_window_moves_to_the_latest_restorable_time() {
        let mut e = evidence();
        e.export.as_mut().unwrap().request.export_time = Some(1_700_000_000.0);
        let p = plan(&incident(), &e, &[owner_fix()], &Config::default(), None);
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
        assert!(
            plan(&pre, &evidence(), &[owner_fix()], &Config::default(), None)
                .actions
                .is_empty()
        );

        let mut sync = evidence();
        sync.export = None;
        assert!(
            plan(&incident(), &sync, &[owner_fix()], &Config::default(), None)
                .actions
                .is_empty()
        );

        let mut done = evidence();
        done.export.as_mut().unwrap().status = ExportStatus::Completed;
        assert!(
            plan(&incident(), &done, &[owner_fix()], &Config::default(), None)
                .actions
                .is_empty()
        );

        let zero = Config {
            max_retries: 0,
            ..Config::default()
        };
        assert!(plan(&incident(), &evidence(), &[owner_fix()], &zero, None)
            .actions
            .is_empty());
    }
}
