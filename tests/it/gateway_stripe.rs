use crate::common;
use crate::fakes;

use fakes::invoice_for;

use std::time::Duration;

use billing_core::gateways::stripe::sign;
use billing_core::state::Clock;
use chrono::{TimeZone, Utc};
use common::{Auth, Resp, TestApp};
use fakes::{Fake, Mode};
use futures::future::join_all;
use serde_json::{json, Value};

const WHSEC: &str = "whsec_test_secret";

async fn card_app(base: String) -> TestApp {
    let url = common::fresh_database().await;
    TestApp::spawn_on(&url, |cfg| {
        cfg.stripe_api_base = base;
        cfg.stripe_api_key = Some("sk_test_123".into());
        cfg.stripe_webhook_secret = Some(WHSEC.into());
    })
    .await
}

fn card(invoice_id: &str, amount: &str) -> Value {
    json!({"invoice_id": invoice_id, "amount": amount, "method": "credit_card", "stripe_token": "pm_card_visa"})
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn payment(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/payments/{id}"), Auth::Admin)
        .await
        .body["payment"]
        .clone()
}

async fn invoice(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/invoices/{id}"), Auth::Admin)
        .await
        .body["invoice"]
        .clone()
}

fn intent_event(event_id: &str, kind: &str, payment_id: &str, minor: i64, currency: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "type": kind,
        "data": {"object": {
            "id": format!("pi_hook_{payment_id}"), "object": "payment_intent",
            "amount": minor, "amount_received": if kind == "payment_intent.succeeded" { minor } else { 0 },
            "currency": currency, "metadata": {"payment_id": payment_id},
            "last_payment_error": {"message": "Your card was declined."},
        }}
    })
}

/// Posts `body` exactly as given with a signature made at `t` with `secret`.
async fn deliver_raw(app: &TestApp, body: &str, header: Option<String>) -> Resp {
    let mut rb = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(h) = header {
        rb = rb.header("stripe-signature", h);
    }
    app.send(rb, &Auth::None).await
}

async fn deliver(app: &TestApp, event: &Value) -> Resp {
    let body = event.to_string();
    let t = unix_now(app);
    let header = format!("t={t},v1={}", sign(WHSEC, t, body.as_bytes()));
    deliver_raw(app, &body, Some(header)).await
}

/// The app's clock as a Unix timestamp (what a fresh signature carries).
fn unix_now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

async fn processing_payment(app: &TestApp, fake: &Fake, tenant: &str) -> (String, String) {
    let inv = invoice_for(app, tenant).await;
    fake.set_mode(Mode::Processing);
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "29.00"))
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["payment"]["status"], "processing");
    (
        inv,
        r.body["payment"]["payment_id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test]
async fn a_card_payment_confirmed_synchronously_pays_the_invoice() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-card-ok").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::TenantAdmin("farm-card-ok".into()),
            card(&inv, "29.00"),
        )
        .await;
    assert_status!(r, 201);
    let p = &r.body["payment"];
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["gateway_amount"], "29.00");
    assert_eq!(p["gateway_currency"], "USD");
    assert_eq!(r.body["invoice_status"], "paid");
    let created = fake.created();
    assert_eq!(created.len(), 1);
    let form = &created[0]["form"];
    assert_eq!(form["amount"], "2900");
    assert_eq!(form["currency"], "usd");
    assert_eq!(form["payment_method"], "pm_card_visa");
    assert_eq!(form["confirm"], "true");
    assert_eq!(form["metadata[payment_id]"], p["payment_id"]);
    assert_eq!(created[0]["idempotency_key"], p["payment_id"]);
    assert_eq!(p["external_id"], created[0]["object"]["id"]);
    assert_eq!(fake.auth_seen()[0].as_deref(), Some("Bearer sk_test_123"));
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (i["status"].as_str(), i["amount_paid"].as_str()),
        (Some("paid"), Some("29.00"))
    );
}

