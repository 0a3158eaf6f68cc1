//! `/webhooks/{stripe,tharwatt}`: public, authenticated by the gateway's signature over the
//! raw body (so the body is taken as bytes, never re-serialized before the check).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::billing::types::PaymentMethod;
use crate::error::AppResult;
use crate::gateways;
use crate::http::dto::webhooks::{
    StripeAck, StripeEvent, StripeSignatureHeader, TharwattAck, TharwattCallback,
    TharwattSignatureHeader,
};
use crate::http::openapi::components::{BadGateway, BadRequest, NotFound};
use crate::services::webhooks;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stripe))
        .routes(routes!(tharwatt))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Stripe events (deduplicated by event id)
///
/// Authenticated by the `Stripe-Signature` signature over the raw body; not rate limited. The
/// signature is checked before anything else: a missing, bad or stale one is 400
/// `invalid_signature`; a signed body that is not an event is 400 `invalid_payload`. A refund
/// recorded as failed that an event says succeeded is read back from Stripe first (events
/// arrive in any order): 502 when Stripe cannot be asked, and Stripe delivers it again.
#[utoipa::path(post, path = "/webhooks/stripe", tag = "Webhooks", params(StripeSignatureHeader),
    request_body(content = StripeEvent, description = "A Stripe event, as Stripe sends it."),
    responses((status = 200, description = "Acknowledged", body = StripeAck),
        (status = 400, response = BadRequest), (status = 502, response = BadGateway)))]
async fn stripe(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<StripeAck>> {
    let secret = state.config.stripe_webhook_secret.as_deref();
    let sig = header(&headers, "stripe-signature");
    let gateway = gateways::for_method(&state.config, PaymentMethod::CreditCard);
    let now = state.clock.now();
    let receipt =
        webhooks::stripe_event(&state.pool, gateway.as_deref(), secret, sig, &body, now).await?;
    Ok(Json(receipt.into()))
}

/// Tharwatt payment results (deduplicated by transaction and status)
///
/// Authenticated by the `X-Tharwatt-Signature` signature over the raw body; not rate limited.
/// A missing or bad signature is 400 `invalid_signature`; a signed body without the members
/// below is 400 `invalid_payload`; a reference that is no Tharwatt payment is 404.
#[utoipa::path(post, path = "/webhooks/tharwatt", tag = "Webhooks",
    params(TharwattSignatureHeader),
    request_body(content = TharwattCallback, description = "Tharwatt's payment result."),
    responses((status = 200, description = "Acknowledged", body = TharwattAck),
        (status = 400, response = BadRequest), (status = 404, response = NotFound)))]
async fn tharwatt(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<TharwattAck>> {
    let secret = state.config.tharwatt_webhook_secret.as_deref();
    let sig = header(&headers, "x-tharwatt-signature");
    let receipt =
        webhooks::tharwatt_event(&state.pool, secret, sig, &body, state.clock.now()).await?;
    Ok(Json(receipt.into()))
}
