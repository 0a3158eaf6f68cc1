//! PostgreSQL `text` and `jsonb` cannot hold U+0000 (jsonb refuses it as "unsupported Unicode
//! escape sequence"), and serde_json reads `\u0000` happily. Client input holding it is refused
//! at the edge ([`nul_path`]); what is stored anyway — responses kept for
//! idempotent replay, outbox payloads, audit snapshots, gateway webhooks and messages — goes
//! through [`scrub`] on its way in, so nothing a client or a gateway sends can make a write
//! fail over and over.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::{AppError, FieldIssue};

/// What a stored U+0000 becomes: the Unicode replacement character.
const REPLACEMENT: &str = "\u{FFFD}";

/// `s` with U+0000 replaced by U+FFFD (borrowed when there is none).
pub fn scrub_str(s: &str) -> Cow<'_, str> {
    replace_nul(s, REPLACEMENT)
}

fn replace_nul<'a>(s: &'a str, with: &str) -> Cow<'a, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', with))
    } else {
        Cow::Borrowed(s)
    }
}

/// Replaces U+0000 by U+FFFD in every string and object key of `v`.
pub fn scrub(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', REPLACEMENT),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(m) if m.keys().any(|k| k.contains('\0')) => {
            let old = std::mem::take(m);
            for (k, mut x) in old {
                scrub(&mut x);
                m.insert(scrub_str(&k).into_owned(), x);
            }
        }
        Value::Object(m) => m.values_mut().for_each(scrub),
        _ => {}
    }
}

/// True when some string or object key of `v` holds U+0000.
pub fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(m) => m.iter().any(|(k, x)| k.contains('\0') || has_nul(x)),
        _ => false,
    }
}

/// `v` as it can be stored (borrowed when it holds no U+0000).
pub fn storable(v: &Value) -> Cow<'_, Value> {
    if has_nul(v) {
        let mut owned = v.clone();
        scrub(&mut owned);
        Cow::Owned(owned)
    } else {
        Cow::Borrowed(v)
    }
}

/// Client text quoted in a message (a field path naming a key): U+0000 shown as the six
/// characters `\u0000`, so the reader sees where it was and the message stays storable.
pub fn show_nul(s: &str) -> Cow<'_, str> {
    replace_nul(s, "\\u0000")
}

/// Client input holding U+0000 is refused at the edge (422), not by the database (500). Returns the path of the first string or key that holds one.
pub fn nul_path(v: &serde_json::Value, at: &str) -> Option<String> {
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "body".into()
        } else {
            at.into()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_path(x, &format!("{at}[{i}]"))),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            // The path is echoed in the error (and may be stored with it): a NUL in a key is
            // shown as `\u0000`, never copied.
            let shown = show_nul(k);
            let here = if at.is_empty() {
                shown.to_string()
            } else {
                format!("{at}.{shown}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(x, &here)
            }
        }),
        _ => None,
    }
}

/// The 422 for a field (or key path) holding U+0000.
pub fn nul_error(field: &str) -> AppError {
    AppError::validation(vec![FieldIssue {
        field: field.to_string(),
        issue: "must not contain the NUL character (U+0000)".into(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrub_replaces_nul_in_strings_and_keys_at_any_depth() {
        let mut v = json!({"a\u{0}b": ["x\u{0}", {"k": "v\u{0}v"}], "n": 1, "ok": "fine"});
        assert!(has_nul(&v));
        scrub(&mut v);
        assert!(!has_nul(&v));
        assert_eq!(
            v,
            json!({"a\u{FFFD}b": ["x\u{FFFD}", {"k": "v\u{FFFD}v"}], "n": 1, "ok": "fine"})
        );
    }

    #[test]
    fn values_without_nul_are_borrowed_unchanged() {
        let v = json!({"a": ["b", {"c": 1}]});
        assert!(matches!(storable(&v), Cow::Borrowed(_)));
        assert!(matches!(scrub_str("plain"), Cow::Borrowed("plain")));
        assert_eq!(show_nul("meta.a\u{0}b"), "meta.a\\u0000b");
    }
}
