use crate::common;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Auth, TestApp, SERVICE_KEY};
use futures::future::join_all;
use serde_json::{json, Value};

/// The test clock: mid-period for the fixtures below.
fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A tenant with one subscription in period [2026-03-01, 2026-04-01), written directly.
async fn tenant_with(app: &TestApp, plan: &str, status: &str) -> String {
    let tid = format!("farm-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, 'Farm', 'مزرعة', 'f@example.com', '+967771234567')",
    )
    .bind(&tid)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, anchor_day,
             start_date, end_date, next_billing_date)
         VALUES ($1, $2, $3, $4::subscription_status, 'monthly', 1, $5, $6, $6)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&tid)
    .bind(plan)
    .bind(status)
    .bind(date(2026, 3, 1))
    .bind(date(2026, 4, 1))
    .execute(&app.pool)
    .await
    .unwrap();
    app.clock.set(at(2026, 3, 10, 12));
    tid
}

fn usage_path(t: &str) -> String {
    format!("/v1/tenants/{t}/usage")
}

async fn counter(app: &TestApp, t: &str, metric: &str, window: NaiveDate) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT used, peak FROM usage_counters WHERE tenant_id = $1 AND metric = $2 AND window_start = $3")
        .bind(t)
        .bind(metric)
        .bind(window)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

async fn record_count(app: &TestApp, t: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM usage_records WHERE tenant_id = $1")
        .bind(t)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn fifty_concurrent_requests_against_a_free_limit_of_ten_accept_exactly_ten() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let body = json!({"metric": "satellite_analyses_per_month", "quantity": 1});
    let path = usage_path(&t);
    let reqs = (0..50).map(|_| app.post(&path, Auth::TenantUser(t.clone()), body.clone()));
    let results = join_all(reqs).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let refused = results.iter().filter(|r| r.status.as_u16() == 429).count();
    assert_eq!(
        (created, refused),
        (10, 40),
        "statuses: {:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        counter(&app, &t, "satellite_analyses_per_month", date(2026, 3, 1)).await,
        Some((10, 10))
    );
    assert_eq!(record_count(&app, &t).await, 10);
    let refusal = results.iter().find(|r| r.status.as_u16() == 429).unwrap();
    assert_eq!(refusal.error_code(), "quota_exceeded");
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND event_type = 'quota.exceeded'",
    )
    .bind(&t)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // 40 refusals, one full window: one event (see `quota_exceeded_is_told_once_per_window`).
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_recorded_event_reports_used_limit_and_remaining() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 3}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["metric"], "satellite_analyses_per_month");
    assert_eq!(
        (
            r.body["used"].as_i64(),
            r.body["limit"].as_i64(),
            r.body["remaining"].as_i64()
        ),
        (Some(3), Some(10), Some(7))
    );
    assert_eq!(r.body["duplicate"], false);
    assert!(r.body["record_id"].is_string());

    let over = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 8}),
        )
        .await;
    assert_status!(over, 429);
    assert_eq!(
        (over.body["used"].as_i64(), over.body["limit"].as_i64()),
        (Some(3), Some(10))
    );
    assert_eq!(record_count(&app, &t).await, 1);
}

#[tokio::test]
async fn two_concurrent_copies_of_one_event_id_count_once() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let body = json!({"metric": "ai_diagnoses_per_month", "quantity": 2, "event_id": "evt-1"});
    let path = usage_path(&t);
    let rs = join_all((0..2).map(|_| app.post(&path, Auth::Service, body.clone()))).await;
    let mut codes: Vec<u16> = rs.iter().map(|r| r.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [200, 201]);
    let dup = rs.iter().find(|r| r.status.as_u16() == 200).unwrap();
    let first = rs.iter().find(|r| r.status.as_u16() == 201).unwrap();
    assert_eq!(dup.body["duplicate"], true);
    assert_eq!(dup.body["record_id"], first.body["record_id"]);
    assert_eq!(dup.body["used"], 2);
    assert_eq!(record_count(&app, &t).await, 1);
    assert_eq!(
        counter(&app, &t, "ai_diagnoses_per_month", date(2026, 3, 1)).await,
        Some((2, 2))
    );

    let later = app.post(&path, Auth::Service, body).await;
    assert_status!(later, 200);
    assert_eq!(later.body["duplicate"], true);
}

