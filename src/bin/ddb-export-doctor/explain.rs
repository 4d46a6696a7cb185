//! `explain FILE`: one case in full, or a file of cases one line each (README, "On your laptop: ddb-export-doctor").

use super::{fail, Format};
use ddb_export_remediator::policy::{evaluate, parse_case, Decision, DecisionKind};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// What the file holds: one case, or a list of them (a JSON array, or an object's `cases`).
enum Cases {
    One(Value),
    Many(Vec<Value>),
}

fn cases_of(doc: Value) -> Result<Cases, String> {
    match doc {
        Value::Array(list) => Ok(Cases::Many(list)),
        Value::Object(mut obj) if !obj.contains_key("policies") && !obj.contains_key("request") => {
            match obj.remove("cases") {
                Some(Value::Array(list)) => Ok(Cases::Many(list)),
                _ => Err(
                    "expected a case ({\"policies\", \"request\"}), a JSON array of cases, \
                          or an object with a \"cases\" list"
                        .into(),
                ),
            }
        }
        one => Ok(Cases::One(one)),
    }
}

fn id_of(case: &Value) -> Option<&str> {
    case.get("id").and_then(Value::as_str)
}

pub(crate) fn run(file: &Path, pick: Option<&str>, output: Format) -> ExitCode {
    let name = file.display().to_string();
    let text = if name == "-" {
        let mut s = String::new();
        match std::io::stdin().read_to_string(&mut s) {
            Ok(_) => s,
            Err(e) => return fail(&format!("standard input: {e}")),
        }
    } else {
        match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => return fail(&format!("{name}: {e}")),
        }
    };
    let doc: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{name}: not JSON: {e}")),
    };
    let cases = match cases_of(doc) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{name}: {e}")),
    };
    match (cases, pick) {
        (Cases::One(case), None) => one(&case, output),
        (Cases::One(case), Some(id)) if id_of(&case) == Some(id) => one(&case, output),
        (Cases::One(_), Some(id)) => fail(&format!("--case {id}: {name} holds one case, not {id}")),
        (Cases::Many(list), Some(id)) => match list.iter().find(|c| id_of(c) == Some(id)) {
            Some(case) => one(case, output),
            None => fail(&format!(
                "--case {id}: no case with that id among the {} in {name}",
                list.len()
            )),
        },
        (Cases::Many(list), None) => many(&list, output),
    }
}

fn one(case: &Value, output: Format) -> ExitCode {
    let (policies, request) = match parse_case(case) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let decision = evaluate(&policies, &request);
    match output {
        Format::Json => match serde_json::to_string_pretty(&decision) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(&e.to_string()),
        },
        Format::Text => print_text(&decision),
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

fn kind_name(k: DecisionKind) -> &'static str {
    match k {
        DecisionKind::Allow => "Allow",
        DecisionKind::ExplicitDeny => "ExplicitDeny",
        DecisionKind::ImplicitDeny => "ImplicitDeny",
    }
}

/// Every case, one line each: id, decision, deciding statement, and the case's expected
/// decision when it carries one. A case that does not parse gets its error on its line, and
/// the exit status is then 2.
fn many(list: &[Value], output: Format) -> ExitCode {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the listing quietly.
    macro_rules! line {
        ($($arg:tt)*) => {
            if writeln!(out, $($arg)*).is_err() {
                return ExitCode::SUCCESS;
            }
        };
    }
    let (mut differ, mut invalid) = (0, 0);
    let width = list
        .iter()
        .filter_map(id_of)
        .map(str::len)
        .max()
        .unwrap_or(0);
    for (i, case) in list.iter().enumerate() {
        let id = id_of(case).map_or_else(|| format!("[{i}]"), str::to_string);
        let expected = case.get("expected").filter(|e| e.is_object());
        let want = expected.map(|e| {
            (
                e.get("decision").and_then(Value::as_str),
                // The corpus files spell it decided_by; our JSON output, decidedBy.
                e.get("decided_by")
                    .or_else(|| e.get("decidedBy"))
                    .and_then(Value::as_str),
            )
        });
        let parsed = if case.is_object() {
            parse_case(case).map_err(|e| e.to_string())
        } else {
            Err("not a case: expected a JSON object".to_string())
        };
        let decision = match parsed {
            Ok((policies, request)) => evaluate(&policies, &request),
            Err(e) => {
                invalid += 1;
                match output {
                    Format::Json => line!("{}", json!({"id": id, "error": e})),
                    Format::Text => line!("{id:<width$}  error: {e}"),
                }
                continue;
            }
        };
        let got = (
            Some(kind_name(decision.decision)),
            decision.decided_by.as_deref(),
        );
        let as_expected = want.map(|w| w == got);
        if as_expected == Some(false) {
            differ += 1;
        }
        match output {
            Format::Json => {
                let mut line = json!({
                    "id": id,
                    "decision": got.0,
                    "decidedBy": got.1,
                });
                if decision.uncertain {
                    line["uncertain"] = json!(true);
                }
                if let Some((d, by)) = want {
                    line["expected"] = json!({"decision": d, "decidedBy": by});
                    line["asExpected"] = json!(as_expected == Some(true));
                }
                line!("{line}");
            }
            Format::Text => {
                let shown = |d: Option<&str>, by: Option<&str>| match by {
                    Some(by) => format!("{} by {by}", d.unwrap_or("?")),
                    None => d.unwrap_or("?").to_string(),
                };
                let mut line = format!("{id:<width$}  {}", shown(got.0, got.1));
                if decision.uncertain {
                    line.push_str(" (uncertain)");
                }
                match want {
                    Some(w) if as_expected == Some(true) => {
                        line.push_str(&format!("  expected {}: ok", shown(w.0, w.1)))
                    }
                    Some(w) => line.push_str(&format!("  expected {}: DIFFERS", shown(w.0, w.1))),
                    None => {}
                }
                line!("{line}");
            }
        }
    }
    if let Format::Text = output {
        line!(
            "{} cases: {} not as expected, {} invalid",
            list.len(),
            differ,
            invalid
        );
    }
    if invalid > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
