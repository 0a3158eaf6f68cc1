//! `/plans`: public reads, super-admin writes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::pagination::{list_body, parse_bool};
use crate::repository::plans::PlanRepository;
use crate::services::audit::{self, Actor};
use crate::services::plans::{self, plan_json, plan_not_found, pricing_yer};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", get(list_plans).post(create_plan))
        .route(
            "/plans/{plan_id}",
            get(get_plan).patch(update_plan).delete(archive_plan),
        )
}

#[derive(Deserialize)]
struct ListQuery {
    active_only: Option<String>,
    limit: Option<String>,
    starting_after: Option<String>,
}

async fn list_plans(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Value>> {
    let active_only = parse_bool("active_only", q.active_only.as_deref(), true)?;
    let page = crate::http::pagination::PageQuery {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .page()?;
    let mut conn = state.pool.acquire().await?;
    let (plans, total, has_more) = PlanRepository::list(
        &mut conn,
        active_only,
        page.limit,
        page.starting_after.as_deref(),
    )
    .await?;
    let rate = plans::yer_rate(&mut conn, state.clock.today()).await?;
    let items: Vec<Value> = plans.iter().map(|p| plan_json(p, rate)).collect();
    Ok(Json(list_body("plans", items, total, has_more)))
}

async fn get_plan(
    State(state): State<AppState>,
    ApiPath(plan_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let mut conn = state.pool.acquire().await?;
    let plan = PlanRepository::get(&mut conn, &plan_id)
        .await?
        .ok_or_else(plan_not_found)?;
    let rate = plans::yer_rate(&mut conn, state.clock.today()).await?;
    Ok(Json(
        json!({ "plan": plan_json(&plan, rate), "pricing_yer": pricing_yer(&plan, rate) }),
    ))
}

async fn create_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(req): ApiJson<plans::CreatePlanRequest>,
) -> AppResult<(StatusCode, Json<Value>)> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let (status, body) =
        plans::create_plan(&mut tx, req, state.clock.today(), &Actor::from(&principal)).await?;
    tx.commit().await?;
    Ok((status, Json(body)))
}

async fn update_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(plan_id): ApiPath<String>,
    ApiJson(req): ApiJson<plans::UpdatePlanRequest>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let body = plans::update_plan(
        &mut tx,
        &plan_id,
        req,
        state.clock.today(),
        &Actor::from(&principal),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(body))
}

/// Archiving hides a plan from sign-up and the default list; existing subscriptions keep it.
async fn archive_plan(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(plan_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let mut tx = state.pool.begin().await?;
    let rate = plans::yer_rate(&mut tx, state.clock.today()).await?;
    let before = plans::locked_snapshot(&mut tx, &plan_id, rate).await?;
    let changes = crate::repository::plans::PlanChanges {
        is_active: Some(false),
        ..Default::default()
    };
    if !PlanRepository::update(&mut tx, &plan_id, &changes).await? {
        return Err(plan_not_found());
    }
    let plan = PlanRepository::get(&mut tx, &plan_id)
        .await?
        .ok_or_else(plan_not_found)?;
    let body = plan_json(&plan, rate);
    let (old, new) = audit::changed(&before, &body);
    plans::audit_plan(
        &mut tx,
        &Actor::from(&principal),
        "plan.archive",
        &plan_id,
        Some(old),
        Some(new),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({ "success": true, "archived": true, "plan": body }),
    ))
}
