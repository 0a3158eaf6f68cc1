//! The payment's state moves (pending → processing → succeeded/failed, refunds on and off,
//! the stale-payment claim): each one conditional on the state it leaves, `None` otherwise.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{PaymentRepository, PaymentRow};
use crate::billing::types::PaymentMethod;

impl PaymentRepository {
    /// pending/processing → succeeded, clearing a "did not answer" note. `None` when the payment is in any other state (so a
    /// second settlement can never happen), or is not the tenant's.
    pub async fn mark_succeeded(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        external_id: Option<&str>,
        confirmed_by: Option<&str>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET status = 'succeeded', paid_at = $5, processed_at = $5,
                 failure_reason = NULL,
                 external_id = COALESCE($3, external_id), confirmed_by = COALESCE($4, confirmed_by)
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
            external_id,
            confirmed_by,
            now,
        )
        .fetch_optional(conn)
        .await
    }

    /// pending/processing → failed with `reason`. `None` in any other state.
    pub async fn mark_failed(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        reason: &str,
        actor: Option<&str>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<PaymentRow>> {
        let reason = crate::storable::scrub_str(reason);
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET status = 'failed', failure_reason = $3, processed_at = $5,
                 confirmed_by = COALESCE($4, confirmed_by)
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
            reason.as_ref(),
            actor,
            now,
        )
        .fetch_optional(conn)
        .await
    }

    /// processing → pending after a gateway call with an unknown outcome: the charge may still
    /// succeed (its webhook settles it) and a retry continues with the same payment. A payment
    /// a webhook already moved on is left alone.
    pub async fn mark_unconfirmed(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        reason: &str,
    ) -> sqlx::Result<Option<PaymentRow>> {
        let reason = crate::storable::scrub_str(reason);
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET status = 'pending', failure_reason = $3
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'processing'
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
            reason.as_ref(),
        )
        .fetch_optional(conn)
        .await
    }

    /// pending/processing → processing (a payment about to be sent to its gateway).
    pub async fn mark_processing(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET status = 'processing', failure_reason = NULL
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// Adds a succeeded refund to a succeeded payment; the payment becomes `refunded` once all
    /// of it is refunded. `None` when the payment is not succeeded or the amount would exceed
    /// it (the caller holds the payment lock and checked already; the CHECK backs it up).
    pub async fn add_refund(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        amount: Decimal,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET refunded_amount = refunded_amount + $3,
                 status = CASE WHEN refunded_amount + $3 = amount THEN 'refunded'::payment_status
                               ELSE status END
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'succeeded'
               AND $3::numeric > 0 AND refunded_amount + $3 <= amount
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
            amount,
        )
        .fetch_optional(conn)
        .await
    }

    /// Takes back a refund that failed after it was applied: `refunded_amount` shrinks and a
    /// `refunded` payment is `succeeded` again. `None` if less than that was refunded.
    pub async fn remove_refund(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        amount: Decimal,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET refunded_amount = refunded_amount - $3,
                 status = CASE WHEN status = 'refunded' THEN 'succeeded'::payment_status
                               ELSE status END
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('succeeded', 'refunded')
               AND $3::numeric > 0 AND refunded_amount >= $3
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
            amount,
        )
        .fetch_optional(conn)
        .await
    }

    /// failed → processing: the gateway reports that a payment it had failed succeeded after
    /// all (the payer retried with another card on the same PaymentIntent). Only a failure the
    /// gateway reported (`confirmed_by` unset), never a rejection by staff.
    pub async fn reopen_failed(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET status = 'processing', processed_at = NULL
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'failed' AND confirmed_by IS NULL
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            tenant_id,
            payment_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// Claims up to `limit` payments of `method` left `pending`/`processing` and untouched for
    /// `grace_secs`, oldest first: their `updated_at` moves to now, so no other worker claims
    /// them again within the grace, and rows another transaction holds (a request settling
    /// them) are skipped. The caller then asks the gateway outside any transaction.
    pub async fn claim_stale_open(
        conn: &mut PgConnection,
        method: PaymentMethod,
        grace_secs: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"UPDATE payments SET updated_at = now() WHERE payment_id IN (
                 SELECT payment_id FROM payments
                 WHERE status IN ('pending', 'processing') AND method = $1
                   AND updated_at < now() - $2 * interval '1 second'
                 ORDER BY updated_at LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED)
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            method as _,
            grace_secs as f64,
            limit,
        )
        .fetch_all(conn)
        .await
    }
}
