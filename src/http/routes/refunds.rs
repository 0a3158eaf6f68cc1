//! `/refunds`: refunds of succeeded payments by platform staff.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};
use crate::http::dto::refunds::{CreateRefundRequest, RefundResponse};
use crate::http::extract::parse_json;
use crate::http::openapi::components::{
    BadGateway, Conflict, Forbidden, IdempotencyKeyHeader, NotFound, Unauthorized, Unprocessable,
};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::refunds;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_refund))
}

/// Refund (part of) a succeeded payment
///
/// Roles: super_admin. Cumulative refunds never exceed the payment (422
/// `refund_exceeds_payment`); a payment that did not succeed is 409 `payment_not_refundable`.
/// A card refund is status pending until Stripe reports it succeeded (only then does it
/// count); a 502 after a timeout leaves it pending, and a retry with the same Idempotency-Key
/// never refunds twice.
#[utoipa::path(post, path = "/refunds", tag = "Refunds", params(IdempotencyKeyHeader),
    request_body = CreateRefundRequest, security(("bearerAuth" = [])),
    responses((status = 201, description = "Refunded, or sent to the gateway", body = RefundResponse),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 422, response = Unprocessable), (status = 502, response = BadGateway)))]
async fn create_refund(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
    // The role check comes before the body is read.
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
        RefundResponse::stored,
    )
    .await
    .map_err(AppError::from)
}
