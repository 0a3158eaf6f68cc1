//! Idempotent POSTs. The key row is inserted in the same transaction as the effect and holds the
//! first response, so:
//! - a retry after commit replays the stored response;
//! - a concurrent duplicate blocks on the unique key until the first commits, then replays
//!   (or, if the first rolled back, runs as the first);
//! - the same key with a different request answers 409 `idempotency_key_reused`.
//!
//! Failed requests roll back and store nothing, so a corrected retry may reuse the key.

use std::future::Future;
use std::pin::Pin;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::{AppError, AppResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> AppResult<Self> {
        let s = s.trim();
        if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(s.to_string()))
        } else {
            Err(AppError::field(
                "Idempotency-Key",
                "must be 1-255 visible ASCII characters",
            ))
        }
    }

    /// From the `Idempotency-Key` header, falling back to a body field (payments).
    pub fn from_request(headers: &HeaderMap, body_key: Option<&str>) -> AppResult<Option<Self>> {
        match headers.get("idempotency-key") {
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    AppError::field("Idempotency-Key", "must be visible ASCII characters")
                })?;
                Ok(Some(Self::parse(s)?))
            }
            None => body_key.map(Self::parse).transpose(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request's identity: method, the route without its API prefix (so `/v1`, `/api/v1` and
/// `/api/v1/billing` share keys; hashed as `/v1/...`, as before there were three), and the body
/// in canonical JSON form (key order and spacing do not matter).
pub fn fingerprint(method: &str, path: &str, body: &Value) -> String {
    let canonical = serde_json::to_string(body).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b" ");
    match crate::api_path::api_route(path) {
        Some(route) => {
            h.update(b"/v1");
            h.update(route.as_bytes());
        }
        None => h.update(path.as_bytes()),
    }
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

pub type Effect<'c> = Pin<Box<dyn Future<Output = AppResult<(StatusCode, Value)>> + Send + 'c>>;

pub struct Outcome {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
}

/// Runs `effect` in a transaction, recording its response under `key` when one is given.
pub async fn run<F>(
    pool: &PgPool,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    effect: F,
) -> AppResult<Outcome>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> Effect<'c>,
{
    let mut tx = pool.begin().await?;
    if let Some(key) = key {
        let claimed: Option<i32> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_fingerprint)
             VALUES ($1, $2, $3)
             ON CONFLICT (scope, idempotency_key) DO UPDATE
                SET request_fingerprint = EXCLUDED.request_fingerprint, response_status = NULL,
                    response_body = NULL, created_at = now(), updated_at = now(),
                    expires_at = now() + interval '48 hours'
                WHERE idempotency_keys.expires_at < now()
             RETURNING 1",
        )
        .bind(scope)
        .bind(key.as_str())
        .bind(fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        if claimed.is_none() {
            let (stored_fp, status, body): (String, Option<i16>, Option<Value>) = sqlx::query_as(
                "SELECT request_fingerprint, response_status, response_body
                 FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
            )
            .bind(scope)
            .bind(key.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if stored_fp != fingerprint {
                return Err(AppError::conflict(
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request",
                    "مفتاح عدم التكرار مستخدم مسبقاً مع طلب مختلف",
                ));
            }
            return match (status, body) {
                (Some(s), Some(b)) => Ok(Outcome {
                    status: StatusCode::from_u16(s as u16).unwrap_or(StatusCode::OK),
                    body: b,
                    replayed: true,
                }),
                _ => Err(AppError::conflict(
                    "idempotency_request_in_progress",
                    "A request with this Idempotency-Key is still in progress",
                    "طلب بنفس المفتاح قيد المعالجة",
                )),
            };
        }
    }
    let (status, mut body) = effect(&mut tx).await?;
    // A response may quote client text; what is stored (and so replayed) must be storable,
    // and the first answer is the same as its replays.
    crate::storable::scrub(&mut body);
    if let Some(key) = key {
        sqlx::query(
            "UPDATE idempotency_keys SET response_status = $3, response_body = $4, updated_at = now()
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key.as_str())
        .bind(status.as_u16() as i16)
        .bind(&body)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Outcome {
        status,
        body,
        replayed: false,
    })
}

/// The first phase of a two-phase idempotent request (a gateway call between two
/// transactions): the caller either owns the key now or gets the stored response.
pub enum Claim {
    Claimed,
    Replay(Outcome),
}

/// How long a claimed key may stay without a response before a retry may take it over: longer
/// than any gateway call (30 s timeout), so only a crashed request's key is taken over.
const STALE_CLAIM_SECS: i32 = 120;

/// Claims `key` inside the caller's transaction (committed by the caller before the gateway
/// call). A key whose request is still running → 409 `idempotency_request_in_progress`; the
/// same key with a different request → 409 `idempotency_key_reused`; a finished one replays.
/// A claim left without a response for [`STALE_CLAIM_SECS`] (a crashed request) is taken over
/// by a retry of the same request.
pub async fn claim(
    conn: &mut PgConnection,
    scope: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> AppResult<Claim> {
    let claimed: Option<i32> = sqlx::query_scalar(
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
         RETURNING 1",
    )
    .bind(scope)
    .bind(key.as_str())
    .bind(fingerprint)
    .bind(STALE_CLAIM_SECS)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Claimed);
    }
    let (stored_fp, status, body): (String, Option<i16>, Option<Value>) = sqlx::query_as(
        "SELECT request_fingerprint, response_status, response_body
         FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if stored_fp != fingerprint {
        return Err(AppError::conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request",
            "مفتاح عدم التكرار مستخدم مسبقاً مع طلب مختلف",
        ));
    }
    match (status, body) {
        (Some(s), Some(b)) => Ok(Claim::Replay(Outcome {
            status: StatusCode::from_u16(s as u16).unwrap_or(StatusCode::OK),
            body: b,
            replayed: true,
        })),
        _ => Err(AppError::conflict(
            "idempotency_request_in_progress",
            "A request with this Idempotency-Key is still in progress",
            "طلب بنفس المفتاح قيد المعالجة",
        )),
    }
}

/// Stores the final response of a claimed key (second phase, in the settling transaction), with
/// any U+0000 a gateway's text brought in replaced (`storable`).
pub async fn complete(
    conn: &mut PgConnection,
    scope: &str,
    key: &IdempotencyKey,
    status: StatusCode,
    body: &Value,
) -> AppResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4, updated_at = now()
         WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key.as_str())
    .bind(status.as_u16() as i16)
    .bind(crate::storable::storable(body).as_ref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives a claimed key up (the request failed), so a retry with it runs again.
pub async fn release(conn: &mut PgConnection, scope: &str, key: &IdempotencyKey) -> AppResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE scope = $1 AND idempotency_key = $2 AND response_status IS NULL",
    )
    .bind(scope)
    .bind(key.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprints_ignore_key_order_and_the_api_prefix() {
        let a = fingerprint("POST", "/v1/payments", &json!({"a": 1, "b": "x"}));
        let b: Value = serde_json::from_str(r#"{ "b": "x",  "a": 1 }"#).unwrap();
        assert_eq!(a, fingerprint("POST", "/api/v1/payments", &b));
        assert_eq!(a, fingerprint("POST", "/api/v1/billing/payments", &b));
        assert_ne!(
            a,
            fingerprint("POST", "/v1/payments", &json!({"a": 2, "b": "x"}))
        );
    }

    #[test]
    fn keys_must_be_visible_ascii() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
