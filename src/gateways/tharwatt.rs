//! Tharwatt mobile money: deposit requests (the payer approves on their phone; the result
//! arrives by signed callback), refunds, and callback signature verification. JSON both ways.
//! Tharwatt always collects YER; amounts are sent as decimal strings, never floats.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{
    http_client, read_json, ChargeOutcome, ChargeRequest, ChargeStatus, GatewayError,
    GatewayFuture, PaymentGateway, RefundOutcome, RefundRequest, RefundStatus,
};
use crate::billing::money::money_string;
use crate::config::Config;

pub struct TharwattClient {
    base: String,
    api_key: String,
    merchant_id: String,
    /// Where Tharwatt posts the result; omitted when not configured.
    callback_url: Option<String>,
    http: reqwest::Client,
}

impl TharwattClient {
    /// `None` unless the base URL, API key and merchant id are all configured.
    pub fn from_config(config: &Config) -> Option<Self> {
        let base = config
            .tharwatt_base_url
            .as_deref()?
            .trim_end_matches('/')
            .to_string();
        let api_key = config.tharwatt_api_key.clone()?;
        let merchant_id = config.tharwatt_merchant_id.clone()?;
        if base.is_empty() {
            return None;
        }
        Some(TharwattClient {
            base,
            api_key,
            merchant_id,
            // Unset: the merchant account's default callback applies.
            callback_url: config.tharwatt_callback_url.clone(),
            http: http_client(config.gateway_timeout).ok()?,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), GatewayError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.api_key)
            .header("X-Merchant-Id", &self.merchant_id)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                GatewayError(if e.is_timeout() {
                    "tharwatt timed out".into()
                } else {
                    "tharwatt unreachable".into()
                })
            })?;
        read_json(resp).await
    }

    async fn deposit(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        let mut body = json!({
            "reference": req.payment_id.to_string(),
            "amount": money_string(req.amount),
            "currency": req.currency,
            "phone_number": req.phone_number,
            "description": req.description,
        });
        if let Some(url) = &self.callback_url {
            body["callback_url"] = json!(url);
        }
        let (status, answer) = self.post("/api/v1/payment/deposit", &body).await?;
        deposit_outcome(status, &answer)
    }

    async fn refund_deposit(&self, req: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let body = json!({
            "reference": req.payment_id.to_string(),
            "refund_reference": req.refund_id.to_string(),
            "transaction_id": req.external_id,
            "amount": money_string(req.amount),
            "currency": req.currency,
            "reason": req.reason,
        });
        let (status, answer) = self.post("/api/v1/payment/refund", &body).await?;
        match status {
            200..=299 => {
                let id = answer["transaction_id"].as_str().map(str::to_string);
                let status = match answer["status"].as_str().unwrap_or("completed") {
                    "failed" | "rejected" | "cancelled" => RefundStatus::Failed(message(&answer)),
                    _ => RefundStatus::Succeeded,
                };
                Ok(RefundOutcome {
                    external_refund_id: id,
                    status,
                })
            }
            429 => Err(GatewayError("tharwatt answered 429".into())),
            400..=499 => Ok(RefundOutcome {
                external_refund_id: None,
                status: RefundStatus::Failed(message(&answer)),
            }),
            _ => Err(GatewayError(format!("tharwatt answered {status}"))),
        }
    }
}

impl PaymentGateway for TharwattClient {
    fn name(&self) -> &'static str {
        "tharwatt"
    }
    fn charge<'a>(&'a self, req: &'a ChargeRequest) -> GatewayFuture<'a, ChargeOutcome> {
        Box::pin(self.deposit(req))
    }
    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundOutcome> {
        Box::pin(self.refund_deposit(req))
    }
}

fn message(answer: &Value) -> String {
    answer["message"]
        .as_str()
        .or_else(|| answer["error"].as_str())
        .unwrap_or("rejected by Tharwatt")
        .chars()
        .take(500)
        .collect()
}

/// A deposit request is normally accepted (`pending`) and settled by callback.
fn deposit_outcome(status: u16, answer: &Value) -> Result<ChargeOutcome, GatewayError> {
    match status {
        200..=299 => {
            let external_id = answer["transaction_id"].as_str().map(str::to_string);
            let status = match answer["status"].as_str().unwrap_or("pending") {
                "completed" => ChargeStatus::Succeeded,
                "failed" | "rejected" | "cancelled" => ChargeStatus::Failed(message(answer)),
                _ => ChargeStatus::Processing,
            };
            Ok(ChargeOutcome {
                external_id,
                status,
            })
        }
        429 => Err(GatewayError("tharwatt answered 429".into())),
        400..=499 => Ok(ChargeOutcome {
            external_id: None,
            status: ChargeStatus::Failed(message(answer)),
        }),
        _ => Err(GatewayError(format!("tharwatt answered {status}"))),
    }
}

/// Hex HMAC-SHA256 of the raw callback body.
pub fn sign(secret: &str, payload: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies `X-Tharwatt-Signature` (hex, either case) over the raw body, in constant time.
/// False when no secret is configured.
pub fn verify_signature(secret: Option<&str>, header: Option<&str>, payload: &[u8]) -> bool {
    let (Some(secret), Some(header)) = (secret.filter(|s| !s.is_empty()), header) else {
        return false;
    };
    let Ok(given) = hex::decode(header.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(payload);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_exact_body() {
        let body = br#"{"transaction_id":"tx1","status":"completed"}"#;
        let sig = sign("s3cret", body);
        assert!(verify_signature(Some("s3cret"), Some(&sig), body));
        assert!(verify_signature(
            Some("s3cret"),
            Some(&sig.to_uppercase()),
            body
        ));
        assert!(!verify_signature(
            Some("s3cret"),
            Some(&sig),
            br#"{"transaction_id":"tx2"}"#
        ));
        assert!(!verify_signature(None, Some(&sig), body));
        assert!(!verify_signature(Some("s3cret"), None, body));
    }

    #[test]
    fn deposit_answers_map_to_outcomes() {
        let ok =
            deposit_outcome(200, &json!({"transaction_id": "tx1", "status": "pending"})).unwrap();
        assert_eq!(ok.status, ChargeStatus::Processing);
        let bad = deposit_outcome(400, &json!({"message": "invalid phone"})).unwrap();
        assert_eq!(bad.status, ChargeStatus::Failed("invalid phone".into()));
        assert!(deposit_outcome(503, &Value::Null).is_err());
    }
}
