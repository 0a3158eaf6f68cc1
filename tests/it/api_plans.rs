use crate::common;

use chrono::Datelike;
use common::{Auth, TestApp};
use serde_json::json;

#[tokio::test]
async fn the_seeded_catalogue_is_listed_with_string_prices() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/plans", Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["total"], 4);
    assert_eq!(r.body["has_more"], false);
    let plans = r.body["plans"].as_array().unwrap();
    let ids: Vec<&str> = plans
        .iter()
        .map(|p| p["plan_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["free", "starter", "professional", "enterprise"]);
    let starter = &plans[1];
    assert_eq!(starter["pricing"]["monthly_usd"], "29.00");
    assert_eq!(starter["pricing"]["quarterly_usd"], "79.00");
    assert_eq!(starter["pricing"]["yearly_usd"], "290.00");
    assert_eq!(starter["pricing"]["monthly_yer"], "7250.00");
    assert_eq!(starter["limits"]["fields"], 10);
    assert_eq!(starter["trial_days"], 14);
    assert_eq!(plans[3]["limits"]["fields"], -1);
    assert_eq!(plans[0]["overage"], "blocked");
}

#[tokio::test]
async fn both_prefixes_serve_the_same_plan() {
    let app = TestApp::spawn().await;
    let a = app.get("/v1/plans/professional", Auth::None).await;
    let b = app.get("/api/v1/plans/professional", Auth::None).await;
    assert_status!(a, 200);
    assert_eq!(a.body, b.body);
    assert_eq!(a.body["pricing_yer"]["monthly"], "24750.00");
    assert!(a.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn a_missing_plan_is_404_in_the_envelope() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/plans/nope", Auth::None).await;
    assert_status!(r, 404);
    assert_eq!(r.error_code(), "not_found");
    assert!(r.body["message_ar"].is_string());
    assert!(r.body["detail"].is_string());
    assert_eq!(
        r.body["request_id"].as_str().unwrap(),
        r.headers["x-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn super_admin_creates_a_plan_with_default_cycle_prices() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "Coop Plus", "name_ar": "تعاونية بلس", "description": "For cooperatives",
        "description_ar": "للجمعيات", "tier": "professional", "monthly_price_usd": "99.99",
        "limits": {"fields": 80}, "features": [{"name": "Fields", "name_ar": "الحقول", "included": true, "limit": 80}]
    });
    let r = app.post("/v1/plans", Auth::Admin, body.clone()).await;
    assert_status!(r, 201);
    let plan = &r.body["plan"];
    assert_eq!(plan["plan_id"], "coop_plus");
    assert_eq!(plan["pricing"]["quarterly_usd"], "269.97");
    assert_eq!(plan["pricing"]["yearly_usd"], "999.90");
    assert_eq!(plan["trial_days"], 14);
    assert_eq!(plan["limits"]["fields"], 80);

    let dup = app.post("/v1/plans", Auth::Admin, body).await;
    assert_status!(dup, 409);
    assert_eq!(dup.error_code(), "already_exists");
}

#[tokio::test]
async fn plan_writes_need_super_admin() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "X", "name_ar": "س", "description": "d", "description_ar": "د",
                      "tier": "starter", "monthly_price_usd": 5});
    assert_status!(app.post("/v1/plans", Auth::None, body.clone()).await, 401);
    assert_status!(
        app.post("/v1/plans", Auth::TenantAdmin("t1".into()), body.clone())
            .await,
        403
    );
    assert_status!(app.post("/v1/plans", Auth::Service, body).await, 403);
}

