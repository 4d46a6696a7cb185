//! The docs cannot drift: every make target, template parameter and event file the README and
//! events/README.md name exists, and every parameter and event file is documented.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn words_after<'a>(text: &'a str, prefix: &str) -> BTreeSet<&'a str> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| {
                    !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '/')
                })
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches('.')
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn every_make_target_the_readme_names_exists() {
    let makefile = read("Makefile");
    let targets: BTreeSet<&str> = makefile
        .lines()
        .filter_map(|l| l.split_once(':').map(|(t, _)| t))
        .filter(|t| !t.contains(' ') && !t.starts_with('.') && !t.starts_with('$'))
        .collect();
    let readme = read("README.md");
    let named = words_after(&readme, "make ");
    assert!(
        named.contains("demo") && named.contains("test"),
        "the README must show make demo and make test"
    );
    for t in named {
        assert!(
            targets.contains(t),
            "README names `make {t}`, which the Makefile does not have"
        );
    }
}

#[test]
fn every_template_parameter_is_documented_and_every_documented_one_exists() {
    let template = read("template.yaml");
    let params_block = template
        .split("\nParameters:\n")
        .nth(1)
        .unwrap()
        .split("\nConditions:")
        .next()
        .unwrap();
    let params: BTreeSet<&str> = params_block
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':'))
        .collect();
    assert!(params.len() >= 8, "{params:?}");
    let readme = read("README.md");
    for p in &params {
        assert!(
            readme.contains(&format!("`{p}`")),
            "template parameter {p} is not documented in the README"
        );
    }
    // The configuration table's parameter column names only real parameters.
    let config = readme
        .split("\n## Configuration")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    for line in config
        .lines()
        .filter(|l| l.starts_with("| `") || l.starts_with("| —"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Some(cell) = cells.get(2) {
            for name in cell.split(',').map(|c| c.trim().trim_matches('`')) {
                if name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && !name.contains(' ')
                {
                    assert!(
                        params.contains(name),
                        "README documents parameter {name}, which template.yaml lacks"
                    );
                }
            }
        }
    }
}

#[test]
fn every_event_file_is_documented_and_every_documented_one_exists() {
    let listing = read("events/README.md");
    let readme = read("README.md");
    let files: BTreeSet<String> =
        std::fs::read_dir(format!("{}/events", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
    for f in &files {
        assert!(
            listing.contains(&format!("`{f}`")),
            "events/{f} is not described in events/README.md"
        );
    }
    for line in listing.lines().filter(|l| l.starts_with("| `")) {
        let name = line.split('`').nth(1).unwrap_or_default();
        assert!(
            files.contains(name),
            "events/README.md describes {name}, which does not exist"
        );
    }
    for text in [&listing, &readme] {
        for name in words_after(text, "events/") {
            if name.ends_with(".json") && !name.contains('*') && !name.starts_with("fixtures/") {
                assert!(
                    files.contains(name),
                    "docs name events/{name}, which does not exist"
                );
            }
        }
    }
}
