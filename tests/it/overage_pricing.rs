//! Overage pricing models on plans (SPEC section 10): stored and validated through the plan
//! API, and used by renewals for the period's overage, one printed line per tier or package.

use crate::common;

use billing_core::jobs::run_daily;
use chrono::NaiveTime;
use common::{d, tenant_with, Auth, Sub, TestApp};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn plan_body(pricing: Value) -> Value {
    json!({
        "plan_id": "bulk", "name": "Bulk", "name_ar": "بالجملة",
        "description": "For heavy users", "description_ar": "للاستخدام الكثيف",
        "tier": "professional", "monthly_price_usd": "99",
        "limits": {"api_calls_per_day": 1000},
        "overage_pricing": pricing
    })
}

fn graduated() -> Value {
    json!({"model": "graduated", "tiers": [
        {"up_to": 1000, "unit_price": "0.001"},
        {"up_to": null, "unit_price": 0.0005, "flat_fee": "1"}
    ]})
}

#[tokio::test]
async fn a_plan_stores_answers_and_changes_its_overage_pricing() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/plans",
            Auth::Admin,
            plan_body(json!({
                "api_calls_per_day": graduated(),
                "satellite_analyses_per_month": {"model": "package", "package_size": 10, "package_price": "4.50"}
            })),
        )
        .await;
    assert_status!(r, 201);
    let pricing = &r.body["plan"]["overage_pricing"];
    assert_eq!(pricing["api_calls_per_day"]["model"], "graduated");
    assert_eq!(
        pricing["api_calls_per_day"]["tiers"][0]["unit_price"],
        "0.001"
    );
    assert_eq!(
        pricing["api_calls_per_day"]["tiers"][1]["unit_price"],
        "0.0005"
    );
    assert_eq!(
        pricing["api_calls_per_day"]["tiers"][1]["up_to"],
        Value::Null
    );
    assert_eq!(pricing["satellite_analyses_per_month"]["package_size"], 10);
    let got = app.get("/v1/plans/bulk", Auth::None).await;
    assert_eq!(got.body["plan"]["overage_pricing"], *pricing);

    let patched = app
        .patch(
            "/v1/plans/bulk",
            Auth::Admin,
            json!({"overage_pricing": {
                "satellite_analyses_per_month": null,
                "api_calls_per_day": {"model": "volume", "tiers": [{"up_to": null, "unit_price": "0.002"}]}
            }}),
        )
        .await;
    assert_status!(patched, 200);
    let got = app.get("/v1/plans/bulk", Auth::None).await;
    assert_eq!(
        got.body["plan"]["overage_pricing"],
        json!({"api_calls_per_day": {"model": "volume", "tiers": [{"up_to": null, "unit_price": "0.002"}]}})
    );
    let starter = app.get("/v1/plans/starter", Auth::None).await;
    assert_eq!(starter.body["plan"]["overage_pricing"], json!({}));
}

