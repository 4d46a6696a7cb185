//! PATCH_KEY_POLICY, the pure part (docs/safety.md, "Key-policy patch"): the only statements this function may add to a
//! key policy, and the Sid-keyed merge that adds or replaces one of them and leaves every other
//! statement exactly as it was.

use crate::arn::is_account_id;
use crate::model::{KeyPatch, PatchPurpose};
use crate::policy::{Policy, PolicyKind};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// KMS's limit for a key policy document.
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
pub const EXPORTER_SID_PREFIX: &str = "DdbExportRemediatorExporter-";
pub const CONSUMER_SID_PREFIX: &str = "DdbExportRemediatorCrossAccountDecrypt-";

const EXPORTER_ACTIONS: [&str; 2] = ["kms:GenerateDataKey", "kms:Decrypt"];
const CONSUMER_ACTIONS: [&str; 2] = ["kms:Decrypt", "kms:DescribeKey"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the key policy does not parse: {0}")]
    Unparseable(String),
    #[error(
        "the merged key policy would be {bytes} bytes, over KMS's {MAX_POLICY_BYTES}-byte limit"
    )]
    TooLarge { bytes: usize },
    #[error("refused to write this statement: {0}")]
    Unsafe(String),
}

fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An IAM role or user ARN: the only principals taken from outside the allow-list.
fn is_role_or_user(arn: &str) -> bool {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("iam"), Some(""), Some(acct), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    is_account_id(acct)
        && (resource.starts_with("role/") || resource.starts_with("user/"))
        && !arn.contains('*')
        && !arn.contains('?')
}

/// The exporter's statement: only for an IAM role or user ARN (never an account, a session or
/// a service), and only for use through S3 in the table's region.
pub fn exporter_patch(key_arn: &str, grantee: &str, region: &str) -> Result<KeyPatch, PatchError> {
    if !is_role_or_user(grantee) {
        return Err(PatchError::Unsafe(format!(
            "{grantee} is not an IAM role or user ARN; an exporter grant names exactly one role or user"
        )));
    }
    let sid = format!("{EXPORTER_SID_PREFIX}{}", short_hash(grantee));
    let statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": grantee},
        "Action": EXPORTER_ACTIONS,
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}},
    });
    Ok(KeyPatch {
        key_arn: key_arn.to_string(),
        purpose: PatchPurpose::Exporter,
        sid,
        grantees: vec![grantee.to_string()],
        statement,
    })
}

/// An allow-list entry as a principal: account ids become the account's root ARN.
pub fn principal_of(entry: &str, partition: &str) -> String {
    if is_account_id(entry) {
        format!("arn:{partition}:iam::{entry}:root")
    } else {
        entry.to_string()
    }
}

/// The consumers' statement, one per key (a changed allow-list replaces it). `consumers` are
/// DECRYPT_PRINCIPALS entries; nothing else may be named.
pub fn consumer_patch(
    key_arn: &str,
    consumers: &[String],
    partition: &str,
    region: &str,
) -> Result<KeyPatch, PatchError> {
    let mut grantees: Vec<String> = consumers
        .iter()
        .map(|c| principal_of(c, partition))
        .collect();
    grantees.sort();
    grantees.dedup();
    if grantees.is_empty() {
        return Err(PatchError::Unsafe(
            "DECRYPT_PRINCIPALS names no consumer for this destination".into(),
        ));
    }
    if let Some(bad) = grantees
        .iter()
        .find(|g| !(is_role_or_user(g) || is_root(g)))
    {
        return Err(PatchError::Unsafe(format!(
            "{bad} is neither an account nor an IAM role or user ARN"
        )));
    }
    let sid = format!("{CONSUMER_SID_PREFIX}{}", short_hash(key_arn));
    let principal = if grantees.len() == 1 {
        json!(grantees[0])
    } else {
        json!(grantees)
    };
    let statement = json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": CONSUMER_ACTIONS,
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}},
    });
    Ok(KeyPatch {
        key_arn: key_arn.to_string(),
        purpose: PatchPurpose::ConsumerDecrypt,
        sid,
        grantees,
        statement,
    })
}

fn is_root(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", acct, "root"] if is_account_id(acct))
}

