//! Invoices and their lines. Invoices are never deleted; totals always equal the sum of lines
//! plus tax minus discount (CHECK constraints back the arithmetic).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};

mod insert;
pub use insert::InvoiceToStore;

#[derive(Clone, Debug, FromRow)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: String,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub discount_amount: Decimal,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub amount_due: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub notes_ar: Option<String>,
    /// The plan the invoice was issued for (`None` for an invoice without a plan).
    pub plan_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, FromRow)]
pub struct InvoiceLineRow {
    pub line_id: Uuid,
    pub invoice_id: Uuid,
    pub position: i32,
    pub kind: InvoiceLineKind,
    pub description: String,
    pub description_ar: String,
    pub metric: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

pub const INVOICE_COLUMNS: &str = "invoice_id, invoice_number, tenant_id, subscription_id, kind, \
    status, currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, \
    discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, \
    notes_ar, plan_id, created_at, updated_at";

/// A line ready to store: `amount` is already in the invoice currency and rounded.
#[derive(Clone, Debug)]
pub struct NewLine {
    pub kind: InvoiceLineKind,
    pub description: String,
    pub description_ar: String,
    pub metric: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

/// An invoice ready to store; the service computed every figure.
#[derive(Clone, Debug)]
pub struct NewInvoice<'a> {
    pub invoice_id: Uuid,
    pub invoice_number: &'a str,
    pub tenant_id: &'a str,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: &'a str,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub discount_amount: Decimal,
    pub total: Decimal,
    pub amount_paid: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<&'a str>,
    pub notes_ar: Option<&'a str>,
    pub plan_id: Option<&'a str>,
}

/// An owned, fully computed invoice waiting to be stored (batch issuing keeps many).
#[derive(Clone, Debug)]
pub struct InvoiceInsert {
    pub invoice_id: Uuid,
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
    pub currency: String,
    pub exchange_rate: Decimal,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub subtotal: Decimal,
    pub tax_rate: Decimal,
    pub tax_amount: Decimal,
    pub discount_amount: Decimal,
    pub total: Decimal,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub notes: Option<String>,
    pub notes_ar: Option<String>,
    pub plan_id: Option<String>,
    pub lines: Vec<NewLine>,
    pub event_id: Uuid,
}

impl InvoiceInsert {
    /// The borrowed form the insert takes, with its (reserved) number.
    pub fn as_new<'a>(&'a self, invoice_number: &'a str) -> NewInvoice<'a> {
        NewInvoice {
            invoice_id: self.invoice_id,
            invoice_number,
            tenant_id: &self.tenant_id,
            subscription_id: self.subscription_id,
            kind: self.kind,
            status: self.status,
            currency: &self.currency,
            exchange_rate: self.exchange_rate,
            period_start: self.period_start,
            period_end: self.period_end,
            subtotal: self.subtotal,
            tax_rate: self.tax_rate,
            tax_amount: self.tax_amount,
            discount_amount: self.discount_amount,
            total: self.total,
            amount_paid: Decimal::ZERO,
            issue_date: self.issue_date,
            due_date: self.due_date,
            paid_date: self.paid_date,
            notes: self.notes.as_deref(),
            notes_ar: self.notes_ar.as_deref(),
            plan_id: self.plan_id.as_deref(),
        }
    }
}

pub struct InvoiceRepository;

impl InvoiceRepository {
    /// Takes the next number of `year`. The counter row stays locked until the transaction
    /// ends, which keeps numbers gapless (a rollback returns the number) and unique.
    pub async fn next_number(conn: &mut PgConnection, year: i32) -> sqlx::Result<String> {
        let mut numbers = Self::reserve_numbers(conn, year, 1).await?;
        Ok(numbers.pop().unwrap_or_default())
    }

