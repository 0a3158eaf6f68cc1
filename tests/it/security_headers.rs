//! The standard security headers on every response: successes, errors, 404s and the operations
//! routes; `Strict-Transport-Security` only when `HSTS_MAX_AGE` is configured.

use crate::common::{self, Auth, Resp, TestApp};
use serde_json::json;

fn assert_standard(r: &Resp, what: &str) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        let all: Vec<_> = r.headers.get_all(name).iter().collect();
        assert_eq!(all, [value], "{name} on {what} ({})", r.status);
    }
}

#[tokio::test]
async fn every_kind_of_response_carries_the_headers() {
    let app = TestApp::spawn().await;
    let ok = app.get("/v1/plans", Auth::None).await;
    assert_status!(ok, 200);
    assert_standard(&ok, "a success");
    let unauthorized = app.post("/v1/plans", Auth::None, json!({})).await;
    assert_status!(unauthorized, 401);
    assert_standard(&unauthorized, "an error");
    let invalid = app.post_raw("/v1/plans", Auth::Admin, "{not json").await;
    assert_eq!(invalid.status.as_u16() / 100, 4, "{}", invalid.body);
    assert_standard(&invalid, "bad input");
    let missing = app.get("/v1/no-such-thing", Auth::None).await;
    assert_status!(missing, 404);
    assert_eq!(missing.error_code(), "not_found");
    assert_standard(&missing, "a 404");
    let not_allowed = app.delete("/healthz", Auth::None).await;
    assert_status!(not_allowed, 405);
    assert_standard(&not_allowed, "a 405");
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"] {
        let r = app.get(path, Auth::None).await;
        assert_standard(&r, path);
        assert!(
            r.headers.get("strict-transport-security").is_none(),
            "{path}"
        );
    }
}

#[tokio::test]
async fn hsts_is_sent_when_configured() {
    let url = common::fresh_database().await;
    let app = TestApp::spawn_on(&url, |c| c.hsts_max_age = Some(31_536_000)).await;
    for path in ["/v1/plans", "/v1/no-such-thing", "/healthz"] {
        let r = app.get(path, Auth::None).await;
        assert_eq!(
            r.headers["strict-transport-security"], "max-age=31536000",
            "{path}"
        );
        assert_standard(&r, path);
    }
}
