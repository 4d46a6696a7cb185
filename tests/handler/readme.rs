//! The docs cannot drift: every make target, template parameter and event file the README and
//! events/README.md name exists, and every parameter and event file is documented; the README's
//! Layout lists exactly the files under src/; every relative link of the README, ARCHITECTURE.md
//! and docs/ resolves; and the README's offline `ddb-export-doctor` examples print what it shows.

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
    let configuration = read("docs/configuration.md");
    for p in &params {
        assert!(
            configuration.contains(&format!("`{p}`")),
            "template parameter {p} is not documented in docs/configuration.md"
        );
    }
    // The configuration table's parameter column names only real parameters.
    let config = configuration
        .split("\n## Environment and template parameters")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an \"Environment and template parameters\" section");
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
                        "docs/configuration.md documents parameter {name}, which template.yaml lacks"
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

/// A `## ` section of a Markdown text, without its heading line.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    text.split(&format!("\n## {heading}\n"))
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("no section {heading:?}"))
}

/// The `code` spans of a Markdown table cell.
fn spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_readme_layout_lists_every_file_under_src_and_nothing_else() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // On disk: every folder under src/ with the files directly in it.
    let mut disk: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        let rel = format!("{}/", dir.strip_prefix(root).unwrap().display());
        let files = disk.entry(rel).or_default();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    // In the README: one row per folder, its files in the third column.
    let readme = read("README.md");
    let mut listed: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for line in section(&readme, "Layout")
        .lines()
        .filter(|l| l.starts_with("| `src/"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let folder = spans(cells[1])[0].to_string();
        let files = spans(cells[3])
            .into_iter()
            .filter(|f| f.ends_with(".rs"))
            .map(str::to_string)
            .collect();
        assert!(
            listed.insert(folder.clone(), files).is_none(),
            "{folder} has two rows"
        );
    }
    for (folder, files) in &disk {
        let shown = listed
            .get(folder)
            .unwrap_or_else(|| panic!("README's Layout has no row for {folder}"));
        if let Some(f) = files.difference(shown).next() {
            panic!("README's Layout does not list {folder}{f}");
        }
        if let Some(f) = shown.difference(files).next() {
            panic!("README's Layout lists {folder}{f}, which does not exist");
        }
    }
    for folder in listed.keys() {
        assert!(
            disk.contains_key(folder),
            "README's Layout lists {folder}, which does not exist"
        );
    }
    // The other rows name paths that exist.
    for line in section(&readme, "Layout")
        .lines()
        .filter(|l| l.starts_with("| `") && !l.starts_with("| `src/"))
    {
        let first = line.split('|').nth(1).unwrap_or_default();
        for path in spans(first) {
            assert!(root.join(path).exists(), "README's Layout names {path}");
        }
    }
}

#[test]
fn every_relative_link_of_the_docs_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(entry.unwrap().path());
    }
    for page in pages
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(page).unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap_or(0)];
            if target.is_empty() || target.starts_with('#') || target.contains("://") {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = page.parent().unwrap().join(path);
            assert!(
                resolved.exists(),
                "{} links to {target}, which does not exist",
                page.display()
            );
        }
    }
}

/// The README's `console` examples: each `$ ddb-export-doctor …` line runs, and its output
/// (standard output, or standard error when that is empty) starts with the lines shown.
#[test]
fn the_readmes_offline_doctor_examples_print_what_they_show() {
    let readme = read("README.md");
    let mut examples: Vec<(String, Vec<String>)> = Vec::new();
    for block in readme.split("```console\n").skip(1) {
        let block = block.split("\n```").next().unwrap_or_default();
        for line in block.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => examples.push((command.to_string(), Vec::new())),
                None => examples
                    .last_mut()
                    .expect("a console block starts with a command")
                    .1
                    .push(line.to_string()),
            }
        }
    }
    assert!(examples.len() >= 5, "{examples:?}");
    for (command, shown) in &examples {
        let mut words = command.split_whitespace();
        assert_eq!(words.next(), Some("ddb-export-doctor"), "{command}");
        assert!(
            !command.contains(['\'', '"', '$', '<', '>', '|']),
            "{command}: plain words only"
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddb-export-doctor"))
            .args(words)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            // Offline: no endpoint or credentials are reachable from these examples.
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .expect("run ddb-export-doctor");
        let printed = if out.stdout.is_empty() {
            String::from_utf8_lossy(&out.stderr).into_owned()
        } else {
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let lines: Vec<&str> = printed.lines().collect();
        assert!(!shown.is_empty(), "{command} shows no output");
        assert_eq!(
            &lines[..shown.len().min(lines.len())],
            &shown.iter().map(String::as_str).collect::<Vec<_>>()[..],
            "README shows `{command}` printing:\n{}\nbut it printed:\n{printed}",
            shown.join("\n")
        );
    }
}
