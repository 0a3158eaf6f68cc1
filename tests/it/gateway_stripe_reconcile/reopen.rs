//! A refund the reconciliation job failed because Stripe had no record of it, which Stripe
//! later reports succeeded: settled from Stripe's latest state (read back, since events come in
//! any order), reopened when the payment still has room for it, flagged for staff otherwise.

use std::time::Duration;

use serde_json::{json, Value};

use super::{app_on, card_paid, count, deliver, event, get, reconcile_now, refund_body, WHSEC};
use crate::common::{Auth, TestApp};
use crate::fakes::{self, Fake};

const REFUNDED: &str = "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.refunded'";
const ATTENTION: &str =
    "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.refund_needs_attention'";

async fn refund_status(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT status::text FROM refunds WHERE refund_id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A 10.00 refund Stripe made after the client gave up, then lost sight of: the job fails it.
/// Returns (our refund id, Stripe's Refund object as it was).
async fn refund_failed_by_the_job(app: &TestApp, fake: &Fake, payment: &Value) -> (String, Value) {
    fake.set_delay(Duration::from_millis(1500));
    let r = app
        .post_idem(
            "/v1/refunds",
            Auth::Admin,
            "ref-lost",
            refund_body(payment, "10.00"),
        )
        .await;
    assert_status!(r, 502);
    fake.set_delay(Duration::ZERO);
    let ours = r.body["refund_id"].as_str().unwrap().to_string();
    let at_stripe = fake.objects("refund")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = fake.take_object(&at_stripe);
    let report = reconcile_now(app).await;
    assert_eq!((report.refunds_checked, report.refunds_resolved), (1, 1));
    assert_eq!(refund_status(app, &ours).await, "failed");
    (ours, hidden)
}

#[tokio::test]
async fn a_failed_refund_stripe_later_reports_succeeded_is_reopened_once_from_its_latest_state() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-reopen").await;
    let (ours, mut object) = refund_failed_by_the_job(&app, &fake, &p).await;
    // Stripe holds it failed: an event that says succeeded is older than that, and changes nothing.
    object["status"] = json!("failed");
    fake.put_object(object.clone());
    let mut said = object.clone();
    said["status"] = json!("succeeded");
    let r = deliver(
        &app,
        WHSEC,
        &event("evt_old", "refund.updated", said.clone()),
    )
    .await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "already_recorded");
    assert_eq!(refund_status(&app, &ours).await, "failed");
    // Stripe's latest state is succeeded: the refund is applied as any success.
    let id = object["id"].as_str().unwrap();
    fake.update_object(id, json!({"status": "succeeded"}));
    let r = deliver(
        &app,
        WHSEC,
        &event("evt_new", "refund.updated", said.clone()),
    )
    .await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "refund_reopened");
    assert_eq!(refund_status(&app, &ours).await, "succeeded");
    let pid = p["payment_id"].as_str().unwrap();
    let payment = get(&app, &format!("/v1/payments/{pid}"), "payment").await;
    assert_eq!(payment["refunded_amount"], "10.00");
    assert_eq!(payment["status"], "succeeded");
    let invoice = get(&app, &format!("/v1/invoices/{inv}"), "invoice").await;
    assert_eq!(invoice["amount_paid"], "19.00");
    assert_eq!(count(&app, REFUNDED).await, 1);
    let again = deliver(&app, WHSEC, &event("evt_dup", "refund.created", said)).await;
    assert_eq!(again.body["outcome"], "already_recorded");
    assert_eq!(count(&app, REFUNDED).await, 1);
    assert_eq!(count(&app, ATTENTION).await, 0);
}

#[tokio::test]
async fn a_failed_refund_stripe_later_reports_succeeded_without_room_left_needs_attention() {
    let fake = fakes::stripe().await;
    let app = app_on(&fake).await;
    let (inv, p) = card_paid(&app, "farm-12-attn").await;
    let (ours, mut object) = refund_failed_by_the_job(&app, &fake, &p).await;
    // Meanwhile the whole payment is refunded.
    let full = app
        .post("/v1/refunds", Auth::Admin, refund_body(&p, "29.00"))
        .await;
    assert_status!(full, 201);
    assert_eq!(full.body["payment"]["status"], "refunded");
    object["status"] = json!("succeeded");
    fake.put_object(object.clone());
    let r = deliver(
        &app,
        WHSEC,
        &event("evt_late", "refund.updated", object.clone()),
    )
    .await;
    assert_status!(r, 200);
    assert_eq!(r.body["outcome"], "refund_needs_attention");
    assert_eq!(refund_status(&app, &ours).await, "failed");
    let pid = p["payment_id"].as_str().unwrap();
    let payment = get(&app, &format!("/v1/payments/{pid}"), "payment").await;
    assert_eq!(payment["refunded_amount"], "29.00");
    let invoice = get(&app, &format!("/v1/invoices/{inv}"), "invoice").await;
    assert_eq!(invoice["amount_paid"], "0.00");
    assert_eq!(count(&app, ATTENTION).await, 1);
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'payment.refund_needs_attention'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(payload["refund_id"], ours.as_str());
    assert_eq!(payload["payment_id"], pid);
    assert_eq!(payload["refund_amount"], "10.00");
    // A second report of the same success raises no second alarm.
    let again = deliver(&app, WHSEC, &event("evt_late2", "refund.created", object)).await;
    assert_eq!(again.body["outcome"], "already_recorded");
    assert_eq!(count(&app, ATTENTION).await, 1);
    assert_eq!(count(&app, REFUNDED).await, 1);
}
