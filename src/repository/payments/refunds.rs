//! Refunds: one row per refund, never deleted. A refund is `pending` while its gateway call
//! runs and until the gateway says it succeeded; pending and succeeded refunds together never
//! exceed the payment (checked under the payment lock). Only succeeded refunds are money back:
//! they alone move the payment's `refunded_amount`, the invoice and the reports.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::repository::invoices::InvoiceRow;

#[derive(Clone, Debug, PartialEq, Eq, sqlx::Type, serde::Serialize)]
#[sqlx(type_name = "refund_status", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, FromRow)]
pub struct RefundRow {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub invoice_id: Uuid,
    pub tenant_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: RefundStatus,
    pub reason: String,
    pub reason_ar: Option<String>,
    pub external_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    pub reason_code: String,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewRefund<'a> {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub invoice_id: Uuid,
    pub tenant_id: &'a str,
    pub amount: Decimal,
    pub currency: &'a str,
    pub status: RefundStatus,
    pub reason: &'a str,
    pub reason_ar: Option<&'a str>,
    pub external_refund_id: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub reason_code: &'a str,
    /// The Idempotency-Key (scope, key) the refund was asked for under.
    pub idempotency: Option<(&'a str, &'a str)>,
}

pub struct RefundRepository;

impl RefundRepository {
    pub async fn create(conn: &mut PgConnection, r: &NewRefund<'_>) -> sqlx::Result<RefundRow> {
        sqlx::query_as!(
            RefundRow,
            r#"INSERT INTO refunds (refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status, reason, reason_ar, external_refund_id, created_by, reason_code,
                 idempotency_scope, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            r.refund_id,
            r.payment_id,
            r.invoice_id,
            r.tenant_id,
            r.amount,
            r.currency,
            &r.status as _,
            r.reason,
            r.reason_ar,
            r.external_refund_id,
            r.created_by,
            r.reason_code,
            r.idempotency.map(|(s, _)| s),
            r.idempotency.map(|(_, k)| k),
        )
        .fetch_one(conn)
        .await
    }

