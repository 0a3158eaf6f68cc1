//! Coupons (SPEC section 10): create, list, read, archive, over real HTTP on a real database.

use crate::common;

use chrono::{TimeZone, Utc};
use common::{Auth, TestApp};
use serde_json::{json, Value};

fn set_today(app: &TestApp) {
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
}

fn season() -> Value {
    json!({
        "code": "SEASON15",
        "name": "Planting season",
        "name_ar": "موسم الزراعة",
        "percent_off": 15,
        "duration": "repeating",
        "duration_periods": 3,
        "plan_ids": ["starter", "professional"],
        "max_redemptions": 50,
        "redeem_by": "2026-04-30"
    })
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn coupon_rows(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM coupons").await
}

#[tokio::test]
async fn a_coupon_is_created_read_listed_and_audited() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app.post("/v1/coupons", Auth::Admin, season()).await;
    assert_status!(r, 201);
    let c = &r.body["coupon"];
    assert_eq!(c["code"], "SEASON15");
    assert_eq!(c["percent_off"], "15.00");
    assert_eq!(c["amount_off"], Value::Null);
    assert_eq!(c["currency"], Value::Null);
    assert_eq!(c["duration"], "repeating");
    assert_eq!(c["duration_periods"], 3);
    assert_eq!(c["plan_ids"], json!(["starter", "professional"]));
    assert_eq!(c["max_redemptions"], 50);
    assert_eq!(c["redeem_by"], "2026-04-30");
    assert_eq!(c["times_redeemed"], 0);
    assert_eq!(c["valid"], true);
    assert_eq!(c["archived"], false);

    let got = app.get("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_status!(got, 200);
    assert_eq!(got.body["coupon"], *c);
    let list = app.get("/v1/coupons", Auth::Admin).await;
    assert_status!(list, 200);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["has_more"], false);
    assert_eq!(list.body["coupons"][0], *c);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'coupon.created' AND target_id = 'SEASON15'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn an_amount_coupon_carries_its_currency() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app
        .post(
            "/v1/coupons",
            Auth::Admin,
            json!({"code": "COOP-5", "name": "Cooperative", "name_ar": "تعاونية",
                   "amount_off": "5.5", "currency": "yer", "duration": "forever"}),
        )
        .await;
    assert_status!(r, 201);
    let c = &r.body["coupon"];
    assert_eq!(c["amount_off"], "5.50");
    assert_eq!(c["currency"], "YER");
    assert_eq!(c["percent_off"], Value::Null);
    assert_eq!(c["duration_periods"], Value::Null);
    assert_eq!(c["plan_ids"], json!([]));
    assert_eq!(c["redeem_by"], Value::Null);
}

#[tokio::test]
async fn a_code_in_use_is_a_conflict_even_once_archived() {
    let app = TestApp::spawn().await;
    set_today(&app);
    assert_status!(app.post("/v1/coupons", Auth::Admin, season()).await, 201);
    let again = app.post("/v1/coupons", Auth::Admin, season()).await;
    assert_status!(again, 409);
    assert_eq!(again.body["error"], "already_exists");
    assert_status!(app.delete("/v1/coupons/SEASON15", Auth::Admin).await, 200);
    assert_status!(app.post("/v1/coupons", Auth::Admin, season()).await, 409);
    assert_eq!(coupon_rows(&app).await, 1);
}

