//! Which server-side encryption a bucket policy lets an export's objects be written with.
//!
//! Reads only the bucket policy's `Deny` statements that apply to everyone (`Principal: "*"`),
//! cover `s3:PutObject` on the export's objects, and condition on nothing but the SSE headers
//! (`s3:x-amz-server-side-encryption`, `s3:x-amz-server-side-encryption-aws-kms-key-id`).
//! Any other deny (e.g. `aws:SecureTransport` false, which DynamoDB's TLS calls never meet) is
//! not an encryption rule and is left alone. Pure: policy text in, verdict out.

use crate::policy::glob;
use serde_json::Value;

const SSE_KEY: &str = "s3:x-amz-server-side-encryption";
const SSE_KMS_KEY_ID: &str = "s3:x-amz-server-side-encryption-aws-kms-key-id";
/// SSE-C: an export never sends it (S3SseAlgorithm is only AES256 or KMS).
const SSE_C_KEY: &str = "s3:x-amz-server-side-encryption-customer-algorithm";
const DSSE: &str = "aws:kms:dsse";
/// Bucket policies are at most 20 KB; anything larger is not a bucket policy.
const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The SSE headers one PutObject carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseHeaders {
    /// `AES256`, `aws:kms`, or `None` when no header is sent.
    pub algorithm: Option<String>,
    pub kms_key_id: Option<String>,
}

impl SseHeaders {
    pub fn aes256() -> Self {
        Self {
            algorithm: Some("AES256".into()),
            kms_key_id: None,
        }
    }
    pub fn kms(key: Option<&str>) -> Self {
        Self {
            algorithm: Some("aws:kms".into()),
            kms_key_id: key.map(str::to_string),
        }
    }
}

/// A deny statement that decided, named `<Sid>` or `#<index>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyingStatement {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SseRules {
    statements: Vec<SseStatement>,
}

#[derive(Debug, Clone, PartialEq)]
struct SseStatement {
    name: String,
    conditions: Vec<Cond>,
}

#[derive(Debug, Clone, PartialEq)]
struct Cond {
    op: Op,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseRulesError {
    #[error("bucket policy is larger than 20 KB")]
    TooLarge,
    #[error("bucket policy is not valid JSON: {0}")]
    NotJson(String),
    #[error("bucket policy has no Statement")]
    NoStatement,
}

impl SseRules {
    /// The SSE deny rules that apply to PutObject of `object_arn`.
    pub fn from_policy(policy: &str, object_arn: &str) -> Result<Self, SseRulesError> {
        if policy.len() > MAX_POLICY_BYTES {
            return Err(SseRulesError::TooLarge);
        }
        let doc: Value =
            serde_json::from_str(policy).map_err(|e| SseRulesError::NotJson(e.to_string()))?;
        Self::from_document(policy, &doc, object_arn)
    }

    /// `from_policy` for a document the caller has already parsed from `policy`.
    pub fn from_document(
        policy: &str,
        doc: &Value,
        object_arn: &str,
    ) -> Result<Self, SseRulesError> {
        if policy.len() > MAX_POLICY_BYTES {
            return Err(SseRulesError::TooLarge);
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(SseRulesError::NoStatement),
        };
        let mut rules = Vec::new();
        for (index, st) in statements.into_iter().enumerate() {
            if let Some(rule) = sse_statement(st, index, object_arn) {
                rules.push(rule);
            }
        }
        Ok(Self { statements: rules })
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The deny statements a PutObject with these headers would meet.
    pub fn denials(&self, headers: &SseHeaders) -> Vec<DenyingStatement> {
        self.statements
            .iter()
            .filter(|s| s.conditions.iter().all(|c| c.matches(headers)))
            .map(|s| DenyingStatement {
                name: s.name.clone(),
            })
            .collect()
    }

    /// Key ARNs the policy pins with a `StringNotEquals`/`StringNotLike` on the key-id header.
    pub fn pinned_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .statements
            .iter()
            .flat_map(|s| &s.conditions)
            .filter(|c| {
                c.key == SSE_KMS_KEY_ID && matches!(c.op, Op::StringNotEquals | Op::StringNotLike)
            })
            .flat_map(|c| c.values.iter().filter(|v| !v.contains('*')).cloned())
            .collect();
        keys.dedup();
        keys
    }

    /// The encryption the rules ask for that an export cannot send (DSSE-KMS, SSE-C), if any
    /// statement names one.
    pub fn unsendable_requirement(&self) -> Option<&'static str> {
        let conditions = || self.statements.iter().flat_map(|s| &s.conditions);
        if conditions().any(|c| c.key == SSE_C_KEY) {
            Some("SSE-C (customer-provided keys)")
        } else if conditions().any(|c| {
            c.key == SSE_KEY
                && matches!(c.op, Op::StringNotEquals | Op::StringNotLike)
                && c.values.iter().any(|v| v == DSSE)
        }) {
            Some("DSSE-KMS (aws:kms:dsse)")
        } else {
            None
        }
    }
}

impl Cond {
    fn matches(&self, headers: &SseHeaders) -> bool {
        let actual = match self.key.as_str() {
            SSE_KEY => headers.algorithm.as_deref(),
            SSE_C_KEY => None,
            _ => headers.kms_key_id.as_deref(),
        };
        match (self.op, actual) {
            (Op::Null, value) => {
                let want_null = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
                value.is_none() == want_null
            }
            (_, None) if self.if_exists => true,
            (Op::StringEquals | Op::StringLike, None) => false,
            (Op::StringNotEquals | Op::StringNotLike, None) => true,
            (Op::StringEquals, Some(v)) => self.values.iter().any(|x| x == v),
            (Op::StringNotEquals, Some(v)) => !self.values.iter().any(|x| x == v),
            (Op::StringLike, Some(v)) => self.values.iter().any(|x| glob(x, v, false)),
            (Op::StringNotLike, Some(v)) => !self.values.iter().any(|x| glob(x, v, false)),
        }
    }
}

