//! `ddb-export-doctor`: the remediator's library on an engineer's laptop.
//!
//! `explain CASE.json` (SPEC §5.1) evaluates one IAM request against the policies in the case,
//! offline, and says why it is allowed or denied. `-` reads the case from standard input.
//! `diagnose`, `preflight` and `sweep` run the Lambda's pipeline read-only with the caller's
//! own credentials (the standard SDK chain): nothing is written and no report is published.

use ddb_export_remediator::domain::report::RemediationResult;
use ddb_export_remediator::model::Mode;
use ddb_export_remediator::model::{ExportDescription, ExportRequest, PitrInfo, TableInfo};
use ddb_export_remediator::policy::{evaluate, parse_case, Decision};
use ddb_export_remediator::ports::{ExportPage, ExportService, PortResult};
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

const HELP: &str = "\
NAME
    ddb-export-doctor - explain and fix DynamoDB export failures

SYNOPSIS
    ddb-export-doctor diagnose <export-arn> [--member-role NAME] [--output json|text]
    ddb-export-doctor preflight --table-arn ARN --s3-bucket NAME [--s3-bucket-owner ID]
                                [--s3-prefix P] [--s3-sse-algorithm AES256|KMS]
                                [--s3-sse-kms-key-id KEY] [--member-role NAME] [--output json|text]
    ddb-export-doctor sweep [--progress on|off] [--output json|text]
    ddb-export-doctor explain <CASE.json | -> [--output json|text]

DESCRIPTION
    diagnose
        Diagnoses one export (failed or completed) with your credentials: the findings, their
        evidence and the corrected command. Read-only: it never retries or changes anything.
    preflight
        Checks an export before you run it: what would fail, and the corrected command.
    sweep
        Lists the account's exports in the region and reports the failed ones.
    explain
        Evaluates one request against identity, resource, key, boundary, session, SCP and RCP
        policies, offline, with AWS's documented logic, and prints the decision (Allow,
        ExplicitDeny, ImplicitDeny), the statement that decided it, and why. CASE.json is
        {\"policies\": [{\"kind\", \"name\", \"level\"?, \"doc\"}], \"request\": {\"principal\",
        \"action\", \"resource\", \"resource_account\"?, \"context\"?}}; a context value
        {\"unknown\": true} is a value the request has but you do not know.

OPTIONS
    --output json|text
        json prints the Lambda's result (explain: {\"decision\", \"decidedBy\", \"explanation\"});
        text is the default on a terminal.
    --member-role NAME
        Role to assume in other accounts (bucket or key owners) to read their side.
    --progress on|off
        sweep: show the pages and exports listed so far on standard error (default: on when
        standard error is a terminal).

ENVIRONMENT
    The standard AWS variables and profiles (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL ...);
    S3_FORCE_PATH_STYLE=true for local emulators.
    -h, --help
        Show this help.

EXIT STATUS
    0 when the command ran, whatever it found; 1 when AWS refused or failed a call the command
    needs (e.g. the export does not exist); 2 for invalid input, with a one-line error.
";

enum Output {
    Json,
    Text,
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ddb-export-doctor: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{HELP}");
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    match args[0].as_str() {
        "explain" => explain(&args[1..]),
        "diagnose" | "preflight" | "sweep" => pipeline(&args[0], &args[1..]),
        other => fail(&format!("unknown command {other:?}; see --help")),
    }
}

fn explain(args: &[String]) -> ExitCode {
    let mut file = None;
    let mut output = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--output" => match it.next().map(String::as_str) {
                Some("json") => output = Some(Output::Json),
                Some("text") => output = Some(Output::Text),
                _ => return fail("--output takes json or text"),
            },
            f if file.is_none() => file = Some(f.to_string()),
            extra => return fail(&format!("unexpected argument {extra:?}")),
        }
    }
    let Some(file) = file else {
        return fail("explain needs a CASE.json file or - for standard input");
    };
    let text = if file == "-" {
        let mut s = String::new();
        match std::io::stdin().read_to_string(&mut s) {
            Ok(_) => s,
            Err(e) => return fail(&format!("standard input: {e}")),
        }
    } else {
        match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => return fail(&format!("{file}: {e}")),
        }
    };
    let case: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{file}: not JSON: {e}")),
    };
    let (policies, request) = match parse_case(&case) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let decision = evaluate(&policies, &request);
    let output = output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Text
    } else {
        Output::Json
    });
    match output {
        Output::Json => match serde_json::to_string_pretty(&decision) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(&e.to_string()),
        },
        Output::Text => print_text(&decision),
    }
    ExitCode::SUCCESS
}

fn print_text(d: &Decision) {
    let by = d.decided_by.as_deref().unwrap_or("nothing allowed it");
    println!(
        "{:?} ({by}){}",
        d.decision,
        if d.uncertain {
            " - depends on an unknown value"
        } else {
            ""
        }
    );
    for line in &d.explanation {
        println!("  - {line}");
    }
}

/// The export service with a running count of what a sweep has listed, on standard error.
struct Progress {
    inner: Box<dyn ExportService>,
    show: bool,
    pages: AtomicUsize,
    exports: AtomicUsize,
}

