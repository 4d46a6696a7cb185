//! The key-policy side of a plan: PATCH_KEY_POLICY actions (docs/safety.md, "Key-policy patch") and the function's
//! own access to the key a retry needs.

#[allow(unused_imports)]
use super::*;

/// The key-policy statements to apply (docs/safety.md, "Key-policy patch"), and why others stay recommendations.
pub(super) fn key_patches(
    findings: &[Finding],
    evidence: &Evidence,
    config: &Config,
) -> (Vec<KeyPatch>, Vec<String>) {
    let mut out: Vec<KeyPatch> = Vec::new();
    let mut notes = Vec::new();
    for f in findings {
        let Some(p) = &f.patch else { continue };
        if !matches!(f.confidence, Confidence::Confirmed | Confidence::Likely) {
            notes.push(format!(
                "{}: {:?} only, so the key-policy statement stays a recommendation",
                f.cause, f.confidence
            ));
            continue;
        }
        let patch = match p.purpose {
            PatchPurpose::Exporter => p.clone(),
            PatchPurpose::ConsumerDecrypt => {
                let Ok(key) = Arn::parse("keyArn", &p.key_arn) else {
                    continue;
                };
                // The recommendation names the owner's account; a patch names only the
                // allow-listed principals of that account.
                let owners: Vec<String> = p.grantees.iter().filter_map(|g| account_of(g)).collect();
                let consumers: Vec<String> = config
                    .decrypt_principals
                    .iter()
                    .filter(|c| {
                        let acct = account_of(&principal_of(c, &key.partition));
                        acct.is_some_and(|a| owners.contains(&a))
                    })
                    .cloned()
                    .collect();
                if consumers.is_empty() {
                    notes.push(format!(
                        "{}: DECRYPT_PRINCIPALS names no principal of account {}: the statement stays a recommendation",
                        f.cause,
                        owners.join(", ")
                    ));
                    continue;
                }
                // S3 calls KMS from the bucket's region; a usable key is in that region too.
                let region = evidence
                    .bucket
                    .as_ref()
                    .and_then(|b| b.region.get().cloned())
                    .unwrap_or_else(|| key.region.clone());
                match consumer_patch(&p.key_arn, &consumers, &key.partition, &region) {
                    Ok(p) => p,
                    Err(e) => {
                        notes.push(format!("{}: {e}", f.cause));
                        continue;
                    }
                }
            }
        };
        if !config.key_policy_patch {
            notes.push(format!(
                "{}: KEY_POLICY_PATCH=off: the key-policy statement in the remedy is a recommendation; no key policy was changed",
                f.cause
            ));
            continue;
        }
        if !out
            .iter()
            .any(|q| q.sid == patch.sid && q.key_arn == patch.key_arn)
        {
            out.push(patch);
        }
    }
    (out, notes)
}

/// `arn:…:sts::<acct>:assumed-role/<name>/<session>` as the role's ARN (the role's path is not
/// in the session ARN; Lambda roles made by SAM have none); other ARNs as IAM ARNs.
pub fn principal_arn(caller: &str) -> String {
    let parts: Vec<&str> = caller.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "sts", "", acct, resource] => {
            match resource
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split('/').next())
            {
                Some(role) => format!("arn:{partition}:iam::{acct}:role/{role}"),
                None => format!("arn:{partition}:iam::{acct}:{resource}"),
            }
        }
        _ => caller.to_string(),
    }
}

/// Would the destination's policies deny the retry, made as `own` (docs/safety.md, "Safety")? Only a proof
/// counts: an Unknown answer lets the retry go, and its failure becomes the next diagnosis.
pub(super) fn own_access_denied(
    evidence: &Evidence,
    request: &ExportRequest,
    patches: &[KeyPatch],
    own: Option<&str>,
) -> Option<String> {
    let own = principal_arn(own?);
    let table = Arn::table("tableArn", &request.table_arn).ok()?;
    let object_arn = started_object_arn(request, evidence);
    // The key the retry's objects are encrypted with: its KMS key, or with no SSE flags the
    // bucket default's key (S3 applies the default encryption to a PutObject without SSE
    // headers: Amazon S3 User Guide, "Setting default server-side encryption behavior for
    // Amazon S3 buckets", https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-encryption.html).
    let key_id = match request.s3_sse_algorithm {
        Some(SseAlgorithm::Kms) => request.s3_sse_kms_key_id.as_deref(),
        None => evidence.default_key.as_ref().map(|k| k.key_id.as_str()),
        Some(_) => None,
    };
    if let Some(key_id) = key_id {
        let facts = evidence.key(key_id);
        if let Some((info, text)) = facts.and_then(|k| Some((k.info.get()?, k.policy.get()?))) {
            let mut text = text.clone();
            for p in patches.iter().filter(|p| p.key_arn == info.arn) {
                if let Ok(m) = merge(&text, p, &p.grantees) {
                    text = m.after;
                }
            }
            if let Ok(policy) = Policy::parse_text(PolicyKind::Key, "key-policy", &text) {
                let d = resource_side(
                    &policy,
                    &kms_generate(
                        &own,
                        &info.arn,
                        &crate::model::s3_region(evidence, &table.region),
                        &evidence.table_account,
                        &object_arn,
                    ),
                );
                if d.decision != DecisionKind::Allow && !d.uncertain {
                    return Some(format!(
                        "the key policy of {} does not allow {own} to use the key",
                        info.arn
                    ));
                }
            }
        }
    }
    let bucket = evidence.bucket.as_ref()?;
    let (Some(text), Some(owner)) = (bucket.policy.get(), bucket.owner.get()) else {
        return None;
    };
    let policy = Policy::parse_text(PolicyKind::Resource, "bucket-policy", text).ok()?;
    let d = resource_side(
        &policy,
        &s3_put(
            &own,
            &object_arn,
            request,
            Some(owner),
            request.s3_sse_kms_key_id.as_deref(),
        ),
    );
    let cross = owner != &evidence.table_account;
    let proven = !d.uncertain
        && (d.decision == DecisionKind::ExplicitDeny
            || (cross && d.decision == DecisionKind::ImplicitDeny));
    proven.then(|| format!("the bucket policy of {} does not admit {own}", bucket.name))
}
