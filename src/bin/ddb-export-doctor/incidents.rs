//! `ddb-export-doctor incidents`: the operator's view of what the remediator has done, read
//! from its ledger (the deployed stack's `LedgerTableName` output) with the caller's own
//! credentials. It needs only `dynamodb:Query` and `dynamodb:GetItem` on the ledger table
//! (the reads the function itself has on it) and, for `show`, `dynamodb:DescribeExport` on the
//! retries. It writes nothing.

use super::cli::{export_arn, Format};
use super::sdk_setup;
use clap::{Args, Subcommand, ValueEnum};
use ddb_export_remediator::aws::DynamoLedger;
use ddb_export_remediator::domain::outcome::{text, OutcomeKind, Verdict};
use ddb_export_remediator::ports::{Ledger, RecordedOutcome};
use ddb_export_remediator::Error;
use serde_json::{json, Value};
use std::process::ExitCode;

pub(crate) const EXAMPLES: &str = "\
Examples:
  ddb-export-doctor incidents --ledger-table ddb-export-remediator-LedgerTable-ABC --days 7
  ddb-export-doctor incidents --ledger-table \"$LEDGER\" --outcome GAVE_UP --output json
  ddb-export-doctor incidents --ledger-table \"$LEDGER\" show arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c

The ledger table is the stack's output LedgerTableName. Reads only: dynamodb:Query and
dynamodb:GetItem on the ledger (the function's own read permissions on it), and
dynamodb:DescribeExport for each retry's current status in `show`.";

#[derive(Args)]
pub(crate) struct IncidentsArgs {
    #[command(subcommand)]
    pub(crate) show: Option<Show>,
    /// The remediator's ledger table (the stack's LedgerTableName output)
    #[arg(long, value_name = "TABLE")]
    pub(crate) ledger_table: String,
    /// Incidents closed in the last N days
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub(crate) days: u32,
    /// Only incidents that ended so
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub(crate) outcome: Option<OutcomeArg>,
    /// json or text [default: text on a terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) output: Option<Format>,
    #[command(flatten)]
    pub(crate) aws: sdk_setup::AwsArgs,
}

#[derive(Subcommand)]
pub(crate) enum Show {
    /// One incident's whole story: the failure, each retry with its status, key-policy
    /// changes with their rollback, the outcome
    Show {
        /// The failed export's ARN, or one of its retries'
        #[arg(value_name = "EXPORT_ARN", value_parser = export_arn)]
        export_arn: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum OutcomeArg {
    Resolved,
    GaveUp,
    NeedsPerson,
}

impl OutcomeArg {
    fn kind(self) -> OutcomeKind {
        match self {
            Self::Resolved => OutcomeKind::Resolved,
            Self::GaveUp => OutcomeKind::GaveUp,
            Self::NeedsPerson => OutcomeKind::NeedsPerson,
        }
    }
}

/// Most incidents one listing reads.
const LIST_LIMIT: usize = 1000;

pub(crate) fn run(args: IncidentsArgs, output: Format) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return super::fail(&e.to_string()),
    };
    let result = runtime.block_on(async {
        // `show`: the export ARN's Region, as the other commands take it from their ARN.
        let arn_region = match &args.show {
            Some(Show::Show { export_arn }) => export_arn.split(':').nth(3),
            None => None,
        };
        let sdk = sdk_setup::load(&args.aws, arn_region).await?;
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let ledger = DynamoLedger::new(ddb.clone(), args.ledger_table.clone());
        let out = match &args.show {
            None => list(&ledger, &args).await,
            Some(Show::Show { export_arn }) => show(&ledger, &ddb, export_arn).await,
        };
        out.map_err(|e| sdk_setup::explain_failure(&e, &sdk))
    });
    match result {
        Ok(v) => {
            match output {
                Format::Json => match serde_json::to_string_pretty(&v) {
                    Ok(s) => println!("{s}"),
                    Err(e) => return super::fail(&e.to_string()),
                },
                Format::Text => print_text(&v),
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("ddb-export-doctor: {}", failure.message);
            ExitCode::from(failure.exit_code)
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn entry(r: &RecordedOutcome) -> Value {
    json!({
        "outcome": r.outcome.kind(),
        "rootExportArn": r.outcome.subject.root_export_arn,
        "tableArn": r.outcome.subject.table_arn,
        "cause": r.outcome.cause(),
        "recordedAt": r.recorded_at,
        "published": r.published,
        "headline": text::headline(&r.outcome),
    })
}

async fn list(ledger: &DynamoLedger, args: &IncidentsArgs) -> Result<Value, Error> {
    let since = now() - i64::from(args.days) * 24 * 3600;
    let all = ledger.outcomes_since(since, LIST_LIMIT).await?;
    let wanted = args.outcome.map(OutcomeArg::kind);
    let shown: Vec<Value> = all
        .iter()
        .filter(|r| wanted.is_none_or(|k| r.outcome.kind() == k))
        .map(entry)
        .collect();
    let count = |k: OutcomeKind| all.iter().filter(|r| r.outcome.kind() == k).count();
    Ok(json!({
        "days": args.days,
        "counts": {
            "RESOLVED": count(OutcomeKind::Resolved),
            "GAVE_UP": count(OutcomeKind::GaveUp),
            "NEEDS_PERSON": count(OutcomeKind::NeedsPerson),
        },
        "incidents": shown,
    }))
}

async fn show(
    ledger: &DynamoLedger,
    ddb: &aws_sdk_dynamodb::Client,
    export_arn: &str,
) -> Result<Value, Error> {
    // A retry names its root in its lineage; the incident is kept under the root.
    let root = ledger
        .lineage(export_arn)
        .await?
        .map_or_else(|| export_arn.to_string(), |l| l.root_export_arn);
    let recorded = ledger.outcome(&root).await?;
    let open = if recorded.is_none() {
        ledger.followed(export_arn).await?
    } else {
        None
    };
    let (subject, attempts, change_ids, verdict) = match (&recorded, &open) {
        (Some(r), _) => {
            let o = &r.outcome;
            let (attempts, ids) = match &o.verdict {
                Verdict::Resolved(v) => (
                    vec![json!({"attempt": null, "exportArn": v.export_arn, "causes": []})],
                    v.change_ids.clone(),
                ),
                Verdict::GaveUp(g) => (
                    g.attempts.iter().map(|a| json!(a)).collect(),
                    g.change_ids.clone(),
                ),
                Verdict::NeedsPerson(_) => (Vec::new(), Vec::new()),
            };
            (json!(o.subject), attempts, ids, json!(o.verdict))
        }
        (None, Some(f)) => {
            let mut attempts: Vec<Value> = f.history.iter().map(|a| json!(a)).collect();
            attempts
                .push(json!({"attempt": f.attempt, "exportArn": f.retry_export_arn, "causes": []}));
            (
                json!(f.subject),
                attempts,
                f.change_ids.clone(),
                Value::Null,
            )
        }
        (None, None) => (
            json!({"rootExportArn": root}),
            Vec::new(),
            Vec::new(),
            Value::Null,
        ),
    };
    // Each retry's status now, from DescribeExport.
    let mut retries = Vec::new();
    for a in attempts {
        let arn = a["exportArn"].as_str().unwrap_or_default().to_string();
        let status = if arn.is_empty() {
            None
        } else {
            ddb.describe_export()
                .export_arn(&arn)
                .send()
                .await
                .ok()
                .and_then(|d| d.export_description().cloned())
                .and_then(|d| d.export_status().map(|s| s.as_str().to_string()))
        };
        let mut a = a;
        a["status"] = json!(status);
        retries.push(a);
    }
    let mut changes = Vec::new();
    for id in &change_ids {
        let change = ledger.key_change(id).await?;
        changes.push(json!({
            "changeId": id,
            "keyArn": change.as_ref().map(|c| c.key_arn.clone()),
            "status": change.as_ref().map(|c| c.status.as_str()),
            "rollback": format!("aws lambda invoke --function-name <the stack's FunctionName> --cli-binary-format raw-in-base64-out --payload '{{\"rollback\":{{\"changeId\":\"{id}\"}}}}' rollback.json"),
        }));
    }
    Ok(json!({
        "rootExportArn": root,
        "subject": subject,
        "outcome": recorded.as_ref().map(|r| r.outcome.kind()),
        "open": recorded.is_none() && open.is_some(),
        "published": recorded.as_ref().map(|r| r.published),
        "headline": recorded.as_ref().map(|r| text::headline(&r.outcome)),
        "attempts": retries,
        "keyPolicyChanges": changes,
        "verdict": verdict,
    }))
}

fn print_text(v: &Value) {
    if let Some(list) = v["incidents"].as_array() {
        let c = &v["counts"];
        println!(
            "Last {} days: {} RESOLVED, {} GAVE_UP, {} NEEDS_PERSON",
            v["days"], c["RESOLVED"], c["GAVE_UP"], c["NEEDS_PERSON"]
        );
        for i in list {
            println!(
                "{:<13} {}  {}",
                i["outcome"].as_str().unwrap_or("?"),
                i["cause"].as_str().unwrap_or("?"),
                i["rootExportArn"].as_str().unwrap_or("?")
            );
            println!("              {}", i["headline"].as_str().unwrap_or(""));
        }
        return;
    }
    println!("Incident {}", v["rootExportArn"].as_str().unwrap_or("?"));
    match v["headline"].as_str() {
        Some(h) => println!("Outcome  {h}"),
        None if v["open"] == json!(true) => println!("Outcome  open: a retry is running"),
        None => println!("Outcome  none recorded"),
    }
    for a in v["attempts"].as_array().into_iter().flatten() {
        println!(
            "Attempt  {}  {}  {}  {}",
            a["attempt"],
            a["exportArn"].as_str().unwrap_or("-"),
            a["status"].as_str().unwrap_or("?"),
            a["causes"]
                .as_array()
                .map(|c| c
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    for c in v["keyPolicyChanges"].as_array().into_iter().flatten() {
        println!(
            "Change   {}  {}  {}",
            c["changeId"].as_str().unwrap_or("?"),
            c["keyArn"].as_str().unwrap_or("?"),
            c["status"].as_str().unwrap_or("?")
        );
        println!(
            "         rollback: {}",
            c["rollback"].as_str().unwrap_or("")
        );
    }
}
