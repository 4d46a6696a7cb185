//! Random export worlds in the emulator's enforcing mode (tools/worlds.py; docs/worlds.md): a
//! fixed seed's worlds, each export judged by iam-simulate, each failure handed to the real
//! function binary in apply mode. The property counts must hold: no retry that fails again, no
//! change where none was needed, no disagreement without a recorded explanation.

use crate::helpers::python;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The slice `make test` runs; `make bench-worlds` runs 1,000 and more.
const SEED: u64 = 20_251_208;
const WORLDS: u64 = 100;

#[test]
fn a_seeded_slice_of_random_worlds_keeps_the_property() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_file = std::env::temp_dir().join(format!("worlds-{}.json", std::process::id()));
    println!("worlds: seed {SEED}, {WORLDS} worlds (tools/worlds.py show --seed {SEED} --index I)");
    let out = Command::new(python())
        .current_dir(&repo)
        .env(
            "WORLDS_FUNCTION_BINARY",
            env!("CARGO_BIN_EXE_ddb-export-remediator"),
        )
        .args(["tools/worlds.py", "run", "--quiet", "--seed"])
        .arg(SEED.to_string())
        .arg("--count")
        .arg(WORLDS.to_string())
        .arg("--json")
        .arg(&out_file)
        .output()
        .expect("run tools/worlds.py");
    assert!(
        out.status.success(),
        "tools/worlds.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_file).expect("worlds report"))
            .expect("worlds report is JSON");
    let _ = std::fs::remove_file(&out_file);
    let s = &report["summary"];
    let listed = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        report["outcomes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| pred(o))
            .map(|o| format!("world {}: {} {}", o["index"], o["draw"], o["problems"]))
            .collect()
    };
    let count = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    assert_eq!(count("worlds"), WORLDS, "{s}");
    // The slice exercises the property: failures of both kinds happen.
    assert!(
        count("a") > 0 && count("b") > 0,
        "no (a) or no (b) world: {s}"
    );
    assert_eq!(count("failed_again"), 0, "retries failed again: {s}");
    assert_eq!(count("needless_changes"), 0, "needless changes: {s}");
    assert_eq!(
        count("unexplained"),
        0,
        "unexplained disagreements: {:#?}",
        listed(&|o| o["problems"].as_array().is_some_and(|p| !p.is_empty())
            && o["explained"].is_null())
    );
    assert_eq!(
        count("refused"),
        0,
        "worlds not built or refused: {:#?}",
        listed(&|o| o["status"] == "REFUSED" || o["status"] == "BUILD_ERROR")
    );
}
