//! What a refund request answers, as typed values (`http` renders them), and the refund as
//! its audit row records it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::money;
use crate::billing::types::PaymentStatus;
use crate::error::AppResult;
use crate::repository::invoices::InvoiceRow;
use crate::repository::payments::refunds::{RefundRow, RefundStatus};
use crate::repository::payments::PaymentRow;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::idempotency::StoredResponse;
use crate::services::payments::audit_snapshot;

/// The refund, with its payment and invoice after it. A pending refund is not money back
/// yet: the payment and invoice are unchanged.
#[derive(Clone, Debug)]
pub struct RefundAnswer {
    pub refund: RefundRow,
    pub payment: PaymentRow,
    pub invoice: InvoiceRow,
}

impl RefundAnswer {
    /// All of the payment is refunded.
    pub fn is_full_refund(&self) -> bool {
        self.payment.status == PaymentStatus::Refunded
    }
}

/// How `http` writes the answer a refund's Idempotency-Key keeps.
pub type RenderRefund = fn(&RefundAnswer) -> StoredResponse;

/// The refund as its audit row records it (the API's field names).
#[derive(Serialize)]
struct Snapshot<'a> {
    refund_id: Uuid,
    payment_id: Uuid,
    invoice_id: Uuid,
    tenant_id: &'a str,
    #[serde(with = "money::as_string")]
    original_amount: Decimal,
    #[serde(with = "money::as_string")]
    refund_amount: Decimal,
    currency: &'a str,
    is_full_refund: bool,
    status: &'a RefundStatus,
    reason: &'a str,
    reason_ar: &'a str,
    reason_code: &'a str,
    external_refund_id: Option<&'a str>,
    failure_reason: Option<&'a str>,
    created_at: DateTime<Utc>,
}

fn snapshot(a: &RefundAnswer) -> Value {
    let r = &a.refund;
    let s = Snapshot {
        refund_id: r.refund_id,
        payment_id: r.payment_id,
        invoice_id: r.invoice_id,
        tenant_id: &r.tenant_id,
        original_amount: a.payment.amount,
        refund_amount: r.amount,
        currency: &r.currency,
        is_full_refund: a.is_full_refund(),
        status: &r.status,
        reason: &r.reason,
        reason_ar: r.reason_ar.as_deref().unwrap_or(&r.reason),
        reason_code: &r.reason_code,
        external_refund_id: r.external_refund_id.as_deref(),
        failure_reason: r.failure_reason.as_deref(),
        created_at: r.created_at,
    };
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// The audit row of a refund: what changed on the payment and its invoice, and the refund.
pub(crate) async fn audit_refund(
    conn: &mut PgConnection,
    actor: &Actor,
    answer: &RefundAnswer,
    before: Value,
) -> AppResult<()> {
    let after = audit_snapshot(&answer.payment, &answer.invoice);
    let (old, mut new) = audit::changed(&before, &after);
    new["refund"] = snapshot(answer);
    let refund = &answer.refund;
    let event = AuditEvent {
        tenant_id: Some(&refund.tenant_id),
        action: "refund.create",
        target_type: "refund",
        target_id: refund.refund_id.to_string(),
        before: Some(old),
        after: Some(new),
    };
    audit::record(conn, actor, event).await
}
