//! Issue 12 against the Stripe fake: what is sent (pinned version, automatic payment methods,
//! tokens, refund reasons, User-Agent) and what the tenant is answered (3-D Secure, declines,
//! Stripe's own text kept back), and a success after a failed attempt.

use crate::fakes;
use crate::gateway_stripe_reconcile::{app_on, count, deliver, event, get, WHSEC};

use common::Auth;
use fakes::{invoice_for, Mode};
use futures::future::join_all;
use serde_json::{json, Value};

use crate::common;

fn card(inv: &str, token: &str) -> Value {
    json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card", "stripe_token": token})
}

#[tokio::test]
async fn every_request_pins_the_api_version_and_uses_automatic_payment_methods() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-version").await;
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "pm_card_visa"))
        .await;
    assert_status!(r, 201);
    let pid = r.body["payment"]["payment_id"].as_str().unwrap();
    let body = json!({"payment_id": pid, "amount": "1.00", "reason": "Charged twice", "reason_code": "duplicate"});
    assert_status!(app.post("/v1/refunds", Auth::Admin, body).await, 201);
    for (version, agent) in fake.versions_seen() {
        assert_eq!(version.as_deref(), Some("2025-03-31.basil"));
        assert!(agent
            .unwrap_or_default()
            .starts_with("sahool-billing-core/"));
    }
    let created = fake.created();
    let form = &created[0]["form"];
    assert!(form.get("payment_method_types[]").is_none(), "{form}");
    assert_eq!(form["automatic_payment_methods[enabled]"], "true");
    assert_eq!(form["automatic_payment_methods[allow_redirects]"], "never");
    assert_eq!(created[1]["form"]["reason"], "duplicate");
    let bad = json!({"payment_id": pid, "amount": "1.00", "reason": "x", "reason_code": "mistake"});
    let r = app.post("/v1/refunds", Auth::Admin, bad).await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "reason_code");
}

#[tokio::test]
async fn three_d_secure_answers_the_client_secret_and_next_action_and_the_webhook_settles() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-3ds").await;
    fake.set_mode(Mode::RequiresAction);
    let r = app
        .post_idem(
            "/v1/payments",
            Auth::Admin,
            "3ds-1",
            card(&inv, "pm_card_threeDSecure2Required"),
        )
        .await;
    assert_status!(r, 201);
    let pi = &fake.objects("payment_intent")[0];
    assert_eq!(r.body["requires_action"], true);
    assert_eq!(r.body["client_secret"], pi["client_secret"]);
    assert_eq!(r.body["next_action"]["type"], "use_stripe_sdk");
    assert_eq!(r.body["payment"]["status"], "processing");
    assert_eq!(r.body["payment"]["external_id"], pi["id"]);
    // The app confirms with Stripe.js; Stripe reports the outcome by webhook.
    let mut done = pi.clone();
    done["status"] = json!("succeeded");
    done["amount_received"] = json!(2900);
    assert_status!(
        deliver(
            &app,
            WHSEC,
            &event("evt_3ds", "payment_intent.succeeded", done)
        )
        .await,
        200
    );
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["status"],
        "paid"
    );
}

#[tokio::test]
async fn stripe_text_about_a_bad_api_key_never_reaches_the_tenant() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-key").await;
    fake.set_mode(Mode::BadKey);
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "pm_card_visa"))
        .await;
    assert_status!(r, 502);
    assert_eq!(r.error_code(), "gateway_error");
    assert!(!r.body.to_string().contains("API Key"), "{}", r.body);
    assert_eq!(r.body["payment"]["status"], "failed");
}

