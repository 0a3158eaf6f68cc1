//! Offline payments decided by platform staff: a confirmation settles one, a rejection fails it.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::PaymentError;
use super::{
    audit_payment, audit_snapshot, is_gateway_method, lock_payment, settle, PaymentAnswer,
    PaymentResult,
};
use crate::billing::types::PaymentStatus;
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::audit::{self, Actor};

/// A gateway call is bounded by its HTTP timeout (seconds); a payment `processing` this long
/// belongs to a request that died.
const STALE_PROCESSING_MINUTES: i64 = 10;

fn gateway_decides(p: &PaymentRow) -> PaymentError {
    PaymentError::GatewayDecides {
        method: p.method,
        status: p.status,
    }
}

/// A super admin confirms an offline payment: it settles, or 409 if it is not pending.
pub async fn confirm(
    pool: &PgPool,
    payment_id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PaymentAnswer, PaymentError> {
    let mut tx = pool.begin().await?;
    // The state the confirmation starts from, under the locks settle takes again.
    let (_, inv_before, before) = lock_payment(&mut tx, payment_id).await?;
    // Card and Tharwatt payments settle only on the gateway's word (its answer or webhook).
    if is_gateway_method(before.method) {
        return Err(gateway_decides(&before));
    }
    let s = settle(&mut tx, payment_id, Some(&actor.subject), now).await?;
    if !s.settled_now {
        return Err(PaymentError::InvalidState(s.payment.status));
    }
    let (old, new) = audit::changed(
        &audit_snapshot(&before, &inv_before),
        &audit_snapshot(&s.payment, &s.invoice),
    );
    audit_payment(
        &mut tx,
        actor,
        "payment.confirm",
        &s.payment,
        Some(old),
        new,
    )
    .await?;
    tx.commit().await?;
    Ok(PaymentAnswer::new(
        &s.payment,
        &s.invoice,
        PaymentResult::Confirmed,
    ))
}

/// A super admin rejects an offline payment: failed with `reason`; the invoice is unchanged.
pub async fn reject(
    pool: &PgPool,
    payment_id: Uuid,
    reason: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<PaymentAnswer, PaymentError> {
    let mut tx = pool.begin().await?;
    let (tenant_id, inv, before) = lock_payment(&mut tx, payment_id).await?;
    // A gateway call in flight (`processing`, recently) must finish first. A gateway payment
    // left `pending` (outcome unknown), or `processing` long after any call could still be
    // running (the process died mid-call), may be rejected to unblock the invoice; a late
    // success from the gateway is then recorded on the payment, not applied.
    let in_flight = before.status == PaymentStatus::Processing
        && now - before.updated_at < chrono::Duration::minutes(STALE_PROCESSING_MINUTES);
    if is_gateway_method(before.method) && in_flight {
        return Err(gateway_decides(&before));
    }
    let reason = reason.unwrap_or("Rejected by an administrator");
    let payment = PaymentRepository::mark_failed(
        &mut tx,
        &tenant_id,
        payment_id,
        reason,
        Some(&actor.subject),
        now,
    )
    .await?
    .ok_or(PaymentError::InvalidState(before.status))?;
    let (old, new) = audit::changed(
        &audit_snapshot(&before, &inv),
        &audit_snapshot(&payment, &inv),
    );
    audit_payment(&mut tx, actor, "payment.reject", &payment, Some(old), new).await?;
    super::failed_event(&mut tx, &payment, reason).await?;
    tx.commit().await?;
    Ok(PaymentAnswer::new(&payment, &inv, PaymentResult::Rejected))
}
