//! Fake payment gateways: local HTTP servers (127.0.0.1, random port) that speak the real
//! request and response shapes, so the gateway clients are exercised over real HTTP and never
//! reach the network. Stripe (see `stripe`): form-encoded requests, JSON objects shaped by its
//! published schemas, the first answer stored per `Idempotency-Key` (errors included) and
//! replayed. Tharwatt: JSON.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

mod stripe;

pub use stripe::stripe;

/// How the fake answers the next calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Succeed,
    /// Stripe: 402 card_error (`card_declined` / `insufficient_funds`). Tharwatt: 400.
    Decline,
    /// Stripe: PaymentIntent `processing`; refunds `pending`.
    Processing,
    /// Stripe: PaymentIntent `requires_action` (3-D Secure) with `next_action`.
    RequiresAction,
    /// Stripe: 401 for a bad API key.
    BadKey,
    /// 500 before anything was created. Stripe stores it under the key and replays it.
    Fail500,
    /// Stripe: the object is created (succeeded), then 500, stored and replayed.
    Fail500AfterCreate,
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    delay: Duration,
    /// Requests that produced a new object (not idempotent replays).
    created: Vec<Value>,
    /// Every request received, including replays and 500s.
    received: usize,
    by_key: HashMap<String, (u16, Value)>,
    auth_seen: Vec<Option<String>>,
    /// Stripe: every PaymentIntent and Refund object as it is now (GET and lists read them).
    objects: Vec<Value>,
    /// Stripe: `Stripe-Version` and `User-Agent` of each request.
    versions_seen: Vec<(Option<String>, Option<String>)>,
}

#[derive(Clone)]
pub struct Fake {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Fake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = Some(mode);
    }
    pub fn set_delay(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }
    /// Objects created (PaymentIntents, refunds, deposits), in order.
    pub fn created(&self) -> Vec<Value> {
        self.inner.lock().unwrap().created.clone()
    }
    pub fn received(&self) -> usize {
        self.inner.lock().unwrap().received
    }
    pub fn auth_seen(&self) -> Vec<Option<String>> {
        self.inner.lock().unwrap().auth_seen.clone()
    }
    fn mode(&self) -> Mode {
        self.inner.lock().unwrap().mode.unwrap_or(Mode::Succeed)
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// A base URL nothing listens on (the port was bound, then released).
pub async fn unreachable_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

fn form(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap()
        .into_iter()
        .collect()
}

/// Shared request bookkeeping: counts, records auth, sleeps, and replays by key.
async fn begin(fake: &Fake, headers: &HeaderMap, key: Option<String>) -> Option<(u16, Value)> {
    let delay = {
        let mut i = fake.inner.lock().unwrap();
        i.received += 1;
        i.auth_seen.push(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        );
        i.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let i = fake.inner.lock().unwrap();
    key.and_then(|k| i.by_key.get(&k).cloned())
}

fn remember(fake: &Fake, key: Option<String>, status: u16, body: &Value, created: Value) {
    let mut i = fake.inner.lock().unwrap();
    i.created.push(created);
    if let Some(k) = key {
        i.by_key.insert(k, (status, body.clone()));
    }
}

fn reply(status: u16, body: Value) -> (StatusCode, Json<Value>) {
    (StatusCode::from_u16(status).unwrap(), Json(body))
}

// ---------------------------------------------------------------- Tharwatt

pub async fn tharwatt() -> Fake {
    let inner = Arc::new(Mutex::new(Inner::default()));
    let placeholder = Fake {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        inner: inner.clone(),
    };
    let router = Router::new()
        .route("/api/v1/payment/deposit", post(tharwatt_deposit))
        .route("/api/v1/payment/refund", post(tharwatt_refund))
        .with_state(placeholder);
    let addr = serve(router).await;
    Fake { addr, inner }
}

async fn tharwatt_deposit(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    begin(&fake, &headers, None).await;
    let merchant = headers
        .get("x-merchant-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (status, answer) = match fake.mode() {
        Mode::Fail500 => return reply(500, json!({"success": false, "message": "internal error"})),
        Mode::Decline => (
            400,
            json!({"success": false, "message": "Invalid phone number"}),
        ),
        _ => (
            200,
            json!({"success": true, "transaction_id": format!("THW-{}", uuid::Uuid::new_v4().simple()),
                "status": "pending", "reference": body["reference"], "message": "Awaiting customer approval"}),
        ),
    };
    remember(
        &fake,
        None,
        status,
        &answer,
        json!({"request": body, "merchant": merchant, "object": answer}),
    );
    reply(status, answer)
}

async fn tharwatt_refund(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    begin(&fake, &headers, None).await;
    let answer = json!({"success": true, "transaction_id": format!("THR-{}", uuid::Uuid::new_v4().simple()),
        "status": "completed"});
    remember(
        &fake,
        None,
        200,
        &answer,
        json!({"request": body, "object": answer}),
    );
    reply(200, answer)
}

// ---------------------------------------------------------------- Setup

/// A tenant with a March 2026 starter subscription and its 29.00 USD invoice; returns its id.
pub async fn invoice_for(app: &crate::common::TestApp, tenant: &str) -> String {
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 5, 10, 0, 0).unwrap());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone)
         VALUES ($1, 'Farm', 'مزرعة', 'farm@example.com', '+967771234567')",
    )
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, currency,
             anchor_day, start_date, end_date, next_billing_date)
         VALUES ($1, $2, 'starter', 'active', 'monthly', 'USD', 1, DATE '2026-03-01', DATE '2026-04-01', DATE '2026-04-01')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/invoices/generate"),
            crate::common::Auth::Admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    r.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// After webhook deliveries for the 29.00 invoice made by [`invoice_for`]: the payment is
/// succeeded, the invoice paid once, with one `payment.succeeded` event and one recorded
/// webhook event.
pub async fn assert_settled_once(app: &crate::common::TestApp, invoice_id: &str, payment_id: &str) {
    let admin = || crate::common::Auth::Admin;
    let p = app
        .get(&format!("/v1/payments/{payment_id}"), admin())
        .await;
    assert_eq!(p.body["payment"]["status"], "succeeded", "{}", p.body);
    let i = app
        .get(&format!("/v1/invoices/{invoice_id}"), admin())
        .await;
    assert_eq!(i.body["invoice"]["amount_paid"], "29.00", "{}", i.body);
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let succeeded = "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.succeeded'";
    assert_eq!(count(succeeded).await, 1);
    assert_eq!(
        count("SELECT count(*) FROM processed_webhook_events").await,
        1
    );
}
