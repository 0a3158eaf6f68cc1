//! Issue 12 against the Stripe fake: refunds that a retry cannot double, `charge.refunded`
//! without `refunds`, the reconciliation job, and refunds `pending` until Stripe says so.

use crate::common;
use crate::fakes;

use std::time::Duration;

use billing_core::gateways::stripe::sign;
use billing_core::jobs::reconcile::run_once;
use billing_core::services::payments::reconcile::{ReconcileReport, Windows};
use billing_core::state::Clock;
use common::{Auth, Resp, TestApp};
use fakes::{invoice_for, Fake, Mode};
use serde_json::{json, Value};

pub const WHSEC: &str = "whsec_issue12";

/// An app on the fake with a 1 s gateway timeout (so a test can outwait it).
pub async fn app_on(fake: &Fake) -> TestApp {
    let url = common::fresh_database().await;
    let base = fake.url();
    TestApp::spawn_on(&url, |cfg| {
        cfg.stripe_api_base = base;
        cfg.stripe_api_key = Some("sk_test_123".into());
        cfg.stripe_webhook_secret = Some(WHSEC.into());
        cfg.gateway_timeout = Duration::from_secs(1);
    })
    .await
}

/// One pass of the reconciliation job with no grace and no wait before abandoning.
pub async fn reconcile_now(app: &TestApp) -> ReconcileReport {
    let windows = Windows {
        grace: Duration::ZERO,
        abandon_after: Duration::ZERO,
    };
    run_once(&app.pool, &app.config, windows, app.clock.now())
        .await
        .unwrap()
}

pub async fn deliver(app: &TestApp, secret: &str, event: &Value) -> Resp {
    let body = event.to_string();
    let t = app.clock.now().timestamp();
    let rb = app
        .client
        .post(app.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header(
            "stripe-signature",
            format!("t={t},v1={}", sign(secret, t, body.as_bytes())),
        )
        .body(body);
    app.send(rb, &Auth::None).await
}

pub fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "api_version": "2025-03-31.basil",
        "livemode": false, "data": {"object": object}})
}

pub async fn get(app: &TestApp, path: &str, member: &str) -> Value {
    app.get(path, Auth::Admin).await.body[member].clone()
}

pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// A 29.00 invoice paid by card (succeeded); returns (invoice id, payment).
async fn card_paid(app: &TestApp, tenant: &str) -> (String, Value) {
    let inv = invoice_for(app, tenant).await;
    let body = json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card",
        "stripe_token": "pm_card_visa"});
    let r = app.post("/v1/payments", Auth::Admin, body).await;
    assert_status!(r, 201);
    (inv, r.body["payment"].clone())
}

fn refund_body(payment: &Value, amount: &str) -> Value {
    json!({"payment_id": payment["payment_id"], "amount": amount, "reason": "Goodwill"})
}

#[tokio::test]
async fn a_refund_retried_after_a_timeout_leaves_exactly_one_refund_at_stripe() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-timeout").await;
    // Stripe refunds, but answers after the client gave up.
    fake.set_delay(Duration::from_millis(1500));
    let body = refund_body(&p, "10.00");
    let r = app
        .post_idem("/v1/refunds", Auth::Admin, "ref-t", body.clone())
        .await;
    assert_status!(r, 502);
    assert_eq!(r.body["refund_status"], "pending");
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["amount_paid"],
        "29.00"
    );
    fake.set_delay(Duration::ZERO);
    let again = app
        .post_idem("/v1/refunds", Auth::Admin, "ref-t", body.clone())
        .await;
    assert_status!(again, 201);
    assert_eq!(again.body["refund"]["refund_id"], r.body["refund_id"]);
    assert_eq!(again.body["refund"]["status"], "succeeded");
    let at_stripe = fake.objects("refund");
    assert_eq!(at_stripe.len(), 1, "one refund at Stripe");
    assert_eq!(
        again.body["refund"]["external_refund_id"],
        at_stripe[0]["id"]
    );
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(again.body["payment"]["refunded_amount"], "10.00");
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["amount_paid"],
        "19.00"
    );
    let third = app
        .post_idem("/v1/refunds", Auth::Admin, "ref-t", body)
        .await;
    assert_eq!(third.headers["idempotent-replayed"], "true");
    assert_eq!(fake.objects("refund").len(), 1);
}

#[tokio::test]
async fn a_refund_retried_after_a_stored_stripe_500_is_read_back_not_sent_again() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (_, p) = card_paid(&app, "farm-12-r500").await;
    fake.set_mode(Mode::Fail500AfterCreate);
    let body = refund_body(&p, "29.00");
    assert_status!(
        app.post_idem("/v1/refunds", Auth::Admin, "ref-5", body.clone())
            .await,
        502
    );
    let again = app
        .post_idem("/v1/refunds", Auth::Admin, "ref-5", body)
        .await;
    assert_status!(again, 201);
    assert_eq!(again.body["payment"]["status"], "refunded");
    assert_eq!(fake.objects("refund").len(), 1);
    let posts = fake
        .created()
        .iter()
        .filter(|c| c["object"]["object"] == "refund")
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn charge_refunded_without_refunds_is_200_and_never_guesses_a_refund() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-chref").await;
    let r = app
        .post("/v1/refunds", Auth::Admin, refund_body(&p, "10.00"))
        .await;
    assert_status!(r, 201);
    let re = fake.objects("refund")[0].clone();
    let charge = |refunds: Value| {
        json!({"id": "ch_1", "object": "charge", "amount": 2900, "amount_refunded": 1000,
            "currency": "usd", "payment_intent": p["external_id"], "refunded": false,
            "refunds": refunds})
    };
    for (i, refunds) in [
        Value::Null,
        json!({"object": "list", "data": [re.clone()], "has_more": false}),
    ]
    .into_iter()
    .enumerate()
    {
        let r = deliver(
            &app,
            WHSEC,
            &event(&format!("evt_ch_{i}"), "charge.refunded", charge(refunds)),
        )
        .await;
        assert_status!(r, 200);
    }
    let r = deliver(&app, WHSEC, &event("evt_re_up", "refund.updated", re)).await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "already_recorded");
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["amount_paid"],
        "19.00"
    );
}

