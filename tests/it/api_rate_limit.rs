//! Rate limiting per principal: exact budgets, isolation per tenant, exempt routes, spoofed
//! headers, the socket address for anonymous callers, and budgets that differ per role.

use crate::common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use billing_core::auth::{issue_token, Role};
use billing_core::config::Config;
use billing_core::http::rate_limit::RateLimits;
use billing_core::state::{AppState, ManualClock};
use common::{Auth, Resp, TestApp};
use serde_json::json;

/// Serves the app with `limits`, with the socket address available as in `serve`.
async fn spawn(limits: RateLimits) -> TestApp {
    let url = common::fresh_database().await;
    let config = Config::for_tests(&url);
    let pool = billing_core::db::connect(&config, &url)
        .await
        .expect("pool");
    let clock = Arc::new(ManualClock::default());
    let state = AppState::new(pool.clone(), config.clone()).with_clock(clock.clone());
    let relay_health = state.relay_health.clone();
    let usage_cache = state.usage_cache.clone();
    let app = billing_core::http::router_with_limits(state, limits);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server");
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

fn limits(tenant_user: u32, anonymous: u32) -> RateLimits {
    RateLimits {
        enabled: true,
        super_admin: 1000,
        tenant_admin: 1000,
        tenant_user,
        service: 1000,
        anonymous,
    }
}

async fn sign_up(app: &TestApp) -> String {
    let r = app
        .post(
            "/v1/tenants",
            Auth::Service,
            json!({"name": "Farm", "name_ar": "مزرعة", "email": "farm@example.com",
                   "phone": "+967700000001", "plan_id": "free"}),
        )
        .await;
    assert_status!(r, 201);
    r.body["tenant_id"].as_str().unwrap().to_string()
}

fn header(r: &Resp, name: &str) -> Option<u64> {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

fn assert_limited(r: &Resp, limit: u64) {
    assert_status!(r, 429);
    assert_eq!(r.error_code(), "rate_limited");
    assert!(r.body["message_ar"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(r.body["request_id"].is_string());
    assert!(r.headers.contains_key("x-request-id"));
    let retry = header(r, "retry-after").expect("Retry-After");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(r, "x-ratelimit-limit"), Some(limit));
    assert_eq!(header(r, "x-ratelimit-remaining"), Some(0));
    assert!(header(r, "x-ratelimit-reset").is_some_and(|s| (1..=60).contains(&s)));
}

#[tokio::test]
async fn a_tenant_gets_exactly_its_budget_and_then_429_with_rate_limit_headers() {
    let app = spawn(limits(3, 60)).await;
    let t = sign_up(&app).await;
    let path = format!("/v1/tenants/{t}");
    for remaining in [2, 1, 0] {
        let r = app.get(&path, Auth::TenantUser(t.clone())).await;
        assert_status!(r, 200);
        assert_eq!(header(&r, "x-ratelimit-limit"), Some(3));
        assert_eq!(header(&r, "x-ratelimit-remaining"), Some(remaining));
        assert!(header(&r, "x-ratelimit-reset").is_some_and(|s| (1..=60).contains(&s)));
        assert!(!r.headers.contains_key("retry-after"));
    }
    let r = app.get(&path, Auth::TenantUser(t.clone())).await;
    assert_limited(&r, 3);
}

#[tokio::test]
async fn one_tenant_at_its_limit_leaves_another_tenant_untouched() {
    let app = spawn(limits(2, 60)).await;
    let a = sign_up(&app).await;
    let b = sign_up(&app).await;
    for _ in 0..2 {
        assert_status!(
            app.get(
                &format!("/v1/tenants/{a}/quota"),
                Auth::TenantUser(a.clone())
            )
            .await,
            200
        );
    }
    assert_limited(
        &app.get(
            &format!("/v1/tenants/{a}/quota"),
            Auth::TenantUser(a.clone()),
        )
        .await,
        2,
    );
    // The budget is the tenant's: another user of tenant A is limited too.
    let other_user = issue_token(
        &app.config.jwt_secret,
        "someone-else",
        Role::TenantUser,
        Some(&a),
        600,
    )
    .unwrap();
    assert_limited(
        &app.get(&format!("/v1/tenants/{a}/quota"), Auth::Bearer(other_user))
            .await,
        2,
    );
    let r = app
        .get(
            &format!("/v1/tenants/{b}/quota"),
            Auth::TenantUser(b.clone()),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some(1));
}

#[tokio::test]
async fn both_prefixes_draw_on_the_same_budget() {
    let app = spawn(limits(2, 60)).await;
    let t = sign_up(&app).await;
    assert_status!(
        app.get(&format!("/v1/tenants/{t}"), Auth::TenantUser(t.clone()))
            .await,
        200
    );
    assert_status!(
        app.get(&format!("/api/v1/tenants/{t}"), Auth::TenantUser(t.clone()))
            .await,
        200
    );
    assert_limited(
        &app.get(&format!("/api/v1/tenants/{t}"), Auth::TenantUser(t.clone()))
            .await,
        2,
    );
}

#[tokio::test]
async fn health_metrics_docs_and_webhooks_are_never_limited() {
    let app = spawn(limits(1, 1)).await;
    let t = sign_up(&app).await;
    for _ in 0..4 {
        for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
            let r = app.get(path, Auth::None).await;
            assert_status!(r, 200);
            assert!(!r.headers.contains_key("x-ratelimit-limit"), "{path}");
        }
        for path in [
            "/v1/webhooks/stripe",
            "/api/v1/webhooks/tharwatt",
            "/v1/webhooks/tharwatt",
        ] {
            let r = app.post(path, Auth::None, json!({"id": "evt_1"})).await;
            assert_eq!(r.error_code(), "invalid_signature", "{path}: {}", r.body);
            assert!(!r.headers.contains_key("x-ratelimit-limit"), "{path}");
        }
        // A tenant principal on an exempt route spends nothing either.
        assert_status!(app.get("/healthz", Auth::TenantUser(t.clone())).await, 200);
    }
    assert_status!(
        app.get(&format!("/v1/tenants/{t}"), Auth::TenantUser(t.clone()))
            .await,
        200
    );
    assert_status!(app.get("/v1/plans", Auth::None).await, 200);
    assert_limited(&app.get("/v1/plans", Auth::None).await, 1);
}

#[tokio::test]
async fn forwarding_and_tier_headers_chosen_by_the_client_change_nothing() {
    let app = spawn(limits(2, 2)).await;
    let t = sign_up(&app).await;
    let spoofed = |i: u32| {
        app.client
            .get(app.url("/v1/plans"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("x-real-ip", format!("198.51.100.{i}"))
            .header("forwarded", format!("for=192.0.2.{i}"))
            .header("x-rate-limit-tier", "unlimited")
            .header("x-ratelimit-limit", "1000000")
    };
    assert_status!(app.send(spoofed(1), &Auth::None).await, 200);
    assert_status!(app.send(spoofed(2), &Auth::None).await, 200);
    assert_limited(&app.send(spoofed(3), &Auth::None).await, 2);
    // A tenant principal cannot leave its bucket through a header naming another tenant.
    let path = format!("/v1/tenants/{t}");
    let tenant_req = || {
        app.client
            .get(app.url(&path))
            .header("x-rate-limit-tier", "unlimited")
            .header("x-tenant-id", "someone-else")
    };
    let auth = Auth::TenantUser(t.clone());
    assert_status!(app.send(tenant_req(), &auth).await, 200);
    assert_status!(app.send(tenant_req(), &auth).await, 200);
    assert_limited(&app.send(tenant_req(), &auth).await, 2);
}

#[tokio::test]
async fn anonymous_callers_are_counted_by_their_socket_address() {
    let app = spawn(limits(5, 1)).await;
    assert_status!(app.get("/v1/plans", Auth::None).await, 200);
    assert_limited(&app.get("/v1/plans", Auth::None).await, 1);
    // Another loopback address is another caller with its own budget.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = app.send(other.get(app.url("/v1/plans")), &Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some(0));
}

#[tokio::test]
async fn a_token_that_does_not_verify_is_counted_as_anonymous_and_still_answered_401() {
    let app = spawn(limits(5, 2)).await;
    let t = sign_up(&app).await;
    let bad = Auth::Bearer("not-a-jwt".into());
    let path = format!("/v1/tenants/{t}");
    let r = app.get(&path, bad.clone()).await;
    assert_status!(r, 401);
    assert_eq!(header(&r, "x-ratelimit-limit"), Some(2));
    assert_status!(app.get("/v1/plans", Auth::None).await, 200);
    assert_limited(&app.get(&path, bad).await, 2);
    let wrong_key = app
        .client
        .get(app.url(&path))
        .header("x-api-key", "guessed-key");
    assert_limited(&app.send(wrong_key, &Auth::None).await, 2);
    // The tenant's own budget is untouched by the failed attempts.
    assert_status!(app.get(&path, Auth::TenantUser(t)).await, 200);
}

#[tokio::test]
async fn each_role_has_its_own_budget() {
    let app = spawn(RateLimits {
        enabled: true,
        super_admin: 5,
        tenant_admin: 4,
        tenant_user: 2,
        service: 6,
        anonymous: 1,
    })
    .await;
    let t = sign_up(&app).await; // one of the service's 6
    let path = format!("/v1/tenants/{t}");
    let cases = [
        (Auth::TenantUser(t.clone()), 2),
        (Auth::TenantAdmin(t.clone()), 4),
        (Auth::Admin, 5),
        (Auth::Service, 5),
        (Auth::None, 1),
    ];
    for (auth, budget) in cases {
        let target = if matches!(auth, Auth::None) {
            "/v1/plans"
        } else {
            path.as_str()
        };
        for i in 0..budget {
            let r = app.get(target, auth.clone()).await;
            assert_status!(r, 200);
            let expected = if matches!(auth, Auth::Service) {
                6
            } else {
                budget
            };
            assert_eq!(
                header(&r, "x-ratelimit-limit"),
                Some(expected),
                "{auth:?} #{i}"
            );
        }
        let limit = if matches!(auth, Auth::Service) {
            6
        } else {
            budget
        };
        assert_limited(&app.get(target, auth.clone()).await, limit);
    }
}

#[tokio::test]
async fn a_disabled_limiter_neither_limits_nor_sends_headers() {
    let app = spawn(RateLimits::disabled()).await;
    for _ in 0..70 {
        let r = app.get("/v1/plans", Auth::None).await;
        assert_status!(r, 200);
        assert!(!r.headers.contains_key("x-ratelimit-limit"));
    }
}
