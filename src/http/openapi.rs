//! `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (a self-contained page that renders it).
//!
//! The document is data built here rather than annotations on the handlers, so route modules
//! stay free of documentation macros; `tests/api_openapi.rs` keeps it honest by comparing its
//! operations with every `.route(..)` in the source, both ways.
//!
//! Prefixes: API paths are written as clients call them, `/v1/...`. The identical `/api/v1`
//! alias is expressed through `servers`: the default server is `/` and the second is `/api`, so
//! `/v1/tenants` on it is `/api/v1/tenants`. The third prefix, `/api/v1/billing` (SAHOOL's Kong
//! route), replaces `/v1` rather than preceding it, which a server URL cannot say, so the
//! description says it. Operator paths (`/healthz`, `/metrics`, ...) exist
//! only at the root and override `servers` accordingly.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::http::routes::health::VERSION;

mod paths;

const SCHEMAS: &str = include_str!("openapi/schemas.json");
const DOCS_PAGE: &str = include_str!("openapi/docs.html");

pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        spec().to_string(),
    )
        .into_response()
}

pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// The document, built once.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(build)
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Who {
    Public,
    /// Role names; `service` means an `X-API-Key` works too.
    Roles(&'static [&'static str]),
    /// Authenticated by the gateway's signature header, not by a principal; not rate limited.
    Signature(&'static str),
    /// Operator endpoints at the root: public, not rate limited.
    Ops,
}

const TENANT: &[&str] = &["tenant_admin", "tenant_user", "super_admin", "service"];
const TENANT_ADMIN: &[&str] = &["tenant_admin", "super_admin", "service"];
const SUPER: &[&str] = &["super_admin"];

struct Op {
    tag: &'static str,
    summary: &'static str,
    who: Who,
    params: Vec<Value>,
    body: Option<(Value, bool)>,
    ok: Vec<(u16, &'static str, Value)>,
    errors: Vec<u16>,
    quota: bool,
    content: &'static str,
}

fn op(tag: &'static str, summary: &'static str, who: Who, status: u16, schema: Value) -> Op {
    Op {
        tag,
        summary,
        who,
        params: Vec::new(),
        body: None,
        ok: vec![(status, "Success", schema)],
        errors: Vec::new(),
        quota: false,
        content: "application/json",
    }
}

impl Op {
    fn params(mut self, p: impl IntoIterator<Item = Value>) -> Self {
        self.params.extend(p);
        self
    }
    fn body(mut self, schema: Value, required: bool) -> Self {
        self.body = Some((schema, required));
        self
    }
    fn also(mut self, status: u16, description: &'static str, schema: Value) -> Self {
        self.ok.push((status, description, schema));
        self
    }
    fn errs(mut self, e: &[u16]) -> Self {
        self.errors.extend_from_slice(e);
        self
    }
    fn idempotent(self) -> Self {
        self.params([param("IdempotencyKey")]).errs(&[409])
    }
    /// Usage and enforce answer 429 for an exhausted quota as well as for the rate limit.
    fn quota(mut self) -> Self {
        self.quota = true;
        self.errs(&[402])
    }
    fn content(mut self, content: &'static str) -> Self {
        self.content = content;
        self
    }

