//! Stripe: card payments as PaymentIntents created and confirmed in one call, refunds, and
//! webhook signature verification. Requests are form-encoded; answers are JSON objects.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{
    constant_time_eq, http_client, read_json, to_minor_units, ChargeOutcome, ChargeRequest,
    ChargeStatus, GatewayError, GatewayFuture, PaymentGateway, RefundOutcome, RefundRequest,
    RefundStatus,
};
use crate::config::Config;

/// How far a webhook's signed timestamp may be from our clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

pub struct StripeClient {
    base: String,
    api_key: String,
    http: reqwest::Client,
}

impl StripeClient {
    /// `None` when no API key is configured (card payments are then unavailable).
    pub fn from_config(config: &Config) -> Option<Self> {
        let api_key = config.stripe_api_key.clone()?;
        let base = config.stripe_api_base.trim_end_matches('/').to_string();
        if base.is_empty() {
            return None;
        }
        let http = http_client().ok()?;
        Some(StripeClient {
            base,
            api_key,
            http,
        })
    }

    async fn post_form(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<(u16, Value), GatewayError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.api_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| GatewayError(format!("stripe unreachable: {}", without_url(&e))))?;
        read_json(resp).await
    }

    async fn create_payment_intent(
        &self,
        req: &ChargeRequest,
    ) -> Result<ChargeOutcome, GatewayError> {
        let minor = to_minor_units(req.amount)
            .ok_or_else(|| GatewayError("amount has more than 2 decimals".into()))?;
        let token = req.stripe_token.clone().unwrap_or_default();
        let form = [
            ("amount", minor.to_string()),
            ("currency", req.currency.to_ascii_lowercase()),
            ("payment_method", token),
            ("payment_method_types[]", "card".to_string()),
            ("confirm", "true".to_string()),
            ("description", req.description.clone()),
            ("metadata[payment_id]", req.payment_id.to_string()),
            ("metadata[invoice_id]", req.invoice_id.to_string()),
            ("metadata[tenant_id]", req.tenant_id.clone()),
        ];
        let (status, body) = self
            .post_form("/v1/payment_intents", &req.payment_id.to_string(), &form)
            .await?;
        charge_outcome(status, &body)
    }

    async fn create_refund(&self, req: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let minor = to_minor_units(req.amount)
            .ok_or_else(|| GatewayError("amount has more than 2 decimals".into()))?;
        let intent = req
            .external_id
            .clone()
            .ok_or_else(|| GatewayError("the payment has no Stripe PaymentIntent id".into()))?;
        let form = [
            ("payment_intent", intent),
            ("amount", minor.to_string()),
            ("reason", "requested_by_customer".to_string()),
            ("metadata[refund_id]", req.refund_id.to_string()),
            ("metadata[payment_id]", req.payment_id.to_string()),
        ];
        let (status, body) = self
            .post_form("/v1/refunds", &req.refund_id.to_string(), &form)
            .await?;
        refund_outcome(status, &body)
    }
}

impl PaymentGateway for StripeClient {
    fn name(&self) -> &'static str {
        "stripe"
    }
    fn charge<'a>(&'a self, req: &'a ChargeRequest) -> GatewayFuture<'a, ChargeOutcome> {
        Box::pin(self.create_payment_intent(req))
    }
    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundOutcome> {
        Box::pin(self.create_refund(req))
    }
}

/// reqwest errors name the URL; the gateway base is configuration, not a secret, but the
/// message stays short and free of query strings.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

fn error_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .or_else(|| body["last_payment_error"]["message"].as_str())
        .unwrap_or("declined by the card gateway")
        .chars()
        .take(500)
        .collect()
}

