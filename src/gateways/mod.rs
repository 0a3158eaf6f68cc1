//! Payment gateways (Stripe for cards, Tharwatt for mobile money) behind one trait. Each is a
//! plain HTTP client against a base URL from configuration, so tests point it at a local fake.
//! Calls are made outside any database transaction; callers pass our own ids as the gateway's
//! idempotency key or reference, so retrying a call can never charge twice.

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

/// How long one gateway call may take before it counts as unreachable.
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
}

/// The gateway's answer about a charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeStatus {
    /// Money collected now.
    Succeeded,
    /// Accepted; the outcome arrives by webhook.
    Processing,
    /// Definitely not collected (declined, canceled), with the gateway's reason.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct ChargeOutcome {
    pub external_id: Option<String>,
    pub status: ChargeStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundStatus {
    /// Accepted by the gateway (done or on its way back to the payer).
    Succeeded,
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

pub(crate) fn http_client() -> Result<reqwest::Client, GatewayError> {
    reqwest::Client::builder()
        .timeout(GATEWAY_TIMEOUT)
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

/// Constant-time equality of two byte strings (signature checks).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
