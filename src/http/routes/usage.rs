//! Usage recording, the quota report and the gateway's enforce call.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::types::{MetricName, TenantId};
use crate::error::{AppError, AppResult};
use crate::http::dto::usage::{
    EnforceAllowed, QuotaReportBody, RecordUsageBody, UsageBatchBody, UsageBatchResponse,
    UsageRecorded, UsageReportBody,
};
use crate::http::dto::usage_schemas::CatalogueMetricSchema;
use crate::http::extract::{parse_json_borrowed, ApiJsonWithRaw, ApiPath, ApiQuery, QueryPairs};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, IdempotencyKeyHeader, NotFound, PayloadTooLarge,
    PaymentRequired, TenantHeader as TenantHeaderParam, TooManyRequestsOrQuota, Unauthorized,
    Unprocessable,
};
use crate::http::routes::tenants::path_tenant;
use crate::services::idempotency::{fingerprint, IdempotencyKey};
use crate::services::usage::{self, BatchRequest, RangeQuery, UsageAnswer, MAX_COUNTER_QUANTITY};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record_usage, usage_report))
        .routes(routes!(ingest_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
        .routes(routes!(quota))
        .routes(routes!(enforce))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handlers read it with `ApiPath`
struct TenantPath {
    /// The tenant's id.
    #[param(value_type = crate::http::openapi::components::TenantIdSchema)]
    tenant_id: String,
}

/// Record usage (checked against the quota and counted in one step)
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's answers 404. 402 without a usable subscription; 429
/// `quota_exceeded` on a plan that blocks overage.
#[utoipa::path(post, path = "/tenants/{tenant_id}/usage", tag = "Usage",
    params(TenantPath, IdempotencyKeyHeader), request_body = RecordUsageBody,
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 201, description = "Recorded", body = UsageRecorded),
        (status = 200, description = "A replay, or a duplicate event_id", body = UsageRecorded),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 402, response = PaymentRequired), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 409, response = Conflict),
        (status = 422, response = Unprocessable), (status = 429, response = TooManyRequestsOrQuota)))]
async fn record_usage(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: ApiJsonWithRaw<RecordUsageBody>,
) -> AppResult<Response> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    // The fingerprint only matters under an Idempotency-Key.
    let fp = match key {
        Some(_) => fingerprint("POST", uri.path(), &body.raw),
        None => String::new(),
    };
    let input = usage::RecordUsageRequest::from(body.value).validate()?;
    let render = UsageRecorded::stored;
    Ok(
        match usage::record_usage(&state, &principal, tenant, input, key, &fp, render).await? {
            UsageAnswer::Recorded(r) => {
                (UsageRecorded::status(&r), Json(UsageRecorded::from(&r))).into_response()
            }
            UsageAnswer::Stored(outcome) => outcome.into_response(),
        },
    )
}

/// Batch bodies may be up to 16 MiB (10 000 events with metadata); every other route keeps
/// the global 1 MiB limit.
const BATCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Ingest up to 10 000 usage events (body up to 16 MiB)
///
/// Roles: service, super_admin. Quotas are not enforced (the usage has happened); each event
/// is checked on its own, and one that fails is reported in `rejected` by index while the
/// others are written. The role is checked before the body is parsed.
#[utoipa::path(post, path = "/usage/batch", tag = "Usage",
    params(IdempotencyKeyHeader), request_body = UsageBatchBody,
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The batch's outcome", body = UsageBatchResponse),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 409, response = Conflict), (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable)))]
async fn ingest_batch(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    principal.require_any(&[Role::Service, Role::SuperAdmin])?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    let _slot = state
        .batch_slots
        .acquire()
        .await
        .map_err(AppError::internal)?;
    let request: BatchRequest = parse_json_borrowed(&body)?;
    request.validate()?;
    // The fingerprint only matters under an Idempotency-Key.
    let fp = match key {
        Some(_) => {
            let raw: Value = serde_json::from_slice(&body).map_err(AppError::internal)?;
            fingerprint("POST", uri.path(), &raw)
        }
        None => String::new(),
    };
    let request = request.parse();
    let render = UsageBatchResponse::stored;
    let outcome = usage::ingest_batch(&state, &principal, request, key, &fp, render).await?;
    Ok(outcome.into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReportQuery {
    /// First day (inclusive); default: the current period's start.
    #[param(value_type = Option<crate::http::dto::query_schemas::DateParam>, inline)]
    from: Option<String>,
    /// End of the range, exclusive: usage on this day is not counted (default: the current
    /// period's end_date). Not before `from` (without `from`, not before the current period's
    /// start): 422 otherwise.
    #[param(value_type = Option<crate::http::dto::query_schemas::DateParam>, inline)]
    to: Option<String>,
}

/// Usage per metric over a date range (default: the current period)
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's answers 404.
#[utoipa::path(get, path = "/tenants/{tenant_id}/usage", tag = "Usage",
    params(TenantPath, ReportQuery), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The usage report", body = UsageReportBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn usage_report(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> AppResult<Response> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let (from, to) = RangeQuery {
        from: q.from,
        to: q.to,
    }
    .parse()?;
    let mut conn = state.pool.acquire().await?;
    let report = usage::usage_report(&mut conn, &tenant, from, to, state.clock.now()).await?;
    Ok(Json(UsageReportBody::from(&report)).into_response())
}

