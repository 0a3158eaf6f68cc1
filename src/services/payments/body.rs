//! The body payment actions answer and store for replays (the Python service's field names,
//! money as strings).

use serde_json::{json, Value};

use crate::billing::money::money_string;
use crate::repository::invoices::InvoiceRow;
use crate::repository::payments::PaymentRow;

pub fn payment_json(p: &PaymentRow) -> Value {
    json!({
        "payment_id": p.payment_id,
        "tenant_id": p.tenant_id,
        "invoice_id": p.invoice_id,
        "amount": money_string(p.amount),
        "currency": p.currency,
        "method": p.method,
        "status": p.status,
        "gateway_amount": p.gateway_amount.map(money_string),
        "gateway_currency": p.gateway_currency,
        "external_id": p.external_id,
        "refunded_amount": money_string(p.refunded_amount),
        "failure_reason": p.failure_reason,
        "paid_at": p.paid_at,
        "processed_at": p.processed_at,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

pub(crate) fn payment_body(
    p: &PaymentRow,
    inv: &InvoiceRow,
    message: &str,
    message_ar: &str,
) -> Value {
    json!({
        "success": true,
        "payment": payment_json(p),
        "invoice_status": inv.status,
        "amount_due": money_string(inv.amount_due),
        "message": message,
        "message_ar": message_ar,
    })
}
