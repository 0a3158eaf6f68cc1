//! Test harness: each test gets a fresh PostgreSQL database cloned from a migrated template, and
//! the real router served on a loopback port, driven over real HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use billing_core::auth::{issue_token, Role};
use billing_core::config::Config;
use billing_core::state::{AppState, ManualClock};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use std::str::FromStr;

pub mod pg;
mod testdb;

pub use testdb::DbUrl;

pub const SERVICE_KEY: &str = "test-service-key";

/// The server URL tests run against: `DATABASE_URL` (as set by `scripts/test`), else the
/// embedded server.
async fn server_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => tokio::task::spawn_blocking(|| {
            let pgdata = Config::from_env().ok().and_then(|c| c.embedded_pgdata);
            billing_core::db::embedded::ensure_running(pgdata.as_deref())
        })
        .await
        .expect("join")
        .expect("embedded PostgreSQL"),
    }
}

fn with_database(url: &str, db: &str) -> String {
    let opts = PgConnectOptions::from_str(url)
        .expect("valid DATABASE_URL")
        .database(db);
    opts.to_url_lossy().to_string()
}

/// A fingerprint of the migrations, so a changed migration gets a new template.
fn template_name() -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for m in billing_core::db::MIGRATOR.iter() {
        for b in m.checksum.iter() {
            h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    format!("billing_tpl_{:012x}", h & 0xffff_ffff_ffff)
}

/// Creates (once per server, guarded by an advisory lock) the migrated template database, then
/// clones it for this test. The database is dropped when the returned URL, its clones and every
/// `TestApp` on it are gone.
pub async fn fresh_database() -> DbUrl {
    let base = server_url().await;
    let admin_url = with_database(&base, "postgres");
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect to postgres db");
    let tpl = template_name();
    sqlx::query("SELECT pg_advisory_lock(777001)")
        .execute(&mut admin)
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&tpl)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        let building = format!("{tpl}_building");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {building}"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {building}"))
            .execute(&mut admin)
            .await
            .unwrap();
        {
            let pool = PgPool::connect(&with_database(&base, &building))
                .await
                .unwrap();
            billing_core::db::MIGRATOR
                .run(&pool)
                .await
                .expect("migrations apply");
            pool.close().await;
        }
        sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {tpl}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {tpl}"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_unlock(777001)")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.ok();
    let url = with_database(&base, &name);
    DbUrl::owned(admin_url, name, url)
}

pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn error_code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// The `field` of each entry of the error envelope's `fields`, in order.
    pub fn field_names(&self) -> Vec<String> {
        self.body["fields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| f["field"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Admin,
    Service,
    TenantAdmin(String),
    TenantUser(String),
    Bearer(String),
}

pub struct TestApp {
    pub base: String,
    pub pool: PgPool,
    pub config: Config,
    pub clock: Arc<ManualClock>,
    pub client: reqwest::Client,
    /// Keeps the test database alive while the app is (see `DbUrl`).
    pub database_url: DbUrl,
    /// The outbox relay status this app's `/readyz` reports (hand it to a relay the test runs).
    pub relay_health: billing_core::jobs::outbox_relay::RelayHealth,
    /// The app's usage caches (a test can drop a tenant's entries as a write would).
    pub usage_cache: billing_core::services::usage::cache::UsageCache,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        let url = fresh_database().await;
        Self::spawn_on(&url, |_| {}).await
    }

    /// Serves the app on an existing database (e.g. a second "replica" on the same one).
    pub async fn spawn_on(url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::for_tests(url);
        tweak(&mut config);
        let pool = billing_core::db::connect(&config, url).await.expect("pool");
        let clock = Arc::new(ManualClock::default());
        let state = AppState::new(pool.clone(), config.clone()).with_clock(clock.clone());
        let relay_health = state.relay_health.clone();
        let usage_cache = state.usage_cache.clone();
        let app = billing_core::http::router(state);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("server");
        });
        TestApp {
            base: format!("http://{addr}"),
            pool,
            config,
            clock,
            client: reqwest::Client::new(),
            database_url: DbUrl::lookup(url),
            relay_health,
            usage_cache,
        }
    }

    pub fn token(&self, role: Role, tenant: Option<&str>) -> String {
        issue_token(&self.config.jwt_secret, "test-user", role, tenant, 3600).unwrap()
    }

    fn apply_auth(&self, rb: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
        match auth {
            Auth::None => rb,
            Auth::Service => rb.header("x-api-key", SERVICE_KEY),
            Auth::Admin => rb.bearer_auth(self.token(Role::SuperAdmin, None)),
            Auth::TenantAdmin(t) => rb.bearer_auth(self.token(Role::TenantAdmin, Some(t))),
            Auth::TenantUser(t) => rb.bearer_auth(self.token(Role::TenantUser, Some(t))),
            Auth::Bearer(t) => rb.bearer_auth(t),
        }
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder, auth: &Auth) -> Resp {
        let resp = self
            .apply_auth(rb, auth)
            .send()
            .await
            .expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, auth: Auth) -> Resp {
        self.send(self.client.get(self.url(path)), &auth).await
    }

    pub async fn delete(&self, path: &str, auth: Auth) -> Resp {
        self.send(self.client.delete(self.url(path)), &auth).await
    }

    pub async fn post(&self, path: &str, auth: Auth, body: Value) -> Resp {
        self.send(self.client.post(self.url(path)).json(&body), &auth)
            .await
    }

    pub async fn patch(&self, path: &str, auth: Auth, body: Value) -> Resp {
        self.send(self.client.patch(self.url(path)).json(&body), &auth)
            .await
    }

    /// POST with an `Idempotency-Key` header.
    pub async fn post_idem(&self, path: &str, auth: Auth, key: &str, body: Value) -> Resp {
        self.send(
            self.client
                .post(self.url(path))
                .header("idempotency-key", key)
                .json(&body),
            &auth,
        )
        .await
    }

    /// POST a raw body (for malformed JSON tests).
    pub async fn post_raw(&self, path: &str, auth: Auth, body: &str) -> Resp {
        self.send(
            self.client
                .post(self.url(path))
                .header("content-type", "application/json")
                .body(body.to_string()),
            &auth,
        )
        .await
    }
}

/// Asserts the response status, printing the body when it differs.
#[macro_export]
macro_rules! assert_status {
    ($resp:expr, $code:expr) => {{
        let r = &$resp;
        assert_eq!(
            r.status.as_u16(),
            $code,
            "unexpected status; body: {}",
            r.body
        );
    }};
}

pub fn d(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A subscription to insert directly (for tests that travel in time from a given period).
pub struct Sub<'a> {
    pub plan: &'a str,
    pub cycle: &'a str,
    pub status: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    pub anchor: i16,
    pub currency: &'a str,
}

impl Default for Sub<'_> {
    fn default() -> Self {
        Sub {
            plan: "starter",
            cycle: "monthly",
            status: "active",
            start: "2025-01-31",
            end: "2025-02-28",
            anchor: 31,
            currency: "USD",
        }
    }
}

/// Inserts a tenant with one subscription; returns the tenant id.
pub async fn tenant_with(pool: &PgPool, s: Sub<'_>) -> String {
    let tenant = format!("farm-{}", uuid::Uuid::new_v4().simple());
    sqlx::query("INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, 'Farm', 'مزرعة', 'f@example.com', '+967700000000')")
        .bind(&tenant)
        .execute(pool)
        .await
        .unwrap();
    let trial_end = (s.status == "trial").then(|| d(s.end));
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, currency,
             anchor_day, start_date, end_date, next_billing_date, trial_end_date)
         VALUES ($1, $2, $3, $4::subscription_status, $5::billing_cycle, $6, $7, $8, $9, $9, $10)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&tenant)
    .bind(s.plan)
    .bind(s.status)
    .bind(s.cycle)
    .bind(s.currency)
    .bind(s.anchor)
    .bind(d(s.start))
    .bind(d(s.end))
    .bind(trial_end)
    .execute(pool)
    .await
    .unwrap();
    tenant
}
