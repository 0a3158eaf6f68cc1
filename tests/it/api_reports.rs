use crate::common;

use chrono::{TimeZone, Utc};
use common::{d, Auth, TestApp};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// A subscription row as a report sees it; timestamps as RFC 3339 text.
struct SubRow<'a> {
    plan: &'a str,
    cycle: &'a str,
    status: &'a str,
    currency: &'a str,
    created_at: &'a str,
    canceled_at: Option<&'a str>,
    trial_end: Option<&'a str>,
}

impl Default for SubRow<'_> {
    fn default() -> Self {
        SubRow {
            plan: "starter",
            cycle: "monthly",
            status: "active",
            currency: "USD",
            created_at: "2025-06-01T00:00:00Z",
            canceled_at: None,
            trial_end: None,
        }
    }
}

fn ts(s: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
}

/// Inserts a tenant with one subscription; returns (tenant_id, subscription_id).
async fn tenant_sub(pool: &PgPool, s: SubRow<'_>) -> (String, Uuid) {
    let tenant = format!("farm-{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone)
         VALUES ($1, 'Farm', 'مزرعة', 'farm@example.com', '+967771234567')",
    )
    .bind(&tenant)
    .execute(pool)
    .await
    .unwrap();
    let sub = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, currency,
             anchor_day, start_date, end_date, next_billing_date, trial_end_date, canceled_at, created_at)
         VALUES ($1, $2, $3, $4::subscription_status, $5::billing_cycle, $6, 1, DATE '2026-02-01',
                 DATE '2026-03-01', DATE '2026-03-01', $7, $8, $9)",
    )
    .bind(sub)
    .bind(&tenant)
    .bind(s.plan)
    .bind(s.status)
    .bind(s.cycle)
    .bind(s.currency)
    .bind(s.trial_end.map(d))
    .bind(s.canceled_at.map(ts))
    .bind(ts(s.created_at))
    .execute(pool)
    .await
    .unwrap();
    (tenant, sub)
}

struct Inv<'a> {
    status: &'a str,
    currency: &'a str,
    rate: &'a str,
    issue: &'a str,
    total: &'a str,
    paid: &'a str,
}

/// Inserts an issued invoice with one plan line (subtotal = line = total, no tax, no discount),
/// issued for the subscription's plan.
async fn invoice(pool: &PgPool, tenant: &str, sub: Uuid, i: Inv<'_>) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO invoices (invoice_id, invoice_number, tenant_id, subscription_id, kind, status,
             currency, exchange_rate, period_start, period_end, subtotal, total, amount_paid,
             amount_due, issue_date, due_date, plan_id)
         VALUES ($1, $2, $3, $4, 'subscription', $5::invoice_status, $6, $7::numeric, $8,
                 $8 + 28, $9::numeric, $9::numeric, $10::numeric, $9::numeric - $10::numeric, $8, $8 + 7,
                 (SELECT plan_id FROM subscriptions WHERE subscription_id = $4))",
    )
    .bind(id)
    .bind(format!("TST-{}", id.simple()))
    .bind(tenant)
    .bind(sub)
    .bind(i.status)
    .bind(i.currency)
    .bind(i.rate)
    .bind(d(i.issue))
    .bind(i.total)
    .bind(i.paid)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO invoice_lines (line_id, invoice_id, tenant_id, position, kind, description,
             description_ar, quantity, unit_price, amount)
         VALUES ($1, $2, $3, 0, 'plan', 'Plan', 'الخطة', 1, $4::numeric, $4::numeric)",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .bind(tenant)
    .bind(i.total)
    .execute(pool)
    .await
    .unwrap();
    id
}

/// A payment of `amount` in the invoice's currency; `paid_at` only for settled ones.
#[allow(clippy::too_many_arguments)]
async fn payment(
    pool: &PgPool,
    tenant: &str,
    inv: Uuid,
    currency: &str,
    amount: &str,
    method: &str,
    status: &str,
    paid_at: Option<&str>,
    refunded: &str,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO payments (payment_id, tenant_id, invoice_id, amount, currency, method, status,
             paid_at, refunded_amount)
         VALUES ($1, $2, $3, $4::numeric, $5, $6::payment_method, $7::payment_status, $8, $9::numeric)",
    )
    .bind(id)
    .bind(tenant)
    .bind(inv)
    .bind(amount)
    .bind(currency)
    .bind(method)
    .bind(status)
    .bind(paid_at.map(ts))
    .bind(refunded)
    .execute(pool)
    .await
    .unwrap();
    id
}

