//! The S3 and KMS calls DynamoDB makes for an export (the request model of docs/diagnosis.md), evaluated
//! against the bucket and key policies the evidence holds; and the enhanced AccessDenied
//! message, parsed as supporting evidence.
//!
//! Which principal S3 and KMS see for an export is unconfirmed (recorded messages name
//! `arn:aws:iam::<acct>:root`, AWS's guide the role that started it), so a decision is taken
//! for both candidates; when they differ, the finding is at most POSSIBLE.

use crate::model::{ExportRequest, SseAlgorithm};
use crate::policy::{
    evaluate_refs, Context, ContextValue, Decision, DecisionKind, Effect, Policy, PolicyKind,
    Request, Statement, Targets,
};
use std::sync::LazyLock;

/// The principals an export's S3/KMS calls may be made as: the caller (when known) and the
/// table account's root.
pub fn candidate_principals(
    caller: Option<&str>,
    partition: &str,
    table_account: &str,
) -> Vec<String> {
    let root = format!("arn:{partition}:iam::{table_account}:root");
    let mut out: Vec<String> = caller
        .filter(|c| c.contains(":role/") || c.contains(":user/") || c.contains(":assumed-role/"))
        .map(|c| vec![c.to_string()])
        .unwrap_or_default();
    if !out.contains(&root) {
        out.push(root);
    }
    out
}

fn known(ctx: &mut Context, key: &str, value: &str) {
    ctx.set(key, ContextValue::Values(vec![value.to_string()]));
}

/// The context every call DynamoDB makes on the exporter's behalf carries.
fn service_context(ctx: &mut Context) {
    known(ctx, "aws:SecureTransport", "true");
    known(ctx, "aws:ViaAWSService", "true");
    ctx.set(
        "aws:CalledVia",
        ContextValue::Values(vec!["dynamodb.amazonaws.com".into()]),
    );
    // Not known from outside: where the call comes from, and the caller's organization.
    for key in [
        "aws:SourceIp",
        "aws:SourceVpce",
        "aws:SourceVpc",
        "aws:PrincipalOrgID",
        "s3:x-amz-acl",
    ] {
        ctx.set(key, ContextValue::Unknown);
    }
}

/// The accounts on both sides of a request: `aws:PrincipalAccount` and `aws:ResourceAccount`,
/// global keys AWS puts in every request's context (IAM User Guide, "AWS global condition
/// context keys",
/// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
/// Left out, a `StringNotEquals` on them (an SCP's "deny outside our accounts") would match as
/// if the key were absent; an account not known here is Unknown.
fn account_context(ctx: &mut Context, principal: &str, resource_account: Option<&str>) {
    match crate::arn::account_of(principal) {
        Some(a) => known(ctx, "aws:PrincipalAccount", &a),
        None => ctx.set("aws:PrincipalAccount", ContextValue::Unknown),
    }
    match resource_account {
        Some(a) => known(ctx, "aws:ResourceAccount", a),
        None => ctx.set("aws:ResourceAccount", ContextValue::Unknown),
    }
}

/// PutObject of the export's first object, as `principal`.
pub fn s3_put(
    principal: &str,
    object_arn: &str,
    request: &ExportRequest,
    bucket_account: Option<&str>,
    key_arn: Option<&str>,
) -> Request {
    let mut ctx = Context::default();
    service_context(&mut ctx);
    match request.s3_sse_algorithm {
        Some(SseAlgorithm::Aes256) => known(&mut ctx, "s3:x-amz-server-side-encryption", "AES256"),
        Some(SseAlgorithm::Kms) => {
            known(&mut ctx, "s3:x-amz-server-side-encryption", "aws:kms");
            match key_arn.or(request.s3_sse_kms_key_id.as_deref()) {
                Some(k) => known(
                    &mut ctx,
                    "s3:x-amz-server-side-encryption-aws-kms-key-id",
                    k,
                ),
                None => ctx.set(
                    "s3:x-amz-server-side-encryption-aws-kms-key-id",
                    ContextValue::Unknown,
                ),
            }
        }
        // Which header DynamoDB sends when the flags are omitted is unconfirmed.
        None => ctx.set("s3:x-amz-server-side-encryption", ContextValue::Unknown),
    }
    account_context(&mut ctx, principal, bucket_account);
    Request {
        principal: principal.to_string(),
        action: "s3:PutObject".into(),
        resource: object_arn.to_string(),
        resource_account: bucket_account.map(str::to_string),
        context: ctx,
    }
}

