use crate::common;
use crate::fakes;

use fakes::invoice_for;

use billing_core::gateways::tharwatt::sign;
use common::{Auth, Resp, TestApp};
use fakes::Mode;
use serde_json::{json, Value};

const SECRET: &str = "tharwatt_hook_secret";

async fn tharwatt_app(base: String) -> TestApp {
    let url = common::fresh_database().await;
    TestApp::spawn_on(&url, |cfg| {
        cfg.tharwatt_base_url = Some(base);
        cfg.tharwatt_api_key = Some("thw_key".into());
        cfg.tharwatt_merchant_id = Some("M-100".into());
        cfg.tharwatt_webhook_secret = Some(SECRET.into());
    })
    .await
}

fn deposit(invoice_id: &str) -> Value {
    json!({"invoice_id": invoice_id, "amount": "29.00", "method": "tharwatt", "phone_number": "+967771234567"})
}

async fn callback(app: &TestApp, body: &Value, signature: Option<String>) -> Resp {
    let raw = body.to_string();
    let sig = signature.unwrap_or_else(|| sign(SECRET, raw.as_bytes()));
    app.send(
        app.client
            .post(app.url("/v1/webhooks/tharwatt"))
            .header("x-tharwatt-signature", sig)
            .body(raw),
        &Auth::None,
    )
    .await
}

async fn invoice(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/invoices/{id}"), Auth::Admin)
        .await
        .body["invoice"]
        .clone()
}

async fn payment(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/payments/{id}"), Auth::Admin)
        .await
        .body["payment"]
        .clone()
}

#[tokio::test]
async fn a_tharwatt_deposit_asks_for_yer_and_settles_on_the_signed_callback() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-thw").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::TenantAdmin("farm-thw".into()),
            deposit(&inv),
        )
        .await;
    assert_status!(r, 201);
    let p = r.body["payment"].clone();
    assert_eq!(p["status"], "processing");
    assert_eq!(p["amount"], "29.00");
    assert_eq!(p["currency"], "USD");
    assert_eq!(p["gateway_amount"], "7250.00");
    assert_eq!(p["gateway_currency"], "YER");
    let sent = &fake.created()[0];
    assert_eq!(sent["request"]["amount"], "7250.00");
    assert_eq!(sent["request"]["currency"], "YER");
    assert_eq!(sent["request"]["phone_number"], "+967771234567");
    assert_eq!(sent["request"]["reference"], p["payment_id"]);
    assert_eq!(sent["merchant"], "M-100");
    assert_eq!(fake.auth_seen()[0].as_deref(), Some("Bearer thw_key"));
    assert_eq!(p["external_id"], sent["object"]["transaction_id"]);

    let event = json!({"transaction_id": p["external_id"], "status": "completed", "amount": "7250.00",
        "currency": "YER", "reference": p["payment_id"], "phone_number": "+967771234567"});
    for _ in 0..3 {
        let r = callback(&app, &event, None).await;
        assert_status!(r, 200);
        assert_eq!(r.body["status"], "succeeded");
    }
    let pid = p["payment_id"].as_str().unwrap();
    assert_eq!(payment(&app, pid).await["status"], "succeeded");
    let i = invoice(&app, &inv).await;
    assert_eq!(
        (i["status"].as_str(), i["amount_paid"].as_str()),
        (Some("paid"), Some("29.00"))
    );
    let settled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.succeeded'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(settled, 1);
}