    /// Reserves the next `n` numbers of `year`, in order (`SAH-2026-0001`). The counter row
    /// stays locked until the transaction ends, so concurrent runs overlap only from here to
    /// their commits, and a rollback returns the numbers.
    pub async fn reserve_numbers(
        conn: &mut PgConnection,
        year: i32,
        n: usize,
    ) -> sqlx::Result<Vec<String>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let count = i32::try_from(n).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let last: i32 = sqlx::query_scalar(
            "INSERT INTO invoice_number_counters (year, last_value) VALUES ($1, $2)
             ON CONFLICT (year) DO UPDATE
                SET last_value = invoice_number_counters.last_value + $2, updated_at = now()
             RETURNING last_value",
        )
        .bind(year)
        .bind(count)
        .fetch_one(conn)
        .await?;
        Ok((last - count + 1..=last)
            .map(|k| format!("SAH-{year}-{k:04}"))
            .collect())
    }

    /// Inserts the invoice (with its given number) and its lines. `Ok(None)` when the
    /// subscription period already has its invoice (the unique period key).
    pub async fn create(
        conn: &mut PgConnection,
        inv: &NewInvoice<'_>,
        lines: &[NewLine],
    ) -> sqlx::Result<Option<InvoiceRow>> {
        let item = InvoiceToStore {
            invoice: inv.clone(),
            lines,
            event: None,
        };
        Ok(insert::insert_returning(conn, &[item]).await?.pop())
    }

    /// Stores one invoice, its lines and its `invoice_generated` event in one statement.
    /// `Ok(None)` when the period already has its invoice: the number was reserved, so the
    /// caller must roll back (a savepoint) to keep numbers gapless.
    pub async fn store(
        conn: &mut PgConnection,
        item: InvoiceToStore<'_>,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        Ok(insert::insert_returning(conn, &[item]).await?.pop())
    }

    /// Stores many invoices with their lines and events in one statement (the renewal
    /// run's batches). Returns how many invoices were inserted; fewer than given means a
    /// period was already invoiced and the caller must roll back.
    pub async fn store_many(
        conn: &mut PgConnection,
        items: &[InvoiceToStore<'_>],
    ) -> sqlx::Result<u64> {
        if items.is_empty() {
            return Ok(0);
        }
        insert::insert_counting(conn, items).await
    }

    /// The invoice if it belongs to `tenant_id` (`None` for a platform caller's any-tenant read).
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE invoice_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
        ))
        .bind(invoice_id)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn lines(
        conn: &mut PgConnection,
        invoice_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as(
            "SELECT line_id, invoice_id, position, kind, description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
        )
        .bind(invoice_id)
        .fetch_all(conn)
        .await
    }

    /// The subscription invoice of the period starting `period_start`, if issued.
    pub async fn get_for_period(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
        period_start: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE tenant_id = $1 AND subscription_id = $2 AND period_start = $3 AND kind = 'subscription'"
        ))
        .bind(tenant_id)
        .bind(subscription_id)
        .bind(period_start)
        .fetch_optional(conn)
        .await
    }
}

/// Fields an update may change; `None` leaves the column alone, `Some(None)` clears notes.
#[derive(Clone, Debug, Default)]
pub struct InvoiceChanges {
    pub status: Option<InvoiceStatus>,
    pub notes: Option<Option<String>>,
    pub notes_ar: Option<Option<String>>,
    pub due_date: Option<NaiveDate>,
}

