//! `/tenants/{tenant_id}/invoices`, `/invoices/{invoice_id}`: reading, generating and voiding.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::money::money_string;
use crate::billing::types::InvoiceStatus;
use crate::error::{AppError, AppResult};
use crate::http::dto::invoices::{
    InvoiceBody, InvoiceDetail, InvoiceList, InvoiceResponse, InvoiceTenant,
};
use crate::http::extract::{parse_uuid, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Conflict, Forbidden, IdempotencyKeyHeader, NotFound, TenantIdSchema, Unauthorized,
    Unprocessable,
};
use crate::http::pagination::PageQuery;
use crate::http::routes::tenants::path_tenant;
use crate::services::audit::Actor;
use crate::services::idempotency::{self, fingerprint, IdempotencyKey, Outcome, StoredResponse};
use crate::services::invoices::{self, InvoiceWithLines};
use crate::services::payments::tenant_scope;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices))
        .routes(routes!(generate_invoice))
        .routes(routes!(get_invoice))
        .routes(routes!(void_invoice))
}

/// A `starting_after` cursor: the id of the last item seen.
pub fn cursor(raw: Option<&str>) -> AppResult<Option<uuid::Uuid>> {
    raw.map(|s| {
        uuid::Uuid::parse_str(s)
            .map_err(|_| AppError::field("starting_after", "must be an id from the previous page"))
    })
    .transpose()
}

fn body(i: &InvoiceWithLines) -> InvoiceBody {
    InvoiceBody::new(&i.invoice, &i.lines)
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it with `ApiPath`
struct TenantPath {
    /// The tenant's id.
    #[param(value_type = TenantIdSchema)]
    tenant_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct InvoicePath {
    /// The invoice's id.
    #[param(format = Uuid)]
    invoice_id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only invoices in this status.
    #[param(value_type = Option<crate::http::dto::query_schemas::InvoiceStatusParam>, inline)]
    status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// `limit` and `starting_after` of the invoice list: the cursor is an invoice id.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by `PageQuery` as strings; this type only documents them
struct InvoicePageParams {
    /// Page size.
    #[param(value_type = Option<crate::http::dto::query_schemas::LimitParam>, inline)]
    limit: Option<i64>,
    /// The invoice_id of the last invoice of the previous page; empty means the first page.
    #[param(
        pattern = "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    starting_after: Option<String>,
}

/// List the tenant's invoices
///
/// Roles: tenant_admin, tenant_user, super_admin, service. A tenant role reaches only its own
/// tenant; another tenant's answers 404. Newest first; `starting_after` is an invoice id.
#[utoipa::path(get, path = "/tenants/{tenant_id}/invoices", tag = "Invoices",
    params(TenantPath, ListQuery, InvoicePageParams),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "One page of invoices", body = InvoiceList),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn list_invoices(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<InvoiceList>> {
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
    let page = q.page.page()?;
    let after = cursor(page.starting_after.as_deref())?;
    let p =
        invoices::list_invoices(&state.pool, tenant.as_str(), status, page.limit, after).await?;
    Ok(Json(InvoiceList {
        invoices: p.invoices.iter().map(body).collect(),
        total: p.total,
        has_more: p.has_more,
    }))
}

/// Get an invoice with its lines
///
/// Roles: tenant_admin, tenant_user, super_admin, service. Another tenant's invoice answers 404.
#[utoipa::path(get, path = "/invoices/{invoice_id}", tag = "Invoices", params(InvoicePath),
    security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The invoice", body = InvoiceDetail),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn get_invoice(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(invoice_id): ApiPath<String>,
) -> AppResult<Json<InvoiceDetail>> {
    let id = parse_uuid("invoice_id", &invoice_id)?;
    let scope = tenant_scope(&principal)?;
    let v = invoices::get_invoice(&state.pool, scope.as_deref(), id, state.clock.today()).await?;
    Ok(Json(InvoiceDetail {
        invoice: body(&v.invoice),
        tenant: InvoiceTenant {
            tenant_id: v.tenant.tenant_id,
            name: v.tenant.name,
            name_ar: v.tenant.name_ar,
        },
        amount_yer: money_string(v.amount_yer),
    }))
}

/// The answer of generate as the idempotency record stores and replays it.
fn generated_answer(g: &invoices::Generated) -> AppResult<StoredResponse> {
    let status = if g.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = InvoiceResponse {
        success: true,
        created: Some(g.created),
        invoice: body(&g.invoice),
    };
    let value =
        serde_json::to_value(answer).map_err(|e| AppError::internal(anyhow::Error::new(e)))?;
    Ok(StoredResponse::new(status, value))
}

/// Invoice the current period (201 created, 200 the existing one)
///
/// Roles: tenant_admin, super_admin. Any body is ignored: the request is fully described by its
/// path. A subscription in its trial answers 409 `subscription_in_trial`; a tenant without a live
/// subscription 404 `no_active_subscription`.
#[utoipa::path(post, path = "/tenants/{tenant_id}/invoices/generate", tag = "Invoices",
    params(TenantPath, IdempotencyKeyHeader), security(("bearerAuth" = [])),
    responses((status = 201, description = "Issued by this call", body = InvoiceResponse),
        (status = 200, description = "The period's existing invoice", body = InvoiceResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
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
    let tenant = tenant.to_string();
    idempotency::run(
        &state.pool,
        &principal.scope,
        key.as_ref(),
        &fp,
        move |conn| {
            Box::pin(async move {
                let g = invoices::generate(conn, &tenant, today, due_days).await?;
                generated_answer(&g)
            })
        },
    )
    .await
}

/// Void an invoice
///
/// Roles: super_admin. Only an unpaid pending, overdue or draft invoice can be voided; any
/// other answers 409 `invoice_not_voidable`.
#[utoipa::path(post, path = "/invoices/{invoice_id}/void", tag = "Invoices", params(InvoicePath),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "Voided (status canceled)", body = InvoiceResponse),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 422, response = Unprocessable)))]
async fn void_invoice(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(invoice_id): ApiPath<String>,
) -> AppResult<Json<InvoiceResponse>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let id = parse_uuid("invoice_id", &invoice_id)?;
    let inv = invoices::void(&state.pool, id, &Actor::from(&principal)).await?;
    Ok(Json(InvoiceResponse {
        success: true,
        created: None,
        invoice: body(&inv),
    }))
}
