//! Renewals, trial ends, overage, credits and dunning, travelling through time with the
//! billing run (`POST /v1/admin/billing-run?date=` and the job function it calls).
use crate::common;

use billing_core::jobs::run_daily;
use chrono::{NaiveDate, NaiveTime};
use common::{d, tenant_with, Auth, Sub, TestApp};
use serde_json::Value;
use sqlx::PgPool;

async fn bill(app: &TestApp, date: &str) -> billing_core::jobs::DailyReport {
    let at = d(date)
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, at, |_| {}).await.unwrap()
}

#[derive(Debug, sqlx::FromRow)]
struct Inv {
    invoice_number: String,
    period_start: Option<NaiveDate>,
    period_end: Option<NaiveDate>,
    total: rust_decimal::Decimal,
    status: String,
    currency: String,
}

async fn invoices(pool: &PgPool, tenant: &str) -> Vec<Inv> {
    sqlx::query_as(
        "SELECT invoice_number, period_start, period_end, total, status::text, currency
         FROM invoices WHERE tenant_id = $1 ORDER BY period_start, created_at",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn sub_state(pool: &PgPool, tenant: &str) -> (String, NaiveDate, NaiveDate) {
    sqlx::query_as(
        "SELECT status::text, start_date, end_date FROM subscriptions WHERE tenant_id = $1
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Settles every open invoice of the tenant (payments are exercised elsewhere).
async fn pay_all(pool: &PgPool, tenant: &str) {
    sqlx::query("UPDATE invoices SET status = 'paid', amount_paid = total, amount_due = 0 WHERE tenant_id = $1 AND status IN ('pending', 'overdue')")
        .bind(tenant).execute(pool).await.unwrap();
}

fn money(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_monthly_subscription_anchored_on_the_31st_renews_once_per_period_through_a_year() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    bill(&app, "2025-02-28").await;
    bill(&app, "2025-02-28").await;
    let inv = invoices(&app.pool, &t).await;
    assert_eq!(inv.len(), 1, "running twice bills once: {inv:?}");
    assert_eq!(
        (inv[0].period_start, inv[0].period_end),
        (Some(d("2025-02-28")), Some(d("2025-03-31")))
    );
    assert_eq!(inv[0].total, money("29.00"));
    assert_eq!(inv[0].invoice_number, "SAH-2025-0001");

    // Thirteen months on, the tenant paying each invoice as it comes.
    for date in [
        "2025-03-31",
        "2025-04-30",
        "2025-05-31",
        "2025-06-30",
        "2025-07-31",
        "2025-08-31",
        "2025-09-30",
        "2025-10-31",
        "2025-11-30",
        "2025-12-31",
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ] {
        pay_all(&app.pool, &t).await;
        bill(&app, date).await;
    }
    let inv = invoices(&app.pool, &t).await;
    assert_eq!(inv.len(), 14);
    let ends: Vec<NaiveDate> = inv.iter().map(|i| i.period_end.unwrap()).collect();
    assert!(
        ends.contains(&d("2025-04-30"))
            && ends.contains(&d("2026-02-28"))
            && ends.contains(&d("2026-04-30"))
    );
    let (status, start, end) = sub_state(&app.pool, &t).await;
    assert_eq!(
        (status.as_str(), start, end),
        ("active", d("2026-03-31"), d("2026-04-30"))
    );
}

#[tokio::test]
async fn a_missed_stretch_is_caught_up_with_one_invoice_per_period() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            start: "2025-01-10",
            end: "2025-02-10",
            anchor: 10,
            ..Sub::default()
        },
    )
    .await;
    let report = bill(&app, "2025-05-17").await;
    assert_eq!(report.renewals.invoices_issued, 4);
    let inv = invoices(&app.pool, &t).await;
    let starts: Vec<NaiveDate> = inv.iter().map(|i| i.period_start.unwrap()).collect();
    assert_eq!(
        starts,
        [
            d("2025-02-10"),
            d("2025-03-10"),
            d("2025-04-10"),
            d("2025-05-10")
        ]
    );
}

