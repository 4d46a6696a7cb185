//! The diagnosis room (pure): incident + evidence → findings, most likely first (README, "What it diagnoses today").
//! Reads only `model`, `policy` and the shared rules (`access`, `sse_rules`, `key_patch`,
//! `command`); this file aggregates, one file per cause family does the rest.

mod bucket;
mod call;
pub(crate) mod common;
mod kms;
mod policy;
mod sse;

use bucket::*;
use kms::*;
use sse::*;

use super::command::export_command;
use super::sse_rules::{SseHeaders, SseRules};
use crate::arn::Arn;
use crate::model::BucketPresence;
use crate::model::{BucketFacts, Evidence, KeyFacts};
use crate::model::{
    Cause, Confidence, Correction, EvidenceItem, ExportRequest, ExportStatus, Finding, Incident,
    IncidentSource, KeyInfo, SseAlgorithm,
};
pub use common::apply_correction;
pub(crate) use common::started_object_arn;
use common::{bucket_doc, ev, failure, finding, BucketDoc, Failure};

/// The findings for the incident. A COMPLETED or IN_PROGRESS export has no failure cause, whatever
/// today's facts say (they may have changed since it ran): only what can go wrong after success
/// (`CONSUMER_CANNOT_DECRYPT`, docs/configuration.md, "Triggers and what to send") is kept; `would_fail_now` tells the rest.
pub fn diagnose(incident: &Incident, evidence: &Evidence) -> Vec<Finding> {
    let all = all_findings(incident, evidence);
    if not_failed(evidence) {
        all.into_iter()
            .filter(|f| f.cause == Cause::ConsumerCannotDecrypt)
            .collect()
    } else {
        all
    }
}

/// For an export that did not fail: the causes a new export with its parameters would meet
/// today (a note for the healthy result, never a finding).
pub fn would_fail_now(incident: &Incident, evidence: &Evidence) -> Vec<Cause> {
    if !not_failed(evidence) {
        return Vec::new();
    }
    let mut causes: Vec<Cause> = all_findings(incident, evidence)
        .iter()
        .map(|f| f.cause)
        .filter(|c| !matches!(c, Cause::ConsumerCannotDecrypt | Cause::Unclassified))
        .collect();
    causes.dedup();
    causes
}

fn not_failed(evidence: &Evidence) -> bool {
    evidence
        .export
        .as_ref()
        .is_some_and(|e| e.status != ExportStatus::Failed)
}

fn all_findings(incident: &Incident, evidence: &Evidence) -> Vec<Finding> {
    let fail = failure(incident, evidence);
    let doc = bucket_doc(evidence);
    let doc = doc.as_ref();
    let mut findings = Vec::new();
    findings.extend(table_not_found(&fail, evidence));
    findings.extend(call::call_findings(incident, &fail, evidence));
    findings.extend(pitr_disabled(incident, &fail, evidence));
    if let (Some(request), Some(bucket)) = (&evidence.request, &evidence.bucket) {
        findings.extend(bucket_not_found(&fail, bucket));
        findings.extend(requester_pays(bucket));
        findings.extend(bucket_owner(
            &fail,
            request,
            bucket,
            &evidence.table_account,
        ));
        findings.extend(sse_mismatch(&fail, request, bucket, evidence, doc));
        findings.extend(export_key_unusable(request, bucket, evidence));
        findings.extend(default_key_unusable(request, bucket, evidence));
        findings.extend(key_reference(request, bucket, evidence));
        findings.extend(aws_managed_cross_account(request, bucket, evidence, doc));
    }
    findings.extend(policy::policy_findings(incident, &fail, evidence, doc));
    let failed = fail.code.is_some()
        || evidence
            .export
            .as_ref()
            .is_some_and(|e| e.status == ExportStatus::Failed);
    if findings.is_empty() && failed {
        findings.push(unclassified(&fail, evidence));
    }
    attach_commands(&mut findings, evidence.request.as_ref());
    // Most likely first; among equals, a cause of the policy type an enhanced message names
    // before causes the message does not point to (a stable sort keeps the rest in order).
    let named = fail
        .message
        .and_then(super::access::parse_denial)
        .and_then(|d| d.policy_type);
    findings.sort_by_key(|f| {
        (
            std::cmp::Reverse(f.confidence),
            !named_by_message(f.cause, named.as_deref()),
        )
    });
    findings
}

/// Whether an enhanced access-denied message's policy type ("service control", "identity-based",
/// "resource-based", "permissions boundary", "session") is the layer the cause is about. The
/// phrases: AWS IAM User Guide, "Troubleshoot access denied error messages"
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
fn named_by_message(cause: Cause, policy_type: Option<&str>) -> bool {
    use Cause::*;
    match policy_type {
        Some("service control") => matches!(cause, ScpDeniesS3OrKms | ScpDeniesExport),
        Some("identity-based") => matches!(
            cause,
            CallerMissingS3Permission | KmsCallerMissingPermission | CallerMissingExportPermission
        ),
        Some("permissions boundary") | Some("session") => cause == PermissionsBoundaryDenies,
        Some("resource-based") => matches!(
            cause,
            BucketPolicyMissingGrant
                | BucketPolicyDenies
                | SseMismatchRequiresKms
                | SseMismatchRequiresAes256
                | SseKmsKeyMismatch
                | SseAlgorithmUnsupported
                | KmsKeyPolicyDeniesExporter
                | NetworkPerimeterDenies
                | BucketPublicAccessRestricted
        ),
        _ => false,
    }
}

fn table_not_found(fail: &Failure, evidence: &Evidence) -> Option<Finding> {
    let mut items = Vec::new();
    if fail.code == Some("TableNotFoundException") {
        items.push(ev(
            "the export call failed with TableNotFoundException",
            fail.source,
        ));
    }
    if evidence.table.is_absent() {
        items.push(ev(
            "DescribeTable found no such table",
            evidence.table.source,
        ));
    }
    if items.is_empty() {
        return None;
    }
    let table = evidence
        .request
        .as_ref()
        .map(|r| r.table_arn.clone())
        .unwrap_or_else(|| "the table".into());
    Some(finding(
        Cause::TableNotFound,
        Confidence::Confirmed,
        format!("{table} does not exist in that account and region."),
        items,
        "Check the table name, account and region in --table-arn; exports run in the table's region.".into(),
    ))
}