fn sse_statement(st: &Value, index: usize, object_arn: &str) -> Option<SseStatement> {
    let name = st
        .get("Sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{index}"));
    if st.get("Effect").and_then(Value::as_str) != Some("Deny") || !principal_is_everyone(st) {
        return None;
    }
    let actions = strings(st.get("Action")?);
    if !actions.iter().any(|a| glob(a, "s3:PutObject", true)) {
        return None;
    }
    let resources = strings(st.get("Resource")?);
    if !resources.iter().any(|r| glob(r, object_arn, false)) {
        return None;
    }
    let conditions = parse_conditions(st.get("Condition")?)?;
    Some(SseStatement { name, conditions })
}

fn principal_is_everyone(st: &Value) -> bool {
    match st.get("Principal") {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(m)) => m
            .get("AWS")
            .is_some_and(|v| strings(v).iter().any(|p| p == "*")),
        _ => false,
    }
}

/// `None` when any condition is about something other than the SSE headers.
fn parse_conditions(block: &Value) -> Option<Vec<Cond>> {
    let mut out = Vec::new();
    for (op_name, keys) in block.as_object()? {
        let (base, if_exists) = match op_name.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (op_name.as_str(), false),
        };
        let op = match base {
            "StringEquals" => Op::StringEquals,
            "StringNotEquals" => Op::StringNotEquals,
            "StringLike" => Op::StringLike,
            "StringNotLike" => Op::StringNotLike,
            "Null" => Op::Null,
            _ => return None,
        };
        for (key, values) in keys.as_object()? {
            let key = key.to_ascii_lowercase();
            if key != SSE_KEY && key != SSE_KMS_KEY_ID && key != SSE_C_KEY {
                return None;
            }
            out.push(Cond {
                op,
                if_exists,
                key,
                values: strings(values),
            });
        }
    }
    (!out.is_empty()).then_some(out)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(list) => list.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OBJ: &str =
        "arn:aws:s3:::amzn-s3-demo-bucket/exports/AWSDynamoDB/01795508400000-9f8e7d6c/_started";

    fn rules(statements: Value) -> SseRules {
        let policy = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        SseRules::from_policy(&policy, OBJ).unwrap()
    }

    fn require_kms() -> Value {
        json!({"Sid": "DenyNonKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
               "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
               "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}})
    }

    #[test]
    fn kms_requirement_denies_aes256_and_no_header() {
        let r = rules(json!([require_kms()]));
        assert_eq!(r.denials(&SseHeaders::aes256())[0].name, "DenyNonKms");
        assert_eq!(
            r.denials(&SseHeaders {
                algorithm: None,
                kms_key_id: None
            })
            .len(),
            1
        );
        assert!(r.denials(&SseHeaders::kms(None)).is_empty());
    }

    #[test]
    fn deny_insecure_transport_is_not_an_sse_rule() {
        let r = rules(
            json!([{"Sid": "TLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::amzn-s3-demo-bucket", "arn:aws:s3:::amzn-s3-demo-bucket/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]),
        );
        assert!(r.is_empty());
        assert!(r.denials(&SseHeaders::aes256()).is_empty());
    }

    #[test]
    fn aes256_requirement_and_null_check() {
        let r = rules(json!([
            {"Sid": "OnlyAes", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["s3:Put*"],
             "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/exports/*",
             "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
             "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}
        ]));
        assert!(r.denials(&SseHeaders::aes256()).is_empty());
        assert_eq!(r.denials(&SseHeaders::kms(None))[0].name, "OnlyAes");
        let none = r.denials(&SseHeaders {
            algorithm: None,
            kms_key_id: None,
        });
        assert_eq!(none.len(), 2);
        assert_eq!(none[1].name, "#1");
    }

    #[test]
    fn pinned_key_is_found_and_enforced() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let r = rules(json!([require_kms(),
            {"Sid": "PinKey", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
             "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/*",
             "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}}}]));
        assert_eq!(r.pinned_keys(), vec![key.to_string()]);
        assert!(r.denials(&SseHeaders::kms(Some(key))).is_empty());
        assert_eq!(
            r.denials(&SseHeaders::kms(Some(
                "arn:aws:kms:us-east-1:111122223333:key/other"
            )))[0]
                .name,
            "PinKey"
        );
    }

    #[test]
    fn statements_for_other_principals_resources_or_effects_are_ignored() {
        let mut other_bucket = require_kms();
        other_bucket["Resource"] = json!("arn:aws:s3:::another-bucket/*");
        let mut named = require_kms();
        named["Principal"] = json!({"AWS": "arn:aws:iam::444455556666:role/Other"});
        let mut allow = require_kms();
        allow["Effect"] = json!("Allow");
        let r = rules(json!([other_bucket, named, allow]));
        assert!(r.is_empty());
    }

    #[test]
    fn malformed_and_oversized_policies_are_errors() {
        assert!(matches!(
            SseRules::from_policy("{", OBJ),
            Err(SseRulesError::NotJson(_))
        ));
        assert_eq!(
            SseRules::from_policy("{}", OBJ),
            Err(SseRulesError::NoStatement)
        );
        let big = format!(
            "{{\"Statement\": [], \"pad\": \"{}\"}}",
            "x".repeat(21 * 1024)
        );
        assert_eq!(
            SseRules::from_policy(&big, OBJ),
            Err(SseRulesError::TooLarge)
        );
        // A single statement object (not a list) is valid.
        let one = json!({"Statement": require_kms()}).to_string();
        assert!(!SseRules::from_policy(&one, OBJ).unwrap().is_empty());
    }
}
