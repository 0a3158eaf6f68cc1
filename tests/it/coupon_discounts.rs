//! A redeemed coupon on the invoices it covers (SPEC section 10): `discount_amount` and the
//! line `Discount (CODE)`, tax after the discount, never below zero, `repeating N` counted in
//! billing periods and `once` on one invoice only.

use crate::common;

use billing_core::jobs::run_daily;
use chrono::{NaiveTime, TimeZone, Utc};
use common::{d, tenant_with, Auth, Sub, TestApp};
use rust_decimal::Decimal;
use serde_json::{json, Value};

async fn bill(app: &TestApp, date: &str) {
    let at = d(date)
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, at, |_| {}).await.unwrap();
}

async fn coupon(app: &TestApp, body: Value) {
    let mut full = json!({"name": "Promotion", "name_ar": "عرض"});
    for (k, v) in body.as_object().unwrap() {
        full[k] = v.clone();
    }
    assert_status!(app.post("/v1/coupons", Auth::Admin, full).await, 201);
}

async fn redeem(app: &TestApp, tenant: &str, code: &str) -> Value {
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/subscription/coupon"),
            Auth::Admin,
            json!({"code": code}),
        )
        .await;
    assert_status!(r, 201);
    r.body
}

#[derive(Debug, sqlx::FromRow)]
struct Inv {
    invoice_id: uuid::Uuid,
    subtotal: Decimal,
    discount_amount: Decimal,
    tax_amount: Decimal,
    total: Decimal,
    status: String,
}

async fn invoices(app: &TestApp, tenant: &str) -> Vec<Inv> {
    sqlx::query_as(
        "SELECT invoice_id, subtotal, discount_amount, tax_amount, total, status::text
         FROM invoices WHERE tenant_id = $1 ORDER BY period_start, created_at",
    )
    .bind(tenant)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn lines(
    app: &TestApp,
    invoice: uuid::Uuid,
) -> Vec<(String, String, Decimal, Decimal, Decimal)> {
    sqlx::query_as(
        "SELECT kind::text, description, quantity, unit_price, amount FROM invoice_lines
         WHERE invoice_id = $1 ORDER BY position",
    )
    .bind(invoice)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_repeating_coupon_discounts_its_periods_then_stops() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 10, 9, 0, 0).unwrap());
    coupon(&app, json!({"code": "SEASON15", "percent_off": "15", "duration": "repeating", "duration_periods": 2})).await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    sqlx::query("UPDATE tenants SET tax_rate = 5 WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = redeem(&app, &t, "SEASON15").await;
    // From the next period (28 Feb, anchored on the 31st), two periods.
    assert_eq!(r["discount"]["ends_after_period"], "2025-04-30");
    for date in ["2025-02-28", "2025-03-31", "2025-04-30"] {
        bill(&app, date).await;
    }
    let inv = invoices(&app, &t).await;
    assert_eq!(inv.len(), 3);
    for i in &inv[..2] {
        assert_eq!((i.subtotal, i.discount_amount), (dec("29.00"), dec("4.35")));
        // Tax on the discounted 24.65: 1.2325 → 1.23.
        assert_eq!((i.tax_amount, i.total), (dec("1.23"), dec("25.88")));
        let l = lines(&app, i.invoice_id).await;
        let sum: Decimal = l.iter().map(|x| x.4).sum();
        assert_eq!(sum, i.subtotal - i.discount_amount, "{l:?}");
        let discount = l
            .iter()
            .find(|x| x.0 == "discount")
            .expect("a discount line");
        assert_eq!(discount.1, "Discount (SEASON15)");
        assert_eq!(
            (discount.2, discount.3, discount.4),
            (dec("1"), dec("-4.35"), dec("-4.35"))
        );
    }
    assert_eq!(
        (inv[2].discount_amount, inv[2].total),
        (dec("0.00"), dec("30.45"))
    );
    let counted: (i32, i32) = sqlx::query_as(
        "SELECT invoices_discounted, periods_discounted FROM coupon_redemptions WHERE tenant_id = $1",
    )
    .bind(&t)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(counted, (2, 2));
}

#[tokio::test]
async fn a_once_coupon_covers_one_invoice_and_never_takes_the_total_below_zero() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 10, 9, 0, 0).unwrap());
    coupon(
        &app,
        json!({"code": "WELCOME50", "amount_off": "50", "currency": "USD", "duration": "once"}),
    )
    .await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    redeem(&app, &t, "WELCOME50").await;
    bill(&app, "2025-02-28").await;
    bill(&app, "2025-03-31").await;
    let inv = invoices(&app, &t).await;
    assert_eq!(inv.len(), 2);
    assert_eq!(
        (inv[0].discount_amount, inv[0].total),
        (dec("29.00"), dec("0.00"))
    );
    assert_eq!(inv[0].status, "paid", "a zero total is issued paid");
    assert_eq!(
        (inv[1].discount_amount, inv[1].total),
        (dec("0.00"), dec("29.00"))
    );
}

