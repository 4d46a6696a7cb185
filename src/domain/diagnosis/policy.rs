//! Causes found by evaluating the bucket and key policies with the export's request model, and
//! by the enhanced AccessDenied message where the policies behind it cannot be read here.

use super::common::{ev, finding, started_object_arn, BucketDoc, Failure};
use crate::arn::{partition_of, Arn};
use crate::domain::access::{
    agree, candidate_principals, denied, kms_generate, parse_denial, resource_side, s3_put,
    scp_side, Denial,
};
use crate::domain::key_patch::{consumer_patch, exporter_patch};
use crate::model::{s3_region, BucketFacts, Evidence};
use crate::model::{
    Cause, Confidence, ExportRequest, FactValue, Finding, Incident, KeyGrant, SseAlgorithm,
};
use crate::policy::{Context, DecisionKind, Effect, Policy, PolicyKind, Request};
use serde_json::json;

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
    /// Where S3 calls KMS for the export: the bucket's region (SPEC §7.2), not the table's.
    s3_region: String,
    principals: Vec<String>,
    object_arn: String,
    /// The export key's policy, parsed once for every cause that reads it.
    key_policy: Option<Policy>,
    /// The export key's full ARN, as DescribeKey gave it.
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
        key_policy: evidence
            .export_key
            .as_ref()
            .and_then(|k| k.policy.get())
            .and_then(|text| Policy::parse_text(PolicyKind::Key, "key-policy", text).ok()),
        key_arn: evidence
            .export_key
            .as_ref()
            .and_then(|k| k.info.get())
            .map(|i| i.arn.clone()),
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