#[async_trait::async_trait]
impl ExportService for Progress {
    async fn describe_export(&self, arn: &str) -> PortResult<Option<ExportDescription>> {
        self.inner.describe_export(arn).await
    }
    async fn start_export(&self, request: &ExportRequest, token: &str) -> PortResult<String> {
        self.inner.start_export(request, token).await
    }
    async fn describe_table(&self, table: &str) -> PortResult<Option<TableInfo>> {
        self.inner.describe_table(table).await
    }
    async fn continuous_backups(&self, table: &str) -> PortResult<Option<PitrInfo>> {
        self.inner.continuous_backups(table).await
    }
    async fn table_policy(&self, table_arn: &str) -> PortResult<Option<String>> {
        self.inner.table_policy(table_arn).await
    }
    async fn list_exports(
        &self,
        table_arn: Option<&str>,
        next_token: Option<String>,
    ) -> PortResult<ExportPage> {
        let page = self.inner.list_exports(table_arn, next_token).await?;
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        let listed = self
            .exports
            .fetch_add(page.exports.len(), Ordering::Relaxed)
            + page.exports.len();
        if self.show {
            eprint!("\rsweep: {pages} ListExports pages, {listed} exports listed");
        }
        Ok(page)
    }
    async fn table_names(&self) -> PortResult<Vec<String>> {
        self.inner.table_names().await
    }
}

/// Parses `--flag value` pairs and positional arguments.
fn flags(
    args: &[String],
) -> Result<(Vec<String>, std::collections::HashMap<String, String>), String> {
    let mut positional = Vec::new();
    let mut named = std::collections::HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            named.insert(name.to_string(), value.clone());
        } else {
            positional.push(a.clone());
        }
    }
    Ok((positional, named))
}

fn pipeline(command: &str, args: &[String]) -> ExitCode {
    let (positional, mut named) = match flags(args) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let output = match named.remove("output").as_deref() {
        Some("json") => Output::Json,
        Some("text") => Output::Text,
        None if std::io::stdout().is_terminal() => Output::Text,
        None => Output::Json,
        Some(other) => return fail(&format!("--output takes json or text, not {other:?}")),
    };
    let member_role = named.remove("member-role");
    let progress = match named.remove("progress").as_deref() {
        Some("on") => true,
        Some("off") => false,
        None => std::io::stderr().is_terminal(),
        Some(other) => return fail(&format!("--progress takes on or off, not {other:?}")),
    };
    let event = match command {
        "diagnose" => match positional.as_slice() {
            [arn] => json!({"exportArn": arn, "mode": "diagnose"}),
            _ => return fail("diagnose takes one export ARN"),
        },
        "preflight" => {
            let mut body = serde_json::Map::new();
            for (flag, field) in [
                ("table-arn", "tableArn"),
                ("s3-bucket", "s3Bucket"),
                ("s3-bucket-owner", "s3BucketOwner"),
                ("s3-prefix", "s3Prefix"),
                ("s3-sse-algorithm", "s3SseAlgorithm"),
                ("s3-sse-kms-key-id", "s3SseKmsKeyId"),
            ] {
                if let Some(v) = named.remove(flag) {
                    body.insert(field.into(), Value::String(v));
                }
            }
            json!({"preflight": body, "mode": "diagnose"})
        }
        _ => json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
    };
    if let Some(unknown) = named.keys().next() {
        return fail(&format!("unknown option --{unknown} for {command}"));
    }
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    // A laptop run never writes: read-only mode, no ledger, no reports.
    config.mode = Mode::Diagnose;
    config.ledger_table_name = None;
    config.publish_reports = false;
    if member_role.is_some() {
        config.member_role_name = member_role;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string()),
    };
    let result = runtime.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let app = aws::build_app(config, &sdk);
        let app = App {
            exports: Box::new(Progress {
                inner: app.exports,
                show: progress && command == "sweep",
                pages: AtomicUsize::new(0),
                exports: AtomicUsize::new(0),
            }),
            ..app
        };
        let result = app.handle(&event, None).await;
        if progress && command == "sweep" {
            eprintln!();
        }
        result
    });
    match result {
        Ok(r) => {
            match output {
                Output::Json => match serde_json::to_string_pretty(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => return fail(&e.to_string()),
                },
                Output::Text => print_result(&r),
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.error_type() == "InvalidEvent" => fail(&e.public_message()),
        Err(e) => {
            eprintln!(
                "ddb-export-doctor: {}: {}",
                e.error_type(),
                e.public_message()
            );
            ExitCode::from(1)
        }
    }
}

fn print_result(r: &RemediationResult) {
    if let Some(s) = &r.sweep {
        println!(
            "{} exports listed in {} ListExports calls; {} failed:",
            s.exports_listed,
            s.list_calls,
            s.failed_exports.len()
        );
        for arn in &s.failed_exports {
            println!("  {arn}");
        }
        return;
    }
    if let Some(arn) = &r.incident.export_arn {
        println!("Export   {arn}");
    }
    if let Some(code) = &r.incident.failure_code {
        println!(
            "Failure  {code}: {}",
            r.incident.failure_message.as_deref().unwrap_or("")
        );
    }
    if r.findings.is_empty() {
        println!("\nNo findings.");
    } else {
        println!("\n{:<34} {:<10} SUMMARY", "CAUSE", "CONFIDENCE");
        for f in &r.findings {
            println!(
                "{:<34} {:<10} {}",
                f.cause.code(),
                format!("{:?}", f.confidence).to_uppercase(),
                f.summary
            );
        }
    }
    for f in &r.findings {
        println!("\n{}: {}", f.cause.code(), f.remedy.text);
        for e in &f.evidence {
            println!("  - {} [{}]", e.fact, e.source);
        }
        if let Some(c) = &f.remedy.command {
            println!("  Corrected command:\n    {c}");
        }
        if let Some(s) = &f.remedy.statement {
            println!("  Statement:\n    {s}");
        }
    }
    for n in &r.notes {
        println!("\nNote: {n}");
    }
}
