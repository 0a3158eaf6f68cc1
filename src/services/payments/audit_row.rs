//! The audit rows of payment actions.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::money;
use crate::billing::types::{InvoiceStatus, PaymentMethod, PaymentStatus};
use crate::error::AppResult;
use crate::repository::invoices::InvoiceRow;
use crate::repository::payments::PaymentRow;
use crate::services::audit::{self, Actor, AuditEvent};

/// A payment as its audit rows record it (the API's field names), with its invoice's status
/// and amount due: what a payment action's audit row compares.
#[derive(Serialize)]
struct Snapshot<'a> {
    payment_id: Uuid,
    tenant_id: &'a str,
    invoice_id: Uuid,
    #[serde(with = "money::as_string")]
    amount: Decimal,
    currency: &'a str,
    method: PaymentMethod,
    status: PaymentStatus,
    #[serde(with = "money::as_string::option")]
    gateway_amount: Option<Decimal>,
    gateway_currency: Option<&'a str>,
    external_id: Option<&'a str>,
    #[serde(with = "money::as_string")]
    refunded_amount: Decimal,
    failure_reason: Option<&'a str>,
    paid_at: Option<DateTime<Utc>>,
    processed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    invoice_status: InvoiceStatus,
    #[serde(with = "money::as_string")]
    invoice_amount_due: Decimal,
}

pub(crate) fn audit_snapshot(p: &PaymentRow, inv: &InvoiceRow) -> Value {
    let s = Snapshot {
        payment_id: p.payment_id,
        tenant_id: &p.tenant_id,
        invoice_id: p.invoice_id,
        amount: p.amount,
        currency: &p.currency,
        method: p.method,
        status: p.status,
        gateway_amount: p.gateway_amount,
        gateway_currency: p.gateway_currency.as_deref(),
        external_id: p.external_id.as_deref(),
        refunded_amount: p.refunded_amount,
        failure_reason: p.failure_reason.as_deref(),
        paid_at: p.paid_at,
        processed_at: p.processed_at,
        created_at: p.created_at,
        updated_at: p.updated_at,
        invoice_status: inv.status,
        invoice_amount_due: inv.amount_due,
    };
    serde_json::to_value(s).unwrap_or(Value::Null)
}

pub(crate) async fn audit_payment(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    p: &PaymentRow,
    before: Option<Value>,
    after: Value,
) -> AppResult<()> {
    let event = AuditEvent {
        tenant_id: Some(&p.tenant_id),
        action,
        target_type: "payment",
        target_id: p.payment_id.to_string(),
        before,
        after: Some(after),
    };
    audit::record(conn, actor, event).await
}