#[tokio::test]
async fn a_pending_refund_counts_nowhere_until_it_succeeds_and_a_later_failure_reverses_it() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-pend").await;
    let pid = p["payment_id"].as_str().unwrap();
    fake.set_mode(Mode::Processing);
    let r = app
        .post("/v1/refunds", Auth::Admin, refund_body(&p, "10.00"))
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["refund"]["status"], "pending");
    assert_eq!(r.body["payment"]["refunded_amount"], "0.00");
    let (inv_path, pay_path) = (format!("/v1/invoices/{inv}"), format!("/v1/payments/{pid}"));
    let invoice = || get(&app, &inv_path, "invoice");
    let payment = || get(&app, &pay_path, "payment");
    let refunded = || async {
        let r = app
            .get(
                "/v1/reports/revenue?start_date=2026-01-01&end_date=2026-12-31",
                Auth::Admin,
            )
            .await;
        r.body["by_currency"]["USD"]["refunded"].clone()
    };
    assert_eq!(invoice().await["amount_paid"], "29.00");
    assert_eq!(refunded().await, "0.00");
    // Nothing more than what is left may be asked for meanwhile.
    let over = app
        .post("/v1/refunds", Auth::Admin, refund_body(&p, "19.01"))
        .await;
    assert_status!(over, 422);
    let re_id = r.body["refund"]["external_refund_id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = fake.update_object(&re_id, json!({"status": "succeeded"}));
    assert_status!(
        deliver(&app, WHSEC, &event("evt_p1", "refund.updated", done)).await,
        200
    );
    assert_eq!(payment().await["refunded_amount"], "10.00");
    assert_eq!(invoice().await["amount_paid"], "19.00");
    assert_eq!(refunded().await, "10.00");
    let failed = fake.update_object(
        &re_id,
        json!({"status": "failed", "failure_reason": "expired_or_canceled_card"}),
    );
    let r = deliver(&app, WHSEC, &event("evt_p2", "refund.failed", failed)).await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "refund_reversed");
    assert_eq!(payment().await["refunded_amount"], "0.00");
    let i = invoice().await;
    assert_eq!(
        (i["amount_paid"].as_str(), i["status"].as_str()),
        (Some("29.00"), Some("paid"))
    );
    assert_eq!(refunded().await, "0.00");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.refund_failed'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_job_settles_a_pending_refund_from_stripe() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-jobref").await;
    fake.set_mode(Mode::Processing);
    let r = app
        .post("/v1/refunds", Auth::Admin, refund_body(&p, "29.00"))
        .await;
    assert_status!(r, 201);
    assert_eq!(reconcile_now(&app).await.refunds_resolved, 0);
    let re_id = r.body["refund"]["external_refund_id"].as_str().unwrap();
    fake.update_object(re_id, json!({"status": "succeeded"}));
    let report = reconcile_now(&app).await;
    assert_eq!((report.refunds_checked, report.refunds_resolved), (1, 1));
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["status"],
        "refunded"
    );
}

#[tokio::test]
async fn a_payment_left_pending_by_a_stored_500_is_failed_by_the_job_and_the_invoice_can_be_paid() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-p500").await;
    let card = json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card", "stripe_token": "pm_card_visa"});
    fake.set_mode(Mode::Fail500);
    assert_status!(
        app.post_idem("/v1/payments", Auth::Admin, "pay-1", card.clone())
            .await,
        502
    );
    fake.set_mode(Mode::Succeed);
    // Stripe replays its stored 500 for the key; nothing is created.
    let again = app
        .post_idem("/v1/payments", Auth::Admin, "pay-1", card.clone())
        .await;
    assert_status!(again, 502);
    assert_eq!(fake.objects("payment_intent").len(), 0);
    let other = app
        .post_idem("/v1/payments", Auth::Admin, "pay-2", card.clone())
        .await;
    assert_status!(other, 422);
    assert_eq!(other.error_code(), "amount_exceeds_due");
    let report = reconcile_now(&app).await;
    assert_eq!((report.payments_checked, report.payments_abandoned), (1, 1));
    let paid = app
        .post_idem("/v1/payments", Auth::Admin, "pay-2", card)
        .await;
    assert_status!(paid, 201);
    assert_eq!(paid.body["invoice_status"], "paid");
    assert_eq!(fake.objects("payment_intent").len(), 1);
}

#[tokio::test]
async fn the_job_settles_a_processing_payment_from_stripe_and_leaves_a_young_one_alone() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-jobpay").await;
    fake.set_mode(Mode::Processing);
    let card = json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card", "stripe_token": "pm_card_visa"});
    let r = app.post("/v1/payments", Auth::Admin, card).await;
    assert_status!(r, 201);
    let young = Windows {
        grace: Duration::from_secs(3600),
        abandon_after: Duration::ZERO,
    };
    let report = run_once(&app.pool, &app.config, young, app.clock.now())
        .await
        .unwrap();
    assert_eq!(report.payments_checked, 0);
    let pi = r.body["payment"]["external_id"].as_str().unwrap();
    fake.update_object(pi, json!({"status": "succeeded", "amount_received": 2900}));
    let report = reconcile_now(&app).await;
    assert_eq!((report.payments_checked, report.payments_resolved), (1, 1));
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["status"],
        "paid"
    );
}

mod reopen;