#[allow(clippy::too_many_arguments)]
async fn refund(
    pool: &PgPool,
    tenant: &str,
    inv: Uuid,
    pay: Uuid,
    currency: &str,
    amount: &str,
    status: &str,
    at: &str,
) {
    sqlx::query(
        "INSERT INTO refunds (refund_id, payment_id, invoice_id, tenant_id, amount, currency, status,
             reason, created_at)
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7::refund_status, 'customer request', $8)",
    )
    .bind(Uuid::new_v4())
    .bind(pay)
    .bind(inv)
    .bind(tenant)
    .bind(amount)
    .bind(currency)
    .bind(status)
    .bind(ts(at))
    .execute(pool)
    .await
    .unwrap();
}

/// January and February 2026 of three farms, in USD and YER (at 250, then 260):
///
/// | invoice | farm | currency/rate | issued | total | status | paid | payments / refunds |
/// |---|---|---|---|---|---|---|---|
/// | A0 | A starter | USD 1 | 2025-12-05 | 29.00 | paid | 29.00 | cash 29.00 paid 2026-01-02 |
/// | A1 | A starter | USD 1 | 2026-01-05 | 29.00 | paid | 29.00 | card 29.00 paid 01-06 |
/// | A2 | A starter | USD 1 | 2026-02-05 | 29.00 | canceled | 0 | — |
/// | B1 | B starter | YER 250 | 2026-01-10 | 7250.00 | pending | 2000.00 | tharwatt 2500.00 01-12; refund 500.00 02-01 |
/// | B2 | B starter | YER 260 | 2026-02-10 | 7540.00 | overdue | 0 | mobile money pending; card failed |
/// | C1 | C professional quarterly | USD 1 | 2026-02-03 | 269.00 | refunded | 0 | bank 269.00 02-04, refunded 02-10 |
async fn revenue_fixture(pool: &PgPool) {
    let (a, sa) = tenant_sub(pool, SubRow::default()).await;
    let (b, sb) = tenant_sub(
        pool,
        SubRow {
            currency: "YER",
            ..Default::default()
        },
    )
    .await;
    let (c, sc) = tenant_sub(
        pool,
        SubRow {
            plan: "professional",
            cycle: "quarterly",
            ..Default::default()
        },
    )
    .await;
    let usd = |status, issue, total, paid| Inv {
        status,
        currency: "USD",
        rate: "1",
        issue,
        total,
        paid,
    };

    let a0 = invoice(pool, &a, sa, usd("paid", "2025-12-05", "29.00", "29.00")).await;
    payment(
        pool,
        &a,
        a0,
        "USD",
        "29.00",
        "cash",
        "succeeded",
        Some("2026-01-02T09:00:00Z"),
        "0",
    )
    .await;
    let a1 = invoice(pool, &a, sa, usd("paid", "2026-01-05", "29.00", "29.00")).await;
    payment(
        pool,
        &a,
        a1,
        "USD",
        "29.00",
        "credit_card",
        "succeeded",
        Some("2026-01-06T09:00:00Z"),
        "0",
    )
    .await;
    invoice(pool, &a, sa, usd("canceled", "2026-02-05", "29.00", "0")).await;

    let b1 = Inv {
        status: "pending",
        currency: "YER",
        rate: "250",
        issue: "2026-01-10",
        total: "7250.00",
        paid: "2000.00",
    };
    let b1 = invoice(pool, &b, sb, b1).await;
    let pb = payment(
        pool,
        &b,
        b1,
        "YER",
        "2500.00",
        "tharwatt",
        "succeeded",
        Some("2026-01-12T09:00:00Z"),
        "500.00",
    )
    .await;
    refund(
        pool,
        &b,
        b1,
        pb,
        "YER",
        "500.00",
        "succeeded",
        "2026-02-01T10:00:00Z",
    )
    .await;
    refund(
        pool,
        &b,
        b1,
        pb,
        "YER",
        "100.00",
        "failed",
        "2026-02-02T10:00:00Z",
    )
    .await;
    let b2 = Inv {
        status: "overdue",
        currency: "YER",
        rate: "260",
        issue: "2026-02-10",
        total: "7540.00",
        paid: "0",
    };
    let b2 = invoice(pool, &b, sb, b2).await;
    payment(
        pool,
        &b,
        b2,
        "YER",
        "7540.00",
        "mobile_money",
        "pending",
        None,
        "0",
    )
    .await;
    payment(
        pool,
        &b,
        b2,
        "YER",
        "7540.00",
        "credit_card",
        "failed",
        None,
        "0",
    )
    .await;

    let c1 = invoice(pool, &c, sc, usd("refunded", "2026-02-03", "269.00", "0")).await;
    let pc = payment(
        pool,
        &c,
        c1,
        "USD",
        "269.00",
        "bank_transfer",
        "refunded",
        Some("2026-02-04T09:00:00Z"),
        "269.00",
    )
    .await;
    refund(
        pool,
        &c,
        c1,
        pc,
        "USD",
        "269.00",
        "succeeded",
        "2026-02-10T10:00:00Z",
    )
    .await;
}

