use crate::common;
use crate::fakes;

use billing_core::gateways::stripe::sign;
use billing_core::state::Clock;
use common::{Auth, Resp, TestApp};
use fakes::{invoice_for, Fake, Mode};
use futures::future::join_all;
use serde_json::{json, Value};

async fn app_with_stripe(fake: &Fake) -> TestApp {
    let url = common::fresh_database().await;
    let base = fake.url();
    TestApp::spawn_on(&url, |cfg| {
        cfg.stripe_api_base = base;
        cfg.stripe_api_key = Some("sk_test_123".into());
        cfg.stripe_webhook_secret = Some("whsec_r".into());
    })
    .await
}

/// A 29.00 invoice paid in cash by an admin; returns (invoice id, payment id).
async fn paid_in_cash(app: &TestApp, tenant: &str) -> (String, String) {
    let inv = invoice_for(app, tenant).await;
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": inv, "amount": "29.00", "method": "cash"}),
        )
        .await;
    assert_status!(r, 201);
    (
        inv,
        r.body["payment"]["payment_id"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn refund(app: &TestApp, payment_id: &str, amount: Option<&str>) -> Resp {
    let mut body =
        json!({"payment_id": payment_id, "reason": "Customer asked", "reason_ar": "طلب العميل"});
    if let Some(a) = amount {
        body["amount"] = json!(a);
    }
    app.post("/v1/refunds", Auth::Admin, body).await
}

async fn invoice(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/invoices/{id}"), Auth::Admin)
        .await
        .body["invoice"]
        .clone()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn partial_refunds_add_up_to_the_payment_and_one_cent_more_is_422() {
    let app = TestApp::spawn().await;
    let (inv, pid) = paid_in_cash(&app, "farm-ref-partial").await;
    let r = refund(&app, &pid, Some("10.00")).await;
    assert_status!(r, 201);
    assert_eq!(r.body["refund"]["refund_amount"], "10.00");
    assert_eq!(r.body["refund"]["is_full_refund"], false);
    assert_eq!(r.body["payment"]["refunded_amount"], "10.00");
    assert_eq!(r.body["payment"]["status"], "succeeded");
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (
            i["status"].as_str(),
            i["amount_paid"].as_str(),
            i["amount_due"].as_str()
        ),
        (Some("pending"), Some("19.00"), Some("10.00"))
    );
    let r = refund(&app, &pid, Some("19.00")).await;
    assert_status!(r, 201);
    assert_eq!(r.body["refund"]["is_full_refund"], true);
    assert_eq!(r.body["payment"]["status"], "refunded");
    let over = refund(&app, &pid, Some("0.01")).await;
    assert_status!(over, 422);
    assert_eq!(over.error_code(), "refund_exceeds_payment");
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (i["status"].as_str(), i["amount_paid"].as_str()),
        (Some("refunded"), Some("0.00"))
    );
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.refunded'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn a_refund_over_what_is_left_is_422_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let (inv, pid) = paid_in_cash(&app, "farm-ref-over").await;
    assert_status!(refund(&app, &pid, Some("20.00")).await, 201);
    let r = refund(&app, &pid, Some("9.01")).await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "refund_exceeds_payment");
    assert_eq!(r.body["refundable"], "9.00");
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "9.00");
}

#[tokio::test]
async fn two_refunds_racing_for_the_last_amount_let_one_through() {
    let app = TestApp::spawn().await;
    let (inv, pid) = paid_in_cash(&app, "farm-ref-race").await;
    assert_status!(refund(&app, &pid, Some("20.00")).await, 201);
    let results = join_all((0..2).map(|_| refund(&app, &pid, Some("9.00")))).await;
    let mut codes: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    codes.sort();
    assert_eq!(codes, [201, 422]);
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 2);
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (i["status"].as_str(), i["amount_paid"].as_str()),
        (Some("refunded"), Some("0.00"))
    );
}

#[tokio::test]
async fn a_refund_without_an_amount_refunds_everything_left_and_the_invoice_is_refunded() {
    let app = TestApp::spawn().await;
    let (inv, pid) = paid_in_cash(&app, "farm-ref-full").await;
    let key = "refund-key-1";
    let body = json!({"payment_id": pid, "reason": "Duplicate charge"});
    let r = app
        .post_idem("/v1/refunds", Auth::Admin, key, body.clone())
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["refund"]["refund_amount"], "29.00");
    assert_eq!(r.body["refund"]["reason_ar"], "Duplicate charge");
    assert_eq!(r.body["invoice_status"], "refunded");
    let again = app.post_idem("/v1/refunds", Auth::Admin, key, body).await;
    assert_eq!(again.body, r.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(invoice(&app, &inv).await["status"], "refunded");
}

#[tokio::test]
async fn only_succeeded_payments_can_be_refunded_and_only_by_a_super_admin() {
    let app = TestApp::spawn().await;
    let inv = invoice_for(&app, "farm-ref-rules").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::TenantAdmin("farm-ref-rules".into()),
            json!({"invoice_id": inv, "amount": "29.00", "method": "bank_transfer"}),
        )
        .await;
    let pid = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = refund(&app, &pid, None).await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "payment_not_refundable");
    let r = app
        .post(
            "/v1/refunds",
            Auth::TenantAdmin("farm-ref-rules".into()),
            json!({"payment_id": pid, "reason": "x"}),
        )
        .await;
    assert_status!(r, 403);
    let r = app
        .post(
            "/v1/refunds",
            Auth::None,
            json!({"payment_id": pid, "reason": "x"}),
        )
        .await;
    assert_status!(r, 401);
    let r = refund(&app, &uuid::Uuid::new_v4().to_string(), None).await;
    assert_status!(r, 404);
}

