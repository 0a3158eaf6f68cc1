//! `/webhooks/{stripe,tharwatt}`: public, authenticated by the gateway's signature over the
//! raw body (so the body is taken as bytes, never re-serialized before the check).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use crate::billing::types::PaymentMethod;
use crate::error::AppResult;
use crate::gateways;
use crate::services::webhooks;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/stripe", post(stripe))
        .route("/webhooks/tharwatt", post(tharwatt))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Value>> {
    let secret = state.config.stripe_webhook_secret.as_deref();
    let sig = header(&headers, "stripe-signature");
    let gateway = gateways::for_method(&state.config, PaymentMethod::CreditCard);
    let now = state.clock.now();
    Ok(Json(
        webhooks::stripe_event(&state.pool, gateway.as_deref(), secret, sig, &body, now).await?,
    ))
}

async fn tharwatt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Value>> {
    let secret = state.config.tharwatt_webhook_secret.as_deref();
    let sig = header(&headers, "x-tharwatt-signature");
    Ok(Json(
        webhooks::tharwatt_event(&state.pool, secret, sig, &body, state.clock.now()).await?,
    ))
}
