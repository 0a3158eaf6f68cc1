//! The janitor for gateway calls whose answer was lost (a timeout, a 5xx, a process killed
//! mid-call): card payments and refunds left open are looked up at Stripe and settled from
//! what it says, as a request and a webhook would have. The job claims rows untouched for a
//! grace period (longer than any call can take, so none is still in flight), asks the gateway
//! outside any transaction, and applies each answer in its own transaction.
//!
//! A payment Stripe has no record of long after it was sent (`abandon_after`: Search, which
//! finds a PaymentIntent without its id, lags by up to a minute) was never charged: it fails,
//! so the invoice can be paid again. Should Stripe charge it after all, its
//! `payment_intent.succeeded` reopens and settles it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use super::gateway::{fail, finish};
use crate::billing::types::PaymentMethod;
use crate::error::AppResult;
use crate::gateways::{PaymentGateway, RefundOutcome, RefundStatus};
use crate::repository::job_runs::JobRunRepository;
use crate::repository::payments::refunds::{RefundRepository, RefundRow};
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::refunds::events::{on_gateway_state, Change};
use crate::services::refunds::gateway::request_for;

/// Rows looked at per run.
pub const BATCH: i64 = 100;

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ReconcileReport {
    pub payments_checked: u32,
    /// Settled, failed or given the gateway's id from what the gateway said.
    pub payments_resolved: u32,
    /// Failed because the gateway has no record of them after `abandon_after`.
    pub payments_abandoned: u32,
    pub refunds_checked: u32,
    pub refunds_resolved: u32,
    /// Lookups that failed (the gateway unreachable): tried again after the grace.
    pub lookup_errors: u32,
}

/// When a row counts as stale and when an unknown payment counts as never charged.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    pub grace: Duration,
    pub abandon_after: Duration,
}

fn secs(d: Duration) -> i64 {
    d.as_secs().min(i64::MAX as u64) as i64
}

pub async fn reconcile_card_payments(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    windows: Windows,
    now: DateTime<Utc>,
    report: &mut ReconcileReport,
) -> AppResult<()> {
    let mut conn = pool.acquire().await?;
    let claimed = PaymentRepository::claim_stale_open(
        &mut conn,
        PaymentMethod::CreditCard,
        secs(windows.grace),
        BATCH,
    )
    .await?;
    let db_now = JobRunRepository::db_now(&mut conn).await?;
    drop(conn);
    for p in claimed {
        report.payments_checked += 1;
        let found = gateway
            .lookup_charge(p.payment_id, p.external_id.as_deref())
            .await;
        match found {
            Ok(Some(outcome)) => {
                let mut tx = pool.begin().await?;
                let before = p.status;
                let after = finish(&mut tx, p.payment_id, Ok(outcome), now).await;
                tx.commit().await?;
                if after.is_ok() || status_moved(pool, &p, before).await? {
                    report.payments_resolved += 1;
                }
            }
            Ok(None) if too_old(&p, db_now, windows.abandon_after) => {
                let mut tx = pool.begin().await?;
                let reason =
                    "The payment gateway has no record of this payment; it was not charged";
                if fail(&mut tx, p.payment_id, None, reason, now)
                    .await?
                    .is_some()
                {
                    report.payments_abandoned += 1;
                }
                tx.commit().await?;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(payment.id = %p.payment_id, error = %e, "payment lookup failed");
                report.lookup_errors += 1;
            }
        }
    }
    Ok(())
}

fn too_old(p: &PaymentRow, db_now: DateTime<Utc>, abandon_after: Duration) -> bool {
    let age = db_now - p.created_at;
    age.to_std().is_ok_and(|a| a >= abandon_after)
}

/// Whether applying the gateway's answer moved the payment (a decline is an error answer but
/// a resolution all the same).
async fn status_moved(
    pool: &PgPool,
    p: &PaymentRow,
    before: crate::billing::types::PaymentStatus,
) -> AppResult<bool> {
    let mut conn = pool.acquire().await?;
    let now = PaymentRepository::get_by_id(&mut conn, None, p.payment_id).await?;
    Ok(now.is_some_and(|n| n.status != before))
}

pub async fn reconcile_card_refunds(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    windows: Windows,
    now: DateTime<Utc>,
    report: &mut ReconcileReport,
) -> AppResult<()> {
    let mut conn = pool.acquire().await?;
    let claimed = RefundRepository::claim_stale_pending(
        &mut conn,
        PaymentMethod::CreditCard,
        secs(windows.grace),
        BATCH,
    )
    .await?;
    drop(conn);
    for r in claimed {
        report.refunds_checked += 1;
        match lookup_refund(pool, gateway, &r).await {
            Ok(outcome) => {
                let mut tx = pool.begin().await?;
                let after = on_gateway_state(&mut tx, r.refund_id, &outcome, now).await?;
                tx.commit().await?;
                if !matches!(after.change, Change::StillPending | Change::Unchanged) {
                    report.refunds_resolved += 1;
                }
            }
            Err(e) => {
                tracing::warn!(refund.id = %r.refund_id, error = %e, "refund lookup failed");
                report.lookup_errors += 1;
            }
        }
    }
    Ok(())
}

/// The refund's state at the gateway. A refund it does not hold, a grace after our last call
/// (its refund list is consistent at once), was never made: it failed.
async fn lookup_refund(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    r: &RefundRow,
) -> anyhow::Result<RefundOutcome> {
    let payment = {
        let mut conn = pool.acquire().await?;
        PaymentRepository::get_by_id(&mut conn, None, r.payment_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("refund without its payment"))?
    };
    let request = request_for(pool, &payment, r)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let found = gateway
        .lookup_refund(&request, r.external_refund_id.as_deref())
        .await?;
    Ok(found.unwrap_or(RefundOutcome {
        external_refund_id: None,
        status: RefundStatus::Failed(
            "The payment gateway has no record of this refund; nothing was refunded".into(),
        ),
    }))
}
