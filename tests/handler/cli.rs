//! `ddb-export-doctor` through its compiled binary: `explain`, the evaluator's offline door
//! (README, "On your laptop: ddb-export-doctor"); the pipeline commands against the emulator; and its command line (clap): help,
//! usage errors, completions, and the region, credential and endpoint messages.

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
    // The command pastes whole: one flag a line, each line but its last continued with ` \`.
    let lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Corrected command:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("aws ") || l.trim_start().starts_with("--"))
        .collect();
    let (last, rest) = lines.split_last().expect("the command's lines");
    assert!(rest.len() >= 3, "{text}");
    assert!(rest.iter().all(|l| l.ends_with(" \\")), "{text}");
    assert!(!last.ends_with('\\'), "{text}");
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
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("Usage:"));
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn each_subcommand_has_its_own_help_with_examples() {
    for (command, own_flag) in [
        ("diagnose", "<EXPORT_ARN>"),
        ("preflight", "--table-arn <ARN>"),
        ("sweep", "--progress <WHEN>"),
        ("explain", "--case <ID>"),
        ("completions", "<SHELL>"),
    ] {
        let out = doctor(&[command, "--help"], "");
        assert!(out.status.success(), "{command}: {out:?}");
        let help = stdout(&out);
        assert!(
            help.contains(&format!("Usage: ddb-export-doctor {command}")),
            "{command}: {help}"
        );
        assert!(help.contains(own_flag), "{command}: {help}");
        assert!(
            help.contains(&format!("Examples:\n  ddb-export-doctor {command}"))
                || help.contains(&format!(
                    "Examples:\n  source <(ddb-export-doctor {command}"
                )),
            "{command} has no examples: {help}"
        );
    }
    // The top level lists the commands; -h is an option, not part of the environment.
    let top = stdout(&doctor(&["--help"], ""));
    for command in ["diagnose", "preflight", "sweep", "explain", "completions"] {
        assert!(top.contains(&format!("  {command}")), "{top}");
    }
    let (options, environment) = top
        .split_once("Environment:")
        .expect("an Environment section");
    assert!(options.contains("Options:\n  -h, --help"), "{top}");
    assert!(!environment.contains("-h, --help"), "{top}");
}