fn strings(v: Option<&Value>) -> Option<Vec<&str>> {
    match v? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// The last line of defence, run on every statement before it is merged: one of our Sids,
/// Allow, exactly the actions of its purpose, principals only from `allowed`, no wildcard.
pub fn check_statement(patch: &KeyPatch, allowed: &[String]) -> Result<(), PatchError> {
    let unsafe_ = |why: String| Err(PatchError::Unsafe(why));
    let Some(st) = patch.statement.as_object() else {
        return unsafe_("the statement is not an object".into());
    };
    let expected_actions: &[&str] = match patch.purpose {
        PatchPurpose::Exporter => &EXPORTER_ACTIONS,
        PatchPurpose::ConsumerDecrypt => &CONSUMER_ACTIONS,
    };
    let prefix = match patch.purpose {
        PatchPurpose::Exporter => EXPORTER_SID_PREFIX,
        PatchPurpose::ConsumerDecrypt => CONSUMER_SID_PREFIX,
    };
    if st.get("Sid").and_then(Value::as_str) != Some(patch.sid.as_str())
        || !patch.sid.starts_with(prefix)
    {
        return unsafe_(format!("Sid must be {prefix}<hash>"));
    }
    if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return unsafe_("only Allow statements are added".into());
    }
    for field in ["NotAction", "NotPrincipal", "NotResource"] {
        if st.contains_key(field) {
            return unsafe_(format!("{field} is never written"));
        }
    }
    let actions = strings(st.get("Action")).unwrap_or_default();
    if actions.is_empty()
        || actions.iter().any(|a| {
            a.contains('*')
                || !a.starts_with("kms:")
                || a.len() <= 4
                || !expected_actions.contains(a)
        })
    {
        return unsafe_(format!(
            "actions {actions:?} are not exactly {expected_actions:?}"
        ));
    }
    let principals = match st.get("Principal") {
        Some(Value::Object(p)) if p.len() == 1 => strings(p.get("AWS")).unwrap_or_default(),
        _ => Vec::new(),
    };
    if principals.is_empty() {
        return unsafe_("the principal must be {\"AWS\": [ARNs]}".into());
    }
    for p in &principals {
        if p.contains('*') || p.contains('?') {
            return unsafe_(format!("wildcard principal {p:?}"));
        }
        if !allowed.iter().any(|a| a == p) || !patch.grantees.iter().any(|g| g == p) {
            return unsafe_(format!("{p} is not an allowed grantee"));
        }
    }
    Ok(())
}

/// The merge's answer: the policy to write, and whether it differs from the one read.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub after: String,
    pub changed: bool,
}

fn parse_object(text: &str) -> Result<Map<String, Value>, PatchError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(PatchError::Unparseable("not a JSON object".into())),
        Err(e) => Err(PatchError::Unparseable(e.to_string())),
    }
}

/// Adds `patch.statement`, or replaces the statement with its Sid; nothing else changes (key
/// order included). Refuses a policy that does not parse, an unsafe statement, and a result
/// over 32 KiB. `allowed` are the grantees this deployment may name.
pub fn merge(before: &str, patch: &KeyPatch, allowed: &[String]) -> Result<Merged, PatchError> {
    check_statement(patch, allowed)?;
    Policy::parse_text(PolicyKind::Key, "key-policy", before)
        .map_err(|e| PatchError::Unparseable(e.to_string()))?;
    let mut doc = parse_object(before)?;
    let mut statements = match doc.remove("Statement") {
        Some(Value::Array(items)) => items,
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(PatchError::Unparseable("no Statement".into())),
    };
    let ours = |s: &Value| s.get("Sid").and_then(Value::as_str) == Some(patch.sid.as_str());
    match statements.iter().position(ours) {
        Some(i) if statements[i] == patch.statement => {
            return Ok(Merged {
                after: before.to_string(),
                changed: false,
            })
        }
        Some(i) => {
            statements[i] = patch.statement.clone();
            // A duplicate Sid would make KMS refuse the policy; keep the first, drop our extras.
            let mut seen = false;
            statements.retain(|s| !ours(s) || !std::mem::replace(&mut seen, true));
        }
        None => statements.push(patch.statement.clone()),
    }
    // Statement back where it was, so a reviewer's diff shows one statement.
    let mut out = Map::new();
    let mut placed = false;
    for (k, v) in parse_object(before)? {
        if k == "Statement" {
            out.insert(k, Value::Array(std::mem::take(&mut statements)));
            placed = true;
        } else {
            out.insert(k, v);
        }
    }
    if !placed {
        out.insert("Statement".into(), Value::Array(statements));
    }
    let after = serde_json::to_string_pretty(&Value::Object(out))
        .map_err(|e| PatchError::Unparseable(e.to_string()))?;
    if after.len() > MAX_POLICY_BYTES {
        return Err(PatchError::TooLarge { bytes: after.len() });
    }
    Ok(Merged {
        after,
        changed: true,
    })
}