#[tokio::test]
async fn a_bad_signature_or_the_unconverted_amount_changes_nothing() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-thw-bad").await;
    let r = app.post("/v1/payments", Auth::Admin, deposit(&inv)).await;
    assert_status!(r, 201);
    let p = r.body["payment"].clone();
    let pid = p["payment_id"].as_str().unwrap();
    let good = json!({"transaction_id": p["external_id"], "status": "completed", "amount": "7250.00",
        "currency": "YER", "reference": pid});
    let forged = callback(
        &app,
        &good,
        Some(sign("wrong", good.to_string().as_bytes())),
    )
    .await;
    assert_status!(forged, 400);
    assert_eq!(forged.error_code(), "invalid_signature");
    let unsigned = app
        .send(
            app.client
                .post(app.url("/v1/webhooks/tharwatt"))
                .body(good.to_string()),
            &Auth::None,
        )
        .await;
    assert_status!(unsigned, 400);
    // The USD figure sent as if it were YER (the old service's mistake) does not settle.
    let usd = json!({"transaction_id": p["external_id"], "status": "completed", "amount": 29.00,
        "currency": "YER", "reference": pid});
    let r = callback(&app, &usd, None).await;
    assert_status!(r, 200);
    assert_eq!(payment(&app, pid).await["status"], "processing");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "0.00");
    // A cancellation fails it; a late completion cannot revive or settle it.
    let cancel = json!({"transaction_id": p["external_id"], "status": "cancelled", "amount": "7250.00",
        "currency": "YER", "reference": pid});
    assert_status!(callback(&app, &cancel, None).await, 200);
    assert_status!(callback(&app, &good, None).await, 200);
    let after = payment(&app, pid).await;
    assert_eq!(after["status"], "failed");
    assert_eq!(after["failure_reason"], "Payment cancelled by user");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "0.00");
}

#[tokio::test]
async fn tharwatt_down_is_502_and_the_payment_is_not_succeeded() {
    let fake = fakes::tharwatt().await;
    fake.set_mode(Mode::Fail500);
    let app = tharwatt_app(fake.url()).await;
    let inv = invoice_for(&app, "farm-thw-down").await;
    let r = app.post("/v1/payments", Auth::Admin, deposit(&inv)).await;
    assert_status!(r, 502);
    assert_eq!(r.error_code(), "gateway_error");
    assert_eq!(r.body["payment"]["status"], "pending");
    let first = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Its outcome is unknown (the deposit may still complete): a second deposit for the same
    // money is refused rather than risk collecting twice...
    fake.set_mode(Mode::Decline);
    let twice = app.post("/v1/payments", Auth::Admin, deposit(&inv)).await;
    assert_status!(twice, 422);
    assert_eq!(twice.error_code(), "amount_exceeds_due");
    // ...until staff reject the unknown one (confirming by hand is refused for gateways).
    let confirm = app
        .post(
            &format!("/v1/payments/{first}/confirm"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(confirm, 409);
    let reject = app
        .post(
            &format!("/v1/payments/{first}/reject"),
            Auth::Admin,
            json!({"reason": "gateway lost it"}),
        )
        .await;
    assert_status!(reject, 200);
    let r = app.post("/v1/payments", Auth::Admin, deposit(&inv)).await;
    assert_status!(r, 502);
    assert_eq!(r.body["payment"]["status"], "failed");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "0.00");
}

#[tokio::test]
async fn a_callback_for_an_unknown_payment_is_404() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let event = json!({"transaction_id": "THW-x", "status": "completed", "amount": "10.00",
        "currency": "YER", "reference": uuid::Uuid::new_v4()});
    let r = callback(&app, &event, None).await;
    assert_status!(r, 404);
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

/// A processing Tharwatt deposit for a fresh invoice: (invoice id, payment id, transaction id).
async fn processing_deposit(app: &TestApp, tenant: &str) -> (String, String, String) {
    let inv = invoice_for(app, tenant).await;
    let r = app.post("/v1/payments", Auth::Admin, deposit(&inv)).await;
    assert_status!(r, 201);
    let p = &r.body["payment"];
    assert_eq!(p["status"], "processing");
    let text = |v: &Value| v.as_str().unwrap().to_string();
    (inv, text(&p["payment_id"]), text(&p["external_id"]))
}

/// Callbacks are deduplicated by `transaction_id:status`; a `completed` refused for its amount
/// does not take that slot, so the gateway's corrected `completed` settles the payment.
#[tokio::test]
async fn a_refused_completion_does_not_make_the_correct_one_a_duplicate() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let (inv, pid, tx) = processing_deposit(&app, "farm-thw-retry").await;
    let wrong = json!({"transaction_id": tx, "status": "completed", "amount": "29.00",
        "currency": "YER", "reference": pid});
    for _ in 0..2 {
        let r = callback(&app, &wrong, None).await;
        assert_status!(r, 200);
        assert_eq!(r.body["outcome"], "amount_mismatch", "{}", r.body);
    }
    assert_eq!(payment(&app, &pid).await["status"], "processing");
    assert_eq!(
        count(&app, "SELECT count(*) FROM processed_webhook_events").await,
        0
    );

    let right = json!({"transaction_id": tx, "status": "completed", "amount": "7250.00",
        "currency": "YER", "reference": pid});
    let r = callback(&app, &right, None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "settled", "{}", r.body);
    let again = callback(&app, &right, None).await;
    assert_eq!(again.body["duplicate"], true, "{}", again.body);
    assert_eq!(payment(&app, &pid).await["status"], "succeeded");
    assert_eq!(invoice(&app, &inv).await["amount_paid"], "29.00");
    // The refusals stay visible on the payment; once the slot is taken by the applied callback,
    // the wrong figure is a duplicate and changes nothing.
    let note: Value = sqlx::query_scalar(
        "SELECT metadata -> 'webhook_mismatch' FROM payments WHERE payment_id = $1::uuid",
    )
    .bind(&pid)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(note["received_amount"], "29.00");
    assert_eq!(callback(&app, &wrong, None).await.body["duplicate"], true);
    assert_eq!(payment(&app, &pid).await["status"], "succeeded");
}