fn bucket_policy(cx: &Ctx, fail: &Failure, bucket: &BucketFacts) -> Vec<Finding> {
    let owner = bucket.owner.get().map(String::as_str);
    let cross_account = owner.is_some_and(|o| o != cx.evidence.table_account);
    let policy = match &bucket.policy.value {
        // The diagnosis parsed the JSON; no document means it was not JSON or too large.
        FactValue::Known(_) => match cx
            .bucket_doc
            .map(|d| Policy::parse_document(PolicyKind::Resource, "bucket-policy", d.text, &d.json))
        {
            Some(Ok(p)) => Some(p),
            _ => return Vec::new(),
        },
        FactValue::Absent => None,
        FactValue::Unknown(_) => {
            // Not readable here: only the message can point at the bucket policy.
            let says = fail.message.and_then(parse_denial).is_some_and(|d| {
                d.policy_type.as_deref() == Some("resource-based")
                    && !d.explicit
                    && d.action.as_deref().is_some_and(|a| a.starts_with("s3:"))
            });
            if says && cross_account {
                return vec![missing_grant(
                    cx,
                    bucket,
                    Confidence::Likely,
                    vec![ev(
                        "the failure message says no resource-based policy allows the S3 write",
                        fail.source,
                    )],
                )];
            }
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let decisions: Vec<_> = cx
        .principals
        .iter()
        .map(|p| {
            let req = s3_put(p, &cx.object_arn, cx.request, owner, None);
            policy.as_ref().map(|pol| resource_side(pol, &req))
        })
        .collect();
    if let Some(pol) = &policy {
        let decisions: Vec<_> = decisions.iter().flatten().cloned().collect();
        // Explicit denies other than SSE rules (those are the SSE causes).
        let deny = decisions
            .iter()
            .find(|d| d.decision == DecisionKind::ExplicitDeny);
        if let Some(d) = deny {
            let stmt = statement(pol, d.decided_by.as_deref());
            let sse_only = stmt.is_some_and(|s| {
                !s.conditions.is_empty()
                    && s.conditions
                        .iter()
                        .all(|c| SSE_KEYS.contains(&c.key.as_str()))
            });
            if !sse_only {
                let confidence = if agree(&decisions) {
                    Confidence::Confirmed
                } else {
                    Confidence::Possible
                };
                out.push(finding(
                    Cause::BucketPolicyDenies,
                    confidence,
                    format!("The bucket policy of {} explicitly denies the export's writes ({}).", bucket.name, d.decided_by.clone().unwrap_or_default()),
                    d.explanation.iter().map(|e| ev(e.clone(), bucket.policy.source)).collect(),
                    "Ask the bucket owner to exempt the exporter (or DynamoDB's service calls, aws:ViaAWSService) from that statement.".into(),
                ));
            }
        }
        // Deny statements that hinge on where the call comes from, with no aws:ViaAWSService exception.
        for name in decisions
            .iter()
            .flat_map(|d| d.may_deny.iter())
            .collect::<std::collections::BTreeSet<_>>()
        {
            if let Some(s) = statement(pol, Some(name)) {
                if s.conditions
                    .iter()
                    .any(|c| PERIMETER_KEYS.contains(&c.key.as_str()))
                {
                    let confidence = if fail.message.is_some_and(|m| m.contains("explicit deny")) {
                        Confidence::Likely
                    } else {
                        Confidence::Possible
                    };
                    out.push(finding(
                        Cause::NetworkPerimeterDenies,
                        confidence,
                        format!("The bucket policy of {} denies writes by source IP or VPC ({name}) with no exception for AWS service calls.", bucket.name),
                        vec![ev(format!("{name} conditions on {}", s.conditions.iter().map(|c| c.describe()).collect::<Vec<_>>().join(", ")), bucket.policy.source)],
                        "Add to that Deny a condition that spares service calls: \"Bool\": {\"aws:ViaAWSService\": \"false\"}.".into(),
                    ));
                }
            }
        }
    }
    if let (true, Some(pol), Some(owner)) = (cross_account, &policy, owner) {
        if let Some(f) = public_access_restricted(cx, bucket, pol, owner) {
            out.push(f);
            return out;
        }
    }
    if cross_account && !out.iter().any(|f| f.cause == Cause::BucketPolicyDenies) {
        // Does any statement grant? Judged on the Allow statements alone: a deny (an SSE rule,
        // say) is its own finding and must not read as a missing grant.
        let allows = policy.as_ref().map(|pol| allow_statements(pol, |_| true));
        let grants: Vec<bool> = cx
            .principals
            .iter()
            .map(|p| {
                allows.as_ref().is_some_and(|allows| {
                    !denied(&resource_side(
                        allows,
                        &s3_put(p, &cx.object_arn, cx.request, owner, None),
                    ))
                })
            })
            .collect();
        if grants.iter().any(|g| !g) {
            let items = match &policy {
                None => vec![ev(
                    format!("{} has no bucket policy", bucket.name),
                    bucket.policy.source,
                )],
                Some(_) => vec![ev(
                    format!(
                        "no statement of the bucket policy allows s3:PutObject on {} for {}",
                        cx.object_arn,
                        cx.principals.join(" or ")
                    ),
                    bucket.policy.source,
                )],
            };
            let confidence = if grants.iter().all(|g| !g) {
                Confidence::Confirmed
            } else {
                Confidence::Possible
            };
            out.push(missing_grant(cx, bucket, confidence, items));
        }
    }
    out
}

/// The Allow statements of `policy` that `keep` accepts, as a policy of their own: what grants,
/// judged apart from the denies (which are findings of their own).
fn allow_statements(policy: &Policy, keep: impl Fn(&crate::policy::Statement) -> bool) -> Policy {
    Policy {
        kind: policy.kind,
        name: policy.name.clone(),
        level: policy.level.clone(),
        statements: policy
            .statements
            .iter()
            .filter(|s| s.effect == Effect::Allow && keep(s))
            .cloned()
            .collect(),
    }
}

/// Condition keys that make an Allow to `*` non-public (S3's documented reading of "public").
const NON_PUBLIC_KEYS: [&str; 14] = [
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:userid",
    "aws:resourceorgid",
    "s3:dataaccesspointaccount",
    "s3:dataaccesspointarn",
];

/// An Allow to everyone that no fixed-value condition narrows: what S3 calls a public grant.
fn is_public(s: &crate::policy::Statement) -> bool {
    s.effect == Effect::Allow
        && s.principals
            .as_ref()
            .is_some_and(|p| !p.negated && p.values.iter().any(|v| v == "*"))
        && !s
            .conditions
            .iter()
            .any(|c| NON_PUBLIC_KEYS.contains(&c.key.as_str()))
}

/// Block Public Access `RestrictPublicBuckets` limits a public bucket policy to AWS services and
/// the owner's own principals: an exporter of another account that only a public statement lets
/// in is refused (SPEC §5 BUCKET_PUBLIC_ACCESS_RESTRICTED).
fn public_access_restricted(
    cx: &Ctx,
    bucket: &BucketFacts,
    policy: &Policy,
    owner: &str,
) -> Option<Finding> {
    if bucket.restrict_public.get() != Some(&true) {
        return None;
    }
    let allows_with = |keep: &dyn Fn(&crate::policy::Statement) -> bool| {
        let only = allow_statements(policy, keep);
        cx.principals
            .iter()
            .map(|p| {
                !denied(&resource_side(
                    &only,
                    &s3_put(p, &cx.object_arn, cx.request, Some(owner), None),
                ))
            })
            .collect::<Vec<bool>>()
    };
    let with_public = allows_with(&|_| true);
    let without_public = allows_with(&|s| !is_public(s));
    // Every candidate is let in, and only by a public statement.
    if !with_public.iter().all(|g| *g) || without_public.iter().any(|g| *g) {
        return None;
    }
    let public: Vec<&str> = policy
        .statements
        .iter()
        .filter(|s| is_public(s))
        .map(|s| s.name.as_str())
        .collect();
    let mut f = finding(
        Cause::BucketPublicAccessRestricted,
        Confidence::Confirmed,
        format!("Only a public statement of the bucket policy of {} lets the table's account write, and the bucket's Block Public Access RestrictPublicBuckets setting ignores it for other accounts.", bucket.name),
        vec![
            ev(format!("public statement(s): {}", public.join(", ")), bucket.policy.source),
            ev("RestrictPublicBuckets is on", bucket.restrict_public.source),
        ],
        "The bucket owner replaces the public grant with one that names the table's account (the statement below); turning RestrictPublicBuckets off is the broader alternative.".into(),
    );
    f.remedy.statement = missing_grant(cx, bucket, Confidence::Confirmed, Vec::new())
        .remedy
        .statement;
    Some(f)
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

/// The SCPs on the table account's path, evaluated for the export call (when it was refused or
/// has not run), the S3 write and, for SSE-KMS, the key. SCPs restrict the principals of member
/// accounts only: nothing when the table account is the management account.
fn scp_findings(cx: &Ctx, fail: &Failure) -> Vec<Finding> {
    let fact = &cx.evidence.scps;
    let Some(path) = fact.get().filter(|p| !p.management_account) else {
        return Vec::new();
    };
    let mut scps = Vec::new();
    for level in &path.levels {
        for p in &level.policies {
            match Policy::parse_text(PolicyKind::Scp, &p.name, &p.document) {
                Ok(mut policy) => {
                    policy.level = Some(level.target.clone());
                    scps.push(policy);
                }
                // An SCP we cannot read could deny anything: say nothing rather than guess.
                Err(_) => return Vec::new(),
            }
        }
    }
    let mut checks: Vec<(Cause, Request)> = Vec::new();
    if cx.evidence.export.is_none() {
        for p in &cx.principals {
            checks.push((
                Cause::ScpDeniesExport,
                export_call(cx, p, Context::default()),
            ));
        }
    }
    let owner = cx
        .evidence
        .bucket
        .as_ref()
        .and_then(|b| b.owner.get())
        .map(String::as_str);
    for p in &cx.principals {
        checks.push((
            Cause::ScpDeniesS3OrKms,
            s3_put(p, &cx.object_arn, cx.request, owner, None),
        ));
        if let (Some(SseAlgorithm::Kms), Some(key)) = (cx.request.s3_sse_algorithm, &cx.key_arn) {
            checks.push((
                Cause::ScpDeniesS3OrKms,
                kms_generate(
                    p,
                    key,
                    &cx.s3_region,
                    &cx.evidence.table_account,
                    &cx.object_arn,
                ),
            ));
        }
    }
    let mut out: Vec<Finding> = Vec::new();
    for (cause, request) in checks {
        let d = scp_side(&scps, &request);
        if !denied(&d) || out.iter().any(|f| f.cause == cause) {
            continue;
        }
        let confidence = if d.uncertain {
            Confidence::Possible
        } else {
            Confidence::Confirmed
        };
        let by = d
            .decided_by
            .clone()
            .map(|s| format!("statement {s}"))
            .unwrap_or_else(|| "no SCP at one level of the path allows it".into());
        let mut items: Vec<_> = d
            .explanation
            .iter()
            .map(|e| ev(e.clone(), fact.source))
            .collect();
        items.insert(
            0,
            ev(
                format!(
                    "{} on {} as {}: {:?}",
                    request.action, request.resource, request.principal, d.decision
                ),
                fact.source,
            ),
        );
        if fail
            .message
            .is_some_and(|m| m.contains("service control policy"))
        {
            items.push(ev(
                "the failure message names a service control policy",
                fail.source,
            ));
        }
        out.push(finding(
            cause,
            confidence,
            format!(
                "A service control policy of the organization denies {} for the table's account ({by}).",
                request.action
            ),
            items,
            format!(
                "Ask the organization's administrators to exempt the export from the SCP ({by}), for example with a condition on aws:PrincipalArn for the exporter or aws:CalledVia dynamodb.amazonaws.com; the function does not change SCPs."
            ),
        ));
    }
    out
}

/// The table's resource policy, evaluated for the export call. The caller is in the table's
/// account, where its identity policy alone can allow the call, so only an explicit deny counts;
/// and only for a call that was refused, or has not run yet (a started export was past it).
fn table_policy(cx: &Ctx, fail: &Failure, caller: Option<&str>) -> Vec<Finding> {
    if cx.evidence.export.is_some() {
        return Vec::new();
    }
    let fact = &cx.evidence.table_policy;
    let text = match &fact.value {
        FactValue::Known(text) => text,
        FactValue::Absent => return Vec::new(),
        FactValue::Unknown(_) => {
            let says = fail.message.and_then(parse_denial).is_some_and(|d| {
                d.explicit
                    && d.policy_type.as_deref() == Some("resource-based")
                    && d.action
                        .as_deref()
                        .is_some_and(|a| a.starts_with("dynamodb:"))
            });
            if !says {
                return Vec::new();
            }
            return vec![finding(
                Cause::TablePolicyDenies,
                Confidence::Likely,
                "The failure message says a resource-based policy on the table explicitly denies the export.".into(),
                vec![ev(format!("failure message: {}", fail.message.unwrap_or_default().chars().take(300).collect::<String>()), fail.source)],
                "Read the table's resource policy (aws dynamodb get-resource-policy) and exempt the exporter from the Deny statement.".into(),
            )];
        }
    };
    let Ok(policy) = Policy::parse_text(PolicyKind::Resource, "table-policy", text) else {
        return Vec::new();
    };
    let principals: Vec<String> = match caller {
        Some(c) => vec![c.to_string()],
        None => cx.principals.clone(),
    };
    // A call of the caller's own: over TLS, from wherever it came from.
    let mut context = Context::default();
    context.set(
        "aws:SecureTransport",
        crate::policy::ContextValue::Values(vec!["true".into()]),
    );
    for key in [
        "aws:SourceIp",
        "aws:SourceVpce",
        "aws:SourceVpc",
        "aws:PrincipalOrgID",
    ] {
        context.set(key, crate::policy::ContextValue::Unknown);
    }
    let decisions: Vec<_> = principals
        .iter()
        .map(|p| resource_side(&policy, &export_call(cx, p, context.clone())))
        .collect();
    let Some(d) = decisions
        .iter()
        .find(|d| d.decision == DecisionKind::ExplicitDeny)
    else {
        return Vec::new();
    };
    let confidence = if agree(&decisions) && !d.uncertain {
        Confidence::Confirmed
    } else {
        Confidence::Possible
    };
    vec![finding(
        Cause::TablePolicyDenies,
        confidence,
        format!(
            "The table's resource policy explicitly denies dynamodb:ExportTableToPointInTime ({}).",
            d.decided_by.clone().unwrap_or_default()
        ),
        d.explanation.iter().map(|e| ev(e.clone(), fact.source)).collect(),
        "Exempt the exporter from that Deny statement of the table's resource policy (aws dynamodb put-resource-policy).".into(),
    )]
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
    let role = session_role(principal);
    grants.iter().find(|g| {
        let names = g.grantee == principal
            || role.as_ref().is_some_and(|(acct, name)| {
                g.grantee.split(':').nth(4) == Some(acct.as_str())
                    && g.grantee.contains(":role/")
                    && g.grantee.rsplit('/').next() == Some(name.as_str())
            });
        names && g.operations.iter().any(|o| o == operation)
    })
}

/// `(account, role name)` of `arn:…:sts::<acct>:assumed-role/<name>/<session>`.
fn session_role(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", _, "sts", "", acct, resource] = parts.as_slice() else {
        return None;
    };
    let name = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    Some((acct.to_string(), name.to_string()))
}

fn key_policy(cx: &Ctx, caller: Option<&str>) -> Vec<Finding> {
    if cx.request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        return Vec::new();
    }
    let Some(key) = &cx.evidence.export_key else {
        return Vec::new();
    };
    let (Some(info), Some(policy)) = (key.info.get(), cx.key_policy.as_ref()) else {
        return Vec::new();
    };
    let decisions: Vec<_> = cx
        .principals
        .iter()
        .map(|p| {
            resource_side(
                policy,
                &kms_generate(
                    p,
                    &info.arn,
                    &cx.s3_region,
                    &cx.evidence.table_account,
                    &cx.object_arn,
                ),
            )
        })
        .collect();
    if !decisions.iter().any(denied) {
        return Vec::new();
    }
    // KMS authorizes with the key policy, IAM policies and grants together: a grant that gives
    // the principal GenerateDataKey means the key policy is not why it was refused.
    let grants = key.grants.get();
    let granted: Vec<Option<&KeyGrant>> = cx
        .principals
        .iter()
        .map(|p| grants.and_then(|gs| grant_for(gs, p, "GenerateDataKey")))
        .collect();
    let exporter_granted = caller.is_some_and(|c| {
        grants.is_some_and(|gs| grant_for(gs, c, "GenerateDataKey").is_some_and(|g| !g.constrained))
    });
    let still_denied: Vec<bool> = decisions
        .iter()
        .zip(&granted)
        .map(|(d, g)| denied(d) && !g.is_some_and(|g| !g.constrained))
        .collect();
    if exporter_granted || !still_denied.iter().any(|d| *d) {
        return Vec::new();
    }
    let mut confidence = if still_denied.iter().all(|d| *d) && granted.iter().all(Option::is_none) {
        Confidence::Confirmed
    } else {
        Confidence::Possible
    };
    // Unread grants could still allow it: not CONFIRMED then.
    if grants.is_none() {
        confidence = confidence.min(Confidence::Likely);
    }
    let mut grant_items: Vec<_> = match (&key.grants.value, grants) {
        (_, Some(gs)) => granted
            .iter()
            .zip(&cx.principals)
            .filter_map(|(g, p)| {
                g.map(|g| {
                    ev(
                        format!(
                            "grant {} gives {p} GenerateDataKey only under an encryption-context constraint",
                            g.grant_id
                        ),
                        key.grants.source,
                    )
                })
            })
            .chain(std::iter::once(ev(
                format!(
                    "{} grant(s) on the key; none gives the exporter GenerateDataKey unconditionally",
                    gs.len()
                ),
                key.grants.source,
            )))
            .collect(),
        (FactValue::Unknown(why), None) => vec![ev(
            format!("the key's grants could not be read ({why}); a grant could still allow the exporter"),
            key.grants.source,
        )],
        _ => Vec::new(),
    };
    let mut items: Vec<_> = decisions
        .iter()
        .zip(&cx.principals)
        .map(|(d, p)| {
            ev(
                format!(
                    "kms:GenerateDataKey via S3 as {p}: {:?}; {}",
                    d.decision,
                    d.explanation.join("; ")
                ),
                key.policy.source,
            )
        })
        .collect();
    items.truncate(4);
    items.append(&mut grant_items);
    let grantee = caller.filter(|c| c.contains(":role/") || c.contains(":user/"));
    let mut f = finding(
        Cause::KmsKeyPolicyDeniesExporter,
        confidence,
        format!("The key policy of {} neither delegates to the account's IAM policies nor allows the exporter to use the key.", info.arn),
        items,
        match grantee {
            Some(g) => format!("Add the statement below to the key policy (in the key's account) for {g}; whether S3 presents this role or the account is unconfirmed, so it may not suffice."),
            None => "Add a statement for the exporter's role (kms:GenerateDataKey and kms:Decrypt, through S3) to the key policy; the exporter is not known here.".into(),
        },
    );
    // The statement a patch would add, built by the one function that enforces §7.2's rules.
    if let Some(p) = grantee.and_then(|g| exporter_patch(&info.arn, g, &cx.s3_region).ok()) {
        f.remedy.statement = Some(p.statement.clone());
        f.patch = Some(p);
    }
    vec![f]
}

/// The export (done or to be) lands in another account's bucket encrypted with a key of this
/// side: can the destination's principals decrypt it? Judged for the bucket owner's account.
fn consumer_decrypt(cx: &Ctx, bucket: &BucketFacts) -> Vec<Finding> {
    if cx.request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        return Vec::new();
    }
    let (Some(owner), Some(key)) = (bucket.owner.get(), &cx.evidence.export_key) else {
        return Vec::new();
    };
    let (Some(info), Some(policy)) = (key.info.get(), cx.key_policy.as_ref()) else {
        return Vec::new();
    };
    let key_account = crate::arn::account_of(&info.arn);
    // A key in the destination account is the destination's to grant; AWS managed keys have
    // their own cause.
    if key_account.as_deref() == Some(owner.as_str()) || info.manager == "AWS" {
        return Vec::new();
    }
    let consumer = format!("arn:{}:iam::{owner}:root", cx.partition);
    let mut ctx = Context::default();
    ctx.set(
        "kms:ViaService",
        crate::policy::ContextValue::Values(vec![format!("s3.{}.amazonaws.com", cx.s3_region)]),
    );
    ctx.set(
        "kms:CallerAccount",
        crate::policy::ContextValue::Values(vec![owner.clone()]),
    );
    let decision = resource_side(
        policy,
        &Request {
            principal: consumer.clone(),
            action: "kms:Decrypt".into(),
            resource: info.arn.clone(),
            resource_account: key_account,
            context: ctx,
        },
    );
    if decision.decision == DecisionKind::Allow {
        return Vec::new();
    }
    let confidence = if decision.uncertain {
        Confidence::Possible
    } else {
        // The consumers' own identity policies are not read here.
        Confidence::Likely
    };
    let identity = json!({
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": info.arn,
    });
    let mut f = finding(
        Cause::ConsumerCannotDecrypt,
        confidence,
        format!(
            "Principals of the bucket owner's account {owner} cannot decrypt the exported objects: the key policy of {} does not allow them kms:Decrypt.",
            info.arn
        ),
        vec![ev(
            format!(
                "kms:Decrypt via S3 as {consumer}: {:?}; {}",
                decision.decision,
                decision.explanation.join("; ")
            ),
            key.policy.source,
        )],
        format!(
            "Add the statement below to the key policy (in the key's account {}), naming the consumers of account {owner} (with KEY_POLICY_PATCH=on the function adds it for the DECRYPT_PRINCIPALS of that account). The consumers also need an identity policy in their account: {identity}",
            key_account_text(&info.arn)
        ),
    );
    if let Ok(p) = consumer_patch(
        &info.arn,
        std::slice::from_ref(owner),
        &cx.partition,
        &cx.s3_region,
    ) {
        f.remedy.statement = Some(p.statement.clone());
        f.patch = Some(p);
    }
    vec![f]
}

