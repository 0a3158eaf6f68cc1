//! The operations of the OpenAPI document, one entry per route the router serves.

use serde_json::{json, Value};

use super::legacy::{op, param, query, r, Op, Who, SUPER, TENANT};

fn page() -> [Value; 2] {
    [param("Limit"), param("StartingAfter")]
}

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    use Who::*;
    let s = |n: &str| json!({ "type": "string", "description": n });
    vec![
        ("post", "/v1/payments", op("Payments", "Pay an invoice (card via Stripe, tharwatt, or offline methods awaiting confirmation). A card needing 3-D Secure answers 201 with requires_action, client_secret and next_action: the app confirms with Stripe.js or the mobile SDK and the webhook settles the payment. A declined card is 402 card_declined (decline_code); 502 gateway_error is a gateway fault", Roles(&["tenant_admin", "super_admin"]), 201, r("PaymentResponse"))
            .body(r("CreatePaymentRequest"), true).idempotent().errs(&[402, 502])),
        ("get", "/v1/payments/{payment_id}", op("Payments", "Get a payment", Roles(TENANT), 200, r("PaymentDetail"))),
        ("post", "/v1/payments/{payment_id}/confirm", op("Payments", "Confirm an offline payment", Roles(SUPER), 200, r("PaymentResponse")).body(r("PaymentDecisionRequest"), false).errs(&[409])),
        ("post", "/v1/payments/{payment_id}/reject", op("Payments", "Reject an offline payment", Roles(SUPER), 200, r("PaymentResponse")).body(r("PaymentDecisionRequest"), false).errs(&[409])),
        ("get", "/v1/tenants/{tenant_id}/payments", op("Payments", "List the tenant's payments", Roles(TENANT), 200, r("PaymentList"))
            .params([query("status", r("PaymentStatus"), "Only payments in this status.")]).params(page())),
        ("post", "/v1/refunds", op("Refunds", "Refund (part of) a succeeded payment; cumulative refunds never exceed it. A card refund is status pending until Stripe reports it succeeded (only then does it count); a 502 after a timeout leaves it pending, and a retry with the same Idempotency-Key never refunds twice", Roles(SUPER), 201, r("RefundResponse"))
            .body(r("CreateRefundRequest"), true).idempotent().errs(&[502])),
        ("post", "/v1/webhooks/stripe", op("Webhooks", "Stripe events (deduplicated by event id)", Signature("Stripe-Signature"), 200, r("WebhookAck"))
            .params([json!({ "name": "Stripe-Signature", "in": "header", "required": true, "schema": s("t=<unix>,v1=<hex HMAC-SHA256 of t.body>; 300 s tolerance") })])
            .body(json!({ "type": "object", "description": "A Stripe event (id, type, data.object)." }), true)),
        ("post", "/v1/webhooks/tharwatt", op("Webhooks", "Tharwatt payment results (deduplicated by transaction and status)", Signature("X-Tharwatt-Signature"), 200, r("WebhookAck"))
            .params([json!({ "name": "X-Tharwatt-Signature", "in": "header", "required": true, "schema": s("hex HMAC-SHA256 of the raw body") })])
            .body(json!({ "type": "object", "required": ["transaction_id", "status", "amount", "currency", "reference"], "properties": {
                "transaction_id": { "type": "string" }, "status": { "type": "string", "enum": ["completed", "failed", "cancelled"] },
                "amount": r("MoneyInput"), "currency": r("Currency"), "reference": { "type": "string", "description": "The payment_id." },
                "phone_number": { "type": "string" }, "error_message": { "type": "string" } } }), true)),
    ]
}
