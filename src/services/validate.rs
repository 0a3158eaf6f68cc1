//! Small input checks shared by the services; issues are collected so a client sees them all.

use crate::error::FieldIssue;

/// Input that breaks the contract's rules: each field and what is wrong with it (`http::errors`
/// answers 422 `validation_error` with them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {0:?}")]
pub struct Invalid(pub Vec<FieldIssue>);

impl Invalid {
    /// One field's problem.
    pub fn field(field: &str, issue: impl Into<String>) -> Self {
        Invalid(vec![FieldIssue {
            field: field.to_string(),
            issue: issue.into(),
        }])
    }
}

#[derive(Default)]
pub struct Checks(Vec<FieldIssue>);

impl Checks {
    pub fn push(&mut self, field: &str, issue: &str) {
        self.0.push(FieldIssue {
            field: field.to_string(),
            issue: issue.to_string(),
        });
    }

    /// The issues found, for a use case with its own error type.
    pub fn into_issues(self) -> Vec<FieldIssue> {
        self.0
    }

    pub fn finish(self) -> Result<(), Invalid> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.0))
        }
    }
}

/// Text of at most `max` characters that is not blank.
pub fn check_len(checks: &mut Checks, field: &str, value: &str, max: usize) {
    // The limit counts every character sent (as the document's maxLength does), surrounding
    // spaces included, though they are trimmed before the value is stored.
    if value.trim().is_empty() {
        checks.push(field, "must not be empty");
    } else if value.chars().count() > max {
        checks.push(field, &format!("must be at most {max} characters"));
    }
}

/// 5-20 digits with an optional leading `+` (spaces and dashes are not accepted).
pub fn is_phone(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_email(s: &str) -> bool {
    s.len() <= 254 && email_address::EmailAddress::is_valid(s) && s.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_and_emails() {
        assert!(is_phone("+967771234567"));
        assert!(is_phone("771234"));
        assert!(!is_phone("abc"));
        assert!(!is_phone("+12"));
        assert!(is_email("farm@example.com"));
        assert!(!is_email("not-an-email"));
    }
}
