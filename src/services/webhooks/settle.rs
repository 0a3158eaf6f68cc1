//! The settlement a webhook applies, shared by both gateways: money arrived, or the payment
//! failed.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{Connection, PgConnection};

use crate::billing::types::PaymentStatus;
use crate::error::AppResult;
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::payments::notes::{self, Note};
use crate::services::payments::{lock_payment, settle_with_external};

/// What a gateway reports about money that arrived.
pub(super) struct Success<'a> {
    pub amount: Option<Decimal>,
    pub currency: &'a str,
    pub external_id: Option<&'a str>,
    /// Whether this success may overturn a failure the gateway reported earlier.
    pub revives_failure: bool,
}

/// A gateway says the money arrived. Settles only if the amount and currency are what the
/// gateway was asked to collect; a mismatch is recorded on the payment and settles nothing.
pub(super) async fn on_success(
    conn: &mut PgConnection,
    p: &PaymentRow,
    success: Success<'_>,
    now: DateTime<Utc>,
) -> AppResult<&'static str> {
    let Success {
        amount,
        currency,
        external_id,
        revives_failure,
    } = success;
    let (tenant_id, _, p) = lock_payment(conn, p.payment_id).await?;
    let want_amount = p.gateway_amount.unwrap_or(p.amount);
    let want_currency = p
        .gateway_currency
        .clone()
        .unwrap_or_else(|| p.currency.clone());
    if amount != Some(want_amount) || !currency.eq_ignore_ascii_case(&want_currency) {
        let note = Note::WebhookMismatch {
            expected_amount: want_amount,
            expected_currency: &want_currency,
            received_amount: amount,
            received_currency: currency,
            external_id,
            at: now,
        };
        notes::leave(conn, &tenant_id, p.payment_id, note).await?;
        tracing::warn!(payment.id = %p.payment_id, "webhook amount or currency differs from the payment");
        return Ok("amount_mismatch");
    }
    // A failure the gateway itself reported reopens (never one staff decided).
    let reopened = p.status == PaymentStatus::Failed
        && revives_failure
        && PaymentRepository::reopen_failed(conn, &tenant_id, p.payment_id)
            .await?
            .is_some();
    match p.status {
        PaymentStatus::Succeeded | PaymentStatus::Refunded => return Ok("already_settled"),
        PaymentStatus::Failed if reopened => {}
        PaymentStatus::Failed => {
            // Money arrived for a payment staff rejected: keep it visible for them.
            let note = Note::SucceededAfterFailure {
                external_id,
                at: now,
            };
            notes::leave(conn, &tenant_id, p.payment_id, note).await?;
            return Ok("ignored_failed_payment");
        }
        PaymentStatus::Pending | PaymentStatus::Processing => {}
    }
    // A savepoint: if the money cannot be applied (the invoice was paid otherwise meanwhile),
    // the event is still recorded with a note instead of being retried forever.
    let mut sp = conn.begin().await?;
    match settle_with_external(&mut sp, p.payment_id, external_id, None, now).await {
        Ok(s) => {
            sp.commit().await?;
            Ok(if s.settled_now {
                "settled"
            } else {
                "already_settled"
            })
        }
        Err(e) => {
            sp.rollback().await?;
            let note = Note::UnappliedCharge {
                external_id,
                error: e.code,
                at: now,
            };
            notes::leave(conn, &tenant_id, p.payment_id, note).await?;
            tracing::error!(payment.id = %p.payment_id, error = e.code, "webhook money could not be applied");
            Ok("not_applied")
        }
    }
}

/// A gateway says the payment failed: an open payment fails; a settled one stays settled.
pub(super) async fn on_failure(
    conn: &mut PgConnection,
    p: &PaymentRow,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<&'static str> {
    let (tenant_id, _, p) = lock_payment(conn, p.payment_id).await?;
    if !matches!(p.status, PaymentStatus::Pending | PaymentStatus::Processing) {
        return Ok("ignored_out_of_order");
    }
    let Some(failed) =
        PaymentRepository::mark_failed(conn, &tenant_id, p.payment_id, reason, None, now).await?
    else {
        return Ok("ignored_out_of_order");
    };
    crate::services::payments::failed_event(conn, &failed, reason).await?;
    Ok("failed")
}
