//! `/webhooks/*`: what the gateways are answered. The bodies they send are their own JSON
//! (read as bytes, verified, then as `serde_json::Value`); these types document them.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::billing::types::PaymentStatus;
use crate::services::webhooks::{StripeReceipt, TharwattReceipt};

/// Acknowledgement of a Stripe event. A redelivered event (same id) is acknowledged again with
/// `duplicate: true` and no effect.
#[derive(Serialize, ToSchema)]
pub struct StripeAck {
    pub received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub duplicate: Option<bool>,
    /// What the event did (`settled`, `failed`, `refund_succeeded`, `refund_reopened`,
    /// `refund_needs_attention`, `already_recorded`, `ignored`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub outcome: Option<&'static str>,
}

impl From<StripeReceipt> for StripeAck {
    fn from(r: StripeReceipt) -> Self {
        StripeAck {
            received: true,
            duplicate: r.duplicate.then_some(true),
            outcome: r.outcome,
        }
    }
}

/// Acknowledgement of a Tharwatt callback: the payment as it is now. A redelivered callback
/// (same transaction and status) is acknowledged with `duplicate: true` and no effect.
#[derive(Serialize, ToSchema)]
pub struct TharwattAck {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub duplicate: Option<bool>,
    pub payment_id: Uuid,
    #[schema(schema_with = crate::http::dto::payments::payment_status)]
    pub status: PaymentStatus,
    /// What the callback did (`settled`, `failed`, `amount_mismatch`, `already_settled`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub outcome: Option<&'static str>,
}

impl From<TharwattReceipt> for TharwattAck {
    fn from(r: TharwattReceipt) -> Self {
        TharwattAck {
            success: true,
            duplicate: r.duplicate.then_some(true),
            payment_id: r.payment_id,
            status: r.status,
            outcome: r.outcome,
        }
    }
}

/// A Stripe event as Stripe sends it (only the members read here are described).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the handler verifies the raw bytes first
pub struct StripeEvent {
    /// The event id (`evt_...`): events are recorded once per id.
    id: String,
    /// `payment_intent.succeeded`, `payment_intent.payment_failed`, `payment_intent.canceled`,
    /// `refund.created`, `refund.updated`, `refund.failed`, `charge.refunded`; others are
    /// acknowledged and ignored.
    #[schema(rename = "type")]
    kind: String,
    /// `{object: <PaymentIntent | Refund | Charge>}`.
    data: serde_json::Value,
}

/// Tharwatt's payment result.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TharwattCallback {
    #[schema(min_length = 1)]
    transaction_id: String,
    #[schema(pattern = "^(completed|failed|cancelled)$")]
    status: String,
    /// Checked against the payment's gateway amount.
    #[schema(value_type = crate::http::openapi::components::MoneyInputSchema)]
    amount: String,
    /// Checked against the payment's gateway currency (default YER).
    currency: Option<String>,
    /// The payment_id.
    reference: Uuid,
    phone_number: Option<String>,
    error_message: Option<String>,
}

/// Stripe's signature header.
#[derive(IntoParams)]
#[into_params(names("Stripe-Signature"), parameter_in = Header)]
#[allow(dead_code)]
pub struct StripeSignatureHeader(
    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with STRIPE_WEBHOOK_SECRET>`; 300 s
    /// tolerance. Missing, bad or stale: 400 invalid_signature.
    String,
);

/// Tharwatt's signature header.
#[derive(IntoParams)]
#[into_params(names("X-Tharwatt-Signature"), parameter_in = Header)]
#[allow(dead_code)]
pub struct TharwattSignatureHeader(
    /// Hex HMAC-SHA256 of the raw body with THARWATT_WEBHOOK_SECRET. Missing or bad: 400
    /// invalid_signature.
    String,
);
