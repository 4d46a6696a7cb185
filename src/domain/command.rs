//! The corrected `aws dynamodb export-table-to-point-in-time` command, in full.

use crate::model::ExportRequest;

/// Renders the CLI call that starts `request` (values shell-quoted where needed).
pub fn export_command(request: &ExportRequest) -> String {
    let mut parts = vec![
        "aws dynamodb export-table-to-point-in-time".to_string(),
        flag("--table-arn", &request.table_arn),
        flag("--s3-bucket", &request.s3_bucket),
    ];
    let optional = [
        ("--s3-bucket-owner", request.s3_bucket_owner.clone()),
        ("--s3-prefix", request.s3_prefix.clone()),
        (
            "--s3-sse-algorithm",
            request.s3_sse_algorithm.map(|a| a.as_str().to_string()),
        ),
        ("--s3-sse-kms-key-id", request.s3_sse_kms_key_id.clone()),
        ("--export-format", request.export_format.clone()),
        ("--export-type", request.export_type.clone()),
        ("--export-time", request.export_time.map(format_epoch)),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            parts.push(flag(name, &v));
        }
    }
    if let Some(inc) = &request.incremental {
        let mut spec = Vec::new();
        if let Some(t) = inc.export_from_time {
            spec.push(format!("ExportFromTime={}", format_epoch(t)));
        }
        if let Some(t) = inc.export_to_time {
            spec.push(format!("ExportToTime={}", format_epoch(t)));
        }
        if let Some(v) = &inc.export_view_type {
            spec.push(format!("ExportViewType={v}"));
        }
        if !spec.is_empty() {
            parts.push(flag("--incremental-export-specification", &spec.join(",")));
        }
    }
    parts.join(" ")
}

/// The command laid out for a terminal: one flag a line, every line but the last ending in
/// ` \`, so that a paste of all the lines runs the whole command. A terminal that wraps a long
/// line, or a text wrapped to a width, would split it into lines the shell runs one by one.
/// Breaks only before a ` --flag` outside single quotes (the quoting `export_command` uses), so
/// a value is never split.
pub fn continued(command: &str, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut quoted = false;
    let mut chars = command.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && !quoted {
            // `\'` (how a quote is written inside a quoted value) escapes the quote.
            line.push(c);
            if let Some(next) = chars.next() {
                line.push(next);
            }
            continue;
        }
        if c == '\'' {
            quoted = !quoted;
        }
        let breaks = !quoted && c == ' ' && chars.peek() == Some(&'-') && {
            let rest: String = chars.clone().take(2).collect();
            rest == "--"
        };
        if breaks && !line.trim().is_empty() {
            lines.push(line);
            line = indent.to_string();
        } else {
            line.push(c);
        }
    }
    lines.push(line);
    let last = lines.len() - 1;
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| if i < last { format!("{l} \\") } else { l })
        .collect()
}

fn flag(name: &str, value: &str) -> String {
    format!("{name} {}", quote(value))
}

/// Epoch seconds as the CLI takes them (whole seconds unless there is a fraction).
fn format_epoch(t: f64) -> String {
    if t.fract() == 0.0 {
        format!("{t:.0}")
    } else {
        format!("{t:.3}")
    }
}

fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+".contains(&b));
    if safe {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_carries_every_given_flag_in_cli_spelling() {
        let req = crate::fakes::full_request();
        assert_eq!(
            export_command(&req),
            "aws dynamodb export-table-to-point-in-time \
             --table-arn arn:aws:dynamodb:us-east-1:111122223333:table/orders \
             --s3-bucket amzn-s3-demo-bucket --s3-bucket-owner 444455556666 \
             --s3-prefix exports/orders --s3-sse-algorithm KMS \
             --s3-sse-kms-key-id arn:aws:kms:us-east-1:111122223333:key/k1 \
             --export-format DYNAMODB_JSON --export-time 1795500000"
        );
    }

    /// The shell's view of a laid-out command: continuations joined, words split.
    fn shell_words(lines: &[String]) -> Vec<String> {
        let joined = lines
            .iter()
            .map(|l| l.strip_suffix(" \\").unwrap_or(l))
            .collect::<Vec<_>>()
            .join(" ");
        joined.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_laid_out_command_pastes_whole() {
        let one_line = export_command(&crate::fakes::full_request());
        let lines = continued(&one_line, "    ");
        assert_eq!(lines.len(), 9, "{lines:#?}");
        assert!(lines[0].starts_with("aws dynamodb export-table-to-point-in-time \\"));
        // Every line but the last continues; the last does not; no line starts a new command.
        let (last, rest) = lines.split_last().unwrap();
        assert!(rest.iter().all(|l| l.ends_with(" \\")), "{lines:#?}");
        assert!(!last.ends_with('\\'));
        assert!(
            lines[1..].iter().all(|l| l.starts_with("    --")),
            "{lines:#?}"
        );
        assert_eq!(
            shell_words(&lines),
            one_line
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_quoted_value_with_dashes_is_never_split() {
        let req = ExportRequest {
            table_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders".into(),
            s3_bucket: "b".into(),
            s3_prefix: Some("it's --b c".into()),
            ..Default::default()
        };
        let lines = continued(&export_command(&req), "  ");
        assert_eq!(lines.last().unwrap(), r"  --s3-prefix 'it'\''s --b c'");
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(continued("aws s3 ls", ""), vec!["aws s3 ls".to_string()]);
    }

    #[test]
    fn odd_values_are_shell_quoted() {
        let req = ExportRequest {
            table_arn: "arn:aws:dynamodb:us-east-1:111122223333:table/orders".into(),
            s3_bucket: "b".into(),
            s3_prefix: Some("it's $(here)".into()),
            ..Default::default()
        };
        assert!(export_command(&req).ends_with(r"--s3-prefix 'it'\''s $(here)'"));
    }
}
