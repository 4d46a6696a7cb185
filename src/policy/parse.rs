//! Parsing: policy JSON → `Policy` (Version, Statement, Principal, Action, Resource, Condition;
//! docs/diagnosis.md and AWS's "Policy evaluation logic") with the path of the first field that is wrong, and the corpus's CASE.json shape.

#[allow(unused_imports)]
use super::*;

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

pub(super) type FieldError = (String, String);

pub(super) fn strings_of(v: &Value, field: &str) -> Result<Vec<String>, FieldError> {
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

pub(super) fn pair<'a>(
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

pub(super) fn literal(text: String, variables: bool) -> String {
    if variables || !text.contains("${") {
        text
    } else {
        text.replace("${", LITERAL_VARIABLE)
    }
}

pub(super) fn parse_statement(
    v: &Value,
    index: usize,
    variables: bool,
) -> Result<Statement, FieldError> {
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

pub(super) fn principals_of(v: &Value) -> Result<Vec<String>, FieldError> {
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

// ---------------------------------------------------------------- CASE.json (README, "On your laptop: ddb-export-doctor")

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