    fn build(self, path: &str) -> Value {
        let limited = matches!(self.who, Who::Public | Who::Roles(_));
        let mut o = Map::new();
        o.insert("tags".into(), json!([self.tag]));
        o.insert("summary".into(), json!(self.summary));
        let mut errors = self.errors;
        let description = match self.who {
            Who::Public => "Public.".to_string(),
            Who::Ops => "Public operator endpoint; not rate limited.".to_string(),
            Who::Signature(h) => {
                errors.push(400);
                format!("Authenticated by the `{h}` signature over the raw body; not rate limited.")
            }
            Who::Roles(roles) => {
                errors.extend([401, 403]);
                o.insert("x-roles".into(), json!(roles));
                let mut sec = vec![json!({ "bearerAuth": [] })];
                if roles.contains(&"service") {
                    sec.push(json!({ "apiKeyAuth": [] }));
                }
                o.insert("security".into(), Value::Array(sec));
                let tenant = if roles.contains(&"tenant_user") || roles.contains(&"tenant_admin") {
                    " A tenant role reaches only its own tenant; another tenant's resource answers 404."
                } else {
                    ""
                };
                format!("Roles: {}.{tenant}", roles.join(", "))
            }
        };
        o.insert("description".into(), json!(description));
        if !matches!(self.who, Who::Roles(_)) {
            o.insert("security".into(), json!([]));
        }
        let mut params = self.params;
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            params.insert(0, json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
            errors.extend([400, 404]);
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        if let Some((schema, required)) = self.body {
            errors.push(422);
            o.insert(
                "requestBody".into(),
                json!({ "required": required, "content": { "application/json": { "schema": schema } } }),
            );
        } else if limited {
            errors.push(422);
        }
        if limited {
            errors.push(429);
        }
        if !matches!(self.who, Who::Ops) {
            errors.push(503);
        }
        let mut responses = Map::new();
        for (status, desc, schema) in self.ok {
            let mut resp = json!({
                "description": desc,
                "content": { self.content: { "schema": schema } },
            });
            if limited {
                resp["headers"] = json!({
                    "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
                    "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
                    "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" },
                });
            }
            responses.insert(status.to_string(), resp);
        }
        errors.sort_unstable();
        errors.dedup();
        for e in errors {
            let name = match e {
                429 if self.quota => "TooManyRequestsOrQuota",
                _ => error_response_name(e),
            };
            responses.insert(
                e.to_string(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
        o.insert("responses".into(), Value::Object(responses));
        if matches!(self.who, Who::Ops) {
            o.insert("servers".into(), json!([{ "url": "/" }]));
        }
        Value::Object(o)
    }
}

fn error_response_name(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        402 => "PaymentRequired",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        422 => "Unprocessable",
        429 => "RateLimited",
        502 => "BadGateway",
        503 => "DatabaseUnavailable",
        _ => "ServiceUnavailable",
    }
}

fn error_responses() -> Value {
    let e = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": r("Error") } } });
    let limited = |d: &str| {
        let mut v = e(d);
        v["headers"] = json!({
            "Retry-After": { "description": "Seconds until a request would be allowed.", "schema": { "type": "integer" } },
            "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
            "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
            "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" },
        });
        v
    };
    json!({
        "BadRequest": e("Malformed identifier (`invalid_id`) or, for webhooks, `invalid_signature`."),
        "Unauthorized": e("`unauthorized`: no or invalid credentials."),
        "PaymentRequired": e("`subscription_suspended`: the tenant's subscription is suspended for non-payment."),
        "Forbidden": e("`forbidden`: the principal lacks the role."),
        "NotFound": e("`not_found`: missing, or another tenant's (the two are indistinguishable)."),
        "Conflict": e("`already_exists`, `idempotency_key_reused`, `invoice_not_payable` or another state conflict."),
        "PayloadTooLarge": e("`payload_too_large`."),
        "Unprocessable": e("`validation_error` with `fields`, or a domain rule (e.g. `unknown_metric`, `refund_exceeds_payment`); malformed JSON and wrong types too."),
        "RateLimited": limited("`rate_limited`: the principal's request budget is spent (see the X-RateLimit headers)."),
        "TooManyRequestsOrQuota": limited("`rate_limited` (request budget), or `quota_exceeded` with `allowed: false, limit, used, requested` (plan quota; no rate-limit Retry-After then)."),
        "BadGateway": e("The payment gateway failed."),
        "ServiceUnavailable": e("Not ready."),
        "DatabaseUnavailable": {
            "description": "`database_unavailable`: the database is unreachable (answered at once while it is known down) or the connection broke mid-request, so the effect may or may not have happened; `usage_outcome_unknown` for a usage event without `event_id` in that case. Retry after `Retry-After` seconds with the same `Idempotency-Key` or `event_id`: the retry converges to one effect.",
            "headers": { "Retry-After": { "description": "Seconds to wait before retrying.", "schema": { "type": "integer" } } },
            "content": { "application/json": { "schema": r("Error") } },
        },
    })
}

fn build() -> Value {
    // The file is ours and parsed by a unit test; an empty map keeps the server up regardless.
    let schemas: Value = serde_json::from_str(SCHEMAS).unwrap_or_else(|_| json!({}));
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, op) in paths::operations() {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        item[method] = op.build(path);
    }
    let tags: Vec<Value> = [
        "Plans",
        "Tenants",
        "Subscriptions",
        "Usage",
        "Invoices",
        "Payments",
        "Refunds",
        "Exchange rates",
        "Reports",
        "Events",
        "Audit",
        "Admin",
        "Webhooks",
        "Operations",
    ]
    .iter()
    .map(|t| json!({ "name": t }))
    .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "SAHOOL Billing Core",
            "version": VERSION,
            "description": concat!(
                "Plans, tenants and subscriptions, usage metering and quota enforcement, invoices, payments, refunds and reports.\n\n",
                "Every `/v1/...` route is served identically under `/api/v1/...` (the gateway's prefix): use the `/api` server; ",
                "and under `/api/v1/billing/...` (SAHOOL's Kong route with strip_path false): `/v1/plans` is also `/api/v1/billing/plans`. ",
                "All three share idempotency keys. ",
                "Money is always a string with 2 decimals. Errors share one envelope (`Error`). Lists take `limit` (1-100, default 20) ",
                "and `starting_after` and answer `{<items>: [...], total, has_more}`.\n\n",
                "Rate limits: per principal (tenant for tenant roles, API key for services, subject for super admins, socket IP for anonymous callers), ",
                "a budget per role per minute. Every limited response carries X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset; ",
                "an exhausted budget answers 429 `rate_limited` with Retry-After. Health, metrics, this document, /docs and webhooks are not limited."
            ),
        },
        "servers": [
            { "url": "/", "description": "Paths as written: /v1/..." },
            { "url": "/api", "description": "The identical alias: /api/v1/..." },
        ],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "HS256 with JWT_SECRET (or JWT_SECRET_KEY); claims sub, tid (or tenant_id, tenantId), roles (or role, platform names mapped by JWT_ROLE_MAP), exp; aud, when present, one of JWT_AUDIENCE (default sahool-api); type, when present, access." },
                "apiKeyAuth": { "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "One of AUTH_API_KEYS; the caller has the service role." },
            },
            "parameters": {
                "Limit": query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }), "Page size."),
                "StartingAfter": query("starting_after", json!({ "type": "string" }), "The id of the last item of the previous page."),
                "IdempotencyKey": { "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "maxLength": 255 },
                    "description": "Same key and same request: the first response is replayed (with idempotent-replayed: true); same key, different request: 409 idempotency_key_reused. /v1 and /api/v1 share keys." },
            },
            "headers": {
                "X-RateLimit-Limit": { "description": "Requests allowed per minute for this principal.", "schema": { "type": "integer" } },
                "X-RateLimit-Remaining": { "description": "Requests left in the current budget.", "schema": { "type": "integer" } },
                "X-RateLimit-Reset": { "description": "Seconds until the whole budget is available again.", "schema": { "type": "integer" } },
            },
            "responses": error_responses(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_parses_and_every_reference_resolves() {
        let schemas: Value = serde_json::from_str(SCHEMAS).expect("schemas.json is JSON");
        let doc = spec();
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"").skip(1) {
            let target = piece.split('"').next().unwrap();
            let mut parts = target.trim_start_matches("#/").split('/');
            let mut node = doc;
            for p in parts.by_ref() {
                node = &node[p];
            }
            assert!(!node.is_null(), "unresolved {target}");
        }
        assert_eq!(doc["components"]["schemas"], schemas);
    }

    #[test]
    fn money_is_a_string_everywhere() {
        let doc = spec();
        assert_eq!(doc["components"]["schemas"]["Money"]["type"], "string");
        let invoice = &doc["components"]["schemas"]["Invoice"]["properties"];
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
}
