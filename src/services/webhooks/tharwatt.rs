//! Tharwatt's deposit callbacks, deduplicated by transaction id and status.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::settle::{on_failure, on_success, Success};
use super::{invalid_payload, invalid_signature, payload, TharwattReceipt};
use crate::billing::money::decimal_from_json;
use crate::billing::types::PaymentMethod;
use crate::error::AppResult;
use crate::gateways::tharwatt;
use crate::repository::payments::webhook_events::WebhookEventRepository;
use crate::repository::payments::PaymentRepository;
use crate::services::payments::payment_not_found;

/// What a callback says, read from its body.
struct Callback<'a> {
    tx_id: &'a str,
    status: &'a str,
    amount: rust_decimal::Decimal,
    currency: &'a str,
    reference: Uuid,
}

fn callback(body: &serde_json::Value) -> AppResult<Callback<'_>> {
    Ok(Callback {
        tx_id: body["transaction_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid_payload("transaction_id is missing"))?,
        status: body["status"]
            .as_str()
            .ok_or_else(|| invalid_payload("status is missing"))?,
        amount: decimal_from_json(&body["amount"])
            .map_err(|_| invalid_payload("amount is missing or not a number"))?,
        currency: body["currency"].as_str().unwrap_or("YER"),
        reference: body["reference"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| invalid_payload("reference is not a payment id"))?,
    })
}

/// POST /webhooks/tharwatt. Deduplicated by transaction id and status.
pub async fn tharwatt_event(
    pool: &PgPool,
    secret: Option<&str>,
    signature: Option<&str>,
    raw: &[u8],
    now: DateTime<Utc>,
) -> AppResult<TharwattReceipt> {
    if !tharwatt::verify_signature(secret, signature, raw) {
        tracing::warn!("tharwatt webhook refused");
        return Err(invalid_signature());
    }
    let body = payload(raw)?;
    let Callback {
        tx_id,
        status,
        amount,
        currency,
        reference,
    } = callback(&body)?;

    let mut tx = pool.begin().await?;
    let payment = PaymentRepository::get_by_id(&mut tx, None, reference)
        .await?
        .filter(|p| p.method == PaymentMethod::Tharwatt)
        .ok_or_else(payment_not_found)?;
    let event_id = format!("{tx_id}:{status}");
    if !WebhookEventRepository::record(&mut tx, "tharwatt", &event_id, status, &body).await? {
        return Ok(TharwattReceipt {
            payment_id: payment.payment_id,
            status: payment.status,
            duplicate: true,
            outcome: None,
        });
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
    Ok(TharwattReceipt {
        payment_id: after.payment_id,
        status: after.status,
        duplicate: false,
        outcome: Some(outcome),
    })
}
