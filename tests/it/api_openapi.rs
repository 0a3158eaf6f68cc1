//! The OpenAPI document describes exactly the routes the router serves. axum cannot list its
//! routes, so they are read from the source: every `.route("<path>", get(..).post(..)...)` in
//! `src/http/routes/*.rs` (served under `/v1`) and `src/http/mod.rs` (served at the root).

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use billing_core::config::Config;
use billing_core::http::rate_limit::RateLimits;
use billing_core::state::{AppState, ManualClock};
use common::{Auth, TestApp};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// The text of the balanced parentheses starting at `open` (an index of `(`).
fn balanced(src: &str, open: usize) -> &str {
    let mut depth = 0usize;
    let mut in_str = false;
    let bytes = src.as_bytes();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'"' if bytes[i - 1] != b'\\' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after byte {open}");
}

/// `(method, path)` for every `.route(..)` call in `src`, with `prefix` before the path.
fn routes_in(src: &str, prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in src.match_indices(".route(") {
        let args = balanced(src, at + ".route".len());
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("route without a literal path: {args}"));
        let handlers = &args[args.find(',').expect("a method router") + 1..];
        let mut found = 0;
        for m in METHODS {
            for (i, _) in handlers.match_indices(&format!("{m}(")) {
                let before = handlers[..i].chars().last();
                if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) {
                    out.push((m.to_string(), format!("{prefix}{path}")));
                    found += 1;
                }
            }
        }
        assert!(found > 0, "no method found for route {path}");
    }
    out
}

fn source_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root.join("routes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            all.extend(routes_in(&std::fs::read_to_string(&path).unwrap(), "/v1"));
        }
    }
    all.extend(routes_in(
        &std::fs::read_to_string(root.join("mod.rs")).unwrap(),
        "",
    ));
    let set: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(set.len(), all.len(), "a (method, path) is registered twice");
    set
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// The app with limiting off (these tests make many anonymous requests).
async fn spawn_unlimited() -> TestApp {
    let url = common::fresh_database().await;
    let config = Config::for_tests(&url);
    let pool = billing_core::db::connect(&config, &url)
        .await
        .expect("pool");
    let clock = Arc::new(ManualClock::default());
    let state = AppState::new(pool.clone(), config.clone()).with_clock(clock.clone());
    let relay_health = state.relay_health.clone();
    let app = billing_core::http::router_with_limits(state, RateLimits::disabled());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server");
    });
    TestApp {
        base: format!("http://{addr}"),
        pool,
        config,
        clock,
        client: reqwest::Client::new(),
        database_url: url,
        relay_health,
    }
}

#[test]
fn the_route_parser_reads_chained_methods_and_skips_lookalikes() {
    let src = r#"Router::new()
        .route("/a/{id}", get(get_a).patch(update_a).delete(archive_a))
        .route("/b", post(ingest).layer(DefaultBodyLimit::max(LIMIT)))
        .route_layer(middleware::from_fn(track))
        .route("/c", routing::get(reports::get_c))"#;
    let got: Vec<_> = routes_in(src, "/v1")
        .into_iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        got,
        [
            "get /v1/a/{id}",
            "patch /v1/a/{id}",
            "delete /v1/a/{id}",
            "post /v1/b",
            "get /v1/c"
        ]
    );
}

#[test]
fn every_route_in_the_source_is_documented_with_its_method_and_nothing_else() {
    let source = source_routes();
    assert!(source.len() >= 40, "only {} routes parsed", source.len());
    let doc = documented(billing_core::http::openapi::spec());
    let missing: Vec<_> = source.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&source).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
}

#[test]
fn every_operation_describes_its_security_and_errors_in_the_envelope() {
    let doc = billing_core::http::openapi::spec();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    assert_eq!(schemes["apiKeyAuth"]["name"], "X-API-Key");
    let error = &doc["components"]["schemas"]["Error"]["required"];
    for f in ["error", "message", "message_ar", "detail", "request_id"] {
        assert!(error.as_array().unwrap().contains(&Value::from(f)), "{f}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(op["security"].is_array(), "{what}: security");
            assert!(op["summary"].is_string(), "{what}: summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what}: no success response"
            );
            let is_api = path.starts_with("/v1/") && !path.starts_with("/v1/webhooks/");
            assert_eq!(
                responses.contains_key("429"),
                is_api,
                "{what}: 429 iff rate limited"
            );
            if !op["security"].as_array().unwrap().is_empty() {
                assert!(
                    responses.contains_key("401") && responses.contains_key("403"),
                    "{what}"
                );
            }
            if matches!(method.as_str(), "post" | "patch")
                && path != "/v1/admin/billing-run"
                && !path.ends_with("/resume")
                && !path.ends_with("/cancel")
                && !path.ends_with("/void")
                && !path.ends_with("/generate")
            {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{what}: body"
                );
            }
            let params = op["parameters"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            for name in path
                .split('{')
                .skip(1)
                .map(|s| s.split('}').next().unwrap())
            {
                assert!(
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path"),
                    "{what}: {name}"
                );
            }
            // Operator routes live only at the root; API routes also under the /api server.
            assert_eq!(
                op["servers"].is_array(),
                !path.starts_with("/v1/"),
                "{what}: servers"
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_served_as_openapi_3_json_and_the_docs_page_loads_it() {
    let app = TestApp::spawn().await;
    let r = app.get("/openapi.json", Auth::None).await;
    assert_status!(r, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert!(
        r.body["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        r.body["openapi"]
    );
    assert!(r.body["info"]["title"].is_string() && r.body["info"]["version"].is_string());
    let servers: Vec<&str> = r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["/", "/api"]);
    assert_eq!(&r.body, billing_core::http::openapi::spec());
    let page = app.get("/docs", Auth::None).await;
    assert_status!(page, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.body.as_str().unwrap();
    assert!(html.contains("fetch(\"openapi.json\")") && !html.contains("https://"));
}

#[tokio::test]
async fn every_documented_operation_is_routed_under_both_prefixes() {
    let app = spawn_unlimited().await;
    let doc = billing_core::http::openapi::spec();
    for (method, path) in documented(doc) {
        let concrete = path
            .replace("{tenant_id}", "no-such-tenant")
            .replace("{plan_id}", "no_such_plan")
            .replace("{invoice_id}", "00000000-0000-0000-0000-000000000000")
            .replace("{payment_id}", "00000000-0000-0000-0000-000000000000");
        let targets = if path.starts_with("/v1/") {
            vec![
                concrete.clone(),
                format!("/api{concrete}"),
                concrete.replacen("/v1", "/api/v1/billing", 1),
            ]
        } else {
            vec![concrete]
        };
        for target in targets {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .send(app.client.request(m, app.url(&target)), &Auth::None)
                .await;
            assert_ne!(r.status.as_u16(), 405, "{method} {target}: {}", r.body);
            assert_ne!(r.body["message"], "No such route", "{method} {target}");
        }
    }
}