/// GenerateDataKey on the key, through S3, as `principal`.
pub fn kms_generate(
    principal: &str,
    key_arn: &str,
    region: &str,
    table_account: &str,
    object_arn: &str,
) -> Request {
    let mut ctx = Context::default();
    service_context(&mut ctx);
    known(
        &mut ctx,
        "kms:ViaService",
        &format!("s3.{region}.amazonaws.com"),
    );
    known(&mut ctx, "kms:CallerAccount", table_account);
    known(&mut ctx, "kms:EncryptionContext:aws:s3:arn", object_arn);
    account_context(
        &mut ctx,
        principal,
        crate::arn::account_of(key_arn).as_deref(),
    );
    Request {
        principal: principal.to_string(),
        action: "kms:GenerateDataKey".into(),
        resource: key_arn.to_string(),
        resource_account: crate::arn::account_of(key_arn),
        context: ctx,
    }
}

/// A policy of one statement that allows every action on every resource (to `principals`).
fn allows_all(kind: PolicyKind, name: &str, principals: Option<&str>) -> Policy {
    let every = |v: &str| Targets {
        negated: false,
        values: vec![v.into()],
    };
    Policy {
        kind,
        name: name.into(),
        level: None,
        statements: vec![Statement {
            name: "#0".into(),
            effect: Effect::Allow,
            actions: every("*"),
            resources: Some(every("*")),
            principals: principals.map(every),
            conditions: Vec::new(),
        }],
    }
}

/// An identity policy that allows everything: isolates what a resource or key policy decides.
static ALLOW_ALL: LazyLock<Policy> =
    LazyLock::new(|| allows_all(PolicyKind::Identity, "assumed-identity-allow", None));

/// What one resource-side policy (bucket or key) decides for the request, the caller's IAM
/// policies assumed to allow.
pub fn resource_side(policy: &Policy, request: &Request) -> Decision {
    evaluate_refs(&[&ALLOW_ALL, policy], request)
}

/// A resource policy that admits everyone: a cross-account request needs one, and the SCP
/// side assumes every layer but the SCPs allows.
static RESOURCE_ALLOWS_ALL: LazyLock<Policy> =
    LazyLock::new(|| allows_all(PolicyKind::Resource, "assumed-resource-allow", Some("*")));

/// What the organization's SCPs decide for the request, every other layer assumed to allow
/// (the resource's own policy too: a bucket in another account is not the SCPs' question).
pub fn scp_side(scps: &[Policy], request: &Request) -> Decision {
    let mut all: Vec<&Policy> = vec![&ALLOW_ALL, &RESOURCE_ALLOWS_ALL];
    all.extend(scps);
    evaluate_refs(&all, request)
}

/// The parts of an enhanced AccessDenied message.
#[derive(Debug, Clone, PartialEq)]
pub struct Denial {
    pub principal: Option<String>,
    pub action: Option<String>,
    /// `identity-based`, `resource-based`, `service control`, `resource control`,
    /// `permissions boundary`, `session`, `VPC endpoint`, or None for a bare message.
    pub policy_type: Option<String>,
    pub explicit: bool,
}

/// Parses `User: <arn> is not authorized to perform: <action> on resource: "<arn>" because no
/// <type> policy allows …` and `… with an explicit deny in a <type> policy`.
pub fn parse_denial(message: &str) -> Option<Denial> {
    let rest = message.strip_prefix("User: ")?;
    let (principal, rest) = rest.split_once(' ')?;
    let action = rest
        .split_once("perform: ")
        .and_then(|(_, a)| a.split_whitespace().next())
        .map(str::to_string);
    let (explicit, after) = if let Some((_, a)) = rest.split_once("with an explicit deny in a") {
        (true, a)
    } else if let Some((_, a)) = rest.split_once("because no") {
        (false, a)
    } else {
        return Some(Denial {
            principal: Some(principal.to_string()),
            action,
            policy_type: None,
            explicit: false,
        });
    };
    let after = after.trim_start().trim_start_matches("an ");
    let policy_type = [
        "identity-based",
        "resource-based",
        "service control",
        "resource control",
        "permissions boundary",
        "session",
        "VPC endpoint",
    ]
    .into_iter()
    .find(|t| after.starts_with(t))
    .map(str::to_string);
    Some(Denial {
        principal: Some(principal.to_string()),
        action,
        policy_type,
        explicit,
    })
}

/// True when both candidate principals got the same kind of decision.
pub fn agree(decisions: &[Decision]) -> bool {
    decisions.windows(2).all(|w| w[0].decision == w[1].decision)
}

