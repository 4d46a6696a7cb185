//! Bucket causes: the bucket is missing, requester pays, or owned by an account the call did
//! not name (`S3BucketOwner`).

use super::*;

pub(super) fn bucket_not_found(fail: &Failure, bucket: &BucketFacts) -> Option<Finding> {
    let missing = bucket.presence.get() == Some(&BucketPresence::Missing);
    let code_says = fail.code == Some("S3NoSuchBucket");
    if !(missing || code_says && bucket.presence.is_unknown()) {
        return None;
    }
    let mut items = Vec::new();
    if code_says {
        items.push(ev("the export failed with S3NoSuchBucket", fail.source));
    }
    if missing {
        items.push(ev(
            format!("HeadBucket: {} does not exist", bucket.name),
            bucket.presence.source,
        ));
    }
    let confidence = if missing {
        Confidence::Confirmed
    } else {
        Confidence::Likely
    };
    Some(finding(
        Cause::BucketNotFound,
        confidence,
        format!("The bucket {} does not exist.", bucket.name),
        items,
        "Create the bucket or correct --s3-bucket; the export cannot create it.".into(),
    ))
}

pub(super) fn requester_pays(bucket: &BucketFacts) -> Option<Finding> {
    if bucket.requester_pays.get() != Some(&true) {
        return None;
    }
    Some(finding(
        Cause::RequesterPaysBucket,
        Confidence::Confirmed,
        format!(
            "The bucket {} is a Requester Pays bucket, which exports do not support.",
            bucket.name
        ),
        vec![ev(
            "request payment is Requester",
            bucket.requester_pays.source,
        )],
        "Turn Requester Pays off on the bucket or export to another bucket.".into(),
    ))
}

pub(super) fn is_bare_access_denied(fail: &Failure) -> bool {
    fail.code == Some("S3AccessDenied")
        && fail
            .message
            .is_some_and(|m| m.starts_with("Access Denied") && !m.contains("User:"))
}

pub(super) fn bucket_owner(
    fail: &Failure,
    request: &ExportRequest,
    bucket: &BucketFacts,
    table_account: &str,
) -> Option<Finding> {
    let owner = bucket.owner.get();
    match (&request.s3_bucket_owner, owner) {
        (None, Some(o)) if o != table_account => Some(owner_fix(
            Cause::BucketOwnerMissing,
            format!(
                "The bucket {} belongs to account {o}, but the export did not set --s3-bucket-owner.",
                bucket.name
            ),
            fail,
            bucket,
            o,
        )),
        (None, None) => {
            let exists = matches!(
                bucket.presence.get(),
                Some(BucketPresence::Exists | BucketPresence::ExistsNoAccess)
            );
            let not_ours = bucket.in_table_account.get() == Some(&false) && exists;
            let confidence = if not_ours {
                Confidence::Likely
            } else if is_bare_access_denied(fail)
                && !bucket
                    .presence
                    .get()
                    .is_some_and(|p| *p == BucketPresence::Missing)
            {
                Confidence::Possible
            } else {
                return None;
            };
            let mut items = Vec::new();
            if not_ours {
                items.push(ev(
                    format!(
                        "{} exists but is not listed by account {table_account}",
                        bucket.name
                    ),
                    bucket.in_table_account.source,
                ));
            }
            if is_bare_access_denied(fail) {
                items.push(ev(
                    "S3 answered a bare Access Denied, as it does for a wrong expected bucket owner",
                    fail.source,
                ));
            }
            if let crate::model::FactValue::Unknown(reason) = &bucket.owner.value {
                items.push(ev(
                    format!("bucket owner unknown: {reason}"),
                    bucket.owner.source,
                ));
            }
            Some(finding(
                Cause::BucketOwnerMissing,
                confidence,
                format!(
                    "The bucket {} appears to belong to another account, and the export did not set --s3-bucket-owner.",
                    bucket.name
                ),
                items,
                "Export again with --s3-bucket-owner <bucket-owner-account-id>; set MEMBER_ROLE_NAME so the function can confirm the owner and retry by itself.".into(),
            ))
        }
        (Some(given), Some(o)) if given != o => Some(owner_fix(
            Cause::BucketOwnerMismatch,
            format!(
                "The export named account {given} as the bucket's owner, but {} belongs to {o}.",
                bucket.name
            ),
            fail,
            bucket,
            o,
        )),
        _ => None,
    }
}

/// A confirmed owner finding, fixed by retrying with the owner `ListBuckets` established.
pub(super) fn owner_fix(
    cause: Cause,
    summary: String,
    fail: &Failure,
    bucket: &BucketFacts,
    owner: &str,
) -> Finding {
    let mut f = finding(
        cause,
        Confidence::Confirmed,
        summary,
        owner_evidence(fail, bucket, owner),
        format!("Export again with --s3-bucket-owner {owner}."),
    );
    f.correction = Some(Correction {
        s3_bucket_owner: Some(owner.to_string()),
        ..Correction::default()
    });
    f
}

pub(super) fn owner_evidence(
    fail: &Failure,
    bucket: &BucketFacts,
    owner: &str,
) -> Vec<EvidenceItem> {
    let mut items = vec![ev(
        format!("ListBuckets in account {owner} lists {}", bucket.name),
        bucket.owner.source,
    )];
    if let Some(m) = fail.message {
        items.push(ev(format!("failure message: {}", clip(m)), fail.source));
    }
    items
}
