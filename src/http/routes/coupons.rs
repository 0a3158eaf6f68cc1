//! `/coupons`: super admins define, list, read and archive coupons (SPEC section 10).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::dto::coupons::{CouponBody, CouponEnvelope, CouponList, CreateCouponRequest};
use crate::http::dto::discounts::{
    DiscountBody, RedeemCouponRequest, RedeemResponse, RemoveDiscountResponse,
};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, TenantIdSchema, Unauthorized,
    Unprocessable,
};
use crate::http::pagination::PageQuery;
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::coupons;
use crate::services::coupons::redeem;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_coupons, create_coupon))
        .routes(routes!(get_coupon, archive_coupon))
        .routes(routes!(redeem_coupon, remove_coupon))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct TenantPath {
    /// The tenant's id.
    #[param(value_type = TenantIdSchema)]
    tenant_id: String,
}

/// Redeem a coupon on the subscription
///
/// Roles: tenant_admin, super_admin, service. A tenant role reaches only its own tenant. It
/// covers invoices from the next billing period (at sign-up, `coupon` in `POST /v1/tenants`
/// covers the sign-up period). One coupon per subscription: the same code again answers 200
/// with nothing changed; another → 409 `coupon_already_applied`. Refused with 422:
/// `coupon_not_found`, `coupon_expired`, `coupon_exhausted`, `coupon_not_applicable`,
/// `coupon_currency_mismatch`.
#[utoipa::path(post, path = "/tenants/{tenant_id}/subscription/coupon", tag = "Subscriptions",
    params(TenantPath), request_body = RedeemCouponRequest,
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 201, description = "Redeemed", body = RedeemResponse),
        (status = 200, description = "The subscription already held this coupon", body = RedeemResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn redeem_coupon(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiJson(req): ApiJson<RedeemCouponRequest>,
) -> AppResult<(StatusCode, Json<RedeemResponse>)> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let done = redeem::redeem(
        &state.pool,
        tenant.as_str(),
        &req.code,
        &Actor::from(&principal),
        state.clock.today(),
    )
    .await?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(RedeemResponse {
            success: true,
            tenant_id: tenant.as_str().to_string(),
            subscription_id: done.subscription_id,
            discount: DiscountBody::from(&done.discount),
        }),
    ))
}

/// Remove the subscription's coupon
///
/// Roles: tenant_admin, super_admin, service. Later invoices carry no discount; the
/// redemption still counts toward `max_redemptions`. No coupon → 404.
#[utoipa::path(delete, path = "/tenants/{tenant_id}/subscription/coupon", tag = "Subscriptions",
    params(TenantPath), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Removed", body = RemoveDiscountResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn remove_coupon(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<RemoveDiscountResponse>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_tenant_admin(&tenant)?;
    let (subscription_id, removed) =
        redeem::remove(&state.pool, tenant.as_str(), &Actor::from(&principal)).await?;
    Ok(Json(RemoveDiscountResponse {
        success: true,
        tenant_id: tenant.as_str().to_string(),
        subscription_id,
        removed: DiscountBody::from(&removed),
    }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct CouponPath {
    /// The coupon's code.
    #[param(pattern = "^[A-Z0-9_-]{3,40}$")]
    code: String,
}

/// List coupons
///
/// Roles: super_admin. In code order, archived ones included (`valid: false`).
#[utoipa::path(get, path = "/coupons", tag = "Coupons", params(PageParams),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "A page of coupons", body = CouponList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn list_coupons(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<CouponList>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let page = q.page()?;
    let p = coupons::list_coupons(&state.pool, &page, state.clock.today()).await?;
    Ok(Json(CouponList {
        coupons: p.items.iter().map(CouponBody::from).collect(),
        total: p.total,
        has_more: p.has_more,
    }))
}

/// Create a coupon
///
/// Roles: super_admin. Exactly one of `percent_off` and `amount_off` (with its `currency`);
/// `duration_periods` with `repeating` only; a `redeem_by` in the past, an unknown plan or a
/// broken rule → 422; a code in use (archived coupons keep theirs) → 409 `already_exists`.
#[utoipa::path(post, path = "/coupons", tag = "Coupons", request_body = CreateCouponRequest,
    security(("bearerAuth" = [])),
    responses((status = 201, description = "Created", body = CouponEnvelope),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn create_coupon(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreateCouponRequest>,
) -> AppResult<(StatusCode, Json<CouponEnvelope>)> {
    principal.require_any(&[Role::SuperAdmin])?;
    let today = state.clock.today();
    let input = req.validate(today)?;
    let c = coupons::create_coupon(&state.pool, input, &Actor::from(&principal), today).await?;
    Ok((StatusCode::CREATED, Json(CouponEnvelope::from(&c))))
}

/// Get a coupon with `times_redeemed` and `valid`
///
/// Roles: super_admin.
#[utoipa::path(get, path = "/coupons/{code}", tag = "Coupons", params(CouponPath),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The coupon", body = CouponEnvelope),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn get_coupon(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(code): ApiPath<String>,
) -> AppResult<Json<CouponEnvelope>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let c = coupons::get_coupon(&state.pool, &code, state.clock.today()).await?;
    Ok(Json(CouponEnvelope::from(&c)))
}

/// Archive a coupon
///
/// Roles: super_admin. No new redemptions; subscriptions that hold it keep it. Archiving an
/// archived coupon answers it unchanged.
#[utoipa::path(delete, path = "/coupons/{code}", tag = "Coupons", params(CouponPath),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The archived coupon", body = CouponEnvelope),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn archive_coupon(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(code): ApiPath<String>,
) -> AppResult<Json<CouponEnvelope>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let c = coupons::archive_coupon(
        &state.pool,
        &code,
        &Actor::from(&principal),
        state.clock.today(),
    )
    .await?;
    Ok(Json(CouponEnvelope::from(&c)))
}
