//! Operator endpoints (super_admin).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{NaiveDate, Timelike};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};
use crate::http::extract::ApiQuery;
use crate::jobs::billing_run as run_billing;
use crate::services::audit::Actor;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/billing-run", post(billing_run))
}

#[derive(Deserialize)]
struct RunQuery {
    date: Option<String>,
}

/// Runs the daily jobs as of `date` (default: today) and returns what they did. Safe to call
/// while the scheduler or another replica runs: rows are claimed with SKIP LOCKED.
async fn billing_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let now = state.clock.now();
    let at = match q.date.as_deref() {
        None | Some("") => now,
        Some(d) => {
            let date = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| AppError::field("date", "must be a date as YYYY-MM-DD"))?;
            let time =
                chrono::NaiveTime::from_hms_opt(now.hour(), now.minute(), 0).unwrap_or_default();
            date.and_time(time).and_utc()
        }
    };
    let actor = Actor::from(&principal);
    let report = run_billing(&state.pool, &state.config, &actor, at).await?;
    Ok(Json(json!({ "success": true, "report": report })))
}