fn pitr_disabled(incident: &Incident, fail: &Failure, evidence: &Evidence) -> Option<Finding> {
    let mut items = Vec::new();
    let mut confidence = Confidence::Likely;
    if fail.code == Some("PointInTimeRecoveryUnavailableException") {
        items.push(ev(
            "the export call failed with PointInTimeRecoveryUnavailableException",
            fail.source,
        ));
        confidence = Confidence::Confirmed;
    }
    if evidence.pitr.get().is_some_and(|p| !p.enabled) {
        items.push(ev(
            "point-in-time recovery is disabled",
            evidence.pitr.source,
        ));
        if incident.source == IncidentSource::Preflight {
            confidence = Confidence::Confirmed;
        }
    }
    if items.is_empty() {
        return None;
    }
    let name = evidence
        .request
        .as_ref()
        .and_then(|r| Arn::table("tableArn", &r.table_arn).ok())
        .and_then(|a| a.table_name().map(str::to_string))
        .unwrap_or_else(|| "<table-name>".into());
    Some(finding(
        Cause::PitrDisabled,
        confidence,
        "Point-in-time recovery is off for the table; exports need it.".into(),
        items,
        format!(
            "Turn it on, then export again: aws dynamodb update-continuous-backups --table-name {name} \
             --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true"
        ),
    ))
}

fn unclassified(fail: &Failure, evidence: &Evidence) -> Finding {
    let mut items = Vec::new();
    if fail.code.is_some() || fail.message.is_some() {
        items.push(ev(
            format!(
                "failure {}: {}",
                fail.code.unwrap_or("(no code)"),
                fail.message.map(clip).unwrap_or_default()
            ),
            fail.source,
        ));
    }
    items.extend(evidence.items());
    finding(
        Cause::Unclassified,
        Confidence::Possible,
        "No known cause matched the failure and the facts gathered.".into(),
        items,
        "Check the caller's IAM permissions for the export, S3 and KMS actions, and any SCPs; every fact gathered is listed as evidence.".into(),
    )
}

/// Every finding with a parameter fix shows the one corrected command with all fixes applied.
fn attach_commands(findings: &mut [Finding], request: Option<&ExportRequest>) {
    let Some(request) = request else { return };
    let mut corrected = request.clone();
    corrected.client_token = None;
    for c in findings.iter().filter_map(|f| f.correction.as_ref()) {
        apply_correction(&mut corrected, c);
    }
    let command = export_command(&corrected);
    for f in findings.iter_mut() {
        if f.correction.is_some()
            || matches!(
                f.cause,
                Cause::BucketOwnerMissing | Cause::SseMismatchRequiresKms
            )
        {
            f.remedy.command = Some(command.clone());
        }
    }
}