#[tokio::test]
async fn quarterly_and_yearly_cycles_charge_their_prices_in_the_subscription_currency() {
    let app = TestApp::spawn().await;
    let q = tenant_with(
        &app.pool,
        Sub {
            cycle: "quarterly",
            start: "2025-01-15",
            end: "2025-04-15",
            anchor: 15,
            ..Sub::default()
        },
    )
    .await;
    let y = tenant_with(
        &app.pool,
        Sub {
            plan: "professional",
            cycle: "yearly",
            start: "2024-04-15",
            end: "2025-04-15",
            anchor: 15,
            currency: "YER",
            ..Sub::default()
        },
    )
    .await;
    bill(&app, "2025-04-15").await;
    let qi = invoices(&app.pool, &q).await;
    assert_eq!(
        (qi[0].total, qi[0].period_end),
        (money("79.00"), Some(d("2025-07-15")))
    );
    let yi = invoices(&app.pool, &y).await;
    assert_eq!(
        (yi[0].total, yi[0].period_end),
        (money("247500.00"), Some(d("2026-04-15")))
    );
    assert_eq!(yi[0].currency, "YER");
}

#[tokio::test]
async fn a_trial_converts_to_active_with_its_first_invoice_at_trial_end() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            status: "trial",
            start: "2025-01-01",
            end: "2025-01-15",
            anchor: 15,
            ..Sub::default()
        },
    )
    .await;
    bill(&app, "2025-01-14").await;
    assert!(invoices(&app.pool, &t).await.is_empty());
    let r = bill(&app, "2025-01-15").await;
    assert_eq!(r.renewals.trials_converted, 1);
    let inv = invoices(&app.pool, &t).await;
    assert_eq!(inv.len(), 1);
    assert_eq!(
        (inv[0].period_start, inv[0].period_end),
        (Some(d("2025-01-15")), Some(d("2025-02-15")))
    );
    let (status, _, end) = sub_state(&app.pool, &t).await;
    assert_eq!((status.as_str(), end), ("active", d("2025-02-15")));
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND event_type = 'subscription.trial_expired'")
        .bind(&t).fetch_one(&app.pool).await.unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_trial_canceled_at_period_end_ends_without_an_invoice() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            status: "trial",
            start: "2025-01-01",
            end: "2025-01-15",
            anchor: 15,
            ..Sub::default()
        },
    )
    .await;
    sqlx::query("UPDATE subscriptions SET cancel_at_period_end = true WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    bill(&app, "2025-01-20").await;
    assert!(invoices(&app.pool, &t).await.is_empty());
    assert_eq!(sub_state(&app.pool, &t).await.0, "canceled");
}

#[tokio::test]
async fn the_free_plan_renews_without_invoices() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            plan: "free",
            ..Sub::default()
        },
    )
    .await;
    bill(&app, "2025-03-01").await;
    assert!(invoices(&app.pool, &t).await.is_empty());
    assert_eq!(sub_state(&app.pool, &t).await.2, d("2025-03-31"));
}

#[tokio::test]
async fn cancel_at_period_end_cancels_instead_of_invoicing() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    sqlx::query("UPDATE subscriptions SET cancel_at_period_end = true WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    bill(&app, "2025-03-05").await;
    assert!(invoices(&app.pool, &t).await.is_empty());
    assert_eq!(sub_state(&app.pool, &t).await.0, "canceled");
}

#[tokio::test]
async fn overage_of_each_metric_kind_is_billed_with_the_next_period() {
    let app = TestApp::spawn().await;
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
        ("api_calls_per_day", "2025-04-01", 900, 0), // next period: not billed now
        ("fields", "2025-03-01", 9, 12),
        ("storage_gb", "2025-02-01", 7, 7), // level carried from before the period
    ] {
        sqlx::query("INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES ($1, $2, $3, $4, $5)")
            .bind(&t).bind(metric).bind(d(window)).bind(used).bind(peak).execute(&app.pool).await.unwrap();
    }
    bill(&app, "2025-04-01").await;
    let inv = invoices(&app.pool, &t).await;
    assert_eq!(inv.len(), 1);
    // 29 + 10×0.50 + 100×0.001 + 2×5.00 + 2×2.00
    assert_eq!(inv[0].total, money("48.10"));
    let lines: Vec<(String, Option<String>, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT l.kind::text, l.metric, l.amount FROM invoice_lines l JOIN invoices i USING (invoice_id)
         WHERE i.tenant_id = $1 ORDER BY position",
    )
    .bind(&t).fetch_all(&app.pool).await.unwrap();
    assert_eq!(lines.len(), 5, "{lines:?}");
    let sum: rust_decimal::Decimal = lines.iter().map(|l| l.2).sum();
    assert_eq!(sum, inv[0].total);
}

