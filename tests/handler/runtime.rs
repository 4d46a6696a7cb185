//! The release path: the compiled `bootstrap` binary, started as Lambda starts it, talking to a
//! minimal Lambda Runtime API on loopback that hands it one event and records the answer.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// What the function posted back: the path's last segment (`response` or `error`) and the body.
pub(crate) type Answer = (String, Value);

fn serve(listener: TcpListener, event: Value, answers: mpsc::Sender<Answer>) {
    let mut handed_out = false;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let event = event.clone();
        let answers = answers.clone();
        let first = !handed_out;
        handed_out = true;
        thread::spawn(move || connection(stream, first, event, answers));
    }
}

fn connection(
    stream: TcpStream,
    mut give_event: bool,
    event: Value,
    answers: mpsc::Sender<Answer>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        if path.ends_with("/invocation/next") {
            if !give_event {
                // Lambda holds the next poll open until an event arrives; none will.
                thread::sleep(Duration::from_secs(3600));
                return;
            }
            give_event = false;
            let body = event.to_string();
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:ddb-export-remediator\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\r\n",
                body.len()
            );
            let _ = writer.write_all(head.as_bytes());
            let _ = writer.write_all(body.as_bytes());
        } else {
            let kind = path.rsplit('/').next().unwrap_or("").to_string();
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let _ = writer.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
            let _ = answers.send((kind, value));
        }
    }
}

fn lambda_command(runtime_api: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ddb-export-remediator"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "ddb-export-remediator")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/ddb-export-remediator",
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("S3_FORCE_PATH_STYLE", "true")
        .env("MEMBER_ROLE_NAME", MEMBER_ROLE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs the binary on one event and returns what it posted.
fn run_once(event: Value) -> Answer {
    run_logged(event, &[]).0
}

/// Runs the binary on one event with extra environment; returns what it posted and its logs.
/// (Later entries of `env` win: `AWS_ENDPOINT_URL` points it at another emulator.)
pub(crate) fn run_logged(event: Value, env: &[(&str, &str)]) -> (Answer, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind runtime API");
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || serve(listener, event, tx));
    let mut cmd = lambda_command(&addr);
    cmd.envs(env.iter().copied()).stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("start bootstrap");
    let answer = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let out = child.wait_with_output().expect("bootstrap output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (answer.expect("the function answered within 60 s"), logs)
}

#[test]
fn logs_hold_no_policy_documents_table_items_or_credentials() {
    let seeded = seed("kms-key-policy-denies");
    let secret = "CANARY-secret-key-7f3a9c";
    let ((kind, body), logs) = run_logged(
        json!({"exportArn": seeded["exportArn"], "mode": "diagnose"}),
        &[
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        ],
    );
    assert_eq!(kind, "response", "{body}");
    assert!(!logs.is_empty(), "the function logs its result");
    // The key policy was read (the finding quotes the evaluation, not the document) ...
    assert_eq!(
        body["findings"][0]["cause"],
        "KMS_KEY_POLICY_DENIES_EXPORTER"
    );
    for needle in [
        secret,
        "KeyAdministrators",
        "\"Statement\"",
        "item-0",
        "AWS4-HMAC-SHA256",
    ] {
        assert!(!logs.contains(needle), "logs contain {needle:?}:\n{logs}");
    }
}

#[test]
fn bootstrap_answers_a_cross_account_failure_with_a_completed_retry() {
    let seeded = seed("cross-account-no-owner");
    let (kind, body) = run_once(json!({"exportArn": seeded["exportArn"], "mode": "apply"}));
    assert_eq!(kind, "response", "{body}");
    assert_eq!(
        causes(&body),
        vec![pair("BUCKET_OWNER_MISSING", "CONFIRMED")],
        "{body:#}"
    );
    assert_eq!(body["applied"][0]["status"], "DONE", "{body:#}");
}

#[test]
fn bootstrap_reports_a_bad_event_as_a_typed_error() {
    let (kind, body) = run_once(json!({"exportArn": "not-an-arn"}));
    assert_eq!(kind, "error");
    assert_eq!(body["errorType"], "InvalidEvent");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("exportArn"),
        "{body}"
    );
}

#[test]
fn bootstrap_refuses_to_start_with_every_bad_setting_listed() {
    let out = lambda_command("127.0.0.1:9")
        .env("MODE", "yolo")
        .env("MAX_RETRIES", "many")
        .output()
        .expect("run bootstrap");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MODE") && stderr.contains("MAX_RETRIES"),
        "{stderr}"
    );
}
