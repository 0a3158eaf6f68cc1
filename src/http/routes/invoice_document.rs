//! `GET /invoices/{invoice_id}/document`: the printable invoice as HTML (`?lang=ar|en`,
//! `?numerals=arabic|latin`). Readable by whoever may read the invoice itself.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::AppResult;
use crate::http::extract::{parse_uuid, ApiPath, ApiQuery};
use crate::services::invoice_document::{self, DocumentOptions};
use crate::services::payments::tenant_scope;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/invoices/{invoice_id}/document", get(get_document))
}

#[derive(Deserialize)]
struct DocumentQuery {
    lang: Option<String>,
    numerals: Option<String>,
}

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
