//! `/exchange-rates`: super admins read and set the currency rates invoices are issued at.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::extract::parse_json;
use crate::services::audit::Actor;
use crate::services::rates::{self, SetRateRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/exchange-rates", get(list_rates).post(set_rate))
}

async fn list_rates(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    Ok(Json(
        rates::list_rates(&state.pool, state.clock.today()).await?,
    ))
}

async fn set_rate(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    // The role is checked before the body is read, so a tenant user learns nothing from a 422.
    principal.require_any(&[Role::SuperAdmin])?;
    let (req, _raw): (SetRateRequest, Value) = parse_json(&body)?;
    let change = req.validate(state.clock.today())?;
    let (status, body) = rates::set_rate(&state.pool, change, &Actor::from(&principal)).await?;
    Ok((status, Json(body)))
}