#[tokio::test]
async fn every_broken_rule_is_a_422_naming_its_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let with = |patch: Value| {
        let mut body = season();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases = [
        (json!({"amount_off": "5", "currency": "USD"}), "percent_off"),
        (json!({"percent_off": null}), "percent_off"),
        (json!({"percent_off": "100.01"}), "percent_off"),
        (json!({"percent_off": "0"}), "percent_off"),
        (json!({"percent_off": "12.345"}), "percent_off"),
        (json!({"percent_off": null, "amount_off": "5"}), "currency"),
        (json!({"currency": "USD"}), "currency"),
        (
            json!({"percent_off": null, "amount_off": "5", "currency": "GBP"}),
            "currency",
        ),
        (json!({"duration_periods": null}), "duration_periods"),
        (json!({"duration_periods": 37}), "duration_periods"),
        (json!({"duration_periods": 0}), "duration_periods"),
        (json!({"duration": "once"}), "duration_periods"),
        (json!({"redeem_by": "2026-02-28"}), "redeem_by"),
        (json!({"redeem_by": "2026-3-5"}), "redeem_by"),
        (json!({"plan_ids": ["no_such_plan"]}), "plan_ids"),
        (json!({"plan_ids": ["Bad Id"]}), "plan_ids"),
        (json!({"max_redemptions": 0}), "max_redemptions"),
        (json!({"code": "season15"}), "code"),
        (json!({"code": "AB"}), "code"),
        (json!({"name": "   "}), "name"),
        (json!({"name_ar": "x\u{0}y"}), "name_ar"),
    ];
    for (patch, field) in cases {
        let r = app
            .post("/v1/coupons", Auth::Admin, with(patch.clone()))
            .await;
        assert_status!(r, 422);
        let fields: Vec<&str> = r.body["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|x| x["field"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            fields.contains(&field),
            "{patch} should name {field}: {}",
            r.body
        );
    }
    for bad in [
        json!({"duration": "sometimes"}),
        json!({"unknown": 1}),
        json!({"max_redemptions": 1.5}),
    ] {
        let r = app.post("/v1/coupons", Auth::Admin, with(bad)).await;
        assert_status!(r, 422);
        assert_eq!(r.body["error"], "validation_error");
    }
    assert_eq!(coupon_rows(&app).await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE target_type = 'coupon'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn archiving_stops_validity_and_is_audited_once() {
    let app = TestApp::spawn().await;
    set_today(&app);
    assert_status!(app.post("/v1/coupons", Auth::Admin, season()).await, 201);
    let r = app.delete("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_status!(r, 200);
    assert_eq!(r.body["coupon"]["archived"], true);
    assert_eq!(r.body["coupon"]["valid"], false);
    let again = app.delete("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_status!(again, 200);
    assert_eq!(again.body, r.body);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_log WHERE action = 'coupon.archived'"
        )
        .await,
        1
    );
    assert_status!(app.delete("/v1/coupons/NOPE", Auth::Admin).await, 404);
    assert_status!(app.get("/v1/coupons/NOPE", Auth::Admin).await, 404);
}

#[tokio::test]
async fn a_coupon_is_valid_through_its_last_day_and_until_exhausted() {
    let app = TestApp::spawn().await;
    set_today(&app);
    assert_status!(app.post("/v1/coupons", Auth::Admin, season()).await, 201);
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 4, 30, 23, 59, 0).unwrap());
    let last_day = app.get("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_eq!(last_day.body["coupon"]["valid"], true);
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap());
    let after = app.get("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_eq!(after.body["coupon"]["valid"], false);

    set_today(&app);
    sqlx::query("UPDATE coupons SET times_redeemed = max_redemptions WHERE code = 'SEASON15'")
        .execute(&app.pool)
        .await
        .unwrap();
    let exhausted = app.get("/v1/coupons/SEASON15", Auth::Admin).await;
    assert_eq!(exhausted.body["coupon"]["times_redeemed"], 50);
    assert_eq!(exhausted.body["coupon"]["valid"], false);
}

#[tokio::test]
async fn only_super_admins_reach_coupons() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let tenant = common::tenant_with(&app.pool, Default::default()).await;
    for auth in [
        Auth::TenantAdmin(tenant.clone()),
        Auth::TenantUser(tenant.clone()),
        Auth::Service,
    ] {
        assert_status!(app.post("/v1/coupons", auth.clone(), season()).await, 403);
        assert_status!(app.get("/v1/coupons", auth.clone()).await, 403);
        assert_status!(app.get("/v1/coupons/SEASON15", auth.clone()).await, 403);
        assert_status!(app.delete("/v1/coupons/SEASON15", auth).await, 403);
    }
    assert_status!(app.get("/v1/coupons", Auth::None).await, 401);
    assert_eq!(coupon_rows(&app).await, 0);
}

#[tokio::test]
async fn coupons_page_in_code_order_with_a_true_total() {
    let app = TestApp::spawn().await;
    set_today(&app);
    for i in 0..25 {
        let body = json!({"code": format!("C{i:03}"), "name": "n", "name_ar": "ن",
                          "percent_off": "10", "duration": "once"});
        assert_status!(app.post("/v1/coupons", Auth::Admin, body).await, 201);
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/coupons?limit=10&starting_after={c}"),
            None => "/v1/coupons?limit=10".to_string(),
        };
        let r = app.get(&path, Auth::Admin).await;
        assert_status!(r, 200);
        assert_eq!(r.body["total"], 25);
        let page = r.body["coupons"].as_array().unwrap();
        seen.extend(page.iter().map(|c| c["code"].as_str().unwrap().to_string()));
        cursor = page.last().map(|c| c["code"].as_str().unwrap().to_string());
        if r.body["has_more"] == false {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("C{i:03}")).collect();
    assert_eq!(seen, expected);
    assert_status!(app.get("/v1/coupons?limit=0", Auth::Admin).await, 422);
}