#[tokio::test]
async fn a_credit_balance_is_applied_as_a_line_on_the_next_invoice() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    sqlx::query("INSERT INTO credit_balance_entries (entry_id, tenant_id, currency, amount, reason) VALUES ($1, $2, 'USD', 40.00, 'downgrade')")
        .bind(uuid::Uuid::new_v4()).bind(&t).execute(&app.pool).await.unwrap();
    bill(&app, "2025-02-28").await;
    bill(&app, "2025-03-31").await;
    let inv = invoices(&app.pool, &t).await;
    assert_eq!(inv[0].total, money("0.00"));
    assert_eq!(inv[0].status, "paid", "a zero total is issued paid");
    assert_eq!(inv[1].total, money("18.00"));
    let left: rust_decimal::Decimal =
        sqlx::query_scalar("SELECT SUM(amount) FROM credit_balance_entries WHERE tenant_id = $1")
            .bind(&t)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(left, money("0.00"));
}

#[tokio::test]
async fn dunning_walks_overdue_past_due_suspended_and_payment_reactivates() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    bill(&app, "2025-02-28").await; // invoice due 2025-03-07
    bill(&app, "2025-03-08").await;
    assert_eq!(invoices(&app.pool, &t).await[0].status, "overdue");
    assert_eq!(sub_state(&app.pool, &t).await.0, "active");
    bill(&app, "2025-03-21").await;
    assert_eq!(sub_state(&app.pool, &t).await.0, "past_due");
    bill(&app, "2025-04-06").await;
    assert_eq!(sub_state(&app.pool, &t).await.0, "suspended");
    // Paying the overdue invoice through the API reactivates at once, without a billing run.
    let (invoice_id, due): (uuid::Uuid, String) =
        sqlx::query_as("SELECT invoice_id, amount_due::text FROM invoices WHERE tenant_id = $1 AND status = 'overdue'")
            .bind(&t).fetch_one(&app.pool).await.unwrap();
    let paid = app
        .post(
            "/v1/payments",
            Auth::Admin,
            serde_json::json!({"invoice_id": invoice_id, "amount": due, "method": "cash"}),
        )
        .await;
    assert_status!(paid, 201);
    assert_eq!(sub_state(&app.pool, &t).await.0, "active");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND event_type = 'subscription.reactivated'")
        .bind(&t).fetch_one(&app.pool).await.unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn two_billing_runs_at_once_on_two_pools_issue_each_period_once_with_gapless_numbers() {
    let app = TestApp::spawn().await;
    for _ in 0..60 {
        tenant_with(&app.pool, Sub::default()).await;
    }
    let other = billing_core::db::connect(&app.config, &app.database_url)
        .await
        .unwrap();
    let at = d("2025-02-28")
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    let (a, b) = tokio::join!(
        run_daily(&app.pool, &app.config, at, |_| {}),
        run_daily(&other, &app.config, at, |_| {})
    );
    let issued = a.unwrap().renewals.invoices_issued + b.unwrap().renewals.invoices_issued;
    assert_eq!(issued, 60);
    let numbers: Vec<String> =
        sqlx::query_scalar("SELECT invoice_number FROM invoices ORDER BY invoice_number")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let expected: Vec<String> = (1..=60).map(|n| format!("SAH-2025-{n:04}")).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn the_admin_billing_run_endpoint_reports_what_it_did() {
    let app = TestApp::spawn().await;
    tenant_with(&app.pool, Sub::default()).await;
    let r = app
        .post(
            "/v1/admin/billing-run?date=2025-02-28",
            Auth::Admin,
            Value::Null,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["report"]["renewals"]["invoices_issued"], 1);
    assert_status!(
        app.post(
            "/v1/admin/billing-run?date=2025-02-30",
            Auth::Admin,
            Value::Null
        )
        .await,
        422
    );
    assert_status!(
        app.post("/v1/admin/billing-run", Auth::Service, Value::Null)
            .await,
        403
    );
}

#[tokio::test]
async fn a_run_killed_mid_way_and_run_again_bills_every_period_exactly_once() {
    let app = TestApp::spawn().await;
    for _ in 0..30 {
        tenant_with(&app.pool, Sub::default()).await;
    }
    let at = d("2025-02-28")
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let pool = app.pool.clone();
    let config = app.config.clone();
    let run = tokio::spawn(async move {
        billing_core::services::renewal::run_renewals(&pool, &config, at, 7, move |r| {
            let _ = tx.send(r.invoices_issued);
        })
        .await
    });
    let first_batch = rx.recv().await.unwrap();
    run.abort();
    let _ = run.await;
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(
        committed >= first_batch as i64 && committed < 30,
        "killed part-way: {committed}"
    );
    bill(&app, "2025-02-28").await;
    let numbers: Vec<String> =
        sqlx::query_scalar("SELECT invoice_number FROM invoices ORDER BY invoice_number")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let expected: Vec<String> = (1..=30).map(|n| format!("SAH-2025-{n:04}")).collect();
    assert_eq!(numbers, expected);
}

#[tokio::test]
async fn the_scheduler_runs_a_day_once_across_replicas() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, Sub::default()).await;
    let second = TestApp::spawn_on(&app.database_url, |_| {}).await;
    let when = d("2025-02-28")
        .and_time(NaiveTime::from_hms_opt(5, 0, 0).unwrap())
        .and_utc();
    app.clock.set(when);
    second.clock.set(when);
    let state_a = billing_core::state::AppState::new(app.pool.clone(), app.config.clone())
        .with_clock(app.clock.clone());
    let state_b = billing_core::state::AppState::new(second.pool.clone(), second.config.clone())
        .with_clock(second.clock.clone());
    let (a, b) = tokio::join!(
        billing_core::jobs::scheduler::tick(&state_a),
        billing_core::jobs::scheduler::tick(&state_b)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|ran| **ran).count(),
        1
    );
    assert!(
        !billing_core::jobs::scheduler::tick(&state_a).await.unwrap(),
        "the day is done"
    );
    assert_eq!(invoices(&app.pool, &t).await.len(), 1);
    // Before the configured hour nothing runs.
    app.clock.set(
        d("2025-03-01")
            .and_time(NaiveTime::from_hms_opt(1, 0, 0).unwrap())
            .and_utc(),
    );
    assert!(!billing_core::jobs::scheduler::tick(&state_a).await.unwrap());
}

