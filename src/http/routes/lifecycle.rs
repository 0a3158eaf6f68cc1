//! Subscription changes by the tenant's admin (or platform staff): plan/cycle change, cancel,
//! resume.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::dto::subscriptions::{
    CancelResponse, ChangeSubscriptionRequest, ResumeResponse, SubscriptionChanged,
};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unprocessable,
};
use crate::http::pagination::parse_bool;
use crate::http::routes::tenants::{path_tenant, TenantPath};
use crate::services::audit::Actor;
use crate::services::lifecycle::{self, ChangeRequest};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_subscription))
        .routes(routes!(cancel))
        .routes(routes!(cancel_subscription))
        .routes(routes!(resume))
}

/// Change plan, billing cycle or payment method (prorated)
///
/// Roles: tenant_admin, super_admin, service. A tenant role reaches only its own tenant;
/// another tenant's resource answers 404. A plan change outside a trial is prorated by the
/// remaining days: a positive net is invoiced now, a negative one credited to the balance.
#[utoipa::path(patch, path = "/tenants/{tenant_id}/subscription", tag = "Subscriptions",
    params(TenantPath), request_body = ChangeSubscriptionRequest,
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Changed", body = SubscriptionChanged),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn change_subscription(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(req): ApiJson<ChangeSubscriptionRequest>,
) -> AppResult<Json<SubscriptionChanged>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let req = ChangeRequest {
        plan_id: req.plan_id,
        billing_cycle: req.billing_cycle,
        payment_method: req.payment_method,
    };
    let mut tx = state.pool.begin().await?;
    let changed = lifecycle::change(
        &mut tx,
        &state.config,
        &tenant,
        req,
        state.clock.now(),
        &Actor::from(&principal),
    )
    .await?;
    tx.commit().await?;
    // This process's enforce sees the change at once; other replicas within the cache TTL.
    state.usage_cache.invalidate_tenant(tenant.as_str());
    Ok(Json(SubscriptionChanged::from(&changed)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CancelQuery {
    /// Cancel now (the period ends today) instead of at the period end: true/false (or 1/0);
    /// default false.
    #[param(value_type = Option<crate::http::dto::query_schemas::BoolParam>, inline)]
    immediate: Option<String>,
}

/// Cancel the subscription (at period end unless immediate)
///
/// Roles: tenant_admin, super_admin, service. A tenant role reaches only its own tenant;
/// another tenant's resource answers 404.
#[utoipa::path(post, path = "/tenants/{tenant_id}/cancel", tag = "Subscriptions",
    params(TenantPath, CancelQuery), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Canceled, or set to cancel at the period end", body = CancelResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn cancel(
    state: State<AppState>,
    principal: Principal,
    path: ApiPath<String>,
    query: ApiQuery<CancelQuery>,
) -> AppResult<Json<CancelResponse>> {
    cancel_tenant(state, principal, path, query).await
}

/// Cancel the subscription (same as /tenants/{tenant_id}/cancel)
///
/// Roles: tenant_admin, super_admin, service. A tenant role reaches only its own tenant;
/// another tenant's resource answers 404.
#[utoipa::path(post, path = "/tenants/{tenant_id}/subscription/cancel", tag = "Subscriptions",
    params(TenantPath, CancelQuery), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Canceled, or set to cancel at the period end", body = CancelResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn cancel_subscription(
    state: State<AppState>,
    principal: Principal,
    path: ApiPath<String>,
    query: ApiQuery<CancelQuery>,
) -> AppResult<Json<CancelResponse>> {
    cancel_tenant(state, principal, path, query).await
}

async fn cancel_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CancelQuery>,
) -> AppResult<Json<CancelResponse>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let immediate = parse_bool("immediate", q.immediate.as_deref(), false)?;
    let mut tx = state.pool.begin().await?;
    let canceled = lifecycle::cancel(
        &mut tx,
        &tenant,
        immediate,
        state.clock.now(),
        &Actor::from(&principal),
    )
    .await?;
    tx.commit().await?;
    // This process's enforce sees the change at once; other replicas within the cache TTL.
    state.usage_cache.invalidate_tenant(tenant.as_str());
    Ok(Json(CancelResponse::from(&canceled)))
}

/// Undo a pending cancellation
///
/// Roles: tenant_admin, super_admin, service. A tenant role reaches only its own tenant;
/// another tenant's resource answers 404. 409 `not_pending_cancellation` when none is pending.
#[utoipa::path(post, path = "/tenants/{tenant_id}/subscription/resume", tag = "Subscriptions",
    params(TenantPath), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Resumed", body = ResumeResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict)))]
async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<ResumeResponse>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let mut tx = state.pool.begin().await?;
    let saved = lifecycle::resume(&mut tx, &tenant, &Actor::from(&principal)).await?;
    tx.commit().await?;
    // This process's enforce sees the change at once; other replicas within the cache TTL.
    state.usage_cache.invalidate_tenant(tenant.as_str());
    Ok(Json(ResumeResponse::from(&saved)))
}