#[tokio::test]
async fn bad_refund_input_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let (_, pid) = paid_in_cash(&app, "farm-ref-bad").await;
    let cases = [
        (json!({"payment_id": "nope", "reason": "x"}), "payment_id"),
        (json!({"payment_id": pid, "reason": ""}), "reason"),
        (json!({"payment_id": pid}), "body"),
        (
            json!({"payment_id": pid, "reason": "x", "amount": "-1"}),
            "amount",
        ),
        (
            json!({"payment_id": pid, "reason": "x", "amount": "1.001"}),
            "amount",
        ),
        (
            json!({"payment_id": pid, "reason": "x", "extra": 1}),
            "extra",
        ),
    ];
    for (body, field) in cases {
        let r = app.post("/v1/refunds", Auth::Admin, body.clone()).await;
        assert_status!(r, 422);
        let named = r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == field);
        assert!(named, "{body} should name {field}: {}", r.body);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 0);
}

async fn card_payment(app: &TestApp, tenant: &str) -> (String, Value) {
    let inv = invoice_for(app, tenant).await;
    let r = app
        .post("/v1/payments", Auth::Admin, json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card", "stripe_token": "pm_card_visa"}))
        .await;
    assert_status!(r, 201);
    (inv, r.body["payment"].clone())
}

#[tokio::test]
async fn a_card_refund_goes_through_stripe_with_our_refund_id_as_its_key() {
    let fake = fakes::stripe().await;
    let app = app_with_stripe(&fake).await;
    let (inv, p) = card_payment(&app, "farm-ref-card").await;
    let pid = p["payment_id"].as_str().unwrap();
    let r = refund(&app, pid, Some("10.50")).await;
    assert_status!(r, 201);
    let sent = &fake.created()[1];
    assert_eq!(sent["form"]["payment_intent"], p["external_id"]);
    assert_eq!(sent["form"]["amount"], "1050");
    assert_eq!(sent["idempotency_key"], r.body["refund"]["refund_id"]);
    assert_eq!(r.body["refund"]["external_refund_id"], sent["object"]["id"]);
    let r = refund(&app, pid, None).await;
    assert_status!(r, 201);
    assert_eq!(fake.created()[2]["form"]["amount"], "1850");
    assert_eq!(invoice(&app, &inv).await["status"], "refunded");
}

/// Stripe answered 500 before refunding (and stores that 500): the refund stays `pending`,
/// holding its share, until Stripe is asked; nothing is refunded meanwhile.
#[tokio::test]
async fn a_failing_stripe_refund_is_502_and_refunds_nothing() {
    let fake = fakes::stripe().await;
    let app = app_with_stripe(&fake).await;
    let (inv, p) = card_payment(&app, "farm-ref-card-500").await;
    let pid = p["payment_id"].as_str().unwrap();
    fake.set_mode(Mode::Fail500);
    let r = refund(&app, pid, Some("10.00")).await;
    assert_status!(r, 502);
    assert_eq!(r.error_code(), "gateway_error");
    assert_eq!(r.body["refund_status"], "pending");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "29.00");
    // The reconciliation job finds no such refund at Stripe: it failed.
    fake.set_mode(Mode::Succeed);
    let report = crate::gateway_stripe_reconcile::reconcile_now(&app).await;
    assert_eq!(report.refunds_resolved, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM refunds WHERE status = 'failed'").await,
        1
    );
    assert_status!(refund(&app, pid, Some("29.00")).await, 201);
    assert_eq!(fake.objects("refund").len(), 1);
}

#[tokio::test]
async fn a_refund_made_in_the_stripe_dashboard_is_recorded_from_its_webhook_once() {
    let fake = fakes::stripe().await;
    let app = app_with_stripe(&fake).await;
    let (inv, p) = card_payment(&app, "farm-ref-dash").await;
    // The Refund object is what names the refund (charge.refunded only has the total).
    let event = json!({"id": "evt_refund_1", "object": "event", "type": "refund.created",
        "data": {"object": {"id": "re_dash_1", "object": "refund", "amount": 900,
        "charge": "ch_1", "currency": "usd", "metadata": {}, "payment_intent": p["external_id"],
        "reason": "duplicate", "status": "succeeded"}}});
    let body = event.to_string();
    let t = app.clock.now().timestamp();
    for _ in 0..2 {
        let r = app
            .send(
                app.client
                    .post(app.url("/v1/webhooks/stripe"))
                    .header(
                        "stripe-signature",
                        format!("t={t},v1={}", sign("whsec_r", t, body.as_bytes())),
                    )
                    .body(body.clone()),
                &Auth::None,
            )
            .await;
        assert_status!(r, 200);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "20.00");
    let r = refund(&app, p["payment_id"].as_str().unwrap(), Some("20.01")).await;
    assert_status!(r, 422);
}
