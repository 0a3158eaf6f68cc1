//! `/tenants`: sign-up (platform callers) and the tenant and subscription reads.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::billing::types::TenantId;
use crate::error::{AppError, AppResult};
use crate::http::extract::{parse_json, ApiPath, ApiQuery};
use crate::http::pagination::PageQuery;
use crate::services::idempotency::{fingerprint, IdempotencyKey, Outcome};
use crate::services::tenants::{self, SignUpRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants", get(list_tenants).post(create_tenant))
        .route("/tenants/{tenant_id}", get(get_tenant))
        .route("/tenants/{tenant_id}/subscription", get(get_subscription))
}

/// A tenant id from the path: 400 when it cannot be one, 404 when it is another tenant's.
pub fn path_tenant(principal: &Principal, raw: &str) -> AppResult<TenantId> {
    let tenant = TenantId::parse(raw).map_err(|_| {
        AppError::bad_request(
            "invalid_id",
            "tenant_id must be 1-100 of A-Z a-z 0-9 _ -",
            "معرّف المستأجر غير صالح",
        )
    })?;
    principal.require_tenant(&tenant, "Tenant", "المستأجر غير موجود")?;
    Ok(tenant)
}

/// The body is parsed after the role check, so a caller without the role learns nothing about
/// the body rules. The fingerprint uses a fixed path so `/v1` and `/api/v1` share keys.
async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
    principal.require_any(&[Role::SuperAdmin, Role::Service])?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    let (req, raw) = parse_json::<SignUpRequest>(&body)?;
    let signup = req.validate()?;
    let fp = fingerprint("POST", "/v1/tenants", &raw);
    tenants::sign_up(&state, &principal.scope, key.as_ref(), &fp, signup).await
}

async fn get_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        tenants::get_tenant(&mut conn, &tenant, state.clock.now()).await?,
    ))
}

async fn list_tenants(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let page = q.page()?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(tenants::list_tenants(&mut conn, &page).await?))
}

async fn get_subscription(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        tenants::get_subscription(&mut conn, &tenant, state.clock.today()).await?,
    ))
}
