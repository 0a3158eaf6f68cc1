//! SAHOOL's Kong routes billing as `/api/v1/billing/...` (`strip_path: false` in
//! `infra/kong/kong.yml`): every route answers there exactly as under `/v1` and `/api/v1`, and the
//! three prefixes share idempotency keys.

use crate::common;

use common::{Auth, Resp, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

const PREFIXES: [&str; 3] = ["/v1", "/api/v1", "/api/v1/billing"];

/// A tenant on a paid plan without a trial, so its sign-up issues an invoice; returns its id.
async fn tenant_with_invoice(app: &TestApp, tenant: &str) -> String {
    let r = app
        .post(
            "/v1/plans",
            Auth::Admin,
            json!({"plan_id": "no_trial", "name": "No trial", "name_ar": "بلا تجربة",
                   "description": "Paid from day one", "description_ar": "مدفوعة من اليوم الأول",
                   "tier": "starter", "monthly_price_usd": "20.00", "trial_days": 0,
                   "limits": {"fields": 5}, "features": []}),
        )
        .await;
    assert_status!(r, 201);
    let r = app
        .post(
            "/api/v1/billing/tenants",
            Auth::Admin,
            json!({"tenant_id": tenant, "name": "Farm", "name_ar": "مزرعة",
                   "email": "o@farm.example.com", "phone": "+967771234567",
                   "plan_id": "no_trial"}),
        )
        .await;
    assert_status!(r, 201);
    r.body["invoice_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn reads_answer_the_same_under_every_prefix() {
    let app = &TestApp::spawn().await;
    let invoice = tenant_with_invoice(app, "farm-gw").await;
    let admin = Auth::TenantAdmin("farm-gw".into());
    for path in [
        "/plans".to_string(),
        "/plans/starter".to_string(),
        "/tenants/farm-gw/subscription".to_string(),
        "/tenants/farm-gw/invoices".to_string(),
        format!("/invoices/{invoice}"),
        "/tenants/farm-gw/quota".to_string(),
    ] {
        let answers: Vec<Resp> = join_all(PREFIXES.map(|p| {
            let url = format!("{p}{path}");
            let auth = admin.clone();
            async move { app.get(&url, auth).await }
        }))
        .await;
        for (p, r) in PREFIXES.iter().zip(&answers) {
            assert_eq!(r.status, 200, "{p}{path}: {}", r.body);
        }
        // Quota's timestamps and ids are stable, so whole bodies compare equal.
        assert_eq!(answers[0].body, answers[1].body, "{path}");
        assert_eq!(answers[0].body, answers[2].body, "{path}");
    }
    let r = app
        .get("/api/v1/billing/tenants/another-farm", admin.clone())
        .await;
    assert_status!(r, 404);
    let r = app.get("/api/v1/billing/no-such-route", admin).await;
    assert_status!(r, 404);
    assert_eq!(r.error_code(), "not_found");
    // Signed webhooks are reachable there too (and refused without a signature).
    let r = app
        .post("/api/v1/billing/webhooks/tharwatt", Auth::None, json!({}))
        .await;
    assert_status!(r, 400);
    assert_eq!(r.error_code(), "invalid_signature");
}

#[tokio::test]
async fn one_idempotency_key_raced_across_the_three_prefixes_records_one_payment() {
    let app = &TestApp::spawn().await;
    let invoice = tenant_with_invoice(app, "farm-race").await;
    let body = json!({"invoice_id": invoice, "amount": "20.00", "method": "cash"});
    let results: Vec<Resp> = join_all((0..9).map(|i| {
        let url = format!("{}/payments", PREFIXES[i % 3]);
        let body = body.clone();
        async move { app.post_idem(&url, Auth::Admin, "gw-pay-1", body).await }
    }))
    .await;
    for r in &results {
        assert_status!(r, 201);
        assert_eq!(r.body, results[0].body);
    }
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(payments, 1);
    // The same key with another body is a reuse under any prefix.
    let r = app
        .post_idem(
            "/api/v1/billing/payments",
            Auth::Admin,
            "gw-pay-1",
            json!({"invoice_id": invoice, "amount": "1.00", "method": "cash"}),
        )
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "idempotency_key_reused");
}

#[tokio::test]
async fn usage_recorded_under_one_prefix_is_replayed_under_another() {
    let app = TestApp::spawn().await;
    tenant_with_invoice(&app, "farm-use").await;
    let usage = json!({"metric": "satellite_analyses_per_month", "quantity": 2});
    let first = app
        .post_idem(
            "/v1/tenants/farm-use/usage",
            Auth::Service,
            "gw-use-1",
            usage.clone(),
        )
        .await;
    assert_status!(first, 201);
    let again = app
        .post_idem(
            "/api/v1/billing/tenants/farm-use/usage",
            Auth::Service,
            "gw-use-1",
            usage,
        )
        .await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let quota = app
        .get("/api/v1/billing/tenants/farm-use/quota", Auth::Service)
        .await;
    assert_eq!(
        quota.body["usage"]["satellite_analyses_per_month"]["used"],
        Value::from(2)
    );
}
