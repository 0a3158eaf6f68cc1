//! The real `billing-core` binary, run as a child process against a fresh database.

use crate::common;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use billing_core::auth::verify_token;
use common::{Auth, TestApp};
use serde_json::json;
use sqlx::PgPool;

const JWT_SECRET: &str = "cli-test-secret-0123456789abcdef0123456789";

/// Runs the binary with a controlled environment: the given database, test settings, no stdin,
/// and a working directory without a `.env` file.
pub(crate) async fn billing_core(database_url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-core"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", database_url)
        .env("ENVIRONMENT", "test")
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("the binary runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub(crate) fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

#[tokio::test]
async fn check_only_on_a_migrated_database_reports_the_state_and_exits_zero() {
    let url = common::fresh_database().await;
    let migrate = billing_core(&url, &["migrate"]).await;
    assert!(migrate.status.success(), "{}", describe(&migrate));
    let check = billing_core(&url, &["db", "init", "--check-only"]).await;
    assert_eq!(check.status.code(), Some(0), "{}", describe(&check));
    let out = stdout(&check);
    assert!(out.contains("database: connected"), "{out}");
    let known = billing_core::db::MIGRATOR.iter().count();
    assert!(
        out.contains(&format!("migrations: {known} of {known} applied")),
        "{out}"
    );
}

#[tokio::test]
async fn seeding_twice_creates_the_sample_data_once() {
    let url = common::fresh_database().await;
    let first = billing_core(&url, &["db", "init", "--seed"]).await;
    assert!(first.status.success(), "{}", describe(&first));
    let year = chrono::Utc::now().date_naive() - chrono::Days::new(15);
    let number = format!("SAH-{}-0001", chrono::Datelike::year(&year));
    assert!(stdout(&first).contains(&number), "{}", describe(&first));
    assert!(stdout(&first).contains("created tenant demo-farm-active"));

    let second = billing_core(&url, &["db", "init", "--seed"]).await;
    assert!(second.status.success(), "{}", describe(&second));
    assert!(
        stdout(&second).contains("already present"),
        "{}",
        describe(&second)
    );

    let pool = PgPool::connect(&url).await.unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tenants WHERE tenant_id LIKE 'demo-farm-%'"
        )
        .await,
        2
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM subscriptions WHERE tenant_id = 'demo-farm-active' AND status = 'active'").await,
        1
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM subscriptions WHERE tenant_id = 'demo-farm-trial' AND status = 'trial' AND trial_end_date IS NOT NULL").await,
        1
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM invoices").await, 1);
    assert_eq!(count(&pool, "SELECT count(*) FROM invoice_lines").await, 1);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM coupons WHERE code = 'SEASON15' AND duration = 'repeating'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM plan_overage_pricing WHERE plan_id = 'professional' AND pricing->>'model' = 'graduated'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM payments WHERE status = 'succeeded'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM usage_records WHERE tenant_id = 'demo-farm-active'"
        )
        .await,
        5
    );
    // The invoice is consistent: number from the counter, totals from the lines, paid in full.
    assert_eq!(
        count(
            &pool,
            "SELECT max(last_value)::bigint FROM invoice_number_counters"
        )
        .await,
        1
    );
    let stored: String = sqlx::query_scalar("SELECT invoice_number FROM invoices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, number);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM invoices i WHERE status = 'paid' AND amount_due = 0 AND amount_paid = total
               AND subtotal = (SELECT sum(amount) FROM invoice_lines l WHERE l.invoice_id = i.invoice_id)
               AND total = (SELECT sum(amount) FROM payments p WHERE p.invoice_id = i.invoice_id)"
        )
        .await,
        1
    );
    // The usage counter of the current period matches the records.
    assert_eq!(
        count(
            &pool,
            "SELECT c.used FROM usage_counters c JOIN subscriptions s ON s.tenant_id = c.tenant_id
              WHERE c.tenant_id = 'demo-farm-active' AND c.metric = 'satellite_analyses_per_month'
                AND c.window_start = s.start_date"
        )
        .await,
        5
    );
}

#[tokio::test]
async fn check_only_against_a_closed_port_fails_within_seconds() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/billing");
    let started = Instant::now();
    let out = billing_core(&url, &["db", "init", "--check-only"]).await;
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(stdout(&out).contains("unreachable"), "{}", describe(&out));
}

#[tokio::test]
async fn drop_without_yes_and_without_a_terminal_aborts_and_keeps_the_data() {
    let url = common::fresh_database().await;
    let seed = billing_core(&url, &["db", "init", "--seed"]).await;
    assert!(seed.status.success(), "{}", describe(&seed));
    let drop = billing_core(&url, &["db", "init", "--drop"]).await;
    assert!(!drop.status.success(), "{}", describe(&drop));
    assert!(stdout(&drop).contains("aborted"), "{}", describe(&drop));
    let pool = PgPool::connect(&url).await.unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM tenants WHERE tenant_id LIKE 'demo-farm-%'"
        )
        .await,
        2
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM invoices").await, 1);
}

