//! The operations of the OpenAPI document, one entry per route the router serves.

use serde_json::{json, Value};

use super::legacy::{op, param, query, r, Op, Who, SUPER, TENANT};

fn page() -> [Value; 2] {
    [param("Limit"), param("StartingAfter")]
}

fn date(name: &str, d: &str) -> Value {
    query(name, r("Date"), d)
}

pub(super) fn operations() -> Vec<(&'static str, &'static str, Op)> {
    use Who::*;
    let s = |n: &str| json!({ "type": "string", "description": n });
    vec![
        ("get", "/v1/tenants/{tenant_id}/invoices", op("Invoices", "List the tenant's invoices", Roles(TENANT), 200, r("InvoiceList"))
            .params([query("status", r("InvoiceStatus"), "Only invoices in this status.")]).params(page())),
        ("post", "/v1/tenants/{tenant_id}/invoices/generate", op("Invoices", "Invoice the current period (201 created, 200 the existing one)", Roles(&["tenant_admin", "super_admin"]), 201, r("InvoiceResponse"))
            .also(200, "The period's existing invoice", r("InvoiceResponse")).idempotent()),
        ("get", "/v1/invoices/{invoice_id}", op("Invoices", "Get an invoice with its lines", Roles(TENANT), 200, r("InvoiceDetail"))),
        ("get", "/v1/invoices/{invoice_id}/document", op("Invoices", "The printable invoice as a self-contained HTML page", Roles(TENANT), 200, json!({ "type": "string" }))
            .params([
                query("lang", json!({ "type": "string", "enum": ["ar", "en"] }), "Language of the page."),
                query("numerals", json!({ "type": "string", "enum": ["arabic", "latin"] }), "Digits used for figures."),
            ]).content("text/html")),
        ("post", "/v1/invoices/{invoice_id}/void", op("Invoices", "Void an invoice", Roles(SUPER), 200, r("InvoiceResponse")).errs(&[409])),
        ("post", "/v1/payments", op("Payments", "Pay an invoice (card via Stripe, tharwatt, or offline methods awaiting confirmation). A card needing 3-D Secure answers 201 with requires_action, client_secret and next_action: the app confirms with Stripe.js or the mobile SDK and the webhook settles the payment. A declined card is 402 card_declined (decline_code); 502 gateway_error is a gateway fault", Roles(&["tenant_admin", "super_admin"]), 201, r("PaymentResponse"))
            .body(r("CreatePaymentRequest"), true).idempotent().errs(&[402, 502])),
        ("get", "/v1/payments/{payment_id}", op("Payments", "Get a payment", Roles(TENANT), 200, r("PaymentDetail"))),
        ("post", "/v1/payments/{payment_id}/confirm", op("Payments", "Confirm an offline payment", Roles(SUPER), 200, r("PaymentResponse")).body(r("PaymentDecisionRequest"), false).errs(&[409])),
        ("post", "/v1/payments/{payment_id}/reject", op("Payments", "Reject an offline payment", Roles(SUPER), 200, r("PaymentResponse")).body(r("PaymentDecisionRequest"), false).errs(&[409])),
        ("get", "/v1/tenants/{tenant_id}/payments", op("Payments", "List the tenant's payments", Roles(TENANT), 200, r("PaymentList"))
            .params([query("status", r("PaymentStatus"), "Only payments in this status.")]).params(page())),
        ("post", "/v1/refunds", op("Refunds", "Refund (part of) a succeeded payment; cumulative refunds never exceed it. A card refund is status pending until Stripe reports it succeeded (only then does it count); a 502 after a timeout leaves it pending, and a retry with the same Idempotency-Key never refunds twice", Roles(SUPER), 201, r("RefundResponse"))
            .body(r("CreateRefundRequest"), true).idempotent().errs(&[502])),
        ("get", "/v1/reports/revenue", op("Reports", "Revenue figures by currency, plan, method and month", Roles(SUPER), 200, r("RevenueReport"))
            .params([date("start_date", "First day (inclusive)."), date("end_date", "Last day (inclusive).")])),
        ("get", "/v1/reports/subscriptions", op("Reports", "Subscription counts, MRR/ARR, churn and trial conversion", Roles(SUPER), 200, r("SubscriptionReport"))),
        ("get", "/v1/events", op("Events", "The outbox events, oldest first", Roles(SUPER), 200, r("EventList")).params([
            query("after", json!({ "type": "integer", "minimum": 0 }), "The seq of the last event seen."),
            query("starting_after", json!({ "type": "integer", "minimum": 0 }), "Same as after."),
            param("Limit"),
            query("type", s("An event type such as invoice.paid."), ""),
            query("tenant_id", r("TenantId"), "Only this tenant's events."),
        ])),
        ("get", "/v1/audit", op("Audit", "The audit log of admin and money-moving actions", Roles(SUPER), 200, r("AuditList")).params([
            query("tenant_id", r("TenantId"), "Only this tenant's entries."),
            query("action", s("An action such as payment.confirm."), ""),
            query("after", json!({ "type": "integer", "minimum": 0 }), "The seq of the last entry seen."),
            param("Limit"),
        ])),
        ("post", "/v1/admin/billing-run", op("Admin", "Run the daily billing jobs as of a date", Roles(SUPER), 200, r("BillingRunReport"))
            .params([date("date", "Default: today.")])),
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
