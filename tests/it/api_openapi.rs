//! The OpenAPI document describes exactly what the router serves. Both sides come from the
//! code, not from reading source text: the paths the router registered (`route_docs`, filled by
//! `utoipa_axum::routes!` and, for resources not converted yet, `http::legacy`) against the
//! document's paths, and every method of every documented path called over HTTP: documented
//! ones are routed under every prefix, the others answer 405. Then the statuses: a sweep of
//! requests every operation must be ready for (no credentials, another tenant, a bad id, an
//! empty body) answers only statuses the document lists for it.

use crate::common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use billing_core::config::Config;
use billing_core::http::rate_limit::RateLimits;
use billing_core::state::{AppState, ManualClock};
use common::{Auth, TestApp};
use serde_json::Value;

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

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
    let usage_cache = state.usage_cache.clone();
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
        usage_cache,
    }
}

/// `path` with its parameters filled in with ids of the right shape that exist nowhere.
fn concrete(path: &str) -> String {
    path.replace("{tenant_id}", "no-such-tenant")
        .replace("{plan_id}", "no_such_plan")
        .replace("{invoice_id}", "00000000-0000-0000-0000-000000000000")
        .replace("{payment_id}", "00000000-0000-0000-0000-000000000000")
}

/// The same path under each prefix it is served under.
fn under_every_prefix(path: &str) -> Vec<String> {
    if path.starts_with("/v1/") {
        vec![
            path.to_string(),
            format!("/api{path}"),
            path.replacen("/v1", "/api/v1/billing", 1),
        ]
    } else {
        vec![path.to_string()]
    }
}

#[test]
fn the_router_registers_exactly_the_documented_paths() {
    let (api, ops) = billing_core::http::route_docs();
    let mut registered: BTreeSet<String> =
        api.paths.paths.keys().map(|p| format!("/v1{p}")).collect();
    registered.extend(ops.paths.paths.keys().cloned());
    assert!(registered.len() >= 35, "only {} paths", registered.len());
    let doc = billing_core::http::openapi::spec();
    let written: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(registered, written);
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(
            !item.as_object().unwrap().is_empty(),
            "{path} is routed but has no documented operation"
        );
    }
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
            let secured = !op["security"].as_array().unwrap().is_empty();
            assert_eq!(
                responses.contains_key("401") && responses.contains_key("403"),
                secured,
                "{what}: 401 and 403 iff it takes credentials"
            );
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
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true),
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
async fn every_documented_method_is_routed_under_every_prefix_and_no_other_is() {
    let app = spawn_unlimited().await;
    let doc = billing_core::http::openapi::spec();
    let ops = documented(doc);
    for (method, path) in &ops {
        for target in under_every_prefix(&concrete(path)) {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .send(app.client.request(m, app.url(&target)), &Auth::None)
                .await;
            assert_ne!(r.status.as_u16(), 405, "{method} {target}: {}", r.body);
            assert_ne!(r.body["message"], "No such route", "{method} {target}");
        }
    }
    // HEAD is answered wherever GET is (axum), so it is not a method of its own here.
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if ops.contains(&(method.to_string(), path.clone())) {
                continue;
            }
            let target = concrete(path);
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .send(app.client.request(m, app.url(&target)), &Auth::None)
                .await;
            assert_eq!(
                r.status.as_u16(),
                405,
                "{method} {target} is served but not documented"
            );
        }
    }
}

/// The statuses an operation documents, as numbers.
fn statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Who calls, how the path's parameters are filled, and the body sent.
type Sweep = (Auth, fn(&str) -> String, Option<&'static str>);

#[tokio::test]
async fn every_status_the_server_answers_in_a_sweep_is_documented() {
    let app = spawn_unlimited().await;
    let doc = billing_core::http::openapi::spec();
    let tenant = common::tenant_with(&app.pool, common::Sub::default()).await;
    // Each operation is called as nobody, as another tenant's user and admin, and as a super
    // admin with well-formed ids that exist nowhere, with malformed ids, and with an empty body.
    let sweeps: Vec<Sweep> = vec![
        (Auth::None, concrete, None),
        (Auth::TenantUser(tenant.clone()), concrete, None),
        (Auth::TenantAdmin(tenant.clone()), concrete, Some("{}")),
        (Auth::Admin, concrete, Some("{}")),
        (Auth::Admin, concrete, Some("not json")),
        (
            Auth::Admin,
            |p: &str| p.replace('{', "x%20").replace('}', ""),
            None,
        ),
        (Auth::Service, concrete, Some("[]")),
    ];
    let mut seen = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Running the billing jobs is not a probe; the webhooks have their own signature tests.
        if path == "/v1/admin/billing-run" {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let allowed = statuses(op);
            for (auth, fill, body) in &sweeps {
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut rb = app.client.request(m, app.url(&fill(path)));
                if let Some(b) = body {
                    rb = rb.body(b.to_string());
                }
                let r = app.send(rb, auth).await;
                let s = r.status.as_u16();
                seen.push(s);
                assert!(
                    allowed.contains(&s),
                    "{method} {path} as {auth:?} with {body:?}: {s} is not documented ({allowed:?}): {}",
                    r.body
                );
            }
        }
    }
    assert!(seen.contains(&404) && seen.contains(&401));
}

#[tokio::test]
async fn the_documented_metric_catalogue_is_the_database_one() {
    let app = TestApp::spawn().await;
    let metrics: Vec<String> = sqlx::query_scalar("SELECT metric FROM metrics ORDER BY metric")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        metrics,
        billing_core::http::openapi::components::CATALOGUE_METRICS
    );
}