    /// The refund asked for under an Idempotency-Key whose gateway call got no answer (still
    /// `pending` without the gateway's id): a retry continues with it.
    pub async fn find_unanswered_by_idempotency(
        conn: &mut PgConnection,
        scope: &str,
        key: &str,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"SELECT refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at FROM refunds
             WHERE idempotency_scope = $1 AND idempotency_key = $2
               AND status = 'pending' AND external_refund_id IS NULL
             ORDER BY created_at DESC LIMIT 1"#,
            scope,
            key,
        )
        .fetch_optional(conn)
        .await
    }

    /// Locks the refund (after its payment, in the documented order).
    pub async fn lock(conn: &mut PgConnection, refund_id: Uuid) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"SELECT refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at FROM refunds WHERE refund_id = $1 FOR NO KEY UPDATE"#,
            refund_id,
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn get(conn: &mut PgConnection, refund_id: Uuid) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"SELECT refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at FROM refunds WHERE refund_id = $1"#,
            refund_id,
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_external_id(
        conn: &mut PgConnection,
        external_refund_id: &str,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"SELECT refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at FROM refunds WHERE external_refund_id = $1"#,
            external_refund_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// A pending refund stays pending: the gateway accepted it (`external_refund_id`), or did
    /// not answer (`note`). Either way `updated_at` moves, so the reconciliation job waits its
    /// grace period again before the next lookup.
    pub async fn keep_pending(
        conn: &mut PgConnection,
        refund_id: Uuid,
        external_refund_id: Option<&str>,
        note: Option<&str>,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET external_refund_id = COALESCE($2, external_refund_id),
                 failure_reason = $3, updated_at = now()
             WHERE refund_id = $1 AND status = 'pending'
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            refund_id,
            external_refund_id,
            note,
        )
        .fetch_optional(conn)
        .await
    }

    /// succeeded → failed: the gateway gave up on a refund it had reported done (Stripe's
    /// `refund.failed`). `None` unless the refund had succeeded.
    pub async fn mark_reversed(
        conn: &mut PgConnection,
        refund_id: Uuid,
        failure_reason: &str,
    ) -> sqlx::Result<Option<RefundRow>> {
        let failure_reason = crate::storable::scrub_str(failure_reason);
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET status = 'failed', failure_reason = $2
             WHERE refund_id = $1 AND status = 'succeeded'
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            refund_id,
            failure_reason.as_ref(),
        )
        .fetch_optional(conn)
        .await
    }

    /// failed → pending again, so a refund the gateway reports succeeded after we failed it
    /// (the reconciliation found no record of it, or an older answer said failed) can be
    /// applied like any pending one. `None` unless the refund is failed.
    pub async fn reopen_failed(
        conn: &mut PgConnection,
        refund_id: Uuid,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET status = 'pending', failure_reason = NULL, updated_at = now()
             WHERE refund_id = $1 AND status = 'failed'
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            refund_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// Notes on a failed refund why staff must look at it. `None` when it already carries
    /// that note (a second report of the same success), so the alarm is raised once.
    pub async fn flag_failed(
        conn: &mut PgConnection,
        refund_id: Uuid,
        note: &str,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET failure_reason = $2, updated_at = now()
             WHERE refund_id = $1 AND status = 'failed' AND failure_reason IS DISTINCT FROM $2
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            refund_id,
            note,
        )
        .fetch_optional(conn)
        .await
    }

    /// Claims up to `limit` pending refunds of `method` payments untouched for `grace_secs`,
    /// oldest first, the way [`PaymentRepository::claim_stale_open`] claims payments.
    ///
    /// [`PaymentRepository::claim_stale_open`]: crate::repository::payments::PaymentRepository::claim_stale_open
    pub async fn claim_stale_pending(
        conn: &mut PgConnection,
        method: crate::billing::types::PaymentMethod,
        grace_secs: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET updated_at = now() WHERE refund_id IN (
                 SELECT r.refund_id FROM refunds r JOIN payments p ON p.payment_id = r.payment_id
                 WHERE r.status = 'pending' AND p.method = $1
                   AND r.updated_at < now() - $2 * interval '1 second'
                 ORDER BY r.updated_at LIMIT $3 FOR NO KEY UPDATE OF r SKIP LOCKED)
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            method as _,
            grace_secs as f64,
            limit,
        )
        .fetch_all(conn)
        .await
    }

    /// Gives back to the invoice a refund that failed after it was applied: `amount_paid`
    /// grows again (status `paid` when nothing is left due). `None` when the invoice does not
    /// owe that much (it was paid again meanwhile); the caller records the surplus instead.
    pub async fn restore_on_invoice(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        amount: Decimal,
        today: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"UPDATE invoices SET amount_paid = amount_paid + $3, amount_due = amount_due - $3,
                 status = CASE
                     WHEN status = 'canceled' THEN status
                     WHEN amount_due - $3 = 0 THEN 'paid'::invoice_status
                     WHEN due_date < $4 THEN 'overdue'::invoice_status
                     ELSE 'pending'::invoice_status END,
                 paid_date = CASE WHEN amount_due - $3 = 0 THEN COALESCE(paid_date, $4)
                                  ELSE paid_date END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3::numeric > 0 AND amount_due >= $3
             RETURNING invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _",
                 status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal,
                 tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date,
                 due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at"#,
            tenant_id,
            invoice_id,
            amount,
            today,
        )
        .fetch_optional(conn)
        .await
    }

    /// Pending plus succeeded refunds of a payment: what is no longer available to refund.
    pub async fn committed_total(
        conn: &mut PgConnection,
        payment_id: Uuid,
    ) -> sqlx::Result<Decimal> {
        sqlx::query_scalar!(
            r#"SELECT COALESCE(sum(amount), 0) AS "total!" FROM refunds
             WHERE payment_id = $1 AND status IN ('pending', 'succeeded')"#,
            payment_id,
        )
        .fetch_one(conn)
        .await
    }

    /// pending → succeeded/failed. `None` when the refund is no longer pending.
    pub async fn finish(
        conn: &mut PgConnection,
        refund_id: Uuid,
        status: RefundStatus,
        external_refund_id: Option<&str>,
        failure_reason: Option<&str>,
    ) -> sqlx::Result<Option<RefundRow>> {
        let failure_reason = failure_reason.map(crate::storable::scrub_str);
        sqlx::query_as!(
            RefundRow,
            r#"UPDATE refunds SET status = $2,
                 external_refund_id = COALESCE($3, external_refund_id), failure_reason = $4
             WHERE refund_id = $1 AND status = 'pending'
             RETURNING refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at"#,
            refund_id,
            &status as _,
            external_refund_id,
            failure_reason.as_deref(),
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn list_by_payment(
        conn: &mut PgConnection,
        payment_id: Uuid,
    ) -> sqlx::Result<Vec<RefundRow>> {
        sqlx::query_as!(
            RefundRow,
            r#"SELECT refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status AS "status: _", reason, reason_ar, external_refund_id, failure_reason, reason_code,
                 created_by, created_at, updated_at FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_id"#,
            payment_id,
        )
        .fetch_all(conn)
        .await
    }

    /// Takes a refunded `amount` off the invoice's `amount_paid` (the caller holds the invoice
    /// lock). An invoice whose every paid amount is refunded becomes `refunded`; otherwise an
    /// invoice with money due again is `pending`, or `overdue` once past its due date. A voided
    /// invoice keeps its status. `None` if the invoice has not that much paid.
    pub async fn reverse_on_invoice(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        amount: Decimal,
        today: NaiveDate,
    ) -> sqlx::Result<Option<InvoiceRow>> {
        sqlx::query_as!(
            InvoiceRow,
            r#"UPDATE invoices SET amount_paid = amount_paid - $3, amount_due = amount_due + $3,
                 status = CASE
                     WHEN status = 'canceled' THEN status
                     WHEN amount_paid - $3 = 0 THEN 'refunded'::invoice_status
                     WHEN due_date < $4 THEN 'overdue'::invoice_status
                     ELSE 'pending'::invoice_status END,
                 paid_date = CASE WHEN amount_paid - $3 = 0 THEN paid_date ELSE NULL END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3::numeric > 0 AND amount_paid >= $3
             RETURNING invoice_id, invoice_number, tenant_id, subscription_id, kind AS "kind: _",
                 status AS "status: _", currency, exchange_rate, period_start, period_end, subtotal,
                 tax_rate, tax_amount, discount_amount, total, amount_paid, amount_due, issue_date,
                 due_date, paid_date, notes, notes_ar, plan_id, created_at, updated_at"#,
            tenant_id,
            invoice_id,
            amount,
            today,
        )
        .fetch_optional(conn)
        .await
    }
}
