//! IAM policy evaluation across identity, resource, key, boundary, session, SCP and RCP layers,
//! following AWS's documented logic (SPEC §5), with an explanation down to the condition.
//!
//! Pure: policy documents and a request in, a decision out. Context values may be Unknown; a
//! decision that depends on one is marked `uncertain` (a finding built on it is POSSIBLE).

pub mod condition;

mod glob;
use condition::{parse_operator, Condition};
pub use glob::glob;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// IAM's limits are smaller (identity 6,144 / bucket 20,480 / key 32,768 bytes); this bounds work.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
const MAX_STATEMENTS: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Identity,
    Resource,
    Key,
    Boundary,
    Scp,
    Rcp,
    Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Unknown,
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Unknown,
        }
    }
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action`/`NotAction`, `Resource`/`NotResource`, `Principal`/`NotPrincipal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    pub negated: bool,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`, or `#<index>` when it has none.
    pub name: String,
    pub effect: Effect,
    pub actions: Targets,
    pub resources: Option<Targets>,
    /// `AWS`, `Service`, `Federated` and `CanonicalUser` values flattened; `*` for everyone.
    pub principals: Option<Targets>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub name: String,
    /// SCP/RCP: policies with the same level are OR'ed; every level must allow.
    pub level: Option<String>,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{policy}: {path}: {reason}")]
pub struct PolicyError {
    pub policy: String,
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    Values(Vec<String>),
    /// The value exists in the real request but is not known here.
    Unknown,
}

/// Request context, keys lower-cased (condition keys are case-insensitive).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context(HashMap<String, ContextValue>);

impl Context {
    pub fn set(&mut self, key: &str, value: ContextValue) {
        self.0.insert(key.to_ascii_lowercase(), value);
    }
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.0.get(&key.to_ascii_lowercase())
    }
    /// From a JSON object: strings, booleans, numbers and lists of them;
    /// `{"unknown": true}` marks a value that exists but is not known.
    pub fn from_json(obj: &serde_json::Map<String, Value>) -> Result<Self, String> {
        let mut ctx = Context::default();
        for (k, v) in obj {
            let value = match v {
                Value::Object(o) if o.get("unknown") == Some(&Value::Bool(true)) => {
                    ContextValue::Unknown
                }
                other => ContextValue::Values(scalars(other).ok_or_else(|| {
                    format!("context.{k}: expected a string, boolean, number or a list of them")
                })?),
            };
            ctx.set(k, value);
        }
        Ok(ctx)
    }
}

fn scalars(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Bool(b) => Some(vec![b.to_string()]),
        Value::Number(n) => Some(vec![n.to_string()]),
        Value::Array(list) => list
            .iter()
            .map(|x| match x {
                Value::Array(_) | Value::Object(_) | Value::Null => None,
                other => scalars(other).map(|mut s| s.remove(0)),
            })
            .collect(),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// The account that owns the resource, when known.
    pub resource_account: Option<String>,
    pub context: Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DecisionKind {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub decision: DecisionKind,
    /// The deny statement that decided an ExplicitDeny, or one statement that granted an Allow.
    pub decided_by: Option<String>,
    pub explanation: Vec<String>,
    /// The decision depends on a context value that is Unknown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    /// Deny statements that apply unless an Unknown context value says otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub may_deny: Vec<String>,
}

// ---------------------------------------------------------------- parsing

impl Policy {
    /// Parses one policy document; `name` and `kind` say where it came from.
    pub fn parse(
        kind: PolicyKind,
        name: &str,
        level: Option<String>,
        doc: &Value,
    ) -> Result<Self, PolicyError> {
        if doc.to_string().len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                policy: name.to_string(),
                path: String::new(),
                reason: "larger than 64 KiB".into(),
            });
        }
        Self::parse_checked(kind, name, level, doc)
    }

    /// `parse` for a document whose size is already known to be within the limit.
    fn parse_checked(
        kind: PolicyKind,
        name: &str,
        level: Option<String>,
        doc: &Value,
    ) -> Result<Self, PolicyError> {
        let err = |path: &str, reason: &str| PolicyError {
            policy: name.to_string(),
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let obj = doc
            .as_object()
            .ok_or_else(|| err("", "a policy document must be a JSON object"))?;
        let raw: Vec<&Value> = match obj.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(err("Statement", "missing, or not an object or a list")),
        };
        if raw.len() > MAX_STATEMENTS {
            return Err(err("Statement", "more than 1,000 statements"));
        }
        // "IAM JSON policy elements: Version": variables came with 2012-10-17; under 2008-10-17,
        // or with no Version, `${aws:username}` is "treated as a literal string".
        let variables = match obj.get("Version") {
            Some(Value::String(v)) if v == "2012-10-17" => true,
            Some(Value::String(v)) if v == "2008-10-17" => false,
            None => false,
            Some(_) => return Err(err("Version", "expected \"2012-10-17\" or \"2008-10-17\"")),
        };
        let statements = raw
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                parse_statement(s, i, variables)
                    .map_err(|(p, r)| err(&format!("Statement[{i}].{p}"), &r))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            kind,
            name: name.to_string(),
            level,
            statements,
        })
    }

    /// Parses policy text as stored by AWS.
    pub fn parse_text(kind: PolicyKind, name: &str, text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                policy: name.into(),
                path: String::new(),
                reason: "larger than 64 KiB".into(),
            });
        }
        let doc: Value = serde_json::from_str(text).map_err(|e| PolicyError {
            policy: name.into(),
            path: String::new(),
            reason: format!("not JSON: {e}"),
        })?;
        Self::parse_checked(kind, name, None, &doc)
    }

    /// `parse_text` for a document the caller has already parsed from `text` (so that one
    /// JSON parse serves several readers of the same policy).
    pub fn parse_document(
        kind: PolicyKind,
        name: &str,
        text: &str,
        doc: &Value,
    ) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError {
                policy: name.into(),
                path: String::new(),
                reason: "larger than 64 KiB".into(),
            });
        }
        Self::parse_checked(kind, name, None, doc)
    }
}

type FieldError = (String, String);

