//! `/plans`: public reads, super-admin writes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::dto::plans::{
    CreatePlanRequest, PlanBody, PlanChanged, PlanList, PlanWithYer, UpdatePlanRequest,
};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, NotFound, PageParams, Unauthorized, Unprocessable,
};
use crate::http::pagination::{parse_bool, PageQuery};
use crate::services::audit::Actor;
use crate::services::plans;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan, update_plan, archive_plan))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only plans open for sign-up (default true).
    #[param(value_type = Option<crate::http::dto::query_schemas::BoolParam>, inline)]
    active_only: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// List plans
///
/// Public.
#[utoipa::path(get, path = "/plans", tag = "Plans", params(ListQuery, PageParams),
    responses((status = 200, description = "The catalogue", body = PlanList),
        (status = 422, response = Unprocessable)))]
async fn list_plans(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<PlanList>> {
    let active_only = parse_bool("active_only", q.active_only.as_deref(), true)?;
    let page = q.page.page()?;
    let mut conn = state.pool.acquire().await?;
    let p = plans::list_plans(&mut conn, active_only, &page, state.clock.today()).await?;
    Ok(Json(PlanList {
        plans: p
            .plans
            .iter()
            .map(|x| PlanBody::new(x, p.yer_rate))
            .collect(),
        total: p.total,
        has_more: p.has_more,
    }))
}

/// Get a plan with its YER pricing
///
/// Public.
#[utoipa::path(get, path = "/plans/{plan_id}", tag = "Plans", params(PlanPath),
    responses((status = 200, description = "The plan", body = PlanWithYer),
        (status = 400, response = BadRequest), (status = 404, response = NotFound)))]
async fn get_plan(
    State(state): State<AppState>,
    ApiPath(plan_id): ApiPath<String>,
) -> AppResult<Json<PlanWithYer>> {
    let mut conn = state.pool.acquire().await?;
    let p = plans::get_plan(&mut conn, &plan_id, state.clock.today()).await?;
    Ok(Json(p.into()))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it with `ApiPath`
struct PlanPath {
    /// The plan's id.
    plan_id: String,
}

/// Create a plan
///
/// Roles: super_admin.
#[utoipa::path(post, path = "/plans", tag = "Plans", request_body = CreatePlanRequest,
    security(("bearerAuth" = [])),
    responses((status = 201, description = "Created", body = PlanChanged),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn create_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<CreatePlanRequest>,
) -> AppResult<(StatusCode, Json<PlanChanged>)> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let actor = Actor::from(&principal);
    let p = plans::create_plan(&mut tx, req.into(), state.clock.today(), &actor).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(PlanChanged::new(&p, None))))
}

/// Update a plan
///
/// Roles: super_admin.
#[utoipa::path(patch, path = "/plans/{plan_id}", tag = "Plans", params(PlanPath),
    request_body = UpdatePlanRequest, security(("bearerAuth" = [])),
    responses((status = 200, description = "Updated", body = PlanChanged),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn update_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(plan_id): ApiPath<String>,
    ApiJson(req): ApiJson<UpdatePlanRequest>,
) -> AppResult<Json<PlanChanged>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let actor = Actor::from(&principal);
    let p = plans::update_plan(&mut tx, &plan_id, req.into(), state.clock.today(), &actor).await?;
    tx.commit().await?;
    Ok(Json(PlanChanged::new(&p, None)))
}

/// Archive a plan (existing subscriptions keep it)
///
/// Roles: super_admin. Archiving hides the plan from sign-up and the default list.
#[utoipa::path(delete, path = "/plans/{plan_id}", tag = "Plans", params(PlanPath),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Archived", body = PlanChanged),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound)))]
async fn archive_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(plan_id): ApiPath<String>,
) -> AppResult<Json<PlanChanged>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let actor = Actor::from(&principal);
    let p = plans::archive_plan(&mut tx, &plan_id, state.clock.today(), &actor).await?;
    tx.commit().await?;
    Ok(Json(PlanChanged::new(&p, Some(true))))
}
