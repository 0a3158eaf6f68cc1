//! Database faults (SPEC section 8): while PostgreSQL is down requests fail fast with 503
//! `database_unavailable` and service resumes by itself when it returns; a connection lost in
//! the middle of a request answers 503 (retryable) and a retry with the same key converges to
//! one effect.

use std::time::{Duration, Instant};

use crate::common::pg::OwnPostgres;
use crate::common::{tenant_with, Auth, Resp, Sub, TestApp};
use serde_json::json;

/// A server of the test's own with the migrated `billing` database, and the app on it.
async fn app_on_own_server(conf: &'static str) -> (OwnPostgres, TestApp) {
    let pg = tokio::task::spawn_blocking(move || OwnPostgres::start(conf, |_| {}))
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect(&pg.url("postgres", ""))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE billing")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let url = pg.url("billing", "");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    billing_core::db::MIGRATOR.run(&pool).await.unwrap();
    pool.close().await;
    let app = TestApp::spawn_on(&url, |_| {}).await;
    (pg, app)
}

/// A tenant on Starter (which bills overage, so its usage takes the group commit) for the
/// current month, with its invoice issued. Returns (tenant, invoice id).
async fn tenant_and_invoice(app: &TestApp) -> (String, String) {
    let t = tenant_with(
        &app.pool,
        Sub {
            start: "2026-12-01",
            end: "2027-01-01",
            anchor: 1,
            ..Sub::default()
        },
    )
    .await;
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .into(),
    );
    let r = app
        .post(
            &format!("/v1/tenants/{t}/invoices/generate"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(r, 201);
    let invoice = r.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    (t, invoice)
}

fn assert_unavailable(r: &Resp, took: Duration, what: &str) {
    assert_status!(r, 503);
    assert_eq!(r.error_code(), "database_unavailable", "{what}: {}", r.body);
    assert!(r.body["message_ar"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    // A behaviour bound, not a speed target: it fails fast rather than hanging for the 30 s
    // pool timeout.
    assert!(took < Duration::from_secs(5), "{what} took {took:?}");
    println!("{what}: 503 database_unavailable after {took:?}");
}

async fn timed(fut: impl std::future::Future<Output = Resp>) -> (Resp, Duration) {
    let started = Instant::now();
    let r = fut.await;
    (r, started.elapsed())
}

#[tokio::test]
async fn while_the_database_is_down_requests_fail_fast_and_recover_by_themselves() {
    let (pg, app) = app_on_own_server("").await;
    let (t, invoice) = tenant_and_invoice(&app).await;
    let usage = format!("/v1/tenants/{t}/usage");
    let event =
        |id: &str| json!({"metric": "satellite_analyses_per_month", "quantity": 1, "event_id": id});
    // Two events warm the quota cache, so the next one goes through the group commit.
    for id in ["warm-1", "warm-2"] {
        assert_status!(app.post(&usage, Auth::Service, event(id)).await, 201);
    }
    let pay = json!({"invoice_id": invoice, "amount": "1.00", "method": "cash"});

    pg.crash();
    let (r, took) = timed(app.post(&usage, Auth::Service, event("during-outage"))).await;
    assert_unavailable(&r, took, "usage through the group commit");
    let (r, took) =
        timed(app.post_idem("/v1/payments", Auth::Admin, "pay-outage", pay.clone())).await;
    assert_unavailable(&r, took, "payment");
    let (r, took) = timed(app.get(&format!("/v1/tenants/{t}"), Auth::Admin)).await;
    assert_unavailable(&r, took, "tenant read");
    // Once known down, every request answers at once; liveness stays up, readiness does not.
    let started = Instant::now();
    for _ in 0..20 {
        let r = app
            .post(&usage, Auth::Service, event("during-outage"))
            .await;
        assert_eq!(r.error_code(), "database_unavailable", "{}", r.body);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "20 requests while down took {took:?}"
    );
    let h = app.get("/healthz", Auth::None).await;
    assert_status!(h, 200);
    assert_eq!(h.body["status"], "degraded");
    assert_status!(app.get("/readyz", Auth::None).await, 503);

    let pg = tokio::task::spawn_blocking(move || {
        pg.resume();
        pg
    })
    .await
    .unwrap();
    let back = Instant::now();
    loop {
        let r = app.get(&format!("/v1/tenants/{t}"), Auth::Admin).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.error_code(), "database_unavailable", "{}", r.body);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no recovery in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = back.elapsed();
    println!("served again {recovered:?} after PostgreSQL accepted connections");
    assert!(
        recovered < Duration::from_secs(5),
        "recovery took {recovered:?}"
    );
    assert_status!(app.get("/readyz", Auth::None).await, 200);

    // The retries with the same event id and key count once.
    let r = app
        .post(&usage, Auth::Service, event("during-outage"))
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    pays_once(&app, "pay-outage", pay, &invoice).await;
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_records WHERE event_id = 'during-outage'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);
    drop(pg);
}

/// The ids of the service's backends on this test's database that wait for a lock.
async fn waiting_backends(app: &TestApp) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'billing-core'
           AND wait_event_type = 'Lock'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_connection_lost_mid_request_answers_503_and_the_retry_pays_once() {
    let app = TestApp::spawn().await;
    let (t, invoice) = tenant_and_invoice(&app).await;
    let pay = json!({"invoice_id": invoice, "amount": "5.00", "method": "cash"});
    // Another session holds the tenant row, so the payment stops inside its transaction.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
        .bind(&t)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let request = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/payments"),
            app.token(billing_core::auth::Role::SuperAdmin, None),
        );
        let body = pay.clone();
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "pay-cut")
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        })
    };
    let started = Instant::now();
    let pids = loop {
        let pids = waiting_backends(&app).await;
        if !pids.is_empty() {
            break pids;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the payment never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for pid in pids {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut *blocker)
            .await
            .unwrap();
    }
    let (status, body) = request.await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("database_unavailable")),
        "{body}"
    );
    blocker.rollback().await.unwrap();

    // The database itself is fine: the retry with the same key goes through, once.
    pays_once(&app, "pay-cut", pay, &invoice).await;
}

/// Retries the payment under `key` (and once more): one payment, the same one both times.
async fn pays_once(app: &TestApp, key: &str, pay: serde_json::Value, invoice: &str) {
    let first = app
        .post_idem("/v1/payments", Auth::Admin, key, pay.clone())
        .await;
    assert_status!(first, 201);
    let again = app.post_idem("/v1/payments", Auth::Admin, key, pay).await;
    assert_eq!(
        again.body["payment"]["payment_id"],
        first.body["payment"]["payment_id"]
    );
    let payments: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE invoice_id = $1::uuid")
            .bind(invoice)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(payments, 1);
}
