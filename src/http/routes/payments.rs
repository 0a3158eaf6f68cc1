//! `/payments`: card and Tharwatt payments through their gateways, offline payments, their confirmation or rejection by platform staff, reads.

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::billing::types::PaymentStatus;
use crate::error::{AppError, AppResult};
use crate::http::extract::{parse_json, parse_uuid, ApiPath, ApiQuery};
use crate::http::pagination::{list_body, PageQuery};
use crate::http::routes::invoices::cursor;
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::idempotency::{IdempotencyKey, Outcome};
use crate::services::payments::{self, payment_fingerprint, tenant_scope, CreatePaymentRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/payments", post(create_payment))
        .route("/payments/{payment_id}", get(get_payment))
        .route("/payments/{payment_id}/confirm", post(confirm_payment))
        .route("/payments/{payment_id}/reject", post(reject_payment))
        .route("/tenants/{tenant_id}/payments", get(list_payments))
}

/// The role check comes before the body is read, so a caller without the role learns
/// nothing about the body rules.
async fn create_payment(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
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
    )
    .await
}

async fn get_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let id = parse_uuid("payment_id", &payment_id)?;
    let scope = tenant_scope(&principal)?;
    Ok(Json(
        payments::get_payment(&state.pool, scope.as_deref(), id).await?,
    ))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    starting_after: Option<String>,
}

async fn list_payments(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Value>> {
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
    let (items, total, has_more) =
        payments::list_payments(&state.pool, tenant.as_str(), status, page.limit, after).await?;
    Ok(Json(list_body("payments", items, total, has_more)))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    reason: Option<String>,
}

/// The body is optional for both decisions; a reason, when given, is 1-1000 characters.
fn decision(body: &Bytes) -> AppResult<DecisionBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecisionBody::default());
    }
    let (d, _) = parse_json::<DecisionBody>(body)?;
    if let Some(r) = &d.reason {
        let n = r.trim().chars().count();
        if n == 0 || n > 1000 {
            return Err(AppError::field("reason", "must be 1-1000 characters"));
        }
    }
    Ok(d)
}

async fn confirm_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
    body: Bytes,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("payment_id", &payment_id)?;
    decision(&body)?;
    Ok(Json(
        payments::confirm(&state.pool, id, &Actor::from(&principal), state.clock.now()).await?,
    ))
}

async fn reject_payment(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(payment_id): ApiPath<String>,
    body: Bytes,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("payment_id", &payment_id)?;
    let d = decision(&body)?;
    let reason = d.reason.as_deref().map(str::trim);
    Ok(Json(
        payments::reject(
            &state.pool,
            id,
            reason,
            &Actor::from(&principal),
            state.clock.now(),
        )
        .await?,
    ))
}