fn key_account_text(key_arn: &str) -> String {
    crate::arn::account_of(key_arn).unwrap_or_else(|| "?".into())
}

/// When no policy explains it, the enhanced message still names the kind of policy that denied.
fn from_message(fail: &Failure) -> Vec<Finding> {
    let Some(Denial {
        action,
        policy_type,
        explicit,
        principal,
    }) = fail.message.and_then(parse_denial)
    else {
        return Vec::new();
    };
    let action = action.unwrap_or_default();
    let service = action.split(':').next().unwrap_or_default();
    let item = vec![ev(
        format!(
            "failure message: {}",
            fail.message
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        ),
        fail.source,
    )];
    let who = principal.unwrap_or_else(|| "the caller".into());
    let (cause, summary, text) = match (policy_type.as_deref(), explicit, service) {
        (Some("VPC endpoint"), _, _) => (Cause::VpcEndpointPolicyDenies, format!("A VPC endpoint policy denied {action}."), "Allow the action in the VPC endpoint's policy, or call through another endpoint.".to_string()),
        (Some("service control" | "resource control"), _, "dynamodb") => (Cause::ScpDeniesExport, format!("An organization policy denied {action}."), "Ask the organization's administrators to exempt the export from the SCP/RCP that denies it.".to_string()),
        (Some("service control" | "resource control"), _, "s3" | "kms") => (Cause::ScpDeniesS3OrKms, format!("An organization policy denied {action}."), "Ask the organization's administrators to exempt the export from the SCP/RCP that denies it.".to_string()),
        (Some("permissions boundary" | "session"), _, _) => (Cause::PermissionsBoundaryDenies, format!("The permissions boundary or session policy of {who} does not allow {action}."), format!("Allow {action} in the boundary or session policy of {who}.")),
        (Some("identity-based"), false, "dynamodb") => (Cause::CallerMissingExportPermission, format!("No identity policy of {who} allows {action}."), format!("Add an identity policy statement allowing {action} on the table to {who}.")),
        (Some("identity-based"), false, "s3") => (Cause::CallerMissingS3Permission, format!("No identity policy of {who} allows {action}."), format!("Allow s3:PutObject, s3:AbortMultipartUpload and s3:PutObjectAcl on the export prefix for {who}.")),
        (Some("identity-based"), false, "kms") => (Cause::KmsCallerMissingPermission, format!("No identity policy of {who} allows {action} on the key."), format!("Allow kms:GenerateDataKey and kms:Decrypt on the key for {who}.")),
        _ => return Vec::new(),
    };
    // The message alone, with the policies behind it unread here: LIKELY at most.
    vec![finding(cause, Confidence::Likely, summary, item, text)]
}