/// The policy read back (`now`) holds what we wrote (`wrote`, the merge of the policy before
/// and our statement) with statements others only *added*: the same document apart from its
/// `Statement` list, every statement we wrote still there exactly, and no other statement with
/// our `sid`. This is what two patches of one key at once leave when the second one read the
/// first one's policy: neither change is lost, nothing of the policy before is gone, so our
/// change counts as applied. A removed or edited statement is a real conflict: false.
pub fn holds_what_we_wrote(now: &str, wrote: &str, sid: &str) -> bool {
    let (Ok(mut now), Ok(mut wrote)) = (parse_object(now), parse_object(wrote)) else {
        return false;
    };
    let list = |doc: &mut Map<String, Value>| match doc.remove("Statement") {
        Some(Value::Array(items)) => Some(items),
        Some(single @ Value::Object(_)) => Some(vec![single]),
        _ => None,
    };
    let (Some(now_statements), Some(wrote_statements)) = (list(&mut now), list(&mut wrote)) else {
        return false;
    };
    if now != wrote {
        return false;
    }
    let ours = |s: &Value| s.get("Sid").and_then(Value::as_str) == Some(sid);
    let Some(our_statement) = wrote_statements.iter().find(|s| ours(s)) else {
        return false;
    };
    // Each statement we wrote, matched against a distinct one read back.
    let mut unmatched: Vec<&Value> = now_statements.iter().collect();
    for statement in &wrote_statements {
        match unmatched.iter().position(|s| *s == statement) {
            Some(i) => {
                unmatched.swap_remove(i);
            }
            None => return false,
        }
    }
    // What remains was added by others; none of it may reuse our Sid (or replace our grant).
    !unmatched.iter().any(|s| ours(s) && *s != our_statement)
}

