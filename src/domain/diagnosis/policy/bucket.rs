//! Bucket-policy causes: a Deny or a missing Allow for the export's writes, and Block Public
//! Access's RestrictPublicBuckets on a policy that only public statements allow.

#[allow(unused_imports)]
use super::*;

pub(super) fn bucket_policy(cx: &Ctx, fail: &Failure, bucket: &BucketFacts) -> Vec<Finding> {
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
pub(super) fn allow_statements(
    policy: &Policy,
    keep: impl Fn(&crate::policy::Statement) -> bool,
) -> Policy {
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
pub(super) const NON_PUBLIC_KEYS: [&str; 14] = [
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
pub(super) fn is_public(s: &crate::policy::Statement) -> bool {
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
/// in is refused (README, cause BUCKET_PUBLIC_ACCESS_RESTRICTED).
pub(super) fn public_access_restricted(
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