/// The exporter's own IAM policies and boundary, evaluated for what the export needs of them:
/// the export call itself (when it was refused), the S3 writes and, for SSE-KMS, the key.
fn identity_side(cx: &Ctx, fail: &Failure) -> Vec<Finding> {
    let Some((role_arn, fact)) = &cx.evidence.caller_policies else {
        return Vec::new();
    };
    let Some(found) = fact.get() else {
        return Vec::new();
    };
    let identity: Vec<Policy> = found
        .identity
        .iter()
        .filter_map(|p| Policy::parse_text(PolicyKind::Identity, &p.name, &p.document).ok())
        .collect();
    let boundary = found
        .boundary
        .as_ref()
        .and_then(|b| Policy::parse_text(PolicyKind::Boundary, &b.name, &b.document).ok());

    let mut checks: Vec<(Cause, Request)> = Vec::new();
    let refused_call =
        cx.evidence.export.is_none() && fail.code.is_some_and(|c| c.starts_with("AccessDenied"));
    let preflight = cx.evidence.export.is_none() && fail.code.is_none();
    if refused_call || preflight {
        checks.push((
            Cause::CallerMissingExportPermission,
            Request {
                resource_account: None,
                ..export_call(cx, role_arn, Context::default())
            },
        ));
    }
    for action in ["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl"] {
        let mut r = s3_put(role_arn, &cx.object_arn, cx.request, None, None);
        r.action = action.into();
        checks.push((Cause::CallerMissingS3Permission, r));
    }
    if let (Some(SseAlgorithm::Kms), Some(key)) = (cx.request.s3_sse_algorithm, &cx.key_arn) {
        for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
            let mut r = kms_generate(
                role_arn,
                key,
                &cx.s3_region,
                &cx.evidence.table_account,
                &cx.object_arn,
            );
            r.action = action.into();
            r.resource_account = None;
            checks.push((Cause::KmsCallerMissingPermission, r));
        }
    }

    let mut denied_by_cause: Vec<(Cause, Vec<String>, Vec<crate::model::EvidenceItem>, bool)> =
        Vec::new();
    for (cause, request) in checks {
        let id = evaluate_all(&identity, None, &request);
        let (cause, d) = if denied(&id) {
            (cause, id)
        } else if let Some(b) = &boundary {
            let with_boundary = evaluate_all(&identity, Some(b), &request);
            if !denied(&with_boundary) {
                continue;
            }
            (Cause::PermissionsBoundaryDenies, with_boundary)
        } else {
            continue;
        };
        let item = ev(
            format!(
                "{} for {role_arn} on {}: {:?}; {}",
                request.action,
                request.resource,
                d.decision,
                d.explanation.join("; ")
            ),
            fact.source,
        );
        match denied_by_cause.iter_mut().find(|(c, ..)| *c == cause) {
            Some(entry) => {
                entry.1.push(request.action.clone());
                entry.2.push(item);
                entry.3 |= d.uncertain;
            }
            None => {
                denied_by_cause.push((cause, vec![request.action.clone()], vec![item], d.uncertain))
            }
        }
    }
    denied_by_cause
        .into_iter()
        .map(|(cause, actions, items, uncertain)| {
            let confidence = if uncertain {
                Confidence::Possible
            } else {
                Confidence::Confirmed
            };
            let resource = match cause {
                Cause::CallerMissingExportPermission => cx.request.table_arn.clone(),
                Cause::KmsCallerMissingPermission => cx.key_arn.clone().unwrap_or_default(),
                _ => format!(
                    "arn:{}:s3:::{}/{}*",
                    cx.partition,
                    cx.request.s3_bucket,
                    cx.request.key_prefix()
                ),
            };
            let (summary, text) = if cause == Cause::PermissionsBoundaryDenies {
                (
                    format!(
                        "The permissions boundary of {role_arn} does not allow {}.",
                        actions.join(", ")
                    ),
                    format!(
                        "Allow {} in the role's permissions boundary.",
                        actions.join(", ")
                    ),
                )
            } else {
                (
                    format!(
                        "No identity policy of {role_arn} allows {}.",
                        actions.join(", ")
                    ),
                    format!("Attach a policy with the statement below to {role_arn}."),
                )
            };
            let mut f = finding(cause, confidence, summary, items, text);
            f.remedy.statement =
                Some(json!({"Effect": "Allow", "Action": actions, "Resource": resource}));
            f
        })
        .collect()
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
