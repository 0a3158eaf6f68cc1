//! `/refunds`: refunds of succeeded payments by platform staff.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::extract::parse_json;
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::refunds::{self, CreateRefundRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/refunds", post(create_refund))
}

/// The role check comes before the body is read.
async fn create_refund(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
    principal.require_any(&[Role::SuperAdmin])?;
    let (req, raw) = parse_json::<CreateRefundRequest>(&body)?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    let fp = idempotency::fingerprint("POST", uri.path(), &raw);
    let input = req.validate()?;
    refunds::create_refund(
        &state.pool,
        &state.config,
        &principal,
        key,
        &fp,
        input,
        state.clock.now(),
    )
    .await
}