#[tokio::test]
async fn a_refused_event_id_leaves_no_row_and_can_be_retried_later() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let body = json!({"metric": "fields", "action": "set", "quantity": 4, "event_id": "lvl-1"});
    assert_status!(app.post(&usage_path(&t), Auth::Service, body).await, 429);
    assert_eq!(record_count(&app, &t).await, 0);
    let ok = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "fields", "action": "set", "quantity": 3, "event_id": "lvl-1"}),
        )
        .await;
    assert_status!(ok, 201);
}

#[tokio::test]
async fn a_billed_plan_accepts_usage_beyond_its_limit() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "past_due").await;
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "pdf_reports_per_month", "quantity": 12}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(
        (
            r.body["used"].as_i64(),
            r.body["limit"].as_i64(),
            r.body["remaining"].as_i64()
        ),
        (Some(12), Some(10), Some(0))
    );
    assert_eq!(r.body["overage"], true);
}

#[tokio::test]
async fn an_unlimited_metric_reports_limit_minus_one_and_no_remaining() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "enterprise", "trial").await;
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "fields", "quantity": 500}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["limit"], -1);
    assert!(r.body["remaining"].is_null());
}

#[tokio::test]
async fn a_gauge_is_set_moved_by_deltas_and_never_goes_negative() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let p = usage_path(&t);
    let set = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "fields", "action": "set", "quantity": 7}),
        )
        .await;
    assert_status!(set, 201);
    assert_eq!(set.body["used"], 7);
    let up = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "fields", "quantity": 2}),
        )
        .await;
    assert_eq!(up.body["used"], 9);
    let down = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "fields", "quantity": -20}),
        )
        .await;
    assert_status!(down, 201);
    assert_eq!(down.body["used"], 0);
    assert_eq!(
        counter(&app, &t, "fields", date(2026, 3, 1)).await,
        Some((0, 9))
    );
    let zero = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "fields", "quantity": 0}),
        )
        .await;
    assert_status!(zero, 422);
}

#[tokio::test]
async fn a_gauge_level_carries_into_the_next_period() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let p = usage_path(&t);
    assert_status!(
        app.post(
            &p,
            Auth::Service,
            json!({"metric": "team_members", "action": "set", "quantity": 2})
        )
        .await,
        201
    );
    app.clock.set(at(2026, 4, 3, 9));
    let r = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "team_members", "quantity": 1}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["used"], 3);
    assert_eq!(
        counter(&app, &t, "team_members", date(2026, 4, 1)).await,
        Some((3, 3))
    );
}

#[tokio::test]
async fn a_blocked_gauge_refuses_a_level_above_the_limit() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "fields", "action": "set", "quantity": 4}),
        )
        .await;
    assert_status!(r, 429);
    assert_eq!(r.error_code(), "quota_exceeded");
}

#[tokio::test]
async fn a_daily_counter_resets_at_the_next_utc_day() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let p = usage_path(&t);
    assert_status!(
        app.post(
            &p,
            Auth::Service,
            json!({"metric": "api_calls_per_day", "quantity": 100})
        )
        .await,
        201
    );
    assert_status!(
        app.post(
            &p,
            Auth::Service,
            json!({"metric": "api_calls_per_day", "quantity": 1})
        )
        .await,
        429
    );
    app.clock.set(at(2026, 3, 11, 0));
    let next = app
        .post(
            &p,
            Auth::Service,
            json!({"metric": "api_calls_per_day", "quantity": 1}),
        )
        .await;
    assert_status!(next, 201);
    assert_eq!(next.body["used"], 1);
}

#[tokio::test]
async fn bad_quantities_are_422() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    for q in [json!(0), json!(100_001), json!(1.5), json!("x"), json!(-1)] {
        let r = app
            .post(
                &usage_path(&t),
                Auth::Service,
                json!({"metric": "ai_diagnoses_per_month", "quantity": q}),
            )
            .await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "validation_error", "quantity {q}");
    }
    let set = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "ai_diagnoses_per_month", "action": "set", "quantity": 3}),
        )
        .await;
    assert_status!(set, 422);
    assert_eq!(record_count(&app, &t).await, 0);
}

