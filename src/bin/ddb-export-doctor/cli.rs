//! The command line (clap derive): commands, flags, their help and value checks.

use super::sdk_setup;
use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use ddb_export_remediator::arn::Arn;
use std::path::PathBuf;

pub(crate) const ABOUT: &str = "Explain and fix DynamoDB export failures, from your laptop";

pub(crate) const LONG_ABOUT: &str = "\
Explain and fix DynamoDB export failures, from your laptop.

diagnose, preflight and sweep run the remediator's pipeline read-only with your own credentials \
(the standard AWS SDK chain): they never retry, write a ledger or publish a report. explain \
evaluates IAM cases offline.";

pub(crate) const TOP_AFTER_HELP: &str = "\
Environment:
  The standard AWS variables and profiles (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...);
  S3_FORCE_PATH_STYLE=true for local emulators.

Exit status:
  0 when the command ran, whatever it found; 1 when AWS (or its setup: region, credentials,
  endpoint) failed a call the command needs; 2 for invalid input, with the flag it concerns.

Run `ddb-export-doctor <COMMAND> --help` for a command's options and examples.";

pub(crate) const DIAGNOSE_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor diagnose arn:aws:dynamodb:us-east-1:111122223333:table/orders/export/01795508400000-9f8e7d6c
  ddb-export-doctor diagnose \"$ARN\" --member-role DdbExportRemediatorMember --output json
  ddb-export-doctor diagnose \"$ARN\" --profile prod --region eu-west-1";

pub(crate) const PREFLIGHT_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor preflight --table-arn arn:aws:dynamodb:us-east-1:111122223333:table/orders \\
      --s3-bucket amzn-s3-demo-bucket --s3-sse-algorithm AES256
  ddb-export-doctor preflight --table-arn \"$TABLE_ARN\" --s3-bucket amzn-s3-demo-bucket \\
      --s3-bucket-owner 444455556666 --s3-sse-algorithm KMS --s3-sse-kms-key-id \"$KEY_ARN\" \\
      --member-role DdbExportRemediatorMember --output json";

pub(crate) const SWEEP_EXAMPLES: &str = "\
Examples:
  ddb-export-doctor sweep
  ddb-export-doctor sweep --region eu-west-1 --progress off --output json > sweep.json

A sweep names no ARN: it needs a region (--region, AWS_REGION or the profile's).";

pub(crate) const EXPLAIN_EXAMPLES: &str = "\
A case is {\"policies\": [{\"kind\", \"name\", \"level\"?, \"doc\"}], \"request\": {\"principal\",
\"action\", \"resource\", \"resource_account\"?, \"context\"?}}; a context value {\"unknown\": true}
is a value the request has but you do not know. FILE holds one case, a JSON array of cases, or
an object with a \"cases\" list (each case with an \"id\" and, optionally, an \"expected\"
decision), like events/fixtures/iam-policy-corpus.json.

Examples:
  ddb-export-doctor explain events/fixtures/explain-case.json --output text
  ddb-export-doctor explain events/fixtures/iam-policy-corpus.json            # one line per case
  ddb-export-doctor explain events/fixtures/iam-policy-corpus.json --case C07 # one case, in full
  ddb-export-doctor explain - --output json < events/fixtures/explain-case.json";

pub(crate) const COMPLETIONS_EXAMPLES: &str = "\
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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Diagnose one export (failed or completed): findings, evidence, the corrected command
    #[command(after_help = DIAGNOSE_EXAMPLES)]
    Diagnose {
        /// The export's ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/export/ID)
        #[arg(
            value_name = "EXPORT_ARN",
            value_parser = export_arn,
            required_unless_present = "export_arn_flag",
            conflicts_with = "export_arn_flag"
        )]
        export_arn: Option<String>,
        /// The same, as the AWS CLI spells it (`aws dynamodb describe-export --export-arn`)
        #[arg(
            long = "export-arn",
            id = "export_arn_flag",
            value_name = "EXPORT_ARN",
            value_parser = export_arn
        )]
        export_arn_flag: Option<String>,
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
    /// The remediator's incidents from its ledger: how each ended (RESOLVED, GAVE_UP,
    /// NEEDS_PERSON), or one incident's whole story
    #[command(after_help = super::incidents::EXAMPLES)]
    Incidents(super::incidents::IncidentsArgs),
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
pub(crate) struct PreflightArgs {
    /// The table to export (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME)
    #[arg(long, value_name = "ARN", required = true, value_parser = table_arn)]
    pub(crate) table_arn: String,
    /// The destination bucket
    #[arg(long, value_name = "NAME", required = true, value_parser = bucket_name)]
    pub(crate) s3_bucket: String,
    /// The bucket owner's 12-digit account id (needed when the bucket is in another account)
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = account_id)]
    pub(crate) s3_bucket_owner: Option<String>,
    /// Key prefix in the bucket
    #[arg(long, value_name = "PREFIX")]
    pub(crate) s3_prefix: Option<String>,
    /// The export's server-side encryption
    #[arg(long, value_name = "ALGORITHM", value_parser = ["AES256", "KMS"])]
    pub(crate) s3_sse_algorithm: Option<String>,
    /// The KMS key for --s3-sse-algorithm KMS
    #[arg(long, value_name = "KEY")]
    pub(crate) s3_sse_kms_key_id: Option<String>,
}

#[derive(Args)]
pub(crate) struct Member {
    /// Role to assume in other accounts (bucket or key owners) to read their side
    #[arg(long, value_name = "NAME")]
    pub(crate) member_role: Option<String>,
}

/// Options every AWS-calling command takes.
#[derive(Args)]
pub(crate) struct Common {
    /// json: the Lambda's result schema; text: findings, evidence and the corrected command
    /// [default: text on a terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) output: Option<Format>,
    #[command(flatten)]
    pub(crate) aws: sdk_setup::AwsArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Json,
    Text,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn export_arn(text: &str) -> Result<String, String> {
    Arn::export("EXPORT_ARN", text)
        .map(|_| text.to_string())
        .map_err(|e| e.reason)
}

pub(crate) fn table_arn(text: &str) -> Result<String, String> {
    Arn::table("--table-arn", text)
        .map(|_| text.to_string())
        .map_err(|e| e.reason)
}

/// S3's bucket naming rule (3-63 lowercase letters, digits, '-' and '.', "General purpose
/// bucket naming rules"), which the function's intake applies to a preflight too.
pub(crate) fn bucket_name(text: &str) -> Result<String, String> {
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

pub(crate) fn account_id(text: &str) -> Result<String, String> {
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(text.to_string())
    } else {
        Err("expected a 12-digit account id".into())
    }
}
