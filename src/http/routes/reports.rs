//! `/reports/*`: platform-wide revenue and subscription figures for super admins.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::http::dto::invoice_schemas::date_filter;
use crate::http::dto::reports::{RevenueReport, SubscriptionReport};
use crate::http::extract::ApiQuery;
use crate::http::openapi::components::{Forbidden, Unauthorized, Unprocessable};
use crate::services::reports;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revenue))
        .routes(routes!(subscriptions))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    /// First day (inclusive); default the first day of the current month.
    #[param(schema_with = date_filter)]
    start_date: Option<String>,
    /// Last day (inclusive); default the last day of the current month. Must not be before
    /// start_date (given or defaulted).
    #[param(schema_with = date_filter)]
    end_date: Option<String>,
}

/// Revenue figures by currency, plan, method and month
///
/// Roles: super_admin.
#[utoipa::path(get, path = "/reports/revenue", tag = "Reports", params(RangeQuery),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The revenue report", body = RevenueReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn revenue(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> AppResult<Json<RevenueReport>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let (start, end) = reports::report_range(
        q.start_date.as_deref(),
        q.end_date.as_deref(),
        state.clock.today(),
    )?;
    let r = reports::revenue(&state.pool, start, end).await?;
    Ok(Json((&r).into()))
}

/// Subscription counts, MRR/ARR, churn and trial conversion
///
/// Roles: super_admin.
#[utoipa::path(get, path = "/reports/subscriptions", tag = "Reports",
    security(("bearerAuth" = [])),
    responses((status = 200, description = "The subscription report", body = SubscriptionReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn subscriptions(
    State(state): State<AppState>,
    principal: Principal,
) -> AppResult<Json<SubscriptionReport>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let b = reports::subscriptions(&state.pool, state.clock.now()).await?;
    Ok(Json((&b).into()))
}
