//! Identity-side causes: the exporter's identity policies or boundary deny the calls, or the
//! enhanced AccessDenied message names the policy type where the policies cannot be read here.

#[allow(unused_imports)]
use super::*;

/// When no policy explains it, the enhanced message still names the kind of policy that denied.
pub(super) fn from_message(fail: &Failure) -> Vec<Finding> {
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
pub(super) fn identity_side(cx: &Ctx, fail: &Failure) -> Vec<Finding> {
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
    if let Some(key) = &cx.key_arn {
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