#[tokio::test]
async fn bad_plan_input_is_422_naming_the_fields_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/plans",
            Auth::Admin,
            json!({"name": "", "name_ar": "س", "description": "d",
            "description_ar": "د", "tier": "starter", "monthly_price_usd": "5", "trial_days": 400,
            "limits": {"bogus_metric": 3}}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "validation_error");
    let fields: Vec<&str> = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"name")
            && fields.contains(&"trial_days")
            && fields.contains(&"limits.bogus_metric"),
        "{fields:?}"
    );

    let wrong_type = app
        .post(
            "/v1/plans",
            Auth::Admin,
            json!({"name": "A", "name_ar": "س", "description": "d",
            "description_ar": "د", "tier": "gold", "monthly_price_usd": "5"}),
        )
        .await;
    assert_status!(wrong_type, 422);
    assert_eq!(wrong_type.body["fields"][0]["field"], "tier");

    let money = app
        .post(
            "/v1/plans",
            Auth::Admin,
            json!({"name": "A", "name_ar": "س", "description": "d",
            "description_ar": "د", "tier": "starter", "monthly_price_usd": "5.001"}),
        )
        .await;
    assert_status!(money, 422);

    // Feature members are what the document says they are.
    let feature = app
        .post(
            "/v1/plans",
            Auth::Admin,
            json!({"name": "A", "name_ar": "س", "description": "d",
            "description_ar": "د", "tier": "starter", "monthly_price_usd": "5",
            "features": [{"name": "Fields", "name_ar": {}, "included": "yes", "colour": "red"},
                         {"name": "Plots", "limit": 131594.0}, {"limit": 2.5}]}),
        )
        .await;
    assert_status!(feature, 422);
    let fields: Vec<&str> = feature.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "features[0].colour",
            "features[0].included",
            "features[0].name_ar",
            "features[2].limit"
        ]
    );

    let malformed = app.post_raw("/v1/plans", Auth::Admin, "{\"name\": ").await;
    assert_status!(malformed, 422);
    assert_eq!(malformed.error_code(), "validation_error");

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM plans")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 4);
}

#[tokio::test]
async fn archiving_hides_a_plan_from_the_default_list() {
    let app = TestApp::spawn().await;
    let r = app.delete("/v1/plans/starter", Auth::Admin).await;
    assert_status!(r, 200);
    assert_eq!(r.body["plan"]["is_active"], false);
    let list = app.get("/v1/plans", Auth::None).await;
    assert_eq!(list.body["total"], 3);
    let all = app.get("/v1/plans?active_only=false", Auth::None).await;
    assert_eq!(all.body["total"], 4);
    let patched = app
        .patch(
            "/v1/plans/starter",
            Auth::Admin,
            json!({"is_active": true, "monthly_price_usd": "31"}),
        )
        .await;
    assert_status!(patched, 200);
    assert_eq!(patched.body["plan"]["pricing"]["monthly_usd"], "31.00");
}

#[tokio::test]
async fn pagination_walks_the_catalogue_with_a_cursor() {
    let app = TestApp::spawn().await;
    let p1 = app.get("/v1/plans?limit=3", Auth::None).await;
    assert_eq!(p1.body["plans"].as_array().unwrap().len(), 3);
    assert_eq!(p1.body["has_more"], true);
    assert_eq!(p1.body["total"], 4);
    let p2 = app
        .get("/v1/plans?limit=3&starting_after=professional", Auth::None)
        .await;
    assert_eq!(p2.body["plans"][0]["plan_id"], "enterprise");
    assert_eq!(p2.body["has_more"], false);
    assert_status!(app.get("/v1/plans?limit=0", Auth::None).await, 422);
    assert_status!(app.get("/v1/plans?limit=101", Auth::None).await, 422);
    // One value per parameter: a repeated one is refused, not read as its last value.
    let twice = app.get("/v1/plans?limit=3&limit=", Auth::None).await;
    assert_status!(twice, 422);
    assert_eq!(twice.body["fields"][0]["field"], "limit");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/nothing-here", Auth::None).await;
    assert_status!(r, 404);
    assert_eq!(r.error_code(), "not_found");
    let m = app
        .send(app.client.put(app.url("/v1/plans")), &Auth::None)
        .await;
    assert_status!(m, 405);
    assert_eq!(m.error_code(), "method_not_allowed");
}

