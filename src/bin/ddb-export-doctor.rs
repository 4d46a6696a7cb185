//! `ddb-export-doctor`: the remediator's library on an engineer's laptop.
//!
//! `explain` (SPEC §5.1) evaluates IAM requests against the policies in a case, offline, and
//! says why each is allowed or denied. `diagnose`, `preflight` and `sweep` run the Lambda's
//! pipeline read-only with the caller's own credentials (the standard SDK chain): nothing is
//! written and no report is published. The command line is clap's (derive); clap is linked
//! into this binary only (tests/handler/cli.rs checks the Lambda binary does not carry it).

// A crate root looks for modules beside itself, where cargo would take them for binaries.
#[path = "ddb-export-doctor/explain.rs"]
mod explain;
#[path = "ddb-export-doctor/sdk_setup.rs"]
mod sdk_setup;

use aws_types::SdkConfig;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum, ValueHint};
use ddb_export_remediator::arn::Arn;
use ddb_export_remediator::domain::report::RemediationResult;
use ddb_export_remediator::model::Mode;
use ddb_export_remediator::model::{ExportDescription, ExportRequest, PitrInfo, TableInfo};
use ddb_export_remediator::ports::{ExportPage, ExportService, PortResult};
use ddb_export_remediator::{aws, App, Config};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const ABOUT: &str = "Explain and fix DynamoDB export failures, from your laptop";

const LONG_ABOUT: &str = "\
Explain and fix DynamoDB export failures, from your laptop.

diagnose, preflight and sweep run the remediator's pipeline read-only with your own credentials \
(the standard AWS SDK chain): they never retry, write a ledger or publish a report. explain \
evaluates IAM cases offline.";

const TOP_AFTER_HELP: &str = "\
Environment:
  The standard AWS variables and profiles (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...);
  S3_FORCE_PATH_STYLE=true for local emulators.

Exit status:
  0 when the command ran, whatever it found; 1 when AWS (or its setup: region, credentials,
  endpoint) failed a call the command needs; 2 for invalid input, with the flag it concerns.

Run `ddb-export-doctor <COMMAND> --help` for a command's options and examples.";

const DIAGNOSE_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor diagnose arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c
  ddb-export-doctor diagnose \"$ARN\" --member-role DdbExportRemediatorMember --output json
  ddb-export-doctor diagnose \"$ARN\" --profile prod --region eu-west-1";

const PREFLIGHT_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor preflight --table-arn arn:aws:dynamodb:us-east-1:111122223333:table/orders \\
      --s3-bucket amzn-s3-demo-bucket --s3-sse-algorithm AES256
  ddb-export-doctor preflight --table-arn \"$TABLE_ARN\" --s3-bucket amzn-s3-demo-bucket \\
      --s3-bucket-owner 444455556666 --s3-sse-algorithm KMS --s3-sse-kms-key-id \"$KEY_ARN\" \\
      --member-role DdbExportRemediatorMember --output json";

const SWEEP_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor sweep
  ddb-export-doctor sweep --region eu-west-1 --progress off --output json > sweep.json";

const EXPLAIN_EXAMPLES: &str = "\
A case is {\"policies\": [{\"kind\", \"name\", \"level\"?, \"doc\"}], \"request\": {\"principal\",
\"action\", \"resource\", \"resource_account\"?, \"context\"?}}; a context value {\"unknown\": true}
is a value the request has but you do not know. FILE holds one case, a JSON array of cases, or
an object with a \"cases\" list (each case with an \"id\" and, optionally, an \"expected\"
decision), like events/fixtures/iam-policy-corpus.json.

Examples:
  ddb-export-doctor explain case.json --output text
  ddb-export-doctor explain events/fixtures/iam-policy-corpus.json            # one line per case
  ddb-export-doctor explain events/fixtures/iam-policy-corpus.json --case C07 # one case, in full
  ddb-export-doctor explain - --output json < case.json";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  source <(ddb-export-doctor completions bash)
  ddb-export-doctor completions zsh > ~/.zfunc/_ddb-export-doctor
  ddb-export-doctor completions fish > ~/.config/fish/completions/ddb-export-doctor.fish";

