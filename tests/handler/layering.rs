//! The rooms' import direction. The room table is ARCHITECTURE.md's ("Rooms"): this test reads
//! it from there, so the document and the check cannot drift. It reads every `crate::…`,
//! `super::…` and `self::…` path in the production part of src/**/*.rs and fails when a room
//! names a room of the same or a higher rank, or names an outside crate (an SDK, the Lambda
//! runtime or its event types) that its row does not list.
//! `cargo test --test handler layering -- --nocapture` prints the room table and the edges.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One row of ARCHITECTURE.md's room table.
struct Room {
    rank: u8,
    name: String,
    /// Module prefixes (`domain::plan`) and crate-root re-exports (`App`).
    modules: Vec<String>,
    /// Outside crates the room may name (`aws_sdk_*`: every crate with that prefix).
    may_name: Vec<String>,
}

/// Outside crates whose types stay at the edge. A room names one only if its row says so.
const EDGE_CRATES: &[&str] = &[
    "aws_sdk_",
    "aws_smithy_",
    "aws_config",
    "aws_types",
    "aws_credential_types",
    "aws_lambda_events",
    "lambda_runtime",
];

fn architecture() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The table rows (cells trimmed) that follow `marker` in ARCHITECTURE.md, without the header
/// and separator rows.
fn table_after(text: &str, marker: &str) -> Vec<Vec<String>> {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no {marker}"));
    text[at + marker.len()..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

/// The `code` spans of a cell.
fn spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn rooms() -> &'static [Room] {
    static ROOMS: OnceLock<Vec<Room>> = OnceLock::new();
    ROOMS.get_or_init(|| {
        let rows = table_after(&architecture(), "<!-- layering:rooms -->");
        assert!(rows.len() >= 8, "the room table has {} rows", rows.len());
        rows.iter()
            .map(|cells| Room {
                rank: cells[0]
                    .parse()
                    .unwrap_or_else(|_| panic!("rank {:?} is not a number", cells[0])),
                name: cells[1].trim_matches('*').to_string(),
                modules: spans(&cells[2]),
                may_name: spans(&cells[3]),
            })
            .collect()
    })
}

/// Edges the code has not removed yet, each with its reason (ARCHITECTURE.md, "Not yet").
/// Keep this list shrinking.
fn not_yet() -> Vec<(String, String, String)> {
    table_after(&architecture(), "<!-- layering:not-yet -->")
        .into_iter()
        .map(|c| {
            let name = |s: &str| s.trim_matches('`').to_string();
            (name(&c[0]), name(&c[1]), c[2].clone())
        })
        .collect()
}

/// `#[path = …]` files: (module by file name, module as declared).
const PATHS: &[(&str, &str)] = &[("domain::report_text", "domain::report::report_text")];

fn room_of(module: &str) -> (&'static str, u8) {
    let mut best: Option<(&'static Room, usize)> = None;
    for room in rooms() {
        for p in &room.modules {
            let hit = module == p || module.starts_with(&format!("{p}::"));
            if hit && best.is_none_or(|(_, len)| p.len() > len) {
                best = Some((room, p.len()));
            }
        }
    }
    let (room, _) = best.unwrap_or_else(|| {
        panic!("{module} is in no room: add it to the room table in ARCHITECTURE.md")
    });
    (room.name.as_str(), room.rank)
}

/// The outside crates of `EDGE_CRATES` that `text` names, as written (`aws_sdk_kms`).
fn edge_crates(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for prefix in EDGE_CRATES {
        for (i, _) in text.match_indices(prefix) {
            let before = text[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let ident: String = text[i..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(ident);
        }
    }
    found
}

fn may_name(room: &str, krate: &str) -> bool {
    rooms().iter().filter(|r| r.name == room).any(|r| {
        r.may_name
            .iter()
            .any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => krate.starts_with(prefix),
                None => krate == allowed,
            })
    })
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") && !is_binary_crate(&path) {
            out.push(path);
        }
    }
}

