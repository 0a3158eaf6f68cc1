//! Payments. Never deleted; only succeeded payments count toward an invoice's `amount_paid`,
//! and a payment moves to succeeded or failed only from pending/processing.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{PaymentMethod, PaymentStatus};

pub mod refunds;
pub mod webhook_events;

#[derive(Clone, Debug, FromRow)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub tenant_id: String,
    pub invoice_id: Uuid,
    pub amount: Decimal,
    pub currency: String,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub gateway_amount: Option<Decimal>,
    pub gateway_currency: Option<String>,
    pub external_id: Option<String>,
    pub refunded_amount: Decimal,
    pub failure_reason: Option<String>,
    pub phone_number: Option<String>,
    pub created_by: Option<String>,
    pub confirmed_by: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub const PAYMENT_COLUMNS: &str = "payment_id, tenant_id, invoice_id, amount, currency, method, \
    status, gateway_amount, gateway_currency, external_id, refunded_amount, failure_reason, \
    phone_number, created_by, confirmed_by, paid_at, processed_at, metadata, created_at, updated_at";

pub struct NewPayment<'a> {
    pub payment_id: Uuid,
    pub tenant_id: &'a str,
    pub invoice_id: Uuid,
    pub amount: Decimal,
    pub currency: &'a str,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub gateway_amount: Option<Decimal>,
    pub gateway_currency: Option<&'a str>,
    pub external_id: Option<&'a str>,
    pub phone_number: Option<&'a str>,
    pub created_by: Option<&'a str>,
    pub metadata: &'a Value,
}

/// Fields an update may change; `None` leaves the column alone, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct PaymentChanges {
    pub status: Option<PaymentStatus>,
    pub external_id: Option<Option<String>>,
    pub failure_reason: Option<Option<String>>,
    pub gateway_amount: Option<Option<Decimal>>,
    pub gateway_currency: Option<Option<String>>,
    pub processed_at: Option<Option<DateTime<Utc>>>,
}

/// Succeeded payments of one method in one currency.
#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct MethodTotal {
    pub method: PaymentMethod,
    pub currency: String,
    pub total: Decimal,
    pub count: i64,
}

pub struct PaymentRepository;

impl PaymentRepository {
    pub async fn create(conn: &mut PgConnection, p: &NewPayment<'_>) -> sqlx::Result<PaymentRow> {
        sqlx::query_as(&format!(
            "INSERT INTO payments (payment_id, tenant_id, invoice_id, amount, currency, method, status,
                 gateway_amount, gateway_currency, external_id, phone_number, created_by, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(p.payment_id)
        .bind(p.tenant_id)
        .bind(p.invoice_id)
        .bind(p.amount)
        .bind(p.currency)
        .bind(p.method)
        .bind(p.status)
        .bind(p.gateway_amount)
        .bind(p.gateway_currency)
        .bind(p.external_id)
        .bind(p.phone_number)
        .bind(p.created_by)
        .bind(p.metadata)
        .fetch_one(conn)
        .await
    }

    /// The payment if it belongs to `tenant_id` (`None` for a platform caller's any-tenant read).
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE payment_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
        ))
        .bind(payment_id)
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    /// Locks the payment: last in the order tenant → subscription → invoice → payment.
    pub async fn lock(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = $1 AND payment_id = $2 FOR NO KEY UPDATE"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .fetch_optional(conn)
        .await
    }

