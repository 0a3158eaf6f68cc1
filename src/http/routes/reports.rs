//! `/reports/*`: platform-wide revenue and subscription figures for super admins.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::extract::ApiQuery;
use crate::services::reports;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/revenue", get(revenue))
        .route("/reports/subscriptions", get(subscriptions))
}

#[derive(Deserialize)]
struct RangeQuery {
    start_date: Option<String>,
    end_date: Option<String>,
}

async fn revenue(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let (start, end) = reports::report_range(
        q.start_date.as_deref(),
        q.end_date.as_deref(),
        state.clock.today(),
    )?;
    Ok(Json(reports::revenue(&state.pool, start, end).await?))
}

async fn subscriptions(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    Ok(Json(
        reports::subscriptions(&state.pool, state.clock.now()).await?,
    ))
}
