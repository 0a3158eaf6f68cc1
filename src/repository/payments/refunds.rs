//! Refunds: one row per refund, never deleted. A refund is `pending` while its gateway call
//! runs; pending and succeeded refunds together never exceed the payment (checked under the
//! payment lock).

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
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const REFUND_COLUMNS: &str = "refund_id, payment_id, invoice_id, tenant_id, amount, currency, \
    status, reason, reason_ar, external_refund_id, failure_reason, created_by, created_at, updated_at";

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
}

pub struct RefundRepository;

impl RefundRepository {
    pub async fn create(conn: &mut PgConnection, r: &NewRefund<'_>) -> sqlx::Result<RefundRow> {
        sqlx::query_as(&format!(
            "INSERT INTO refunds (refund_id, payment_id, invoice_id, tenant_id, amount, currency,
                 status, reason, reason_ar, external_refund_id, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
        .fetch_one(conn)
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
