//! What a gateway says about a refund, applied to the books. A refund is money back only once
//! the gateway says `succeeded`; until then it is `pending` (it holds its share of the
//! payment, so nothing can be refunded twice, but moves no total). A refund that fails is
//! `failed`; one that fails after it succeeded (Stripe's `refund.failed`) is reversed: the
//! payment's refunded amount and the invoice's paid amount are restored.
//!
//! Callers are the refund request itself, the signed webhooks and the reconciliation job, all
//! in their own transaction; the locks are taken here in the documented order (tenant →
//! invoice → payment → refund).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{apply, RefundRow};
use crate::billing::types::PaymentStatus;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::gateways::{RefundOutcome, RefundReason, RefundStatus as GatewayStatus};
use crate::repository::invoices::InvoiceRow;
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::refunds::{NewRefund, RefundRepository, RefundStatus};
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::payments::lock_payment;
use crate::services::payments::notes::{self, Note};

/// What applying the gateway's word did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// pending → succeeded: the money is back, the totals moved.
    Applied,
    StillPending,
    /// pending → failed: nothing had moved.
    Failed,
    /// succeeded → failed: the totals moved back.
    Reversed,
    /// failed → succeeded: the gateway refunded it after all (we had failed it for want of a
    /// record, or on an older answer); the totals moved as for any success.
    Reopened,
    /// The gateway refunded a refund we had failed, but the payment has no room left for it
    /// (another refund took the money meanwhile): it stays failed and staff are told.
    NeedsAttention,
    /// Already in that state (a redelivery, or an older event after a newer one).
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Applied => "refund_succeeded",
            Change::StillPending => "refund_pending",
            Change::Failed => "refund_failed",
            Change::Reversed => "refund_reversed",
            Change::Reopened => "refund_reopened",
            Change::NeedsAttention => "refund_needs_attention",
            Change::Unchanged => "already_recorded",
        }
    }
}

/// The refund, its payment and its invoice after the change.
pub struct After {
    pub change: Change,
    pub refund: RefundRow,
    pub payment: PaymentRow,
    pub invoice: InvoiceRow,
}

fn vanished() -> AppError {
    AppError::internal(anyhow::anyhow!("refund row vanished"))
}

/// Applies the gateway's state of our refund `refund_id`.
pub async fn on_gateway_state(
    conn: &mut PgConnection,
    refund_id: Uuid,
    outcome: &RefundOutcome,
    now: DateTime<Utc>,
) -> AppResult<After> {
    let found = RefundRepository::get(conn, refund_id)
        .await?
        .ok_or_else(vanished)?;
    lock_payment(conn, found.payment_id).await?;
    let refund = RefundRepository::lock(conn, refund_id)
        .await?
        .ok_or_else(vanished)?;
    let ext = outcome.external_refund_id.as_deref();
    let change = match (&refund.status, &outcome.status) {
        (RefundStatus::Pending, GatewayStatus::Succeeded) => {
            apply(conn, &refund, ext, now).await?;
            Change::Applied
        }
        (RefundStatus::Pending, GatewayStatus::Pending) => {
            RefundRepository::keep_pending(conn, refund_id, ext, None).await?;
            Change::StillPending
        }
        (RefundStatus::Pending, GatewayStatus::Failed(reason)) => {
            RefundRepository::finish(conn, refund_id, RefundStatus::Failed, ext, Some(reason))
                .await?;
            failed_event(conn, &refund, reason, false).await?;
            Change::Failed
        }
        (RefundStatus::Succeeded, GatewayStatus::Failed(reason)) => {
            reverse(conn, &refund, reason, now).await?;
            Change::Reversed
        }
        (RefundStatus::Failed, GatewayStatus::Succeeded) => reopen(conn, &refund, ext, now).await?,
        _ => Change::Unchanged,
    };
    let refund = RefundRepository::get(conn, refund_id)
        .await?
        .ok_or_else(vanished)?;
    let (_, invoice, payment) = lock_payment(conn, refund.payment_id).await?;
    Ok(After {
        change,
        refund,
        payment,
        invoice,
    })
}

/// succeeded → failed, with the payment and invoice restored. If the invoice was paid again
/// meanwhile it cannot take the amount back: the surplus is noted on the payment for staff.
async fn reverse(
    conn: &mut PgConnection,
    refund: &RefundRow,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    RefundRepository::mark_reversed(conn, refund.refund_id, reason).await?;
    PaymentRepository::remove_refund(conn, &refund.tenant_id, refund.payment_id, refund.amount)
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("payment refunded less than the refund"))
        })?;
    let restored = RefundRepository::restore_on_invoice(
        conn,
        &refund.tenant_id,
        refund.invoice_id,
        refund.amount,
        now.date_naive(),
    )
    .await?;
    if restored.is_none() {
        let note = Note::RefundFailedSurplus {
            refund_id: refund.refund_id,
            amount: refund.amount,
            at: now,
        };
        notes::leave(conn, &refund.tenant_id, refund.payment_id, note).await?;
        tracing::error!(refund.id = %refund.refund_id, "a failed refund could not be given back to its invoice");
    }
    failed_event(conn, refund, reason, true).await
}