#[tokio::test]
async fn drop_with_yes_recreates_an_empty_schema() {
    let url = common::fresh_database().await;
    let seed = billing_core(&url, &["db", "init", "--seed"]).await;
    assert!(seed.status.success(), "{}", describe(&seed));
    let drop = billing_core(&url, &["db", "init", "--drop", "--yes"]).await;
    assert!(drop.status.success(), "{}", describe(&drop));
    let pool = PgPool::connect(&url).await.unwrap();
    assert_eq!(count(&pool, "SELECT count(*) FROM tenants").await, 0);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM plans").await,
        4,
        "the catalogue migration ran again"
    );
}

#[tokio::test]
async fn a_tenant_role_token_without_a_tenant_is_refused() {
    let out = billing_core(
        "postgres://unused@127.0.0.1:1/none",
        &["token", "--role", "tenant_admin"],
    )
    .await;
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "no token is printed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tenant"),
        "{}",
        describe(&out)
    );
}

/// The binary with one more environment variable than `billing_core` sets.
async fn billing_core_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-core"));
    cmd.args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", "postgres://unused@127.0.0.1:1/none")
        .env("ENVIRONMENT", "test")
        .env("JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("the binary runs")
}

#[tokio::test]
async fn conflicting_jwt_secrets_or_a_bad_role_map_refuse_to_start() {
    for (env, expected) in [
        (("JWT_SECRET_KEY", "a-different-secret"), "JWT_SECRET_KEY"),
        (("JWT_ROLE_MAP", "ADMIN=root"), "JWT_ROLE_MAP"),
    ] {
        let out = billing_core_with(&[env], &["serve", "--no-migrate"]).await;
        assert!(!out.status.success(), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{}",
            describe(&out)
        );
    }
    // The platform's name alone is enough, and the same secret under both names is fine.
    let out = billing_core_with(
        &[("JWT_SECRET_KEY", JWT_SECRET)],
        &["token", "--role", "super_admin"],
    )
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(verify_token(JWT_SECRET, stdout(&out).trim()).is_ok());
}

#[tokio::test]
async fn a_super_admin_token_is_accepted_by_the_api() {
    let url = common::fresh_database().await;
    let out = billing_core(&url, &["token", "--role", "super_admin"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let token = stdout(&out).trim().to_string();

    let principal = verify_token(JWT_SECRET, &token).expect("signed with JWT_SECRET");
    assert!(principal.is_super_admin());
    assert!(principal.tenant_id.is_none());
    assert!(verify_token("another-secret", &token).is_err());

    let app = TestApp::spawn_on(&url, |c| c.jwt_secret = JWT_SECRET.to_string()).await;
    let body = json!({
        "name": "Token Check", "name_ar": "فحص الرمز", "description": "Created with a CLI token",
        "description_ar": "أنشئت برمز من سطر الأوامر", "tier": "starter", "monthly_price_usd": "10.00",
        "limits": {"fields": 5}, "features": []
    });
    let r = app.post("/v1/plans", Auth::Bearer(token), body).await;
    assert_status!(r, 201);
}

#[tokio::test]
async fn bill_runs_the_daily_jobs_as_of_a_date_and_prints_the_report() {
    let url = common::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    let tenant = common::tenant_with(&pool, common::Sub::default()).await;
    let out = billing_core(&url, &["bill", "--date", "2025-02-28"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    assert_eq!(report["renewals"]["invoices_issued"], 1, "{report}");
    assert_eq!(report["date"], "2025-02-28");
    let again = billing_core(&url, &["bill", "--date", "2025-02-28"]).await;
    assert!(again.status.success(), "{}", describe(&again));
    let invoices = count(
        &pool,
        &format!("SELECT count(*) FROM invoices WHERE tenant_id = '{tenant}'"),
    )
    .await;
    assert_eq!(invoices, 1, "a second run bills nothing new");
    let bad = billing_core(&url, &["bill", "--date", "2025-02-30"]).await;
    assert!(!bad.status.success());
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_before_the_service_stops() {
    let url = common::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    let tenant = common::tenant_with(
        &pool,
        common::Sub {
            start: "2099-01-01",
            end: "2099-02-01",
            anchor: 1,
            ..common::Sub::default()
        },
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-core"))
        .args(["serve", "--no-migrate"])
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", &url)
        .env("ENVIRONMENT", "test")
        .env("JWT_SECRET", JWT_SECRET)
        .env("PORT", port.to_string())
        .env("SCHEDULER_ENABLED", "false")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "service did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Hold the tenant row so the request below waits inside the service.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM tenants WHERE tenant_id = $1 FOR UPDATE")
        .bind(&tenant)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let token = billing_core::auth::issue_token(
        JWT_SECRET,
        "t",
        billing_core::auth::Role::TenantAdmin,
        Some(&tenant),
        600,
    )
    .unwrap();
    let in_flight = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/v1/tenants/{tenant}/cancel");
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service waits for the request in flight"
    );
    blocker.commit().await.unwrap();
    assert_eq!(
        in_flight.await.unwrap().expect("the request completes"),
        200
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    let pending: bool =
        sqlx::query_scalar("SELECT cancel_at_period_end FROM subscriptions WHERE tenant_id = $1")
            .bind(&tenant)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(pending, "the request's effect was committed");
}