fn clip(text: &str) -> String {
    text.chars().take(400).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::fakes::{DATA_ACCOUNT, KEY_ARN, TABLE_ACCOUNT, TABLE_ARN};
    use crate::model::{BucketEncryption, ExportDescription, Fact, KeyInfo, PitrInfo};
    use serde_json::json;

    const BUCKET: &str = "amzn-s3-demo-bucket";
    const BARE_DENIED: &str = "Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied; Request ID: X)";

    /// A failed same-account AES256 export whose facts all look fine (shared with plan's tests).
    pub(crate) fn evidence(code: &str, message: &str) -> Evidence {
        crate::fakes::evidence(BUCKET, code, message)
    }

    fn incident() -> Incident {
        let mut i = Incident::new(IncidentSource::Event);
        i.export_arn = Some(crate::fakes::EXPORT_ARN.into());
        i
    }

    fn causes(f: &[Finding]) -> Vec<(Cause, Confidence)> {
        f.iter().map(|f| (f.cause, f.confidence)).collect()
    }

    pub(crate) fn has(f: &[Finding], cause: Cause) -> bool {
        f.iter().any(|f| f.cause == cause)
    }

    fn bucket(e: &mut Evidence) -> &mut BucketFacts {
        e.bucket.as_mut().unwrap()
    }

    fn key(state: &str) -> KeyFacts {
        KeyFacts {
            key_id: KEY_ARN.into(),
            info: Fact::known(
                "kms:DescribeKey",
                KeyInfo {
                    arn: KEY_ARN.into(),
                    state: state.into(),
                    manager: "CUSTOMER".into(),
                    usage: "ENCRYPT_DECRYPT".into(),
                    spec: "SYMMETRIC_DEFAULT".into(),
                },
            ),
            policy: Fact::known("kms:GetKeyPolicy", "{}".into()),
            grants: Fact::known("kms:ListGrants", Vec::new()),
        }
    }

    fn policy(statements: serde_json::Value) -> Fact<String> {
        Fact::known(
            "s3:GetBucketPolicy",
            json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        )
    }

    fn deny_unless(value: &str) -> serde_json::Value {
        json!({"Sid": "RequireSse", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
               "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
               "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": value}}})
    }

    fn deny_insecure_transport() -> serde_json::Value {
        json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
               "Resource": [format!("arn:aws:s3:::{BUCKET}"), format!("arn:aws:s3:::{BUCKET}/*")],
               "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    }

    #[test]
    fn missing_bucket_is_confirmed_by_head_bucket() {
        let mut e = evidence("S3NoSuchBucket", "The specified bucket does not exist");
        bucket(&mut e).presence = Fact::known("s3:HeadBucket", BucketPresence::Missing);
        bucket(&mut e).owner = Fact::absent("s3:HeadBucket");
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketNotFound, Confidence::Confirmed)]
        );
        assert!(f[0].correction.is_none());
    }

    #[test]
    fn existing_bucket_is_not_reported_missing() {
        let f = diagnose(
            &incident(),
            &evidence("S3NoSuchBucket", "The specified bucket does not exist"),
        );
        assert!(!causes(&f).iter().any(|(c, _)| *c == Cause::BucketNotFound));
    }

    #[test]
    fn cross_account_bucket_without_owner_is_confirmed_and_fixable() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).in_table_account = Fact::known("s3:ListBuckets", false);
        bucket(&mut e).owner = Fact::known("s3:ListBuckets", DATA_ACCOUNT.into());
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketOwnerMissing, Confidence::Confirmed)]
        );
        assert_eq!(
            f[0].correction.as_ref().unwrap().s3_bucket_owner.as_deref(),
            Some(DATA_ACCOUNT)
        );
        let cmd = f[0].remedy.command.as_deref().unwrap();
        assert!(cmd.contains("--s3-bucket-owner 444455556666"), "{cmd}");
        assert!(
            cmd.starts_with("aws dynamodb export-table-to-point-in-time --table-arn"),
            "{cmd}"
        );
    }

    #[test]
    fn owner_unknown_but_not_ours_is_likely_and_not_fixable() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).presence = Fact::known("s3:HeadBucket", BucketPresence::ExistsNoAccess);
        bucket(&mut e).in_table_account = Fact::known("s3:ListBuckets", false);
        bucket(&mut e).owner = Fact::unknown("s3:ListBuckets", "no member role");
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketOwnerMissing, Confidence::Likely)]
        );
        assert!(f[0].correction.is_none());
        assert!(f[0]
            .remedy
            .command
            .as_deref()
            .unwrap()
            .contains("--s3-prefix exports"));
    }

    #[test]
    fn same_account_bucket_needs_no_owner() {
        let f = diagnose(&incident(), &evidence("S3AccessDenied", BARE_DENIED));
        assert!(!causes(&f)
            .iter()
            .any(|(c, _)| matches!(c, Cause::BucketOwnerMissing | Cause::BucketOwnerMismatch)));
    }

    #[test]
    fn wrong_owner_is_a_mismatch_and_right_owner_is_not() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        e.export.as_mut().unwrap().request.s3_bucket_owner = Some("999988887777".into());
        e.request.as_mut().unwrap().s3_bucket_owner = Some("999988887777".into());
        bucket(&mut e).in_table_account = Fact::known("s3:ListBuckets", false);
        bucket(&mut e).owner = Fact::known("s3:ListBuckets", DATA_ACCOUNT.into());
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketOwnerMismatch, Confidence::Confirmed)]
        );

        e.request.as_mut().unwrap().s3_bucket_owner = Some(DATA_ACCOUNT.into());
        let f = diagnose(&incident(), &e);
        assert!(!causes(&f)
            .iter()
            .any(|(c, _)| *c == Cause::BucketOwnerMismatch));
    }

    #[test]
    fn policy_requiring_kms_with_default_key_gives_a_kms_retry() {
        let mut e = evidence("S3AccessDenied", "User: arn:aws:iam::111122223333:root is not authorized to perform: s3:PutObject with an explicit deny in a resource-based policy");
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms"), deny_insecure_transport()]));
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(KEY_ARN.into()),
            },
        );
        e.default_key = Some(key("Enabled"));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseMismatchRequiresKms, Confidence::Confirmed)]
        );
        let c = f[0].correction.as_ref().unwrap();
        assert_eq!(c.s3_sse_algorithm, Some(SseAlgorithm::Kms));
        assert_eq!(c.s3_sse_kms_key_id.as_deref(), Some(KEY_ARN));
        assert!(f[0].evidence.iter().any(|i| i.fact.contains("RequireSse")));
        assert!(!f[0]
            .evidence
            .iter()
            .any(|i| i.fact.contains("DenyInsecureTransport")));
    }

    #[test]
    fn kms_requirement_with_an_unusable_default_key_is_not_fixable() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms")]));
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(KEY_ARN.into()),
            },
        );
        e.default_key = Some(key("Disabled"));
        let f = diagnose(&incident(), &e);
        assert_eq!(f[0].cause, Cause::SseMismatchRequiresKms);
        assert!(f[0].correction.is_none());
        assert!(
            f[0].remedy.text.contains("Disabled"),
            "{}",
            f[0].remedy.text
        );
    }

    #[test]
    fn deny_insecure_transport_alone_is_not_an_sse_cause() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(json!([deny_insecure_transport()]));
        let f = diagnose(&incident(), &e);
        assert!(!causes(&f).iter().any(|(c, _)| matches!(
            c,
            Cause::SseMismatchRequiresKms | Cause::SseMismatchRequiresAes256
        )));
        assert_eq!(
            causes(&f),
            vec![(Cause::Unclassified, Confidence::Possible)]
        );
    }

    #[test]
    fn policy_requiring_aes256_fixes_a_kms_export_and_leaves_an_aes_export_alone() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(json!([deny_unless("AES256")]));
        use_kms(&mut e);
        e.export_key = Some(key("Enabled"));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseMismatchRequiresAes256, Confidence::Confirmed)]
        );
        assert!(f[0]
            .remedy
            .command
            .as_deref()
            .unwrap()
            .contains("--s3-sse-algorithm AES256"));
        assert!(!f[0]
            .remedy
            .command
            .as_deref()
            .unwrap()
            .contains("--s3-sse-kms-key-id"));

        let mut ok = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut ok).policy = policy(json!([deny_unless("AES256")]));
        assert!(!causes(&diagnose(&incident(), &ok))
            .iter()
            .any(|(c, _)| *c == Cause::SseMismatchRequiresAes256));
    }

    #[test]
    fn omitted_sse_flags_make_an_sse_finding_only_likely() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        e.request.as_mut().unwrap().s3_sse_algorithm = None;
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms")]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseMismatchRequiresKms, Confidence::Likely)]
        );
        assert!(
            f[0].correction.is_none(),
            "no key known, so no automatic fix"
        );
    }

    #[test]
    fn pitr_disabled_from_cloudtrail_is_confirmed() {
        let mut e = evidence("", "");
        e.export = None;
        e.pitr = Fact::known(
            "dynamodb:DescribeContinuousBackups",
            PitrInfo {
                enabled: false,
                earliest_restorable: None,
                latest_restorable: None,
            },
        );
        let mut i = Incident::new(IncidentSource::Cloudtrail);
        i.failure_code = Some("PointInTimeRecoveryUnavailableException".into());
        let f = diagnose(&i, &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::PitrDisabled, Confidence::Confirmed)]
        );
        assert!(f[0]
            .remedy
            .text
            .contains("update-continuous-backups --table-name orders"));
    }

    #[test]
    fn pitr_enabled_is_no_finding() {
        let f = diagnose(&incident(), &evidence("S3AccessDenied", BARE_DENIED));
        assert!(!causes(&f).iter().any(|(c, _)| *c == Cause::PitrDisabled));
    }

    #[test]
    fn table_not_found_from_describe_table_or_error_code() {
        let mut e = evidence("", "");
        e.export = None;
        e.table = Fact::absent("dynamodb:DescribeTable");
        let mut i = Incident::new(IncidentSource::Cloudtrail);
        i.failure_code = Some("TableNotFoundException".into());
        let f = diagnose(&i, &e);
        assert_eq!(causes(&f)[0], (Cause::TableNotFound, Confidence::Confirmed));
        assert_eq!(f[0].evidence.len(), 2);
        assert!(!causes(&diagnose(
            &incident(),
            &evidence("S3AccessDenied", BARE_DENIED)
        ))
        .iter()
        .any(|(c, _)| *c == Cause::TableNotFound));
    }

    #[test]
    fn requester_pays_bucket_is_confirmed_only_when_on() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).requester_pays = Fact::known("s3:GetBucketRequestPayment", true);
        assert_eq!(
            causes(&diagnose(&incident(), &e)),
            vec![(Cause::RequesterPaysBucket, Confidence::Confirmed)]
        );
        assert!(!causes(&diagnose(
            &incident(),
            &evidence("S3AccessDenied", BARE_DENIED)
        ))
        .iter()
        .any(|(c, _)| *c == Cause::RequesterPaysBucket));
    }

    #[test]
    fn export_key_pending_deletion_is_unusable_and_enabled_is_not() {
        let mut e = evidence("KMSAccessDenied", "key state");
        use_kms(&mut e);
        e.export_key = Some(key("PendingDeletion"));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::KmsKeyUnusable, Confidence::Confirmed)]
        );
        assert!(f[0].summary.contains("PendingDeletion"));
        e.export_key = Some(key("Enabled"));
        assert!(!has(&diagnose(&incident(), &e), Cause::KmsKeyUnusable));
    }

    #[test]
    fn key_fields_the_service_left_out_do_not_count_against_the_key() {
        let mut k = key("Enabled");
        if let crate::model::FactValue::Known(info) = &mut k.info.value {
            info.usage.clear();
            info.spec.clear();
        }
        assert_eq!(key_problems(&k, Some("us-east-1")), None);
        let other_region = key_problems(&key("Enabled"), Some("eu-west-1")).unwrap();
        assert!(
            other_region.contains("the bucket in eu-west-1"),
            "{other_region}"
        );
    }

    #[test]
    fn nothing_matched_is_unclassified_with_every_fact() {
        let f = diagnose(&incident(), &evidence("S3AccessDenied", "something new"));
        assert_eq!(
            causes(&f),
            vec![(Cause::Unclassified, Confidence::Possible)]
        );
        let facts: Vec<&str> = f[0].evidence.iter().map(|i| i.source.as_str()).collect();
        for source in [
            "dynamodb:DescribeExport",
            "s3:HeadBucket",
            "s3:GetBucketPolicy",
            "dynamodb:DescribeContinuousBackups",
        ] {
            assert!(facts.contains(&source), "{source} missing from {facts:?}");
        }
    }

    #[test]
    fn completed_export_has_no_findings() {
        let mut e = evidence("", "");
        e.export = Some(ExportDescription {
            status: ExportStatus::Completed,
            failure_code: None,
            failure_message: None,
            ..e.export.clone().unwrap()
        });
        assert!(diagnose(&incident(), &e).is_empty());
    }

    #[test]
    fn findings_are_ordered_most_likely_first() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        e.request.as_mut().unwrap().s3_sse_algorithm = None;
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms")]));
        bucket(&mut e).requester_pays = Fact::known("s3:GetBucketRequestPayment", true);
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![
                (Cause::RequesterPaysBucket, Confidence::Confirmed),
                (Cause::SseMismatchRequiresKms, Confidence::Likely)
            ]
        );
    }

    fn cross_account(e: &mut Evidence) {
        bucket(e).in_table_account = Fact::known("s3:ListBuckets", false);
        bucket(e).owner = Fact::known("s3:ListBuckets", DATA_ACCOUNT.into());
        for r in [
            e.request.as_mut().unwrap(),
            &mut e.export.as_mut().unwrap().request,
        ] {
            r.s3_bucket_owner = Some(DATA_ACCOUNT.into());
        }
    }

    #[test]
    fn cross_org_bucket_with_a_bare_access_denied_is_classified_from_the_bucket_policy() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        bucket(&mut e).policy = policy(json!([{"Sid": "ReadOnlyPartners", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{BUCKET}/*")}]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketPolicyMissingGrant, Confidence::Confirmed)]
        );
        let st = f[0].remedy.statement.as_ref().unwrap();
        assert_eq!(st["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
        assert_eq!(st["Resource"], format!("arn:aws:s3:::{BUCKET}/exports/*"));
        assert!(f[0].correction.is_none());

        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        assert!(diagnose(&incident(), &e)
            .iter()
            .all(|f| f.cause != Cause::BucketPolicyMissingGrant));
    }

    #[test]
    fn a_cross_account_bucket_without_any_policy_grants_nothing() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketPolicyMissingGrant, Confidence::Confirmed)]
        );
        assert!(f[0].evidence[0].fact.contains("has no bucket policy"));
    }

    #[test]
    fn an_explicit_non_sse_deny_is_bucket_policy_denies_and_insecure_transport_is_not() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(
            json!([{"Sid": "FreezeBucket", "Effect": "Deny", "Principal": "*",
            "Action": "s3:Put*", "Resource": format!("arn:aws:s3:::{BUCKET}/*")}, deny_insecure_transport()]),
        );
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketPolicyDenies, Confidence::Confirmed)]
        );
        assert!(
            f[0].summary.contains("bucket-policy/FreezeBucket"),
            "{}",
            f[0].summary
        );

        bucket(&mut e).policy = policy(json!([deny_insecure_transport()]));
        assert!(diagnose(&incident(), &e)
            .iter()
            .all(|f| f.cause != Cause::BucketPolicyDenies));
    }

    #[test]
    fn a_source_ip_deny_without_a_service_exception_is_a_network_perimeter_cause() {
        let perimeter = |exception: bool| {
            let mut cond = json!({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}});
            if exception {
                cond["Bool"] = json!({"aws:ViaAWSService": "false"});
            }
            json!([{"Sid": "OfficeOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": format!("arn:aws:s3:::{BUCKET}/*"), "Condition": cond}])
        };
        let mut e = evidence("S3AccessDenied", "User: arn:aws:iam::111122223333:root is not authorized to perform: s3:PutObject on resource: x with an explicit deny in a resource-based policy");
        bucket(&mut e).policy = policy(perimeter(false));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::NetworkPerimeterDenies, Confidence::Likely)]
        );
        bucket(&mut e).policy = policy(perimeter(true));
        assert!(diagnose(&incident(), &e)
            .iter()
            .all(|f| f.cause != Cause::NetworkPerimeterDenies));
    }

    /// The export (and its description) asked for SSE-KMS with KEY_ARN.
    fn use_kms(e: &mut Evidence) {
        for r in [
            e.request.as_mut().unwrap(),
            &mut e.export.as_mut().unwrap().request,
        ] {
            r.s3_sse_algorithm = Some(SseAlgorithm::Kms);
            r.s3_sse_kms_key_id = Some(KEY_ARN.into());
        }
    }

    fn kms_export(e: &mut Evidence, key_policy: serde_json::Value) {
        use_kms(e);
        let mut k = key("Enabled");
        k.policy = Fact::known(
            "kms:GetKeyPolicy",
            json!({"Version": "2012-10-17", "Statement": key_policy}).to_string(),
        );
        e.export_key = Some(k);
    }

    #[test]
    fn a_key_policy_without_root_delegation_that_does_not_name_the_exporter_denies_it() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(
            &mut e,
            json!([{"Sid": "KeyAdmins", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
            "Action": "kms:*", "Resource": "*"}]),
        );
        let mut i = incident();
        i.caller = Some("arn:aws:iam::111122223333:role/DataPlatformExporter".into());
        let f = diagnose(&i, &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::KmsKeyPolicyDeniesExporter, Confidence::Confirmed)]
        );
        let st = f[0].remedy.statement.as_ref().unwrap();
        assert_eq!(
            st["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/DataPlatformExporter"
        );
        assert_eq!(st["Action"], json!(["kms:GenerateDataKey", "kms:Decrypt"]));
        assert_eq!(
            st["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.us-east-1.amazonaws.com"
        );
    }

    fn grant(grantee: &str, constrained: bool) -> crate::model::KeyGrant {
        crate::model::KeyGrant {
            grant_id: "0123abcd".into(),
            grantee: grantee.into(),
            operations: vec!["GenerateDataKey".into(), "Decrypt".into()],
            constrained,
        }
    }

    #[test]
    fn a_grant_to_the_exporter_means_the_key_policy_is_not_the_cause() {
        let admins_only = json!([{"Sid": "KeyAdmins", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"}, "Action": "kms:*", "Resource": "*"}]);
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(&mut e, admins_only);
        let mut i = incident();
        // The exporter is a session of the role; the grant names the role (as ListGrants shows it).
        i.caller =
            Some("arn:aws:sts::111122223333:assumed-role/DataPlatformExporter/nightly".into());
        let role = "arn:aws:iam::111122223333:role/DataPlatformExporter";
        let k = e.export_key.as_mut().unwrap();
        k.grants = Fact::known("kms:ListGrants", vec![grant(role, false)]);
        assert!(!has(&diagnose(&i, &e), Cause::KmsKeyPolicyDeniesExporter));
        // A grant to someone else: CONFIRMED as before.
        let k = e.export_key.as_mut().unwrap();
        k.grants = Fact::known(
            "kms:ListGrants",
            vec![grant("arn:aws:iam::111122223333:role/Other", false)],
        );
        let f = diagnose(&i, &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::KmsKeyPolicyDeniesExporter)
            .unwrap();
        assert_eq!(m.confidence, Confidence::Confirmed);
        // Grants that could not be read: LIKELY at most, and the evidence says why.
        let k = e.export_key.as_mut().unwrap();
        k.grants = Fact::unknown("kms:ListGrants", "AccessDenied");
        let f = diagnose(&i, &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::KmsKeyPolicyDeniesExporter)
            .unwrap();
        assert_eq!(m.confidence, Confidence::Likely);
        assert!(
            m.evidence.iter().any(|x| x.source == "kms:ListGrants"),
            "{:?}",
            m.evidence
        );
        // A grant under an encryption-context constraint may or may not cover the export.
        let k = e.export_key.as_mut().unwrap();
        k.grants = Fact::known("kms:ListGrants", vec![grant(role, true)]);
        let f = diagnose(&i, &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::KmsKeyPolicyDeniesExporter)
            .unwrap();
        assert_eq!(m.confidence, Confidence::Possible);
    }

    /// The table in us-east-1 exports to a bucket (and a key) in eu-west-1.
    fn eu_bucket_export(e: &mut Evidence, key_policy: serde_json::Value) {
        const EU_KEY: &str =
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        kms_export(e, key_policy);
        bucket(e).region = Fact::known("s3:GetBucketLocation", "eu-west-1".into());
        let k = e.export_key.as_mut().unwrap();
        k.key_id = EU_KEY.into();
        if let crate::model::FactValue::Known(info) = &mut k.info.value {
            info.arn = EU_KEY.into();
        }
        e.request.as_mut().unwrap().s3_sse_kms_key_id = Some(EU_KEY.into());
    }

    #[test]
    fn kms_via_service_is_the_buckets_region_not_the_tables() {
        // A key policy that admits the exporter only through S3 in eu-west-1, where the bucket is.
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        eu_bucket_export(
            &mut e,
            json!([{"Sid": "ExportsThroughS3", "Effect": "Allow",
                "Principal": {"AWS": ["arn:aws:iam::111122223333:role/DataPlatformExporter", "arn:aws:iam::111122223333:root"]},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}}]),
        );
        let mut i = incident();
        i.caller = Some("arn:aws:iam::111122223333:role/DataPlatformExporter".into());
        assert!(!has(&diagnose(&i, &e), Cause::KmsKeyPolicyDeniesExporter));
        // A policy that leaves the exporter out: the statement to add names eu-west-1 too.
        eu_bucket_export(
            &mut e,
            json!([{"Sid": "KeyAdmins", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
            "Action": "kms:*", "Resource": "*"}]),
        );
        let f = diagnose(&i, &e);
        let st = f
            .iter()
            .find(|f| f.cause == Cause::KmsKeyPolicyDeniesExporter)
            .and_then(|f| f.remedy.statement.as_ref())
            .expect("the exporter statement");
        assert_eq!(
            st["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn a_key_policy_delegating_to_the_account_does_not_deny_the_exporter() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(
            &mut e,
            json!([{"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*", "Resource": "*"}]),
        );
        assert!(diagnose(&incident(), &e)
            .iter()
            .all(|f| f.cause != Cause::KmsKeyPolicyDeniesExporter));
    }

    #[test]
    fn enhanced_messages_name_the_policy_type_when_nothing_readable_explains_it() {
        let cases = [
            (
                "with an explicit deny in a service control policy",
                "kms:GenerateDataKey",
                Cause::ScpDeniesS3OrKms,
            ),
            (
                "with an explicit deny in a VPC endpoint policy",
                "s3:PutObject",
                Cause::VpcEndpointPolicyDenies,
            ),
            (
                "because no permissions boundary allows the action",
                "s3:PutObject",
                Cause::PermissionsBoundaryDenies,
            ),
            (
                "because no identity-based policy allows the action",
                "s3:PutObject",
                Cause::CallerMissingS3Permission,
            ),
            (
                "because no identity-based policy allows the action",
                "kms:GenerateDataKey",
                Cause::KmsCallerMissingPermission,
            ),
        ];
        for (tail, action, cause) in cases {
            let msg = format!("User: arn:aws:iam::111122223333:role/R is not authorized to perform: {action} on resource: x {tail}");
            let f = diagnose(&incident(), &evidence("S3AccessDenied", &msg));
            assert_eq!(causes(&f), vec![(cause, Confidence::Likely)], "{msg}");
        }
    }

    const ROLE: &str = "arn:aws:iam::111122223333:role/DataPlatformExporter";

    fn with_role(
        e: &mut Evidence,
        identity: serde_json::Value,
        boundary: Option<serde_json::Value>,
    ) {
        let named = |name: &str, statements: &serde_json::Value| crate::ports::NamedPolicy {
            name: name.into(),
            document: json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        };
        e.caller_policies = Some((
            ROLE.into(),
            Fact::known(
                "iam:GetRole",
                crate::ports::PrincipalPolicies {
                    identity: vec![named("exporter-inline", &identity)],
                    boundary: boundary.as_ref().map(|b| named("boundary", b)),
                },
            ),
        ));
    }

    #[test]
    fn a_role_without_s3_write_permissions_is_confirmed_from_its_policies() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        with_role(
            &mut e,
            json!([{"Sid": "Export", "Effect": "Allow", "Action": "dynamodb:ExportTableToPointInTime", "Resource": TABLE_ARN}]),
            None,
        );
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::CallerMissingS3Permission, Confidence::Confirmed)]
        );
        let st = f[0].remedy.statement.as_ref().unwrap();
        assert_eq!(
            st["Action"],
            json!(["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"])
        );
        assert_eq!(st["Resource"], format!("arn:aws:s3:::{BUCKET}/exports/*"));

        with_role(
            &mut e,
            json!([{"Effect": "Allow", "Action": ["dynamodb:*", "s3:*"], "Resource": "*"}]),
            None,
        );
        assert_eq!(
            causes(&diagnose(&incident(), &e)),
            vec![(Cause::Unclassified, Confidence::Possible)]
        );
    }

    #[test]
    fn a_boundary_that_leaves_out_s3_is_the_cause_when_the_identity_policy_allows() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        with_role(
            &mut e,
            json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]),
            Some(json!([{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}])),
        );
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::PermissionsBoundaryDenies, Confidence::Confirmed)]
        );
    }

    #[test]
    fn a_refused_export_call_is_confirmed_against_the_callers_policies() {
        let mut e = evidence("", "");
        e.export = None;
        with_role(
            &mut e,
            json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]),
            None,
        );
        let mut i = Incident::new(IncidentSource::Cloudtrail);
        i.failure_code = Some("AccessDeniedException".into());
        i.caller = Some(ROLE.into());
        let f = diagnose(&i, &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::CallerMissingExportPermission, Confidence::Confirmed)]
        );
        assert_eq!(
            f[0].remedy.statement.as_ref().unwrap()["Resource"],
            TABLE_ARN
        );
    }

    #[test]
    fn a_kms_export_checks_the_callers_key_permissions() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(
            &mut e,
            json!([{"Sid": "EnableIamPolicies", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]),
        );
        with_role(
            &mut e,
            json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]),
            None,
        );
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::KmsCallerMissingPermission, Confidence::Confirmed)]
        );
        assert_eq!(
            f[0].remedy.statement.as_ref().unwrap()["Action"],
            json!(["kms:GenerateDataKey", "kms:Decrypt"])
        );
    }

    fn kms_key_id(e: &mut Evidence, key_id: &str) {
        for r in [
            e.request.as_mut().unwrap(),
            &mut e.export.as_mut().unwrap().request,
        ] {
            r.s3_sse_algorithm = Some(SseAlgorithm::Kms);
            r.s3_sse_kms_key_id = Some(key_id.into());
        }
    }

    fn key_condition(key: &str) -> serde_json::Value {
        json!({"Sid": "RequireOurKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
               "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
               "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}}})
    }

    #[test]
    fn a_kms_export_with_another_key_than_the_policy_pins_is_a_key_mismatch() {
        let other = "arn:aws:kms:us-east-1:111122223333:key/0000aaaa-00aa-00aa-00aa-000000000000";
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_key_id(&mut e, other);
        bucket(&mut e).policy = policy(json!([key_condition(KEY_ARN)]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseKmsKeyMismatch, Confidence::Confirmed)]
        );
        let c = f[0].correction.as_ref().unwrap();
        assert_eq!(c.s3_sse_kms_key_id.as_deref(), Some(KEY_ARN));
        assert!(f[0].remedy.command.as_deref().unwrap().contains(KEY_ARN));
        // The pinned key itself passes.
        kms_key_id(&mut e, KEY_ARN);
        assert!(!has(&diagnose(&incident(), &e), Cause::SseKmsKeyMismatch));
    }

    #[test]
    fn an_alias_to_another_accounts_bucket_is_a_key_mismatch_fixed_with_the_full_arn() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        kms_key_id(&mut e, "alias/exports");
        let mut k = key("Enabled");
        k.key_id = "alias/exports".into();
        e.export_key = Some(k);
        let f = diagnose(&incident(), &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::SseKmsKeyMismatch)
            .expect("key mismatch");
        assert_eq!(m.confidence, Confidence::Confirmed);
        assert_eq!(
            m.correction.as_ref().unwrap().s3_sse_kms_key_id.as_deref(),
            Some(KEY_ARN)
        );
        // The same alias to a bucket of the table's own account is fine.
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_key_id(&mut e, "alias/exports");
        assert!(!has(&diagnose(&incident(), &e), Cause::SseKmsKeyMismatch));
    }

    #[test]
    fn the_aws_managed_key_to_another_account_is_fixed_with_aes256_when_the_policy_allows() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        kms_key_id(&mut e, "alias/aws/s3");
        let f = diagnose(&incident(), &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::AwsManagedKeyCrossAccount)
            .expect("aws managed");
        assert_eq!(m.confidence, Confidence::Confirmed);
        assert_eq!(
            m.correction.as_ref().unwrap().s3_sse_algorithm,
            Some(SseAlgorithm::Aes256)
        );
        assert!(!f.iter().any(|f| f.cause == Cause::SseKmsKeyMismatch));
        // A policy that requires KMS leaves only the recommendation.
        bucket(&mut e).policy = policy(json!([
            crate::fakes::grant_statement(BUCKET),
            deny_unless("aws:kms")
        ]));
        let f = diagnose(&incident(), &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::AwsManagedKeyCrossAccount)
            .unwrap();
        assert!(m.correction.is_none());
        // Same account: aws/s3 is fine.
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_key_id(&mut e, "alias/aws/s3");
        assert!(!has(
            &diagnose(&incident(), &e),
            Cause::AwsManagedKeyCrossAccount
        ));
    }

    #[test]
    fn a_cross_account_bucket_defaulting_to_aws_s3_is_the_aws_managed_key_cause_for_an_export_without_flags(
    ) {
        // GIVEN an export without SSE flags to another account's bucket whose default is
        // SSE-KMS with no key id (S3 then uses that account's aws/s3)
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        e.request.as_mut().unwrap().s3_sse_algorithm = None;
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: None,
            },
        );
        let f = diagnose(&incident(), &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::AwsManagedKeyCrossAccount)
            .unwrap_or_else(|| panic!("{:?}", causes(&f)));
        assert_eq!(m.confidence, Confidence::Likely);
        assert_eq!(
            m.correction.as_ref().unwrap().s3_sse_algorithm,
            Some(SseAlgorithm::Aes256)
        );
        assert!(!has(&f, Cause::Unclassified));
        assert!(m
            .remedy
            .command
            .as_deref()
            .unwrap()
            .contains("--s3-sse-algorithm AES256"));
        // The same default naming alias/aws/s3, and a policy that requires KMS: the remedy is a
        // customer managed key, with no retry.
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some("alias/aws/s3".into()),
            },
        );
        bucket(&mut e).policy = policy(json!([
            crate::fakes::grant_statement(BUCKET),
            deny_unless("aws:kms")
        ]));
        let f = diagnose(&incident(), &e);
        let m = f
            .iter()
            .find(|f| f.cause == Cause::AwsManagedKeyCrossAccount)
            .expect("aws managed");
        assert!(m.correction.is_none());
        assert!(
            m.remedy.text.contains("customer managed key"),
            "{}",
            m.remedy.text
        );
        // A customer managed default key is not this cause; nor is aws/s3 in the table's account.
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(KEY_ARN.into()),
            },
        );
        assert!(!has(
            &diagnose(&incident(), &e),
            Cause::AwsManagedKeyCrossAccount
        ));
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        e.request.as_mut().unwrap().s3_sse_algorithm = None;
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: None,
            },
        );
        assert!(!has(
            &diagnose(&incident(), &e),
            Cause::AwsManagedKeyCrossAccount
        ));
    }

    #[test]
    fn a_policy_requiring_dsse_is_an_unsupported_algorithm_and_one_requiring_kms_is_not() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms:dsse")]));
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseAlgorithmUnsupported, Confidence::Confirmed)]
        );
        assert!(f[0].summary.contains("DSSE-KMS"), "{}", f[0].summary);
        assert!(f[0].correction.is_none());
        bucket(&mut e).policy = policy(json!([deny_unless("aws:kms")]));
        assert!(!has(
            &diagnose(&incident(), &e),
            Cause::SseAlgorithmUnsupported
        ));
    }

    #[test]
    fn a_policy_requiring_sse_c_is_an_unsupported_algorithm() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        bucket(&mut e).policy = policy(
            json!([{"Sid": "RequireSseC", "Effect": "Deny", "Principal": "*",
            "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{BUCKET}/*"),
            "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}}}]),
        );
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::SseAlgorithmUnsupported, Confidence::Confirmed)]
        );
        assert!(f[0].summary.contains("SSE-C"));
    }

    fn public_write() -> serde_json::Value {
        json!({"Sid": "PublicDrop", "Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
               "Resource": format!("arn:aws:s3:::{BUCKET}/*")})
    }

    #[test]
    fn a_public_grant_under_restrict_public_buckets_refuses_another_account() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        bucket(&mut e).policy = policy(json!([public_write()]));
        bucket(&mut e).restrict_public = Fact::known("s3:GetPublicAccessBlock", true);
        let f = diagnose(&incident(), &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::BucketPublicAccessRestricted, Confidence::Confirmed)]
        );
        assert!(f[0].remedy.statement.is_some());
        // Without RestrictPublicBuckets the public grant admits the writer: nothing to report.
        bucket(&mut e).restrict_public = Fact::known("s3:GetPublicAccessBlock", false);
        assert!(causes(&diagnose(&incident(), &e))
            .iter()
            .all(|(c, _)| *c != Cause::BucketPublicAccessRestricted
                && *c != Cause::BucketPolicyMissingGrant));
        // A grant naming the account is not public: RestrictPublicBuckets does not matter.
        bucket(&mut e).restrict_public = Fact::known("s3:GetPublicAccessBlock", true);
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        assert!(!has(
            &diagnose(&incident(), &e),
            Cause::BucketPublicAccessRestricted
        ));
    }

    fn refused_call(table_policy: serde_json::Value) -> (Incident, Evidence) {
        let mut e = evidence("AccessDeniedException", "");
        e.export = None;
        e.table_policy = Fact::known(
            "dynamodb:GetResourcePolicy",
            json!({"Version": "2012-10-17", "Statement": table_policy}).to_string(),
        );
        let mut i = Incident::new(IncidentSource::Cloudtrail);
        i.failure_code = Some("AccessDeniedException".into());
        i.failure_message = Some("User: arn:aws:iam::111122223333:role/DdbExportRole is not authorized to perform: dynamodb:ExportTableToPointInTime".into());
        i.caller = Some("arn:aws:iam::111122223333:role/DdbExportRole".into());
        (i, e)
    }

    #[test]
    fn a_table_policy_that_denies_the_export_is_confirmed_and_one_that_allows_is_not() {
        let (i, e) = refused_call(
            json!([{"Sid": "NoExports", "Effect": "Deny", "Principal": "*",
            "Action": "dynamodb:ExportTableToPointInTime", "Resource": TABLE_ARN}]),
        );
        let f = diagnose(&i, &e);
        assert_eq!(f[0].cause, Cause::TablePolicyDenies);
        assert_eq!(f[0].confidence, Confidence::Confirmed);
        assert!(
            f[0].summary.contains("table-policy/NoExports"),
            "{}",
            f[0].summary
        );
        let (i, e) = refused_call(json!([{"Sid": "ReadersOnly", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/Reader"}, "Action": "dynamodb:GetItem", "Resource": TABLE_ARN}]));
        assert!(!has(&diagnose(&i, &e), Cause::TablePolicyDenies));
    }

    fn scp_path(
        management: bool,
        ou_policies: Vec<serde_json::Value>,
    ) -> Fact<crate::ports::ScpPath> {
        use crate::model::{NamedPolicy, ScpLevel, ScpPath};
        let full = || {
            NamedPolicy {
            name: "FullAWSAccess (p-FullAWSAccess)".into(),
            document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string(),
        }
        };
        let mut ou = vec![full()];
        ou.extend(
            ou_policies
                .into_iter()
                .enumerate()
                .map(|(i, st)| NamedPolicy {
                    name: format!("Guardrail{i} (p-{i})"),
                    document: json!({"Version": "2012-10-17", "Statement": [st]}).to_string(),
                }),
        );
        Fact::known(
            "organizations:ListPoliciesForTarget",
            ScpPath {
                management_account: management,
                levels: vec![
                    ScpLevel {
                        target: TABLE_ACCOUNT.into(),
                        policies: vec![full()],
                    },
                    ScpLevel {
                        target: "ou-ab12-34cd56ef".into(),
                        policies: ou,
                    },
                    ScpLevel {
                        target: "r-ab12".into(),
                        policies: vec![full()],
                    },
                ],
            },
        )
    }

    fn deny_kms_scp() -> serde_json::Value {
        json!({"Sid": "NoKmsDataKeys", "Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": "*"})
    }

    fn delegating_key_policy() -> serde_json::Value {
        json!([{"Sid": "EnableIam", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                "Action": "kms:*", "Resource": "*"}])
    }

    #[test]
    fn an_scp_that_denies_generate_data_key_is_confirmed_from_the_organization_policies() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(&mut e, delegating_key_policy());
        e.scps = scp_path(false, vec![deny_kms_scp()]);
        let f = diagnose(&incident(), &e);
        let scp = f
            .iter()
            .find(|f| f.cause == Cause::ScpDeniesS3OrKms)
            .expect("SCP finding");
        assert_eq!(scp.confidence, Confidence::Confirmed);
        assert!(
            scp.summary.contains("kms:GenerateDataKey"),
            "{}",
            scp.summary
        );
        assert!(
            scp.summary.contains("Guardrail0 (p-0)/NoKmsDataKeys"),
            "{}",
            scp.summary
        );
        assert!(!f.iter().any(|f| f.cause == Cause::Unclassified));
    }

    #[test]
    fn scps_do_not_restrict_the_management_account_nor_allow_nothing_when_they_allow() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(&mut e, delegating_key_policy());
        e.scps = scp_path(true, vec![deny_kms_scp()]);
        assert!(!has(&diagnose(&incident(), &e), Cause::ScpDeniesS3OrKms));
        e.scps = scp_path(false, vec![]);
        assert!(!has(&diagnose(&incident(), &e), Cause::ScpDeniesS3OrKms));
    }

    #[test]
    fn a_level_without_an_allowing_scp_denies_the_refused_export_call() {
        let (i, mut e) = refused_call(json!([]));
        e.table_policy = Fact::absent("dynamodb:GetResourcePolicy");
        // The OU's only SCP allows S3 alone: DynamoDB is implicitly denied at that level.
        let mut path = scp_path(false, vec![]);
        if let crate::model::FactValue::Known(p) = &mut path.value {
            p.levels[1].policies = vec![crate::ports::NamedPolicy {
                name: "S3Only (p-s3)".into(),
                document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}).to_string(),
            }];
        }
        e.scps = path;
        let f = diagnose(&i, &e);
        let scp = f
            .iter()
            .find(|f| f.cause == Cause::ScpDeniesExport)
            .expect("SCP export finding");
        assert_eq!(scp.confidence, Confidence::Confirmed);
    }

    /// The export (and its description) set no SSE flags.
    fn no_flags(e: &mut Evidence) {
        for r in [
            e.request.as_mut().unwrap(),
            &mut e.export.as_mut().unwrap().request,
        ] {
            r.s3_sse_algorithm = None;
            r.s3_sse_kms_key_id = None;
        }
    }

    /// A cross-account bucket whose default encryption is a customer managed key, and an
    /// export without SSE flags: S3 uses the default key, so its key policy is
    /// the cause (the bucket policy grants the exporter).
    #[test]
    fn without_sse_flags_the_bucket_default_keys_policy_decides_for_the_exporter() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        cross_account(&mut e);
        no_flags(&mut e);
        bucket(&mut e).policy = policy(json!([crate::fakes::grant_statement(BUCKET)]));
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            crate::model::BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(KEY_ARN.into()),
            },
        );
        let mut k = key("Enabled");
        k.policy = Fact::known(
            "kms:GetKeyPolicy",
            json!({"Version": "2012-10-17", "Statement": [{"Sid": "KeyAdmins", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::444455556666:role/KeyAdmin"},
                "Action": "kms:*", "Resource": "*"}]})
            .to_string(),
        );
        e.default_key = Some(k);
        let mut i = incident();
        i.caller = Some("arn:aws:iam::111122223333:role/DataPlatformExporter".into());
        let f = diagnose(&i, &e);
        assert_eq!(
            causes(&f),
            vec![(Cause::KmsKeyPolicyDeniesExporter, Confidence::Confirmed)]
        );
        assert!(f[0].patch.is_some(), "the exporter statement is offered");
        // An AES256 export does not use the default key: no key finding.
        for r in [
            e.request.as_mut().unwrap(),
            &mut e.export.as_mut().unwrap().request,
        ] {
            r.s3_sse_algorithm = Some(SseAlgorithm::Aes256);
        }
        assert!(!has(&diagnose(&i, &e), Cause::KmsKeyPolicyDeniesExporter));
    }

    /// A bucket default key in another Region than the bucket cannot encrypt its objects, even
    /// when DescribeKey (asked in the function's Region) could not say anything about it.
    #[test]
    fn a_bucket_default_key_of_another_region_is_unusable_for_an_export_without_flags() {
        let other = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        no_flags(&mut e);
        bucket(&mut e).encryption = Fact::known(
            "s3:GetBucketEncryption",
            crate::model::BucketEncryption {
                algorithm: "aws:kms".into(),
                kms_key_id: Some(other.into()),
            },
        );
        e.default_key = Some(KeyFacts {
            key_id: other.into(),
            info: Fact::unknown("kms:DescribeKey", "NotFoundException"),
            policy: Fact::unknown("kms:GetKeyPolicy", "NotFoundException"),
            grants: Fact::unknown("kms:ListGrants", "NotFoundException"),
        });
        let f = diagnose(&incident(), &e);
        assert_eq!(f[0].cause, Cause::KmsKeyUnusable, "{f:#?}");
        assert_eq!(f[0].confidence, Confidence::Confirmed);
        assert!(f[0].summary.contains("us-west-2"), "{}", f[0].summary);
    }

    #[test]
    fn an_enhanced_message_ranks_the_cause_of_the_policy_type_it_names_first() {
        assert!(named_by_message(
            Cause::ScpDeniesS3OrKms,
            Some("service control")
        ));
        assert!(!named_by_message(
            Cause::BucketOwnerMissing,
            Some("service control")
        ));
        assert!(named_by_message(
            Cause::PermissionsBoundaryDenies,
            Some("session")
        ));
        assert!(!named_by_message(Cause::ScpDeniesS3OrKms, None));
        // Both LIKELY: the SCP the message names comes before the owner the facts suggest.
        let mut e = evidence("S3AccessDenied", "User: arn:aws:sts::111122223333:assumed-role/Exporter/s is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::b/k\" with an explicit deny in a service control policy");
        bucket(&mut e).in_table_account = Fact::known("s3:ListBuckets", false);
        bucket(&mut e).owner = Fact::unknown("s3:ListBuckets", "not found");
        let f = diagnose(&incident(), &e);
        let order: Vec<Cause> = f.iter().map(|f| f.cause).collect();
        let scp = order.iter().position(|c| *c == Cause::ScpDeniesS3OrKms);
        let owner = order.iter().position(|c| *c == Cause::BucketOwnerMissing);
        assert!(
            scp.is_some() && (owner.is_none() || scp < owner),
            "{order:?}"
        );
    }

    /// A key policy that denies the exporter explicitly: an added Allow cannot help, so the
    /// finding offers no patch.
    #[test]
    fn an_explicit_deny_on_the_exporter_in_the_key_policy_is_not_patched() {
        let mut e = evidence("S3AccessDenied", BARE_DENIED);
        kms_export(
            &mut e,
            json!([{"Sid": "EnableIam", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
                {"Sid": "NotTheExporter", "Effect": "Deny",
                "Principal": {"AWS": "arn:aws:iam::111122223333:role/DataPlatformExporter"},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}]),
        );
        let mut i = incident();
        i.caller = Some("arn:aws:iam::111122223333:role/DataPlatformExporter".into());
        let f = diagnose(&i, &e);
        let key = f
            .iter()
            .find(|f| f.cause == Cause::KmsKeyPolicyDeniesExporter)
            .expect("key-policy finding");
        assert!(key.patch.is_none());
        assert!(
            key.remedy.text.contains("explicitly"),
            "{}",
            key.remedy.text
        );
    }
}