/// Maps Stripe's answer to a PaymentIntent creation. A 402 card error or another 4xx is a
/// definite "not charged"; 409 (a concurrent request with the same key), 429 and 5xx leave
/// the outcome unknown.
fn charge_outcome(status: u16, body: &Value) -> Result<ChargeOutcome, GatewayError> {
    match status {
        200..=299 => {
            let external_id = body["id"].as_str().map(str::to_string);
            let status = match body["status"].as_str().unwrap_or("") {
                "succeeded" => ChargeStatus::Succeeded,
                "processing" | "requires_capture" | "requires_action" | "requires_confirmation" => {
                    ChargeStatus::Processing
                }
                "requires_payment_method" | "canceled" => ChargeStatus::Failed(error_message(body)),
                other => {
                    return Err(GatewayError(format!(
                        "unknown PaymentIntent status {other:?}"
                    )))
                }
            };
            Ok(ChargeOutcome {
                external_id,
                status,
            })
        }
        409 | 429 => Err(GatewayError(format!("stripe answered {status}"))),
        400..=499 => Ok(ChargeOutcome {
            external_id: body["error"]["payment_intent"]["id"]
                .as_str()
                .map(str::to_string),
            status: ChargeStatus::Failed(error_message(body)),
        }),
        _ => Err(GatewayError(format!("stripe answered {status}"))),
    }
}

fn refund_outcome(status: u16, body: &Value) -> Result<RefundOutcome, GatewayError> {
    match status {
        200..=299 => {
            let external_refund_id = body["id"].as_str().map(str::to_string);
            let status = match body["status"].as_str().unwrap_or("") {
                "succeeded" | "pending" => RefundStatus::Succeeded,
                "failed" | "canceled" => RefundStatus::Failed(
                    body["failure_reason"]
                        .as_str()
                        .unwrap_or("refund failed")
                        .to_string(),
                ),
                other => return Err(GatewayError(format!("unknown Refund status {other:?}"))),
            };
            Ok(RefundOutcome {
                external_refund_id,
                status,
            })
        }
        409 | 429 => Err(GatewayError(format!("stripe answered {status}"))),
        400..=499 => Ok(RefundOutcome {
            external_refund_id: None,
            status: RefundStatus::Failed(error_message(body)),
        }),
        _ => Err(GatewayError(format!("stripe answered {status}"))),
    }
}

/// Why a webhook signature was refused (never shown in detail to the caller).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no webhook secret is configured")]
    NoSecret,
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Computes the `v1` signature of `payload` signed at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=<hex>...]`) over the raw body:
/// any `v1` may match (secret rotation), and `t` must be within the tolerance of `now`.
pub fn verify_signature(
    secret: Option<&str>,
    header: Option<&str>,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::NoSecret)?;
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_ascii_lowercase()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret, t, payload);
    if candidates
        .iter()
        .any(|c| constant_time_eq(c.as_bytes(), expected.as_bytes()))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(t: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(t, 0).unwrap()
    }

    #[test]
    fn a_fresh_correct_signature_is_accepted_among_several() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign("whsec", 1000, body);
        let header = format!("t=1000,v1=deadbeef,v1={good},v0=xyz");
        assert_eq!(
            verify_signature(Some("whsec"), Some(&header), body, at(1100)),
            Ok(())
        );
    }

    #[test]
    fn bad_stale_or_missing_signatures_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let good = format!("t=1000,v1={}", sign("whsec", 1000, body));
        let v = |secret, header: Option<&str>, body: &[u8], now| {
            verify_signature(secret, header, body, at(now))
        };
        assert_eq!(
            v(None, Some(&good), body, 1000),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            v(Some("whsec"), None, body, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v(Some("whsec"), Some("v1=abc"), body, 1000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), body, 1301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), body, 699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            v(Some("other"), Some(&good), body, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v(Some("whsec"), Some(&good), br#"{"id":"evt_2"}"#, 1000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn payment_intent_answers_map_to_outcomes() {
        let ok = charge_outcome(200, &json!({"id": "pi_1", "status": "succeeded"})).unwrap();
        assert_eq!(ok.status, ChargeStatus::Succeeded);
        assert_eq!(ok.external_id.as_deref(), Some("pi_1"));
        let declined = charge_outcome(
            402,
            &json!({"error": {"type": "card_error", "message": "Your card was declined.",
                               "payment_intent": {"id": "pi_2"}}}),
        )
        .unwrap();
        assert_eq!(
            declined.status,
            ChargeStatus::Failed("Your card was declined.".into())
        );
        assert_eq!(declined.external_id.as_deref(), Some("pi_2"));
        assert!(charge_outcome(500, &Value::Null).is_err());
        assert!(charge_outcome(409, &Value::Null).is_err());
    }
}