fn strings_of(v: &Value, field: &str) -> Result<Vec<String>, FieldError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| (field.to_string(), "list items must be strings".to_string()))
            })
            .collect(),
        _ => Err((
            field.to_string(),
            "expected a string or a non-empty list of strings".into(),
        )),
    }
}

fn pair<'a>(
    s: &'a serde_json::Map<String, Value>,
    pos: &str,
    neg: &str,
) -> Result<Option<(bool, &'a Value)>, FieldError> {
    match (s.get(pos), s.get(neg)) {
        (Some(_), Some(_)) => Err((pos.into(), format!("{pos} and {neg} together"))),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

/// How `${` is kept under a policy language without variables: `${$}{` reads back as `${`.
pub(crate) const LITERAL_VARIABLE: &str = "${$}{";
pub(crate) const LITERAL_NOTE: &str =
    "${…} is literal text here: variables need \"Version\": \"2012-10-17\"";

fn literal(text: String, variables: bool) -> String {
    if variables || !text.contains("${") {
        text
    } else {
        text.replace("${", LITERAL_VARIABLE)
    }
}

fn parse_statement(v: &Value, index: usize, variables: bool) -> Result<Statement, FieldError> {
    let s = v
        .as_object()
        .ok_or_else(|| (String::new(), "a statement must be an object".to_string()))?;
    let name = match s.get("Sid") {
        Some(Value::String(sid)) if !sid.is_empty() => sid.clone(),
        Some(Value::String(_)) | None => format!("#{index}"),
        Some(_) => return Err(("Sid".into(), "must be a string".into())),
    };
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(("Effect".into(), "must be Allow or Deny".into())),
    };
    let (neg, actions) = pair(s, "Action", "NotAction")?.ok_or_else(|| {
        (
            "Action".to_string(),
            "missing Action or NotAction".to_string(),
        )
    })?;
    let actions = Targets {
        negated: neg,
        values: strings_of(actions, "Action")?,
    };
    let resources = pair(s, "Resource", "NotResource")?
        .map(|(neg, v)| {
            strings_of(v, "Resource").map(|values| Targets {
                negated: neg,
                values: values.into_iter().map(|r| literal(r, variables)).collect(),
            })
        })
        .transpose()?;
    let principals = pair(s, "Principal", "NotPrincipal")?
        .map(|(neg, v)| {
            principals_of(v).map(|values| Targets {
                negated: neg,
                values,
            })
        })
        .transpose()?;
    let mut conditions = Vec::new();
    if let Some(block) = s.get("Condition") {
        let block = block
            .as_object()
            .ok_or_else(|| ("Condition".to_string(), "must be an object".to_string()))?;
        for (op, keys) in block {
            let (base, qualifier, if_exists) = parse_operator(op).ok_or_else(|| {
                (
                    format!("Condition.{op}"),
                    "unknown condition operator".to_string(),
                )
            })?;
            let keys = keys.as_object().ok_or_else(|| {
                (
                    format!("Condition.{op}"),
                    "must map keys to values".to_string(),
                )
            })?;
            for (key, values) in keys {
                let values = scalars(values).filter(|v| !v.is_empty()).ok_or_else(|| {
                    (
                        format!("Condition.{op}.{key}"),
                        "values must be strings, booleans or numbers".to_string(),
                    )
                })?;
                conditions.push(Condition {
                    operator: op.clone(),
                    base,
                    qualifier,
                    if_exists,
                    key: key.to_ascii_lowercase(),
                    values: values.into_iter().map(|v| literal(v, variables)).collect(),
                });
            }
        }
    }
    Ok(Statement {
        name,
        effect,
        actions,
        resources,
        principals,
        conditions,
    })
}

fn principals_of(v: &Value) -> Result<Vec<String>, FieldError> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(m) => {
            let mut out = Vec::new();
            for (kind, vals) in m {
                if !matches!(
                    kind.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                ) {
                    return Err((format!("Principal.{kind}"), "unknown principal type".into()));
                }
                out.extend(strings_of(vals, "Principal")?);
            }
            Ok(out)
        }
        _ => Err(("Principal".into(), "must be \"*\" or an object".into())),
    }
}

// ---------------------------------------------------------------- matching

/// A policy string once its `${…}` variables are filled from the request
/// ("IAM policy elements: Variables and tags").
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Text(String),
    /// A variable names a key the request lacks, or a multivalued one, and has no default: the
    /// value is "effectively null" and matches nothing. Holds the key.
    NoValue(String),
    /// A variable names a key whose value exists but is Unknown. Holds the key.
    Unknown(String),
}

/// `${*}` and `${?}` "use where you need an * (asterisk) character" (and a `?`): resolved text
/// holds them as these private-use characters, so that no matcher reads them as wildcards.
const LITERAL_STAR: char = '\u{E000}';
const LITERAL_QUESTION: char = '\u{E001}';

/// Resolved text with `${*}` and `${?}` back as `*` and `?`, for comparisons without wildcards.
pub(crate) fn plain(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains([LITERAL_STAR, LITERAL_QUESTION]) {
        text.replace(LITERAL_STAR, "*")
            .replace(LITERAL_QUESTION, "?")
            .into()
    } else {
        text.into()
    }
}

/// Wildcard match of resolved text, where a `${*}` or `${?}` matches only that character.
pub(crate) fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    if !pattern.contains([LITERAL_STAR, LITERAL_QUESTION]) {
        return glob(pattern, text, ignore_case);
    }
    let text = text
        .replace('*', &LITERAL_STAR.to_string())
        .replace('?', &LITERAL_QUESTION.to_string());
    glob(pattern, &text, ignore_case)
}

/// `key` or `key, 'default'` ("Specifying default values").
fn split_default(var: &str) -> (&str, Option<String>) {
    if let Some((key, rest)) = var.split_once(',') {
        let rest = rest.trim();
        if rest.len() >= 2 && rest.starts_with('\'') && rest.ends_with('\'') {
            return (key.trim(), Some(rest[1..rest.len() - 1].to_string()));
        }
    }
    (var.trim(), None)
}