/// Wrong and right `completed` callbacks racing: the payment settles exactly once.
#[tokio::test]
async fn racing_wrong_and_right_completions_settle_once() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let (inv, pid, tx) = processing_deposit(&app, "farm-thw-race").await;
    let bodies: Vec<Value> = (0..20)
        .map(|i| {
            let amount = if i % 2 == 0 { "29.00" } else { "7250.00" };
            json!({"transaction_id": tx, "status": "completed", "amount": amount,
                "currency": "YER", "reference": pid})
        })
        .collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| callback(&app, b, None))).await;
    for r in &answers {
        assert_status!(r, 200);
    }
    let settled = answers
        .iter()
        .filter(|r| r.body["outcome"] == "settled")
        .count();
    assert_eq!(settled, 1);
    fakes::assert_settled_once(&app, &inv, &pid).await;
}

/// A signed callback whose text holds U+0000 is applied and recorded (the character replaced),
/// not refused with 500 and redelivered forever.
#[tokio::test]
async fn a_signed_callback_holding_nul_is_applied_and_recorded_once() {
    let fake = fakes::tharwatt().await;
    let app = tharwatt_app(fake.url()).await;
    let (_, pid, tx) = processing_deposit(&app, "farm-thw-nul").await;
    let failed = json!({"transaction_id": tx, "status": "failed", "amount": "7250.00",
        "currency": "YER", "reference": pid, "error_message": "Insufficient\u{0} balance",
        "extra\u{0}": true});
    for round in 0..2 {
        let r = callback(&app, &failed, None).await;
        assert_status!(r, 200);
        assert_eq!(r.body["duplicate"] == true, round == 1, "{}", r.body);
    }
    let p = payment(&app, &pid).await;
    assert_eq!(p["status"], "failed");
    assert_eq!(p["failure_reason"], "Insufficient\u{FFFD} balance");
    assert_eq!(
        count(&app, "SELECT count(*) FROM processed_webhook_events").await,
        1
    );
    let event: Value =
        sqlx::query_scalar("SELECT payload FROM outbox_events WHERE event_type = 'payment.failed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(event["error"], "Insufficient\u{FFFD} balance");
}
