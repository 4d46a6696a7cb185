//! `ddb-export-doctor explain`: the evaluator's offline door (SPEC §5.1).

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn doctor(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddb-export-doctor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ddb-export-doctor");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn case(context: Value) -> String {
    json!({
        "policies": [
            {"kind": "identity", "name": "id", "doc": {"Version": "2012-10-17", "Statement": [
                {"Sid": "AllowPut", "Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::export-bucket/*"}]}},
            {"kind": "resource", "name": "bucket", "doc": {"Version": "2012-10-17", "Statement": [
                {"Sid": "DenyNonKms", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                 "Resource": "arn:aws:s3:::export-bucket/*",
                 "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}}]}}
        ],
        "request": {"principal": "arn:aws:iam::111122223333:role/DdbExportRole", "action": "s3:PutObject",
                    "resource": "arn:aws:s3:::export-bucket/AWSDynamoDB/x/_started", "resource_account": "111122223333",
                    "context": context}
    })
    .to_string()
}

#[test]
fn explain_prints_the_deciding_statement_as_json() {
    let out = doctor(
        &["explain", "-", "--output", "json"],
        &case(json!({"s3:x-amz-server-side-encryption": "AES256"})),
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "ExplicitDeny");
    assert_eq!(v["decidedBy"], "bucket/DenyNonKms");
    assert!(!v["explanation"].as_array().unwrap().is_empty());

    let out = doctor(
        &["explain", "-", "--output", "json"],
        &case(json!({"s3:x-amz-server-side-encryption": "aws:kms"})),
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["decision"].as_str(), v["decidedBy"].as_str()),
        (Some("Allow"), Some("id/AllowPut"))
    );
}

#[test]
fn explain_reads_a_file_and_prints_text_on_request() {
    let path = std::env::temp_dir().join(format!("case-{}.json", std::process::id()));
    std::fs::write(&path, case(json!({}))).unwrap();
    let out = doctor(&["explain", path.to_str().unwrap(), "--output", "text"], "");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("ExplicitDeny (bucket/DenyNonKms)"),
        "{text}"
    );
}

#[test]
fn explain_refuses_an_invalid_case_with_one_line_naming_the_field() {
    let bad = json!({"policies": [{"kind": "identity", "name": "id", "doc": {"Statement": [{"Effect": "Perhaps", "Action": "s3:*", "Resource": "*"}]}}],
                     "request": {"principal": "p", "action": "a", "resource": "r"}});
    let out = doctor(&["explain", "-"], &bad.to_string());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Statement[0].Effect"), "{err}");

    let out = doctor(
        &["explain", "-"],
        r#"{"policies": [], "request": {"action": "a", "resource": "r"}}"#,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("request.principal"));

    let out = doctor(&["explain", "-"], "not json");
    assert_eq!(out.status.code(), Some(2));
}