#[tokio::test]
async fn health_and_readiness_report_the_database() {
    let app = TestApp::spawn().await;
    let h = app.get("/healthz", Auth::None).await;
    assert_status!(h, 200);
    assert_eq!(h.body["service"], "billing-core");
    assert_eq!(h.body["database"]["status"], "connected");
    let r = app.get("/readyz", Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["status"], "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_after_traffic() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.get("/v1/plans/starter", Auth::None).await;
    }
    app.get("/api/v1/plans/nope", Auth::None).await;
    let r = app.get("/metrics", Auth::None).await;
    assert_status!(r, 200);
    let text = r.body.as_str().expect("prometheus text");
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains(r#"route="/v1/plans/{plan_id}""#), "{text}");
    assert!(
        text.contains(r#"route="/api/v1/plans/{plan_id}",status="404""#)
            || text.contains(r#"status="404""#),
        "{text}"
    );
    // Every request is counted, not only the first of its series.
    let starter_ok = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/v1/plans/{plan_id}""#)
                && l.contains(r#"status="200""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(starter_ok.is_some_and(|n| n >= 3.0), "{text}");
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("db_pool_connections"));
    assert!(text.contains("billing_outbox_backlog"));
    assert!(
        !text.contains("/v1/plans/starter"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn metrics_count_usage_outcomes_and_payments_by_method() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now().date_naive();
    let start = now.with_day(1).unwrap();
    let end = billing_core::billing::period::period_end(
        start,
        1,
        billing_core::billing::types::BillingCycle::Monthly,
    );
    let (s, e) = (start.to_string(), end.to_string());
    let free = common::tenant_with(
        &app.pool,
        common::Sub {
            plan: "free",
            start: &s,
            end: &e,
            anchor: 1,
            ..Default::default()
        },
    )
    .await;
    let usage = format!("/v1/tenants/{free}/usage");
    let one = json!({"metric": "satellite_analyses_per_month", "quantity": 1, "event_id": "e-1"});
    assert_status!(app.post(&usage, Auth::Service, one.clone()).await, 201);
    assert_status!(app.post(&usage, Auth::Service, one).await, 200);
    let over = json!({"metric": "satellite_analyses_per_month", "quantity": 50});
    assert_status!(app.post(&usage, Auth::Service, over).await, 429);

    let paid = common::tenant_with(
        &app.pool,
        common::Sub {
            start: &s,
            end: &e,
            anchor: 1,
            ..Default::default()
        },
    )
    .await;
    let inv = app
        .post(
            &format!("/v1/tenants/{paid}/invoices/generate"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(inv, 201);
    let pay = json!({"invoice_id": inv.body["invoice"]["invoice_id"], "amount": "29.00", "method": "cash"});
    assert_status!(app.post("/v1/payments", Auth::Admin, pay).await, 201);

    let text = app
        .get("/metrics", Auth::None)
        .await
        .body
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        r#"billing_usage_events_total{outcome="accepted"} 1"#,
        r#"billing_usage_events_total{outcome="duplicate"} 1"#,
        r#"billing_usage_events_total{outcome="blocked"} 1"#,
        r#"billing_payments_total{method="cash",event="created"} 1"#,
        r#"billing_payments_total{method="cash",event="succeeded"} 1"#,
        "billing_invoices_issued_total",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn limits_naming_an_unknown_metric_are_422_unknown_metric_on_create_and_update() {
    let app = TestApp::spawn().await;
    let plan = |limits: serde_json::Value| {
        json!({"plan_id": "orchard", "name": "Orchard", "name_ar": "البستان", "description": "d",
               "description_ar": "د", "tier": "starter", "monthly_price_usd": "5", "limits": limits})
    };
    let r = app
        .post(
            "/v1/plans",
            Auth::Admin,
            plan(json!({"fields": 3, "bogus_metric": 3})),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "unknown_metric", "{}", r.body);
    assert_eq!(r.body["metric"], "bogus_metric");
    assert_eq!(r.field_names(), ["limits.bogus_metric"]);
    assert!(r.body["message_ar"].is_string() && r.body["request_id"].is_string());
    let plans: i64 = sqlx::query_scalar("SELECT count(*) FROM plans")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(plans, 4, "nothing written");

    assert_status!(
        app.post("/v1/plans", Auth::Admin, plan(json!({"fields": 3})))
            .await,
        201
    );
    let r = app
        .patch(
            "/v1/plans/orchard",
            Auth::Admin,
            json!({"limits": {"fields": 9, "made_up": 1, "also_made_up": -1}}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "unknown_metric", "{}", r.body);
    assert_eq!(r.body["metrics"], json!(["also_made_up", "made_up"]));
    assert_eq!(r.field_names(), ["limits.also_made_up", "limits.made_up"]);
    let limit: i64 = sqlx::query_scalar(
        "SELECT limit_value FROM plan_limits WHERE plan_id = 'orchard' AND metric = 'fields'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(limit, 3, "the update wrote nothing");
}
