use super::text::{duration, headline, message, thousands};
use super::*;
use crate::model::{Cause, Confidence, Remedy};
use serde_json::json;

fn finding(cause: Cause, command: Option<&str>) -> Finding {
    Finding {
        cause,
        confidence: Confidence::Confirmed,
        summary: "s".into(),
        evidence: Vec::new(),
        remedy: Remedy {
            text: format!("fix {}", cause.code()),
            command: command.map(str::to_string),
            statement: None,
        },
        correction: None,
        patch: None,
    }
}

fn subject() -> Subject {
    Subject {
        root_export_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01-a".into(),
        table_arn: Some("arn:aws:dynamodb:us-east-1:111122223333:table/orders".into()),
        s3_bucket: Some("acme-lake".into()),
        failed_at: Some(1_000),
    }
}

fn history(causes: &[&str]) -> Vec<Attempt> {
    causes
        .iter()
        .enumerate()
        .map(|(i, c)| Attempt {
            attempt: i as u32,
            export_arn: Some(format!("e{i}")),
            causes: vec![c.to_string()],
        })
        .collect()
}

fn remediated(mode: Mode, findings: &[Finding], retry: RetryState) -> Remediated<'_> {
    Remediated {
        mode,
        subject: subject(),
        findings,
        plan: &[],
        gave_up: false,
        outside_scope: false,
        retry,
        attempt: 0,
        history: Vec::new(),
        change_ids: Vec::new(),
    }
}

#[test]
fn a_started_or_pending_retry_leaves_the_incident_open() {
    let f = [finding(Cause::BucketOwnerMissing, None)];
    for state in [
        RetryState::Started,
        RetryState::Pending,
        RetryState::AlreadyHandled,
    ] {
        assert_eq!(on_remediation(remediated(Mode::Apply, &f, state)), None);
    }
}

#[test]
fn no_retry_planned_needs_a_person_with_the_cause_remedy_and_command() {
    let f = [finding(
        Cause::CallerMissingExportPermission,
        Some("aws dynamodb export-table-to-point-in-time --table-arn t"),
    )];
    let o = on_remediation(remediated(Mode::Apply, &f, RetryState::NotRun)).unwrap();
    assert_eq!(o.kind(), OutcomeKind::NeedsPerson);
    assert_eq!(o.cause(), "CALLER_MISSING_EXPORT_PERMISSION");
    let Verdict::NeedsPerson(n) = o.verdict else {
        panic!("not NEEDS_PERSON")
    };
    assert_eq!(n.reason, NeedsPersonReason::NoAutomaticFix);
    assert!(n.remedy.is_some() && n.command.is_some());
}

#[test]
fn diagnose_and_plan_modes_need_a_person_with_the_plan_apply_would_run() {
    let f = [finding(Cause::BucketOwnerMissing, None)];
    let plan = [json!({"action": "RETRY_EXPORT"})];
    for mode in [Mode::Diagnose, Mode::Plan] {
        let mut r = remediated(mode, &f, RetryState::NotRun);
        r.plan = &plan;
        let o = on_remediation(r).unwrap();
        let Verdict::NeedsPerson(n) = o.verdict else {
            panic!("not NEEDS_PERSON")
        };
        assert_eq!(n.reason, NeedsPersonReason::ReadOnlyMode);
        assert_eq!(n.would_apply, plan.to_vec());
    }
}

#[test]
fn a_healthy_export_has_no_outcome() {
    assert_eq!(
        on_remediation(remediated(Mode::Apply, &[], RetryState::NotRun)),
        None
    );
    assert_eq!(
        on_remediation(remediated(Mode::Diagnose, &[], RetryState::NotRun)),
        None
    );
}

