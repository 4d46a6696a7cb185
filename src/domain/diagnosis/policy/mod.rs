//! Causes found by evaluating the bucket and key policies with the export's request model, and
//! by the enhanced AccessDenied message where the policies behind it cannot be read here.

mod bucket;
mod identity;
mod key;
mod scp;
mod table;

use super::common::{ev, finding, started_object_arn, BucketDoc, Failure};
use crate::arn::{partition_of, Arn};
use crate::domain::access::{
    agree, candidate_principals, denied, kms_generate, parse_denial, resource_side, s3_put,
    scp_side, Denial,
};
use crate::domain::key_patch::{consumer_patch, exporter_patch};
use crate::model::{s3_region, BucketFacts, Evidence, KeyFacts};
use crate::model::{
    Cause, Confidence, ExportRequest, FactValue, Finding, Incident, KeyGrant, SseAlgorithm,
};
use crate::policy::{Context, DecisionKind, Effect, Policy, PolicyKind, Request};
use bucket::*;
use identity::*;
use key::*;
use scp::*;
use serde_json::json;
use table::*;

const SSE_KEYS: [&str; 3] = [
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:x-amz-server-side-encryption-customer-algorithm",
];
const PERIMETER_KEYS: [&str; 3] = ["aws:sourceip", "aws:sourcevpce", "aws:sourcevpc"];

struct Ctx<'a> {
    request: &'a ExportRequest,
    evidence: &'a Evidence,
    partition: String,
    /// Where S3 calls KMS for the export: the bucket's region (docs/safety.md, "Key-policy patch"), not the table's.
    s3_region: String,
    principals: Vec<String>,
    object_arn: String,
    /// The key S3 encrypts the export with: the request's (KMS flags), else, with no SSE
    /// flags, the bucket default's customer managed key.
    used_key: Option<&'a KeyFacts>,
    /// That key's policy, parsed once for every cause that reads it.
    key_policy: Option<Policy>,
    /// That key's full ARN, as DescribeKey gave it.
    key_arn: Option<String>,
    /// The bucket policy's JSON, parsed once by the diagnosis.
    bucket_doc: Option<&'a BucketDoc<'a>>,
}

/// The exporter: the incident's caller (CloudTrail or the ledger), else a role or user the
/// failure message names.
pub(super) fn exporter(incident: &Incident, fail: &Failure) -> Option<String> {
    incident.caller.clone().or_else(|| {
        fail.message
            .and_then(parse_denial)
            .and_then(|d| d.principal)
            .filter(|p| p.contains(":role/") || p.contains(":user/"))
    })
}

pub(super) fn policy_findings<'a>(
    incident: &Incident,
    fail: &Failure,
    evidence: &'a Evidence,
    bucket_doc: Option<&'a BucketDoc<'a>>,
) -> Vec<Finding> {
    let Some(request) = &evidence.request else {
        return Vec::new();
    };
    let Ok(table) = Arn::table("tableArn", &request.table_arn) else {
        return Vec::new();
    };
    let caller = exporter(incident, fail);
    let used_key = used_key(request, evidence);
    let cx = Ctx {
        request,
        evidence,
        partition: table.partition.clone(),
        s3_region: s3_region(evidence, &table.region),
        principals: candidate_principals(
            caller.as_deref(),
            partition_of(&table.region),
            &evidence.table_account,
        ),
        object_arn: started_object_arn(request, evidence),
        used_key,
        key_policy: used_key
            .and_then(|k| k.policy.get())
            .and_then(|text| Policy::parse_text(PolicyKind::Key, "key-policy", text).ok()),
        key_arn: used_key.and_then(|k| k.info.get()).map(|i| i.arn.clone()),
        bucket_doc,
    };
    let mut out = Vec::new();
    if let Some(bucket) = &evidence.bucket {
        out.extend(bucket_policy(&cx, fail, bucket));
    }
    out.extend(key_policy(&cx, caller.as_deref()));
    out.extend(table_policy(&cx, fail, caller.as_deref()));
    out.extend(scp_findings(&cx, fail));
    out.extend(identity_side(&cx, fail));
    if out.is_empty() {
        out.extend(from_message(fail));
    }
    // Not a cause of the failure: what happens after the export succeeds.
    if let Some(bucket) = &evidence.bucket {
        out.extend(consumer_decrypt(&cx, bucket));
    }
    out
}