/// The end of a `${…}` body: the first `}` outside a quoted default.
fn variable_end(body: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in body.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// Fills `${key}`, `${key, 'default'}`, `${*}`, `${?}` and `${$}` in one pass.
pub fn resolve(text: &str, ctx: &Context) -> Resolved {
    if !text.contains("${") {
        return Resolved::Text(text.to_string());
    }
    let mut out = String::new();
    let mut unknown = None;
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = variable_end(after) else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        match &after[..end] {
            "*" => out.push(LITERAL_STAR),
            "?" => out.push(LITERAL_QUESTION),
            "$" => out.push('$'),
            var => {
                let (key, default) = split_default(var);
                match (ctx.get(key), default) {
                    (Some(ContextValue::Values(v)), _) if v.len() == 1 => out.push_str(&v[0]),
                    (Some(ContextValue::Unknown), _) => {
                        unknown.get_or_insert_with(|| key.to_string());
                    }
                    // Absent, or multivalued ("You can't use a multivalued condition key as a
                    // variable"): the default if there is one.
                    (_, Some(d)) => out.push_str(&d),
                    (_, None) => return Resolved::NoValue(key.to_string()),
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match unknown {
        Some(key) => Resolved::Unknown(key),
        None => Resolved::Text(out),
    }
}

fn account_of(principal: &str) -> Option<&str> {
    let acct = principal.split(':').nth(4)?;
    (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())).then_some(acct)
}

/// `arn:…:sts::acct:assumed-role/Role/session` → `arn:…:iam::acct:role/Role`.
fn role_of_session(principal: &str) -> Option<String> {
    let parts: Vec<&str> = principal.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "sts" {
        return None;
    }
    let role = parts[5].strip_prefix("assumed-role/")?.split('/').next()?;
    Some(format!("arn:{}:iam::{}:role/{}", parts[1], parts[4], role))
}

/// `arn:…:iam::acct:<kind>/…`, for `kind` "role" or "user".
fn is_iam(principal: &str, kind: &str) -> bool {
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
enum PrincipalMatch {
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
    fn limited_by(self) -> (bool, bool) {
        match self {
            PrincipalMatch::Direct | PrincipalMatch::Anyone => (false, false),
            PrincipalMatch::User => (false, true),
            _ => (true, true),
        }
    }

    /// How the explanation names what the statement names.
    fn named(self, principal: &str) -> String {
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

fn principal_match(listed: &str, principal: &str) -> PrincipalMatch {
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

struct StatementMatch {
    applies: Tri,
    principal: PrincipalMatch,
    /// Why it did not apply, or which condition made it uncertain.
    reason: Option<String>,
    /// Rules that shaped the match, for the explanation (a variable with no value; NotPrincipal
    /// ignored for a principal with a boundary).
    notes: Vec<String>,
}

/// Does `st` apply to `req`? `has_boundary`: the caller has a permissions boundary.
fn statement_applies(
    st: &Statement,
    req: &Request,
    needs_principal: bool,
    has_boundary: bool,
) -> StatementMatch {
    let no = |reason: String, notes: Vec<String>| StatementMatch {
        applies: Tri::False,
        principal: PrincipalMatch::None,
        reason: Some(reason),
        notes,
    };
    let mut notes = Vec::new();
    let mut applies = Tri::True;
    let mut reason = None;
    let action_hit = st.actions.values.iter().any(|a| glob(a, &req.action, true));
    if action_hit == st.actions.negated {
        return no(format!("action {} not covered", req.action), notes);
    }
    if let Some(r) = &st.resources {
        // A pattern whose variable has no value "will not match any resource".
        let mut hit = Tri::False;
        for p in &r.values {
            match resolve(p, &req.context) {
                Resolved::Text(t) if wildcard_match(&t, &req.resource, false) => {
                    hit = Tri::True;
                    break;
                }
                Resolved::Text(_) if p.contains(LITERAL_VARIABLE) => notes.push(format!(
                    "resource {}: {LITERAL_NOTE}",
                    p.replace(LITERAL_VARIABLE, "${")
                )),
                Resolved::Text(_) => {}
                Resolved::NoValue(key) => notes.push(format!(
                    "resource {p}: ${{{key}}} has no value in the request, so it matches no resource"
                )),
                Resolved::Unknown(key) => {
                    hit = Tri::Unknown;
                    reason = Some(format!("resource {p} depends on the unknown value of {key}"));
                }
            }
        }
        let covered = if r.negated { hit.not() } else { hit };
        match covered {
            Tri::False => return no(format!("resource {} not covered", req.resource), notes),
            Tri::Unknown => applies = Tri::Unknown,
            Tri::True => {}
        }
    }
    let mut principal = PrincipalMatch::Direct;
    if let Some(p) = &st.principals {
        if p.negated {
            // NotPrincipal spares only principals listed exactly (a session needs its own ARN).
            if p.values.iter().any(|v| v == "*" || v == &req.principal) {
                if has_boundary && st.effect == Effect::Deny {
                    // "The NotPrincipal element with a Deny effect will always deny any IAM
                    // principal that has a permissions boundary policy attached, regardless of
                    // the values specified in the NotPrincipal element."
                    notes.push(format!(
                        "NotPrincipal names {}, but spares no principal with a permissions boundary",
                        req.principal
                    ));
                } else {
                    return no(
                        format!("{} is excluded by NotPrincipal", req.principal),
                        notes,
                    );
                }
            }
        } else {
            principal = p
                .values
                .iter()
                .map(|v| principal_match(v, &req.principal))
                .max()
                .unwrap_or(PrincipalMatch::None);
            if principal == PrincipalMatch::None {
                return no(format!("principal {} not named", req.principal), notes);
            }
        }
    } else if needs_principal {
        return no("no Principal in a resource-based statement".into(), notes);
    }
    for c in &st.conditions {
        let note = c.variable_note(&req.context);
        match c.evaluate(&req.context) {
            Tri::True => notes.extend(note.map(|n| format!("condition {} met: {n}", c.describe()))),
            Tri::False => {
                let had = match req.context.get(&c.key) {
                    Some(ContextValue::Values(v)) => format!("request has {v:?}"),
                    _ => "request lacks the key".into(),
                };
                notes.extend(note.map(|n| format!("condition {} not met: {n}", c.describe())));
                return no(format!("condition {} not met ({had})", c.describe()), notes);
            }
            Tri::Unknown => {
                applies = applies.and(Tri::Unknown);
                reason = Some(format!(
                    "condition {} depends on an unknown value",
                    c.describe()
                ));
            }
        }
    }
    StatementMatch {
        applies,
        principal,
        reason,
        notes,
    }
}

// ---------------------------------------------------------------- evaluation

#[derive(Default)]
struct Layer {
    present: bool,
    allow: Option<String>,
    allow_uncertain: Option<String>,
    /// Resource/key layers: how the best allow names the principal.
    grant: Option<PrincipalMatch>,
}

impl Layer {
    /// Present, and no statement allows: a cap (boundary, session policy) that blocks.
    fn blocks(&self) -> bool {
        self.present && self.allow.is_none()
    }
}

fn stmt_name(p: &Policy, s: &Statement) -> String {
    format!("{}/{}", p.name, s.name)
}

/// Evaluates `req` against every policy that applies to it (SPEC §5).
pub fn evaluate(policies: &[Policy], req: &Request) -> Decision {
    evaluate_refs(&policies.iter().collect::<Vec<_>>(), req)
}

/// `evaluate` over borrowed policies (callers combine policies without cloning them).
pub fn evaluate_refs(policies: &[&Policy], req: &Request) -> Decision {
    let mut explanation = Vec::new();
    let mut uncertain = false;
    let has_boundary = policies.iter().any(|p| p.kind == PolicyKind::Boundary);

    // 1. An explicit deny anywhere decides (boundary, session policy and SCP included).
    let mut may_deny: Vec<String> = Vec::new();
    for p in policies {
        let resource_based = matches!(
            p.kind,
            PolicyKind::Resource | PolicyKind::Key | PolicyKind::Rcp
        );
        for s in p.statements.iter().filter(|s| s.effect == Effect::Deny) {
            let m = statement_applies(
                s,
                req,
                resource_based && p.kind != PolicyKind::Rcp,
                has_boundary,
            );
            match m.applies {
                Tri::True => {
                    explanation.extend(
                        m.notes
                            .into_iter()
                            .map(|n| format!("{}: {n}", stmt_name(p, s))),
                    );
                    explanation.push(format!(
                        "{} denies {} on {}",
                        stmt_name(p, s),
                        req.action,
                        req.resource
                    ));
                    return Decision {
                        decision: DecisionKind::ExplicitDeny,
                        decided_by: Some(stmt_name(p, s)),
                        explanation,
                        uncertain: false,
                        may_deny: Vec::new(),
                    };
                }
                Tri::Unknown => {
                    may_deny.push(stmt_name(p, s));
                    explanation.push(format!(
                        "{} may deny: {}",
                        stmt_name(p, s),
                        m.reason.unwrap_or_default()
                    ));
                }
                Tri::False => explanation.extend(
                    m.notes
                        .into_iter()
                        .map(|n| format!("{}: {n}", stmt_name(p, s))),
                ),
            }
        }
    }
    if !may_deny.is_empty() {
        uncertain = true;
    }

    // 2. Allows, layer by layer.
    let mut notes: Vec<String> = Vec::new();
    let mut layer = |kind: PolicyKind| -> Layer {
        let mut l = Layer::default();
        for p in policies.iter().filter(|p| p.kind == kind) {
            l.present = true;
            for s in p.statements.iter().filter(|s| s.effect == Effect::Allow) {
                let needs_principal = matches!(kind, PolicyKind::Resource | PolicyKind::Key);
                let m = statement_applies(s, req, needs_principal, has_boundary);
                notes.extend(m.notes.iter().map(|n| format!("{}: {n}", stmt_name(p, s))));
                match m.applies {
                    Tri::True => {
                        if l.allow.is_none() || Some(m.principal) > l.grant {
                            l.allow = Some(stmt_name(p, s));
                            l.grant = Some(m.principal);
                        }
                    }
                    Tri::Unknown => {
                        l.allow_uncertain.get_or_insert_with(|| stmt_name(p, s));
                    }
                    Tri::False => {}
                }
            }
        }
        l
    };
    let identity = layer(PolicyKind::Identity);
    let resource = layer(PolicyKind::Resource);
    let key = layer(PolicyKind::Key);
    let boundary = layer(PolicyKind::Boundary);
    let session = layer(PolicyKind::Session);
    explanation.extend(notes);

    let deny = |why: String, explanation: &mut Vec<String>, uncertain: bool| {
        explanation.push(why);
        Decision {
            decision: DecisionKind::ImplicitDeny,
            decided_by: None,
            explanation: explanation.clone(),
            uncertain,
            may_deny: may_deny.clone(),
        }
    };

    // 3. Organization guardrails: every SCP level (principal side) and RCP level (resource side).
    for kind in [PolicyKind::Scp, PolicyKind::Rcp] {
        let mut levels: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for p in policies.iter().filter(|p| p.kind == kind) {
            let level = p.level.clone().unwrap_or_else(|| p.name.clone());
            let entry = levels.entry(level).or_default();
            for s in p.statements.iter().filter(|s| s.effect == Effect::Allow) {
                match statement_applies(s, req, false, has_boundary).applies {
                    Tri::True => entry.0 = true,
                    Tri::Unknown => entry.1 = true,
                    Tri::False => {}
                }
            }
        }
        for (level, (allowed, maybe)) in levels {
            if !allowed {
                let what = if kind == PolicyKind::Scp {
                    "SCP"
                } else {
                    "RCP"
                };
                return deny(
                    format!("no {what} at level {level} allows {}", req.action),
                    &mut explanation,
                    uncertain || maybe,
                );
            }
        }
    }

    let principal_account = account_of(&req.principal).map(str::to_string);
    let cross_account = match (&req.resource_account, &principal_account) {
        (Some(r), Some(p)) => r != p,
        _ => false,
    };
    let any_uncertain_allow = identity.allow_uncertain.is_some()
        || resource.allow_uncertain.is_some()
        || key.allow_uncertain.is_some();
    let caps = [
        (&boundary, "permissions boundary"),
        (&session, "session policy"),
    ];
    // The first cap (boundary, then session policy) that does not allow the action, among those
    // that limit this grant.
    let blocking_cap = |limits: (bool, bool)| {
        caps.iter()
            .zip([limits.0, limits.1])
            .find(|((l, _), limited)| *limited && l.blocks())
            .map(|((l, what), _)| (*what, l.allow_uncertain.is_some()))
    };
    let cap_denies = |what: &str, explanation: &mut Vec<String>, maybe: bool| {
        deny(
            format!("the {what} does not allow {}", req.action),
            explanation,
            uncertain || any_uncertain_allow || maybe,
        )
    };
    // The caller's own IAM side: identity policies capped by boundary and session policy.
    let identity_path = |explanation: &mut Vec<String>| -> Result<String, Decision> {
        let Some(id) = identity.allow.clone() else {
            return Err(deny(
                "nothing allows the request".into(),
                explanation,
                uncertain || any_uncertain_allow,
            ));
        };
        match blocking_cap((true, true)) {
            Some((what, maybe)) => Err(cap_denies(what, explanation, maybe)),
            None => Ok(id),
        }
    };
    // A same-account resource-side grant that needs no identity allow: only the caps its
    // principal kind obeys apply; say which caps it passes by.
    let resource_path = |stmt: &str,
                         grant: PrincipalMatch,
                         explanation: &mut Vec<String>|
     -> Result<String, Decision> {
        let limits = grant.limited_by();
        if let Some((what, maybe)) = blocking_cap(limits) {
            explanation.push(format!(
                "{stmt} names {}, so the {what} still limits it",
                grant.named(&req.principal)
            ));
            return Err(cap_denies(what, explanation, maybe));
        }
        for ((l, what), limited) in caps.iter().zip([limits.0, limits.1]) {
            if l.blocks() && !limited {
                explanation.push(format!(
                    "the {what} does not apply: {stmt} names {}",
                    grant.named(&req.principal)
                ));
            }
        }
        Ok(stmt.to_string())
    };

    // 4. Who grants: the key policy for KMS keys; a resource policy; the caller's IAM policies.
    let granted: Result<String, Decision> = if key.present {
        match (&key.allow, key.grant) {
            (None, _) => {
                explanation.push(format!(
                    "no key policy statement allows {} for {}",
                    req.action, req.principal
                ));
                Err(deny(
                    "nothing allows the request".into(),
                    &mut explanation,
                    uncertain || any_uncertain_allow,
                ))
            }
            (Some(k), Some(g)) if g >= PrincipalMatch::Role && !cross_account => {
                resource_path(k, g, &mut explanation)
            }
            (Some(k), _) => {
                // Root delegation (or a cross-account grant): the caller's IAM policies must allow too.
                if identity.allow.is_none() {
                    explanation.push(format!(
                        "{k} delegates to the account's IAM policies, and none allows {}",
                        req.action
                    ));
                }
                identity_path(&mut explanation)
            }
        }
    } else if let (Some(r), Some(g)) = (&resource.allow, resource.grant) {
        let alone = g >= PrincipalMatch::Role && !cross_account;
        if alone && (identity.allow.is_none() || blocking_cap((true, true)).is_some()) {
            resource_path(r, g, &mut explanation)
        } else {
            if identity.allow.is_none() {
                explanation.push(format!(
                    "{r} allows the account or another account's principal; the caller's IAM policies must allow {} too, and none does",
                    req.action
                ));
            }
            identity_path(&mut explanation)
        }
    } else if cross_account {
        explanation.push(if resource.present {
            format!(
                "no resource policy statement allows {} for {}",
                req.action, req.principal
            )
        } else {
            "cross-account access needs a resource policy that allows the caller".into()
        });
        Err(deny(
            "nothing allows the request".into(),
            &mut explanation,
            uncertain || any_uncertain_allow,
        ))
    } else {
        if identity.allow.is_none() {
            explanation.push(format!(
                "no identity policy statement allows {} on {}",
                req.action, req.resource
            ));
        }
        identity_path(&mut explanation)
    };

    match granted {
        Err(d) => d,
        Ok(granted_by) => {
            explanation.push(format!(
                "{granted_by} allows {} on {}",
                req.action, req.resource
            ));
            Decision {
                decision: DecisionKind::Allow,
                decided_by: Some(granted_by),
                explanation,
                uncertain,
                may_deny,
            }
        }
    }
}

// ---------------------------------------------------------------- CASE.json (SPEC §5.1)

/// A case in the shape of the IAM corpus: `{"policies": [...], "request": {...}}`.
pub fn parse_case(case: &Value) -> Result<(Vec<Policy>, Request), PolicyError> {
    let err = |path: &str, reason: &str| PolicyError {
        policy: "case".into(),
        path: path.into(),
        reason: reason.into(),
    };
    let obj = case
        .as_object()
        .ok_or_else(|| err("", "the case must be a JSON object"))?;
    let list = obj
        .get("policies")
        .and_then(Value::as_array)
        .ok_or_else(|| err("policies", "missing or not a list"))?;
    let mut policies = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let path = |f: &str| format!("policies[{i}].{f}");
        let kind: PolicyKind = serde_json::from_value(
            p.get("kind").cloned().unwrap_or(Value::Null),
        )
        .map_err(|_| {
            err(
                &path("kind"),
                "expected identity, resource, key, boundary, scp, rcp or session",
            )
        })?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| err(&path("name"), "missing or not a string"))?;
        let level = match p.get("level") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(err(&path("level"), "must be a string or a number")),
        };
        let doc = p.get("doc").ok_or_else(|| err(&path("doc"), "missing"))?;
        policies.push(Policy::parse(kind, name, level, doc)?);
    }
    let r = obj
        .get("request")
        .and_then(Value::as_object)
        .ok_or_else(|| err("request", "missing or not an object"))?;
    let field = |f: &str| {
        r.get(f)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| err(&format!("request.{f}"), "missing or not a string"))
    };
    let context = match r.get("context") {
        None | Some(Value::Null) => Context::default(),
        Some(Value::Object(m)) => Context::from_json(m).map_err(|e| err("request", &e))?,
        Some(_) => return Err(err("request.context", "must be an object")),
    };
    let request = Request {
        principal: field("principal")?,
        action: field("action")?,
        resource: field("resource")?,
        resource_account: r
            .get("resource_account")
            .and_then(Value::as_str)
            .map(str::to_string),
        context,
    };
    Ok((policies, request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(super) const DOCUMENTED: &str =
        include_str!("../../events/fixtures/iam-policy-cases-documented.json");

    /// The reference corpus (55 cases, expected decisions from AWS's documented logic, copied
    /// into the repo; C51 is unconfirmed there, and "How AWS enforcement code logic evaluates
    /// requests to allow or deny access" now says a role ARN in Principal is matched by the
    /// role's sessions), 10 more documented cases of our own, and 39 cases each taken from an
    /// AWS page named in its `source` (issue 16). A case's `explains`, when given, must appear
    /// in the explanation: the rule that decided it.
    #[test]
    fn every_corpus_case_gets_the_documented_decision() {
        let corpus: Value =
            serde_json::from_str(include_str!("../../events/fixtures/iam-policy-corpus.json"))
                .unwrap();
        let extra: Value = serde_json::from_str(include_str!(
            "../../events/fixtures/iam-policy-cases-extra.json"
        ))
        .unwrap();
        let documented: Value = serde_json::from_str(DOCUMENTED).unwrap();
        let mut failures = Vec::new();
        let mut cases = corpus["cases"].as_array().unwrap().clone();
        assert_eq!(cases.len(), 55);
        cases.extend(extra["cases"].as_array().unwrap().iter().cloned());
        assert_eq!(cases.len(), 65);
        let documented = documented["cases"].as_array().unwrap();
        for case in documented {
            let url = case["source"]["url"].as_str().unwrap_or_default();
            assert!(
                url.starts_with("https://docs.aws.amazon.com/IAM/latest/UserGuide/"),
                "{}: {url}",
                case["id"]
            );
            assert!(case["source"]["says"]
                .as_str()
                .is_some_and(|s| !s.is_empty()));
        }
        cases.extend(documented.iter().cloned());
        assert_eq!(cases.len(), 104);
        for case in &cases {
            let id = case["id"].as_str().unwrap();
            let (policies, request) = parse_case(case).unwrap_or_else(|e| panic!("{id}: {e}"));
            let got = evaluate(&policies, &request);
            let want = &case["expected"];
            let want_kind = match want["decision"].as_str().unwrap() {
                "Allow" => DecisionKind::Allow,
                "ExplicitDeny" => DecisionKind::ExplicitDeny,
                _ => DecisionKind::ImplicitDeny,
            };
            let want_by = want["decided_by"].as_str().map(str::to_string);
            let explained = case["explains"]
                .as_str()
                .is_none_or(|e| got.explanation.iter().any(|line| line.contains(e)));
            if got.decision != want_kind || got.decided_by != want_by || !explained {
                failures.push(format!(
                    "{id} {}: got {:?} by {:?}, want {:?} by {:?} explaining {}; {:?}",
                    case["title"],
                    got.decision,
                    got.decided_by,
                    want_kind,
                    want_by,
                    case["explains"],
                    got.explanation
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }

    fn req(principal: &str, action: &str, resource: &str, context: Value) -> Request {
        Request {
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            resource_account: Some("111122223333".into()),
            context: Context::from_json(context.as_object().unwrap()).unwrap(),
        }
    }

    fn bucket_policy(statements: Value) -> Policy {
        Policy::parse(
            PolicyKind::Resource,
            "bucket",
            None,
            &json!({"Statement": statements}),
        )
        .unwrap()
    }

    #[test]
    fn an_unknown_context_value_makes_the_decision_uncertain() {
        let deny_non_kms = bucket_policy(
            json!([{"Sid": "DenyNonKms", "Effect": "Deny", "Principal": "*",
            "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]),
        );
        let id = Policy::parse(
            PolicyKind::Identity,
            "id",
            None,
            &json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}),
        )
        .unwrap();
        let r = req(
            "arn:aws:iam::111122223333:role/R",
            "s3:PutObject",
            "arn:aws:s3:::b/x",
            json!({"s3:x-amz-server-side-encryption": {"unknown": true}}),
        );
        let d = evaluate(&[id, deny_non_kms], &r);
        assert_eq!(d.decision, DecisionKind::Allow);
        assert!(d.uncertain, "{d:?}");
        assert!(d.explanation[0].contains("may deny"), "{:?}", d.explanation);
    }

    #[test]
    fn explanations_name_the_condition_and_what_the_request_had() {
        let id = Policy::parse(PolicyKind::Identity, "id", None, &json!({"Statement": [{"Sid": "OnlyUsEast", "Effect": "Allow",
            "Action": "s3:PutObject", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}]})).unwrap();
        let d = evaluate(
            &[id],
            &req(
                "arn:aws:iam::111122223333:role/R",
                "s3:PutObject",
                "arn:aws:s3:::b/x",
                json!({"aws:RequestedRegion": "eu-west-1"}),
            ),
        );
        assert_eq!(d.decision, DecisionKind::ImplicitDeny);
        assert!(
            d.explanation
                .iter()
                .any(|e| e.contains("no identity policy statement allows")),
            "{:?}",
            d.explanation
        );
    }

    #[test]
    fn invalid_policies_name_the_field() {
        let cases = [
            (
                json!({"Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]}),
                "Statement[0].Effect",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]}),
                "Statement[0].Action",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:Get*", "Resource": "*"}]}),
                "Statement[0].Action",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringSortOf": {"k": "v"}}}]}),
                "Condition.StringSortOf",
            ),
            (
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Principal": {"Robots": "*"}, "Resource": "*"}]}),
                "Principal.Robots",
            ),
            (json!({"Version": "2012-10-17"}), "Statement"),
            (json!([1]), ""),
        ];
        for (doc, path) in cases {
            let e = Policy::parse(PolicyKind::Identity, "p", None, &doc).unwrap_err();
            assert!(e.path.contains(path), "{doc}: {e}");
        }
        let big = json!({"Statement": [], "pad": "x".repeat(70_000)});
        assert!(Policy::parse(PolicyKind::Identity, "p", None, &big)
            .unwrap_err()
            .reason
            .contains("64 KiB"));
    }

    /// A variable whose value exists but is Unknown leaves the statement Unknown, in a condition
    /// and in a Resource; the decision is then marked uncertain, never silently decided.
    #[test]
    fn a_variable_with_an_unknown_value_makes_the_decision_uncertain() {
        let id = Policy::parse(
            PolicyKind::Identity,
            "id",
            None,
            &json!({"Version": "2012-10-17", "Statement": {"Sid": "AllowGet", "Effect": "Allow",
                "Action": "s3:GetObject", "Resource": "*"}}),
        )
        .unwrap();
        let deny = Policy::parse(
            PolicyKind::Resource,
            "bucket",
            None,
            &json!({"Version": "2012-10-17", "Statement": [{"Sid": "DenyOtherTeams", "Effect": "Deny",
                "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
                "Condition": {"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}}}]}),
        )
        .unwrap();
        let r = |team: Value| {
            req(
                "arn:aws:iam::111122223333:role/R",
                "s3:GetObject",
                "arn:aws:s3:::b/x",
                json!({"s3:ExistingObjectTag/Team": "blue", "aws:PrincipalTag/Team": team}),
            )
        };
        let d = evaluate(&[id.clone(), deny.clone()], &r(json!({"unknown": true})));
        assert_eq!(d.decision, DecisionKind::Allow);
        assert!(d.uncertain, "{d:?}");
        assert_eq!(d.may_deny, vec!["bucket/DenyOtherTeams".to_string()]);
        let d = evaluate(&[id, deny], &r(json!("red")));
        assert_eq!(d.decision, DecisionKind::ExplicitDeny);

        let home = Policy::parse(
            PolicyKind::Identity,
            "id",
            None,
            &json!({"Version": "2012-10-17", "Statement": {"Sid": "Home", "Effect": "Allow",
                "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${aws:PrincipalTag/Team}/*"}}),
        )
        .unwrap();
        let d = evaluate(&[home], &r(json!({"unknown": true})));
        assert_eq!(d.decision, DecisionKind::ImplicitDeny);
        assert!(d.uncertain, "{d:?}");
    }

    #[test]
    fn a_version_iam_does_not_define_is_refused_naming_the_field() {
        for version in [json!("2012-10-18"), json!(2012)] {
            let doc = json!({"Version": version, "Statement": []});
            let e = Policy::parse(PolicyKind::Identity, "p", None, &doc).unwrap_err();
            assert_eq!(e.path, "Version", "{e}");
        }
    }

    #[test]
    fn policy_variables_resolve_from_the_context() {
        let mut ctx = Context::default();
        ctx.set("aws:username", ContextValue::Values(vec!["alice".into()]));
        ctx.set("aws:PrincipalTag/team", ContextValue::Unknown);
        ctx.set(
            "aws:CalledVia",
            ContextValue::Values(vec!["a".into(), "b".into()]),
        );
        let text = |t: &str| Resolved::Text(t.into());
        assert_eq!(
            resolve("home/${aws:username}/*", &ctx),
            text("home/alice/*")
        );
        // `${*}` and `${?}` are the characters themselves, never wildcards.
        let Resolved::Text(special) = resolve("a${*}b${?}${$}", &ctx) else {
            panic!("resolves")
        };
        assert_eq!(plain(&special), "a*b?$");
        assert!(wildcard_match(&special, "a*b?$", false));
        assert!(!wildcard_match(&special, "axxb!$", false));
        assert!(wildcard_match(
            &format!("{special}*"),
            "a*b?$-and-more",
            false
        ));
        assert_eq!(
            resolve("a${missing}", &ctx),
            Resolved::NoValue("missing".into())
        );
        // Key names are case-insensitive; the default only stands in for a value that is absent.
        assert_eq!(resolve("b-${AWS:UserName, 'x'}", &ctx), text("b-alice"));
        assert_eq!(
            resolve("b-${missing, 'company-wide'}", &ctx),
            text("b-company-wide")
        );
        assert_eq!(
            resolve("${aws:PrincipalTag/team, 'x'}", &ctx),
            Resolved::Unknown("aws:PrincipalTag/team".into())
        );
        // "You can't use a multivalued condition key as a variable."
        assert_eq!(
            resolve("${aws:CalledVia}", &ctx),
            Resolved::NoValue("aws:CalledVia".into())
        );
        assert_eq!(resolve("${$}{aws:username}", &ctx), text("${aws:username}"));
        assert_eq!(resolve("open ${ended", &ctx), text("open ${ended"));
    }
}

/// Cross-check against iam-rs 0.8.0 (SPEC §5: the measured runner-up) on generated identity
/// policies: Action/NotAction, Resource/NotResource, wildcards and case rules.
#[cfg(test)]
mod crosscheck {
    use super::*;
    use serde_json::json;

    /// xorshift64*: deterministic cases without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    const ACTION_PATTERNS: [&str; 10] = [
        "s3:PutObject",
        "s3:GetObject",
        "s3:*",
        "s3:Put*",
        "s3:?utObject",
        "*",
        "kms:GenerateDataKey",
        "kms:*",
        "dynamodb:ExportTableToPointInTime",
        "S3:putobject",
    ];
    const RESOURCE_PATTERNS: [&str; 6] = [
        "arn:aws:s3:::export-bucket/*",
        "arn:aws:s3:::export-bucket/AWSDynamoDB/*",
        "arn:aws:s3:::other-bucket/*",
        "*",
        "arn:aws:s3:::export-bucket/AWSDynamoDB/0170?????????-*",
        "arn:aws:kms:us-east-1:111122223333:key/*",
    ];
    const ACTIONS: [&str; 4] = [
        "s3:PutObject",
        "s3:GetObject",
        "kms:GenerateDataKey",
        "dynamodb:ExportTableToPointInTime",
    ];
    const RESOURCES: [&str; 4] = [
        "arn:aws:s3:::export-bucket/AWSDynamoDB/01700000000000-abcdef12/_started",
        "arn:aws:s3:::other-bucket/x",
        "arn:aws:kms:us-east-1:111122223333:key/k1",
        "arn:aws:s3:::Export-Bucket/AWSDynamoDB/x",
    ];

    fn list(rng: &mut Rng, pool: &[&str]) -> Value {
        let n = 1 + rng.next() % 3;
        let items: Vec<&str> = (0..n).map(|_| rng.pick(pool)).collect();
        if items.len() == 1 {
            json!(items[0])
        } else {
            json!(items)
        }
    }

    /// The documented cases (issue 16) that hold identity policies only, run through iam-rs too.
    /// Where they disagree, AWS's documentation decides, and the cases are named: V01, iam-rs
    /// 0.8.0 fills `${…}` in a Resource whatever the Version, where "IAM JSON policy elements:
    /// Version" says that under 2008-10-17 `${aws:username}` is "treated as literal strings in
    /// the policy"; V03, it refuses a policy with no Version, which AWS reads as 2008-10-17;
    /// W02, it does not fill variables in condition values ("IAM policy elements: Variables and
    /// tags" uses `${aws:PrincipalTag/owner}` in a StringEquals value); W14, it reads `${*}` as a
    /// key with no value instead of a literal asterisk (same page, Special characters).
    #[test]
    fn iam_rs_differs_on_documented_identity_cases_only_where_the_docs_say_so() {
        let documented: Value = serde_json::from_str(super::tests::DOCUMENTED).unwrap();
        let mut compared = 0;
        let mut differ = Vec::new();
        for case in documented["cases"].as_array().unwrap() {
            let policies = case["policies"].as_array().unwrap();
            if policies.iter().any(|p| p["kind"] != "identity") {
                continue;
            }
            compared += 1;
            let (ours, request) = parse_case(case).unwrap();
            let ours = evaluate(&ours, &request).decision;
            let mut context = iam_rs::Context::new();
            for (k, v) in case["request"]["context"].as_object().unwrap() {
                context = context.with_string(k.clone(), v.as_str().unwrap());
            }
            let theirs_request = iam_rs::IAMRequest::new_with_context(
                iam_rs::Principal::Aws(iam_rs::PrincipalId::String(request.principal.clone())),
                request.action.clone(),
                iam_rs::Arn::parse(&request.resource).unwrap(),
                context,
            );
            // iam-rs refuses a policy without Version, which AWS reads as 2008-10-17.
            let Ok(theirs_policies) = policies
                .iter()
                .map(|p| iam_rs::IAMPolicy::from_json(&p["doc"].to_string()))
                .collect::<Result<Vec<_>, _>>()
            else {
                differ.push(case["id"].as_str().unwrap().to_string());
                continue;
            };
            let theirs = iam_rs::evaluate_policies(&theirs_policies, &theirs_request);
            let agree = matches!(
                (ours, &theirs),
                (DecisionKind::Allow, Ok(iam_rs::Decision::Allow))
                    | (DecisionKind::ExplicitDeny, Ok(iam_rs::Decision::Deny))
                    | (
                        DecisionKind::ImplicitDeny,
                        Ok(iam_rs::Decision::NotApplicable)
                    )
            );
            if !agree {
                differ.push(case["id"].as_str().unwrap().to_string());
            }
        }
        assert_eq!(compared, 17);
        assert_eq!(differ, ["V01", "V03", "W02", "W14"]);
    }

    #[test]
    fn decisions_agree_with_iam_rs_on_generated_identity_policies() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut differences = Vec::new();
        let cases = 2_000;
        for i in 0..cases {
            let statements: Vec<Value> = (0..1 + rng.next() % 3)
                .map(|j| {
                    let mut s = serde_json::Map::new();
                    s.insert("Sid".into(), json!(format!("S{j}")));
                    s.insert(
                        "Effect".into(),
                        json!(if rng.chance(30) { "Deny" } else { "Allow" }),
                    );
                    let action_key = if rng.chance(20) {
                        "NotAction"
                    } else {
                        "Action"
                    };
                    s.insert(action_key.into(), list(&mut rng, &ACTION_PATTERNS));
                    let resource_key = if rng.chance(15) {
                        "NotResource"
                    } else {
                        "Resource"
                    };
                    s.insert(resource_key.into(), list(&mut rng, &RESOURCE_PATTERNS));
                    Value::Object(s)
                })
                .collect();
            let doc = json!({"Version": "2012-10-17", "Statement": statements});
            let (action, resource) = (rng.pick(&ACTIONS), rng.pick(&RESOURCES));
            let principal = "arn:aws:iam::111122223333:role/DdbExportRole";

            let ours = evaluate(
                &[Policy::parse(PolicyKind::Identity, "id", None, &doc).unwrap()],
                &Request {
                    principal: principal.into(),
                    action: action.into(),
                    resource: resource.into(),
                    resource_account: None,
                    context: Context::default(),
                },
            );
            let theirs_policy = iam_rs::IAMPolicy::from_json(&doc.to_string()).unwrap();
            let theirs_request = iam_rs::IAMRequest::new(
                iam_rs::Principal::Aws(iam_rs::PrincipalId::String(principal.into())),
                action,
                iam_rs::Arn::parse(resource).unwrap(),
            );
            let theirs = iam_rs::evaluate_policy(&theirs_policy, &theirs_request);
            let agree = matches!(
                (ours.decision, &theirs),
                (DecisionKind::Allow, Ok(iam_rs::Decision::Allow))
                    | (DecisionKind::ExplicitDeny, Ok(iam_rs::Decision::Deny))
                    | (
                        DecisionKind::ImplicitDeny,
                        Ok(iam_rs::Decision::NotApplicable)
                    )
            );
            if !agree {
                differences.push(format!(
                    "case {i}: {action} on {resource}: ours {:?}, iam-rs {theirs:?}; {doc}",
                    ours.decision
                ));
            }
        }
        assert!(
            differences.is_empty(),
            "{} of {cases} differ:\n{}",
            differences.len(),
            differences
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