#[derive(Parser)]
#[command(
    name = "ddb-export-doctor",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = TOP_AFTER_HELP,
    subcommand_required = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose one export (failed or completed): findings, evidence, the corrected command
    #[command(after_help = DIAGNOSE_EXAMPLES)]
    Diagnose {
        /// The export's ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/export/ID)
        #[arg(value_name = "EXPORT_ARN", value_parser = export_arn)]
        export_arn: String,
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        common: Common,
    },
    /// Check an export before you run it: what would fail, and the corrected command
    #[command(after_help = PREFLIGHT_EXAMPLES)]
    Preflight {
        #[command(flatten)]
        export: PreflightArgs,
        #[command(flatten)]
        member: Member,
        #[command(flatten)]
        common: Common,
    },
    /// List the account's exports in the region and report the failed ones
    #[command(after_help = SWEEP_EXAMPLES)]
    Sweep {
        /// Show the pages and exports listed so far on standard error [default: on when
        /// standard error is a terminal]
        #[arg(long, value_enum, value_name = "WHEN")]
        progress: Option<OnOff>,
        #[command(flatten)]
        common: Common,
    },
    /// Evaluate IAM cases offline and say why each request is allowed or denied
    #[command(
        long_about = "Evaluate IAM cases offline: identity, resource, key, boundary, session, SCP \
and RCP policies with AWS's documented logic. Prints the decision (Allow, ExplicitDeny, \
ImplicitDeny), the statement that decided it, and why; for a file of cases, one line per case.",
        after_help = EXPLAIN_EXAMPLES
    )]
    Explain {
        /// A JSON file of one or more cases, or - for standard input
        #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
        file: PathBuf,
        /// Evaluate only the case with this "id" (prints it in full)
        #[arg(long, value_name = "ID")]
        case: Option<String>,
        /// json: {"decision", "decidedBy", "explanation"} (one JSON object per line for several
        /// cases); text: for people [default: text on a terminal, json otherwise]
        #[arg(long, value_enum, value_name = "FORMAT")]
        output: Option<Format>,
    },
    /// Print a shell completion script (bash, zsh or fish) on standard output
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

#[derive(Args)]
struct PreflightArgs {
    /// The table to export (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)
    #[arg(long, value_name = "ARN", required = true, value_parser = table_arn)]
    table_arn: String,
    /// The destination bucket
    #[arg(long, value_name = "NAME", required = true, value_parser = bucket_name)]
    s3_bucket: String,
    /// The bucket owner's 12-digit account id (needed when the bucket is in another account)
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = account_id)]
    s3_bucket_owner: Option<String>,
    /// Key prefix in the bucket
    #[arg(long, value_name = "PREFIX")]
    s3_prefix: Option<String>,
    /// The export's server-side encryption
    #[arg(long, value_name = "ALGORITHM", value_parser = ["AES256", "KMS"])]
    s3_sse_algorithm: Option<String>,
    /// The KMS key for --s3-sse-algorithm KMS
    #[arg(long, value_name = "KEY")]
    s3_sse_kms_key_id: Option<String>,
}

#[derive(Args)]
struct Member {
    /// Role to assume in other accounts (bucket or key owners) to read their side
    #[arg(long, value_name = "NAME")]
    member_role: Option<String>,
}

/// Options every AWS-calling command takes.
#[derive(Args)]
struct Common {
    /// json: the Lambda's result schema; text: findings, evidence and the corrected command
    /// [default: text on a terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    output: Option<Format>,
    #[command(flatten)]
    aws: sdk_setup::AwsArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

fn export_arn(text: &str) -> Result<String, String> {
    Arn::export("EXPORT_ARN", text)
        .map(|_| text.to_string())
        .map_err(|e| e.reason)
}

fn table_arn(text: &str) -> Result<String, String> {
    Arn::table("--table-arn", text)
        .map(|_| text.to_string())
        .map_err(|e| e.reason)
}

/// S3's bucket naming rule (3-63 lowercase letters, digits, '-' and '.', "General purpose
/// bucket naming rules"), which the function's intake applies to a preflight too.
fn bucket_name(text: &str) -> Result<String, String> {
    let ok = (3..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(text.to_string())
    } else {
        Err("a bucket name is 3-63 lowercase letters, digits, '-' or '.'".into())
    }
}

fn account_id(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err("expected a 12-digit account id".into())
    }
}

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
            member,
            common,
        } => {
            let event = json!({"exportArn": export_arn, "mode": "diagnose"});
            pipeline(event, member.member_role, common, false)
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
            let event = json!({"preflight": body, "mode": "diagnose"});
            pipeline(event, member.member_role, common, false)
        }
        Command::Sweep { progress, common } => {
            let event =
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
            let progress = match progress {
                Some(OnOff::On) => true,
                Some(OnOff::Off) => false,
                None => std::io::stderr().is_terminal(),
            };
            pipeline(event, None, common, progress)
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

fn pipeline(event: Value, member_role: Option<String>, common: Common, progress: bool) -> ExitCode {
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
        let sdk = sdk_setup::load(&common.aws).await?;
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
