//! The layering of `src/`, checked on the source so it stays true: HTTP is imported only by
//! itself and the binary's wiring, no module imports one that imports it back, and only
//! `config` reads the environment.
//!
//! The graph is read from paths, not from the compiler: every `crate::…` and `super::…` path
//! in a file (comments removed; `use crate::a::{b, c::d}` groups expanded) names the deepest
//! module it reaches, and an item a module re-exports (`pub use x::Item`) is followed to where
//! it is defined, so a re-export does not create an arrow its importer never uses. Arrows
//! between a module and its own submodules are left out: a folder module and its children are
//! one unit (the parent declares and re-exports them, they use its items).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules other than `http` itself that may import `http`: the binary's wiring.
const MAY_IMPORT_HTTP: &[&str] = &["server"];

/// Every `.rs` file below `src/`: its path relative to `src/` (with `/`) and its text, in
/// path order.
pub(crate) fn source_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&src).expect("below src/");
                let rel = rel.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("a readable source file");
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

struct Crate {
    /// Module path (`services::usage::cache`; "" for the crate root) → its code, comments out.
    code: BTreeMap<String, String>,
}

impl Crate {
    fn read() -> Crate {
        let mut code = BTreeMap::new();
        for (rel, text) in source_files() {
            // main.rs is the binary crate: it reaches the library as `billing_core::`.
            let Some(stem) = rel.strip_suffix(".rs").filter(|r| *r != "main") else {
                continue;
            };
            let module = match stem {
                "lib" => String::new(),
                s => s.trim_end_matches("/mod").replace('/', "::"),
            };
            code.insert(module, strip_comments(&text));
        }
        Crate { code }
    }

    /// The module a path names: its longest prefix that is a module, with a last item that
    /// module re-exports followed to its source.
    fn resolve(&self, segments: &[String], depth: usize) -> Option<String> {
        let n = (0..=segments.len())
            .rev()
            .find(|n| self.code.contains_key(&segments[..*n].join("::")))?;
        let module = segments[..n].join("::");
        if let (Some(item), true) = (segments.get(n), depth < 8) {
            for target in reexports(&self.code[&module], item) {
                let mut full: Vec<String> = if target.first().is_some_and(|s| s == "crate") {
                    target[1..].to_vec()
                } else {
                    // `pub use child::Item` is relative to the re-exporting module.
                    segments[..n].iter().cloned().chain(target).collect()
                };
                full.extend(segments[n + 1..].iter().cloned());
                if let Some(m) = self.resolve(&full, depth + 1) {
                    return Some(m);
                }
            }
        }
        Some(module)
    }

    /// The modules `module` refers to, itself, its ancestors and its descendants left out.
    fn arrows(&self, module: &str) -> BTreeSet<String> {
        let code = &self.code[module];
        let parent = |m: &str| m.rsplit_once("::").map_or(String::new(), |(p, _)| p.into());
        let mut out = BTreeSet::new();
        for (start, base) in [("crate::", String::new()), ("super::", parent(module))] {
            let mut rest = code.as_str();
            while let Some(i) = rest.find(start) {
                let before = rest[..i].chars().next_back();
                rest = &rest[i + start.len()..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut base = base.clone();
                while let Some(r) = rest.strip_prefix("super::") {
                    base = parent(&base);
                    rest = r;
                }
                let prefix: Vec<String> = base
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                for path in expand(rest) {
                    let full: Vec<String> = prefix.iter().cloned().chain(path).collect();
                    if let Some(target) = self.resolve(&full, 0) {
                        out.insert(target);
                    }
                }
            }
        }
        out.retain(|t| !related(module, t));
        out
    }
}

/// One of the two is the other or inside it.
fn related(a: &str, b: &str) -> bool {
    let inside = |x: &str, y: &str| y.is_empty() || x == y || x.starts_with(&format!("{y}::"));
    inside(a, b) || inside(b, a)
}

/// The code without `//` comments (a `//` inside a string literal is rare enough here).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if line[..i].matches('"').count() % 2 == 0 => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths at the start of `s`: `a::b::c`, or each member of `a::{b, c::{d, e}}`.
fn expand(s: &str) -> Vec<Vec<String>> {
    let ident_end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if ident_end == 0 {
        if let Some(group) = s.strip_prefix('{') {
            return split_group(group).into_iter().flat_map(expand).collect();
        }
        return vec![vec![]];
    }
    let (head, tail) = s.split_at(ident_end);
    let tails = match tail.strip_prefix("::") {
        Some(t) => expand(t),
        None => vec![vec![]],
    };
    tails
        .into_iter()
        .map(|t| std::iter::once(head.to_string()).chain(t).collect())
        .collect()
}

/// The comma-separated members of a `{…}` group whose opening brace is already consumed.
fn split_group(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0, 0, vec![]);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(s[start..i].trim());
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts
}