#[tokio::test]
async fn one_subscription_that_cannot_be_billed_does_not_stop_the_others_or_dunning() {
    let app = TestApp::spawn().await;
    let huge = tenant_with(
        &app.pool,
        Sub {
            currency: "YER",
            ..Sub::default()
        },
    )
    .await;
    let fine = tenant_with(&app.pool, Sub::default()).await;
    // a gauge peak whose overage (≈ 1e9 × 5 USD × 250) cannot be an amount
    sqlx::query("INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES ($1, 'fields', '2025-01-31', 0, 1000000000)")
        .bind(&huge).execute(&app.pool).await.unwrap();
    let r = bill(&app, "2025-02-28").await;
    assert_eq!(r.renewals.failed, 1);
    assert_eq!(r.renewals.invoices_issued, 1);
    assert!(invoices(&app.pool, &huge).await.is_empty());
    assert_eq!(invoices(&app.pool, &fine).await.len(), 1);
    // the failed subscription stays due (retried next run) and the number it took was returned
    assert_eq!(sub_state(&app.pool, &huge).await.2, d("2025-02-28"));
    let number: String = sqlx::query_scalar("SELECT invoice_number FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(number, "SAH-2025-0001");
    let r = bill(&app, "2025-03-08").await;
    assert_eq!(r.dunning.invoices_overdue, 1, "dunning still runs");
}
