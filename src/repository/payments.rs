//! Payments. Never deleted; only succeeded payments count toward an invoice's `amount_paid`,
//! and a payment moves to succeeded or failed only from pending/processing.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{PaymentMethod, PaymentStatus};

pub mod refunds;
mod transitions;
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
        sqlx::query_as!(
            PaymentRow,
            r#"INSERT INTO payments (payment_id, tenant_id, invoice_id, amount, currency, method, status,
                 gateway_amount, gateway_currency, external_id, phone_number, created_by, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             RETURNING payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at"#,
            p.payment_id,
            p.tenant_id,
            p.invoice_id,
            p.amount,
            p.currency,
            p.method as _,
            p.status as _,
            p.gateway_amount,
            p.gateway_currency,
            p.external_id,
            p.phone_number,
            p.created_by,
            p.metadata,
        )
        .fetch_one(conn)
        .await
    }

    /// The payment if it belongs to `tenant_id` (`None` for a platform caller's any-tenant read).
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at FROM payments
             WHERE payment_id = $1 AND ($2::text IS NULL OR tenant_id = $2)"#,
            payment_id,
            tenant_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// Locks the payment: last in the order tenant → subscription → invoice → payment.
    pub async fn lock(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at FROM payments WHERE tenant_id = $1 AND payment_id = $2 FOR NO KEY UPDATE"#,
            tenant_id,
            payment_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// Payments of one invoice, oldest first.
    pub async fn list_by_invoice(
        conn: &mut PgConnection,
        tenant_id: &str,
        invoice_id: Uuid,
    ) -> sqlx::Result<Vec<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at FROM payments WHERE tenant_id = $1 AND invoice_id = $2
             ORDER BY created_at, payment_id"#,
            tenant_id,
            invoice_id,
        )
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

    /// Remembers the Idempotency-Key a gateway payment was created under.
    pub async fn tag_idempotency(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        scope: &str,
        key: &str,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE payments SET idempotency_scope = $3, idempotency_key = $4
             WHERE tenant_id = $1 AND payment_id = $2",
            tenant_id,
            payment_id,
            scope,
            key,
        )
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
        sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at FROM payments
             WHERE idempotency_scope = $1 AND idempotency_key = $2
               AND status IN ('pending', 'processing')
             ORDER BY created_at DESC LIMIT 1"#,
            scope,
            key,
        )
        .fetch_optional(conn)
        .await
    }

    /// The payment a gateway knows by `external_id`.
    pub async fn get_by_external_id(
        conn: &mut PgConnection,
        method: PaymentMethod,
        external_id: &str,
    ) -> sqlx::Result<Option<PaymentRow>> {
        sqlx::query_as!(
            PaymentRow,
            r#"SELECT payment_id, tenant_id, invoice_id, amount, currency, method AS "method: _",
                 status AS "status: _", gateway_amount, gateway_currency, external_id, refunded_amount,
                 failure_reason, phone_number, created_by, confirmed_by, paid_at, processed_at, metadata,
                 created_at, updated_at FROM payments WHERE method = $1 AND external_id = $2"#,
            method as _,
            external_id,
        )
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
        sqlx::query_scalar!(
            r#"SELECT COALESCE(sum(amount), 0) AS "total!" FROM payments
             WHERE tenant_id = $1 AND invoice_id = $2
               AND (status = 'processing'
                    -- a gateway payment whose outcome is unknown may still be charged
                    OR (status = 'pending' AND method IN ('credit_card', 'tharwatt')))
               AND ($3::uuid IS NULL OR payment_id <> $3)"#,
            tenant_id,
            invoice_id,
            except,
        )
        .fetch_one(conn)
        .await
    }

    /// Merges `patch` into the payment's metadata (e.g. a webhook amount mismatch).
    pub async fn merge_metadata(
        conn: &mut PgConnection,
        tenant_id: &str,
        payment_id: Uuid,
        patch: &Value,
    ) -> sqlx::Result<()> {
        let patch = crate::storable::storable(patch);
        sqlx::query!(
            "UPDATE payments SET metadata = metadata || $3 WHERE tenant_id = $1 AND payment_id = $2",
            tenant_id,
            payment_id,
            patch.as_ref(),
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Succeeded payments per method and currency, by `paid_at` UTC date within
    /// `[from, to]` (either bound optional). Currencies are never added together.
    pub async fn get_total_by_method(
        conn: &mut PgConnection,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> sqlx::Result<Vec<MethodTotal>> {
        sqlx::query_as!(
            MethodTotal,
            r#"SELECT method AS "method: _", currency, sum(amount) AS "total!", count(*) AS "count!"
             FROM payments
             WHERE status = 'succeeded'
               AND ($1::date IS NULL OR (paid_at AT TIME ZONE 'UTC')::date >= $1)
               AND ($2::date IS NULL OR (paid_at AT TIME ZONE 'UTC')::date <= $2)
             GROUP BY method, currency ORDER BY method, currency"#,
            from,
            to,
        )
        .fetch_all(conn)
        .await
    }
}
