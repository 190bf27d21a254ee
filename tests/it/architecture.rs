//! The product's layout, as docs/architecture.md promises it: each top-level
//! module of src/ imports only from the layers before it, no file is over
//! 600 lines and no function over 80. Read from the source text, so a change
//! that breaks the layering fails here rather than in review.

use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may import from the ones before it.
/// `ingest`, `query` and `replay` share a layer and never import each other.
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["nomad"],
    &["backoff"],
    &["archive"],
    &["store"],
    &["metrics"],
    &["retention"],
    &["ingest", "query", "replay"],
    &["web"],
    &["cli"],
];

const MAX_FILE_LINES: usize = 600;
const MAX_FUNCTION_LINES: usize = 80;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The file's text without its unit tests (they may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level modules this text names as `crate::X`, outside comments.
fn imported(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn each_module_imports_only_from_the_layers_before_it() {
    let root = src();
    let mut wrong = Vec::new();
    for file in rust_files(&root) {
        let relative = file.strip_prefix(&root).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|m| m.trim_end_matches(".rs").to_owned())
            .expect("a module");
        let Some(own) = layer(&module) else {
            continue;
        };
        for target in imported(&code(&file)) {
            match layer(&target) {
                Some(theirs) if target == module || theirs < own => {}
                _ => wrong.push(format!("{} imports crate::{target}", relative.display())),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layering:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let modules: Vec<String> = std::fs::read_dir(src())
        .expect("read src")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .map(|name| name.trim_end_matches(".rs").to_owned())
        .filter(|name| !["lib", "main"].contains(&name.as_str()))
        .collect();
    let missing: Vec<&String> = modules.iter().filter(|m| layer(m).is_none()).collect();
    assert!(missing.is_empty(), "modules without a layer: {missing:?}");
}

#[test]
fn no_file_is_over_600_lines() {
    let long: Vec<String> = rust_files(&src())
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).ok()?.lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// Whether `line` begins a function: `fn` after any visibility and
/// qualifiers.
fn starts_a_function(line: &str) -> bool {
    let mut rest = line.trim_start();
    for prefix in ["pub(crate) ", "pub(super) ", "pub ", "const ", "async "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.starts_with("fn ")
}

/// Functions of `text` with their first line and length, found by matching
/// the braces that follow each `fn` (string literals holding braces are
/// rare enough in this code base to ignore).
fn functions(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !starts_a_function(lines[i]) {
            i += 1;
            continue;
        }
        let (mut depth, mut opened, mut end) = (0i32, false, None);
        for (j, line) in lines.iter().enumerate().skip(i) {
            if !opened && line.trim_end().ends_with(';') {
                break;
            }
            for c in line.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if opened && depth == 0 {
                end = Some(j);
                break;
            }
        }
        match end {
            Some(end) => {
                found.push((i + 1, end - i + 1));
                i = end + 1;
            }
            None => i += 1,
        }
    }
    found
}

#[test]
fn no_function_is_over_80_lines() {
    let mut long = Vec::new();
    for file in rust_files(&src()) {
        let text = std::fs::read_to_string(&file).expect("read source");
        for (line, length) in functions(&text) {
            if length > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line}: {length} lines", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_finder_measures_what_it_finds() {
    let text = "fn short() {\n    1\n}\n\npub async fn longer(\n    a: u8,\n) -> u8 {\n    a\n}\n";
    assert_eq!(functions(text), vec![(1, 3), (5, 5)]);
}
