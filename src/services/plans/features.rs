//! The rules of a plan's `features`: a list of feature objects (or an object, stored as given).

use serde_json::Value;

use crate::services::validate::Checks;

/// A list holds feature objects: a `null` member is refused, as the document's schema says.
pub(super) fn check_features(features: &Value, checks: &mut Checks) {
    if !(features.is_array() || features.is_object()) {
        checks.push("features", "must be a list of features or an object");
    }
    let items = features.as_array().into_iter().flatten().enumerate();
    for (i, f) in items {
        let Some(members) = f.as_object() else {
            checks.push(&format!("features[{i}]"), "must be a feature object");
            continue;
        };
        for (name, value) in members {
            if let Some(issue) = feature_member_issue(name, value) {
                checks.push(&format!("features[{i}].{name}"), issue);
            }
        }
    }
}

/// What is wrong with one member of a feature object, as the document describes it:
/// `key`, `name`, `name_ar` texts of 1-200 characters, `included` a boolean, `limit` a whole
/// number from -1 (unlimited), nothing else.
fn feature_member_issue(name: &str, value: &Value) -> Option<&'static str> {
    match name {
        "key" | "name" | "name_ar" => match value.as_str() {
            Some(t) if !t.trim().is_empty() && t.chars().count() <= 200 => None,
            Some(_) => Some("must be a text of 1 to 200 characters"),
            None => Some("must be a text"),
        },
        "included" => (!value.is_boolean()).then_some("must be true or false"),
        // A JSON number without a fraction is a whole number whatever its spelling (5, 5.0).
        "limit" => match (value.as_i64(), value.as_u64(), value.as_f64()) {
            (Some(n), _, _) if n >= -1 => None,
            (None, Some(_), _) => None,
            (None, None, Some(f)) if f.fract() == 0.0 && f >= -1.0 => None,
            _ => Some("must be a whole number from -1 (unlimited)"),
        },
        _ => Some("is not a member of a feature (key, name, name_ar, included, limit)"),
    }
}
