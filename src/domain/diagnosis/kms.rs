//! KMS key causes: the export's key is unusable, referenced the wrong way, or AWS managed
//! where another account must use it.

use super::*;

/// The AWS managed key `aws/s3`: named by its alias, or so described by DescribeKey.
pub(super) fn aws_managed(key_id: Option<&str>, info: Option<&KeyInfo>) -> bool {
    key_id.is_some_and(|k| k.ends_with("alias/aws/s3")) || info.is_some_and(|i| i.manager == "AWS")
}

/// Whether the bucket is in another account than the table: CONFIRMED when its owner is known,
/// LIKELY when only the table account's ListBuckets leaves it out; None when it is ours or unknown.
pub(super) fn in_other_account(bucket: &BucketFacts, table_account: &str) -> Option<Confidence> {
    match (bucket.owner.get(), bucket.in_table_account.get()) {
        (Some(o), _) if o != table_account => Some(Confidence::Confirmed),
        (None, Some(false)) => Some(Confidence::Likely),
        _ => None,
    }
}

/// A KMS export whose key is given by alias or bare id to a bucket of another account, where
/// only the full key ARN names the key unambiguously (README, "What it diagnoses today").
pub(super) fn key_reference(
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
) -> Option<Finding> {
    if request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        return None;
    }
    let given = request.s3_sse_kms_key_id.as_deref()?;
    let info = evidence.export_key.as_ref().and_then(|k| k.info.get());
    // The AWS managed key is its own cause: no ARN makes it usable across accounts.
    if given.contains(":key/") || aws_managed(Some(given), info) {
        return None;
    }
    let confidence = in_other_account(bucket, &evidence.table_account)?;
    let resolved = info.map(|i| i.arn.clone());
    let mut items = vec![ev(
        format!(
            "--s3-sse-kms-key-id is {given:?}, not a key ARN, and the bucket is in another account"
        ),
        "event",
    )];
    let mut f = match &resolved {
        Some(arn) => {
            items.push(ev(format!("{given} is {arn} in the table account"), "kms:DescribeKey"));
            finding(
                Cause::SseKmsKeyMismatch,
                confidence,
                format!("The export named its KMS key by {given:?}; for a bucket in another account only the full key ARN names the key."),
                items,
                format!("Export again with --s3-sse-kms-key-id {arn}."),
            )
        }
        None => finding(
            Cause::SseKmsKeyMismatch,
            confidence,
            format!("The export named its KMS key by {given:?}; for a bucket in another account only the full key ARN names the key."),
            items,
            "Export again with --s3-sse-kms-key-id <full key ARN> (aws kms describe-key --key-id gives it).".into(),
        ),
    };
    f.correction = resolved.map(|arn| Correction {
        s3_sse_algorithm: Some(SseAlgorithm::Kms),
        s3_sse_kms_key_id: Some(arn),
        ..Correction::default()
    });
    Some(f)
}

/// A KMS export with the AWS managed key `aws/s3` to another account's bucket: its key policy
/// cannot be changed, so the bucket owner's principals can never use it.
pub(super) fn aws_managed_cross_account(
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
    doc: Option<&BucketDoc>,
) -> Option<Finding> {
    let mut confidence = in_other_account(bucket, &evidence.table_account)?;
    let mut items = Vec::new();
    if request.s3_sse_algorithm.is_none() {
        // No SSE flag: S3 applies the bucket's default encryption, and an SSE-KMS default
        // without a key id (or naming aws/s3) is the AWS managed key of the bucket's account.
        let enc = bucket
            .encryption
            .get()
            .filter(|e| e.algorithm == "aws:kms")?;
        let key = enc.kms_key_id.as_deref();
        let info = evidence
            .default_key
            .as_ref()
            .filter(|k| Some(k.key_id.as_str()) == key)
            .and_then(|k| k.info.get());
        if key.is_some() && !aws_managed(key, info) {
            return None;
        }
        items.push(ev(
            format!(
                "the bucket's default encryption is SSE-KMS with {}",
                key.map_or("no key id: the AWS managed key aws/s3".to_string(), |k| {
                    format!("{k}, the AWS managed key aws/s3")
                })
            ),
            bucket.encryption.source,
        ));
        items.push(ev(
            "the export sent no --s3-sse-algorithm, so S3 applies the bucket default",
            "event",
        ));
        // Which header DynamoDB sends without SSE flags is unconfirmed (README, "What it diagnoses today").
        confidence = confidence.min(Confidence::Likely);
        return Some(aws_managed_finding(
            request, bucket, evidence, doc, confidence, items,
        ));
    }
    if request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        return None;
    }
    let info = evidence.export_key.as_ref().and_then(|k| k.info.get());
    let named_aws = aws_managed(request.s3_sse_kms_key_id.as_deref(), None);
    let managed = aws_managed(request.s3_sse_kms_key_id.as_deref(), info);
    match (&request.s3_sse_kms_key_id, managed) {
        (Some(k), true) => items.push(ev(
            format!("{k} is the AWS managed key aws/s3"),
            if named_aws {
                "event"
            } else {
                "kms:DescribeKey"
            },
        )),
        // No key id: S3 encrypts with the AWS managed key.
        (None, _) => {
            items.push(ev(
                "KMS without --s3-sse-kms-key-id uses the AWS managed key aws/s3",
                "event",
            ));
            confidence = Confidence::Likely;
        }
        _ => return None,
    }
    Some(aws_managed_finding(
        request, bucket, evidence, doc, confidence, items,
    ))
}