pub fn denied(d: &Decision) -> bool {
    d.decision != DecisionKind::Allow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_messages_parse_into_principal_action_and_policy_type() {
        let d = parse_denial("User: arn:aws:iam::111122223333:root is not authorized to perform: s3:PutObject on resource: \"arn:aws:s3:::b/AWSDynamoDB/x/_started\" because no resource-based policy allows the s3:PutObject action").unwrap();
        assert_eq!(
            d.principal.as_deref(),
            Some("arn:aws:iam::111122223333:root")
        );
        assert_eq!(d.action.as_deref(), Some("s3:PutObject"));
        assert_eq!(d.policy_type.as_deref(), Some("resource-based"));
        assert!(!d.explicit);
        let d = parse_denial("User: arn:aws:sts::111122223333:assumed-role/R/s is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:111122223333:key/k with an explicit deny in a service control policy").unwrap();
        assert_eq!(
            (d.policy_type.as_deref(), d.explicit),
            (Some("service control"), true)
        );
        let d = parse_denial("User: arn:aws:iam::111122223333:root is not authorized to perform: s3:PutObject on resource: x with an explicit deny in a VPC endpoint policy").unwrap();
        assert_eq!(d.policy_type.as_deref(), Some("VPC endpoint"));
        assert_eq!(
            parse_denial("Access Denied (Service: Amazon S3; Status Code: 403)"),
            None
        );
    }

    #[test]
    fn candidates_are_the_caller_and_the_table_account_root() {
        assert_eq!(
            candidate_principals(
                Some("arn:aws:iam::111122223333:role/Exporter"),
                "aws",
                "111122223333"
            ),
            vec![
                "arn:aws:iam::111122223333:role/Exporter",
                "arn:aws:iam::111122223333:root"
            ]
        );
        assert_eq!(
            candidate_principals(None, "aws", "111122223333"),
            vec!["arn:aws:iam::111122223333:root"]
        );
        assert_eq!(
            candidate_principals(Some("dynamodb.amazonaws.com"), "aws", "111122223333").len(),
            1
        );
    }

    #[test]
    fn the_scp_side_of_a_cross_account_write_is_decided_by_the_scps_alone() {
        let full = Policy::parse_text(
            PolicyKind::Scp,
            "FullAWSAccess",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .unwrap();
        let deny_s3 = Policy::parse_text(
            PolicyKind::Scp,
            "NoS3",
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoS3","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
        )
        .unwrap();
        // A member account's root writing into another account's bucket: no bucket policy is
        // in view, and that is not the SCPs' question.
        let request = Request {
            principal: "arn:aws:iam::222233334444:root".into(),
            action: "s3:PutObject".into(),
            resource: "arn:aws:s3:::exports/AWSDynamoDB/x/_started".into(),
            resource_account: Some("555566667777".into()),
            context: Context::default(),
        };
        assert_eq!(
            scp_side(std::slice::from_ref(&full), &request).decision,
            DecisionKind::Allow
        );
        let d = scp_side(&[full, deny_s3], &request);
        assert_eq!(d.decision, DecisionKind::ExplicitDeny);
        assert_eq!(d.decided_by.as_deref(), Some("NoS3/NoS3"));
    }

    #[test]
    fn both_accounts_are_in_the_context_so_a_deny_outside_our_accounts_spares_our_key() {
        let key = "arn:aws:kms:us-east-1:444455556666:key/k";
        let r = kms_generate(
            "arn:aws:iam::111122223333:role/Exporter",
            key,
            "us-east-1",
            "111122223333",
            "arn:aws:s3:::b/k",
        );
        let scp = |accounts: &str| {
            crate::policy::Policy::parse_text(
                crate::policy::PolicyKind::Scp,
                "guard",
                &format!(
                    r#"{{"Version": "2012-10-17", "Statement": [
                    {{"Effect": "Allow", "Action": "*", "Resource": "*"}},
                    {{"Sid": "OutsideOrg", "Effect": "Deny", "Action": "kms:*", "Resource": "*",
                      "Condition": {{"StringNotEquals": {{"aws:ResourceAccount": [{accounts}]}}}}}}]}}"#
                ),
            )
            .unwrap()
        };
        let identity = allows_all(PolicyKind::Identity, "id", None);
        let key_policy = allows_all(PolicyKind::Key, "key", Some("*"));
        let ours = scp(r#""111122223333", "444455556666""#);
        let d = crate::policy::evaluate(&[identity.clone(), key_policy.clone(), ours], &r);
        assert_eq!(d.decision, DecisionKind::Allow, "{d:?}");
        let theirs = scp(r#""111122223333""#);
        let d = crate::policy::evaluate(&[identity, key_policy, theirs], &r);
        assert_eq!(d.decision, DecisionKind::ExplicitDeny, "{d:?}");
    }
}
