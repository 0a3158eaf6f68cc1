//! The one keyset list of the repositories: a page of rows in a fixed total order after a
//! cursor, with the true total under the same filter and whether more rows follow. Every list
//! the API answers (tenants, plans, invoices, payments, usage records, events, audit) is one
//! [`Keyset`] and its conditions.

use sqlx::postgres::{PgRow, Postgres};
use sqlx::{FromRow, PgConnection, QueryBuilder};

use crate::pagination::Page;

/// The direction of a list.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    Asc,
    Desc,
}

/// A list's table, columns and order.
pub struct Keyset<T> {
    pub table: &'static str,
    pub columns: &'static str,
    /// The order key, a unique column last (`["created_at", "invoice_id"]`), so the order is
    /// total and a cursor names one position.
    pub key: &'static [&'static str],
    pub order: Order,
    /// The cursor a client passes back to get the page after `row`.
    pub cursor: fn(&T) -> String,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy)]
pub enum After<C> {
    /// At the first row.
    Start,
    /// After the row whose unique (last) key column is this, looked up within the scope: an
    /// unknown cursor, or another scope's, yields an empty page.
    Row(C),
    /// After this value of a one-column key (`seq`); it need not name a row.
    Key(C),
}

impl<C> After<C> {
    /// `Row(c)` for a cursor, `Start` without one.
    pub fn row(cursor: Option<C>) -> Self {
        cursor.map_or(After::Start, After::Row)
    }

    /// `Key(c)` for a cursor, `Start` without one.
    pub fn key(cursor: Option<C>) -> Self {
        cursor.map_or(After::Start, After::Key)
    }
}

/// No conditions.
pub fn none(_: &mut QueryBuilder<'_, Postgres>) {}

impl<T> Keyset<T>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    /// At most `limit` rows after `after`, with the total of rows under scope and filter.
    /// `scope` and `filter` each push ` AND <condition>` terms with their binds; the scope (the
    /// tenant) also bounds the cursor's row, the filter only the rows listed.
    pub async fn page<'a, C>(
        &self,
        conn: &mut PgConnection,
        scope: impl Fn(&mut QueryBuilder<'a, Postgres>) + Send,
        filter: impl Fn(&mut QueryBuilder<'a, Postgres>) + Send,
        after: After<C>,
        limit: i64,
    ) -> sqlx::Result<Page<T>>
    where
        C: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send,
    {
        let mut count =
            QueryBuilder::new(format!("SELECT count(*) FROM {} WHERE true", self.table));
        scope(&mut count);
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

        let mut q = QueryBuilder::new(format!(
            "SELECT {} FROM {} WHERE true",
            self.columns, self.table
        ));
        scope(&mut q);
        filter(&mut q);
        let key = self.key.join(", ");
        let (beyond, direction) = match self.order {
            Order::Asc => (">", ""),
            Order::Desc => ("<", " DESC"),
        };
        match after {
            After::Start => {}
            After::Key(v) => {
                q.push(format!(" AND ({key}) {beyond} ")).push_bind(v);
            }
            After::Row(id) => {
                let unique = self.key.last().copied().unwrap_or_default();
                q.push(format!(
                    " AND ({key}) {beyond} (SELECT {key} FROM {} WHERE true",
                    self.table
                ));
                scope(&mut q);
                q.push(format!(" AND {unique} = ")).push_bind(id).push(")");
            }
        }
        let order: Vec<String> = self.key.iter().map(|k| format!("{k}{direction}")).collect();
        q.push(format!(" ORDER BY {} LIMIT ", order.join(", ")))
            .push_bind(limit + 1);
        let mut items: Vec<T> = q.build_query_as().fetch_all(&mut *conn).await?;
        let has_more = items.len() as i64 > limit;
        items.truncate(limit.max(0) as usize);
        let next = if has_more {
            items.last().map(self.cursor)
        } else {
            None
        };
        Ok(Page {
            items,
            total,
            has_more,
            next,
        })
    }
}
