//! `ddb-export-doctor`: the remediator's library on an engineer's laptop.
//!
//! `explain` (README, "On your laptop: ddb-export-doctor") evaluates IAM requests against the policies in a case, offline, and
//! says why each is allowed or denied. `diagnose`, `preflight` and `sweep` run the Lambda's
//! pipeline read-only with the caller's own credentials (the standard SDK chain): nothing is
//! written and no report is published. The command line is clap's (derive); clap is linked
//! into this binary only (tests/handler/cli.rs checks the Lambda binary does not carry it).

// A crate root looks for modules beside itself, where cargo would take them for binaries.
#[path = "ddb-export-doctor/cli.rs"]
mod cli;
#[path = "ddb-export-doctor/explain.rs"]
mod explain;
#[path = "ddb-export-doctor/incidents.rs"]
mod incidents;
#[path = "ddb-export-doctor/sdk_setup.rs"]
mod sdk_setup;
use cli::*;

use aws_types::SdkConfig;
use clap::{CommandFactory, Parser};
use ddb_export_remediator::domain::command;
use ddb_export_remediator::domain::report::RemediationResult;
use ddb_export_remediator::model::Mode;
use ddb_export_remediator::model::{ExportDescription, ExportRequest, PitrInfo, TableInfo};
use ddb_export_remediator::ports::{ExportPage, ExportService, PortResult};
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn fail(msg: &str) -> ExitCode {
    eprintln!("ddb-export-doctor: {msg}");
    ExitCode::from(2)
}

/// The format asked for, or text on a terminal and JSON otherwise.
fn format_or_default(output: Option<Format>) -> Format {
    output.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Text
    } else {
        Format::Json
    })
}

fn main() -> ExitCode {
    // clap prints usage errors with the flag concerned and exits 2; --help and --version exit 0.
    let cli = Cli::parse();
    match cli.command {
        Command::Incidents(args) => {
            let output = format_or_default(args.output);
            incidents::run(args, output)
        }
        Command::Explain { file, case, output } => {
            explain::run(&file, case.as_deref(), format_or_default(output))
        }
        Command::Completions { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ddb-export-doctor",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Command::Diagnose {
            export_arn,
            export_arn_flag,
            member,
            common,
        } => {
            // clap requires exactly one of the two.
            let Some(export_arn) = export_arn.or(export_arn_flag) else {
                return fail("EXPORT_ARN or --export-arn <EXPORT_ARN> is required");
            };
            let region = arn_region(&export_arn);
            let event = json!({"exportArn": export_arn, "mode": "diagnose"});
            pipeline(event, member.member_role, common, false, region)
        }
        Command::Preflight {
            export,
            member,
            common,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("tableArn".into(), Value::String(export.table_arn));
            body.insert("s3Bucket".into(), Value::String(export.s3_bucket));
            for (field, value) in [
                ("s3BucketOwner", export.s3_bucket_owner),
                ("s3Prefix", export.s3_prefix),
                ("s3SseAlgorithm", export.s3_sse_algorithm),
                ("s3SseKmsKeyId", export.s3_sse_kms_key_id),
            ] {
                if let Some(v) = value {
                    body.insert(field.into(), Value::String(v));
                }
            }
            let region = body
                .get("tableArn")
                .and_then(Value::as_str)
                .and_then(arn_region);
            let event = json!({"preflight": body, "mode": "diagnose"});
            pipeline(event, member.member_role, common, false, region)
        }
        Command::Sweep { progress, common } => {
            let event =
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
            let progress = match progress {
                Some(OnOff::On) => true,
                Some(OnOff::Off) => false,
                None => std::io::stderr().is_terminal(),
            };
            pipeline(event, None, common, progress, None)
        }
    }
}