    /// Payments of one invoice, oldest first.
    pub async fn list_by_invoice(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
    ) -> sqlx::Result<Vec<PaymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE tenant_id = $1 AND invoice_id = $2
             ORDER BY created_at, payment_id"
        ))
        .bind(tenant_id)
        .bind(invoice_id)
        .fetch_all(conn)
        .await
    }

    /// Newest first (`created_at DESC, payment_id DESC`) after the `starting_after` payment,
    /// with the true total under the same filter. An unknown cursor yields an empty page.
    pub async fn list_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
        status: Option<PaymentStatus>,
        limit: i64,
        starting_after: Option<Uuid>,
    ) -> sqlx::Result<crate::pagination::Page<PaymentRow>> {
        use crate::repository::keyset::Keyset;
        const LIST: Keyset =
            Keyset::desc("payments", PAYMENT_COLUMNS, &["created_at", "payment_id"]);
        let status = status.map(|s| ("status", s));
        LIST.of_tenant(conn, tenant_id, status, starting_after, limit)
            .await
    }

    /// Applies `changes`; `None` when the tenant has no such payment.
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        changes: &PaymentChanges,
    ) -> sqlx::Result<Option<PaymentRow>> {
        let mut q =
            sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE payments SET updated_at = now()");
        if let Some(v) = changes.status {
            q.push(", status = ").push_bind(v);
        }
        if let Some(v) = &changes.external_id {
            q.push(", external_id = ").push_bind(v.clone());
        }
        if let Some(v) = &changes.failure_reason {
            // Reasons quote gateway text, which may hold U+0000.
            let v = v
                .as_deref()
                .map(|r| crate::storable::scrub_str(r).into_owned());
            q.push(", failure_reason = ").push_bind(v);
        }
        if let Some(v) = changes.gateway_amount {
            q.push(", gateway_amount = ").push_bind(v);
        }
        if let Some(v) = &changes.gateway_currency {
            q.push(", gateway_currency = ").push_bind(v.clone());
        }
        if let Some(v) = changes.processed_at {
            q.push(", processed_at = ").push_bind(v);
        }
        q.push(" WHERE tenant_id = ")
            .push_bind(tenant_id.to_string());
        q.push(" AND payment_id = ").push_bind(payment_id);
        q.push(format!(" RETURNING {PAYMENT_COLUMNS}"));
        q.build_query_as().fetch_optional(conn).await
    }

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
        sqlx::query_as(&format!(
            "UPDATE payments SET status = 'succeeded', paid_at = $5, processed_at = $5,
                 failure_reason = NULL,
                 external_id = COALESCE($3, external_id), confirmed_by = COALESCE($4, confirmed_by)
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .bind(external_id)
        .bind(confirmed_by)
        .bind(now)
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
        sqlx::query_as(&format!(
            "UPDATE payments SET status = 'failed', failure_reason = $3, processed_at = $5,
                 confirmed_by = COALESCE($4, confirmed_by)
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .bind(crate::storable::scrub_str(reason).as_ref())
        .bind(actor)
        .bind(now)
        .fetch_optional(conn)
        .await
    }

    /// Remembers the Idempotency-Key a gateway payment was created under.
    pub async fn tag_idempotency(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        scope: &str,
        key: &str,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE payments SET idempotency_scope = $3, idempotency_key = $4
             WHERE tenant_id = $1 AND payment_id = $2",
        )
        .bind(tenant_id)
        .bind(payment_id)
        .bind(scope)
        .bind(key)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The still-open (pending/processing) payment created under an Idempotency-Key, if any:
    /// a retry after an unknown gateway outcome continues with it.
    pub async fn find_open_by_idempotency(
        conn: &mut PgConnection,
        scope: &str,
        key: &str,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE idempotency_scope = $1 AND idempotency_key = $2
               AND status IN ('pending', 'processing')
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(conn)
        .await
    }

    /// The payment a gateway knows by `external_id`.
    pub async fn get_by_external_id(
        conn: &mut PgConnection,
        method: PaymentMethod,
        external_id: &str,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE method = $1 AND external_id = $2"
        ))
        .bind(method)
        .bind(external_id)
        .fetch_optional(conn)
        .await
    }

    /// What the gateways are still collecting on an invoice (`processing` payments other than
    /// `except`): counted against `amount_due` so two card payments cannot both be sent for
    /// the same money.
    pub async fn in_flight_total(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
        except: Option<Uuid>,
    ) -> sqlx::Result<Decimal> {
        sqlx::query_scalar(
            "SELECT COALESCE(sum(amount), 0) FROM payments
             WHERE tenant_id = $1 AND invoice_id = $2
               AND (status = 'processing'
                    -- a gateway payment whose outcome is unknown may still be charged
                    OR (status = 'pending' AND method IN ('credit_card', 'tharwatt')))
               AND ($3::uuid IS NULL OR payment_id <> $3)",
        )
        .bind(tenant_id)
        .bind(invoice_id)
        .bind(except)
        .fetch_one(conn)
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
        sqlx::query_as(&format!(
            "UPDATE payments SET status = 'pending', failure_reason = $3
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'processing'
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .bind(crate::storable::scrub_str(reason).as_ref())
        .fetch_optional(conn)
        .await
    }

    /// pending/processing → processing (a payment about to be sent to its gateway).
    pub async fn mark_processing(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as(&format!(
            "UPDATE payments SET status = 'processing', failure_reason = NULL
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('pending', 'processing')
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .fetch_optional(conn)
        .await
    }

    /// Merges `patch` into the payment's metadata (e.g. a webhook amount mismatch).
    pub async fn merge_metadata(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        patch: &Value,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE payments SET metadata = metadata || $3 WHERE tenant_id = $1 AND payment_id = $2",
        )
        .bind(tenant_id)
        .bind(payment_id)
        .bind(crate::storable::storable(patch).as_ref())
        .execute(conn)
        .await?;
        Ok(())
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
        sqlx::query_as(&format!(
            "UPDATE payments SET refunded_amount = refunded_amount + $3,
                 status = CASE WHEN refunded_amount + $3 = amount THEN 'refunded'::payment_status
                               ELSE status END
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'succeeded'
               AND $3 > 0 AND refunded_amount + $3 <= amount
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .bind(amount)
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
        sqlx::query_as(&format!(
            "UPDATE payments SET refunded_amount = refunded_amount - $3,
                 status = CASE WHEN status = 'refunded' THEN 'succeeded'::payment_status
                               ELSE status END
             WHERE tenant_id = $1 AND payment_id = $2 AND status IN ('succeeded', 'refunded')
               AND $3 > 0 AND refunded_amount >= $3
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
        .bind(amount)
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
        sqlx::query_as(&format!(
            "UPDATE payments SET status = 'processing', processed_at = NULL
             WHERE tenant_id = $1 AND payment_id = $2 AND status = 'failed' AND confirmed_by IS NULL
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(tenant_id)
        .bind(payment_id)
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
        sqlx::query_as(&format!(
            "UPDATE payments SET updated_at = now() WHERE payment_id IN (
                 SELECT payment_id FROM payments
                 WHERE status IN ('pending', 'processing') AND method = $1
                   AND updated_at < now() - $2 * interval '1 second'
                 ORDER BY updated_at LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED)
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(method)
        .bind(grace_secs as f64)
        .bind(limit)
        .fetch_all(conn)
        .await
    }

    /// Succeeded payments per method and currency, by `paid_at` UTC date within
    /// `[from, to]` (either bound optional). Currencies are never added together.
    pub async fn get_total_by_method(
        conn: &mut PgConnection,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> sqlx::Result<Vec<MethodTotal>> {
        sqlx::query_as(
            "SELECT method, currency, sum(amount) AS total, count(*) AS count FROM payments
             WHERE status = 'succeeded'
               AND ($1::date IS NULL OR (paid_at AT TIME ZONE 'UTC')::date >= $1)
               AND ($2::date IS NULL OR (paid_at AT TIME ZONE 'UTC')::date <= $2)
             GROUP BY method, currency ORDER BY method, currency",
        )
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await
    }
}