#[tokio::test]
async fn card_amounts_are_sent_in_exact_minor_units() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-card-cents").await;
    for amount in ["10.01", "0.29", "18.70"] {
        let r = app
            .post("/v1/payments", Auth::Admin, card(&inv, amount))
            .await;
        assert_status!(r, 201);
    }
    let sent: Vec<String> = fake
        .created()
        .iter()
        .map(|c| c["form"]["amount"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, ["1001", "29", "1870"]);
    assert_eq!(invoice(&app, &inv).await["status"], "paid");
}

#[tokio::test]
async fn the_same_webhook_delivered_five_times_settles_once() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let (inv, pid) = processing_payment(&app, &fake, "farm-hook-5").await;
    let event = intent_event("evt_five", "payment_intent.succeeded", &pid, 2900, "usd");
    let results = join_all((0..5).map(|_| deliver(&app, &event))).await;
    for r in &results {
        assert_status!(r, 200);
    }
    fakes::assert_settled_once(&app, &inv, &pid).await;
}

#[tokio::test]
async fn a_webhook_racing_the_synchronous_confirmation_settles_once() {
    let fake = fakes::stripe().await;
    fake.set_delay(Duration::from_millis(400));
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-race").await;
    let pay = app.post("/v1/payments", Auth::Admin, card(&inv, "29.00"));
    let hook = async {
        // Wait for the payment row (committed before the gateway call), then deliver.
        let pid = loop {
            let id: Option<uuid::Uuid> = sqlx::query_scalar("SELECT payment_id FROM payments")
                .fetch_optional(&app.pool)
                .await
                .unwrap();
            if let Some(id) = id {
                break id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(350)).await;
        deliver(
            &app,
            &intent_event("evt_race", "payment_intent.succeeded", &pid, 2900, "usd"),
        )
        .await
    };
    let (paid, hooked) = tokio::join!(pay, hook);
    assert_status!(paid, 201);
    assert_status!(hooked, 200);
    assert_eq!(paid.body["payment"]["status"], "succeeded");
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (i["status"].as_str(), i["amount_paid"].as_str()),
        (Some("paid"), Some("29.00"))
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.succeeded'"
        )
        .await,
        1
    );
    // And a late redelivery after both changes nothing.
    let again = deliver(
        &app,
        &intent_event(
            "evt_race_2",
            "payment_intent.succeeded",
            paid.body["payment"]["payment_id"].as_str().unwrap(),
            2900,
            "usd",
        ),
    )
    .await;
    assert_status!(again, 200);
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "29.00");
}

#[tokio::test]
async fn forged_stale_or_altered_webhooks_are_400_and_change_nothing() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let (_, pid) = processing_payment(&app, &fake, "farm-forged").await;
    let body =
        intent_event("evt_forged", "payment_intent.succeeded", &pid, 2900, "usd").to_string();
    let now = unix_now(&app);
    let altered = body.replace("2900", "2901");
    let cases = [
        Some(format!(
            "t={now},v1={}",
            sign("whsec_wrong", now, body.as_bytes())
        )),
        Some(format!(
            "t={},v1={}",
            now - 301,
            sign(WHSEC, now - 301, body.as_bytes())
        )),
        Some(format!(
            "t={},v1={}",
            now + 301,
            sign(WHSEC, now + 301, body.as_bytes())
        )),
        None,
        Some("garbage".to_string()),
    ];
    for header in cases {
        let r = deliver_raw(&app, &body, header).await;
        assert_status!(r, 400);
        assert_eq!(r.error_code(), "invalid_signature");
    }
    let signed_then_altered = format!("t={now},v1={}", sign(WHSEC, now, body.as_bytes()));
    let r = deliver_raw(&app, &altered, Some(signed_then_altered)).await;
    assert_status!(r, 400);
    // Without a configured secret nothing is accepted.
    let no_secret =
        TestApp::spawn_on(&app.database_url, |cfg| cfg.stripe_webhook_secret = None).await;
    no_secret
        .clock
        .set(Utc.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap());
    let good = format!("t={now},v1={}", sign(WHSEC, now, body.as_bytes()));
    let r = deliver_raw(&no_secret, &body, Some(good)).await;
    assert_status!(r, 400);
    assert_eq!(payment(&app, &pid).await["status"], "processing");
    assert_eq!(
        count(&app, "SELECT count(*) FROM processed_webhook_events").await,
        0
    );
}

