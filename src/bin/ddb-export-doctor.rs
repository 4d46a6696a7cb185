//! `ddb-export-doctor`: the remediator's library on an engineer's laptop.
//!
//! `explain CASE.json` (SPEC §5.1) evaluates one IAM request against the policies in the case,
//! offline, and says why it is allowed or denied. `-` reads the case from standard input.

use ddb_export_remediator::policy::{evaluate, parse_case, Decision};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;

const HELP: &str = "\
NAME
    ddb-export-doctor - explain and fix DynamoDB export failures

SYNOPSIS
    ddb-export-doctor explain <CASE.json | -> [--output json|text]

DESCRIPTION
    explain
        Evaluates one request against identity, resource, key, boundary, session, SCP and RCP
        policies, offline, with AWS's documented logic, and prints the decision (Allow,
        ExplicitDeny, ImplicitDeny), the statement that decided it, and why. CASE.json is
        {\"policies\": [{\"kind\", \"name\", \"level\"?, \"doc\"}], \"request\": {\"principal\",
        \"action\", \"resource\", \"resource_account\"?, \"context\"?}}; a context value
        {\"unknown\": true} is a value the request has but you do not know.

OPTIONS
    --output json|text
        json prints {\"decision\", \"decidedBy\", \"explanation\"}; text is the default on a terminal.
    -h, --help
        Show this help.

EXIT STATUS
    0 whatever the decision; 2 for invalid input, with a one-line error naming the field.
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