#[tokio::test]
async fn unknown_and_malformed_metrics_are_422() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let unknown = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "drone_flights", "quantity": 1}),
        )
        .await;
    assert_status!(unknown, 422);
    assert_eq!(unknown.error_code(), "unknown_metric");
    let bad = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "INVALID-METRIC!", "quantity": 1}),
        )
        .await;
    assert_status!(bad, 422);
    assert_eq!(bad.error_code(), "validation_error");
    assert_eq!(bad.body["fields"][0]["field"], "metric");
    let e = app
        .get(
            "/v1/enforce?metric=drone_flights",
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_eq!(e.error_code(), "unknown_metric");
}

#[tokio::test]
async fn timestamps_in_the_future_or_before_the_period_and_bad_metadata_are_422() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let p = usage_path(&t);
    let base = |extra: Value| {
        let mut b = json!({"metric": "ai_diagnoses_per_month", "quantity": 1});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for extra in [
        json!({"timestamp": "2026-03-10T12:06:00Z"}),
        json!({"timestamp": "2026-02-28T23:59:59Z"}),
        json!({"timestamp": "yesterday"}),
        json!({"metadata": [1, 2]}),
        json!({"metadata": {"blob": "x".repeat(17_000)}}),
        json!({"event_id": ""}),
        json!({"action": "decrement"}),
    ] {
        let r = app.post(&p, Auth::Service, base(extra.clone())).await;
        assert_status!(r, 422);
    }
    let ok = app
        .post(
            &p,
            Auth::Service,
            base(json!({"timestamp": "2026-03-10T12:04:00+00:00", "metadata": {"field": "f1"}})),
        )
        .await;
    assert_status!(ok, 201);
    assert_eq!(ok.body["recorded_at"], "2026-03-10T12:04:00Z");
}

#[tokio::test]
async fn suspended_and_missing_subscriptions_are_402() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "suspended").await;
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "fields", "quantity": 1}),
        )
        .await;
    assert_status!(r, 402);
    assert_eq!(r.error_code(), "subscription_suspended");
    let e = app
        .get("/v1/enforce?metric=fields", Auth::TenantUser(t.clone()))
        .await;
    assert_status!(e, 402);
    assert_eq!(e.error_code(), "subscription_suspended");

    sqlx::query("UPDATE subscriptions SET status = 'canceled' WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app
        .post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "fields", "quantity": 1}),
        )
        .await;
    assert_status!(r, 402);
    assert_eq!(r.error_code(), "no_active_subscription");
    assert_eq!(record_count(&app, &t).await, 0);
}

#[tokio::test]
async fn another_tenants_token_sees_404_on_usage_and_quota() {
    let app = TestApp::spawn().await;
    let a = tenant_with(&app, "starter", "active").await;
    let b = tenant_with(&app, "starter", "active").await;
    let r = app
        .post(
            &usage_path(&b),
            Auth::TenantAdmin(a.clone()),
            json!({"metric": "fields", "quantity": 1}),
        )
        .await;
    assert_status!(r, 404);
    assert_status!(
        app.get(
            &format!("/v1/tenants/{b}/quota"),
            Auth::TenantUser(a.clone())
        )
        .await,
        404
    );
    assert_status!(
        app.post(
            &usage_path(&b),
            Auth::None,
            json!({"metric": "fields", "quantity": 1})
        )
        .await,
        401
    );
    assert_eq!(record_count(&app, &b).await, 0);
    assert_status!(app.get("/v1/tenants/nobody/quota", Auth::Admin).await, 404);
}

