//! Redeeming coupons on subscriptions (SPEC section 10): the refusals, one coupon per
//! subscription, and `max_redemptions` under racing redemptions.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{Auth, Sub, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

fn set_today(app: &TestApp) {
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 10, 9, 0, 0).unwrap());
}

async fn coupon(app: &TestApp, body: Value) {
    let mut full = json!({"name": "Promotion", "name_ar": "عرض", "duration": "once"});
    for (k, v) in body.as_object().unwrap() {
        full[k] = v.clone();
    }
    if full.get("percent_off").is_none() && full.get("amount_off").is_none() {
        full["percent_off"] = json!("10");
    }
    let r = app.post("/v1/coupons", Auth::Admin, full).await;
    assert_status!(r, 201);
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

fn path(tenant: &str) -> String {
    format!("/v1/tenants/{tenant}/subscription/coupon")
}

#[tokio::test]
async fn a_redemption_is_counted_once_evented_audited_and_retries_change_nothing() {
    let app = TestApp::spawn().await;
    set_today(&app);
    coupon(
        &app,
        json!({"code": "SEASON", "duration": "repeating", "duration_periods": 3}),
    )
    .await;
    coupon(&app, json!({"code": "OTHER"})).await;
    let tenant = common::tenant_with(&app.pool, Sub::default()).await;
    let r = app
        .post(
            &path(&tenant),
            Auth::TenantAdmin(tenant.clone()),
            json!({"code": "SEASON"}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["tenant_id"], tenant.as_str());
    let d = &r.body["discount"];
    assert_eq!(d["code"], "SEASON");
    assert_eq!(d["percent_off"], "10.00");
    assert_eq!(d["duration"], "repeating");
    assert_eq!(d["redeemed_on"], "2025-02-10");
    // Redeemed mid-period: the periods from 28 Feb, anchored on the 31st, three of them.
    assert_eq!(d["ends_after_period"], "2025-05-31");

    let read = app
        .get(
            &format!("/v1/tenants/{tenant}/subscription"),
            Auth::TenantUser(tenant.clone()),
        )
        .await;
    assert_status!(read, 200);
    assert_eq!(read.body["discount"], *d);
    let again = app
        .post(
            &path(&tenant),
            Auth::TenantAdmin(tenant.clone()),
            json!({"code": "SEASON"}),
        )
        .await;
    assert_status!(again, 200);
    assert_eq!(again.body, r.body);
    let other = app
        .post(&path(&tenant), Auth::Admin, json!({"code": "OTHER"}))
        .await;
    assert_status!(other, 409);
    assert_eq!(other.body["error"], "coupon_already_applied");

    let got = app.get("/v1/coupons/SEASON", Auth::Admin).await;
    assert_eq!(got.body["coupon"]["times_redeemed"], 1);
    assert_eq!(
        scalar(
            &app,
            "SELECT times_redeemed::bigint FROM coupons WHERE code = 'OTHER'"
        )
        .await,
        0
    );
    let payloads: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'coupon.redeemed'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0]["coupon_code"], "SEASON");
    assert_eq!(payloads[0]["tenant_id"], tenant.as_str());
    assert_eq!(payloads[0]["duration_periods"], 3);
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'coupon.redeemed'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn each_refusal_has_its_code_and_writes_nothing() {
    let app = TestApp::spawn().await;
    set_today(&app);
    coupon(&app, json!({"code": "ARCHIVED"})).await;
    assert_status!(app.delete("/v1/coupons/ARCHIVED", Auth::Admin).await, 200);
    coupon(&app, json!({"code": "LASTWEEK", "redeem_by": "2025-02-10"})).await;
    coupon(
        &app,
        json!({"code": "PROONLY", "plan_ids": ["professional"]}),
    )
    .await;
    coupon(
        &app,
        json!({"code": "RIALS", "amount_off": "500", "currency": "YER"}),
    )
    .await;
    coupon(&app, json!({"code": "ONEONLY", "max_redemptions": 1})).await;
    let first = common::tenant_with(&app.pool, Sub::default()).await;
    assert_status!(
        app.post(&path(&first), Auth::Admin, json!({"code": "ONEONLY"}))
            .await,
        201
    );
    // The redeem_by day itself still counts; the day after does not.
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 11, 0, 0, 0).unwrap());
    let tenant = common::tenant_with(&app.pool, Sub::default()).await;
    let before = scalar(&app, "SELECT count(*) FROM coupon_redemptions").await;
    for (code, error) in [
        ("NOSUCH", "coupon_not_found"),
        ("ARCHIVED", "coupon_expired"),
        ("LASTWEEK", "coupon_expired"),
        ("PROONLY", "coupon_not_applicable"),
        ("RIALS", "coupon_currency_mismatch"),
        ("ONEONLY", "coupon_exhausted"),
    ] {
        let r = app
            .post(
                &path(&tenant),
                Auth::TenantAdmin(tenant.clone()),
                json!({"code": code}),
            )
            .await;
        assert_status!(r, 422);
        assert_eq!(r.body["error"], error, "{code}");
        assert!(r.body["message_ar"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM coupon_redemptions").await,
        before
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT coalesce(sum(times_redeemed), 0)::bigint FROM coupons"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'coupon.redeemed'"
        )
        .await,
        1
    );
    let bad = app
        .post(
            &path(&tenant),
            Auth::Admin,
            json!({"code": "ONEONLY", "extra": 1}),
        )
        .await;
    assert_status!(bad, 422);
}

