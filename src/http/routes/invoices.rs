//! `/tenants/{tenant_id}/invoices`, `/invoices/{invoice_id}`: reading, generating and voiding.

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::billing::types::InvoiceStatus;
use crate::error::{AppError, AppResult};
use crate::http::extract::{parse_uuid, ApiPath, ApiQuery};
use crate::http::pagination::{list_body, PageQuery};
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::idempotency::{fingerprint, IdempotencyKey, Outcome};
use crate::services::invoices;
use crate::services::payments::tenant_scope;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tenants/{tenant_id}/invoices", get(list_invoices))
        .route(
            "/tenants/{tenant_id}/invoices/generate",
            post(generate_invoice),
        )
        .route("/invoices/{invoice_id}", get(get_invoice))
        .route("/invoices/{invoice_id}/void", post(void_invoice))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    starting_after: Option<String>,
}

/// A `starting_after` cursor: the id of the last item seen.
pub fn cursor(raw: Option<&str>) -> AppResult<Option<uuid::Uuid>> {
    raw.map(|s| {
        uuid::Uuid::parse_str(s)
            .map_err(|_| AppError::field("starting_after", "must be an id from the previous page"))
    })
    .transpose()
}

async fn list_invoices(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<Value>> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(InvoiceStatus::parse(s).ok_or_else(|| {
            AppError::field(
                "status",
                "must be one of draft, pending, paid, overdue, canceled, refunded",
            )
        })?),
    };
    let page = PageQuery {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .page()?;
    let after = cursor(page.starting_after.as_deref())?;
    let (items, total, has_more) =
        invoices::list_invoices(&state.pool, tenant.as_str(), status, page.limit, after).await?;
    Ok(Json(list_body("invoices", items, total, has_more)))
}

async fn get_invoice(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(invoice_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    let id = parse_uuid("invoice_id", &invoice_id)?;
    let scope = tenant_scope(&principal)?;
    Ok(Json(
        invoices::get_invoice(&state.pool, scope.as_deref(), id, state.clock.today()).await?,
    ))
}

/// Any body is ignored: the request is fully described by its path.
async fn generate_invoice(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> AppResult<Outcome> {
    let tenant = path_tenant(&principal, &tenant_id)?;
    principal.require_any(&[Role::SuperAdmin, Role::TenantAdmin])?;
    let key = IdempotencyKey::from_request(&headers, None)?;
    let fp = fingerprint("POST", uri.path(), &Value::Null);
    let today = state.clock.today();
    let due_days = state.config.invoice_due_days;
    invoices::generate_idempotent(
        &state.pool,
        &principal.scope,
        key.as_ref(),
        &fp,
        tenant.to_string(),
        today,
        due_days,
    )
    .await
}

async fn void_invoice(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(invoice_id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("invoice_id", &invoice_id)?;
    Ok(Json(
        invoices::void(&state.pool, id, &Actor::from(&principal)).await?,
    ))
}
