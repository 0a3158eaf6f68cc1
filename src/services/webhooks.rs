//! Signed gateway webhooks. Each event is verified on the raw bytes, recorded once (unique on
//! provider + event id) in the same transaction as its effect, and applied through the same
//! settlement as a synchronous success, so a redelivered event, or an event racing the
//! synchronous confirmation, settles a payment once. Events never move a payment backwards:
//! a failure arriving after a success is recorded and ignored; a Stripe success after a
//! reported failure settles it (the payer retried the PaymentIntent with another card).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::money::{decimal_from_json, money_string};
use crate::billing::types::{PaymentMethod, PaymentStatus};
use crate::error::{AppError, AppResult};
use crate::gateways::{from_minor_units, stripe, tharwatt, RefundReason};
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::refunds::RefundRepository;
use crate::repository::payments::webhook_events::WebhookEventRepository;
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::payments::{lock_payment, payment_not_found, settle_with_external};
use crate::services::refunds;

pub fn invalid_signature() -> AppError {
    AppError::bad_request(
        "invalid_signature",
        "The webhook signature is missing or invalid",
        "توقيع الطلب غير صالح",
    )
}

fn invalid_payload(what: &str) -> AppError {
    AppError::bad_request(
        "invalid_payload",
        format!("Invalid webhook payload: {what}"),
        "محتوى الطلب غير صالح",
    )
}

/// A verified body as JSON. A gateway's text may hold U+0000, which PostgreSQL cannot store:
/// it is replaced (U+FFFD) before anything is read or recorded, so such an event is applied
/// and recorded like any other instead of failing, and being redelivered, forever.
fn payload(raw: &[u8]) -> AppResult<Value> {
    let mut v: Value = serde_json::from_slice(raw).map_err(|_| invalid_payload("not JSON"))?;
    crate::storable::scrub(&mut v);
    Ok(v)
}

/// POST /webhooks/stripe.
pub async fn stripe_event(
    pool: &PgPool,
    secret: Option<&str>,
    signature: Option<&str>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> AppResult<Value> {
    stripe::verify_signature(secret, signature, raw, now).map_err(|e| {
        tracing::warn!(reason = %e, "stripe webhook refused");
        invalid_signature()
    })?;
    let event = payload(raw)?;
    let event_id = event["id"]
        .as_str()
        .ok_or_else(|| invalid_payload("id is missing"))?;
    let kind = event["type"].as_str().unwrap_or("");
    let obj = &event["data"]["object"];
    let mut tx = pool.begin().await?;
    if !WebhookEventRepository::record(&mut tx, "stripe", event_id, kind, &event).await? {
        return Ok(json!({"received": true, "duplicate": true}));
    }
    let (payment_id, outcome) = match kind {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => stripe_intent_event(&mut tx, kind, obj, now).await?,
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            stripe_refund_event(&mut tx, obj, now).await?
        }
        "charge.refunded" => stripe_charge_refunded(&mut tx, obj, now).await?,
        _ => (None, "ignored"),
    };
    WebhookEventRepository::set_outcome(&mut tx, "stripe", event_id, payment_id, outcome).await?;
    tx.commit().await?;
    Ok(json!({"received": true, "outcome": outcome}))
}

