//! Payment gateways (Stripe for cards, Tharwatt for mobile money) behind one trait. Each is a
//! plain HTTP client against a base URL from configuration, so tests point it at a local fake.
//! Calls are made outside any database transaction; callers pass our own ids as the gateway's
//! idempotency key or reference, so retrying a call can never charge twice. A call whose answer
//! was lost is settled later by asking the gateway what became of it (`lookup_*`), never by
//! sending it again under a new key.

pub mod stripe;
pub mod tharwatt;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use crate::billing::types::PaymentMethod;
use crate::config::Config;

/// How long one gateway call may take before it counts as unreachable (`GATEWAY_TIMEOUT_SECS`
/// overrides it).
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to collect money.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// Our payment id: the gateway's idempotency key / reference.
    pub payment_id: Uuid,
    pub invoice_id: Uuid,
    pub tenant_id: String,
    /// In `currency`, 2 decimals.
    pub amount: Decimal,
    pub currency: String,
    pub stripe_token: Option<String>,
    pub phone_number: Option<String>,
    pub description: String,
}

/// A request to give money back on an earlier charge.
#[derive(Clone, Debug)]
pub struct RefundRequest {
    /// Our refund id: the gateway's idempotency key / reference.
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    /// The gateway's id of the original charge (PaymentIntent or transaction).
    pub external_id: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub reason: String,
    /// Why, in the gateway's vocabulary (Stripe's `reason`).
    pub reason_code: RefundReason,
}

/// Why money goes back, as Stripe names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    #[default]
    RequestedByCustomer,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "duplicate" => Some(RefundReason::Duplicate),
            "fraudulent" => Some(RefundReason::Fraudulent),
            "requested_by_customer" => Some(RefundReason::RequestedByCustomer),
            _ => None,
        }
    }
}

/// The gateway's answer about a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Money collected now.
    Succeeded,
    /// Accepted; the outcome arrives by webhook.
    Processing,
    /// The payer must act first (3-D Secure): the app confirms with the gateway's SDK using
    /// `client_secret`, following `next_action`; the webhook settles the payment.
    RequiresAction {
        client_secret: Option<String>,
        next_action: Value,
    },
    /// The card was declined: the payer's problem, not a gateway fault.
    Declined(Decline),
    /// Definitely not collected (refused, canceled), with a reason fit to show the tenant.
    Failed(String),
}

/// A card decline as Stripe reports it (`card_error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decline {
    /// `card_declined`, `expired_card`, `incorrect_cvc`, ...
    pub code: String,
    /// The issuer's reason (`insufficient_funds`, `lost_card`, ...), when given.
    pub decline_code: Option<String>,
    /// Stripe's card-error message, written to be shown to the payer.
    pub message: String,
}

#[derive(Clone, Debug)]
pub struct ChargeOutcome {
    pub external_id: Option<String>,
    pub status: ChargeStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// The money is back with the payer.
    Succeeded,
    /// Accepted, not done yet: it may still fail (Stripe's `pending`, `requires_action`).
    Pending,
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct RefundOutcome {
    pub external_refund_id: Option<String>,
    pub status: RefundStatus,
}

/// The call did not produce an answer we can act on: the gateway is unreachable, answered
/// 5xx, or answered something we cannot read. The outcome of the charge is unknown.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(pub String);

pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'a>>;

pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    fn charge<'a>(&'a self, req: &'a ChargeRequest) -> GatewayFuture<'a, ChargeOutcome>;
    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundOutcome>;

    /// What became of the charge for our payment `payment_id` (known to the gateway as
    /// `external_id`, when we learnt it): `None` when the gateway has no such charge.
    fn lookup_charge<'a>(
        &'a self,
        payment_id: Uuid,
        external_id: Option<&'a str>,
    ) -> GatewayFuture<'a, Option<ChargeOutcome>> {
        let _ = (payment_id, external_id);
        Box::pin(async { Err(GatewayError(format!("{} has no lookup", self.name()))) })
    }

    /// What became of the refund `req` asked for: `None` when the gateway has no such refund.
    fn lookup_refund<'a>(
        &'a self,
        req: &'a RefundRequest,
        external_refund_id: Option<&'a str>,
    ) -> GatewayFuture<'a, Option<RefundOutcome>> {
        let _ = (req, external_refund_id);
        Box::pin(async { Err(GatewayError(format!("{} has no lookup", self.name()))) })
    }
}

/// The configured gateway for `method`, or `None` when the method needs none (offline
/// methods) or its gateway is not configured.
pub fn for_method(config: &Config, method: PaymentMethod) -> Option<Box<dyn PaymentGateway>> {
    match method {
        PaymentMethod::CreditCard => stripe::StripeClient::from_config(config)
            .map(|c| Box::new(c) as Box<dyn PaymentGateway>),
        PaymentMethod::Tharwatt => tharwatt::TharwattClient::from_config(config)
            .map(|c| Box::new(c) as Box<dyn PaymentGateway>),
        _ => None,
    }
}

/// Whether `method` goes through a gateway at all.
pub fn is_gateway_method(method: PaymentMethod) -> bool {
    matches!(method, PaymentMethod::CreditCard | PaymentMethod::Tharwatt)
}

pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, GatewayError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("sahool-billing-core/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| GatewayError(format!("http client: {e}")))
}

/// Reads a JSON body, turning transport errors into [`GatewayError`].
pub(crate) async fn read_json(resp: reqwest::Response) -> Result<(u16, Value), GatewayError> {
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| GatewayError(format!("reading the gateway answer: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, body))
}

/// Decimal amount → integer minor units (2-decimal currencies), exactly: an amount with more
/// than 2 decimals is rejected rather than truncated.
pub fn to_minor_units(amount: Decimal) -> Option<i64> {
    let cents = amount * Decimal::ONE_HUNDRED;
    if cents.fract() != Decimal::ZERO {
        return None;
    }
    rust_decimal::prelude::ToPrimitive::to_i64(&cents)
}

/// Integer minor units → Decimal with 2 decimals.
pub fn from_minor_units(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn minor_units_are_exact() {
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(to_minor_units(d("29.00")), Some(2900));
        assert_eq!(to_minor_units(d("0.29")), Some(29));
        assert_eq!(to_minor_units(d("19.99")), Some(1999));
        assert_eq!(to_minor_units(d("1234567890.12")), Some(123456789012));
        assert_eq!(to_minor_units(d("1.005")), None);
        assert_eq!(from_minor_units(1999), d("19.99"));
    }
}
