//! `/exchange-rates`: super admins read and set the currency rates invoices are issued at.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::dto::rates::{ExchangeRateList, SetRateRequest, SetRateResponse};
use crate::http::extract::parse_json;
use crate::http::openapi::components::{Forbidden, Unauthorized, Unprocessable};
use crate::services::audit::Actor;
use crate::services::rates;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_rates, set_rate))
}

/// Stored rates and the rate in force today per currency
///
/// Roles: super_admin.
#[utoipa::path(get, path = "/exchange-rates", tag = "Exchange rates",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Every stored rate and the ones in force", body = ExchangeRateList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden)))]
async fn list_rates(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<ExchangeRateList>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let list = rates::list_rates(&state.pool, state.clock.today()).await?;
    Ok(Json(list.into()))
}

/// Set a rate from a date (201 new, 200 replaced)
///
/// Roles: super_admin. Issued invoices keep the rate stored on them; only invoices issued
/// later pick up a change.
#[utoipa::path(post, path = "/exchange-rates", tag = "Exchange rates",
    request_body = SetRateRequest, security(("bearerAuth" = [])),
    responses((status = 201, description = "A new rate for that date", body = SetRateResponse),
        (status = 200, description = "Replaced the rate of that date", body = SetRateResponse),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn set_rate(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> AppResult<(StatusCode, Json<SetRateResponse>)> {
    // The role is checked before the body is read, so a tenant user learns nothing from a 422.
    principal.require_any(&[Role::SuperAdmin])?;
    let (req, _raw): (SetRateRequest, serde_json::Value) = parse_json(&body)?;
    let change = req.validate(state.clock.today())?;
    let stored = rates::set_rate(&state.pool, change, &Actor::from(&principal)).await?;
    let status = if stored.inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SetRateResponse::from(&stored))))
}
