//! Service control policy causes: an SCP on the table account's path denies the export's calls.

#[allow(unused_imports)]
use super::*;

/// The SCPs on the table account's path, evaluated for the export call (when it was refused or
/// has not run), the S3 write and, for SSE-KMS, the key. SCPs restrict the principals of member
/// accounts only: nothing when the table account is the management account.
pub(super) fn scp_findings(cx: &Ctx, fail: &Failure) -> Vec<Finding> {
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
        if let Some(key) = &cx.key_arn {
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
