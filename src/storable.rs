//! PostgreSQL `text` and `jsonb` cannot hold U+0000 (jsonb refuses it as "unsupported Unicode
//! escape sequence"), and serde_json reads `\u0000` happily. Client input holding it is refused
//! at the edge (`http::extract::nul_path`); what is stored anyway — responses kept for
//! idempotent replay, outbox payloads, audit snapshots, gateway webhooks and messages — goes
//! through [`scrub`] on its way in, so nothing a client or a gateway sends can make a write
//! fail over and over.

use std::borrow::Cow;

use serde_json::Value;

/// What a stored U+0000 becomes: the Unicode replacement character.
const REPLACEMENT: &str = "\u{FFFD}";

/// `s` with U+0000 replaced by U+FFFD (borrowed when there is none).
pub fn scrub_str(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', REPLACEMENT))
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
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\\u0000"))
    } else {
        Cow::Borrowed(s)
    }
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
