//! The message a person receives when an incident closes: the first line says what happened and
//! whether the data landed; the next lines say what to look at or do.

use super::{GaveUpReason, NeedsPersonReason, Outcome, Verdict};

/// `1204332` -> `1,204,332`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// `360` -> `6 min`; under a minute in seconds, from two hours in hours and minutes.
pub fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 7200 => format!("{} min", (s + 30) / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn what(o: &Outcome) -> String {
    let table = o.subject.table_name().unwrap_or("the");
    match o.subject.s3_bucket.as_deref() {
        Some(b) => format!("{table} export to {b}"),
        None => format!("{table} export"),
    }
}

/// The first line.
pub fn headline(o: &Outcome) -> String {
    let what = what(o);
    match &o.verdict {
        Verdict::Resolved(r) => {
            let with = if r.corrections.is_empty() {
                String::new()
            } else {
                format!(" with {}", r.corrections.join(", "))
            };
            let after = r
                .seconds_to_resolution
                .map(|s| format!(" {} after it failed", duration(s)))
                .unwrap_or_default();
            let items = r
                .item_count
                .map(|n| format!(" ({} items)", thousands(n)))
                .unwrap_or_default();
            format!("Resolved: {what} retried{with} and COMPLETED{after}{items}.")
        }
        Verdict::GaveUp(g) => {
            let why = match g.reason {
                GaveUpReason::MaxRetries => match retries(g) {
                    1 => "its retry failed too".to_string(),
                    n => format!("{n} retries failed"),
                },
                GaveUpReason::SameCauseAgain => "the retry failed again with the same cause".into(),
                GaveUpReason::RetryDisappeared => "the retry export disappeared".into(),
                GaveUpReason::RetryRefused => "DynamoDB refused the retry".into(),
            };
            format!("Gave up: {what} is still FAILED ({why}); the data did NOT land.")
        }
        Verdict::NeedsPerson(n) => {
            let cause = n.causes.first().map_or("an unknown cause", String::as_str);
            let why = match n.reason {
                NeedsPersonReason::ReadOnlyMode => "this deployment only diagnoses and plans",
                NeedsPersonReason::NoAutomaticFix => "no automatic retry can fix it",
                NeedsPersonReason::OutsideWriteScope => {
                    "the retry is outside the function's write scope"
                }
            };
            format!("Needs a person: {what} FAILED with {cause} and {why}; the data did NOT land.")
        }
    }
}

fn retries(g: &super::GaveUp) -> usize {
    g.attempts.iter().filter(|a| a.attempt > 0).count().max(1)
}

/// The whole message: the headline, then one line per fact a person acts on.
pub fn message(o: &Outcome) -> String {
    let mut lines = vec![headline(o)];
    lines.push(format!("Failed export: {}", o.subject.root_export_arn));
    match &o.verdict {
        Verdict::Resolved(r) => {
            lines.push(format!("Completed export: {}", r.export_arn));
            if !r.causes.is_empty() {
                lines.push(format!("Fixed: {}", r.causes.join(", ")));
            }
            for id in &r.change_ids {
                lines.push(format!(
                    "Key policy changed: {id} (rollback: invoke the function with the payload {{rollback: {{changeId: {id}}}}}, see the README)"
                ));
            }
        }
        Verdict::GaveUp(g) => {
            for a in &g.attempts {
                let label = if a.attempt == 0 {
                    "Original export".to_string()
                } else {
                    format!("Retry {}", a.attempt)
                };
                let causes = if a.causes.is_empty() {
                    "no cause found".to_string()
                } else {
                    a.causes.join(", ")
                };
                lines.push(format!("{label}: {causes}"));
            }
            lines.push(format!("Next: {}", g.next_step));
            if let Some(c) = &g.command {
                lines.push(format!("Command: {c}"));
            }
        }
        Verdict::NeedsPerson(n) => {
            if let Some(r) = &n.remedy {
                lines.push(format!("Remedy: {r}"));
            }
            if let Some(c) = &n.command {
                lines.push(format!("Command: {c}"));
            }
            if !n.would_apply.is_empty() {
                let actions: Vec<&str> = n
                    .would_apply
                    .iter()
                    .filter_map(|a| a.get("action").and_then(|v| v.as_str()))
                    .collect();
                lines.push(format!("Apply mode would run: {}", actions.join(", ")));
            }
        }
    }
    lines.join("\n")
}