#[tokio::test]
async fn enforce_answers_for_the_tokens_tenant_and_for_a_service_naming_one() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    assert_status!(
        app.post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 4})
        )
        .await,
        201
    );

    let r = app
        .get(
            "/v1/enforce?metric=satellite_analyses_per_month&quantity=6",
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["allowed"], true);
    assert_eq!(r.body["tenant_id"], t.as_str());
    assert_eq!(
        (
            r.body["limit"].as_i64(),
            r.body["used"].as_i64(),
            r.body["remaining"].as_i64()
        ),
        (Some(10), Some(4), Some(6))
    );

    let svc = app
        .send(
            app.client
                .get(app.url("/api/v1/enforce?metric=satellite_analyses_per_month"))
                .header("x-tenant-id", &t),
            &Auth::Service,
        )
        .await;
    assert_status!(svc, 200);
    assert_eq!(svc.body["tenant_id"], t.as_str());

    // 400 as the Python service answered ("Missing x-tenant-id header"), in the envelope.
    let no_header = app.get("/v1/enforce?metric=fields", Auth::Service).await;
    assert_status!(no_header, 400);
    assert_eq!(no_header.error_code(), "missing_tenant_id");
    assert_eq!(no_header.field_names(), ["X-Tenant-Id"]);
    let raw = app
        .client
        .get(app.url("/v1/enforce?metric=fields"))
        .header("x-api-key", SERVICE_KEY)
        .header("x-tenant-id", "no such!");
    assert_status!(app.send(raw, &Auth::None).await, 422);
    // A tenant principal's header is ignored, but one that is not a tenant id is refused too.
    let bad = app
        .client
        .get(app.url("/v1/enforce?metric=fields"))
        .header("x-tenant-id", "{}");
    let bad = app.send(bad, &Auth::TenantUser(t.clone())).await;
    assert_status!(bad, 422);
    assert_eq!(bad.field_names(), ["X-Tenant-Id"]);
    assert_status!(
        app.get(
            "/v1/enforce?metric=fields&quantity=0",
            Auth::TenantUser(t.clone())
        )
        .await,
        422
    );
    assert_status!(
        app.get(
            "/v1/enforce?metric=fields&quantity=100001",
            Auth::TenantUser(t.clone())
        )
        .await,
        422
    );
    assert_status!(
        app.get("/v1/enforce", Auth::TenantUser(t.clone())).await,
        422
    );
    assert_status!(app.get("/v1/enforce?metric=fields", Auth::None).await, 401);
    // A key given twice keeps its last value; U+0000 is refused, naming the key.
    let twice = app
        .get(
            "/v1/enforce?metric=fields&metric=satellite_analyses_per_month&quantity=0&quantity=2",
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(twice, 200);
    assert_eq!(twice.body["metric"], "satellite_analyses_per_month");
    assert_eq!(twice.body["requested"], 2);
    let nul = app
        .get(
            "/v1/enforce?metric=fields%00&quantity=1",
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(nul, 422);
    assert_eq!(nul.body["fields"][0]["field"], "metric", "{}", nul.body);
    // Enforce never records.
    assert_eq!(
        counter(&app, &t, "satellite_analyses_per_month", date(2026, 3, 1)).await,
        Some((4, 4))
    );
}

#[tokio::test]
async fn enforce_over_a_blocked_limit_is_429_with_the_figures() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    assert_status!(
        app.post(
            &usage_path(&t),
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 9})
        )
        .await,
        201
    );
    let r = app
        .get(
            "/v1/enforce?metric=satellite_analyses_per_month&quantity=2",
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(r, 429);
    assert_eq!(r.error_code(), "quota_exceeded");
    assert_eq!(r.body["allowed"], false);
    assert_eq!(r.body["tenant_id"], t.as_str());
    assert_eq!(r.body["metric"], "satellite_analyses_per_month");
    assert_eq!(
        (
            r.body["limit"].as_i64(),
            r.body["used"].as_i64(),
            r.body["remaining"].as_i64()
        ),
        (Some(10), Some(9), Some(1))
    );
    assert!(r.body["message_ar"].is_string());

    let billed = tenant_with(&app, "starter", "active").await;
    let o = app
        .get(
            "/v1/enforce?metric=ai_diagnoses_per_month&quantity=21",
            Auth::TenantUser(billed),
        )
        .await;
    assert_status!(o, 200);
    assert_eq!(
        (o.body["allowed"].as_bool(), o.body["overage"].as_bool()),
        (Some(true), Some(true))
    );
}

