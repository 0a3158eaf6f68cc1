//! Operator endpoints (super_admin).

use axum::extract::State;
use axum::Json;
use chrono::{NaiveDate, Timelike};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::error::{AppError, AppResult};
use crate::http::dto::admin::BillingRunReport;
use crate::http::dto::invoice_schemas::date_filter;
use crate::http::extract::ApiQuery;
use crate::http::openapi::components::{Forbidden, Unauthorized, Unprocessable};
use crate::jobs::billing_run as run_billing;
use crate::services::audit::Actor;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(billing_run))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RunQuery {
    /// The day to run as of (YYYY-MM-DD); default today.
    #[param(schema_with = date_filter)]
    date: Option<String>,
}

/// Run the daily billing jobs as of a date
///
/// Roles: super_admin. Renewals, trial ends, dunning and the idempotency purge, exactly as the
/// scheduler runs them. Safe while the scheduler or another replica runs: rows are claimed
/// with SKIP LOCKED.
#[utoipa::path(post, path = "/admin/billing-run", tag = "Admin", params(RunQuery),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "What the jobs did", body = BillingRunReport),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn billing_run(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<RunQuery>,
) -> AppResult<Json<BillingRunReport>> {
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
    Ok(Json(report.into()))
}
