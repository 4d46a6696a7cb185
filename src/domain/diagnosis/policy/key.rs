//! Key-policy causes: the exporter or the consumer lacks kms:GenerateDataKey / kms:Decrypt on
//! the export's key (policy and grants).

#[allow(unused_imports)]
use super::*;

pub(super) fn key_policy(cx: &Ctx, caller: Option<&str>) -> Vec<Finding> {
    // The request's key, or with no SSE flags the bucket default's key (`used_key`).
    let Some(key) = cx.used_key else {
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
    // The statement a patch would add, built by the one function that enforces the key-policy patch rules (docs/safety.md, "Key-policy patch").
    // An explicit deny in the key policy outweighs any Allow a patch could add ("an explicit
    // deny in any policy overrides an allow", IAM User Guide, "Policy evaluation logic",
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
    // the statement stays a recommendation and nothing is patched.
    let explicit = decisions
        .iter()
        .any(|d| d.decision == crate::policy::DecisionKind::ExplicitDeny);
    if let Some(p) = grantee.and_then(|g| exporter_patch(&info.arn, g, &cx.s3_region).ok()) {
        f.remedy.statement = Some(p.statement.clone());
        if !explicit {
            f.patch = Some(p);
        } else {
            f.remedy.text.push_str(
                " The key policy denies the exporter explicitly: an added statement cannot outweigh that deny, so the key's administrators remove it first.",
            );
        }
    }
    vec![f]
}

/// The export (done or to be) lands in another account's bucket encrypted with a key of this
/// side: can the destination's principals decrypt it? Judged for the bucket owner's account.
pub(super) fn consumer_decrypt(cx: &Ctx, bucket: &BucketFacts) -> Vec<Finding> {
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
