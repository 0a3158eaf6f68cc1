//! Invoices and their lines. Invoices are never deleted; totals always equal the sum of lines
//! plus tax minus discount (CHECK constraints back the arithmetic).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};

mod insert;
mod read;
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
        let last = sqlx::query_scalar!(
            r#"INSERT INTO invoice_number_counters (year, last_value) VALUES ($1, $2)
             ON CONFLICT (year) DO UPDATE
                SET last_value = invoice_number_counters.last_value + $2, updated_at = now()
             RETURNING last_value AS "last_value!""#,
            year,
            count
        )
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

    /// Applies `changes`; `None` when the tenant has no such invoice. Amounts are not
    /// changeable here: they move only through `mark_paid` (and refunds).
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        changes: &InvoiceChanges,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        // A column is written only when its change is given (`None` keeps it); the notes'
        // flags tell "clear" (`Some(None)`) from "leave alone".
        sqlx::query_as!(
            InvoiceRow,
            r#"UPDATE invoices SET updated_at = now(),
                 status = COALESCE($3, status),
                 notes = CASE WHEN $4 THEN $5 ELSE notes END,
                 notes_ar = CASE WHEN $6 THEN $7 ELSE notes_ar END,
                 due_date = COALESCE($8, due_date)
             WHERE tenant_id = $1 AND invoice_id = $2
             RETURNING invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at"#,
            tenant_id,
            invoice_id,
            changes.status as _,
            changes.notes.is_some(),
            changes.notes.clone().flatten(),
            changes.notes_ar.is_some(),
            changes.notes_ar.clone().flatten(),
            changes.due_date
        )
        .fetch_optional(conn)
        .await
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
        sqlx::query_as!(
            InvoiceRow,
            r#"UPDATE invoices SET amount_paid = amount_paid + $3, amount_due = amount_due - $3,
                 status = CASE WHEN amount_due - $3 = 0 THEN 'paid'::invoice_status ELSE status END,
                 paid_date = CASE WHEN amount_due - $3 = 0 THEN $4 ELSE paid_date END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3 > 0 AND $3 <= amount_due
               AND status NOT IN ('canceled', 'refunded')
             RETURNING invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at"#,
            tenant_id,
            invoice_id,
            amount as _,
            paid_on
        )
        .fetch_optional(conn)
        .await
    }
}
