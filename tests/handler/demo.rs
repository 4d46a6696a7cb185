//! `make demo`'s first run: it says what it is doing before anything slow, and its output fits
//! the terminal without cutting an identifier.

use std::process::Command;

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
    assert!(
        recipe.contains("8 min cold on 2 cores"),
        "it says how long a cold build takes: {recipe}"
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
    let readme = std::fs::read_to_string(format!("{}/README.md", repo())).unwrap();
    let demo = std::fs::read_to_string(format!("{}/tools/demo.py", repo())).unwrap();
    assert!(line.contains("four scenarios"), "{line}");
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
    assert_eq!(
        joined
            .matches("no CloudTrail record names the caller")
            .count(),
        1,
        "{text}"
    );
    assert!(
        joined.contains("caller unknown (as above); considered b"),
        "{text}"
    );
}