#[tokio::test]
async fn the_quota_report_lists_every_metric_with_figures_and_percentage() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let p = usage_path(&t);
    assert_status!(
        app.post(
            &p,
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 3})
        )
        .await,
        201
    );
    assert_status!(
        app.post(
            &p,
            Auth::Service,
            json!({"metric": "fields", "action": "set", "quantity": 1})
        )
        .await,
        201
    );
    let r = app
        .get(
            &format!("/api/v1/tenants/{t}/quota"),
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["tenant_id"], t.as_str());
    assert_eq!(r.body["plan"], "Free");
    assert_eq!(r.body["plan_ar"], "مجاني");
    assert_eq!(r.body["subscription_status"], "active");
    assert_eq!(r.body["billing_cycle_ends"], "2026-04-01");
    let usage = r.body["usage"].as_object().unwrap();
    assert_eq!(usage.len(), 7);
    let sat = &usage["satellite_analyses_per_month"];
    assert_eq!(
        *sat,
        json!({"limit": 10, "used": 3, "remaining": 7, "percentage": 30.0, "kind": "period_counter",
               "overage_units": 0, "overage_amount": "0.00"})
    );
    assert_eq!(usage["fields"]["percentage"], 33.3);
    assert_eq!(usage["fields"]["kind"], "gauge");
    assert_eq!(usage["ai_diagnoses_per_month"]["limit"], 0);
    assert_eq!(usage["api_calls_per_day"]["used"], 0);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_usage_response() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let body = json!({"metric": "ai_diagnoses_per_month", "quantity": 2});
    let first = app
        .post_idem(&usage_path(&t), Auth::Service, "k-1", body.clone())
        .await;
    assert_status!(first, 201);
    let again = app
        .post_idem(
            &format!("/api{}", usage_path(&t)),
            Auth::Service,
            "k-1",
            body,
        )
        .await;
    assert_status!(again, 201);
    assert_eq!(again.body["record_id"], first.body["record_id"]);
    assert!(again.headers.contains_key("idempotent-replayed"));
    assert_eq!(record_count(&app, &t).await, 1);
    let other = app
        .post_idem(
            &usage_path(&t),
            Auth::Service,
            "k-1",
            json!({"metric": "fields", "quantity": 1}),
        )
        .await;
    assert_status!(other, 409);
}

/// A NUL in a metadata key is a 422 naming the key (the NUL shown as `\u0000`), with or without
/// an Idempotency-Key, every time: nothing is stored, and the key stays free for the fixed event.
#[tokio::test]
async fn a_nul_in_a_metadata_key_is_422_with_or_without_an_idempotency_key() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let bad = json!({"metric": "ai_diagnoses_per_month", "quantity": 1, "event_id": "nul-1",
        "metadata": {"farm\u{0}id": "f-1"}});
    let plain = app.post(&usage_path(&t), Auth::Service, bad.clone()).await;
    for _ in 0..2 {
        let keyed = app
            .post_idem(&usage_path(&t), Auth::Service, "nul-k", bad.clone())
            .await;
        for r in [&plain, &keyed] {
            assert_status!(r, 422);
            assert_eq!(r.error_code(), "validation_error");
            assert_eq!(r.body["fields"][0]["field"], "metadata.farm\\u0000id");
            assert!(!billing_core::storable::has_nul(&r.body), "{}", r.body);
        }
    }
    assert_eq!(record_count(&app, &t).await, 0);
    let mut good = bad;
    good["metadata"] = json!({"farm_id": "f-1"});
    let r = app
        .post_idem(&usage_path(&t), Auth::Service, "nul-k", good)
        .await;
    assert_status!(r, 201);
    assert_eq!(record_count(&app, &t).await, 1);
}

