//! `/tenants`: sign-up (platform callers) and the tenant and subscription reads.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::types::TenantId;
use crate::error::{AppError, AppResult};
use crate::http::dto::tenants::{
    SignUpBody, SignUpRequest, SignUpResponse, SubscriptionDetail, TenantBody, TenantDetail,
    TenantList,
};
use crate::http::extract::{parse_json, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, IdempotencyKeyHeader, NotFound, PageParams, TenantIdSchema,
    Unauthorized, Unprocessable,
};
use crate::http::pagination::PageQuery;
use crate::services::idempotency::{fingerprint, IdempotencyKey, Outcome, StoredResponse};
use crate::services::tenants::{self, SignedUp};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant))
        .routes(routes!(get_subscription))
}

/// The `{tenant_id}` of a tenant's paths.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; handlers read it with `ApiPath`
pub struct TenantPath {
    /// The tenant's id (400 invalid_id when it cannot be one).
    #[param(value_type = TenantIdSchema)]
    tenant_id: String,
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

fn render_sign_up(done: &SignedUp) -> StoredResponse {
    let body = serde_json::to_value(SignUpResponse::from(done)).unwrap_or_default();
    StoredResponse::new(axum::http::StatusCode::CREATED, body)
}

/// Sign up a tenant with its subscription (and first invoice for a paid plan without trial)
///
/// Roles: super_admin, service. A plan with trial days starts a trial; otherwise the
/// subscription is active and a paid plan is invoiced at once for its first period.
/// An unknown or archived plan answers 422 unknown_plan; a taken tenant_id 409 already_exists.
#[utoipa::path(post, path = "/tenants", tag = "Tenants", params(IdempotencyKeyHeader),
    request_body = SignUpBody, security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 201, description = "Signed up", body = SignUpResponse),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
    // The body is parsed after the role check, so a caller without the role learns nothing
    // about the body rules. The fingerprint uses a fixed path so the prefixes share keys.
    principal.require_any(&[Role::SuperAdmin, Role::Service])?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    let (req, raw) = parse_json::<SignUpRequest>(&body)?;
    let signup = req.validate()?;
    let fp = fingerprint("POST", "/v1/tenants", &raw);
    let scope = &principal.scope;
    Ok(tenants::sign_up(&state, scope, key.as_ref(), &fp, signup, render_sign_up).await?)
}

/// Get a tenant with its subscription and usage
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's resource answers 404.
#[utoipa::path(get, path = "/tenants/{tenant_id}", tag = "Tenants", params(TenantPath),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The tenant", body = TenantDetail),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn get_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<TenantDetail>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    let view = tenants::get_tenant(&mut conn, &tenant, state.clock.now()).await?;
    Ok(Json(TenantDetail::from(&view)))
}

/// List tenants
///
/// Roles: super_admin.
#[utoipa::path(get, path = "/tenants", tag = "Tenants", params(PageParams),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "A page of tenants", body = TenantList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn list_tenants(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<TenantList>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let page = q.page()?;
    let mut conn = state.pool.acquire().await?;
    let p = tenants::list_tenants(&mut conn, &page).await?;
    Ok(Json(TenantList {
        tenants: p.items.iter().map(TenantBody::from).collect(),
        total: p.total,
        has_more: p.has_more,
    }))
}

/// Get the tenant's latest subscription
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's resource answers 404. After a cancellation it is the canceled one.
#[utoipa::path(get, path = "/tenants/{tenant_id}/subscription", tag = "Subscriptions",
    params(TenantPath), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The subscription and its plan", body = SubscriptionDetail),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn get_subscription(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<SubscriptionDetail>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    let view = tenants::get_subscription(&mut conn, &tenant, state.clock.today()).await?;
    Ok(Json(SubscriptionDetail::from(&view)))
}