#[test]
fn loop_protection_gives_up_with_each_retrys_causes() {
    let f = [finding(Cause::KmsKeyPolicyDeniesExporter, None)];
    let mut r = remediated(Mode::Apply, &f, RetryState::NotRun);
    r.gave_up = true;
    r.attempt = 2;
    r.history = history(&["SSE_MISMATCH_REQUIRES_KMS", "BUCKET_OWNER_MISSING"]);
    let o = on_remediation(r).unwrap();
    assert_eq!(o.kind(), OutcomeKind::GaveUp);
    let Verdict::GaveUp(g) = o.verdict else {
        panic!("not GAVE_UP")
    };
    assert_eq!(g.reason, GaveUpReason::MaxRetries);
    let causes: Vec<Vec<String>> = g.attempts.iter().map(|a| a.causes.clone()).collect();
    assert_eq!(
        causes,
        vec![
            vec!["SSE_MISMATCH_REQUIRES_KMS".to_string()],
            vec!["BUCKET_OWNER_MISSING".to_string()],
            vec!["KMS_KEY_POLICY_DENIES_EXPORTER".to_string()]
        ]
    );
    assert_eq!(
        g.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

#[test]
fn the_same_cause_again_is_named_as_the_reason() {
    let f = [finding(Cause::BucketOwnerMissing, None)];
    let mut r = remediated(Mode::Apply, &f, RetryState::NotRun);
    r.gave_up = true;
    r.attempt = 1;
    r.history = history(&["BUCKET_OWNER_MISSING"]);
    let Verdict::GaveUp(g) = on_remediation(r).unwrap().verdict else {
        panic!("not GAVE_UP")
    };
    assert_eq!(g.reason, GaveUpReason::SameCauseAgain);
}

#[test]
fn a_refused_retry_gives_up_even_without_loop_protection() {
    let f = [finding(Cause::BucketOwnerMissing, None)];
    let o = on_remediation(remediated(Mode::Apply, &f, RetryState::Refused)).unwrap();
    let Verdict::GaveUp(g) = o.verdict else {
        panic!("not GAVE_UP")
    };
    assert_eq!(g.reason, GaveUpReason::RetryRefused);
}

#[test]
fn outside_the_write_scope_is_its_own_reason() {
    let f = [finding(Cause::BucketOwnerMissing, None)];
    let mut r = remediated(Mode::Apply, &f, RetryState::NotRun);
    r.outside_scope = true;
    let Verdict::NeedsPerson(n) = on_remediation(r).unwrap().verdict else {
        panic!("not NEEDS_PERSON")
    };
    assert_eq!(n.reason, NeedsPersonReason::OutsideWriteScope);
}

fn followed() -> Followed {
    Followed {
        subject: subject(),
        retry_export_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/02-b".into(),
        attempt: 1,
        causes: vec!["SSE_MISMATCH_REQUIRES_KMS".into()],
        corrections: vec!["SSE-KMS".into()],
        change_ids: vec!["c-1".into()],
        history: history(&["SSE_MISMATCH_REQUIRES_KMS"]),
    }
}

#[test]
fn the_next_retry_carries_the_history_and_the_change_ids_on() {
    let first = followed();
    let next = Followed::next(
        first.subject.clone(),
        first.history.clone(),
        &first.retry_export_arn,
        "retry-2",
        2,
        vec!["KMS_KEY_POLICY_DENIES_EXPORTER".into()],
        Vec::new(),
        vec!["c-2".into()],
        &first.change_ids,
    );
    assert_eq!(next.attempt, 2);
    assert_eq!(
        next.history.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(
        next.history[1].export_arn.as_deref(),
        Some(first.retry_export_arn.as_str())
    );
    assert_eq!(next.change_ids, vec!["c-1".to_string(), "c-2".to_string()]);
}

#[test]
fn a_completed_retry_resolves_with_its_items_time_and_changes() {
    let o = on_completed(&followed(), Some(1_204_332), Some(1_360));
    assert_eq!(o.kind(), OutcomeKind::Resolved);
    assert_eq!(o.seconds_to_resolution(), Some(360));
    assert_eq!(o.cause(), "SSE_MISMATCH_REQUIRES_KMS");
    let Verdict::Resolved(r) = &o.verdict else {
        panic!("not RESOLVED")
    };
    assert_eq!(r.item_count, Some(1_204_332));
    assert_eq!(r.change_ids, vec!["c-1".to_string()]);
    assert!(r.export_arn.ends_with("02-b"));
}

#[test]
fn a_completion_without_the_failure_time_has_no_time_to_resolution() {
    let mut f = followed();
    f.subject.failed_at = None;
    assert_eq!(
        on_completed(&f, None, Some(5)).seconds_to_resolution(),
        None
    );
}

#[test]
fn a_retry_that_disappeared_gives_up_with_that_reason() {
    let o = on_disappeared(&followed());
    let Verdict::GaveUp(g) = o.verdict else {
        panic!("not GAVE_UP")
    };
    assert_eq!(g.reason, GaveUpReason::RetryDisappeared);
    assert_eq!(g.attempts.len(), 2);
}

#[test]
fn the_outcome_round_trips_through_its_stored_json() {
    for o in [
        on_completed(&followed(), Some(3), Some(2_000)),
        on_disappeared(&followed()),
    ] {
        let text = serde_json::to_string(&o).unwrap();
        let back: Outcome = serde_json::from_str(&text).unwrap();
        assert_eq!(back, o);
    }
}

// The text: its structure, not its wording.

#[test]
fn numbers_and_durations_are_written_for_people() {
    assert_eq!(thousands(1_204_332), "1,204,332");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000), "1,000");
    assert_eq!(duration(360), "6 min");
    assert_eq!(duration(45), "45 s");
    assert_eq!(duration(3 * 3600 + 120), "3 h 2 min");
}

#[test]
fn the_resolved_headline_names_table_bucket_completion_time_and_items() {
    let h = headline(&on_completed(&followed(), Some(1_204_332), Some(1_360)));
    assert!(h.starts_with("Resolved:"));
    for part in [
        "orders",
        "acme-lake",
        "COMPLETED",
        "6 min",
        "1,204,332",
        "SSE-KMS",
    ] {
        assert!(h.contains(part), "{part} missing from {h}");
    }
    assert!(!h.contains('\n'));
}

#[test]
fn every_problem_headline_says_the_data_did_not_land() {
    let f = [finding(Cause::BucketOwnerMissing, Some("aws dynamodb ..."))];
    let needs = on_remediation(remediated(Mode::Apply, &f, RetryState::NotRun)).unwrap();
    let gave_up = on_disappeared(&followed());
    for (o, start) in [(needs, "Needs a person:"), (gave_up, "Gave up:")] {
        let h = headline(&o);
        assert!(h.starts_with(start), "{h}");
        assert!(h.contains("did NOT land"), "{h}");
    }
}

#[test]
fn the_message_starts_with_the_headline_and_lists_each_attempt() {
    let f = [finding(
        Cause::KmsKeyPolicyDeniesExporter,
        Some("aws dynamodb x"),
    )];
    let mut r = remediated(Mode::Apply, &f, RetryState::NotRun);
    r.gave_up = true;
    r.attempt = 2;
    r.history = history(&["SSE_MISMATCH_REQUIRES_KMS", "BUCKET_OWNER_MISSING"]);
    let o = on_remediation(r).unwrap();
    let m = message(&o);
    let lines: Vec<&str> = m.lines().collect();
    assert_eq!(lines[0], headline(&o));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("Retry 1:") && l.contains("BUCKET_OWNER_MISSING")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("Retry 2:") && l.contains("KMS_KEY_POLICY_DENIES_EXPORTER")));
    assert!(lines.iter().any(|l| l.starts_with("Command: ")));
}

#[test]
fn a_resolved_message_gives_each_change_id_with_its_rollback() {
    let m = message(&on_completed(&followed(), None, None));
    assert!(m
        .lines()
        .any(|l| l.starts_with("Key policy changed: c-1") && l.contains("rollback")));
}
