//! The hand-written part of the document, for the resources whose routes are not yet
//! registered through `utoipa-axum` (see `super`). An operation here is data: `paths.rs`
//! lists them; this module turns each into an operation object. A resource that moves to
//! `#[utoipa::path]` takes its entries out of `paths.rs` and its schemas out of
//! `schemas.json` in the same commit.

use serde_json::{json, Map, Value};

const SCHEMAS: &str = include_str!("schemas.json");

pub(super) fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

pub(super) fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

/// Who may call an operation.
#[derive(Clone, Copy)]
pub(super) enum Who {
    /// Role names; `service` means an `X-API-Key` works too.
    Roles(&'static [&'static str]),
    /// Authenticated by the gateway's signature header, not by a principal; not rate limited.
    Signature(&'static str),
}

pub(super) const TENANT: &[&str] = &["tenant_admin", "tenant_user", "super_admin", "service"];
pub(super) const SUPER: &[&str] = &["super_admin"];

pub(super) struct Op {
    tag: &'static str,
    summary: &'static str,
    who: Who,
    params: Vec<Value>,
    body: Option<(Value, bool)>,
    ok: Vec<(u16, &'static str, Value)>,
    errors: Vec<u16>,
    content: &'static str,
}

pub(super) fn op(
    tag: &'static str,
    summary: &'static str,
    who: Who,
    status: u16,
    schema: Value,
) -> Op {
    Op {
        tag,
        summary,
        who,
        params: Vec::new(),
        body: None,
        ok: vec![(status, "Success", schema)],
        errors: Vec::new(),
        content: "application/json",
    }
}

impl Op {
    pub(super) fn params(mut self, p: impl IntoIterator<Item = Value>) -> Self {
        self.params.extend(p);
        self
    }
    pub(super) fn body(mut self, schema: Value, required: bool) -> Self {
        self.body = Some((schema, required));
        self
    }
    pub(super) fn also(mut self, status: u16, description: &'static str, schema: Value) -> Self {
        self.ok.push((status, description, schema));
        self
    }
    pub(super) fn errs(mut self, e: &[u16]) -> Self {
        self.errors.extend_from_slice(e);
        self
    }
    pub(super) fn idempotent(self) -> Self {
        self.params([param("IdempotencyKey")]).errs(&[409])
    }
    pub(super) fn content(mut self, content: &'static str) -> Self {
        self.content = content;
        self
    }

    fn build(self, path: &str) -> Value {
        let limited = matches!(self.who, Who::Roles(_));
        let mut o = Map::new();
        o.insert("tags".into(), json!([self.tag]));
        o.insert("summary".into(), json!(self.summary));
        let mut errors = self.errors;
        let description = match self.who {
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
        errors.push(503);
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
            let name = error_response_name(e);
            responses.insert(
                e.to_string(),
                json!({ "$ref": format!("#/components/responses/{name}") }),
            );
        }
        o.insert("responses".into(), Value::Object(responses));
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

/// The hand-written paths (as clients call them, `/v1/...` or at the root) and the components
/// they refer to.
pub(super) fn build(operations: Vec<(&'static str, &'static str, Op)>) -> Value {
    // The file is ours and parsed by a unit test; an empty map keeps the server up regardless.
    let schemas: Value = serde_json::from_str(SCHEMAS).unwrap_or_else(|_| json!({}));
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, op) in operations {
        let item = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        item[method] = op.build(path);
    }
    json!({
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                "Limit": query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 20 }), "Page size."),
                "StartingAfter": query("starting_after", json!({ "type": "string", "maxLength": 200 }), "The id of the last item of the previous page."),
                "IdempotencyKey": { "name": "Idempotency-Key", "in": "header", "required": false, "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7E]+$" },
                    "description": "Same key and same request: the first response is replayed (with idempotent-replayed: true); same key, different request: 409 idempotency_key_reused. /v1 and /api/v1 share keys." },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_file_parses() {
        let schemas: Value = serde_json::from_str(SCHEMAS).expect("schemas.json is JSON");
        assert!(schemas.is_object());
    }
}
