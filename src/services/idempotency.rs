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

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use crate::error::AppResult;
use crate::repository::idempotency::IdempotencyRepository;
use crate::services::validate::Invalid;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> AppResult<Self> {
        let s = s.trim();
        if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(s.to_string()))
        } else {
            Err(Invalid::field("Idempotency-Key", "must be 1-255 visible ASCII characters").into())
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

/// An answer as it is kept under a key: the HTTP status number and the JSON body, exactly
/// what `idempotency_keys` has always held, so keys stored before any change replay byte for
/// byte. Services never make one: the renderer `http` hands a use case does.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
}

/// What an idempotent request answers: its own fresh answer or the stored one (`replayed`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Outcome {
    /// This request's own answer.
    pub fn fresh(r: StoredResponse) -> Self {
        Outcome {
            status: r.status,
            body: r.body,
            replayed: false,
        }
    }
}

/// Why a key cannot be used for this request.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The same key with a different request.
    #[error("the idempotency key was used with a different request")]
    KeyReused,
    /// The key's first request has not answered yet.
    #[error("a request with this idempotency key is still in progress")]
    InProgress,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The effect of a one-transaction idempotent request, rendered to what is stored.
pub type Effect<'c, E> = Pin<Box<dyn Future<Output = Result<StoredResponse, E>> + Send + 'c>>;

/// Runs `effect` in a transaction, recording its answer under `key` when one is given. Built
/// on [`claim`] and [`complete`] in one transaction: a concurrent duplicate blocks on the key
/// until the first commits, then replays (or, if the first rolled back, runs as the first).
pub async fn run<E, F>(
    pool: &PgPool,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    effect: F,
) -> Result<Outcome, E>
where
    E: From<IdempotencyError>,
    F: for<'c> FnOnce(&'c mut PgConnection) -> Effect<'c, E>,
{
    let db = |e: sqlx::Error| E::from(IdempotencyError::Database(e));
    let mut tx = pool.begin().await.map_err(db)?;
    if let Some(key) = key {
        if let Claim::Replay(done) = claim(&mut tx, scope, key, fingerprint).await? {
            return Ok(done);
        }
    }
    let mut answer = effect(&mut tx).await?;
    // A response may quote client text; what is stored (and so replayed) must be storable,
    // and the first answer is the same as its replays.
    crate::storable::scrub(&mut answer.body);
    if let Some(key) = key {
        complete(&mut tx, scope, key, &answer).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Outcome::fresh(answer))
}

/// The first phase of an idempotent request: the caller either owns the key now or gets the
/// stored response.
pub enum Claim {
    Claimed,
    Replay(Outcome),
}

/// How long a claimed key may stay without a response before a retry may take it over: longer
/// than any gateway call (30 s timeout), so only a crashed request's key is taken over.
const STALE_CLAIM_SECS: i32 = 120;

/// Claims `key` inside the caller's transaction (for a two-phase request, committed by the
/// caller before the gateway call). A key whose request is still running → `InProgress`; the
/// same key with a different request → `KeyReused`; a finished one replays. A claim left
/// without a response for [`STALE_CLAIM_SECS`] (a crashed request) is taken over by a retry
/// of the same request.
pub async fn claim(
    conn: &mut PgConnection,
    scope: &str,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<Claim, IdempotencyError> {
    let k = key.as_str();
    if IdempotencyRepository::claim(conn, scope, k, fingerprint, STALE_CLAIM_SECS).await? {
        return Ok(Claim::Claimed);
    }
    let row = IdempotencyRepository::get(conn, scope, k).await?;
    if row.request_fingerprint != fingerprint {
        return Err(IdempotencyError::KeyReused);
    }
    match (row.response_status, row.response_body) {
        (Some(status), Some(body)) => Ok(Claim::Replay(Outcome {
            status: u16::try_from(status).unwrap_or(200),
            body,
            replayed: true,
        })),
        _ => Err(IdempotencyError::InProgress),
    }
}

/// Stores the answer of a claimed key, with any U+0000 replaced (`storable`).
pub async fn complete(
    conn: &mut PgConnection,
    scope: &str,
    key: &IdempotencyKey,
    answer: &StoredResponse,
) -> sqlx::Result<()> {
    let body = crate::storable::storable(&answer.body);
    let status = i16::try_from(answer.status).unwrap_or(500);
    IdempotencyRepository::store(conn, scope, key.as_str(), status, body.as_ref()).await
}

/// Gives a claimed key up (the request failed), so a retry with it runs again.
pub async fn release(
    conn: &mut PgConnection,
    scope: &str,
    key: &IdempotencyKey,
) -> sqlx::Result<()> {
    IdempotencyRepository::release(conn, scope, key.as_str()).await
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired(pool: &PgPool) -> sqlx::Result<u64> {
    IdempotencyRepository::purge_expired(pool).await
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
