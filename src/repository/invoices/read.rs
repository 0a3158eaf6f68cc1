//! Invoice reads: one invoice (by id, number or period, or locked), its lines, a
//! subscription's invoices, the overdue ones and the revenue report.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{InvoiceLineRow, InvoiceRepository, InvoiceRow};

impl InvoiceRepository {
    /// The invoice if it belongs to `tenant_id` (`None` for a platform caller's any-tenant read).
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices WHERE invoice_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"#,
            invoice_id,
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn lines(
        conn: &mut PgConnection,
        invoice_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as!(
            InvoiceLineRow,
            r#"SELECT line_id, invoice_id, position, kind AS "kind: _", description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = $1 ORDER BY position"#,
            invoice_id
        )
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
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices
             WHERE tenant_id = $1 AND subscription_id = $2 AND period_start = $3 AND kind = 'subscription'"#,
            tenant_id,
            subscription_id,
            period_start
        )
        .fetch_optional(conn)
        .await
    }

    /// Locks the invoice (third in the lock order tenant → subscription → invoice → payment).
    pub async fn lock(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices WHERE tenant_id = $1 AND invoice_id = $2 FOR NO KEY UPDATE"#,
            tenant_id,
            invoice_id
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_invoice_number(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        invoice_number: &str,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices
             WHERE invoice_number = $1 AND ($2::text IS NULL OR tenant_id = $2)"#,
            invoice_number,
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }

    /// Every invoice of one subscription, newest first.
    pub async fn list_by_subscription(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices WHERE tenant_id = $1 AND subscription_id = $2
             ORDER BY created_at DESC, invoice_id DESC"#,
            tenant_id,
            subscription_id
        )
        .fetch_all(conn)
        .await
    }

    /// The lines of several invoices at once (list pages), in invoice then position order.
    pub async fn lines_for(
        conn: &mut PgConnection,
        invoice_ids: &[Uuid],
    ) -> sqlx::Result<Vec<InvoiceLineRow>> {
        sqlx::query_as!(
            InvoiceLineRow,
            r#"SELECT line_id, invoice_id, position, kind AS "kind: _", description, description_ar, metric,
                    quantity, unit_price, amount
             FROM invoice_lines WHERE invoice_id = ANY($1) ORDER BY invoice_id, position"#,
            invoice_ids
        )
        .fetch_all(conn)
        .await
    }

    /// Unpaid invoices (pending or overdue, something still due) whose due date is before
    /// `as_of`, across tenants, oldest due first. Read only: dunning locks each before acting.
    pub async fn get_overdue(
        conn: &mut PgConnection,
        as_of: NaiveDate,
    ) -> sqlx::Result<Vec<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _", status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at FROM invoices
             WHERE status IN ('pending', 'overdue') AND due_date < $1 AND amount_due > 0
             ORDER BY due_date, invoice_id"#,
            as_of
        )
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
        let rows = sqlx::query!(
            r#"SELECT currency, COALESCE(sum(amount_paid), 0) AS "revenue!" FROM invoices
             WHERE status = 'paid' AND paid_date BETWEEN $1 AND $2
               AND ($3::text IS NULL OR currency = $3)
             GROUP BY currency"#,
            from,
            to,
            currency
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.currency, r.revenue)).collect())
    }
}