/// Quota report per metric
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's answers 404. Allowed in every subscription state.
#[utoipa::path(get, path = "/tenants/{tenant_id}/quota", tag = "Usage",
    params(TenantPath), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The quota report", body = QuotaReportBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn quota(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Response> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    let report = usage::quota_report(&mut conn, &tenant, state.clock.now()).await?;
    Ok(Json(QuotaReportBody::from(&report)).into_response())
}

/// The `X-Tenant-Id` header as sent (read without copying the whole header map).
struct TenantHeader(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for TenantHeader {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        Ok(TenantHeader(
            parts
                .headers
                .get("x-tenant-id")
                .map(|v| v.to_str().unwrap_or("").to_string()),
        ))
    }
}

/// A tenant principal asks for itself (any X-Tenant-Id it sends is ignored, so a token cannot
/// reach another tenant); platform callers name the tenant in X-Tenant-Id. A header that is
/// not a tenant id is refused from every caller (422), as the document states its shape.
fn enforce_tenant(principal: &Principal, header: Option<&str>) -> AppResult<TenantId> {
    let named = header
        .map(|h| TenantId::parse(h.trim()).map_err(|e| AppError::field("X-Tenant-Id", e)))
        .transpose()?;
    match (&principal.tenant_id, principal.is_platform(), named) {
        (Some(own), false, _) => Ok(own.clone()),
        (_, true, Some(named)) => Ok(named),
        (Some(own), true, None) => Ok(own.clone()),
        _ => Err(missing_tenant_header()),
    }
}

/// 400, as the Python service answered a missing `x-tenant-id` (its gateway callers read that
/// status); 422 would only be our taste. The envelope still names the header in `fields`.
fn missing_tenant_header() -> AppError {
    let mut e = AppError::field(
        "X-Tenant-Id",
        "is required for service and platform callers",
    );
    e.status = axum::http::StatusCode::BAD_REQUEST;
    e.code = "missing_tenant_id";
    e
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; the handler reads it with `QueryPairs`
struct EnforceQuery {
    /// The metric asked about.
    #[param(value_type = CatalogueMetricSchema, inline)]
    metric: String,
    /// Units asked for.
    #[param(value_type = Option<crate::http::dto::query_schemas::QuantityParam>, inline)]
    quantity: Option<i64>,
}

/// May the tenant use `quantity` more of `metric`? (the gateway's check)
///
/// Roles: tenant_admin, tenant_user, super_admin, service. Records nothing. A tenant principal
/// asks for itself; service and platform callers name the tenant in `X-Tenant-Id` (400
/// `missing_tenant_id` without it). 429 `quota_exceeded` when the units do not fit a plan that
/// blocks overage.
#[utoipa::path(get, path = "/enforce", tag = "Usage", params(EnforceQuery, TenantHeaderParam),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "Allowed", body = EnforceAllowed),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 402, response = PaymentRequired), (status = 403, response = Forbidden),
        (status = 404, response = NotFound), (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequestsOrQuota)))]
async fn enforce(
    State(state): State<AppState>,
    principal: Principal,
    TenantHeader(header): TenantHeader,
    q: QueryPairs,
) -> AppResult<Response> {
    let metric = match q.get("metric") {
        None | Some("") => return Err(AppError::field("metric", "is required")),
        Some(m) => MetricName::parse(m).map_err(|e| AppError::field("metric", e))?,
    };
    let quantity = match q.get("quantity") {
        None | Some("") => 1,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_COUNTER_QUANTITY).contains(&n) => n,
            _ => {
                return Err(AppError::field(
                    "quantity",
                    "must be a whole number from 1 to 100000",
                ))
            }
        },
    };
    let tenant = enforce_tenant(&principal, header.as_deref())?;
    let allowed = usage::enforce(&state, &tenant, &metric, quantity, state.clock.now()).await?;
    Ok(Json(EnforceAllowed::from(allowed)).into_response())
}