#[tokio::test]
async fn a_webhook_for_another_amount_or_currency_does_not_settle() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let (inv, pid) = processing_payment(&app, &fake, "farm-mismatch").await;
    let r = deliver(
        &app,
        &intent_event("evt_low", "payment_intent.succeeded", &pid, 2800, "usd"),
    )
    .await;
    assert_status!(r, 200);
    let r = deliver(
        &app,
        &intent_event("evt_eur", "payment_intent.succeeded", &pid, 2900, "eur"),
    )
    .await;
    assert_status!(r, 200);
    let p = payment(&app, &pid).await;
    assert_eq!(p["status"], "processing");
    let meta: Value = sqlx::query_scalar("SELECT metadata FROM payments")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(meta["webhook_mismatch"]["expected_amount"], "29.00");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "0.00");
}

#[tokio::test]
async fn a_failure_arriving_after_success_leaves_the_payment_succeeded() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-order").await;
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "29.00"))
        .await;
    assert_status!(r, 201);
    let pid = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (id, kind) in [
        ("evt_f1", "payment_intent.payment_failed"),
        ("evt_f2", "payment_intent.canceled"),
    ] {
        let r = deliver(&app, &intent_event(id, kind, &pid, 2900, "usd")).await;
        assert_status!(r, 200);
    }
    assert_eq!(payment(&app, &pid).await["status"], "succeeded");
    assert_eq!(invoice(&app, &inv).await["status"], "paid");
}

#[tokio::test]
async fn a_failed_webhook_fails_an_open_payment() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let (_, pid) = processing_payment(&app, &fake, "farm-fail-hook").await;
    let r = deliver(
        &app,
        &intent_event(
            "evt_fail",
            "payment_intent.payment_failed",
            &pid,
            2900,
            "usd",
        ),
    )
    .await;
    assert_status!(r, 200);
    let p = payment(&app, &pid).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failure_reason"], "Your card was declined.");
}

/// Stripe created (and charged) the PaymentIntent, then answered 500, and stores that 500
/// under the key: sending it again would only replay the 500. The retry asks Stripe first.
#[tokio::test]
async fn a_gateway_500_is_502_and_a_retry_with_the_same_key_settles_the_same_payment() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-500").await;
    fake.set_mode(Mode::Fail500AfterCreate);
    let r = app
        .post_idem("/v1/payments", Auth::Admin, "retry-1", card(&inv, "29.00"))
        .await;
    assert_status!(r, 502);
    assert_eq!(r.error_code(), "gateway_error");
    assert_eq!(r.body["payment"]["status"], "pending");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "0.00");
    let again = app
        .post_idem("/v1/payments", Auth::Admin, "retry-1", card(&inv, "29.00"))
        .await;
    assert_status!(again, 201);
    assert_eq!(again.body["payment"]["status"], "succeeded");
    assert_eq!(again.body["payment"]["failure_reason"], Value::Null);
    assert_eq!(
        again.body["payment"]["payment_id"],
        r.body["payment"]["payment_id"]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
    assert_eq!(fake.created().len(), 1);
    let third = app
        .post_idem("/v1/payments", Auth::Admin, "retry-1", card(&inv, "29.00"))
        .await;
    assert_eq!(third.body, again.body);
    assert_eq!(third.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn an_unreachable_gateway_is_502_and_the_payment_stays_pending() {
    let app = card_app(fakes::unreachable_url().await).await;
    let inv = invoice_for(&app, "farm-down").await;
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "29.00"))
        .await;
    assert_status!(r, 502);
    assert_eq!(r.error_code(), "gateway_error");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'pending'"
        )
        .await,
        1
    );
    assert_eq!(invoice(&app, &inv).await["status"], "pending");
}