/// Where `module` says `item` comes from: the paths of its `pub use …::item` declarations.
fn reexports(code: &str, item: &str) -> Vec<Vec<String>> {
    let mut out = vec![];
    for decl in code.split("pub use ").skip(1) {
        let decl = decl.split(';').next().unwrap_or_default();
        let decl: String = decl.chars().filter(|c| !c.is_whitespace()).collect();
        for path in expand(&decl) {
            if path.last().is_some_and(|last| last == item) {
                out.push(path[..path.len() - 1].to_vec());
            }
        }
    }
    out
}

#[test]
fn nothing_outside_http_and_the_wiring_imports_http() {
    let krate = Crate::read();
    let offenders: Vec<String> = krate
        .code
        .keys()
        .filter(|m| !related(m, "http") && !MAY_IMPORT_HTTP.contains(&m.as_str()))
        .filter(|m| !m.is_empty())
        .flat_map(|m| {
            krate
                .arrows(m)
                .into_iter()
                .filter(|t| t == "http" || t.starts_with("http::"))
                .map(move |t| format!("{m} -> {t}"))
        })
        .collect();
    assert!(offenders.is_empty(), "arrows up into http: {offenders:#?}");
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let krate = Crate::read();
    let graph: BTreeMap<String, BTreeSet<String>> = krate
        .code
        .keys()
        .map(|m| (m.clone(), krate.arrows(m)))
        .collect();
    let circles = circles(&graph);
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// One circle per strongly connected group of modules, written `a -> b -> … -> a`.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = vec![];
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in graph.keys() {
        if done.contains(start.as_str()) {
            continue;
        }
        // The shortest way from `start` back to itself, breadth first.
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closed = None;
        while let Some(m) = queue.pop_front() {
            for next in graph.get(m).into_iter().flatten() {
                if next == start {
                    closed = Some(m);
                    break;
                }
                if !came_from.contains_key(next.as_str()) {
                    came_from.insert(next, m);
                    queue.push_back(next);
                }
            }
            if closed.is_some() {
                break;
            }
        }
        let Some(mut at) = closed else {
            done.insert(start);
            continue;
        };
        let mut back = vec![at];
        while let Some(prev) = came_from.get(at).filter(|p| **p != start.as_str()) {
            back.push(prev);
            at = prev;
        }
        let path: Vec<&str> = std::iter::once(start.as_str())
            .chain(back.into_iter().rev())
            .chain(std::iter::once(start.as_str()))
            .collect();
        done.extend(path.iter().copied());
        found.push(path.join(" -> "));
    }
    found
}

/// Reads of the process environment that are not configuration: where the PostgreSQL tools
/// are (`PATH`), found like a shell finds them.
const NOT_CONFIGURATION: &[&str] = &["var_os(\"PATH\")"];

#[test]
fn only_the_configuration_reads_the_environment() {
    let krate = Crate::read();
    let readers = [
        "env::var(",
        "env::var_os(",
        "env::vars(",
        "from_default_env",
        "dotenv",
    ];
    let offenders: Vec<String> = krate
        .code
        .iter()
        .filter(|(m, _)| m.as_str() != "config" && !m.starts_with("config::"))
        .flat_map(|(m, code)| {
            code.lines()
                .filter(|l| readers.iter().any(|r| l.contains(r)))
                .filter(|l| !NOT_CONFIGURATION.iter().any(|ok| l.contains(ok)))
                .map(move |l| format!("{m}: {}", l.trim()))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "environment read outside config: {offenders:#?}"
    );
}

/// What `services/` must not contain: the HTTP framework, HTTP statuses, JSON built for the
/// wire, SQL (it belongs to `repository/`). Each is found on the code without comments and
/// without its `#[cfg(test)]` module.
const NOT_IN_SERVICES: &[(&str, &[&str])] = &[
    ("axum", &["axum::"]),
    ("StatusCode", &["StatusCode"]),
    ("json!", &["json!"]),
    (
        "sqlx::query",
        &["sqlx::query", "query_as(", "query_scalar(", "QueryBuilder"],
    ),
];

/// Service files that still hold one of [`NOT_IN_SERVICES`] (issue 13 is taking them out;
/// the test fails when a new one appears and when one listed here is clean).
const SERVICES_KNOWN: &[(&str, &str)] = &[];

#[test]
fn services_hold_no_http_no_wire_json_and_no_sql() {
    let mut found = BTreeSet::new();
    for (rel, text) in source_files() {
        if !rel.starts_with("services/") {
            continue;
        }
        let code = strip_comments(&text);
        let code = code.split("#[cfg(test)]").next().unwrap_or_default();
        for (name, needles) in NOT_IN_SERVICES {
            if needles.iter().any(|n| code.contains(n)) {
                found.insert((rel.clone(), name.to_string()));
            }
        }
    }
    let known: BTreeSet<(String, String)> = SERVICES_KNOWN
        .iter()
        .map(|(f, n)| (f.to_string(), n.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    assert!(new.is_empty(), "new in services/: {new:#?}");
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        gone.is_empty(),
        "clean now: take them off SERVICES_KNOWN: {gone:#?}"
    );
}
