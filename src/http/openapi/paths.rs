//! The operations of the OpenAPI document, one entry per route the router serves.

use serde_json::{json, Value};

use super::legacy::{op, param, query, r, Op, Who, SUPER, TENANT, TENANT_ADMIN};

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
        ("get", "/healthz", op("Operations", "Liveness; pings the database pool", Ops, 200, r("Health"))),
        ("get", "/readyz", op("Operations", "Readiness: database reachable and migrations applied", Ops, 200, r("Ready")).also(503, "Not ready", r("Ready"))),
        ("get", "/metrics", op("Operations", "Prometheus metrics", Ops, 200, json!({ "type": "string" })).content("text/plain")),
        ("get", "/openapi.json", op("Operations", "This document", Ops, 200, json!({ "type": "object" }))),
        ("get", "/docs", op("Operations", "A page that renders this document", Ops, 200, json!({ "type": "string" })).content("text/html")),
        ("get", "/v1/tenants", op("Tenants", "List tenants", Roles(SUPER), 200, r("TenantList")).params(page())),
        ("post", "/v1/tenants", op("Tenants", "Sign up a tenant with its subscription (and first invoice for a paid plan without trial)", Roles(&["super_admin", "service"]), 201, r("SignUpResponse"))
            .body(r("SignUpRequest"), true).idempotent()),
        ("get", "/v1/tenants/{tenant_id}", op("Tenants", "Get a tenant with its subscription and usage", Roles(TENANT), 200, r("TenantDetail"))),
        ("get", "/v1/tenants/{tenant_id}/subscription", op("Subscriptions", "Get the tenant's latest subscription", Roles(TENANT), 200, r("SubscriptionDetail"))),
        ("patch", "/v1/tenants/{tenant_id}/subscription", op("Subscriptions", "Change plan, billing cycle or payment method (prorated)", Roles(TENANT_ADMIN), 200, r("SubscriptionChanged"))
            .body(r("ChangeSubscriptionRequest"), true).errs(&[409])),
        ("post", "/v1/tenants/{tenant_id}/cancel", op("Subscriptions", "Cancel the subscription (at period end unless immediate)", Roles(TENANT_ADMIN), 200, r("CancelResponse"))
            .params([query("immediate", json!({ "type": "boolean", "default": false }), "Cancel now (the period ends today) instead of at the period end.")]).errs(&[409])),
        ("post", "/v1/tenants/{tenant_id}/subscription/cancel", op("Subscriptions", "Cancel the subscription (same as /tenants/{tenant_id}/cancel)", Roles(TENANT_ADMIN), 200, r("CancelResponse"))
            .params([query("immediate", json!({ "type": "boolean", "default": false }), "Cancel now (the period ends today) instead of at the period end.")]).errs(&[409])),
        ("post", "/v1/tenants/{tenant_id}/subscription/resume", op("Subscriptions", "Undo a pending cancellation", Roles(TENANT_ADMIN), 200, r("SubscriptionResponse")).errs(&[409])),
        ("post", "/v1/tenants/{tenant_id}/usage", op("Usage", "Record usage (checked against the quota and counted in one step)", Roles(TENANT), 201, r("UsageRecorded"))
            .also(200, "A replay, or a duplicate event_id", r("UsageRecorded")).body(r("RecordUsageRequest"), true).idempotent().quota()),
        ("get", "/v1/tenants/{tenant_id}/usage", op("Usage", "Usage per metric over a date range (default: the current period)", Roles(TENANT), 200, r("UsageReport"))
            .params([date("from", "First day (inclusive)."), date("to", "End of the range, exclusive: usage on this day is not counted (default: the current period's end_date).")])),
        ("post", "/v1/usage/batch", op("Usage", "Ingest up to 10 000 usage events (body up to 16 MiB)", Roles(&["service", "super_admin"]), 200, r("UsageBatchResponse"))
            .body(r("UsageBatchRequest"), true).idempotent().errs(&[413])),
        ("get", "/v1/tenants/{tenant_id}/quota", op("Usage", "Quota report per metric", Roles(TENANT), 200, r("QuotaReport"))),
        ("get", "/v1/enforce", op("Usage", "May the tenant use `quantity` more of `metric`? (the gateway's check)", Roles(TENANT), 200, r("EnforceResponse"))
            .params([
                query("metric", r("MetricName"), "Required."),
                query("quantity", json!({ "type": "integer", "minimum": 1, "maximum": 100000, "default": 1 }), "Units asked for."),
                json!({ "name": "X-Tenant-Id", "in": "header", "required": false, "schema": r("TenantId"),
                    "description": "Required for service and super_admin callers; ignored for tenant principals (they ask for themselves)." }),
            ]).quota()),
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
        ("get", "/v1/exchange-rates", op("Exchange rates", "Stored rates and the rate in force today per currency", Roles(SUPER), 200, r("ExchangeRateList"))),
        ("post", "/v1/exchange-rates", op("Exchange rates", "Set a rate from a date (201 new, 200 replaced)", Roles(SUPER), 201, r("SetRateResponse"))
            .also(200, "Replaced the rate of that date", r("SetRateResponse")).body(r("SetRateRequest"), true)),
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
    ]
}