/// Kept on a failed refund the gateway refunded after all when the payment had no room for it.
pub const NEEDS_ATTENTION: &str = "The payment gateway refunded this after it was recorded as \
    failed, and the payment has nothing left to refund: staff must settle it";

/// failed → succeeded, when the gateway's latest word is that the money went back. It is
/// applied exactly as a success of a pending refund if the payment still has that much left to
/// refund; otherwise the books cannot take it: it stays failed, the error is logged and a
/// `payment.refund_needs_attention` event is written (once). The caller holds the locks.
async fn reopen(
    conn: &mut PgConnection,
    refund: &RefundRow,
    ext: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Change> {
    let payment = PaymentRepository::get_by_id(conn, Some(&refund.tenant_id), refund.payment_id)
        .await?
        .ok_or_else(vanished)?;
    let committed = RefundRepository::committed_total(conn, refund.payment_id).await?;
    let refundable = payment.amount - committed;
    if payment.status == PaymentStatus::Succeeded && refund.amount <= refundable {
        let pending = RefundRepository::reopen_failed(conn, refund.refund_id)
            .await?
            .ok_or_else(vanished)?;
        apply(conn, &pending, ext, now).await?;
        return Ok(Change::Reopened);
    }
    if RefundRepository::flag_failed(conn, refund.refund_id, NEEDS_ATTENTION)
        .await?
        .is_none()
    {
        return Ok(Change::Unchanged);
    }
    tracing::error!(
        refund.id = %refund.refund_id,
        payment.id = %refund.payment_id,
        "the gateway refunded a refund recorded as failed, and the payment has no room left for it"
    );
    let attention = Event::PaymentRefundNeedsAttention {
        refund_id: refund.refund_id,
        payment_id: refund.payment_id,
        invoice_id: refund.invoice_id,
        refund_amount: refund.amount,
        refundable: refundable.max(Decimal::ZERO),
        currency: refund.currency.clone(),
        external_refund_id: ext
            .or(refund.external_refund_id.as_deref())
            .map(String::from),
        reason: "succeeded_at_gateway_after_failed",
    };
    OutboxRepository::record_event(conn, Some(&refund.tenant_id), &attention).await?;
    Ok(Change::NeedsAttention)
}

async fn failed_event(
    conn: &mut PgConnection,
    r: &RefundRow,
    reason: &str,
    was_applied: bool,
) -> AppResult<()> {
    let failed = Event::PaymentRefundFailed {
        refund_id: r.refund_id,
        payment_id: r.payment_id,
        invoice_id: r.invoice_id,
        refund_amount: r.amount,
        currency: r.currency.clone(),
        error: reason.to_string(),
        was_applied,
    };
    OutboxRepository::record_event(conn, Some(&r.tenant_id), &failed).await?;
    Ok(())
}

/// A refund made at the gateway itself (e.g. in the Stripe dashboard) that we learn of from
/// its own Refund object: recorded with the gateway's id and amount (up to what is left of the
/// payment), and applied once it succeeded. The caller holds the payment's locks.
pub async fn record_gateway_refund(
    conn: &mut PgConnection,
    payment: &PaymentRow,
    amount: Decimal,
    reason_code: Option<RefundReason>,
    outcome: &RefundOutcome,
    now: DateTime<Utc>,
) -> AppResult<&'static str> {
    if matches!(outcome.status, GatewayStatus::Failed(_)) {
        return Ok("ignored_failed_refund");
    }
    if payment.status != PaymentStatus::Succeeded {
        return Ok("ignored_payment_not_refundable");
    }
    let committed = RefundRepository::committed_total(conn, payment.payment_id).await?;
    let amount = amount.min(payment.amount - committed);
    if amount <= Decimal::ZERO {
        return Ok("ignored_over_payment");
    }
    let refund = RefundRepository::create(
        conn,
        &NewRefund {
            refund_id: Uuid::new_v4(),
            payment_id: payment.payment_id,
            invoice_id: payment.invoice_id,
            tenant_id: &payment.tenant_id,
            amount,
            currency: &payment.currency,
            status: RefundStatus::Pending,
            reason: "Refunded at the payment gateway",
            reason_ar: Some("تم الاسترداد عبر بوابة الدفع"),
            external_refund_id: outcome.external_refund_id.as_deref(),
            created_by: None,
            reason_code: reason_code.unwrap_or_default().as_str(),
            idempotency: None,
        },
    )
    .await?;
    if outcome.status == GatewayStatus::Succeeded {
        apply(conn, &refund, None, now).await?;
        return Ok("refund_recorded");
    }
    Ok("refund_pending")
}