async fn stripe_intent_event(
    conn: &mut PgConnection,
    kind: &str,
    obj: &Value,
    now: DateTime<Utc>,
) -> AppResult<(Option<Uuid>, &'static str)> {
    let Some(p) = stripe_payment(conn, obj, obj["id"].as_str()).await? else {
        return Ok((None, "unknown_payment"));
    };
    let outcome = match kind {
        "payment_intent.succeeded" => {
            let minor = obj["amount_received"]
                .as_i64()
                .or_else(|| obj["amount"].as_i64());
            let amount = minor.map(from_minor_units);
            let currency = obj["currency"].as_str().unwrap_or("");
            let success = Success {
                amount,
                currency,
                external_id: obj["id"].as_str(),
                // A PaymentIntent's failed attempt is not final: the payer may confirm it
                // again with another card, and this success is then its latest state.
                revives_failure: true,
            };
            on_success(conn, &p, success, now).await?
        }
        "payment_intent.canceled" => on_failure(conn, &p, "Payment canceled", now).await?,
        _ => {
            let reason = obj["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("Payment failed");
            on_failure(conn, &p, reason, now).await?
        }
    };
    Ok((Some(p.payment_id), outcome))
}

/// A Refund object (`refund.*` events, or one embedded in a charge): ours, found by the refund
/// id in its metadata or by its Stripe id, follows Stripe's state; one we did not ask for (made
/// in the dashboard) is recorded.
async fn stripe_refund_event(
    conn: &mut PgConnection,
    obj: &Value,
    now: DateTime<Utc>,
) -> AppResult<(Option<Uuid>, &'static str)> {
    let Ok(outcome) = stripe::refund_object_outcome(obj) else {
        return Ok((None, "ignored_unknown_status"));
    };
    let ours = match obj["metadata"]["refund_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        Some(id) => RefundRepository::get(conn, id).await?,
        None => None,
    };
    let ours = match (ours, obj["id"].as_str()) {
        (Some(r), _) => Some(r),
        (None, Some(ext)) => RefundRepository::get_by_external_id(conn, ext).await?,
        (None, None) => None,
    };
    if let Some(r) = ours {
        let after = refunds::events::on_gateway_state(conn, r.refund_id, &outcome, now).await?;
        return Ok((Some(r.payment_id), after.change.as_str()));
    }
    let Some(p) = stripe_payment(conn, obj, obj["payment_intent"].as_str()).await? else {
        return Ok((None, "unknown_payment"));
    };
    let Some(minor) = obj["amount"].as_i64() else {
        return Err(invalid_payload("the refund has no amount"));
    };
    let (_, _, locked) = lock_payment(conn, p.payment_id).await?;
    let reason = obj["reason"].as_str().and_then(RefundReason::parse);
    let amount = from_minor_units(minor);
    let done = refunds::events::record_gateway_refund(conn, &locked, amount, reason, &outcome, now)
        .await?;
    Ok((Some(p.payment_id), done))
}

/// `charge.refunded` names the charge's refunded total, not which refund: its `refunds` list is
/// not expanded on our API version (and may be null). Only Refund objects it does embed are
/// applied; otherwise the `refund.*` events (and the reconciliation job) carry the refunds.
async fn stripe_charge_refunded(
    conn: &mut PgConnection,
    obj: &Value,
    now: DateTime<Utc>,
) -> AppResult<(Option<Uuid>, &'static str)> {
    let embedded: Vec<&Value> = obj["refunds"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["object"] == "refund" && r["status"].is_string())
        .collect();
    if embedded.is_empty() {
        let p = stripe_payment(conn, obj, obj["payment_intent"].as_str()).await?;
        return Ok((p.map(|p| p.payment_id), "awaiting_refund_events"));
    }
    let mut last = (None, "already_recorded");
    for r in embedded {
        let done = stripe_refund_event(conn, r, now).await?;
        if done.1 != "already_recorded" || last.0.is_none() {
            last = done;
        }
    }
    Ok(last)
}

/// The card payment an event is about: by our id in the metadata, else by the PaymentIntent id.
async fn stripe_payment(
    conn: &mut PgConnection,
    obj: &Value,
    intent_id: Option<&str>,
) -> AppResult<Option<PaymentRow>> {
    let ours = obj["metadata"]["payment_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    if let Some(id) = ours {
        if let Some(p) = PaymentRepository::get_by_id(conn, None, id).await? {
            if p.method == PaymentMethod::CreditCard {
                return Ok(Some(p));
            }
        }
    }
    match intent_id {
        Some(ext) => {
            Ok(PaymentRepository::get_by_external_id(conn, PaymentMethod::CreditCard, ext).await?)
        }
        None => Ok(None),
    }
}

/// POST /webhooks/tharwatt. Deduplicated by transaction id and status.
pub async fn tharwatt_event(
    pool: &PgPool,
    secret: Option<&str>,
    signature: Option<&str>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> AppResult<Value> {
    if !tharwatt::verify_signature(secret, signature, raw) {
        tracing::warn!("tharwatt webhook refused");
        return Err(invalid_signature());
    }
    let body = payload(raw)?;
    let tx_id = body["transaction_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid_payload("transaction_id is missing"))?;
    let status = body["status"]
        .as_str()
        .ok_or_else(|| invalid_payload("status is missing"))?;
    let amount = decimal_from_json(&body["amount"])
        .map_err(|_| invalid_payload("amount is missing or not a number"))?;
    let currency = body["currency"].as_str().unwrap_or("YER");
    let reference = body["reference"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| invalid_payload("reference is not a payment id"))?;

    let mut tx = pool.begin().await?;
    let payment = PaymentRepository::get_by_id(&mut tx, None, reference)
        .await?
        .filter(|p| p.method == PaymentMethod::Tharwatt)
        .ok_or_else(payment_not_found)?;
    let event_id = format!("{tx_id}:{status}");
    if !WebhookEventRepository::record(&mut tx, "tharwatt", &event_id, status, &body).await? {
        return Ok(
            json!({"success": true, "duplicate": true, "payment_id": payment.payment_id, "status": payment.status}),
        );
    }
    let outcome = match status {
        "completed" => {
            let success = Success {
                amount: Some(amount),
                currency,
                external_id: Some(tx_id),
                revives_failure: false,
            };
            on_success(&mut tx, &payment, success, now).await?
        }
        "failed" => {
            let reason = body["error_message"].as_str().unwrap_or("Payment failed");
            on_failure(&mut tx, &payment, reason, now).await?
        }
        "cancelled" => on_failure(&mut tx, &payment, "Payment cancelled by user", now).await?,
        _ => "ignored",
    };
    // The key is `transaction_id:status`, so a refused callback must not keep it: the
    // gateway's corrected `completed` would be a "duplicate" and the payment would never settle.
    // The refusal itself stays on the payment's metadata (`webhook_mismatch`).
    if outcome == "amount_mismatch" {
        WebhookEventRepository::unrecord(&mut tx, "tharwatt", &event_id).await?;
    } else {
        WebhookEventRepository::set_outcome(
            &mut tx,
            "tharwatt",
            &event_id,
            Some(payment.payment_id),
            outcome,
        )
        .await?;
    }
    let after = PaymentRepository::get_by_id(&mut tx, None, payment.payment_id)
        .await?
        .ok_or_else(payment_not_found)?;
    tx.commit().await?;
    Ok(
        json!({"success": true, "payment_id": after.payment_id, "status": after.status, "outcome": outcome}),
    )
}

/// What a gateway reports about money that arrived.
struct Success<'a> {
    amount: Option<Decimal>,
    currency: &'a str,
    external_id: Option<&'a str>,
    /// Whether this success may overturn a failure the gateway reported earlier.
    revives_failure: bool,
}

/// A gateway says the money arrived. Settles only if the amount and currency are what the
/// gateway was asked to collect; a mismatch is recorded on the payment and settles nothing.
async fn on_success(
    conn: &mut PgConnection,
    p: &PaymentRow,
    success: Success<'_>,
    now: DateTime<Utc>,
) -> AppResult<&'static str> {
    let Success {
        amount,
        currency,
        external_id,
        revives_failure,
    } = success;
    let (tenant_id, _, p) = lock_payment(conn, p.payment_id).await?;
    let want_amount = p.gateway_amount.unwrap_or(p.amount);
    let want_currency = p
        .gateway_currency
        .clone()
        .unwrap_or_else(|| p.currency.clone());
    if amount != Some(want_amount) || !currency.eq_ignore_ascii_case(&want_currency) {
        let note = json!({"webhook_mismatch": {
            "expected_amount": money_string(want_amount), "expected_currency": want_currency,
            "received_amount": amount.map(money_string), "received_currency": currency,
            "external_id": external_id, "at": now,
        }});
        PaymentRepository::merge_metadata(conn, &tenant_id, p.payment_id, &note).await?;
        tracing::warn!(payment.id = %p.payment_id, "webhook amount or currency differs from the payment");
        return Ok("amount_mismatch");
    }
    // A failure the gateway itself reported reopens (never one staff decided).
    let reopened = p.status == PaymentStatus::Failed
        && revives_failure
        && PaymentRepository::reopen_failed(conn, &tenant_id, p.payment_id)
            .await?
            .is_some();
    match p.status {
        PaymentStatus::Succeeded | PaymentStatus::Refunded => return Ok("already_settled"),
        PaymentStatus::Failed if reopened => {}
        PaymentStatus::Failed => {
            // Money arrived for a payment staff rejected: keep it visible for them.
            let note = json!({"succeeded_after_failure": {"external_id": external_id, "at": now}});
            PaymentRepository::merge_metadata(conn, &tenant_id, p.payment_id, &note).await?;
            return Ok("ignored_failed_payment");
        }
        PaymentStatus::Pending | PaymentStatus::Processing => {}
    }
    // A savepoint: if the money cannot be applied (the invoice was paid otherwise meanwhile),
    // the event is still recorded with a note instead of being retried forever.
    let mut sp = conn.begin().await?;
    match settle_with_external(&mut sp, p.payment_id, external_id, None, now).await {
        Ok(s) => {
            sp.commit().await?;
            Ok(if s.settled_now {
                "settled"
            } else {
                "already_settled"
            })
        }
        Err(e) => {
            sp.rollback().await?;
            let note = json!({"unapplied_charge": {"external_id": external_id, "error": e.code, "at": now}});
            PaymentRepository::merge_metadata(conn, &tenant_id, p.payment_id, &note).await?;
            tracing::error!(payment.id = %p.payment_id, error = e.code, "webhook money could not be applied");
            Ok("not_applied")
        }
    }
}

/// A gateway says the payment failed: an open payment fails; a settled one stays settled.
async fn on_failure(
    conn: &mut PgConnection,
    p: &PaymentRow,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<&'static str> {
    let (tenant_id, _, p) = lock_payment(conn, p.payment_id).await?;
    if !matches!(p.status, PaymentStatus::Pending | PaymentStatus::Processing) {
        return Ok("ignored_out_of_order");
    }
    let Some(failed) =
        PaymentRepository::mark_failed(conn, &tenant_id, p.payment_id, reason, None, now).await?
    else {
        return Ok("ignored_out_of_order");
    };
    crate::metrics::count_payment(failed.method, "failed");
    OutboxRepository::record(
        conn,
        "payment.failed",
        Some(&tenant_id),
        json!({"payment_id": failed.payment_id, "invoice_id": failed.invoice_id, "error": reason}),
    )
    .await?;
    Ok("failed")
}
