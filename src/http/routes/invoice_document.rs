//! `GET /invoices/{invoice_id}/document`: the printable invoice as HTML (`?lang=ar|en`,
//! `?numerals=arabic|latin`). Readable by whoever may read the invoice itself.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::schema::Schema;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::dto::invoice_schemas::one_of_labels;
use crate::http::extract::{parse_uuid, ApiPath, ApiQuery};
use crate::http::openapi::components::{
    BadRequest, Forbidden, NotFound, Unauthorized, Unprocessable,
};
use crate::services::invoice_document::{self, DocumentOptions};
use crate::services::payments::tenant_scope;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_document))
}

fn lang_schema() -> Schema {
    one_of_labels(
        &["ar", "en"],
        "The language of the page (ar: right to left).",
    )
}

fn numerals_schema() -> Schema {
    one_of_labels(
        &["arabic", "latin"],
        "The digits figures are written with (arabic: Arabic-Indic digits).",
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DocumentQuery {
    /// Language of the page (default ar); case-insensitive.
    #[param(schema_with = lang_schema)]
    lang: Option<String>,
    /// Digits used for figures (default latin); case-insensitive.
    #[param(schema_with = numerals_schema)]
    numerals: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it with `ApiPath`
struct InvoicePath {
    /// The invoice's id.
    #[param(format = Uuid)]
    invoice_id: String,
}

/// The printable invoice as a self-contained HTML page
///
/// Roles: tenant_admin, tenant_user, super_admin, service. Another tenant's invoice answers 404.
/// The page fetches nothing (inline styles, no scripts); print it to get a PDF.
#[utoipa::path(get, path = "/invoices/{invoice_id}/document", tag = "Invoices",
    params(InvoicePath, DocumentQuery), security(("bearerAuth" = []), ("apiKeyAuth" = [])),
    responses((status = 200, description = "The invoice page", body = String,
            content_type = "text/html"),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 422, response = Unprocessable)))]
async fn get_document(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(invoice_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DocumentQuery>,
) -> AppResult<Response> {
    let id = parse_uuid("invoice_id", &invoice_id)?;
    let opts = DocumentOptions::from_query(q.lang.as_deref(), q.numerals.as_deref())?;
    let scope = tenant_scope(&principal)?;
    let html =
        invoice_document::render(&state.pool, scope.as_deref(), id, opts, state.clock.today())
            .await?;
    // The page is self-contained, so the policy can forbid every fetch and every script: even
    // if an escaping bug ever slipped through, injected markup could not run or phone home.
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Invoices carry customer data: shared caches must not keep them.
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        html,
    )
        .into_response())
}
