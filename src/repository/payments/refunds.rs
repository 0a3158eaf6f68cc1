//! Refunds: one row per refund, never deleted. A refund is `pending` while its gateway call
//! runs and until the gateway says it succeeded; pending and succeeded refunds together never
//! exceed the payment (checked under the payment lock). Only succeeded refunds are money back:
//! they alone move the payment's `refunded_amount`, the invoice and the reports.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::repository::invoices::{InvoiceRow, INVOICE_COLUMNS};

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

const REFUND_COLUMNS: &str = "refund_id, payment_id, invoice_id, tenant_id, amount, currency, \
    status, reason, reason_ar, external_refund_id, failure_reason, reason_code, created_by, \
    created_at, updated_at";

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
        sqlx::query_as(&format!(
            "INSERT INTO refunds (refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status, reason, reason_ar, external_refund_id, created_by, reason_code,
                 idempotency_scope, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(r.refund_id)
        .bind(r.payment_id)
        .bind(r.invoice_id)
        .bind(r.tenant_id)
        .bind(r.amount)
        .bind(r.currency)
        .bind(&r.status)
        .bind(r.reason)
        .bind(r.reason_ar)
        .bind(r.external_refund_id)
        .bind(r.created_by)
        .bind(r.reason_code)
        .bind(r.idempotency.map(|(s, _)| s))
        .bind(r.idempotency.map(|(_, k)| k))
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
        sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds
             WHERE idempotency_scope = $1 AND idempotency_key = $2
               AND status = 'pending' AND external_refund_id IS NULL
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(conn)
        .await
    }

    /// Locks the refund (after its payment, in the documented order).
    pub async fn lock(conn: &mut PgConnection, refund_id: Uuid) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_id = $1 FOR NO KEY UPDATE"
        ))
        .bind(refund_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn get(conn: &mut PgConnection, refund_id: Uuid) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_id = $1"
        ))
        .bind(refund_id)
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_external_id(
        conn: &mut PgConnection,
        external_refund_id: &str,
    ) -> sqlx::Result<Option<RefundRow>> {
        sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE external_refund_id = $1"
        ))
        .bind(external_refund_id)
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET external_refund_id = COALESCE($2, external_refund_id),
                 failure_reason = $3, updated_at = now()
             WHERE refund_id = $1 AND status = 'pending'
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
        .bind(external_refund_id)
        .bind(note)
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET status = 'failed', failure_reason = $2
             WHERE refund_id = $1 AND status = 'succeeded'
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
        .bind(crate::storable::scrub_str(failure_reason).as_ref())
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET status = 'pending', failure_reason = NULL, updated_at = now()
             WHERE refund_id = $1 AND status = 'failed'
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET failure_reason = $2, updated_at = now()
             WHERE refund_id = $1 AND status = 'failed' AND failure_reason IS DISTINCT FROM $2
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
        .bind(note)
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET updated_at = now() WHERE refund_id IN (
                 SELECT r.refund_id FROM refunds r JOIN payments p ON p.payment_id = r.payment_id
                 WHERE r.status = 'pending' AND p.method = $1
                   AND r.updated_at < now() - $2 * interval '1 second'
                 ORDER BY r.updated_at LIMIT $3 FOR NO KEY UPDATE OF r SKIP LOCKED)
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(method)
        .bind(grace_secs as f64)
        .bind(limit)
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
        sqlx::query_as(&format!(
            "UPDATE invoices SET amount_paid = amount_paid + $3, amount_due = amount_due - $3,
                 status = CASE
                     WHEN status = 'canceled' THEN status
                     WHEN amount_due - $3 = 0 THEN 'paid'::invoice_status
                     WHEN due_date < $4 THEN 'overdue'::invoice_status
                     ELSE 'pending'::invoice_status END,
                 paid_date = CASE WHEN amount_due - $3 = 0 THEN COALESCE(paid_date, $4)
                                  ELSE paid_date END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3 > 0 AND amount_due >= $3
             RETURNING {INVOICE_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .bind(amount)
        .bind(today)
        .fetch_optional(conn)
        .await
    }

    /// Pending plus succeeded refunds of a payment: what is no longer available to refund.
    pub async fn committed_total(
        conn: &mut PgConnection,
        payment_id: Uuid,
    ) -> sqlx::Result<Decimal> {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(amount), 0) FROM refunds
             WHERE payment_id = $1 AND status IN ('pending', 'succeeded')",
        )
        .bind(payment_id)
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
        sqlx::query_as(&format!(
            "UPDATE refunds SET status = $2,
                 external_refund_id = COALESCE($3, external_refund_id), failure_reason = $4
             WHERE refund_id = $1 AND status = 'pending'
             RETURNING {REFUND_COLUMNS}"
        ))
        .bind(refund_id)
        .bind(&status)
        .bind(external_refund_id)
        .bind(failure_reason.map(crate::storable::scrub_str).as_deref())
        .fetch_optional(conn)
        .await
    }

    pub async fn list_by_payment(
        conn: &mut PgConnection,
        payment_id: Uuid,
    ) -> sqlx::Result<Vec<RefundRow>> {
        sqlx::query_as(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_id"
        ))
        .bind(payment_id)
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
        sqlx::query_as(&format!(
            "UPDATE invoices SET amount_paid = amount_paid - $3, amount_due = amount_due + $3,
                 status = CASE
                     WHEN status = 'canceled' THEN status
                     WHEN amount_paid - $3 = 0 THEN 'refunded'::invoice_status
                     WHEN due_date < $4 THEN 'overdue'::invoice_status
                     ELSE 'pending'::invoice_status END,
                 paid_date = CASE WHEN amount_paid - $3 = 0 THEN paid_date ELSE NULL END
             WHERE tenant_id = $1 AND invoice_id = $2 AND $3 > 0 AND amount_paid >= $3
             RETURNING {INVOICE_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .bind(amount)
        .bind(today)
        .fetch_optional(conn)
        .await
    }
}