pub(super) fn aws_managed_finding(
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
    doc: Option<&BucketDoc>,
    confidence: Confidence,
    items: Vec<EvidenceItem>,
) -> Finding {
    let aes_allowed = match &bucket.policy.value {
        crate::model::FactValue::Absent => true,
        crate::model::FactValue::Known(_) => doc.is_some_and(|d| {
            SseRules::from_document(d.text, &d.json, &started_object_arn(request, evidence))
                .is_ok_and(|r| r.denials(&SseHeaders::aes256()).is_empty())
        }),
        crate::model::FactValue::Unknown(_) => false,
    };
    let mut f = finding(
        Cause::AwsManagedKeyCrossAccount,
        confidence,
        format!("The export to {} (another account) uses the AWS managed key aws/s3, whose key policy no one can change to admit that account.", bucket.name),
        items,
        if aes_allowed {
            "Export again with --s3-sse-algorithm AES256 (the bucket policy allows it), or with a customer managed key whose policy admits the bucket owner.".into()
        } else {
            "Export with --s3-sse-algorithm KMS and a customer managed key (full ARN) whose key policy admits the bucket owner; the bucket policy does not allow AES256 (or could not be read).".into()
        },
    );
    if aes_allowed {
        f.correction = Some(Correction {
            s3_sse_algorithm: Some(SseAlgorithm::Aes256),
            ..Correction::default()
        });
    }
    f
}

/// Why a key cannot encrypt export objects, if it cannot.
pub(super) fn key_problems(key: &KeyFacts, bucket_region: Option<&str>) -> Option<String> {
    // A full key ARN names its Region: S3 uses only keys of the bucket's Region ("the AWS KMS
    // key must be in the same Region as the bucket", Amazon S3 User Guide, "Specifying
    // server-side encryption with AWS KMS (SSE-KMS)",
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/specifying-kms-encryption.html).
    // Decided from the ARN even when DescribeKey could not answer (a client of the function's
    // Region does not find another Region's key).
    let arn_region = Arn::parse("key", &key.key_id)
        .ok()
        .filter(|a| a.service == "kms" && !a.region.is_empty())
        .map(|a| a.region);
    if let (Some(kr), Some(br)) = (arn_region.as_deref(), bucket_region) {
        if kr != br
            && key
                .info
                .get()
                .is_none_or(|i| i.region().as_deref() != Some(br))
        {
            return Some(format!("key is in {kr}, the bucket in {br}"));
        }
    }
    if key.info.is_absent() {
        return Some("the key does not exist".into());
    }
    let info: &KeyInfo = key.info.get()?;
    let mut problems = Vec::new();
    // An empty field means the service did not say; only a stated value counts against the key.
    if !info.state.is_empty() && info.state != "Enabled" {
        problems.push(format!("state is {}", info.state));
    }
    if !info.spec.is_empty() && info.spec != "SYMMETRIC_DEFAULT" {
        problems.push(format!(
            "key spec is {} (S3 takes only SYMMETRIC_DEFAULT)",
            info.spec
        ));
    }
    if !info.usage.is_empty() && info.usage != "ENCRYPT_DECRYPT" {
        problems.push(format!("key usage is {}", info.usage));
    }
    if let (Some(kr), Some(br)) = (info.region(), bucket_region) {
        if kr != br {
            problems.push(format!("key is in {kr}, the bucket in {br}"));
        }
    }
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// No SSE flags: S3 encrypts with the bucket's default key, which must be usable too.
pub(super) fn default_key_unusable(
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
) -> Option<Finding> {
    if request.s3_sse_algorithm.is_some() {
        return None;
    }
    let key = evidence.default_key.as_ref()?;
    let problem = key_problems(key, bucket.region.get().map(String::as_str))?;
    Some(finding(
        Cause::KmsKeyUnusable,
        Confidence::Confirmed,
        format!(
            "The bucket's default encryption key {} cannot encrypt the export: {problem}.",
            key.key_id
        ),
        vec![ev(format!("default key {}: {problem}", key.key_id), key.info.source)],
        "Set the bucket's default encryption to an enabled symmetric key in the bucket's region, or export with --s3-sse-algorithm KMS and such a key's full ARN.".into(),
    ))
}

pub(super) fn export_key_unusable(
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
) -> Option<Finding> {
    if request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        return None;
    }
    let key = evidence.export_key.as_ref()?;
    let problem = key_problems(key, bucket.region.get().map(String::as_str))?;
    Some(finding(
        Cause::KmsKeyUnusable,
        Confidence::Confirmed,
        format!("The KMS key {} cannot encrypt the export: {problem}.", key.key_id),
        vec![ev(format!("key {}: {problem}", key.key_id), key.info.source)],
        "Use an enabled symmetric ENCRYPT_DECRYPT key in the bucket's region (full key ARN), or re-enable this one.".into(),
    ))
}
