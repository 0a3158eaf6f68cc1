//! `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (a self-contained page that renders it).
//!
//! The document is generated from the router: resources register their handlers with
//! `utoipa_axum::routes!`, each handler carries its `#[utoipa::path]` (parameters, body, every
//! status it can answer), and the DTOs derive `ToSchema`. Nothing of it is written by hand
//! but the shared components (`components.rs`) and the description.
//!
//! Statuses that come from the layers around every API route rather than from the handler —
//! 429 and the rate-limit headers (`rate_limit`), 503 while the database is down (`db_gate`) —
//! are added here for every operation the layer wraps, in one place that mirrors the stack.
//!
//! Prefixes: API paths are written as clients call them, `/v1/...`. The identical `/api/v1`
//! alias is expressed through `servers` (`/` and `/api`). The third prefix, `/api/v1/billing`,
//! replaces `/v1` rather than preceding it, which a server URL cannot say, so the description
//! says it. Operator paths (`/healthz`, ...) exist only at the root and override `servers`.

pub mod components;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use components::*;

const DOCS_PAGE: &str = include_str!("openapi/docs.html");

/// This document
///
/// Public operator endpoint; not rate limited. OpenAPI 3.1, generated from the router.
#[utoipa::path(get, path = "/openapi.json", tag = "Operations",
    responses((status = 200, description = "The document", content_type = "application/json",
        body = Object)))]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec().to_string(),
    )
        .into_response()
}

/// A page that renders this document
///
/// Public operator endpoint; not rate limited. Self-contained (no CDN): it fetches
/// `openapi.json` and renders it.
#[utoipa::path(get, path = "/docs", tag = "Operations",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// The document, built once.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(build)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "SAHOOL Billing Core", description = include_str!("openapi/description.md")),
    servers(
        (url = "/", description = "Paths as written: /v1/..."),
        (url = "/api", description = "The identical alias: /api/v1/..."),
    ),
    tags(
        (name = "Plans"), (name = "Tenants"), (name = "Subscriptions"), (name = "Usage"),
        (name = "Invoices"), (name = "Payments"), (name = "Refunds"), (name = "Coupons"), (name = "Exchange rates"),
        (name = "Reports"), (name = "Events"), (name = "Audit"), (name = "Admin"),
        (name = "Webhooks"), (name = "Operations"),
    ),
    components(
        schemas(
            crate::error::ErrorEnvelope, crate::error::FieldIssue, MoneySchema, DecimalSchema,
            MoneyInputSchema, PriceInputSchema, TenantIdSchema, PlanIdSchema, MetricNameSchema,
            crate::http::dto::invoice_schemas::PaymentStatusSchema,
            crate::http::dto::plan_schemas::NulFreeJson,
        ),
        responses(
            BadRequest, Unauthorized, PaymentRequired, Forbidden, NotFound, Conflict,
            PayloadTooLarge, Unprocessable, RateLimited, TooManyRequestsOrQuota, BadGateway,
            ServiceUnavailable, DatabaseUnavailable,
        ),
    ),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn build() -> Value {
    let (api, ops) = crate::http::route_docs();
    let generated = ApiDoc::openapi().nest("/v1", api).merge_from(ops);
    let mut doc = serde_json::to_value(&generated).unwrap_or_else(|_| json!({}));
    finish_components(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(Value::Object(op)) = item.get_mut(method) {
                    apply_layers(path, op);
                }
            }
        }
    }
    doc
}

/// What utoipa cannot say itself: the rate limiter's response headers, and the error schema's
/// openness.
fn finish_components(doc: &mut Value) {
    let components = &mut doc["components"];
    components["headers"] = rate_limit_headers();
    // Some errors add top-level members (quota figures, retry_after): see `ErrorEnvelope`.
    components["schemas"]["Error"]["additionalProperties"] = json!(true);
}

/// The response headers the rate limiter adds (utoipa has no `components.headers`).
fn rate_limit_headers() -> Value {
    json!({
        "X-RateLimit-Limit": { "description": "Requests allowed per minute for this principal.", "schema": { "type": "integer" } },
        "X-RateLimit-Remaining": { "description": "Requests left in the current budget.", "schema": { "type": "integer" } },
        "X-RateLimit-Reset": { "description": "Seconds until the whole budget is available again.", "schema": { "type": "integer" } },
    })
}

/// What the layers around a route add to its operation (see `http::router_with_limits`): the
/// rate limiter wraps every API route but the webhooks (429, and its headers on success), the
/// database gate every API route (503). Operator routes live at the root only. An operation
/// whose annotation names no security is public (`security: []`).
fn apply_layers(path: &str, op: &mut Map<String, Value>) {
    let api = path.starts_with("/v1/");
    let limited = api && !path.starts_with("/v1/webhooks/");
    op.entry("security").or_insert_with(|| json!([]));
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else { return };
    if limited {
        responses
            .entry("429")
            .or_insert_with(|| json!({ "$ref": "#/components/responses/RateLimited" }));
        for (status, resp) in responses.iter_mut() {
            if status.starts_with('2') && resp.get("$ref").is_none() {
                let headers = resp["headers"].as_object().cloned().unwrap_or_default();
                let mut with: Map<String, Value> = [
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                ]
                .iter()
                .map(|h| {
                    (
                        h.to_string(),
                        json!({ "$ref": format!("#/components/headers/{h}") }),
                    )
                })
                .collect();
                with.extend(headers);
                resp["headers"] = Value::Object(with);
            }
        }
    }
    if api {
        responses
            .entry("503")
            .or_insert_with(|| json!({ "$ref": "#/components/responses/DatabaseUnavailable" }));
    } else {
        op.insert("servers".into(), json!([{ "url": "/" }]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let doc = spec();
        let text = doc.to_string();
        let mut unresolved = std::collections::BTreeSet::new();
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = piece.split('"').next().unwrap();
            let mut node = doc;
            for p in target.trim_start_matches("#/").split('/') {
                node = &node[p];
            }
            if node.is_null() {
                unresolved.insert(target);
            }
        }
        assert!(unresolved.is_empty(), "unresolved: {unresolved:?}");
    }

    #[test]
    fn money_is_a_string_with_two_decimals() {
        let money = &spec()["components"]["schemas"]["Money"];
        assert_eq!(money["type"], "string");
        assert_eq!(money["pattern"], MONEY_PATTERN);
        let invoice = &spec()["components"]["schemas"]["Invoice"]["properties"];
        for f in [
            "subtotal",
            "tax_amount",
            "total",
            "amount_paid",
            "amount_due",
        ] {
            assert_eq!(invoice[f]["$ref"], "#/components/schemas/Money", "{f}");
        }
    }

    #[test]
    fn the_error_schema_is_the_envelope_the_server_sends() {
        let schema = &spec()["components"]["schemas"]["Error"];
        let body = crate::error::AppError::not_found("Plan", "x").body();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut sent: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        sent.sort_unstable();
        let mut required_sorted = required.clone();
        required_sorted.sort_unstable();
        assert_eq!(sent, required_sorted);
    }
}
