//! Property-based fuzzing on stable Rust (docs/safety.md, "Hardening"): event intake, policy parsing and
//! evaluation, and the key-policy merge get generated input — arbitrary JSON, and real samples
//! mutated — and must answer with a value or a typed error, never a panic.
//!
//! `make test` runs a small share (FUZZ_CASES unset: 2,000 cases a target); `make fuzz` runs
//! FUZZ_CASES=250000 for each of the five targets (1,250,000 cases) in release mode.

use ddb_export_remediator::domain::key_patch::{exporter_patch, merge, MAX_POLICY_BYTES};
use ddb_export_remediator::error::Error;
use ddb_export_remediator::intake::{self, Trigger};
use ddb_export_remediator::policy::{evaluate, parse_case, DecisionKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Field names the intake and the evaluator look at, and a few they do not.
const KEYS: &[&str] = &[
    "detail-type",
    "source",
    "detail",
    "exportArn",
    "tableArn",
    "mode",
    "preflight",
    "rollback",
    "changeId",
    "s3Bucket",
    "s3BucketOwner",
    "s3Prefix",
    "s3SseAlgorithm",
    "s3SseKmsKeyId",
    "errorCode",
    "errorMessage",
    "eventName",
    "eventSource",
    "requestParameters",
    "responseElements",
    "userIdentity",
    "sessionContext",
    "sessionIssuer",
    "arn",
    "failureCode",
    "failureMessage",
    "exportDescription",
    "clientToken",
    "exportTime",
    "Version",
    "Statement",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
    "AWS",
    "Service",
    "Sid",
    "x",
    "",
];

const STRINGS: &[&str] = &[
    "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c",
    "arn:aws:dynamodb:us-east-1:111122223333:table/orders",
    "arn:aws-cn:dynamodb:cn-north-1:111122223333:table/orders/export/01795508400000-9f8e7d6c",
    "arn:aws-us-gov:dynamodb:us-gov-west-1:111122223333:table/t",
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:iam::111122223333:role/DataPipeline",
    "arn:aws:iam::111122223333:root",
    "arn:aws:sts::111122223333:assumed-role/R/s",
    "arn:::::",
    "arn:aws:s3:::b/*",
    "*",
    "?",
    "s3:PutObject",
    "kms:*",
    "kms:",
    "AWS API Call via CloudTrail",
    "DynamoDB Export Failed",
    "Scheduled Event",
    "aws.events",
    "aws.dynamodb",
    "ExportTableToPointInTime",
    "AccessDenied",
    "KMS",
    "AES256",
    "apply",
    "plan",
    "diagnose",
    "Allow",
    "Deny",
    "StringEquals",
    "ForAnyValue:StringLike",
    "IpAddressIfExists",
    "Null",
    "Bool",
    "NumericLessThan",
    "DateGreaterThan",
    "${aws:username}",
    "2012-10-17",
    "111122223333",
    "true",
    "",
    "\u{0}",
    "ü*é",
    "%41%2A",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(STRINGS).prop_map(|s| json!(s)),
        ".{0,40}".prop_map(Value::String),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(KEYS).prop_map(str::to_string),
                        ".{0,8}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn samples() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/events");
    let mut out: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
        .collect();
    out.sort_by_key(|v| v.to_string());
    out
}

/// Replaces (or deletes) the value at a pseudo-random path of `v`, chosen by `path`.
fn mutate(v: &mut Value, path: &[usize], with: Value, delete: bool) {
    let Some((&i, rest)) = path.split_first() else {
        *v = with;
        return;
    };
    match v {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(i % map.len()).cloned().unwrap();
            if rest.is_empty() {
                if delete {
                    map.remove(&key);
                } else {
                    map.insert(key, with);
                }
            } else if let Some(child) = map.get_mut(&key) {
                mutate(child, rest, with, delete);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            if rest.is_empty() {
                items[i % n] = with;
            } else {
                mutate(&mut items[i % n], rest, with, delete);
            }
        }
        other => *other = with,
    }
}

fn typed(result: &Result<Trigger, Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(e @ (Error::InvalidEvent(m) | Error::UnsupportedEvent(m))) => {
            // Bounded: an error never echoes a huge input back.
            !e.error_type().is_empty() && m.len() <= 2_000
        }
        Err(_) => false,
    }
}

