//! Server-side encryption causes: the bucket policy requires headers the export did not send.

use super::*;

pub(super) fn export_headers(request: &ExportRequest) -> Option<SseHeaders> {
    match request.s3_sse_algorithm {
        Some(SseAlgorithm::Aes256) => Some(SseHeaders::aes256()),
        Some(SseAlgorithm::Kms) => Some(SseHeaders::kms(request.s3_sse_kms_key_id.as_deref())),
        None => None,
    }
}

pub(super) fn sse_mismatch(
    fail: &Failure,
    request: &ExportRequest,
    bucket: &BucketFacts,
    evidence: &Evidence,
    doc: Option<&BucketDoc>,
) -> Option<Finding> {
    let doc = doc?;
    let rules =
        SseRules::from_document(doc.text, &doc.json, &started_object_arn(request, evidence))
            .ok()?;
    if rules.is_empty() {
        return None;
    }
    // Which header DynamoDB sends when no SSE flag is given is unconfirmed: assume none, say LIKELY.
    let sent = export_headers(request).unwrap_or(SseHeaders {
        algorithm: None,
        kms_key_id: None,
    });
    let denied_by = rules.denials(&sent);
    if denied_by.is_empty() {
        return None;
    }
    let confidence = if request.s3_sse_algorithm.is_some() {
        Confidence::Confirmed
    } else {
        Confidence::Likely
    };
    let sent_text = sent.algorithm.as_deref().unwrap_or("no SSE header");
    let mut items: Vec<EvidenceItem> = denied_by
        .iter()
        .map(|d| {
            ev(
                format!(
                    "bucket policy statement {} denies s3:PutObject with {sent_text}",
                    d.name
                ),
                bucket.policy.source,
            )
        })
        .collect();
    if let Some(m) = fail.message.filter(|m| m.contains("explicit deny")) {
        items.push(ev(format!("failure message: {}", clip(m)), fail.source));
    }

    if request.s3_sse_algorithm != Some(SseAlgorithm::Kms) {
        if let Some(key) = kms_candidate(&rules, bucket, evidence) {
            let key_arn = key.arn.clone();
            if rules
                .denials(&SseHeaders::kms(key_arn.as_deref()))
                .is_empty()
            {
                return Some(requires_kms(bucket, key, items, confidence));
            }
        } else if rules.denials(&SseHeaders::kms(None)).is_empty() {
            return Some(requires_kms(bucket, KmsChoice::none(), items, confidence));
        }
    }
    if request.s3_sse_algorithm != Some(SseAlgorithm::Aes256)
        && rules.denials(&SseHeaders::aes256()).is_empty()
    {
        let mut f = finding(
            Cause::SseMismatchRequiresAes256,
            confidence,
            format!("The bucket policy of {} requires SSE-S3 (AES256), but the export sent {sent_text}.", bucket.name),
            items,
            "Export again with --s3-sse-algorithm AES256.".into(),
        );
        f.correction = Some(Correction {
            s3_sse_algorithm: Some(SseAlgorithm::Aes256),
            ..Correction::default()
        });
        return Some(f);
    }
    if request.s3_sse_algorithm == Some(SseAlgorithm::Kms) {
        let pinned = rules
            .pinned_keys()
            .into_iter()
            .find(|k| k.contains(":key/") && rules.denials(&SseHeaders::kms(Some(k))).is_empty());
        if let Some(key) = pinned {
            let used = request.s3_sse_kms_key_id.as_deref().unwrap_or("no key id");
            let mut f = finding(
                Cause::SseKmsKeyMismatch,
                confidence,
                format!(
                    "The bucket policy of {} requires the KMS key {key}, but the export used {used}.",
                    bucket.name
                ),
                items,
                format!("Export again with --s3-sse-algorithm KMS --s3-sse-kms-key-id {key}."),
            );
            f.correction = Some(Correction {
                s3_sse_algorithm: Some(SseAlgorithm::Kms),
                s3_sse_kms_key_id: Some(key),
                ..Correction::default()
            });
            return Some(f);
        }
    }
    let required = rules.unsendable_requirement()?;
    Some(finding(
        Cause::SseAlgorithmUnsupported,
        Confidence::Confirmed,
        format!(
            "The bucket policy of {} requires {required}, which an export cannot send (only AES256 or KMS).",
            bucket.name
        ),
        items,
        "Ask the bucket owner for an exception that admits SSE-KMS or SSE-S3 writes under the export prefix, or export to another bucket.".into(),
    ))
}

/// The key a KMS retry would use, and whether it is fit to use.
pub(super) struct KmsChoice {
    arn: Option<String>,
    why: String,
    unusable: Option<String>,
}

impl KmsChoice {
    fn none() -> Self {
        Self {
            arn: None,
            why: String::new(),
            unusable: None,
        }
    }
}

pub(super) fn kms_candidate(
    rules: &SseRules,
    bucket: &BucketFacts,
    evidence: &Evidence,
) -> Option<KmsChoice> {
    if let Some(pinned) = rules
        .pinned_keys()
        .into_iter()
        .find(|k| k.contains(":key/"))
    {
        let facts = evidence.key(&pinned);
        return Some(KmsChoice {
            unusable: facts.and_then(|k| key_problems(k, bucket.region.get().map(String::as_str))),
            arn: Some(pinned),
            why: "the key the bucket policy requires".into(),
        });
    }
    let enc = bucket
        .encryption
        .get()
        .filter(|e| e.algorithm == "aws:kms")?;
    let key_id = enc.kms_key_id.as_deref()?;
    let facts = evidence
        .default_key
        .as_ref()
        .filter(|k| k.key_id == key_id)
        .or(evidence.export_key.as_ref().filter(|k| k.key_id == key_id));
    let arn = facts
        .and_then(|k| k.info.get().map(|i| i.arn.clone()))
        .or_else(|| key_id.contains(":key/").then(|| key_id.to_string()));
    Some(KmsChoice {
        unusable: facts.and_then(|k| key_problems(k, bucket.region.get().map(String::as_str))),
        arn,
        why: "the bucket's default-encryption key".into(),
    })
}

pub(super) fn requires_kms(
    bucket: &BucketFacts,
    key: KmsChoice,
    mut items: Vec<EvidenceItem>,
    confidence: Confidence,
) -> Finding {
    let summary = format!(
        "The bucket policy of {} requires SSE-KMS (aws:kms), but the export did not use KMS.",
        bucket.name
    );
    let (text, correction) = match (&key.arn, &key.unusable) {
        (Some(arn), None) => {
            items.push(ev(format!("retry key: {arn} ({})", key.why), "s3:GetBucketEncryption"));
            (
                format!("Export again with --s3-sse-algorithm KMS --s3-sse-kms-key-id {arn}."),
                Some(Correction {
                    s3_sse_algorithm: Some(SseAlgorithm::Kms),
                    s3_sse_kms_key_id: Some(arn.clone()),
                    ..Correction::default()
                }),
            )
        }
        (Some(arn), Some(problem)) => (
            format!("Export with --s3-sse-algorithm KMS and a usable key; {arn} ({}) cannot be used: {problem}.", key.why),
            None,
        ),
        (None, _) => (
            "Export again with --s3-sse-algorithm KMS --s3-sse-kms-key-id <full key ARN>; no key is known from the bucket's policy or default encryption.".into(),
            None,
        ),
    };
    let mut f = finding(
        Cause::SseMismatchRequiresKms,
        confidence,
        summary,
        items,
        text,
    );
    f.correction = correction;
    f
}
