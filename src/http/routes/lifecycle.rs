//! Subscription changes by the tenant's admin (or platform staff): plan/cycle change, cancel,
//! resume.

use axum::extract::State;
use axum::routing::{patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::pagination::parse_bool;
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::lifecycle::{self, ChangeRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tenants/{tenant_id}/subscription",
            patch(change_subscription),
        )
        .route("/tenants/{tenant_id}/cancel", post(cancel))
        .route("/tenants/{tenant_id}/subscription/cancel", post(cancel))
        .route("/tenants/{tenant_id}/subscription/resume", post(resume))
}

async fn change_subscription(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(req): ApiJson<ChangeRequest>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let mut tx = state.pool.begin().await?;
    let body = lifecycle::change(
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
    Ok(Json(body))
}

#[derive(Deserialize)]
struct CancelQuery {
    immediate: Option<String>,
}

async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CancelQuery>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let immediate = parse_bool("immediate", q.immediate.as_deref(), false)?;
    let mut tx = state.pool.begin().await?;
    let body = lifecycle::cancel(
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
    Ok(Json(body))
}

async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let mut tx = state.pool.begin().await?;
    let body = lifecycle::resume(&mut tx, &tenant, &Actor::from(&principal)).await?;
    tx.commit().await?;
    // This process's enforce sees the change at once; other replicas within the cache TTL.
    state.usage_cache.invalidate_tenant(tenant.as_str());
    Ok(Json(body))
}
