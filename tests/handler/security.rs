//! Security checks that run in `make test` (docs/safety.md, "Hardening"): the template grants `*` resources only
//! for actions without resource-level permissions; logs carry no policy documents, table data
//! or credentials (the compiled function's output is checked in `runtime.rs` and here).

use std::collections::BTreeSet;

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap()
}

/// The function's inline policies: from its `Policies:` to the next resource. (The key and
/// topic policies elsewhere in the template are resource policies: their `*` is that resource.)
fn function_policies(text: &str) -> &str {
    let start = text
        .find("\n      Policies:\n")
        .expect("the function's Policies");
    let rest = &text[start + 1..];
    let end = rest
        .match_indices("\n  ")
        .find(|(i, _)| {
            let line = &rest[i + 1..];
            !line.starts_with("   ") && line[2..].starts_with(|c: char| c.is_ascii_alphabetic())
        })
        .map(|(i, _)| i)
        .or_else(|| rest.find("\nOutputs:"))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The statements of the function's inline policies: (Sid, actions, resource lines).
fn statements(text: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let mut field = "";
    for line in function_policies(text).lines() {
        let t = line.trim();
        if let Some(sid) = t.strip_prefix("- Sid: ") {
            out.push((sid.to_string(), Vec::new(), Vec::new()));
            field = "";
            continue;
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        if let Some(rest) = t.strip_prefix("Action:") {
            field = "action";
            if !rest.trim().is_empty() {
                current.1.push(rest.trim().to_string());
            }
        } else if let Some(rest) = t.strip_prefix("Resource:") {
            field = "resource";
            if !rest.trim().is_empty() {
                current.2.push(rest.trim().to_string());
            }
        } else if let Some(item) = t.strip_prefix("- ") {
            match field {
                "action" => current.1.push(item.to_string()),
                "resource" => current.2.push(item.to_string()),
                _ => {}
            }
        } else if (t.ends_with(':') || t.starts_with("Effect:") || t.starts_with("Condition:"))
            && !t.starts_with('#')
        {
            field = "";
        }
    }
    out
}

/// Actions AWS offers no resource-level permissions for: `*` is the only possible resource.
const UNSCOPABLE: &[&str] = &[
    "dynamodb:ListExports",
    "dynamodb:ListTables",
    "s3:ListAllMyBuckets",
    "organizations:ListAccounts",
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListPolicies",
];

#[test]
fn every_star_resource_in_the_template_is_for_an_action_that_cannot_be_scoped() {
    let text = template();
    let all = statements(&text);
    assert!(all.len() >= 10, "found only {} statements", all.len());
    let mut starred = BTreeSet::new();
    for (sid, actions, resources) in &all {
        assert!(!actions.is_empty(), "statement {sid} has no actions");
        if resources
            .iter()
            .any(|r| r == "\"*\"" || r == "'*'" || r == "*")
        {
            for a in actions {
                assert!(
                    UNSCOPABLE.contains(&a.as_str()),
                    "{sid} grants {a} on \"*\", but it can be scoped"
                );
                starred.insert(a.clone());
            }
        }
    }
    assert!(starred.contains("s3:ListAllMyBuckets"), "{starred:?}");
}

#[test]
fn no_statement_grants_a_service_wildcard_or_puts_key_policies_unconditionally() {
    let text = template();
    for (sid, actions, _) in statements(&text) {
        for a in &actions {
            assert!(
                !a.ends_with(":*") && a != "*",
                "{sid} grants the wildcard action {a}"
            );
        }
        if actions.iter().any(|a| a == "kms:PutKeyPolicy") {
            assert_eq!(sid, "PatchKeyPolicy");
        }
    }
    // kms:PutKeyPolicy lives only inside the KeyPolicyPatch=on condition.
    let at = text
        .find("Action: kms:PutKeyPolicy")
        .expect("the patch statement");
    let before = &text[..at];
    let cond = before
        .rfind("- PatchKeyPolicies")
        .expect("under !If PatchKeyPolicies");
    assert!(!before[cond..].contains("!Ref AWS::NoValue"));
}