#[tokio::test]
async fn a_success_after_a_failed_attempt_settles_the_payment() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-retry-card").await;
    fake.set_mode(Mode::RequiresAction);
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "pm_card_visa"))
        .await;
    assert_status!(r, 201);
    let pid = r.body["payment"]["payment_id"].as_str().unwrap();
    let mut pi = fake.objects("payment_intent")[0].clone();
    pi["status"] = json!("requires_payment_method");
    pi["last_payment_error"] = json!({"type": "card_error", "code": "card_declined", "message": "Your card was declined."});
    let failed = deliver(
        &app,
        WHSEC,
        &event("evt_a1", "payment_intent.payment_failed", pi.clone()),
    )
    .await;
    assert_status!(failed, 200);
    assert_eq!(
        get(&app, &format!("/v1/payments/{pid}"), "payment").await["status"],
        "failed"
    );
    pi["status"] = json!("succeeded");
    pi["amount_received"] = json!(2900);
    let ok = deliver(
        &app,
        WHSEC,
        &event("evt_a2", "payment_intent.succeeded", pi),
    )
    .await;
    assert_status!(ok, 200);
    assert_eq!(ok.body["outcome"], "settled");
    let p = get(&app, &format!("/v1/payments/{pid}"), "payment").await;
    assert_eq!(
        (p["status"].as_str(), p["failure_reason"].as_str()),
        (Some("succeeded"), None)
    );
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["amount_paid"],
        "29.00"
    );
}

#[tokio::test]
async fn a_card_token_is_made_a_payment_method_first_and_other_shapes_are_422() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-tok").await;
    for bad in ["card_123", "pm_", "tok_a b", "src_123"] {
        let r = app.post("/v1/payments", Auth::Admin, card(&inv, bad)).await;
        assert_status!(r, 422);
        assert_eq!(r.body["fields"][0]["field"], "stripe_token", "{bad}");
    }
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "tok_visa"))
        .await;
    assert_status!(r, 201);
    let pm = &fake.objects("payment_method")[0];
    let created = fake.created();
    assert_eq!(created[0]["form"]["payment_method"], pm["id"]);
    assert_eq!(r.body["payment"]["status"], "succeeded");
}

#[tokio::test]
async fn racing_refunds_with_one_key_make_one_refund_at_stripe() {
    let fake = fakes::stripe().await;
    fake.set_delay(std::time::Duration::from_millis(300));
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-race").await;
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "pm_card_visa"))
        .await;
    assert_status!(r, 201);
    let body =
        json!({"payment_id": r.body["payment"]["payment_id"], "amount": "5.00", "reason": "Race"});
    let results = join_all(
        (0..20).map(|_| app.post_idem("/v1/refunds", Auth::Admin, "race-ref", body.clone())),
    )
    .await;
    for r in &results {
        assert!(matches!(r.status.as_u16(), 201 | 409), "{}", r.body);
    }
    assert_eq!(fake.objects("refund").len(), 1);
    assert_eq!(count(&app, "SELECT count(*) FROM refunds").await, 1);
    assert_eq!(
        get(&app, &format!("/v1/invoices/{inv}"), "invoice").await["amount_paid"],
        "24.00"
    );
}

#[tokio::test]
async fn a_webhook_settling_a_timed_out_payment_clears_the_did_not_answer_note() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let inv = invoice_for(&app, "farm-12-note").await;
    // Stripe charges, but answers after the client's 1 s timeout.
    fake.set_delay(std::time::Duration::from_millis(1500));
    let r = app
        .post("/v1/payments", Auth::Admin, card(&inv, "pm_card_visa"))
        .await;
    assert_status!(r, 502);
    assert_eq!(r.body["payment"]["status"], "pending");
    assert!(r.body["payment"]["failure_reason"].is_string());
    let pid = r.body["payment"]["payment_id"].as_str().unwrap();
    let pi = fake.objects("payment_intent")[0].clone();
    let hook = deliver(
        &app,
        WHSEC,
        &event("evt_note", "payment_intent.succeeded", pi),
    )
    .await;
    assert_status!(hook, 200);
    let p = get(&app, &format!("/v1/payments/{pid}"), "payment").await;
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["failure_reason"], Value::Null);
}