/// The export service with a running count of what a sweep has listed, on standard error, and
/// the first region, credential or endpoint problem its calls met (the pipeline turns a failed
/// read into an unknown fact, which would otherwise hide an unreachable endpoint).
struct Progress {
    inner: Box<dyn ExportService>,
    show: bool,
    pages: AtomicUsize,
    exports: AtomicUsize,
    sdk: SdkConfig,
    problem: Arc<Mutex<Option<String>>>,
}

impl Progress {
    fn watch<T>(&self, result: PortResult<T>) -> PortResult<T> {
        if let Err(e) = &result {
            if let Some(p) = sdk_setup::setup_problem(e, &self.sdk) {
                if let Ok(mut first) = self.problem.lock() {
                    first.get_or_insert(p);
                }
            }
        }
        result
    }
}

#[async_trait::async_trait]
impl ExportService for Progress {
    async fn describe_export(&self, arn: &str) -> PortResult<Option<ExportDescription>> {
        self.watch(self.inner.describe_export(arn).await)
    }
    async fn start_export(&self, request: &ExportRequest, token: &str) -> PortResult<String> {
        self.watch(self.inner.start_export(request, token).await)
    }
    async fn describe_table(&self, table: &str) -> PortResult<Option<TableInfo>> {
        self.watch(self.inner.describe_table(table).await)
    }
    async fn continuous_backups(&self, table: &str) -> PortResult<Option<PitrInfo>> {
        self.watch(self.inner.continuous_backups(table).await)
    }
    async fn table_policy(&self, table_arn: &str) -> PortResult<Option<String>> {
        self.watch(self.inner.table_policy(table_arn).await)
    }
    async fn list_exports(
        &self,
        table_arn: Option<&str>,
        next_token: Option<String>,
    ) -> PortResult<ExportPage> {
        let page = self.watch(self.inner.list_exports(table_arn, next_token).await)?;
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
        self.watch(self.inner.table_names().await)
    }
}

/// The region an ARN names (the value parsers have checked it), used when none is configured.
fn arn_region(arn: &str) -> Option<String> {
    ddb_export_remediator::arn::Arn::parse("arn", arn)
        .ok()
        .map(|a| a.region)
        .filter(|r| !r.is_empty())
}

fn pipeline(
    event: Value,
    member_role: Option<String>,
    common: Common,
    progress: bool,
    arn_region: Option<String>,
) -> ExitCode {
    let output = format_or_default(common.output);
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
        // Region and credentials are resolved here, before the first call, so that a missing
        // one is reported as such rather than as a failed call.
        let sdk = sdk_setup::load(&common.aws, arn_region.as_deref()).await?;
        let app = aws::build_app(config, &sdk);
        let problem = Arc::new(Mutex::new(None));
        let app = App {
            exports: Box::new(Progress {
                inner: app.exports,
                show: progress,
                pages: AtomicUsize::new(0),
                exports: AtomicUsize::new(0),
                sdk: sdk.clone(),
                problem: problem.clone(),
            }),
            ..app
        };
        let result = app.handle(&event, None).await;
        if progress {
            eprintln!();
        }
        let result = result.map_err(|e| sdk_setup::explain_failure(&e, &sdk))?;
        match problem.lock().ok().and_then(|mut p| p.take()) {
            Some(p) => Err(sdk_setup::absorbed(p)),
            None => Ok(result),
        }
    });
    match result {
        Ok(r) => {
            match output {
                Format::Json => match serde_json::to_string_pretty(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => return fail(&e.to_string()),
                },
                Format::Text => print_result(&r),
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("ddb-export-doctor: {}", failure.message);
            ExitCode::from(failure.exit_code)
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
            // One flag a line with `\` continuations: a paste runs the whole command.
            println!("  Corrected command:");
            for line in command::continued(c, "      ") {
                println!("    {line}");
            }
        }
        if let Some(s) = &f.remedy.statement {
            println!("  Statement:\n    {s}");
        }
    }
    for n in &r.notes {
        println!("\nNote: {n}");
    }
}