#[test]
fn intake_answers_arbitrary_json_with_a_trigger_or_a_typed_error() {
    runner()
        .run(&arb_json(), |event| {
            prop_assert!(typed(&intake::parse(&event)));
            Ok(())
        })
        .unwrap();
}

#[test]
fn intake_answers_mutated_samples_with_a_trigger_or_a_typed_error() {
    let samples = samples();
    assert!(samples.len() >= 10);
    let strategy = (
        0..samples.len(),
        prop::collection::vec(any::<usize>(), 1..6),
        arb_json(),
        any::<bool>(),
    );
    runner()
        .run(&strategy, |(i, path, with, delete)| {
            let mut event = samples[i].clone();
            mutate(&mut event, &path, with, delete);
            prop_assert!(typed(&intake::parse(&event)));
            Ok(())
        })
        .unwrap();
}

/// Names an evaluator meets: actions, resources, principals and condition values.
const NAMES: &[&str] = &[
    "s3:PutObject",
    "s3:*",
    "s3:Put*",
    "kms:GenerateDataKey",
    "kms:*",
    "kms:Decrypt",
    "dynamodb:ExportTableToPointInTime",
    "*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::*",
    "arn:aws:kms:us-east-1:111122223333:key/*",
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:role/DataPipeline",
    "111122223333",
    "aws:kms",
    "AES256",
    "10.0.0.0/8",
    "true",
    "2026-01-01T00:00:00Z",
    "${aws:username}",
    "dynamodb.amazonaws.com",
];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLikeIfExists",
    "ArnLike",
    "Bool",
    "Null",
    "IpAddress",
    "NotIpAddress",
    "NumericLessThan",
    "DateGreaterThan",
    "ForAnyValue:StringEquals",
    "ForAllValues:StringLike",
    "StringEqualsIgnoreCase",
];

fn arb_statement() -> impl Strategy<Value = Value> {
    let names = || {
        prop_oneof![
            6 => prop::sample::select(NAMES).prop_map(|s| json!(s)),
            3 => prop::collection::vec(prop::sample::select(NAMES), 1..4).prop_map(|v| json!(v)),
            1 => leaf(),
        ]
    };
    let condition = prop::collection::vec(
        (
            prop_oneof![9 => prop::sample::select(OPERATORS), 1 => prop::sample::select(STRINGS)],
            prop::collection::vec(
                (
                    prop::sample::select(
                        &[
                            "aws:SourceIp",
                            "aws:ViaAWSService",
                            "aws:CalledVia",
                            "s3:x-amz-server-side-encryption",
                            "kms:ViaService",
                            "aws:PrincipalOrgID",
                            "aws:CurrentTime",
                        ][..],
                    ),
                    names(),
                ),
                1..3,
            ),
        ),
        0..3,
    )
    .prop_map(|ops| {
        let mut c = Map::new();
        for (op, keys) in ops {
            let m: Map<String, Value> = keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            c.insert(op.to_string(), Value::Object(m));
        }
        Value::Object(c)
    });
    (
        prop_oneof![9 => prop::sample::select(&["Allow", "Deny"][..]), 1 => prop::sample::select(&["allow", ""][..])],
        prop_oneof![4 => Just("Action"), 1 => Just("NotAction")],
        names(),
        prop_oneof![4 => Just("Resource"), 1 => Just("NotResource")],
        names(),
        prop_oneof![
            6 => Just(None),
            3 => names().prop_map(|n| Some(json!({"AWS": n}))),
            1 => Just(Some(json!("*"))),
        ],
        prop::option::of(condition),
    )
        .prop_map(|(effect, a_key, actions, r_key, resources, principal, condition)| {
            let mut s = Map::new();
            s.insert("Effect".into(), json!(effect));
            s.insert(a_key.into(), actions);
            s.insert(r_key.into(), resources);
            if let Some(p) = principal {
                s.insert("Principal".into(), p);
            }
            if let Some(c) = condition {
                s.insert("Condition".into(), c);
            }
            Value::Object(s)
        })
}