#[tokio::test]
async fn fifty_racing_redemptions_of_five_left_get_five() {
    let app = TestApp::spawn().await;
    set_today(&app);
    coupon(&app, json!({"code": "FIRSTFIVE", "max_redemptions": 5})).await;
    let mut tenants = vec![];
    for _ in 0..50 {
        tenants.push(common::tenant_with(&app.pool, Sub::default()).await);
    }
    let paths: Vec<String> = tenants.iter().map(|t| path(t)).collect();
    let answers = join_all(tenants.iter().zip(&paths).map(|(t, p)| {
        app.post(
            p,
            Auth::TenantAdmin(t.clone()),
            json!({"code": "FIRSTFIVE"}),
        )
    }))
    .await;
    let won = answers.iter().filter(|r| r.status.as_u16() == 201).count();
    let exhausted = answers
        .iter()
        .filter(|r| r.status.as_u16() == 422 && r.body["error"] == "coupon_exhausted")
        .count();
    assert_eq!(
        (won, exhausted),
        (5, 45),
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT times_redeemed::bigint FROM coupons WHERE code = 'FIRSTFIVE'"
        )
        .await,
        5
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM coupon_redemptions").await,
        5
    );
    let got = app.get("/v1/coupons/FIRSTFIVE", Auth::Admin).await;
    assert_eq!(got.body["coupon"]["valid"], false);
}

#[tokio::test]
async fn a_coupon_comes_off_and_a_tenant_reaches_only_its_own_subscription() {
    let app = TestApp::spawn().await;
    set_today(&app);
    coupon(&app, json!({"code": "FOREVER10", "duration": "forever"})).await;
    let a = common::tenant_with(&app.pool, Sub::default()).await;
    let b = common::tenant_with(&app.pool, Sub::default()).await;
    let cross = app
        .post(
            &path(&b),
            Auth::TenantAdmin(a.clone()),
            json!({"code": "FOREVER10"}),
        )
        .await;
    assert_status!(cross, 404);
    let user = app
        .post(
            &path(&a),
            Auth::TenantUser(a.clone()),
            json!({"code": "FOREVER10"}),
        )
        .await;
    assert_status!(user, 403);
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM coupon_redemptions").await,
        0
    );

    let r = app
        .post(
            &path(&a),
            Auth::TenantAdmin(a.clone()),
            json!({"code": "FOREVER10"}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["discount"]["ends_after_period"], Value::Null);
    assert_status!(
        app.delete(&path(&b), Auth::TenantAdmin(a.clone())).await,
        404
    );
    let off = app.delete(&path(&a), Auth::TenantAdmin(a.clone())).await;
    assert_status!(off, 200);
    assert_eq!(off.body["removed"]["code"], "FOREVER10");
    assert_status!(
        app.delete(&path(&a), Auth::TenantAdmin(a.clone())).await,
        404
    );
    // Taken off, it still counts as redeemed; the subscription may take a coupon again.
    let got = app.get("/v1/coupons/FOREVER10", Auth::Admin).await;
    assert_eq!(got.body["coupon"]["times_redeemed"], 1);
    let again = app
        .post(
            &path(&a),
            Auth::TenantAdmin(a.clone()),
            json!({"code": "FOREVER10"}),
        )
        .await;
    assert_status!(again, 201);
    let none = app
        .post(
            "/v1/tenants/nobody/subscription/coupon",
            Auth::Admin,
            json!({"code": "FOREVER10"}),
        )
        .await;
    assert_status!(none, 404);
}
