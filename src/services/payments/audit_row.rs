//! The audit rows of payment actions.

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::payment_json;
use crate::billing::money::money_string;
use crate::error::AppResult;
use crate::repository::invoices::InvoiceRow;
use crate::repository::payments::PaymentRow;
use crate::services::audit::{self, Actor, AuditEvent};

/// The payment as the API shows it, with its invoice's status and amount due: what a payment
/// action's audit row compares.
pub(crate) fn audit_snapshot(p: &PaymentRow, inv: &InvoiceRow) -> Value {
    let mut v = payment_json(p);
    v["invoice_status"] = json!(inv.status);
    v["invoice_amount_due"] = json!(money_string(inv.amount_due));
    v
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
