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

/// The doctor against the emulator, with the environment a user's shell would give it.
fn doctor_at(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ddb-export-doctor"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &crate::helpers::moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("S3_FORCE_PATH_STYLE", "true")
        .output()
        .expect("run ddb-export-doctor")
}

#[tokio::test]
async fn diagnose_reads_only_and_prints_the_lambda_result_schema() {
    let seeded = crate::helpers::seed("cross-account-no-owner");
    let arn = seeded["exportArn"].as_str().unwrap();
    let out = doctor_at(&[
        "diagnose",
        arn,
        "--member-role",
        crate::helpers::MEMBER_ROLE,
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    assert_eq!(v["mode"], "diagnose");
    assert_eq!(v["findings"][0]["cause"], "BUCKET_OWNER_MISSING");
    assert_eq!(v["applied"], json!([]));
    assert_eq!(
        crate::helpers::export_count(seeded["tableArn"].as_str().unwrap()).await,
        1,
        "nothing was retried"
    );
}

#[test]
fn diagnose_text_shows_findings_and_the_corrected_command() {
    let seeded = crate::helpers::seed("sse-kms-required");
    let out = doctor_at(&[
        "diagnose",
        seeded["exportArn"].as_str().unwrap(),
        "--output",
        "text",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("SSE_MISMATCH_REQUIRES_KMS") && text.contains("CONFIRMED"),
        "{text}"
    );
    assert!(
        text.contains("Corrected command:") && text.contains("--s3-sse-algorithm KMS"),
        "{text}"
    );
}

#[test]
fn preflight_names_what_would_fail_before_the_export_runs() {
    let seeded = crate::helpers::seed("cross-account-no-owner");
    let out = doctor_at(&[
        "preflight",
        "--table-arn",
        seeded["tableArn"].as_str().unwrap(),
        "--s3-bucket",
        seeded["bucket"].as_str().unwrap(),
        "--s3-sse-algorithm",
        "AES256",
        "--member-role",
        crate::helpers::MEMBER_ROLE,
        "--output",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["incident"]["source"], "preflight");
    assert_eq!(v["findings"][0]["cause"], "BUCKET_OWNER_MISSING");
    assert!(v["findings"][0]["remedy"]["command"]
        .as_str()
        .unwrap()
        .contains("--s3-bucket-owner"));
}

#[test]
fn the_doctor_exits_1_for_a_missing_export_and_2_for_bad_usage() {
    let out = doctor_at(&[
        "diagnose",
        "arn:aws:dynamodb:us-east-1:123456789012:table/none-here/export/01795508400000-9f8e7d6c",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ExportNotFound"));
    assert_eq!(doctor_at(&["diagnose"]).status.code(), Some(2));
    assert_eq!(
        doctor_at(&["diagnose", "not-an-arn"]).status.code(),
        Some(2)
    );
    assert_eq!(
        doctor_at(&["preflight", "--bogus", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(doctor_at(&["frobnicate"]).status.code(), Some(2));
    let help = doctor_at(&["--help"]);
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("SYNOPSIS"));
}

#[test]
fn sweep_shows_its_progress_on_stderr_and_the_result_on_stdout() {
    let seeded = crate::helpers::seed("cross-account-no-owner");
    let out = doctor_at(&["sweep", "--progress", "on", "--output", "json"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ListExports pages") && stderr.contains("exports listed"),
        "{stderr}"
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let failed = result["sweep"]["failedExports"].as_array().unwrap();
    assert!(failed.contains(&seeded["exportArn"]), "{result:#}");
    let quiet = doctor_at(&["sweep", "--progress", "off", "--output", "json"]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("ListExports pages"));
}