/// The binaries are crates of their own (their `crate::` is not the library's).
fn is_binary_crate(path: &Path) -> bool {
    path.ends_with("src/main.rs") || path.components().any(|c| c.as_os_str() == "bin")
}

/// `src/domain/diagnosis/call.rs` → `domain::diagnosis::call`; `…/mod.rs` is its folder.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    let module = parts.join("::");
    // Files declared with `#[path]` inside another module.
    match PATHS.iter().find(|(file, _)| *file == module) {
        Some((_, real)) => real.to_string(),
        None => module,
    }
}

/// A file its parent module declares after `#[cfg(test)]` (`#[cfg(test)] mod tests;`): test
/// code only, like the text after `#[cfg(test)]` in a file.
fn is_test_module(file: &Path) -> bool {
    let (Some(stem), Some(dir)) = (file.file_stem(), file.parent()) else {
        return false;
    };
    let declared = format!("mod {};", stem.to_string_lossy());
    // The parent is `dir.rs` beside the folder, or `dir/mod.rs`.
    [dir.with_extension("rs"), dir.join("mod.rs")]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .any(|text| {
            text.split("#[cfg(test)]")
                .skip(1)
                .any(|after| after.trim_start().starts_with(&declared))
        })
}

/// The production text: everything before the first `#[cfg(test)]`, without comments.
fn production(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths named in `use` trees and inline `crate::`/`super::` paths, made absolute.
fn imports(module: &str, file: &Path, text: &str) -> BTreeSet<String> {
    // A file's `super` is its parent module; `mod.rs` and `lib.rs` stand for the folder itself,
    // whose `super` is one level up. Children declared inline are rare here and ignored.
    let parent: Vec<&str> = {
        let mut p: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let is_root = file
            .file_name()
            .is_some_and(|n| n == "lib.rs" || n == "main.rs");
        if !is_root {
            p.pop();
        }
        p
    };
    let mut paths = BTreeSet::new();
    let flat = expand_groups(text);
    for raw in flat {
        let segs: Vec<&str> = raw.split("::").map(str::trim).collect();
        let (base, rest): (Vec<&str>, &[&str]) = match segs.first() {
            Some(&"crate") => (Vec::new(), &segs[1..]),
            Some(&"super") => (parent.clone(), &segs[1..]),
            Some(&"self") => (module.split("::").collect(), &segs[1..]),
            _ => continue,
        };
        let mut full = base;
        let mut rest = rest;
        while rest.first() == Some(&"super") {
            full.pop();
            rest = &rest[1..];
        }
        full.extend(rest.iter().copied().filter(|s| !s.is_empty() && *s != "*"));
        paths.insert(full.join("::"));
    }
    paths
}

/// Every `crate::…`, `super::…` and `self::…` path in the text, with `{a, b::c}` groups expanded.
fn expand_groups(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .find(|s| text_at(&bytes, i, s));
        let boundary = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        // `pub(in crate::domain)` is a visibility, not an import.
        let visibility = i >= 4 && bytes[i - 4..i].iter().collect::<String>() == "(in ";
        if let (Some(_), true, false) = (starts, boundary, visibility) {
            let (tree, end) = read_tree(&bytes, i);
            flatten("", &tree, &mut out);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

fn text_at(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// The path tree starting at `i` (identifiers, `::`, balanced `{…}`), and where it ends.
fn read_tree(chars: &[char], mut i: usize) -> (String, usize) {
    let mut out = String::new();
    let mut depth = 0;
    while i < chars.len() {
        let c = chars[i];
        let ok = c.is_alphanumeric()
            || c == '_'
            || c == ':'
            || c == '*'
            || (depth > 0 && (c == ',' || c.is_whitespace()));
        if c == '{' {
            depth += 1;
        } else if c == '}' {
            if depth == 0 {
                break;
            }
            depth -= 1;
        } else if !ok {
            break;
        }
        out.push(c);
        i += 1;
        if depth == 0 && c == '}' {
            break;
        }
    }
    (out, i)
}

fn flatten(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => out.push(format!("{prefix}{}", tree.trim_end_matches("::"))),
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut start = 0;
            let mut parts = Vec::new();
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        parts.push(&inner[start..k]);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            parts.push(&inner[start..]);
            for p in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
                if p == "self" {
                    out.push(format!("{prefix}{}", head.trim_end_matches("::")));
                } else {
                    flatten(&format!("{prefix}{head}"), p, out);
                }
            }
        }
    }
}

#[test]
fn layering_rooms_import_only_rooms_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let not_yet = not_yet();
    let mut edges = BTreeSet::new();
    let mut wrong = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let (room, rank) = room_of(&module);
        if is_test_module(file) {
            continue;
        }
        let text = production(&std::fs::read_to_string(file).unwrap());
        for target in imports(&module, file, &text) {
            if target.is_empty() {
                continue;
            }
            let (to, to_rank) = room_of(&target);
            if to == room {
                continue;
            }
            edges.insert(format!("{room} -> {to}"));
            let excused = not_yet.iter().any(|(a, b, _)| a == room && b == to);
            if to_rank >= rank && !excused {
                wrong.push(format!("{module} ({room}) imports {target} ({to})"));
            }
        }
        for krate in edge_crates(&text) {
            if !may_name(room, &krate) {
                wrong.push(format!(
                    "{module} ({room}) names {krate}, which its row in ARCHITECTURE.md does not list"
                ));
            }
        }
        if module.starts_with("policy") {
            assert!(
                !text.contains("domain::"),
                "the evaluator must import nothing from the domain: {module}"
            );
        }
    }
    for room in rooms() {
        println!(
            "{} {:<10} {}{}",
            room.rank,
            room.name,
            room.modules.join(", "),
            if room.may_name.is_empty() {
                String::new()
            } else {
                format!(" (names {})", room.may_name.join(", "))
            }
        );
    }
    for e in &edges {
        println!("{e}");
    }
    for (a, b, why) in &not_yet {
        println!("not yet: {a} -> {b}: {why}");
    }
    assert!(wrong.is_empty(), "imports upward:\n{}", wrong.join("\n"));
    // Each excuse must still be needed, so that the list shrinks as the code does.
    for (a, b, why) in &not_yet {
        assert!(
            edges.contains(&format!("{a} -> {b}")),
            "{a} -> {b} is gone: remove it from ARCHITECTURE.md's \"Not yet\" ({why})"
        );
    }
}

