//! Idempotency keys: one row per (scope, key), holding the request's fingerprint and, once the
//! request finished, its answer (the HTTP status number and the JSON body, as first stored).

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

pub struct IdempotencyRepository;

/// A key already taken: whose request it is, and its answer when that request finished.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    pub request_fingerprint: String,
    pub response_status: Option<i16>,
    pub response_body: Option<Value>,
}

impl IdempotencyRepository {
    /// Takes `key` for the request `fingerprint`: true when the caller now owns it. An expired
    /// key is taken over, and so is a claim of the same request left without an answer for
    /// `stale_secs` (its request crashed). A fresh claim of a running request stays its own
    /// (a concurrent insert blocks on the unique key until the first transaction ends).
    pub async fn claim(
        conn: &mut PgConnection,
        scope: &str,
        key: &str,
        fingerprint: &str,
        stale_secs: i32,
    ) -> sqlx::Result<bool> {
        let claimed: Option<i32> = sqlx::query_scalar!(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_fingerprint)
             VALUES ($1, $2, $3)
             ON CONFLICT (scope, idempotency_key) DO UPDATE
                SET request_fingerprint = EXCLUDED.request_fingerprint, response_status = NULL,
                    response_body = NULL, created_at = now(), updated_at = now(),
                    expires_at = now() + interval '48 hours'
                WHERE idempotency_keys.expires_at < now()
                   OR (idempotency_keys.response_status IS NULL
                       AND idempotency_keys.request_fingerprint = EXCLUDED.request_fingerprint
                       AND idempotency_keys.updated_at < now() - $4 * interval '1 second')
             RETURNING 1 AS \"claimed!\"",
            scope,
            key,
            fingerprint,
            f64::from(stale_secs),
        )
        .fetch_optional(conn)
        .await?;
        Ok(claimed.is_some())
    }

    /// The row of a key [`claim`](Self::claim) found taken.
    pub async fn get(conn: &mut PgConnection, scope: &str, key: &str) -> sqlx::Result<KeyRow> {
        sqlx::query_as!(
            KeyRow,
            "SELECT request_fingerprint, response_status, response_body
             FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
            scope,
            key,
        )
        .fetch_one(conn)
        .await
    }

    /// Stores the answer of the request that owns `key`.
    pub async fn store(
        conn: &mut PgConnection,
        scope: &str,
        key: &str,
        status: i16,
        body: &Value,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4, updated_at = now()
             WHERE scope = $1 AND idempotency_key = $2",
            scope,
            key,
            status,
            body,
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Gives up a claim that has no answer (its request failed).
    pub async fn release(conn: &mut PgConnection, scope: &str, key: &str) -> sqlx::Result<()> {
        sqlx::query!(
            "DELETE FROM idempotency_keys
             WHERE scope = $1 AND idempotency_key = $2 AND response_status IS NULL",
            scope,
            key,
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Deletes expired keys; returns how many.
    pub async fn purge_expired(pool: &PgPool) -> sqlx::Result<u64> {
        Ok(
            sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at < now()")
                .execute(pool)
                .await?
                .rows_affected(),
        )
    }
}