#[tokio::test]
async fn the_invoice_answer_shows_the_discount_and_a_removed_coupon_stops_discounting() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 10, 9, 0, 0).unwrap());
    coupon(
        &app,
        json!({"code": "FOREVER10", "percent_off": "10", "duration": "forever"}),
    )
    .await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    redeem(&app, &t, "FOREVER10").await;
    bill(&app, "2025-02-28").await;
    let first = &invoices(&app, &t).await[0];
    let r = app
        .get(
            &format!("/v1/invoices/{}", first.invoice_id),
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["invoice"]["discount_amount"], "2.90");
    assert_eq!(r.body["invoice"]["subtotal"], "29.00");
    assert_eq!(r.body["invoice"]["total"], "26.10");
    let kinds: Vec<&str> = r.body["invoice"]["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["plan", "discount"]);
    assert_status!(
        app.delete(&format!("/v1/tenants/{t}/subscription/coupon"), Auth::Admin)
            .await,
        200
    );
    bill(&app, "2025-03-31").await;
    assert_eq!(invoices(&app, &t).await[1].total, dec("29.00"));
}

fn sign_up(tenant: &str, coupon: &str) -> Value {
    json!({"tenant_id": tenant, "name": "Farm", "name_ar": "مزرعة", "email": "f@example.com",
           "phone": "+967700000000", "plan_id": "harvest", "coupon": coupon})
}

async fn harvest_plan(app: &TestApp) {
    let plan = json!({"plan_id": "harvest", "name": "Harvest", "name_ar": "الحصاد",
        "description": "No trial", "description_ar": "بدون تجربة", "tier": "starter",
        "monthly_price_usd": "20.00", "trial_days": 0});
    assert_status!(app.post("/v1/plans", Auth::Admin, plan).await, 201);
}

#[tokio::test]
async fn a_coupon_given_at_sign_up_discounts_the_first_invoice() {
    let app = TestApp::spawn().await;
    harvest_plan(&app).await;
    coupon(&app, json!({"code": "FIRST3", "percent_off": "25", "duration": "repeating", "duration_periods": 3})).await;
    let r = app
        .post("/v1/tenants", Auth::Admin, sign_up("farm-a", "FIRST3"))
        .await;
    assert_status!(r, 201);
    let inv = invoices(&app, "farm-a").await;
    assert_eq!(inv.len(), 1);
    assert_eq!(
        (inv[0].discount_amount, inv[0].total),
        (dec("5.00"), dec("15.00"))
    );

    let bad = app
        .post("/v1/tenants", Auth::Admin, sign_up("farm-b", "NOSUCH"))
        .await;
    assert_status!(bad, 422);
    assert_eq!(bad.body["error"], "coupon_not_found");
    let malformed = app
        .post("/v1/tenants", Auth::Admin, sign_up("farm-b", "lower"))
        .await;
    assert_status!(malformed, 422);
    assert_eq!(malformed.body["fields"][0]["field"], "coupon");
    let tenants: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tenants WHERE tenant_id = 'farm-b'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(tenants, 0, "a refused coupon creates nothing");
}

#[tokio::test]
async fn fifty_sign_ups_racing_for_the_last_redemption_make_one_farm_with_it() {
    let app = TestApp::spawn().await;
    harvest_plan(&app).await;
    coupon(
        &app,
        json!({"code": "LASTONE", "percent_off": "50", "duration": "once", "max_redemptions": 1}),
    )
    .await;
    let answers = futures::future::join_all((0..50).map(|i| {
        app.post(
            "/v1/tenants",
            Auth::Admin,
            sign_up(&format!("racer-{i}"), "LASTONE"),
        )
    }))
    .await;
    let won = answers.iter().filter(|r| r.status.as_u16() == 201).count();
    let exhausted = answers
        .iter()
        .filter(|r| r.status.as_u16() == 422 && r.body["error"] == "coupon_exhausted")
        .count();
    assert_eq!((won, exhausted), (1, 49));
    let (tenants, redeemed): (i64, i32) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenants WHERE tenant_id LIKE 'racer-%'),
                (SELECT times_redeemed FROM coupons WHERE code = 'LASTONE')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((tenants, redeemed), (1, 1));
}

#[tokio::test]
async fn a_plan_change_charge_is_discounted_too() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 2, 10, 9, 0, 0).unwrap());
    coupon(
        &app,
        json!({"code": "ALWAYS10", "percent_off": "10", "duration": "forever"}),
    )
    .await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    redeem(&app, &t, "ALWAYS10").await;
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            Auth::Admin,
            json!({"plan_id": "professional"}),
        )
        .await;
    assert_status!(r, 200);
    let inv: (Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT subtotal, discount_amount, total FROM invoices WHERE tenant_id = $1 AND kind = 'proration'",
    )
    .bind(&t)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let (subtotal, discount, total) = inv;
    assert!(subtotal > Decimal::ZERO);
    assert_eq!(
        discount,
        billing_core::billing::money::round_money(subtotal / Decimal::from(10))
    );
    assert_eq!(total, subtotal - discount);
}