/// The write path may start from the cached plan/subscription state, but a change made behind
/// this process's back (another replica, an operator) is never written against: the write
/// statement compares the cached state with the database and re-reads it on a mismatch.
#[tokio::test]
async fn a_write_never_uses_a_subscription_state_changed_behind_its_back() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let path = usage_path(&t);
    let one = json!({"metric": "satellite_analyses_per_month", "quantity": 1});
    // Caches the free plan's context (limit 10, blocked).
    assert_status!(app.post(&path, Auth::Service, one.clone()).await, 201);

    let set = |sql: &'static str| {
        let (pool, t) = (app.pool.clone(), t.clone());
        async move {
            sqlx::query(sql).bind(t).execute(&pool).await.unwrap();
        }
    };
    set("UPDATE subscriptions SET status = 'suspended' WHERE tenant_id = $1").await;
    let r = app.post(&path, Auth::Service, one.clone()).await;
    assert_status!(r, 402);
    assert_eq!(r.error_code(), "subscription_suspended");

    // Back to active on a bigger plan: 20 more fit under starter's 50, not under free's 10.
    set("UPDATE subscriptions SET status = 'active', plan_id = 'starter' WHERE tenant_id = $1")
        .await;
    let r = app
        .post(
            &path,
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 20}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(
        (r.body["used"].as_i64(), r.body["limit"].as_i64()),
        (Some(21), Some(50))
    );

    // And back down to free: the next unit is refused with free's figures, nothing stored.
    set("UPDATE subscriptions SET plan_id = 'free' WHERE tenant_id = $1").await;
    let r = app.post(&path, Auth::Service, one.clone()).await;
    assert_status!(r, 429);
    assert_eq!(
        (r.body["used"].as_i64(), r.body["limit"].as_i64()),
        (Some(21), Some(10))
    );
    assert_eq!(record_count(&app, &t).await, 2);
}

/// A refusal inside an Idempotency-Key transaction leaves neither a record nor the key: the
/// same key and body are refused again (not replayed as in progress), and accepted once the
/// quota allows.
#[tokio::test]
async fn a_refused_write_under_an_idempotency_key_leaves_the_key_free() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let path = usage_path(&t);
    let body = json!({"metric": "satellite_analyses_per_month", "quantity": 11});
    for _ in 0..2 {
        let r = app
            .post_idem(&path, Auth::Service, "usage-key-1", body.clone())
            .await;
        assert_status!(r, 429);
        assert_eq!(r.error_code(), "quota_exceeded");
    }
    assert_eq!(record_count(&app, &t).await, 0);
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 0);
}

/// Once the tenant's context is cached, events on a plan that bills overage are written by the
/// group-commit writer: many at once land in shared flushes, and still every event is stored
/// once, the counter is exact, and each answer's `used` is a distinct level from 1 to N.
#[tokio::test]
async fn concurrent_events_written_together_each_report_their_own_level() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let path = usage_path(&t);
    let metric = "ai_diagnoses_per_month";
    // Warm the context cache (the first event takes the one-event path).
    let first = app
        .post(
            &path,
            Auth::Service,
            json!({"metric": metric, "event_id": "e-0"}),
        )
        .await;
    assert_status!(first, 201);

    let n = 120;
    let rs = join_all((1..=n).map(|i| {
        let body = json!({"metric": metric, "event_id": format!("e-{i}")});
        app.post(&path, Auth::Service, body)
    }))
    .await;
    let mut levels: Vec<i64> = rs
        .iter()
        .map(|r| {
            assert_status!(r, 201);
            assert_eq!(r.body["limit"], 20);
            r.body["used"].as_i64().unwrap()
        })
        .collect();
    levels.sort();
    assert_eq!(levels, (2..=n + 1).collect::<Vec<_>>());
    assert_eq!(record_count(&app, &t).await, n + 1);
    // They went through the writer, several to a flush.
    let metrics = app.get("/metrics", Auth::None).await.body;
    let metrics = metrics.as_str().expect("prometheus text");
    let figure = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let (flushes, flushed) = (
        figure("billing_usage_flushes_total"),
        figure("billing_usage_flushed_events_total"),
    );
    assert!(flushed >= n as f64, "flushed {flushed} events");
    assert!(flushes < flushed, "{flushes} flushes for {flushed} events");
    assert_eq!(
        counter(&app, &t, metric, date(2026, 3, 1)).await,
        Some((n + 1, n + 1))
    );

    // Copies of one new event racing, and replays of stored ones: one effect each.
    let copies = join_all((0..10).map(|_| {
        app.post(
            &path,
            Auth::Service,
            json!({"metric": metric, "quantity": 5, "event_id": "e-dup"}),
        )
    }))
    .await;
    let created = copies.iter().filter(|r| r.status.as_u16() == 201).count();
    let duplicates = copies
        .iter()
        .filter(|r| r.status.as_u16() == 200 && r.body["duplicate"] == true)
        .count();
    assert_eq!((created, duplicates), (1, 9));
    let replay = app
        .post(
            &path,
            Auth::Service,
            json!({"metric": metric, "event_id": "e-7"}),
        )
        .await;
    assert_status!(replay, 200);
    assert_eq!(replay.body["duplicate"], true);
    assert_eq!(
        counter(&app, &t, metric, date(2026, 3, 1)).await,
        Some((n + 6, n + 6))
    );
    assert_eq!(record_count(&app, &t).await, n + 2);
}

