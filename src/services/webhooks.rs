//! Signed gateway webhooks. Each event is verified on the raw bytes, recorded once (unique on
//! provider + event id) in the same transaction as its effect, and applied through the same
//! settlement as a synchronous success, so a redelivered event, or an event racing the
//! synchronous confirmation, settles a payment once. Events never move a payment backwards:
//! a failure arriving after a success is recorded and ignored; a Stripe success after a
//! reported failure settles it (the payer retried the PaymentIntent with another card).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::types::{PaymentMethod, PaymentStatus};
use crate::error::{AppError, AppResult};
use crate::gateways::{from_minor_units, stripe, PaymentGateway, RefundReason};
use crate::repository::payments::webhook_events::WebhookEventRepository;
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::payments::lock_payment;
use crate::services::refunds;

mod latest;
mod settle;
mod tharwatt;

use settle::{on_failure, on_success, Success};
pub use tharwatt::tharwatt_event;

/// Why a webhook delivery is refused before anything is recorded.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook signature is missing or invalid")]
    InvalidSignature,
    #[error("invalid webhook payload: {0}")]
    InvalidPayload(&'static str),
}

pub fn invalid_signature() -> AppError {
    WebhookError::InvalidSignature.into()
}

pub(super) fn invalid_payload(what: &'static str) -> AppError {
    WebhookError::InvalidPayload(what).into()
}

/// A verified body as JSON. A gateway's text may hold U+0000, which PostgreSQL cannot store:
/// it is replaced (U+FFFD) before anything is read or recorded, so such an event is applied
/// and recorded like any other instead of failing, and being redelivered, forever.
pub(super) fn payload(raw: &[u8]) -> AppResult<Value> {
    let mut v: Value = serde_json::from_slice(raw).map_err(|_| invalid_payload("not JSON"))?;
    crate::storable::scrub(&mut v);
    Ok(v)
}

/// What a Stripe delivery did: `duplicate` for an event id already recorded (no effect),
/// else what the event did (`outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeReceipt {
    pub duplicate: bool,
    pub outcome: Option<&'static str>,
}

/// What a Tharwatt callback did, and the payment's status after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TharwattReceipt {
    pub payment_id: Uuid,
    pub status: PaymentStatus,
    pub duplicate: bool,
    pub outcome: Option<&'static str>,
}

/// POST /webhooks/stripe.
pub async fn stripe_event(
    pool: &PgPool,
    gateway: Option<&dyn PaymentGateway>,
    secret: Option<&str>,
    signature: Option<&str>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> AppResult<StripeReceipt> {
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
    let latest = latest::latest_states(pool, gateway, kind, obj).await?;
    let mut tx = pool.begin().await?;
    if !WebhookEventRepository::record(&mut tx, "stripe", event_id, kind, &event).await? {
        return Ok(StripeReceipt {
            duplicate: true,
            outcome: None,
        });
    }
    let (payment_id, outcome) = match kind {
        "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => stripe_intent_event(&mut tx, kind, obj, now).await?,
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            stripe_refund_event(&mut tx, obj, &latest, now).await?
        }
        "charge.refunded" => stripe_charge_refunded(&mut tx, obj, &latest, now).await?,
        _ => (None, "ignored"),
    };
    WebhookEventRepository::set_outcome(&mut tx, "stripe", event_id, payment_id, outcome).await?;
    tx.commit().await?;
    Ok(StripeReceipt {
        duplicate: false,
        outcome: Some(outcome),
    })
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
    latest: &latest::Latest,
    now: DateTime<Utc>,
) -> AppResult<(Option<Uuid>, &'static str)> {
    let known = obj["id"].as_str().and_then(|id| latest.get(id)).cloned();
    let Some(outcome) = known.or_else(|| stripe::refund_object_outcome(obj).ok()) else {
        return Ok((None, "ignored_unknown_status"));
    };
    let ours = latest::our_refund(conn, obj).await?;
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
    latest: &latest::Latest,
    now: DateTime<Utc>,
) -> AppResult<(Option<Uuid>, &'static str)> {
    let embedded = latest::refund_objects("charge.refunded", obj);
    if embedded.is_empty() {
        let p = stripe_payment(conn, obj, obj["payment_intent"].as_str()).await?;
        return Ok((p.map(|p| p.payment_id), "awaiting_refund_events"));
    }
    let mut last = (None, "already_recorded");
    for r in embedded {
        let done = stripe_refund_event(conn, r, latest, now).await?;
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
