//! The size bars of the house style, checked on the source: no file of `src/` over 400 lines
//! and no function over 80. A file or function listed below is over its bar today and may
//! only shrink: when it comes under, it leaves the list (the test says so), and nothing new
//! joins it. The seed data (`seed.rs`) is data, not code.

const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 80;
const EXEMPT: &[&str] = &["seed.rs"];

/// Over the bar today: (file, None) for a file, (file, Some(function)) for a function.
const KNOWN: &[(&str, Option<&str>)] = &[];

/// The name after `fn ` when the line starts a function, with the line's indentation.
fn function_start(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    let indent = &line[..line.len() - trimmed.len()];
    let mut rest = trimmed;
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some((indent, &rest[..end]))
}

/// (function, lines from its `fn` line to its closing brace at the same indentation).
fn long_functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, name)) = function_start(line) else {
            continue;
        };
        // A declaration without a body (a trait item) ends with `;` before any `{`.
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == close) {
            if end - i + 1 > MAX_FN_LINES {
                out.push((name.to_string(), end - i + 1));
            }
        }
    }
    out
}

#[test]
fn no_file_over_400_lines_and_no_function_over_80_beyond_the_known_ones() {
    let mut over = Vec::new();
    for (file, text) in crate::architecture::source_files() {
        if EXEMPT.contains(&file.as_str()) {
            continue;
        }
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            over.push((file.clone(), None, n));
        }
        for (name, len) in long_functions(&text) {
            over.push((file.clone(), Some(name), len));
        }
    }
    let new: Vec<_> = over
        .iter()
        .filter(|(f, name, _)| !KNOWN.contains(&(f.as_str(), name.as_deref())))
        .collect();
    assert!(
        new.is_empty(),
        "over the size bars (file, function, lines): {new:?}"
    );
    let gone: Vec<_> = KNOWN
        .iter()
        .filter(|(f, name)| {
            !over
                .iter()
                .any(|(of, on, _)| of == f && on.as_deref() == *name)
        })
        .collect();
    assert!(
        gone.is_empty(),
        "now under the bars: take them off KNOWN: {gone:?}"
    );
}
