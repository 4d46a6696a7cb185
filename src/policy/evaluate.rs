//! Evaluation: the statements that apply to a request, and the layers of AWS's policy
//! evaluation logic (SCP, RCP, resource, identity, boundary, session, key) combined into a decision.

#[allow(unused_imports)]
use super::*;

pub(super) struct StatementMatch {
    applies: Tri,
    principal: PrincipalMatch,
    /// Why it did not apply, or which condition made it uncertain.
    reason: Option<String>,
    /// Rules that shaped the match, for the explanation (a variable with no value; NotPrincipal
    /// ignored for a principal with a boundary).
    notes: Vec<String>,
}

/// Does `st` apply to `req`? `has_boundary`: the caller has a permissions boundary.
pub(super) fn statement_applies(
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
pub(super) struct Layer {
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

pub(super) fn stmt_name(p: &Policy, s: &Statement) -> String {
    format!("{}/{}", p.name, s.name)
}

/// Evaluates `req` against every policy that applies to it (docs/diagnosis.md and AWS's "Policy evaluation logic").
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
