//! `limit` (1-100, default 20) and `starting_after` (a cursor: the id of the last item seen),
//! parsed from the query into a `crate::pagination::PageRequest`.

use serde::Deserialize;

use crate::error::AppError;
pub use crate::pagination::PageRequest;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub starting_after: Option<String>,
}

impl PageQuery {
    pub fn page(&self) -> Result<PageRequest, AppError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => 20,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(AppError::field(
                        "limit",
                        "must be a whole number from 1 to 100",
                    ))
                }
            },
        };
        let starting_after = self.starting_after.clone().filter(|s| !s.is_empty());
        if let Some(s) = &starting_after {
            if s.len() > 200 {
                return Err(AppError::field("starting_after", "is too long"));
            }
        }
        Ok(PageRequest {
            limit,
            starting_after,
        })
    }
}

/// Parses an optional boolean query value.
pub fn parse_bool(field: &str, v: Option<&str>, default: bool) -> Result<bool, AppError> {
    match v {
        None | Some("") => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(AppError::field(field, "must be true or false")),
    }
}