#[test]
fn each_required_or_invalid_flag_is_named_in_the_error() {
    let table = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
    for (args, named) in [
        (
            vec!["preflight", "--s3-bucket", "b-bucket"],
            "--table-arn <ARN>",
        ),
        (
            vec!["preflight", "--table-arn", table],
            "--s3-bucket <NAME>",
        ),
        (vec!["diagnose"], "EXPORT_ARN"),
        (vec!["explain"], "<FILE>"),
        (vec!["completions"], "<SHELL>"),
        (
            vec![
                "preflight",
                "--table-arn",
                "not-an-arn",
                "--s3-bucket",
                "b-bucket",
            ],
            "--table-arn <ARN>",
        ),
        (
            vec![
                "preflight",
                "--table-arn",
                table,
                "--s3-bucket",
                "Bad_Bucket",
            ],
            "--s3-bucket <NAME>",
        ),
        (
            vec![
                "preflight",
                "--table-arn",
                table,
                "--s3-bucket",
                "b-bucket",
                "--s3-sse-algorithm",
                "aws:kms",
            ],
            "--s3-sse-algorithm <ALGORITHM>",
        ),
        (
            vec![
                "preflight",
                "--table-arn",
                table,
                "--s3-bucket",
                "b-bucket",
                "--s3-bucket-owner",
                "4444",
            ],
            "--s3-bucket-owner <ACCOUNT_ID>",
        ),
        (vec!["diagnose", "not-an-arn"], "EXPORT_ARN"),
        (vec!["sweep", "--output", "yaml"], "--output <FORMAT>"),
        (vec!["sweep", "--progress", "maybe"], "--progress <WHEN>"),
        (vec!["completions", "tcsh"], "<SHELL>"),
    ] {
        let out = doctor(&args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = stderr(&out);
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(
            !err.contains("tableArn") && !err.contains("s3Bucket"),
            "{args:?} names a JSON field: {err}"
        );
    }
}

#[test]
fn bash_loads_the_completion_script_and_completes_the_commands() {
    let bin = env!("CARGO_BIN_EXE_ddb-export-doctor");
    // What a user puts in ~/.bashrc; then the function bash registered is asked, as bash does on
    // TAB, for the words that complete `ddb-export-doctor pre`.
    let script = format!(
        r#"source <("{bin}" completions bash) || exit 1
spec=$(complete -p ddb-export-doctor) || exit 1
echo "$spec"
fn=$(sed -E 's/.*-F ([^ ]+).*/\1/' <<<"$spec")
COMP_WORDS=(ddb-export-doctor pre); COMP_CWORD=1
COMP_LINE="ddb-export-doctor pre"; COMP_POINT=${{#COMP_LINE}}
"$fn" ddb-export-doctor pre ddb-export-doctor
echo "offered: ${{COMPREPLY[*]}}""#
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("complete ")
            && text.contains(" -F ")
            && text.lines().next().unwrap().ends_with(" ddb-export-doctor"),
        "{text}"
    );
    assert!(text.contains("offered: preflight"), "{text}");
}

/// zsh and fish are not installed where these tests run: only that the scripts are generated
/// for them and name every command is checked here, not that those shells load them.
#[test]
fn zsh_and_fish_completion_scripts_are_generated() {
    for (shell, marker) in [
        ("zsh", "#compdef ddb-export-doctor"),
        ("fish", "complete -c ddb-export-doctor"),
    ] {
        let out = doctor(&["completions", shell], "");
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["diagnose", "preflight", "sweep", "explain"] {
            assert!(script.contains(command), "{shell} lacks {command}");
        }
    }
}

/// The doctor with nothing configured: no AWS_* variables, an empty home (no ~/.aws), and the
/// EC2 metadata service off (AWS_EC2_METADATA_DISABLED, which aws-config honours).
fn doctor_unconfigured(extra: &[(&str, &str)], args: &[&str]) -> Output {
    let home = std::env::temp_dir().join(format!(
        "doctor-home-{}-{}",
        std::process::id(),
        extra.len()
    ));
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ddb-export-doctor"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(extra.iter().copied())
        .output()
        .expect("run ddb-export-doctor");
    let _ = std::fs::remove_dir_all(&home);
    out
}

const SOME_EXPORT: &str =
    "arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c";

#[test]
fn no_region_and_no_credentials_are_reported_with_what_the_sdk_tried() {
    // A sweep names no ARN, so nothing tells it the region.
    let out = doctor_unconfigured(&[], &["sweep", "--progress", "off"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    for expected in [
        "no AWS region configured",
        "--region",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "no AWS credentials found",
        "AWS_ACCESS_KEY_ID not set",
        "profile \"default\"",
        "/.aws/credentials (absent)",
        "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set",
        "ECS/container credentials",
        "EC2 instance metadata (IMDSv2): disabled by AWS_EC2_METADATA_DISABLED",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("could not reach the service"), "{err}");

    // With a region, only the credentials are missing; the profile named is the one asked for.
    let out = doctor_unconfigured(
        &[("AWS_REGION", "us-east-1"), ("AWS_PROFILE", "ops")],
        &["sweep", "--progress", "off"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(!err.contains("no AWS region"), "{err}");
    assert!(
        err.contains("no AWS credentials found")
            || err.contains("credentials configuration is invalid"),
        "{err}"
    );
    assert!(err.contains("profile \"ops\""), "{err}");
}

#[test]
fn with_no_region_configured_the_arns_region_is_used_and_said() {
    let eu_export =
        "arn:aws:dynamodb:eu-west-1:111122223333:table/orders/export/01795508400000-9f8e7d6c";
    for args in [
        vec!["diagnose", eu_export],
        vec!["diagnose", "--export-arn", eu_export],
        vec![
            "preflight",
            "--table-arn",
            "arn:aws:dynamodb:eu-west-1:111122223333:table/orders",
            "--s3-bucket",
            "amzn-s3-demo-bucket",
        ],
    ] {
        let out = doctor_unconfigured(&[], &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("no region configured; using eu-west-1, the ARN's"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("no AWS region configured"), "{args:?}: {err}");
        assert!(err.contains("no AWS credentials found"), "{args:?}: {err}");
    }
    // A configured region wins, and nothing is said about the ARN's.
    let out = doctor_unconfigured(&[("AWS_REGION", "us-east-1")], &["diagnose", eu_export]);
    assert!(!stderr(&out).contains("the ARN's"), "{}", stderr(&out));
}

#[test]
fn diagnose_takes_the_export_arn_as_aws_cli_users_type_it() {
    let seeded = crate::helpers::seed("sse-kms-required");
    let arn = seeded["exportArn"].as_str().unwrap();
    let positional = doctor_at(&["diagnose", arn, "--output", "json"]);
    let flagged = doctor_at(&["diagnose", "--export-arn", arn, "--output", "json"]);
    assert!(flagged.status.success(), "{}", stderr(&flagged));
    let causes = |out: &Output| {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["cause"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(causes(&flagged), causes(&positional));
    assert!(!causes(&flagged).is_empty());
    // One or the other, not both, and not neither.
    let both = doctor_at(&["diagnose", arn, "--export-arn", arn]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(stderr(&both).contains("--export-arn"), "{}", stderr(&both));
    let neither = doctor_at(&["diagnose"]);
    assert_eq!(neither.status.code(), Some(2));
}

#[test]
fn a_short_table_name_is_refused_with_the_naming_rule() {
    let out = doctor_unconfigured(
        &[],
        &[
            "diagnose",
            "arn:aws:dynamodb:us-east-1:111122223333:table/t/export/01795508400000-9f8e7d6c",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("the table name \"t\" is 1 character long")
            && err.contains("3-255 characters"),
        "{err}"
    );
    assert!(!err.contains("expected table/<name>/export/<id>"), "{err}");
}

#[test]
fn an_unreachable_endpoint_is_named_with_its_url() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = doctor_unconfigured(
        &[
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", &url),
            // One attempt: the SDK's retries of a refused connection add nothing to the test.
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
        &["diagnose", SOME_EXPORT, "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("could not reach the endpoint {url}")),
        "{err}"
    );
    assert!(err.contains("dynamodb:DescribeExport"), "{err}");
}

fn corpus(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn explain_runs_every_case_of_a_corpus_file_one_line_each() {
    for path in [
        "events/fixtures/iam-policy-corpus.json",
        "events/fixtures/iam-policy-cases-extra.json",
        "events/fixtures/iam-policy-cases-documented.json",
    ] {
        let cases = corpus(path);
        let file = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        let out = doctor(&["explain", &file, "--output", "json"], "");
        assert!(out.status.success(), "{path}: {}", stderr(&out));
        let lines: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), cases.len(), "{path}");
        for (line, case) in lines.iter().zip(&cases) {
            assert_eq!(line["id"], case["id"]);
            let expected = &case["expected"];
            assert_eq!(line["decision"], expected["decision"], "{line}");
            assert_eq!(line["decidedBy"], expected["decided_by"], "{line}");
            assert_eq!(line["asExpected"], true, "{line}");
        }

        let out = doctor(&["explain", &file, "--output", "text"], "");
        let text = stdout(&out);
        assert_eq!(text.lines().count(), cases.len() + 1, "{text}");
        assert!(
            text.ends_with(&format!(
                "{} cases: 0 not as expected, 0 invalid\n",
                cases.len()
            )),
            "{text}"
        );
    }
}

#[test]
fn explain_picks_one_case_by_id_and_takes_a_json_array() {
    let cases = corpus("events/fixtures/iam-policy-corpus.json");
    let file = format!(
        "{}/events/fixtures/iam-policy-corpus.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let pick = &cases[6];
    let id = pick["id"].as_str().unwrap();
    let out = doctor(&["explain", &file, "--case", id, "--output", "json"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], pick["expected"]["decision"]);
    assert!(!v["explanation"].as_array().unwrap().is_empty());

    let out = doctor(&["explain", &file, "--case", "NOPE"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--case NOPE"), "{}", stderr(&out));

    // An array of cases (here without ids or expectations) is no longer "not a JSON object".
    let array = format!(
        "[{}, {}]",
        case(json!({"s3:x-amz-server-side-encryption": "AES256"})),
        case(json!({"s3:x-amz-server-side-encryption": "aws:kms"}))
    );
    let out = doctor(&["explain", "-", "--output", "text"], &array);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("[0]  ExplicitDeny by bucket/DenyNonKms"),
        "{text}"
    );
    assert!(lines[1].starts_with("[1]  Allow by id/AllowPut"), "{text}");
}

/// rustc links only the crates a binary uses: clap is a dependency of the package, but only
/// the doctor uses it. A debug build keeps its symbol names, so clap's would show.
#[test]
fn the_lambda_binary_does_not_link_clap() {
    fn holds(path: &str, needle: &[u8]) -> bool {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        bytes.windows(needle.len()).any(|w| w == needle)
    }
    assert!(
        holds(env!("CARGO_BIN_EXE_ddb-export-doctor"), b"clap_builder"),
        "the probe must see clap where it is linked"
    );
    assert!(!holds(
        env!("CARGO_BIN_EXE_ddb-export-remediator"),
        b"clap_builder"
    ));
}