/// The domain's rooms never name an SDK or Lambda type; only the edge rooms' rows list them.
#[test]
fn layering_only_edge_rooms_may_name_sdk_or_lambda_crates() {
    let edge = |name: &str| rooms().iter().any(|r| r.name == name && r.rank == 9);
    for room in rooms() {
        if !room.may_name.is_empty() {
            assert!(
                edge(&room.name),
                "{} (rank {}) may name {:?}: only rank-9 rooms may",
                room.name,
                room.rank,
                room.may_name
            );
        }
    }
    assert!(
        !may_name("intake", "aws_sdk_s3") && may_name("intake", "aws_lambda_events"),
        "intake parses the Lambda event types and nothing else of the edge"
    );
    assert_eq!(
        edge_crates("use aws_sdk_kms::Client; let x: aws_smithy_types::Blob; my_aws_types"),
        ["aws_sdk_kms", "aws_smithy_types"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn layering_reader_resolves_super_and_groups() {
    let file = Path::new("src/domain/diagnosis/call.rs");
    let got = imports(
        "domain::diagnosis::call",
        file,
        "use super::common::{ev, Failure};\nuse crate::{model::{A, B}, arn};\nlet x = super::super::plan::f();\npub(in crate::domain) fn g() {}",
    );
    let want: BTreeSet<String> = [
        "domain::diagnosis::common::ev",
        "domain::diagnosis::common::Failure",
        "model::A",
        "model::B",
        "arn",
        "domain::plan::f",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
    assert_eq!(room_of("domain::plan::f").0, "plan");
    assert_eq!(room_of("domain::App").0, "app");
    assert_eq!(room_of("domain::diagnosis::common").0, "diagnosis");
}
