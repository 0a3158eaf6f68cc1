//! Stripe: card payments as PaymentIntents created and confirmed in one call, refunds, lookups
//! of both (to settle a call whose answer was lost), and webhook signature verification.
//! Requests are form-encoded; answers are JSON objects. Every request names the API version
//! the client is written for ([`API_VERSION`]), so an account whose default version moves
//! (e.g. to one that refuses `payment_method_types`) does not change what we send or read.

mod outcome;
mod signature;

use serde_json::Value;
use uuid::Uuid;

pub use outcome::{charge_outcome, intent_outcome, refund_object_outcome};
pub use signature::{sign, verify_signature, SignatureError, SIGNATURE_TOLERANCE_SECS};

use super::{
    http_client, read_json, to_minor_units, ChargeOutcome, ChargeRequest, GatewayError,
    GatewayFuture, PaymentGateway, RefundOutcome, RefundRequest,
};
use crate::config::Config;

/// The Stripe API version the requests and the parsing below follow (`Stripe-Version`). On it,
/// a PaymentIntent takes `automatic_payment_methods` (not `payment_method_types`), a Charge's
/// `refunds` is not expanded, and refunds report `pending` before `succeeded` or `failed`.
pub const API_VERSION: &str = "2025-03-31.basil";

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
        let http = http_client(config.gateway_timeout).ok()?;
        Some(StripeClient {
            base,
            api_key,
            http,
        })
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<(u16, Value), GatewayError> {
        let resp = rb
            .bearer_auth(&self.api_key)
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| GatewayError(format!("stripe unreachable: {}", without_url(&e))))?;
        read_json(resp).await
    }

    async fn post_form(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<(u16, Value), GatewayError> {
        let rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        self.send(rb).await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, GatewayError> {
        let rb = self.http.get(format!("{}{path}", self.base)).query(query);
        match self.send(rb).await? {
            (200..=299, body) => Ok(body),
            (status, body) => {
                outcome::log_refusal(status, &body);
                Err(GatewayError(format!(
                    "stripe answered {status} to a lookup"
                )))
            }
        }
    }

    /// The PaymentMethod to confirm with. A legacy card token (`tok_…`) cannot be passed as a
    /// `payment_method` on this API version; it is turned into a PaymentMethod first (`POST
    /// /v1/payment_methods` with `card[token]`), under a key derived from our payment id so a
    /// retry reuses the same PaymentMethod. `Err(outcome)`: the card was refused already.
    async fn payment_method(
        &self,
        req: &ChargeRequest,
    ) -> Result<Result<String, ChargeOutcome>, GatewayError> {
        let token = req.stripe_token.clone().unwrap_or_default();
        if !token.starts_with("tok_") {
            return Ok(Ok(token));
        }
        let form = [("type", "card".to_string()), ("card[token]", token)];
        let key = format!("{}-payment-method", req.payment_id);
        let (status, body) = self.post_form("/v1/payment_methods", &key, &form).await?;
        match (status, body["id"].as_str()) {
            (200..=299, Some(id)) => Ok(Ok(id.to_string())),
            _ => charge_outcome(status, &body).map(Err),
        }
    }

    async fn create_payment_intent(
        &self,
        req: &ChargeRequest,
    ) -> Result<ChargeOutcome, GatewayError> {
        let minor = to_minor_units(req.amount)
            .ok_or_else(|| GatewayError("amount has more than 2 decimals".into()))?;
        let payment_method = match self.payment_method(req).await? {
            Ok(pm) => pm,
            Err(refused) => return Ok(refused),
        };
        let form = [
            ("amount", minor.to_string()),
            ("currency", req.currency.to_ascii_lowercase()),
            ("payment_method", payment_method),
            ("confirm", "true".to_string()),
            // Cards confirmed on the server: no redirect-based methods, so no return_url is
            // needed; 3-D Secure still comes back as `requires_action` (use_stripe_sdk).
            ("automatic_payment_methods[enabled]", "true".to_string()),
            (
                "automatic_payment_methods[allow_redirects]",
                "never".to_string(),
            ),
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
            ("reason", req.reason_code.as_str().to_string()),
            ("metadata[refund_id]", req.refund_id.to_string()),
            ("metadata[payment_id]", req.payment_id.to_string()),
        ];
        // The refund row's id: every retry of this refund reaches Stripe under the same key.
        let (status, body) = self
            .post_form("/v1/refunds", &req.refund_id.to_string(), &form)
            .await?;
        outcome::refund_outcome(status, &body)
    }

    /// By id when we have it; else by our payment id in the metadata (Search; a PaymentIntent
    /// becomes searchable within about a minute, which is why callers wait a grace period).
    async fn find_intent(
        &self,
        payment_id: Uuid,
        external_id: Option<&str>,
    ) -> Result<Option<ChargeOutcome>, GatewayError> {
        if let Some(id) = external_id {
            let intent = self.get(&format!("/v1/payment_intents/{id}"), &[]).await?;
            return intent_outcome(&intent).map(Some);
        }
        let query = format!("metadata['payment_id']:'{payment_id}'");
        let found = self
            .get("/v1/payment_intents/search", &[("query", &query)])
            .await?;
        match found["data"].as_array().and_then(|d| d.first()) {
            Some(intent) => intent_outcome(intent).map(Some),
            None => Ok(None),
        }
    }

    /// By id when we have it; else among the PaymentIntent's refunds (a list, which is
    /// consistent at once), by our refund id in the metadata.
    async fn find_refund(
        &self,
        req: &RefundRequest,
        external_refund_id: Option<&str>,
    ) -> Result<Option<RefundOutcome>, GatewayError> {
        if let Some(id) = external_refund_id {
            let refund = self.get(&format!("/v1/refunds/{id}"), &[]).await?;
            return refund_object_outcome(&refund).map(Some);
        }
        let Some(intent) = req.external_id.as_deref() else {
            return Ok(None);
        };
        let list = self
            .get(
                "/v1/refunds",
                &[("payment_intent", intent), ("limit", "100")],
            )
            .await?;
        let ours = req.refund_id.to_string();
        let hit = list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["metadata"]["refund_id"].as_str() == Some(ours.as_str()));
        hit.map(refund_object_outcome).transpose()
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
    fn lookup_charge<'a>(
        &'a self,
        payment_id: Uuid,
        external_id: Option<&'a str>,
    ) -> GatewayFuture<'a, Option<ChargeOutcome>> {
        Box::pin(self.find_intent(payment_id, external_id))
    }
    fn lookup_refund<'a>(
        &'a self,
        req: &'a RefundRequest,
        external_refund_id: Option<&'a str>,
    ) -> GatewayFuture<'a, Option<RefundOutcome>> {
        Box::pin(self.find_refund(req, external_refund_id))
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
