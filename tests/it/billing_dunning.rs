//! Dunning at scale: hundreds of invoices turning overdue in one run, after `ANALYZE`, so the
//! planner is free to pick the plans a real database gets. Every change has its own event.
use crate::common;

use billing_core::jobs::run_daily;
use chrono::NaiveTime;
use common::{d, Auth, TestApp};
use serde_json::Value;
use sqlx::PgPool;

/// `n` tenants with an active monthly subscription due on `due` (as `scripts/bench-renewals`
/// seeds them: every 10th on professional, every 4th in YER).
async fn seed_due(pool: &PgPool, n: i32, due: &str) {
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone)
         SELECT 'dun-' || g, 'Farm ' || g, 'مزرعة ' || g, 'farm' || g || '@example.com',
                '+96770' || lpad(g::text, 7, '0')
         FROM generate_series(1, $1) g",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle,
                                    currency, anchor_day, start_date, end_date, next_billing_date)
         SELECT gen_random_uuid(), 'dun-' || g,
                CASE WHEN g % 10 = 0 THEN 'professional' ELSE 'starter' END, 'active', 'monthly',
                CASE WHEN g % 4 = 0 THEN 'YER' ELSE 'USD' END, extract(day FROM $2::date)::int,
                $2::date - interval '1 month', $2::date, $2::date
         FROM generate_series(1, $1) g",
    )
    .bind(n)
    .bind(d(due))
    .execute(pool)
    .await
    .unwrap();
}

async fn analyze(pool: &PgPool) {
    sqlx::query("ANALYZE invoices, subscriptions, outbox_events, tenants")
        .execute(pool)
        .await
        .unwrap();
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Every row of `table` has `status`, and `event_type` was recorded `n` times with `n`
/// distinct ids (each repeated in its payload). Then refreshes the statistics for the next run.
async fn assert_every(pool: &PgPool, table: &str, status: &str, event_type: &str, n: i64) {
    let by_status: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT status::text, count(*) FROM {table} GROUP BY 1"
    ))
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(by_status, vec![(status.to_string(), n)], "{table}");
    assert_eq!(events(pool, event_type).await, (n, n), "{event_type}");
    analyze(pool).await;
}

/// An event type's count and its number of distinct ids (an id the payload does not repeat
/// is not counted).
async fn events(pool: &PgPool, event_type: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id) FILTER (WHERE payload->>'event_id' = event_id::text)
         FROM outbox_events WHERE event_type = $1",
    )
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn run(app: &TestApp, date: &str) -> billing_core::jobs::DailyReport {
    let at = d(date)
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, at, |_| {})
        .await
        .expect("the billing run succeeds")
}

#[tokio::test]
async fn hundreds_of_invoices_go_overdue_past_due_and_suspended_with_one_event_each() {
    const N: i64 = 300;
    let app = TestApp::spawn().await;
    seed_due(&app.pool, N as i32, "2025-03-01").await;
    analyze(&app.pool).await;
    let r = run(&app, "2025-03-01").await;
    assert_eq!(r.renewals.invoices_issued, N as u64);
    analyze(&app.pool).await;

    // Due 2025-03-08 (7 days): the day after, every invoice is overdue.
    let r = run(&app, "2025-03-09").await;
    assert_eq!(r.dunning.invoices_overdue, N as u64);
    assert_every(&app.pool, "invoices", "overdue", "invoice_overdue", N).await;

    // 14 days after the due date: every subscription past_due.
    let r = run(&app, "2025-03-22").await;
    assert_eq!(r.dunning.subscriptions_past_due, N as u64);
    assert_every(
        &app.pool,
        "subscriptions",
        "past_due",
        "subscription.past_due",
        N,
    )
    .await;

    // 30 days after: suspended, through the admin endpoint (which answered 500 before).
    let r = app
        .post(
            "/v1/admin/billing-run?date=2025-04-07",
            Auth::Admin,
            Value::Null,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["report"]["dunning"]["subscriptions_suspended"], N);
    assert_every(
        &app.pool,
        "subscriptions",
        "suspended",
        "subscription.suspended",
        N,
    )
    .await;

    // Paying everything reactivates all of them in one sweep, one event each.
    sqlx::query(
        "UPDATE invoices SET status = 'paid', amount_paid = total, amount_due = 0
         WHERE status IN ('pending', 'overdue')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    analyze(&app.pool).await;
    let r = run(&app, "2025-04-08").await;
    assert_eq!(r.dunning.subscriptions_reactivated, N as u64);
    assert_eq!(events(&app.pool, "subscription.reactivated").await, (N, N));
    let dup = scalar(
        &app.pool,
        "SELECT count(*) - count(DISTINCT event_id) FROM outbox_events",
    )
    .await;
    assert_eq!(dup, 0);
}

/// The reproduction from issue 10: 30 subscriptions due, `bill --date` that date, `ANALYZE`,
/// `bill --date` the day after the due date.
#[tokio::test]
async fn bill_a_day_after_the_due_date_turns_thirty_invoices_overdue() {
    let url = common::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    seed_due(&pool, 30, "2025-03-01").await;
    let first = crate::cli::billing_core(&url, &["bill", "--date", "2025-03-01"]).await;
    assert!(first.status.success(), "{}", crate::cli::describe(&first));
    analyze(&pool).await;
    let out = crate::cli::billing_core(&url, &["bill", "--date", "2025-03-09"]).await;
    assert!(out.status.success(), "{}", crate::cli::describe(&out));
    let report: Value = serde_json::from_str(&crate::cli::stdout(&out)).expect("JSON report");
    assert_eq!(report["dunning"]["invoices_overdue"], 30, "{report}");
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM invoices WHERE status = 'overdue'"
        )
        .await,
        30
    );
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(DISTINCT event_id) FROM outbox_events WHERE event_type = 'invoice_overdue'"
        )
        .await,
        30
    );
}

#[tokio::test]
async fn two_dunning_runs_at_once_change_each_invoice_once_with_one_event() {
    const N: i64 = 200;
    let app = TestApp::spawn().await;
    seed_due(&app.pool, N as i32, "2025-03-01").await;
    run(&app, "2025-03-01").await;
    analyze(&app.pool).await;
    let other = billing_core::db::connect(&app.config, &app.database_url)
        .await
        .unwrap();
    let day = d("2025-04-07");
    let (a, b) = tokio::join!(
        billing_core::services::dunning::run_dunning(&app.pool, &app.config, day),
        billing_core::services::dunning::run_dunning(&other, &app.config, day)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.invoices_overdue + b.invoices_overdue, N as u64);
    assert_eq!(
        a.subscriptions_suspended + b.subscriptions_suspended,
        N as u64
    );
    assert_eq!(events(&app.pool, "invoice_overdue").await, (N, N));
    assert_eq!(events(&app.pool, "subscription.suspended").await, (N, N));
    assert_eq!(events(&app.pool, "subscription.past_due").await, (0, 0));
}