impl InvoiceRepository {
    /// Locks the invoice (third in the lock order tenant → subscription → invoice → payment).
    pub async fn lock(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR NO KEY UPDATE"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_invoice_number(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_number: &str,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE invoice_number = $1 AND ($2::text IS NULL OR tenant_id = $2)"
        ))
        .bind(invoice_number)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    /// Newest first (`created_at DESC, invoice_id DESC`) after the `starting_after` invoice,
    /// with the true total under the same filter. An unknown cursor yields an empty page.
    pub async fn list_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
        status: Option<InvoiceStatus>,
        limit: i64,
        starting_after: Option<Uuid>,
    ) -> sqlx::Result<crate::pagination::Page<InvoiceRow>> {
        use crate::repository::keyset::Keyset;
        const LIST: Keyset =
            Keyset::desc("invoices", INVOICE_COLUMNS, &["created_at", "invoice_id"]);
        let only = status.map(|s| ("status", s));
        LIST.of_tenant(conn, tenant_id, only, starting_after, limit)
            .await
    }

    /// Every invoice of one subscription, newest first.
    pub async fn list_by_subscription(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE tenant_id = $1 AND subscription_id = $2
             ORDER BY created_at DESC, invoice_id DESC"
        ))
        .bind(tenant_id)
        .bind(subscription_id)
        .fetch_all(conn)
        .await
    }

    /// The lines of several invoices at once (list pages), in invoice then position order.
    pub async fn lines_for(
        conn: &mut PgConnection,
        invoice_ids: &[Uuid],
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as(
            "SELECT line_id, invoice_id, position, kind, description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = ANY($1) ORDER BY invoice_id, position",
        )
        .bind(invoice_ids)
        .fetch_all(conn)
        .await
    }

    /// Applies `changes`; `None` when the tenant has no such invoice. Amounts are not
    /// changeable here: they move only through `mark_paid` (and refunds).
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        changes: &InvoiceChanges,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        let mut q =
            sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE invoices SET updated_at = now()");
        if let Some(v) = changes.status {
            q.push(", status = ").push_bind(v);
        }
        if let Some(v) = &changes.notes {
            q.push(", notes = ").push_bind(v.clone());
        }
        if let Some(v) = &changes.notes_ar {
            q.push(", notes_ar = ").push_bind(v.clone());
        }
        if let Some(v) = changes.due_date {
            q.push(", due_date = ").push_bind(v);
        }
        q.push(" WHERE tenant_id = ")
            .push_bind(tenant_id.to_string());
        q.push(" AND invoice_id = ").push_bind(invoice_id);
        q.push(format!(" RETURNING {INVOICE_COLUMNS}"));
        q.build_query_as().fetch_optional(conn).await
    }

    /// Adds a settled `amount` to the invoice. The caller holds the invoice lock and has
    /// checked the amount; the WHERE clause refuses anything over `amount_due` (or on a
    /// voided/refunded invoice) by returning `None`, so an overpayment can never be stored.
    /// Fully paid → status `paid` with `paid_date = paid_on`.
    pub async fn mark_paid(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        amount: Decimal,
        paid_on: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as(&format!(
            "UPDATE invoices SET amount_paid = amount_paid + $3, amount_due = amount_due - $3,
                 status = CASE WHEN amount_due - $3 = 0 THEN 'paid'::invoice_status ELSE status END,
                 paid_date = CASE WHEN amount_due - $3 = 0 THEN $4 ELSE paid_date END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3 > 0 AND $3 <= amount_due
               AND status NOT IN ('canceled', 'refunded')
             RETURNING {INVOICE_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .bind(amount)
        .bind(paid_on)
        .fetch_optional(conn)
        .await
    }

    /// Unpaid invoices (pending or overdue, something still due) whose due date is before
    /// `as_of`, across tenants, oldest due first. Read only: dunning locks each before acting.
    pub async fn get_overdue(
        conn: &mut PgConnection,
        as_of: NaiveDate,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices
             WHERE status IN ('pending', 'overdue') AND due_date < $1 AND amount_due > 0
             ORDER BY due_date, invoice_id"
        ))
        .bind(as_of)
        .fetch_all(conn)
        .await
    }

    /// Collected revenue per currency: the sum of `amount_paid` of paid invoices whose
    /// `paid_date` is within `[from, to]` (inclusive). Currencies are never added together;
    /// `currency` restricts the answer to one of them.
    pub async fn get_total_revenue(
        conn: &mut PgConnection,
        from: NaiveDate,
        to: NaiveDate,
        currency: Option<&str>,
    ) -> sqlx::Result<std::collections::BTreeMap<String, Decimal>> {
        let rows: Vec<(String, Decimal)> = sqlx::query_as(
            "SELECT currency, COALESCE(sum(amount_paid), 0) FROM invoices
             WHERE status = 'paid' AND paid_date BETWEEN $1 AND $2
               AND ($3::text IS NULL OR currency = $3)
             GROUP BY currency",
        )
        .bind(from)
        .bind(to)
        .bind(currency)
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().collect())
    }
}
