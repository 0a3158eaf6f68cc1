//! Stripe's answers read as outcomes. What Stripe writes for a card error is meant for the
//! payer and is passed on; what it writes for anything else (`invalid_request_error`, a bad
//! API key) is about our integration: it is logged and the tenant gets a generic reason.

use serde_json::Value;

use crate::gateways::{
    ChargeOutcome, ChargeStatus, Decline, GatewayError, RefundOutcome, RefundStatus,
};

/// What the tenant is told when Stripe refused a request for a reason that is ours to fix.
pub const REFUSED: &str = "The card gateway refused the request";

fn text(v: &Value, max: usize) -> Option<String> {
    v.as_str().map(|s| s.chars().take(max).collect())
}

/// Logs a refusal that is not the payer's problem, with Stripe's own words (never sent on).
pub(super) fn log_refusal(status: u16, body: &Value) {
    let e = &body["error"];
    tracing::error!(
        gateway = "stripe",
        http.status = status,
        error.r#type = e["type"].as_str().unwrap_or(""),
        error.code = e["code"].as_str().unwrap_or(""),
        error.message = e["message"].as_str().unwrap_or(""),
        request_log_url = e["request_log_url"].as_str().unwrap_or(""),
        "stripe refused the request"
    );
}

/// A card-error object (`error`, or a PaymentIntent's `last_payment_error`) as a decline.
fn decline(e: &Value) -> Decline {
    Decline {
        code: text(&e["code"], 100).unwrap_or_else(|| "card_declined".into()),
        decline_code: text(&e["decline_code"], 100),
        message: text(&e["message"], 500).unwrap_or_else(|| "Your card was declined.".into()),
    }
}

