//! The API shape of an invoice with its lines (`line_items`), money as strings: what the audit
//! log records and what the payment answers still embed.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::billing::money::{as_string, rate_string};
use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};
use crate::repository::invoices::{InvoiceLineRow, InvoiceRow};

#[derive(Serialize)]
struct InvoiceSnapshot<'a> {
    invoice_id: Uuid,
    invoice_number: &'a str,
    tenant_id: &'a str,
    subscription_id: Option<Uuid>,
    kind: InvoiceKind,
    status: InvoiceStatus,
    currency: &'a str,
    #[serde(with = "rate_string")]
    exchange_rate: Decimal,
    period_start: Option<NaiveDate>,
    period_end: Option<NaiveDate>,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    paid_date: Option<NaiveDate>,
    line_items: Vec<LineSnapshot<'a>>,
    #[serde(with = "as_string")]
    subtotal: Decimal,
    #[serde(with = "rate_string")]
    tax_rate: Decimal,
    #[serde(with = "as_string")]
    tax_amount: Decimal,
    #[serde(with = "as_string")]
    discount_amount: Decimal,
    #[serde(with = "as_string")]
    total: Decimal,
    #[serde(with = "as_string")]
    amount_paid: Decimal,
    #[serde(with = "as_string")]
    amount_due: Decimal,
    notes: Option<&'a str>,
    notes_ar: Option<&'a str>,
    plan_id: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct LineSnapshot<'a> {
    kind: InvoiceLineKind,
    description: &'a str,
    description_ar: &'a str,
    metric: Option<&'a str>,
    /// Normalized: `3`, `2.5`.
    quantity: String,
    #[serde(with = "rate_string")]
    unit_price: Decimal,
    #[serde(with = "as_string")]
    amount: Decimal,
}

/// The invoice and its lines in the API shape, as JSON.
pub fn invoice_json(inv: &InvoiceRow, lines: &[InvoiceLineRow]) -> Value {
    let line_items = lines
        .iter()
        .map(|l| LineSnapshot {
            kind: l.kind,
            description: &l.description,
            description_ar: &l.description_ar,
            metric: l.metric.as_deref(),
            quantity: l.quantity.normalize().to_string(),
            unit_price: l.unit_price,
            amount: l.amount,
        })
        .collect();
    let snapshot = InvoiceSnapshot {
        invoice_id: inv.invoice_id,
        invoice_number: &inv.invoice_number,
        tenant_id: &inv.tenant_id,
        subscription_id: inv.subscription_id,
        kind: inv.kind,
        status: inv.status,
        currency: &inv.currency,
        exchange_rate: inv.exchange_rate,
        period_start: inv.period_start,
        period_end: inv.period_end,
        issue_date: inv.issue_date,
        due_date: inv.due_date,
        paid_date: inv.paid_date,
        line_items,
        subtotal: inv.subtotal,
        tax_rate: inv.tax_rate,
        tax_amount: inv.tax_amount,
        discount_amount: inv.discount_amount,
        total: inv.total,
        amount_paid: inv.amount_paid,
        amount_due: inv.amount_due,
        notes: inv.notes.as_deref(),
        notes_ar: inv.notes_ar.as_deref(),
        plan_id: inv.plan_id.as_deref(),
        created_at: inv.created_at,
        updated_at: inv.updated_at,
    };
    serde_json::to_value(snapshot).unwrap_or(Value::Null)
}