fn arb_case() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (
                prop::sample::select(
                    &[
                        "identity", "resource", "key", "boundary", "scp", "rcp", "session", "other",
                    ][..],
                ),
                prop::collection::vec(arb_statement(), 0..5),
            ),
            1..4,
        ),
        prop::sample::select(STRINGS),
        prop::sample::select(STRINGS),
        prop::collection::vec(
            (
                prop::sample::select(
                    &[
                        "aws:SourceIp",
                        "aws:ViaAWSService",
                        "aws:CalledVia",
                        "kms:ViaService",
                    ][..],
                ),
                prop_oneof![leaf(), Just(json!(null)), Just(json!(["a", "b"]))],
            ),
            0..3,
        ),
    )
        .prop_map(|(policies, action, resource, ctx)| {
            let policies: Vec<Value> = policies
                .into_iter()
                .enumerate()
                .map(|(i, (kind, sts))| {
                    json!({"kind": kind, "name": format!("p{i}"),
                           "doc": {"Version": "2012-10-17", "Statement": sts}})
                })
                .collect();
            let context: Map<String, Value> =
                ctx.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            json!({"policies": policies, "request": {
                "principal": "arn:aws:iam::111122223333:role/DataPipeline",
                "action": action, "resource": resource,
                "resource_account": "111122223333", "context": context}})
        })
}

#[test]
fn policies_parse_or_fail_typed_and_an_explicit_deny_always_wins() {
    let parsed = AtomicU32::new(0);
    runner()
        .run(&arb_case(), |case| {
            let Ok((mut policies, request)) = parse_case(&case) else {
                return Ok(());
            };
            parsed.fetch_add(1, Ordering::Relaxed);
            let first = evaluate(&policies, &request);
            prop_assert_eq!(&first, &evaluate(&policies, &request), "deterministic");
            // Add an unconditional deny of everything to an identity policy: it must decide.
            let deny = json!({"policies": [{"kind": "identity", "name": "deny-all", "doc":
                {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}}],
                "request": case["request"]});
            if let Ok((mut extra, _)) = parse_case(&deny) {
                policies.append(&mut extra);
                let d = evaluate(&policies, &request);
                prop_assert_eq!(d.decision, DecisionKind::ExplicitDeny);
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach the evaluator, not only the parser's refusals.
    let parsed = parsed.into_inner();
    assert!(
        parsed * 10 >= cases(),
        "only {parsed} of {} cases parsed",
        cases()
    );
}

#[test]
fn policy_text_of_any_shape_is_parsed_or_refused() {
    use ddb_export_remediator::policy::{Policy, PolicyKind};
    let strategy = prop_oneof![
        arb_json().prop_map(|v| v.to_string()),
        ".{0,300}",
        prop::collection::vec(arb_statement(), 0..8)
            .prop_map(|s| json!({"Version": "2012-10-17", "Statement": s}).to_string()),
    ];
    runner()
        .run(&strategy, |text| {
            for kind in [PolicyKind::Identity, PolicyKind::Resource, PolicyKind::Key] {
                let _ = Policy::parse_text(kind, "fuzz", &text);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_key_policy_merge_never_widens_and_never_panics() {
    let strategy = (
        prop_oneof![
            prop::collection::vec(arb_statement(), 0..10)
                .prop_map(|s| json!({"Version": "2012-10-17", "Statement": s}).to_string()),
            arb_json().prop_map(|v| v.to_string()),
        ],
        "[A-Za-z0-9+=,.@_-]{1,40}",
    );
    let merged_ok = AtomicU32::new(0);
    runner()
        .run(&strategy, |(policy, role)| {
            let grantee = format!("arn:aws:iam::111122223333:role/{role}");
            let key = "arn:aws:kms:us-east-1:111122223333:key/k";
            let patch = exporter_patch(key, &grantee, "us-east-1").unwrap();
            let Ok(merged) = merge(&policy, &patch, std::slice::from_ref(&grantee)) else {
                return Ok(());
            };
            merged_ok.fetch_add(1, Ordering::Relaxed);
            prop_assert!(merged.after.len() <= MAX_POLICY_BYTES);
            let doc: Value = serde_json::from_str(&merged.after).unwrap();
            let ours: Vec<&Value> = doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Sid"] == json!(patch.sid))
                .collect();
            prop_assert_eq!(ours.len(), 1);
            prop_assert_eq!(&ours[0]["Principal"]["AWS"], &json!(grantee));
            prop_assert_eq!(
                &ours[0]["Action"],
                &json!(["kms:GenerateDataKey", "kms:Decrypt"])
            );
            Ok(())
        })
        .unwrap();
    let merged_ok = merged_ok.into_inner();
    assert!(
        merged_ok * 20 >= cases(),
        "only {merged_ok} merges succeeded"
    );
}