#[tokio::test]
async fn malformed_tables_are_422_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    for (pricing, field) in [
        (
            json!({"api_calls_per_day": {"model": "graduated", "tiers": [
                {"up_to": 100, "unit_price": "1"}, {"up_to": 50, "unit_price": "1"}, {"up_to": null, "unit_price": "1"}]}}),
            "overage_pricing.api_calls_per_day.tiers[1].up_to",
        ),
        (
            json!({"api_calls_per_day": {"model": "volume", "tiers": [{"up_to": 100, "unit_price": "1"}]}}),
            "overage_pricing.api_calls_per_day.tiers[0].up_to",
        ),
        (
            json!({"api_calls_per_day": {"model": "per_unit", "unit_price": "-0.5"}}),
            "overage_pricing.api_calls_per_day.unit_price",
        ),
        (
            json!({"api_calls_per_day": {"model": "per_unit", "unit_price": "0.0000001"}}),
            "overage_pricing.api_calls_per_day.unit_price",
        ),
        (
            json!({"api_calls_per_day": {"model": "package", "package_size": 0, "package_price": "1"}}),
            "overage_pricing.api_calls_per_day.package_size",
        ),
        (
            json!({"api_calls_per_day": {"model": "stepped"}}),
            "overage_pricing.api_calls_per_day.model",
        ),
        (
            json!({"no_such_metric": graduated()}),
            "overage_pricing.no_such_metric",
        ),
    ] {
        let r = app
            .post("/v1/plans", Auth::Admin, plan_body(pricing.clone()))
            .await;
        assert_status!(r, 422);
        let fields: Vec<&str> = r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{pricing}: {}", r.body);
    }
    assert_status!(app.get("/v1/plans/bulk", Auth::None).await, 404);
    let bad_patch = app
        .patch(
            "/v1/plans/starter",
            Auth::Admin,
            json!({"overage_pricing": {"api_calls_per_day": {"model": "volume", "tiers": []}}}),
        )
        .await;
    assert_status!(bad_patch, 422);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM plan_overage_pricing")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_renewal_prices_overage_by_tier_and_package_and_every_line_adds_up() {
    let app = TestApp::spawn().await;
    let r = app
        .patch(
            "/v1/plans/starter",
            Auth::Admin,
            json!({"overage_pricing": {
                "api_calls_per_day": {"model": "graduated", "tiers": [
                    {"up_to": 50, "unit_price": "0.01"},
                    {"up_to": null, "unit_price": "0.002", "flat_fee": "0.50"}]},
                "satellite_analyses_per_month": {"model": "package", "package_size": 3, "package_price": "1.25"}
            }}),
        )
        .await;
    assert_status!(r, 200);
    let t = tenant_with(
        &app.pool,
        Sub {
            start: "2025-03-01",
            end: "2025-04-01",
            anchor: 1,
            ..Sub::default()
        },
    )
    .await;
    // starter: satellite 50/period, api calls 500/day, fields 10 (gauge), storage 5 (gauge)
    for (metric, window, used, peak) in [
        ("satellite_analyses_per_month", "2025-03-01", 60i64, 0i64),
        ("api_calls_per_day", "2025-03-03", 600, 0),
        ("api_calls_per_day", "2025-03-04", 400, 0),
        ("fields", "2025-03-01", 9, 12),
        ("storage_gb", "2025-02-01", 7, 7),
    ] {
        sqlx::query("INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t).bind(metric).bind(d(window)).bind(used).bind(peak).execute(&app.pool).await.unwrap();
    }
    let at = d("2025-04-01")
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, at, |_| {}).await.unwrap();
    let lines: Vec<(Option<String>, String, Decimal, Decimal, Decimal)> = sqlx::query_as(
        "SELECT l.metric, l.description, l.quantity, l.unit_price, l.amount
         FROM invoice_lines l JOIN invoices i USING (invoice_id)
         WHERE i.tenant_id = $1 AND l.kind = 'overage' ORDER BY l.position",
    )
    .bind(&t)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let of = |m: &str| -> Vec<(Decimal, Decimal, Decimal)> {
        lines
            .iter()
            .filter(|l| l.0.as_deref() == Some(m))
            .map(|l| (l.2, l.3, l.4))
            .collect()
    };
    let dec = |s: &str| -> Decimal { s.parse().unwrap() };
    // 100 calls over: 50 at 0.01, 50 at 0.002, and the second tier's flat fee.
    assert_eq!(
        of("api_calls_per_day"),
        vec![
            (dec("50"), dec("0.01"), dec("0.50")),
            (dec("50"), dec("0.002"), dec("0.10")),
            (dec("1"), dec("0.5"), dec("0.50")),
        ]
    );
    // 10 analyses over: 4 started packages of 3.
    assert_eq!(
        of("satellite_analyses_per_month"),
        vec![(dec("4"), dec("1.25"), dec("5.00"))]
    );
    // Gauges keep the catalogue rate, per unit.
    assert_eq!(of("fields"), vec![(dec("2"), dec("5"), dec("10.00"))]);
    for (_, description, q, u, a) in &lines {
        assert_eq!(
            billing_core::billing::money::line_amount(*q, *u),
            *a,
            "{description}"
        );
    }
    assert!(
        lines.iter().any(|l| l.1.contains("units 51 and above")),
        "{lines:?}"
    );
    let total: Decimal = sqlx::query_scalar("SELECT total FROM invoices WHERE tenant_id = $1")
        .bind(&t)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // 29 + 1.10 + 5.00 + 10.00 + 4.00
    assert_eq!(total, dec("49.10"));
}

#[tokio::test]
async fn the_quota_report_previews_the_overage_at_the_plans_pricing() {
    use chrono::{TimeZone, Utc};
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2025, 3, 5, 9, 0, 0).unwrap());
    let r = app
        .patch(
            "/v1/plans/starter",
            Auth::Admin,
            json!({"overage_pricing": {
                "satellite_analyses_per_month": {"model": "package", "package_size": 3, "package_price": "1.25"}
            }}),
        )
        .await;
    assert_status!(r, 200);
    let t = tenant_with(
        &app.pool,
        Sub {
            start: "2025-03-01",
            end: "2025-04-01",
            anchor: 1,
            ..Sub::default()
        },
    )
    .await;
    sqlx::query("INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES ($1, 'satellite_analyses_per_month', '2025-03-01', 60, 0)")
        .bind(&t).execute(&app.pool).await.unwrap();
    let q = app
        .get(
            &format!("/v1/tenants/{t}/quota"),
            Auth::TenantUser(t.clone()),
        )
        .await;
    assert_status!(q, 200);
    let sat = &q.body["usage"]["satellite_analyses_per_month"];
    assert_eq!(sat["overage_units"], 10, "{}", q.body);
    // 10 over the limit of 50: 4 started packages of 3 at 1.25.
    assert_eq!(sat["overage_amount"], "5.00");
    assert_eq!(q.body["usage"]["fields"]["overage_units"], 0);
    assert_eq!(q.body["usage"]["fields"]["overage_amount"], "0.00");
}
