//! Keyset pagination, below every layer that lists: what a list asks for ([`PageRequest`]:
//! at most `limit` items after the cursor `starting_after`, the id of the last item seen) and
//! what it gets ([`Page`]). Parsing the query parameters is the HTTP layer's
//! (`http::pagination`); the one query that fills a page is `repository::keyset`.

/// At most `limit` items (1-100) after the item whose id is `starting_after`.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub starting_after: Option<String>,
}

/// One page of a keyset list: its items, the true total under the list's filter (whatever
/// the cursor), whether more follow, and the cursor of the page after this one (the last
/// item's, when more follow).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub has_more: bool,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            has_more: self.has_more,
            next: self.next,
        }
    }
}
