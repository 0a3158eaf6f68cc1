//! Usage recording, the quota report and the gateway's enforce call.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::billing::types::{MetricName, TenantId};
use crate::error::{AppError, AppResult};
use crate::http::extract::{parse_json_borrowed, ApiJsonWithRaw, ApiPath, ApiQuery, QueryPairs};
use crate::http::routes::tenants::path_tenant;
use crate::services::idempotency::{fingerprint, IdempotencyKey, Outcome};
use crate::services::usage::{
    self, BatchRequest, RangeQuery, RecordUsageRequest, MAX_COUNTER_QUANTITY,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/tenants/{tenant_id}/usage",
            post(record_usage).get(usage_report),
        )
        .route(
            "/usage/batch",
            post(ingest_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
        )
        .route("/tenants/{tenant_id}/quota", get(quota))
        .route("/enforce", get(enforce))
}

async fn record_usage(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: ApiJsonWithRaw<RecordUsageRequest>,
) -> AppResult<Outcome> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    // The fingerprint only matters under an Idempotency-Key.
    let fp = match key {
        Some(_) => fingerprint("POST", uri.path(), &body.raw),
        None => String::new(),
    };
    let input = body.value.validate()?;
    usage::record_usage(&state, &principal, tenant, input, key, &fp).await
}

/// Batch bodies may be up to 16 MiB (10 000 events with metadata); every other route keeps
/// the global 1 MiB limit.
const BATCH_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The role is checked before the body is parsed, so a caller without it learns nothing
/// about the body rules.
async fn ingest_batch(
    State(state): State<AppState>,
    principal: Principal,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Outcome> {
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
    usage::ingest_batch(&state, &principal, request, key, &fp).await
}

#[derive(Deserialize)]
struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn usage_report(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let (from, to) = RangeQuery {
        from: q.from,
        to: q.to,
    }
    .parse()?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        usage::usage_report(&mut conn, &tenant, from, to, state.clock.now()).await?,
    ))
}

async fn quota(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        usage::quota_report(&mut conn, &tenant, state.clock.now()).await?,
    ))
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
/// reach another tenant); platform callers name the tenant in X-Tenant-Id.
fn enforce_tenant(principal: &Principal, header: Option<&str>) -> AppResult<TenantId> {
    match (&principal.tenant_id, principal.is_platform(), header) {
        (Some(own), false, _) => Ok(own.clone()),
        (_, true, Some(h)) => {
            TenantId::parse(h.trim()).map_err(|e| AppError::field("X-Tenant-Id", e))
        }
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
    Ok(Json(allowed).into_response())
}