/// Two policy texts say the same (KMS may reformat what it stores).
pub fn same_policy(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const ROLE: &str = "arn:aws:iam::111122223333:role/DataPipeline";

    fn base_policy() -> String {
        serde_json::to_string_pretty(&json!({
            "Version": "2012-10-17",
            "Id": "key-consolepolicy-3",
            "Statement": [{
                "Sid": "KeyAdmins", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111122223333:role/KeyAdmin"},
                "Action": "kms:*", "Resource": "*"
            }]
        }))
        .unwrap()
    }

    fn exporter() -> KeyPatch {
        exporter_patch(KEY, ROLE, "us-east-1").unwrap()
    }

    #[test]
    fn exporter_statement_adds_once_and_keeps_the_rest() {
        let before = base_policy();
        let first = merge(&before, &exporter(), &[ROLE.into()]).unwrap();
        assert!(first.changed);
        let doc: Value = serde_json::from_str(&first.after).unwrap();
        let sts = doc["Statement"].as_array().unwrap();
        assert_eq!(sts.len(), 2);
        assert_eq!(sts[0]["Sid"], "KeyAdmins");
        assert_eq!(
            sts[1]["Action"],
            json!(["kms:GenerateDataKey", "kms:Decrypt"])
        );
        assert_eq!(
            sts[1]["Condition"]["StringEquals"]["kms:ViaService"],
            "s3.us-east-1.amazonaws.com"
        );
        // Key order is kept: Version, Id, Statement.
        assert!(first.after.find("\"Version\"") < first.after.find("\"Id\""));
        let second = merge(&first.after, &exporter(), &[ROLE.into()]).unwrap();
        assert!(!second.changed);
        assert_eq!(second.after, first.after);
    }

    #[test]
    fn a_changed_statement_with_our_sid_is_replaced_not_duplicated() {
        let mut old = exporter();
        old.statement["Condition"]["StringEquals"]["kms:ViaService"] =
            json!("s3.eu-west-1.amazonaws.com");
        let with_old = merge(&base_policy(), &old, &[ROLE.into()]).unwrap().after;
        let merged = merge(&with_old, &exporter(), &[ROLE.into()]).unwrap();
        assert!(merged.changed);
        let doc: Value = serde_json::from_str(&merged.after).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        assert!(merged.after.contains("s3.us-east-1.amazonaws.com"));
    }

    #[test]
    fn only_role_or_user_arns_can_be_exporter_grantees() {
        for bad in [
            "arn:aws:iam::111122223333:root",
            "111122223333",
            "*",
            "arn:aws:sts::111122223333:assumed-role/DataPipeline/session",
            "arn:aws:iam::111122223333:role/*",
            "dynamodb.amazonaws.com",
        ] {
            assert!(
                matches!(
                    exporter_patch(KEY, bad, "us-east-1"),
                    Err(PatchError::Unsafe(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn unsafe_statements_are_refused_whatever_built_them() {
        let allowed = [ROLE.to_string()];
        let mut cases = Vec::new();
        for (field, value) in [
            ("Action", json!("kms:*")),
            ("Action", json!(["kms:GenerateDataKey", "kms:"])),
            ("Action", json!(["kms:GenerateDataKey", "kms:PutKeyPolicy"])),
            ("Principal", json!("*")),
            ("Principal", json!({"AWS": "*"})),
            (
                "Principal",
                json!({"AWS": "arn:aws:iam::444455556666:root"}),
            ),
            ("Effect", json!("Deny")),
            ("NotAction", json!("kms:Encrypt")),
        ] {
            let mut p = exporter();
            p.statement[field] = value;
            cases.push(p);
        }
        for p in cases {
            let err = merge(&base_policy(), &p, &allowed).unwrap_err();
            assert!(matches!(err, PatchError::Unsafe(_)), "{:?}", p.statement);
        }
    }

    #[test]
    fn unparseable_and_oversized_policies_are_refused() {
        assert!(matches!(
            merge("{not json", &exporter(), &[ROLE.into()]),
            Err(PatchError::Unparseable(_))
        ));
        let filler: Vec<Value> = (0..200)
            .map(|i| {
                json!({"Sid": format!("S{i}"), "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::111122223333:role/R{i:04}")},
                "Action": "kms:Decrypt", "Resource": "*"})
            })
            .collect();
        let big =
            serde_json::to_string(&json!({"Version": "2012-10-17", "Statement": filler})).unwrap();
        assert!(big.len() < MAX_POLICY_BYTES);
        assert!(matches!(
            merge(&big, &exporter(), &[ROLE.into()]),
            Err(PatchError::TooLarge { .. })
        ));
    }

    #[test]
    fn consumer_statement_names_only_the_allow_list() {
        let allow = vec![
            "444455556666".to_string(),
            "arn:aws:iam::444455556666:role/Analytics".to_string(),
        ];
        let p = consumer_patch(KEY, &allow, "aws", "us-east-1").unwrap();
        assert_eq!(
            p.grantees,
            vec![
                "arn:aws:iam::444455556666:role/Analytics",
                "arn:aws:iam::444455556666:root"
            ]
        );
        assert_eq!(
            p.statement["Action"],
            json!(["kms:Decrypt", "kms:DescribeKey"])
        );
        let merged = merge(&base_policy(), &p, &p.grantees.clone()).unwrap();
        assert!(merged.changed);
        assert!(consumer_patch(KEY, &[], "aws", "us-east-1").is_err());
    }

    #[test]
    fn a_single_statement_object_is_accepted() {
        let single = r#"{"Version":"2012-10-17","Statement":{"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/KeyAdmin"},"Action":"kms:*","Resource":"*"}}"#;
        let merged = merge(single, &exporter(), &[ROLE.into()]).unwrap();
        let doc: Value = serde_json::from_str(&merged.after).unwrap();
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
    }

    // Generated key policies for the properties of docs/safety.md, "Key-policy patch".
    fn arb_statement() -> impl Strategy<Value = Value> {
        (
            "[A-Za-z0-9]{1,12}",
            prop::bool::ANY,
            prop::collection::vec("kms:[A-Z][A-Za-z]{2,16}|kms:\\*|\\*", 1..4),
            prop::sample::select(vec![
                json!({"AWS": "arn:aws:iam::111122223333:root"}),
                json!({"AWS": ["arn:aws:iam::111122223333:role/A", "AROAEXAMPLEUNIQUEID"]}),
                json!("*"),
                json!({"Service": "s3.amazonaws.com"}),
            ]),
        )
            .prop_map(|(sid, allow, actions, principal)| {
                json!({"Sid": sid, "Effect": if allow {"Allow"} else {"Deny"},
                       "Principal": principal, "Action": actions, "Resource": "*"})
            })
    }

    fn arb_policy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(arb_statement(), 0..30),
            prop::bool::ANY,
        )
            .prop_map(|(statements, pretty)| {
                let doc = json!({"Version": "2012-10-17", "Statement": statements});
                if pretty {
                    serde_json::to_string_pretty(&doc).unwrap()
                } else {
                    serde_json::to_string(&doc).unwrap()
                }
            })
    }

    fn arb_patch() -> impl Strategy<Value = (KeyPatch, Vec<String>)> {
        prop_oneof![
            "[A-Za-z]{1,20}".prop_map(|name| {
                let role = format!("arn:aws:iam::111122223333:role/{name}");
                (exporter_patch(KEY, &role, "us-east-1").unwrap(), vec![role])
            }),
            prop::collection::vec("[0-9]{12}", 1..4).prop_map(|accounts| {
                let p = consumer_patch(KEY, &accounts, "aws", "us-east-1").unwrap();
                let allowed = p.grantees.clone();
                (p, allowed)
            }),
        ]
    }

    fn statements(text: &str) -> Vec<Value> {
        let doc: Value = serde_json::from_str(text).unwrap();
        match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        }
    }

    #[test]
    fn a_policy_with_statements_only_added_by_others_holds_what_we_wrote() {
        let policy = base_policy();
        let ours = merge(&policy, &exporter(), &[ROLE.into()]).unwrap().after;
        let other =
            exporter_patch(KEY, "arn:aws:iam::111122223333:role/Other", "us-east-1").unwrap();
        assert_ne!(other.sid, exporter().sid);
        let allowed = [
            ROLE.to_string(),
            "arn:aws:iam::111122223333:role/Other".into(),
        ];
        let both = merge(&ours, &other, &allowed).unwrap().after;
        assert!(holds_what_we_wrote(&ours, &ours, &exporter().sid));
        assert!(holds_what_we_wrote(&both, &ours, &exporter().sid));
        // The other incident's write without ours (a lost update): ours is missing.
        let theirs_only = merge(&policy, &other, &allowed).unwrap().after;
        assert!(!holds_what_we_wrote(&theirs_only, &ours, &exporter().sid));
        // A statement of the policy before edited: a real conflict.
        let edited = both.replace("role/KeyAdmin\"", "role/SecurityTeam\"");
        assert_ne!(edited, both);
        assert!(!holds_what_we_wrote(&edited, &ours, &exporter().sid));
        // Another statement under our Sid: not ours.
        let mut doc: Value = serde_json::from_str(&ours).unwrap();
        let mut twin = exporter().statement;
        twin["Action"] = json!("kms:*");
        doc["Statement"].as_array_mut().unwrap().push(twin);
        assert!(!holds_what_we_wrote(
            &doc.to_string(),
            &ours,
            &exporter().sid
        ));
        // Another field of the document changed, or unreadable text.
        let renamed = ours.replace("key-consolepolicy-3", "other-id");
        assert!(!holds_what_we_wrote(&renamed, &ours, &exporter().sid));
        assert!(!holds_what_we_wrote("not json", &ours, &exporter().sid));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn merge_is_idempotent_keeps_others_and_grants_only_the_allow_list(
            policy in arb_policy(),
            (patch, allowed) in arb_patch(),
        ) {
            let once = merge(&policy, &patch, &allowed).unwrap();
            prop_assert!(once.after.len() <= MAX_POLICY_BYTES);
            let twice = merge(&once.after, &patch, &allowed).unwrap();
            prop_assert!(!twice.changed);
            prop_assert_eq!(&twice.after, &once.after);

            let before: Vec<Value> = statements(&policy);
            let after: Vec<Value> = statements(&once.after);
            let is_ours = |s: &Value| s.get("Sid").and_then(Value::as_str) == Some(patch.sid.as_str());
            let others_before: Vec<&Value> = before.iter().filter(|s| !is_ours(s)).collect();
            let others_after: Vec<&Value> = after.iter().filter(|s| !is_ours(s)).collect();
            prop_assert_eq!(others_before, others_after);
            let ours: Vec<&Value> = after.iter().filter(|s| is_ours(s)).collect();
            prop_assert_eq!(ours.len(), 1);
            prop_assert_eq!(ours[0], &patch.statement);
            for p in strings(ours[0]["Principal"].get("AWS")).unwrap() {
                prop_assert!(allowed.iter().any(|a| a == p));
            }
        }

        #[test]
        fn merge_never_panics_on_arbitrary_text(text in ".{0,200}") {
            let _ = merge(&text, &exporter(), &[ROLE.into()]);
        }
    }
}
