//! A local Stripe that answers the way Stripe does (shapes from `stripe/openapi`'s spec3 and
//! fixtures3 on API version 2025-03-31.basil; the answers are written here):
//! - the first answer to an `Idempotency-Key` is stored, errors and 500s included, and every
//!   later request with that key gets it again;
//! - card errors are 402 with Stripe's error object (`type: card_error`, `code`,
//!   `decline_code`, `message`, the `payment_intent`);
//! - `requires_action` carries `client_secret` and `next_action` (`use_stripe_sdk`);
//! - refunds are `pending` (in `Processing` mode) until the test moves them on;
//! - the work is done before the configured delay, so a client that times out leaves the
//!   object created, as at Stripe;
//! - GET of a PaymentIntent / Refund, PaymentIntent Search by metadata and the refund list of
//!   a PaymentIntent read the stored objects.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{form, reply, serve, Fake, Inner, Mode};

pub async fn stripe() -> Fake {
    let inner = std::sync::Arc::new(std::sync::Mutex::new(Inner::default()));
    let placeholder = Fake {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        inner: inner.clone(),
    };
    let router = Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/search", get(search_intents))
        .route("/v1/payment_intents/{id}", get(get_object))
        .route("/v1/payment_methods", post(create_payment_method))
        .route("/v1/refunds", post(create_refund).get(list_refunds))
        .route("/v1/refunds/{id}", get(get_object))
        .with_state(placeholder);
    let addr = serve(router).await;
    Fake { addr, inner }
}

type Answer = (StatusCode, Json<Value>);

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Fake {
    /// `(Stripe-Version, User-Agent)` of every request received.
    pub fn versions_seen(&self) -> Vec<(Option<String>, Option<String>)> {
        self.inner.lock().unwrap().versions_seen.clone()
    }
    /// Stored PaymentIntents and Refunds whose `object` is `kind`.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let i = self.inner.lock().unwrap();
        i.objects
            .iter()
            .filter(|o| o["object"] == kind)
            .cloned()
            .collect()
    }
    /// Changes a stored object as Stripe would over time (a refund `pending` → `failed`);
    /// returns it.
    pub fn update_object(&self, id: &str, patch: Value) -> Value {
        let mut i = self.inner.lock().unwrap();
        let o = i.objects.iter_mut().find(|o| o["id"] == id).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            o[k] = v.clone();
        }
        o.clone()
    }
}

impl Fake {
    /// Stripe loses sight of an object (a lookup finds nothing) until [`Fake::put_object`]
    /// brings it back; returns it.
    pub fn take_object(&self, id: &str) -> Value {
        let mut i = self.inner.lock().unwrap();
        let at = i.objects.iter().position(|o| o["id"] == id).unwrap();
        i.objects.remove(at)
    }
    pub fn put_object(&self, object: Value) {
        self.inner.lock().unwrap().objects.push(object);
    }
}

/// Counts the request, records its headers and returns the stored answer for its key.
fn arrive(fake: &Fake, headers: &HeaderMap, key: Option<&str>) -> Option<(u16, Value)> {
    let mut i = fake.inner.lock().unwrap();
    i.received += 1;
    i.auth_seen.push(header(headers, "authorization"));
    i.versions_seen.push((
        header(headers, "stripe-version"),
        header(headers, "user-agent"),
    ));
    key.and_then(|k| i.by_key.get(k).cloned())
}

/// Stores the answer under the key (Stripe keeps the first answer, whatever it was), then
/// answers after the delay.
async fn answer(fake: &Fake, key: Option<String>, status: u16, body: Value) -> Answer {
    let delay = {
        let mut i = fake.inner.lock().unwrap();
        if let Some(k) = key {
            i.by_key.insert(k, (status, body.clone()));
        }
        i.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    reply(status, body)
}

async fn replay(fake: &Fake, stored: (u16, Value)) -> Answer {
    let delay = fake.inner.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    reply(stored.0, stored.1)
}

fn store(fake: &Fake, object: &Value, request: Value) {
    let mut i = fake.inner.lock().unwrap();
    i.objects.push(object.clone());
    i.created.push(request);
}

fn api_error() -> Value {
    json!({"error": {"type": "api_error", "message": "An unknown error occurred",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake"}})
}

fn bad_key() -> Value {
    json!({"error": {"type": "invalid_request_error",
        "message": "Invalid API Key provided: sk_test_****_123"}})
}

fn card_error(intent: Option<&Value>) -> Value {
    json!({"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "payment_intent": intent, "request_log_url": "https://dashboard.stripe.com/test/logs/req_fake",
    }})
}

fn metadata(f: &HashMap<String, String>) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in f {
        if let Some(name) = k
            .strip_prefix("metadata[")
            .and_then(|r| r.strip_suffix(']'))
        {
            m.insert(name.to_string(), json!(v));
        }
    }
    Value::Object(m)
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    )
}

fn intent(f: &HashMap<String, String>, status: &str) -> Value {
    let id = new_id("pi");
    let amount: i64 = f.get("amount").and_then(|a| a.parse().ok()).unwrap_or(-1);
    let requires_action = status == "requires_action";
    let declined = status == "requires_payment_method";
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "automatic_payment_methods": {
            "enabled": f.get("automatic_payment_methods[enabled]").map(|v| v == "true"),
            "allow_redirects": f.get("automatic_payment_methods[allow_redirects]"),
        },
        "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic",
        "client_secret": format!("{id}_secret_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        "confirmation_method": "automatic", "created": 1_774_000_000, "currency": f.get("currency"),
        "customer": null, "description": f.get("description"),
        "last_payment_error": if declined { card_error(None)["error"].clone() } else { Value::Null },
        "latest_charge": if status == "succeeded" { json!(new_id("ch")) } else { Value::Null },
        "livemode": false, "metadata": metadata(f),
        "next_action": if requires_action {
            json!({"type": "use_stripe_sdk", "use_stripe_sdk": {
                "type": "three_d_secure_redirect", "source": new_id("src"),
                "stripe_js": "https://hooks.stripe.com/redirect/authenticate/src_fake"}})
        } else { Value::Null },
        "payment_method": f.get("payment_method"), "payment_method_types": ["card"],
        "status": status,
    })
}