/// A PaymentIntent's state as our outcome. `requires_payment_method` after a confirmation
/// means the attempt failed (the customer may try another card, which a later
/// `payment_intent.succeeded` reports).
pub fn intent_outcome(intent: &Value) -> Result<ChargeOutcome, GatewayError> {
    let external_id = intent["id"].as_str().map(str::to_string);
    let error = &intent["last_payment_error"];
    let status = match intent["status"].as_str().unwrap_or("") {
        "succeeded" => ChargeStatus::Succeeded,
        "processing" | "requires_capture" | "requires_confirmation" => ChargeStatus::Processing,
        "requires_action" => ChargeStatus::RequiresAction {
            client_secret: intent["client_secret"].as_str().map(str::to_string),
            next_action: intent["next_action"].clone(),
        },
        "requires_payment_method" if error["type"] == "card_error" => {
            ChargeStatus::Declined(decline(error))
        }
        "requires_payment_method" => ChargeStatus::Failed("The payment was not completed".into()),
        "canceled" => ChargeStatus::Failed("Payment canceled".into()),
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

/// Maps Stripe's answer to a PaymentIntent (or PaymentMethod) creation. 402 is a card error
/// (declined: not charged). 409 (a concurrent request with the same key), 429, 5xx and an
/// `idempotency_error` leave the outcome unknown. Any other 4xx is a definite "not charged"
/// for a reason of ours, shown to the tenant only as [`REFUSED`].
pub fn charge_outcome(status: u16, body: &Value) -> Result<ChargeOutcome, GatewayError> {
    let error = &body["error"];
    match status {
        200..=299 => intent_outcome(body),
        402 | 400 if error["type"] == "card_error" => Ok(ChargeOutcome {
            external_id: error["payment_intent"]["id"].as_str().map(str::to_string),
            status: ChargeStatus::Declined(decline(error)),
        }),
        409 | 429 => Err(GatewayError(format!("stripe answered {status}"))),
        400 if error["type"] == "idempotency_error" => {
            log_refusal(status, body);
            Err(GatewayError("stripe refused the idempotency key".into()))
        }
        400..=499 => {
            log_refusal(status, body);
            Ok(ChargeOutcome {
                external_id: error["payment_intent"]["id"].as_str().map(str::to_string),
                status: ChargeStatus::Failed(REFUSED.into()),
            })
        }
        _ => Err(GatewayError(format!("stripe answered {status}"))),
    }
}

/// A Refund object's state. `requires_action` (the payer must give bank details) is not done.
pub fn refund_object_outcome(refund: &Value) -> Result<RefundOutcome, GatewayError> {
    let external_refund_id = refund["id"].as_str().map(str::to_string);
    let status = match refund["status"].as_str().unwrap_or("") {
        "succeeded" => RefundStatus::Succeeded,
        "pending" | "requires_action" => RefundStatus::Pending,
        "failed" | "canceled" => RefundStatus::Failed(
            text(&refund["failure_reason"], 200).unwrap_or_else(|| "refund failed".into()),
        ),
        other => return Err(GatewayError(format!("unknown Refund status {other:?}"))),
    };
    Ok(RefundOutcome {
        external_refund_id,
        status,
    })
}

pub(super) fn refund_outcome(status: u16, body: &Value) -> Result<RefundOutcome, GatewayError> {
    match status {
        200..=299 => refund_object_outcome(body),
        409 | 429 => Err(GatewayError(format!("stripe answered {status}"))),
        400 if body["error"]["type"] == "idempotency_error" => {
            log_refusal(status, body);
            Err(GatewayError("stripe refused the idempotency key".into()))
        }
        400..=499 => {
            log_refusal(status, body);
            Ok(RefundOutcome {
                external_refund_id: None,
                status: RefundStatus::Failed(REFUSED.into()),
            })
        }
        _ => Err(GatewayError(format!("stripe answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payment_intent_answers_map_to_outcomes() {
        let ok = charge_outcome(200, &json!({"id": "pi_1", "status": "succeeded"})).unwrap();
        assert_eq!(ok.status, ChargeStatus::Succeeded);
        assert_eq!(ok.external_id.as_deref(), Some("pi_1"));
        let declined = charge_outcome(
            402,
            &json!({"error": {"type": "card_error", "code": "card_declined",
                "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
                "payment_intent": {"id": "pi_2"}}}),
        )
        .unwrap();
        assert_eq!(
            declined.status,
            ChargeStatus::Declined(Decline {
                code: "card_declined".into(),
                decline_code: Some("insufficient_funds".into()),
                message: "Your card has insufficient funds.".into(),
            })
        );
        assert_eq!(declined.external_id.as_deref(), Some("pi_2"));
        assert!(charge_outcome(500, &Value::Null).is_err());
        assert!(charge_outcome(409, &Value::Null).is_err());
    }

    #[test]
    fn stripe_text_about_our_integration_is_not_passed_on() {
        let bad_key = json!({"error": {"type": "invalid_request_error",
            "message": "Invalid API Key provided: sk_test_****1234"}});
        for status in [400, 401] {
            let o = charge_outcome(status, &bad_key).unwrap();
            assert_eq!(o.status, ChargeStatus::Failed(REFUSED.into()));
        }
    }

    #[test]
    fn a_payment_intent_waiting_for_3ds_carries_its_client_secret_and_next_action() {
        let o = intent_outcome(&json!({"id": "pi_3", "status": "requires_action",
            "client_secret": "pi_3_secret_x", "next_action": {"type": "use_stripe_sdk"}}))
        .unwrap();
        assert_eq!(
            o.status,
            ChargeStatus::RequiresAction {
                client_secret: Some("pi_3_secret_x".into()),
                next_action: json!({"type": "use_stripe_sdk"}),
            }
        );
    }

    #[test]
    fn refunds_are_pending_until_stripe_says_succeeded() {
        let s = |status: &str| {
            refund_object_outcome(&json!({"id": "re_1", "status": status,
                "failure_reason": "expired_or_canceled_card"}))
            .unwrap()
            .status
        };
        assert_eq!(s("pending"), RefundStatus::Pending);
        assert_eq!(s("requires_action"), RefundStatus::Pending);
        assert_eq!(s("succeeded"), RefundStatus::Succeeded);
        assert_eq!(
            s("failed"),
            RefundStatus::Failed("expired_or_canceled_card".into())
        );
    }
}