/// The key S3 uses for the export's objects: with `S3SseAlgorithm=KMS` the request's key; with no
/// SSE flags the bucket's default encryption applies ("Amazon S3 automatically encrypts …
/// using the default encryption configuration of the bucket", Amazon S3 User Guide, "Setting
/// default server-side encryption behavior for Amazon S3 buckets",
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-encryption.html), so its key
/// policy decides as the request's would (evidence reads it in the key's account). AES256: none.
fn used_key<'a>(request: &ExportRequest, evidence: &'a Evidence) -> Option<&'a KeyFacts> {
    match request.s3_sse_algorithm {
        Some(SseAlgorithm::Kms) => evidence.export_key.as_ref(),
        None => evidence.default_key.as_ref(),
        Some(_) => None,
    }
}

/// The export call itself, made by `principal` on the table.
fn export_call(cx: &Ctx, principal: &str, context: Context) -> Request {
    Request {
        principal: principal.to_string(),
        action: "dynamodb:ExportTableToPointInTime".into(),
        resource: cx.request.table_arn.clone(),
        resource_account: Some(cx.evidence.table_account.clone()),
        context,
    }
}

fn statement<'a>(
    policy: &'a Policy,
    decided_by: Option<&str>,
) -> Option<&'a crate::policy::Statement> {
    let name = decided_by?.strip_prefix(&format!("{}/", policy.name))?;
    policy.statements.iter().find(|s| s.name == name)
}

fn missing_grant(
    cx: &Ctx,
    bucket: &BucketFacts,
    confidence: Confidence,
    items: Vec<crate::model::EvidenceItem>,
) -> Finding {
    let prefix = cx.request.key_prefix();
    let root = format!(
        "arn:{}:iam::{}:root",
        cx.partition, cx.evidence.table_account
    );
    let mut f = finding(
        Cause::BucketPolicyMissingGrant,
        confidence,
        format!("The bucket {} is in another account, and its policy does not let the table's account write the export.", bucket.name),
        items,
        format!(
            "The bucket owner adds this statement to the bucket policy. It names the table account ({root}), which works whichever principal S3 sees for the export; naming the exporter's role instead is narrower."
        ),
    );
    f.remedy.statement = Some(json!({
        "Sid": format!("AllowDynamoDBExportFrom{}", cx.evidence.table_account),
        "Effect": "Allow",
        "Principal": {"AWS": root},
        "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"],
        "Resource": format!("arn:{}:s3:::{}/{prefix}*", cx.partition, bucket.name),
    }));
    f
}

/// The grant that gives `principal` the KMS `operation`: named as the grantee, or, for a role
/// session, its role named (GranteePrincipal holds the role ARN).
fn grant_for<'g>(grants: &'g [KeyGrant], principal: &str, operation: &str) -> Option<&'g KeyGrant> {
    let session =
        principal.split(':').nth(2) == Some("sts") && principal.contains(":assumed-role/");
    grants.iter().find(|g| {
        let names = g.grantee == principal
            || (session
                && g.grantee.contains(":role/")
                && crate::arn::account_of(&g.grantee) == crate::arn::account_of(principal)
                && crate::arn::role_name(&g.grantee).is_some()
                && crate::arn::role_name(&g.grantee) == crate::arn::role_name(principal));
        names && g.operations.iter().any(|o| o == operation)
    })
}

fn key_account_text(key_arn: &str) -> String {
    crate::arn::account_of(key_arn).unwrap_or_else(|| "?".into())
}

fn evaluate_all(
    identity: &[Policy],
    boundary: Option<&Policy>,
    request: &Request,
) -> crate::policy::Decision {
    let mut all: Vec<&Policy> = identity.iter().collect();
    all.extend(boundary);
    crate::policy::evaluate_refs(&all, request)
}
