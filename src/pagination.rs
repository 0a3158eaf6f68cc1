//! Keyset pagination, below every layer that lists: what a list asks for ([`PageRequest`]:
//! at most `limit` items after the cursor `starting_after`, the id of the last item seen) and
//! what it gets ([`Page`]). Parsing the query parameters is the HTTP layer's
//! (`http::pagination`).

use serde::Serialize;

/// At most `limit` items (1-100) after the item whose id is `starting_after`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// One page of a keyset list: its items, the true total, and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub has_more: bool,
}

impl<T: Serialize> Page<T> {
    /// The list as the API writes it: `{<name>: [...], total, has_more}`.
    pub fn into_body(self, name: &str) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(
            name.to_string(),
            serde_json::to_value(self.items).unwrap_or_default(),
        );
        m.insert("total".into(), self.total.into());
        m.insert("has_more".into(), self.has_more.into());
        serde_json::Value::Object(m)
    }
}

/// Builds `{<name>: [...], total, has_more}`.
pub fn list_body<T: Serialize>(
    name: &str,
    items: Vec<T>,
    total: i64,
    has_more: bool,
) -> serde_json::Value {
    Page {
        items,
        total,
        has_more,
    }
    .into_body(name)
}