fn four(invoiced: &str, collected: &str, refunded: &str, outstanding: &str) -> serde_json::Value {
    json!({"invoiced": invoiced, "collected": collected, "refunded": refunded, "outstanding": outstanding})
}

#[tokio::test]
async fn the_revenue_report_sums_each_currency_and_converts_at_each_invoice_rate() {
    let app = TestApp::spawn().await;
    revenue_fixture(&app.pool).await;
    let r = app
        .get(
            "/v1/reports/revenue?start_date=2026-01-01&end_date=2026-02-28",
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    let b = &r.body;
    assert_eq!(b["start_date"], "2026-01-01");
    assert_eq!(b["end_date"], "2026-02-28");
    // Voided A2 is not invoiced; A0 was issued before the range but its payment lands in it.
    assert_eq!(
        b["by_currency"]["USD"],
        four("298.00", "327.00", "269.00", "0.00")
    );
    assert_eq!(
        b["by_currency"]["YER"],
        four("14790.00", "2500.00", "500.00", "12790.00")
    );
    assert_eq!(b["by_currency"].as_object().unwrap().len(), 2);
    // YER at the invoice's own rate: 7250/250 + 7540/260 = 29 + 29; 2500/250; 500/250;
    // outstanding 5250/250 + 7540/260 = 21 + 29.
    assert_eq!(b["total_usd"], four("356.00", "337.00", "271.00", "50.00"));
    assert_eq!(
        b["by_plan"]["starter"],
        four("87.00", "68.00", "2.00", "50.00")
    );
    assert_eq!(
        b["by_plan"]["professional"],
        four("269.00", "269.00", "269.00", "0.00")
    );
    assert_eq!(b["by_plan"].as_object().unwrap().len(), 2);
    assert_eq!(
        b["by_method"],
        json!({"bank_transfer": "269.00", "cash": "29.00", "credit_card": "29.00",
               "mobile_money": "0.00", "tharwatt": "10.00"})
    );
    let mut jan = four("58.00", "68.00", "0.00", "21.00");
    jan["month"] = json!("2026-01");
    let mut feb = four("298.00", "269.00", "271.00", "29.00");
    feb["month"] = json!("2026-02");
    assert_eq!(b["by_month"], json!([jan, feb]));
}

#[tokio::test]
async fn a_january_range_counts_a_usd_and_a_yer_invoice_in_usd() {
    let app = TestApp::spawn().await;
    revenue_fixture(&app.pool).await;
    let r = app
        .get(
            "/api/v1/reports/revenue?start_date=2026-01-01&end_date=2026-01-31",
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["total_usd"], four("58.00", "68.00", "0.00", "21.00"));
    assert_eq!(r.body["by_month"].as_array().unwrap().len(), 1);
    // The refund of 2026-02-01 and everything issued in February fall outside.
    assert_eq!(
        r.body["by_currency"]["YER"],
        four("7250.00", "2500.00", "0.00", "5250.00")
    );
}

#[tokio::test]
async fn usd_figures_are_rounded_once_after_summing() {
    let app = TestApp::spawn().await;
    let (t, s) = tenant_sub(
        &app.pool,
        SubRow {
            currency: "YER",
            ..Default::default()
        },
    )
    .await;
    // 1.25 YER at 250 is 0.005 USD: rounded one by one, three would give 0.03; summed, 0.015 → 0.02.
    for issue in ["2026-01-05", "2026-01-06", "2026-01-07"] {
        let inv = Inv {
            status: "pending",
            currency: "YER",
            rate: "250",
            issue,
            total: "1.25",
            paid: "0",
        };
        invoice(&app.pool, &t, s, inv).await;
    }
    let r = app
        .get(
            "/v1/reports/revenue?start_date=2026-01-01&end_date=2026-01-31",
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["total_usd"]["invoiced"], "0.02");
    assert_eq!(r.body["total_usd"]["outstanding"], "0.02");
    assert_eq!(r.body["by_currency"]["YER"]["invoiced"], "3.75");
}

#[tokio::test]
async fn the_revenue_range_defaults_to_the_current_month_and_rejects_bad_dates() {
    let app = TestApp::spawn().await;
    revenue_fixture(&app.pool).await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 2, 14, 8, 0, 0).unwrap());
    let r = app.get("/v1/reports/revenue", Auth::Admin).await;
    assert_status!(r, 200);
    assert_eq!(r.body["start_date"], "2026-02-01");
    assert_eq!(r.body["end_date"], "2026-02-28");
    assert_eq!(r.body["total_usd"]["invoiced"], "298.00");

    for (query, field) in [
        ("start_date=2026-03-01&end_date=2026-02-01", "end_date"),
        ("start_date=2026-13-01", "start_date"),
        ("start_date=2026-1-01", "start_date"),
        ("end_date=yesterday", "end_date"),
    ] {
        let r = app
            .get(&format!("/v1/reports/revenue?{query}"), Auth::Admin)
            .await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "validation_error");
        assert_eq!(r.body["fields"][0]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn reports_are_for_super_admins_only() {
    let app = TestApp::spawn().await;
    let (t, _) = tenant_sub(&app.pool, SubRow::default()).await;
    for path in ["/v1/reports/revenue", "/v1/reports/subscriptions"] {
        assert_status!(app.get(path, Auth::None).await, 401);
        assert_status!(app.get(path, Auth::TenantAdmin(t.clone())).await, 403);
        assert_status!(app.get(path, Auth::TenantUser(t.clone())).await, 403);
        assert_status!(app.get(path, Auth::Service).await, 403);
        assert_status!(app.get(path, Auth::Admin).await, 200);
    }
}

async fn outbox(pool: &PgPool, event_type: &str, sub: Uuid, at: &str) {
    sqlx::query(
        "INSERT INTO outbox_events (event_id, subject, event_type, payload, occurred_at)
         VALUES ($1, 'sahool.billing.' || $2, $2, jsonb_build_object('subscription_id', $3::text), $4)",
    )
    .bind(Uuid::new_v4())
    .bind(event_type)
    .bind(sub.to_string())
    .bind(ts(at))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_subscription_report_counts_mrr_churn_and_trial_conversion() {
    let app = TestApp::spawn().await;
    let p = &app.pool;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 2, 15, 12, 0, 0).unwrap());
    let new = "2026-02-01T00:00:00Z";
    let (_, monthly) = tenant_sub(
        p,
        SubRow {
            created_at: new,
            ..Default::default()
        },
    )
    .await;
    let (_, quarterly) = tenant_sub(
        p,
        SubRow {
            cycle: "quarterly",
            ..Default::default()
        },
    )
    .await;
    tenant_sub(
        p,
        SubRow {
            cycle: "yearly",
            status: "past_due",
            currency: "YER",
            ..Default::default()
        },
    )
    .await;
    // Not paying: a trial, a suspended enterprise, a free plan (counts, at 0).
    tenant_sub(
        p,
        SubRow {
            plan: "professional",
            status: "trial",
            trial_end: Some("2026-03-01"),
            ..Default::default()
        },
    )
    .await;
    tenant_sub(
        p,
        SubRow {
            plan: "enterprise",
            status: "suspended",
            ..Default::default()
        },
    )
    .await;
    tenant_sub(
        p,
        SubRow {
            plan: "free",
            created_at: new,
            ..Default::default()
        },
    )
    .await;
    // Churned in the window: one after converting, one during its trial.
    let (_, converted_then_left) = tenant_sub(
        p,
        SubRow {
            status: "canceled",
            canceled_at: Some("2026-02-10T00:00:00Z"),
            ..Default::default()
        },
    )
    .await;
    tenant_sub(
        p,
        SubRow {
            status: "canceled",
            created_at: "2026-02-06T00:00:00Z",
            canceled_at: Some("2026-02-12T00:00:00Z"),
            trial_end: Some("2026-02-20"),
            ..Default::default()
        },
    )
    .await;
    // Canceled before the window: neither churned now nor live.
    tenant_sub(
        p,
        SubRow {
            status: "canceled",
            canceled_at: Some("2026-01-10T00:00:00Z"),
            ..Default::default()
        },
    )
    .await;

    outbox(
        p,
        "subscription.trial_expired",
        monthly,
        "2026-02-01T00:00:00Z",
    )
    .await;
    outbox(
        p,
        "subscription.trial_expired",
        converted_then_left,
        "2026-01-20T00:00:00Z",
    )
    .await;
    outbox(
        p,
        "subscription.trial_expired",
        quarterly,
        "2026-01-05T00:00:00Z",
    )
    .await;
    outbox(
        p,
        "subscription.reactivated",
        quarterly,
        "2026-02-05T00:00:00Z",
    )
    .await;
    outbox(
        p,
        "subscription.reactivated",
        quarterly,
        "2026-01-01T00:00:00Z",
    )
    .await;

    let r = app.get("/v1/reports/subscriptions", Auth::Admin).await;
    assert_status!(r, 200);
    let b = &r.body;
    assert_eq!(b["total_subscriptions"], 9);
    assert_eq!(b["total_tenants"], 9);
    assert_eq!(
        b["by_status"],
        json!({"trial": 1, "active": 3, "past_due": 1, "suspended": 1, "canceled": 3})
    );
    assert_eq!(
        b["by_plan"],
        json!({"starter": 3, "professional": 1, "enterprise": 1, "free": 1})
    );
    // 29 + 79/3 + 290/12 = 29 + 26.333.. + 24.1666.. = 79.50, rounded once.
    assert_eq!(b["mrr_usd"], "79.50");
    assert_eq!(b["arr_usd"], "954.00");
    assert_eq!(b["mrr_yer"], "19875.00");
    assert_eq!(b["arr_yer"], "238500.00");
    assert_eq!(b["new_30d"], 3);
    assert_eq!(b["churned_30d"], 2);
    assert_eq!(b["reactivated_30d"], 1);
    // Live now 6, so live at the window start ≈ 6 + 2 churned − 3 new = 5.
    assert_eq!(b["churn_rate_30d"], "0.4000");
    // Trials ended in the window: two expired (one since canceled) and one canceled in trial.
    assert_eq!(b["trial_conversion_rate_30d"], "0.3333");
}

#[tokio::test]
async fn an_empty_platform_reports_zeros() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/reports/subscriptions", Auth::Admin).await;
    assert_status!(r, 200);
    assert_eq!(r.body["total_subscriptions"], 0);
    assert_eq!(r.body["mrr_usd"], "0.00");
    assert_eq!(r.body["churn_rate_30d"], "0.0000");
    assert_eq!(r.body["trial_conversion_rate_30d"], "0.0000");
    let r = app
        .get(
            "/v1/reports/revenue?start_date=2026-01-01&end_date=2026-01-31",
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["total_usd"], four("0.00", "0.00", "0.00", "0.00"));
    assert_eq!(
        r.body["by_currency"]["YER"],
        four("0.00", "0.00", "0.00", "0.00")
    );
}
