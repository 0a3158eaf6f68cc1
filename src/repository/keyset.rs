//! The one keyset list of the repositories: a page of rows in a fixed total order after a
//! cursor, with the true total under the same filter, whether more rows follow and the cursor
//! of the next page. Every list the API answers (tenants, plans, invoices, payments, usage
//! records, events, audit) is one [`Keyset`] and its conditions.

use sqlx::postgres::{PgRow, Postgres};
use sqlx::{FromRow, PgConnection, QueryBuilder, Row};
use uuid::Uuid;

use crate::pagination::Page;

/// An order key: column names, a unique one last.
type Key = &'static [&'static str];

/// A list's table, columns and order.
#[derive(Debug, Clone, Copy)]
pub struct Keyset {
    table: &'static str,
    columns: &'static str,
    /// The order key, a unique column last (`["created_at", "invoice_id"]`), so the order is
    /// total and a cursor (the unique column) names one position.
    key: Key,
    descending: bool,
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

/// The column the next page's cursor is read from, beside the row's own columns.
const CURSOR: &str = "keyset_cursor";

impl Keyset {
    /// Ascending by `key`.
    pub const fn asc(table: &'static str, columns: &'static str, key: Key) -> Self {
        Keyset {
            table,
            columns,
            key,
            descending: false,
        }
    }

    /// Descending by `key` (newest first).
    pub const fn desc(table: &'static str, columns: &'static str, key: Key) -> Self {
        let asc = Self::asc(table, columns, key);
        Keyset {
            descending: true,
            ..asc
        }
    }

    /// A tenant's rows after the row `after` names (the tenant also bounds the cursor), those
    /// whose `column` is the value when `only` gives one.
    pub async fn of_tenant<'a, T, V>(
        &self,
        conn: &mut PgConnection,
        tenant_id: &'a str,
        only: Option<(&'static str, V)>,
        after: Option<Uuid>,
        limit: i64,
    ) -> sqlx::Result<Page<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        V: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send + Sync + Clone,
    {
        let scope = |q: &mut QueryBuilder<'a, Postgres>| {
            q.push(" AND tenant_id = ").push_bind(tenant_id);
        };
        let filter = |q: &mut QueryBuilder<'a, Postgres>| {
            if let Some((column, value)) = &only {
                q.push(format!(" AND {column} = ")).push_bind(value.clone());
            }
        };
        self.page(conn, scope, filter, After::row(after), limit)
            .await
    }

    /// At most `limit` rows after `after`, with the total of rows under scope and filter.
    /// `scope` and `filter` each push ` AND <condition>` terms with their binds; the scope (the
    /// tenant) also bounds the cursor's row, the filter only the rows listed.
    pub async fn page<'a, T, C>(
        &self,
        conn: &mut PgConnection,
        scope: impl Fn(&mut QueryBuilder<'a, Postgres>) + Send,
        filter: impl Fn(&mut QueryBuilder<'a, Postgres>) + Send,
        after: After<C>,
        limit: i64,
    ) -> sqlx::Result<Page<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
        C: 'a + sqlx::Encode<'a, Postgres> + sqlx::Type<Postgres> + Send,
    {
        let table = self.table;
        let mut count = QueryBuilder::new(format!("SELECT count(*) FROM {table} WHERE true"));
        scope(&mut count);
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&mut *conn).await?;

        let key = self.key.join(", ");
        let unique = self.key.last().copied().unwrap_or_default();
        let (beyond, direction) = if self.descending {
            ("<", " DESC")
        } else {
            (">", "")
        };
        let mut q = QueryBuilder::new(format!(
            "SELECT {}, {unique}::text AS {CURSOR} FROM {table} WHERE true",
            self.columns
        ));
        scope(&mut q);
        filter(&mut q);
        match after {
            After::Start => {}
            After::Key(v) => {
                q.push(format!(" AND ({key}) {beyond} ")).push_bind(v);
            }
            After::Row(id) => {
                q.push(format!(
                    " AND ({key}) {beyond} (SELECT {key} FROM {table} WHERE true"
                ));
                scope(&mut q);
                q.push(format!(" AND {unique} = ")).push_bind(id).push(")");
            }
        }
        let order: Vec<String> = self.key.iter().map(|k| format!("{k}{direction}")).collect();
        q.push(format!(" ORDER BY {} LIMIT ", order.join(", ")))
            .push_bind(limit + 1);
        let mut rows: Vec<PgRow> = q.build().fetch_all(&mut *conn).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let next = match rows.last() {
            Some(last) if has_more => Some(last.try_get::<String, _>(CURSOR)?),
            _ => None,
        };
        let items = rows.iter().map(T::from_row).collect::<sqlx::Result<_>>()?;
        Ok(Page {
            items,
            total,
            has_more,
            next,
        })
    }
}