async fn create_intent(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Answer {
    let key = header(&headers, "idempotency-key");
    if let Some(stored) = arrive(&fake, &headers, key.as_deref()) {
        return replay(&fake, stored).await;
    }
    let f = form(&body);
    let request = |object: &Value| json!({"form": f, "idempotency_key": key, "object": object});
    let (status, body) = match fake.mode() {
        Mode::Fail500 => (500, api_error()),
        Mode::BadKey => (401, bad_key()),
        Mode::Fail500AfterCreate => {
            let pi = intent(&f, "succeeded");
            store(&fake, &pi, request(&pi));
            (500, api_error())
        }
        mode => {
            let status = match mode {
                Mode::Processing => "processing",
                Mode::RequiresAction => "requires_action",
                Mode::Decline => "requires_payment_method",
                _ => "succeeded",
            };
            let pi = intent(&f, status);
            store(&fake, &pi, request(&pi));
            if mode == Mode::Decline {
                (402, card_error(Some(&pi)))
            } else {
                (200, pi)
            }
        }
    };
    answer(&fake, key, status, body).await
}

/// `tok_…` → a PaymentMethod (what `card[token]` does); `tok_chargeDeclined` is declined.
async fn create_payment_method(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let key = header(&headers, "idempotency-key");
    if let Some(stored) = arrive(&fake, &headers, key.as_deref()) {
        return replay(&fake, stored).await;
    }
    let f = form(&body);
    let token = f.get("card[token]").cloned().unwrap_or_default();
    let (status, body) = if token == "tok_chargeDeclined" {
        (402, card_error(None))
    } else {
        let pm = json!({"id": new_id("pm"), "object": "payment_method", "type": f.get("type"),
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
            "livemode": false, "metadata": {}});
        fake.inner.lock().unwrap().objects.push(pm.clone());
        (200, pm)
    };
    answer(&fake, key, status, body).await
}

async fn create_refund(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Answer {
    let key = header(&headers, "idempotency-key");
    if let Some(stored) = arrive(&fake, &headers, key.as_deref()) {
        return replay(&fake, stored).await;
    }
    let f = form(&body);
    let refund = |status: &str| {
        json!({
            "id": new_id("re"), "object": "refund",
            "amount": f.get("amount").and_then(|a| a.parse::<i64>().ok()),
            "balance_transaction": null, "charge": new_id("ch"), "created": 1_774_000_000,
            "currency": "usd", "destination_details": {"type": "card", "card": {"type": "refund"}},
            "failure_reason": null, "metadata": metadata(&f),
            "payment_intent": f.get("payment_intent"), "reason": f.get("reason"),
            "receipt_number": null, "source_transfer_reversal": null, "status": status,
            "transfer_reversal": null,
        })
    };
    let request = |object: &Value| json!({"form": f, "idempotency_key": key, "object": object});
    let (status, body) = match fake.mode() {
        Mode::Fail500 => (500, api_error()),
        Mode::BadKey => (401, bad_key()),
        Mode::Decline => (
            400,
            json!({"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                "message": "Charge ch_fake has already been refunded."}}),
        ),
        mode => {
            let status = if mode == Mode::Processing {
                "pending"
            } else {
                "succeeded"
            };
            let re = refund(status);
            store(&fake, &re, request(&re));
            if mode == Mode::Fail500AfterCreate {
                (500, api_error())
            } else {
                (200, re)
            }
        }
    };
    answer(&fake, key, status, body).await
}

fn no_such(id: &str) -> Answer {
    let kind = if id.starts_with("re_") {
        "refund"
    } else {
        "payment_intent"
    };
    reply(
        404,
        json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "param": "id", "message": format!("No such {kind}: '{id}'")}}),
    )
}

async fn get_object(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    arrive(&fake, &headers, None);
    let found = fake
        .inner
        .lock()
        .unwrap()
        .objects
        .iter()
        .find(|o| o["id"] == id)
        .cloned();
    match found {
        Some(o) => reply(200, o),
        None => no_such(&id),
    }
}

/// Only the query the client sends: `metadata['payment_id']:'<uuid>'`.
async fn search_intents(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    arrive(&fake, &headers, None);
    let query = q.get("query").cloned().unwrap_or_default();
    let Some(wanted) = query
        .strip_prefix("metadata['payment_id']:'")
        .and_then(|r| r.strip_suffix('\''))
    else {
        return reply(
            400,
            json!({"error": {"type": "invalid_request_error",
            "message": format!("Unsupported search query: {query}")}}),
        );
    };
    let data: Vec<Value> = fake
        .objects("payment_intent")
        .into_iter()
        .filter(|o| o["metadata"]["payment_id"] == wanted)
        .collect();
    reply(
        200,
        json!({"object": "search_result", "data": data, "has_more": false,
        "next_page": null, "url": "/v1/payment_intents/search"}),
    )
}

async fn list_refunds(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    arrive(&fake, &headers, None);
    let intent = q.get("payment_intent").cloned();
    let data: Vec<Value> = fake
        .objects("refund")
        .into_iter()
        .filter(|o| intent.is_none() || o["payment_intent"].as_str() == intent.as_deref())
        .collect();
    reply(
        200,
        json!({"object": "list", "data": data, "has_more": false, "url": "/v1/refunds"}),
    )
}
