//! `make demo`'s first run: it says what it is doing before anything slow, and its output fits
//! the terminal without cutting an identifier.

use std::process::Command;

/// How long a first `make demo` takes on a fresh clone (measured: README, "Time and disk").
const FIRST_RUN: &str = "about 11 minutes cold on 2 cores";

fn repo() -> &'static str {
    env!("CARGO_MANIFEST_DIR")
}

#[test]
fn make_demo_speaks_before_installing_or_building_anything() {
    // -n prints the recipe without running it (the sub-make for the tools runs under -n too).
    let out = Command::new("make")
        .args(["-n", "--no-print-directory", "demo"])
        .current_dir(repo())
        .output()
        .expect("make");
    assert!(out.status.success(), "{out:?}");
    let recipe = String::from_utf8_lossy(&out.stdout);
    let first = recipe.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("echo ") && first.contains("make demo"),
        "the first thing make demo does must be to say so: {recipe}"
    );
    // One figure for a first run, the README's (measured), said the same way everywhere.
    let readme = std::fs::read_to_string(format!("{}/README.md", repo())).unwrap();
    assert!(
        recipe.contains(FIRST_RUN) && readme.contains(FIRST_RUN),
        "make demo and the README both say {FIRST_RUN:?}: {recipe}"
    );
    let demo_py = recipe.find("tools/demo.py").expect("runs tools/demo.py");
    assert!(recipe.find("echo ").unwrap() < demo_py);

    // make help, the README and the demo agree on how many scenarios it runs.
    let help = Command::new("make")
        .arg("help")
        .current_dir(repo())
        .output()
        .expect("make help");
    let help = String::from_utf8_lossy(&help.stdout);
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with("make demo"))
        .expect("make help lists demo");
    let demo = std::fs::read_to_string(format!("{}/tools/demo.py", repo())).unwrap();
    assert!(line.contains("four scenarios"), "{line}");
    assert!(line.contains("first run ~11 min"), "{line}");
    assert!(readme.contains("runs four scenarios end to end"));
    assert!(demo.contains("seeds four exports"));
}

/// The demo's wrapping, run in the demo's own Python at a 60-column terminal.
#[test]
fn demo_output_wraps_at_spaces_and_keeps_an_arn_whole() {
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders-with-a-long-name/export/01795508400000-9f8e7d6c";
    let script = format!(
        "import demo\n\
         demo.WIDTH = 60\n\
         demo.emit('finding', 'BUCKET_OWNER_MISSING (CONFIRMED): the export {arn} did not set the bucket owner, so S3 refused every write it made')\n\
         demo.note('caller unknown: no CloudTrail record names the caller; considered a')\n\
         demo.note('caller unknown: no CloudTrail record names the caller; considered b')\n"
    );
    let out = Command::new(crate::helpers::python())
        .args(["-c", &script])
        .current_dir(format!("{}/tools", repo()))
        .output()
        .expect("python");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&arn),
        "the ARN whole on its own line:\n{text}"
    );
    for line in lines.iter().filter(|l| **l != arn) {
        assert!(
            line.chars().count() <= 60,
            "{line:?} is wider than 60:\n{text}"
        );
    }
    // Every word is kept, in order: wrapping only moved the breaks.
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    assert!(
        joined.contains(&format!(
            "the export {arn} did not set the bucket owner, so S3 refused every write it made"
        )),
        "{text}"
    );
    // The second scenario's caller-unknown note is not printed again.
    assert_eq!(joined.matches("caller unknown").count(), 1, "{text}");
    assert!(!joined.contains("considered b"), "{text}");
}

/// A corrected command in the demo pastes whole: every line but the last ends with ` \`, and
/// with the continuations removed (as the shell does) the words are those of the one-line
/// command (Python's shlex, POSIX rules).
#[test]
fn demo_prints_a_command_so_that_a_paste_runs_it_whole() {
    let command = "aws dynamodb export-table-to-point-in-time --table-arn arn:aws:dynamodb:us-east-1:111122223333:table/orders --s3-bucket amzn-s3-demo-bucket --s3-prefix 'it'\\''s --not a flag' --s3-sse-algorithm KMS";
    let script = format!(
        "import demo, shlex\n\
         demo.WIDTH = 40\n\
         cmd = {command:?}\n\
         demo.emit_command('command', cmd)\n\
         demo.note('no retry: outside the scope; run the corrected command yourself: ' + cmd)\n\
         lines = demo.continued(cmd, 9)\n\
         joined = ' '.join(l[:-2] if l.endswith(' \\\\') else l for l in lines)\n\
         assert shlex.split(joined) == shlex.split(cmd), lines\n\
         print('APPLIED ' + demo.applied_text({{'action': 'RETRY_EXPORT', 'status': 'DONE', 'result': {{'exportArn': 'arn:e', 'clientToken': 'ddbxr-1'}}}}))\n"
    );
    let out = Command::new(crate::helpers::python())
        .args(["-c", &script])
        .current_dir(format!("{}/tools", repo()))
        .output()
        .expect("python");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // Two blocks of command lines: under the label, and under the note.
    let blocks: Vec<Vec<&str>> = text
        .split("\nnote ")
        .map(|part| {
            part.lines()
                .skip_while(|l| !l.contains("aws dynamodb export-table-to-point-in-time"))
                .take_while(|l| !l.starts_with("APPLIED"))
                .collect()
        })
        .collect();
    assert_eq!(blocks.len(), 2, "{text}");
    for lines in &blocks {
        let (last, rest) = lines.split_last().expect("command lines");
        assert_eq!(rest.len(), 4, "one flag a line: {text}");
        assert!(rest.iter().all(|l| l.ends_with(" \\")), "{text}");
        assert!(!last.ends_with('\\'), "{text}");
        assert!(
            last.trim_start().starts_with("--s3-sse-algorithm"),
            "{text}"
        );
    }
    // What was applied reads as text, not as the result's JSON.
    let applied = text.lines().find(|l| l.starts_with("APPLIED")).unwrap();
    assert_eq!(
        applied,
        "APPLIED retry started: arn:e (ClientToken ddbxr-1)"
    );
}