#[tokio::test]
async fn a_declined_card_fails_the_payment_and_a_new_attempt_can_pay() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-declined").await;
    fake.set_mode(Mode::Decline);
    let r = app
        .post_idem("/v1/payments", Auth::Admin, "decl-1", card(&inv, "29.00"))
        .await;
    // The payer's problem, not a gateway fault: 402 with the issuer's reason.
    assert_status!(r, 402);
    assert_eq!(r.error_code(), "card_declined");
    assert_eq!(r.body["decline_code"], "insufficient_funds");
    assert_eq!(r.body["gateway_code"], "card_declined");
    assert!(!r.body["message_ar"].as_str().unwrap().is_empty());
    assert_eq!(r.body["payment"]["status"], "failed");
    assert_eq!(
        r.body["gateway_message"],
        "Your card has insufficient funds."
    );
    fake.set_mode(Mode::Succeed);
    let ok = app
        .post_idem("/v1/payments", Auth::Admin, "decl-1", card(&inv, "29.00"))
        .await;
    assert_status!(ok, 201);
    assert_eq!(ok.body["payment"]["status"], "succeeded");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'failed'"
        )
        .await,
        1
    );
    assert_eq!(invoice(&app, &inv).await["status"], "paid");
}

#[tokio::test]
async fn a_hundred_parallel_duplicates_make_one_payment_and_one_gateway_call() {
    let fake = fakes::stripe().await;
    fake.set_delay(Duration::from_millis(300));
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-100").await;
    let body = card(&inv, "29.00");
    let results: Vec<Resp> = join_all(
        (0..100).map(|_| app.post_idem("/v1/payments", Auth::Admin, "dup-100", body.clone())),
    )
    .await;
    let created: Vec<&Resp> = results.iter().filter(|r| r.status == 201).collect();
    assert!(!created.is_empty());
    for r in &results {
        match r.status.as_u16() {
            201 => assert_eq!(r.body, created[0].body),
            409 => assert_eq!(r.error_code(), "idempotency_request_in_progress"),
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
    assert_eq!(fake.received(), 1);
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "29.00");
}

#[tokio::test]
async fn a_second_card_payment_cannot_be_sent_for_money_already_in_flight() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-inflight").await;
    fake.set_mode(Mode::Processing);
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "20.00"))
        .await;
    assert_status!(r, 201);
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "10.00"))
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "amount_exceeds_due");
    assert_eq!(fake.created().len(), 1);
}

/// Stripe's text may hold U+0000 (PostgreSQL text cannot): the signed event is applied and
/// recorded with the character replaced, not refused with 500 and redelivered forever.
#[tokio::test]
async fn a_signed_webhook_holding_nul_is_applied_and_recorded_once() {
    let fake = fakes::stripe().await;
    let app = card_app(fake.url()).await;
    let (_, pid) = processing_payment(&app, &fake, "farm-nul-hook").await;
    let mut event = intent_event(
        "evt_nul\u{0}1",
        "payment_intent.payment_failed",
        &pid,
        2900,
        "usd",
    );
    event["data"]["object"]["last_payment_error"]["message"] = json!("Declined\u{0} by bank");
    event["data"]["object"]["note\u{0}"] = json!("x");
    for round in 0..2 {
        let r = deliver(&app, &event).await;
        assert_status!(r, 200);
        assert_eq!(r.body["duplicate"] == true, round == 1, "{}", r.body);
    }
    let p = payment(&app, &pid).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failure_reason"], "Declined\u{FFFD} by bank");
    assert_eq!(
        count(&app, "SELECT count(*) FROM processed_webhook_events WHERE provider = 'stripe' AND event_id = 'evt_nul\u{FFFD}1'").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.failed'"
        )
        .await,
        1
    );
}