/// A cached context that allowed group commit (a billed plan) is not trusted after the plan
/// changed behind this process's back: the event falls back to the one-event path, which sees
/// the blocked free plan and refuses.
#[tokio::test]
async fn a_plan_changed_to_a_blocking_one_is_seen_by_the_next_event() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let path = usage_path(&t);
    let body = json!({"metric": "satellite_analyses_per_month", "quantity": 6});
    assert_status!(app.post(&path, Auth::Service, body.clone()).await, 201);
    assert_status!(app.post(&path, Auth::Service, body.clone()).await, 201);
    sqlx::query("UPDATE subscriptions SET plan_id = 'free' WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app.post(&path, Auth::Service, body).await;
    assert_status!(r, 429);
    assert_eq!(
        (r.body["used"].as_i64(), r.body["limit"].as_i64()),
        (Some(12), Some(10))
    );
    assert_eq!(record_count(&app, &t).await, 2);
}

async fn quota_events(app: &TestApp, t: &str) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE tenant_id = $1 AND event_type = 'quota.exceeded'
         ORDER BY seq",
    )
    .bind(t)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Refusals in a full window, racing on two replicas (with and without an Idempotency-Key),
/// write one `quota.exceeded` event between them; the next window's first refusal writes the
/// next; every refusal is still counted in the metrics. Enforce never writes one.
#[tokio::test]
async fn quota_exceeded_is_told_once_per_window() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    let t = tenant_with(&a, "free", "active").await;
    b.clock.set(at(2026, 3, 10, 12));
    let metric = "satellite_analyses_per_month";
    let path = usage_path(&t);
    let fill = json!({"metric": metric, "quantity": 10});
    assert_status!(a.post(&path, Auth::Service, fill.clone()).await, 201);
    let blocked_before = blocked_count(&a).await;

    let one = json!({"metric": metric, "quantity": 1});
    let requests = (0..200).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let body = one.clone();
        let path = path.clone();
        async move {
            if i % 5 == 0 {
                app.post_idem(&path, Auth::Service, &format!("q-{i}"), body)
                    .await
            } else {
                app.post(&path, Auth::Service, body).await
            }
        }
    });
    for r in join_all(requests).await {
        assert_status!(r, 429);
    }
    let enforce = format!("/v1/enforce?metric={metric}&quantity=5");
    for _ in 0..20 {
        let r = a.get(&enforce, Auth::TenantUser(t.clone())).await;
        assert_status!(r, 429);
    }
    let events = quota_events(&a, &t).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["metric"], metric);
    assert_eq!(events[0]["window_start"], "2026-03-01");
    assert_eq!(events[0]["limit"], 10);
    assert_eq!(events[0]["used"], 10);
    // Both replicas share one process here, so one metrics registry: all 200 were counted.
    assert!(blocked_count(&a).await - blocked_before >= 200.0);

    // April: a new window, a new event on its first refusal only.
    for app in [&a, &b] {
        app.clock.set(at(2026, 4, 3, 9));
    }
    assert_status!(a.post(&path, Auth::Service, fill).await, 201);
    for app in [&a, &b, &a] {
        assert_status!(app.post(&path, Auth::Service, one.clone()).await, 429);
    }
    let events = quota_events(&a, &t).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["window_start"], "2026-04-01");
}

async fn blocked_count(app: &TestApp) -> f64 {
    let text = app.get("/metrics", Auth::None).await.body;
    text.as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with(r#"billing_usage_events_total{outcome="blocked"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_documented_gauge_metrics_are_the_database_ones() {
    let app = TestApp::spawn().await;
    let gauges: Vec<String> =
        sqlx::query_scalar("SELECT metric FROM metrics WHERE kind = 'gauge' ORDER BY metric")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        gauges,
        billing_core::http::dto::usage_schemas::GAUGE_METRICS
    );
}
