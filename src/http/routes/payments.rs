//! `/payments`: card and Tharwatt payments through their gateways, offline payments, their
//! confirmation or rejection by platform staff, reads.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::types::PaymentStatus;
use crate::error::{AppError, AppResult};
use crate::http::dto::payments::{
    CreatePaymentRequest, CreatePaymentSchema, PaymentBody, PaymentDecisionRequest, PaymentDetail,
    PaymentList, PaymentResponse,
};
use crate::http::extract::{parse_json, parse_uuid, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadGateway, BadRequest, Conflict, Forbidden, IdempotencyKeyHeader, NotFound, PaymentRequired,
    Unauthorized, Unprocessable,
};
use crate::http::pagination::PageQuery;
use crate::http::routes::invoices::cursor;
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::idempotency::{IdempotencyKey, Outcome};
use crate::services::payments::{self, payment_fingerprint, tenant_scope};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment))
        .routes(routes!(get_payment))
        .routes(routes!(confirm_payment))
        .routes(routes!(reject_payment))
        .routes(routes!(list_payments))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it with `ApiPath`
struct PaymentPath {
    /// The payment's id.
    #[param(format = Uuid, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    payment_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct TenantPath {
    /// The tenant's id.
    #[param(pattern = "^[A-Za-z0-9_-]{1,100}$")]
    tenant_id: String,
}

/// Pay an invoice
///
/// Roles: tenant_admin, super_admin. A tenant role reaches only its own tenant; another
/// tenant's invoice answers 404. Card via Stripe, tharwatt, or offline methods awaiting
/// confirmation (cash recorded by a super admin succeeds at once). A card needing 3-D Secure
/// answers 201 with requires_action, client_secret and next_action: the app confirms with
/// Stripe.js or the mobile SDK and the webhook settles the payment. A declined card is 402
/// card_declined (decline_code); 502 gateway_error is a gateway fault (the payment stays
/// open: retry with the same Idempotency-Key). 409: the invoice is paid, voided or refunded
/// (`invoice_not_payable`), or the key was used for another request.
#[utoipa::path(post, path = "/payments", tag = "Payments", params(IdempotencyKeyHeader),
    request_body = CreatePaymentSchema, security(("bearerAuth" = [])),
    responses((status = 201, description = "Recorded", body = PaymentResponse),
        (status = 401, response = Unauthorized), (status = 402, response = PaymentRequired),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable),
        (status = 502, response = BadGateway)))]
async fn create_payment(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
    // The role check comes before the body is read, so a caller without the role learns
    // nothing about the body rules.
    principal.require_any(&[Role::SuperAdmin, Role::TenantAdmin])?;
    let (req, raw) = parse_json::<CreatePaymentRequest>(&body)?;
    let key = IdempotencyKey::from_request(&headers, req.idempotency_key.as_deref())?;
    let fp = payment_fingerprint(uri.path(), &raw);
    let input = req.validate()?;
    payments::record_payment(
        &state.pool,
        &state.config,
        principal,
        key,
        &fp,
        input,
        state.clock.now(),
        PaymentResponse::stored,
    )
    .await
}

/// Get a payment
///
/// Roles: tenant_user, tenant_admin, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's payment answers 404.
#[utoipa::path(get, path = "/payments/{payment_id}", tag = "Payments", params(PaymentPath),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The payment", body = PaymentDetail),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn get_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
) -> AppResult<Json<PaymentDetail>> {
    let id = parse_uuid("payment_id", &payment_id)?;
    let scope = tenant_scope(&principal)?;
    let p = payments::get_payment(&state.pool, scope.as_deref(), id).await?;
    Ok(Json(PaymentDetail {
        payment: PaymentBody::from(&p),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only payments in this status.
    #[param(value_type = Option<crate::http::dto::query_schemas::PaymentStatusParam>, inline)]
    status: Option<String>,
    /// Page size.
    #[param(value_type = Option<crate::http::dto::query_schemas::LimitParam>, inline)]
    limit: Option<String>,
    /// The payment_id of the last payment of the previous page; empty means the first page.
    #[param(
        pattern = "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    starting_after: Option<String>,
}

/// List the tenant's payments
///
/// Roles: tenant_user, tenant_admin, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant answers 404. Newest first.
#[utoipa::path(get, path = "/tenants/{tenant_id}/payments", tag = "Payments",
    params(TenantPath, ListQuery), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "One page", body = PaymentList),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn list_payments(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<PaymentList>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(PaymentStatus::parse(s).ok_or_else(|| {
            AppError::field(
                "status",
                "must be one of pending, processing, succeeded, failed, refunded",
            )
        })?),
    };
    let page = PageQuery {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .page()?;
    let after = cursor(page.starting_after.as_deref())?;
    let p =
        payments::list_payments(&state.pool, tenant.as_str(), status, page.limit, after).await?;
    Ok(Json(PaymentList {
        payments: p.items.iter().map(PaymentBody::from).collect(),
        total: p.total,
        has_more: p.has_more,
    }))
}

/// The body is optional for both decisions (none, or JSON `null`, is no reason); a reason,
/// when given, is 1-1000 characters.
fn decision(body: &Bytes) -> AppResult<PaymentDecisionRequest> {
    if body.trim_ascii().is_empty() || body.trim_ascii() == b"null" {
        return Ok(PaymentDecisionRequest { reason: None });
    }
    let (d, _) = parse_json::<PaymentDecisionRequest>(body)?;
    if let Some(r) = &d.reason {
        let n = r.trim().chars().count();
        if n == 0 || n > 1000 {
            return Err(AppError::field("reason", "must be 1-1000 characters"));
        }
    }
    Ok(d)
}

/// Confirm an offline payment
///
/// Roles: super_admin. The money arrived: the payment succeeds and counts toward the invoice.
/// 409: the payment is not pending, or a gateway decides it.
#[utoipa::path(post, path = "/payments/{payment_id}/confirm", tag = "Payments",
    params(PaymentPath), request_body(content = Option<PaymentDecisionRequest>),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Confirmed", body = PaymentResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn confirm_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
    body: Bytes,
) -> AppResult<Json<PaymentResponse>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("payment_id", &payment_id)?;
    decision(&body)?;
    let done =
        payments::confirm(&state.pool, id, &Actor::from(&principal), state.clock.now()).await?;
    Ok(Json(PaymentResponse::from(&done)))
}

/// Reject an offline payment
///
/// Roles: super_admin. The money never arrived: the payment fails. 409: the payment is not
/// pending, or a gateway decides it.
#[utoipa::path(post, path = "/payments/{payment_id}/reject", tag = "Payments",
    params(PaymentPath), request_body(content = Option<PaymentDecisionRequest>),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Rejected", body = PaymentResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn reject_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
    body: Bytes,
) -> AppResult<Json<PaymentResponse>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("payment_id", &payment_id)?;
    let d = decision(&body)?;
    let reason = d.reason.as_deref().map(str::trim);
    let actor = Actor::from(&principal);
    let done = payments::reject(&state.pool, id, reason, &actor, state.clock.now()).await?;
    Ok(Json(PaymentResponse::from(&done)))
}
