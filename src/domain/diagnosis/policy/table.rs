//! Table resource-policy causes: the table's policy denies ExportTableToPointInTime.

#[allow(unused_imports)]
use super::*;

/// The table's resource policy, evaluated for the export call. The caller is in the table's
/// account, where its identity policy alone can allow the call, so only an explicit deny counts;
/// and only for a call that was refused, or has not run yet (a started export was past it).
pub(super) fn table_policy(cx: &Ctx, fail: &Failure, caller: Option<&str>) -> Vec<Finding> {
    if cx.evidence.export.is_some() {
        return Vec::new();
    }
    let fact = &cx.evidence.table_policy;
    let text = match &fact.value {
        FactValue::Known(text) => text,
        FactValue::Absent => return Vec::new(),
        FactValue::Unknown(_) => {
            let says = fail.message.and_then(parse_denial).is_some_and(|d| {
                d.explicit
                    && d.policy_type.as_deref() == Some("resource-based")
                    && d.action
                        .as_deref()
                        .is_some_and(|a| a.starts_with("dynamodb:"))
            });
            if !says {
                return Vec::new();
            }
            return vec![finding(
                Cause::TablePolicyDenies,
                Confidence::Likely,
                "The failure message says a resource-based policy on the table explicitly denies the export.".into(),
                vec![ev(format!("failure message: {}", fail.message.unwrap_or_default().chars().take(300).collect::<String>()), fail.source)],
                "Read the table's resource policy (aws dynamodb get-resource-policy) and exempt the exporter from the Deny statement.".into(),
            )];
        }
    };
    let Ok(policy) = Policy::parse_text(PolicyKind::Resource, "table-policy", text) else {
        return Vec::new();
    };
    let principals: Vec<String> = match caller {
        Some(c) => vec![c.to_string()],
        None => cx.principals.clone(),
    };
    // A call of the caller's own: over TLS, from wherever it came from.
    let mut context = Context::default();
    context.set(
        "aws:SecureTransport",
        crate::policy::ContextValue::Values(vec!["true".into()]),
    );
    for key in [
        "aws:SourceIp",
        "aws:SourceVpce",
        "aws:SourceVpc",
        "aws:PrincipalOrgID",
    ] {
        context.set(key, crate::policy::ContextValue::Unknown);
    }
    let decisions: Vec<_> = principals
        .iter()
        .map(|p| resource_side(&policy, &export_call(cx, p, context.clone())))
        .collect();
    let Some(d) = decisions
        .iter()
        .find(|d| d.decision == DecisionKind::ExplicitDeny)
    else {
        return Vec::new();
    };
    let confidence = if agree(&decisions) && !d.uncertain {
        Confidence::Confirmed
    } else {
        Confidence::Possible
    };
    vec![finding(
        Cause::TablePolicyDenies,
        confidence,
        format!(
            "The table's resource policy explicitly denies dynamodb:ExportTableToPointInTime ({}).",
            d.decided_by.clone().unwrap_or_default()
        ),
        d.explanation.iter().map(|e| ev(e.clone(), fact.source)).collect(),
        "Exempt the exporter from that Deny statement of the table's resource policy (aws dynamodb put-resource-policy).".into(),
    )]
}
