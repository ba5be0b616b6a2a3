//! The host's layering, checked from its source: the modules of `host/src`
//! stand on floors, a module imports only from its own floor or below, no
//! import circle is wider than one module's own files, and nothing outside
//! `api/` knows HTTP. ARCHITECTURE.md draws the same floors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, lowest first. A top-level module (a file or folder of
/// `host/src`) may import only modules on its floor or below.
const FLOORS: &[&[&str]] = &[
    // Pure ground: errors and ids, time, storage handles, working calendars, metrics.
    &["error", "clock", "db", "calendar", "metrics"],
    // Shared infrastructure: the bus and its events, the audit log, the map.
    &["bus", "audit", "space"],
    // Wire formats (CAP), and the capabilities that stand on nothing but the above.
    &["protocols", "identity", "data", "media", "messaging"],
    // The cross-department loop.
    &["cases"],
    // What reads the loop: evaluation, the calendar ticks.
    &["evaluation", "ticks"],
    // The bundle of every capability.
    &["services"],
    // What drives the capabilities: the plugin runtime, the clock's jobs, the bundled packages.
    &["runtime", "schedule", "bundled"],
    // HTTP, on top of everything it routes to.
    &["api"],
    // Assembly: the application and the demonstration city.
    &["app", "demo"],
];

fn floor(top: &str) -> usize {
    FLOORS
        .iter()
        .position(|f| f.contains(&top))
        .unwrap_or_else(|| panic!("module `{top}` stands on no floor: add it to FLOORS in host/tests/layers.rs"))
}

/// A source file as a module path (`cases::engine`, `cases` for `cases/mod.rs`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path named after `crate::` or `super::` in `code`, resolved against
/// `module` (brace groups expanded one level deep per brace).
fn paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let base: Option<(Vec<String>, usize)> = if rest.starts_with("crate::") && !prev_ident(bytes, i) {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") && !prev_ident(bytes, i) {
            // `super` of module `a::b` is `a`, whether `a::b` is `a/b.rs` or `a/b/mod.rs`.
            let mut parent = module.to_vec();
            parent.pop();
            Some((parent, "super::".len()))
        } else {
            None
        };
        match base {
            Some((prefix, skip)) => {
                let (found, used) = expand(&code[i + skip..], prefix);
                out.extend(found);
                i += skip + used.max(1);
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

fn prev_ident(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':')
}

/// Parse `a::b::{c, d::e}` after a `crate::`; returns the full paths and the bytes read.
fn expand(text: &str, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    let mut i = 0;
    let b = text.as_bytes();
    loop {
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i > start {
            path.push(text[start..i].to_owned());
        }
        // A group: `a::{…}`, or `{…}` right after `crate::`.
        let group = if text[i..].starts_with("::{") {
            Some(3)
        } else if i == start && text[i..].starts_with('{') {
            Some(1)
        } else {
            None
        };
        if let Some(skip) = group {
            i += skip;
            let mut all = Vec::new();
            loop {
                while i < b.len() && (b[i] as char).is_whitespace() {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    return (all, i + 1);
                }
                let (found, used) = expand(&text[i..], path.clone());
                all.extend(found);
                i += used;
                while i < b.len() && ((b[i] as char).is_whitespace() || b[i] == b',') {
                    i += 1;
                }
            }
        } else if text[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![path], i);
        }
    }
}

struct Graph {
    /// Module path (joined by `::`) → the modules it imports.
    edges: BTreeMap<String, BTreeSet<String>>,
    axum: Vec<String>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    // The binary's own files (`main.rs` and the modules it declares) are not the library's layers.
    let binary = ["main", "commands", "authoring"];
    let mut modules: BTreeMap<String, (PathBuf, Vec<String>)> = BTreeMap::new();
    for f in &all {
        let m = module_of(&src, f);
        if m.is_empty() || m == ["lib"] || binary.contains(&m[0].as_str()) {
            continue;
        }
        modules.insert(m.join("::"), (f.clone(), m));
    }
    let resolve = |path: &[String]| -> Option<String> {
        (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|p| modules.contains_key(p))
    };
    let mut edges = BTreeMap::new();
    let mut axum = Vec::new();
    for (name, (file, m)) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code(&text);
        if m[0] != "api" && code.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == "axum") {
            axum.push(name.clone());
        }
        let targets: BTreeSet<String> = paths(&code, m)
            .iter()
            .filter_map(|p| resolve(p))
            .filter(|t| t != name)
            .collect();
        edges.insert(name.clone(), targets);
    }
    Graph { edges, axum }
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn nothing_outside_api_knows_http() {
    let g = graph();
    assert!(g.axum.is_empty(), "modules outside api/ that name axum: {:?}", g.axum);
}

#[test]
fn every_module_imports_only_from_its_floor_or_below() {
    let g = graph();
    let mut upward = Vec::new();
    for (from, targets) in &g.edges {
        for to in targets {
            if top(from) != top(to) && floor(top(to)) > floor(top(from)) {
                upward.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(upward.is_empty(), "imports that run up a floor:\n{}", upward.join("\n"));
}

#[test]
fn no_import_circle_is_wider_than_one_module() {
    let g = graph();
    // Tarjan's strongly connected components.
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<&'a str>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[w].min(self.low[v]);
                    self.low.insert(v, l);
                } else if self.on.contains(w) {
                    let l = self.index[w].min(self.low[v]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                self.out.push(comp);
            }
        }
    }
    let mut t = T { g: &g.edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], on: BTreeSet::new(), next: 0, out: vec![] };
    for v in g.edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let wide: Vec<String> = t
        .out
        .iter()
        .filter(|c| c.iter().map(|m| top(m)).collect::<BTreeSet<_>>().len() > 1)
        .map(|c| format!("{c:?}"))
        .collect();
    assert!(wide.is_empty(), "import circles across modules:\n{}", wide.join("\n"));
}

#[test]
fn the_parser_reads_what_it_should() {
    let m: Vec<String> = vec!["cases".into(), "engine".into()];
    let found = paths("use crate::{audit::Chain, bus::{Bus, Event}};\nuse super::lifecycle::Stage;", &m);
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(joined, ["audit::Chain", "bus::Bus", "bus::Event", "cases::lifecycle::Stage"]);
}
