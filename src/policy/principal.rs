//! Principal matching: how a `Principal` entry (account, root, role, session, service, `*`)
//! names the request's principal.

#[allow(unused_imports)]
use super::*;

pub(super) fn account_of(principal: &str) -> Option<&str> {
    let acct = principal.split(':').nth(4)?;
    (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())).then_some(acct)
}

/// `arn:…:sts::acct:assumed-role/Role/session` → `arn:…:iam::acct:role/Role`.
pub(super) fn role_of_session(principal: &str) -> Option<String> {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "sts" {
        return None;
    }
    let role = parts[5].strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{}:iam::{}:role/{}", parts[1], parts[4], role))
}

/// `arn:…:iam::acct:<kind>/…`, for `kind` "role" or "user".
pub(super) fn is_iam(principal: &str, kind: &str) -> bool {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    parts.len() == 6
        && parts[2] == "iam"
        && parts[5]
            .strip_prefix(kind)
            .is_some_and(|r| r.starts_with('/'))
}

/// How a resource-based statement names the caller, weakest first. Within one account this
/// decides which limits its grant obeys ("How AWS enforcement code logic evaluates requests to
/// allow or deny access", Resource-based policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum PrincipalMatch {
    None,
    /// The caller's account (`<id>` or `arn:…:root`): delegates to that account's IAM policies.
    Account,
    /// The caller's role ARN: grants by itself, but "Resource-based policies that grant
    /// permissions to an IAM role ARN are limited by an implicit deny in a permissions boundary
    /// or session policy".
    Role,
    /// The IAM user's own ARN: "not limited by an implicit deny in an identity-based policy or
    /// permissions boundary"; a session policy still limits it ("Policies and permissions",
    /// Session policies: the ARN "of the user or role" is limited by the session policy).
    User,
    /// `*`: "Permissions boundaries and session policies do not limit permissions granted using
    /// the aws:PrincipalArn condition key with a wildcard(*) in the Principal element".
    Anyone,
    /// The caller's own session (or other non-IAM) ARN: "Permissions granted directly to a
    /// session are not limited by an implicit deny in an identity-based policy, a permissions
    /// boundary, or session policy".
    Direct,
}

impl PrincipalMatch {
    /// Whether a same-account grant of this kind is limited by the boundary and by the session policy.
    pub(super) fn limited_by(self) -> (bool, bool) {
        match self {
            PrincipalMatch::Direct | PrincipalMatch::Anyone => (false, false),
            PrincipalMatch::User => (false, true),
            _ => (true, true),
        }
    }

    /// How the explanation names what the statement names.
    pub(super) fn named(self, principal: &str) -> String {
        match self {
            PrincipalMatch::Direct if principal.contains(":assumed-role/") => {
                format!("the role session {principal} itself")
            }
            PrincipalMatch::Direct if principal.contains(":federated-user/") => {
                format!("the federated user session {principal} itself")
            }
            PrincipalMatch::Direct => format!("the caller {principal} itself"),
            PrincipalMatch::Anyone => "Principal \"*\"".into(),
            PrincipalMatch::User => format!("the IAM user {principal} itself"),
            PrincipalMatch::Role => "the role ARN, not the session".into(),
            PrincipalMatch::Account => "the account".into(),
            PrincipalMatch::None => "someone else".into(),
        }
    }
}

pub(super) fn principal_match(listed: &str, principal: &str) -> PrincipalMatch {
    if listed == "*" {
        return PrincipalMatch::Anyone;
    }
    if listed == principal {
        // A request "as a role" is made by one of its sessions, which a role ARN grant limits.
        return if is_iam(principal, "role") {
            PrincipalMatch::Role
        } else if is_iam(principal, "user") {
            PrincipalMatch::User
        } else {
            PrincipalMatch::Direct
        };
    }
    if role_of_session(principal).as_deref() == Some(listed) {
        return PrincipalMatch::Role;
    }
    let listed_account = if listed.len() == 12 && listed.bytes().all(|b| b.is_ascii_digit()) {
        Some(listed)
    } else if listed.ends_with(":root") {
        account_of(listed)
    } else {
        None
    };
    match (listed_account, account_of(principal)) {
        (Some(a), Some(b)) if a == b => PrincipalMatch::Account,
        _ => PrincipalMatch::None,
    }
}
