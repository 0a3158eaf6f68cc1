//! Runs the gateway reconciliation (see `services::payments::reconcile`) every minute beside
//! the billing scheduler: card payments and refunds left open are looked up at Stripe once
//! they are older than [`GRACE`]. Every replica may run it: rows are claimed with
//! `FOR UPDATE SKIP LOCKED`, so two runs never look at the same row at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::billing::types::PaymentMethod;
use crate::config::Config;
use crate::error::AppResult;
use crate::gateways;
use crate::services::payments::reconcile::{
    reconcile_card_payments, reconcile_card_refunds, ReconcileReport, Windows,
};
use crate::state::AppState;

/// Longer than any gateway call (`GATEWAY_TIMEOUT_SECS`, 30 s by default) plus margin, so a
/// request still waiting for Stripe is never raced.
pub const GRACE: Duration = Duration::from_secs(120);

/// A payment Stripe still has no record of after this was never charged.
pub const ABANDON_AFTER: Duration = Duration::from_secs(15 * 60);

const INTERVAL: Duration = Duration::from_secs(60);

/// One pass. Nothing to do when Stripe is not configured.
pub async fn run_once(
    pool: &PgPool,
    config: &Config,
    windows: Windows,
    now: DateTime<Utc>,
) -> AppResult<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let Some(stripe) = gateways::for_method(config, PaymentMethod::CreditCard) else {
        return Ok(report);
    };
    reconcile_card_payments(pool, stripe.as_ref(), windows, now, &mut report).await?;
    reconcile_card_refunds(pool, stripe.as_ref(), windows, now, &mut report).await?;
    metrics::counter!("billing_job_runs_total", "job" => "gateway_reconcile").increment(1);
    if report != ReconcileReport::default() {
        tracing::info!(
            job = "gateway_reconcile",
            payments_checked = report.payments_checked,
            payments_resolved = report.payments_resolved,
            payments_abandoned = report.payments_abandoned,
            refunds_checked = report.refunds_checked,
            refunds_resolved = report.refunds_resolved,
            lookup_errors = report.lookup_errors,
            "gateway reconciliation finished"
        );
    }
    Ok(report)
}

/// Every minute until `shutdown` flips; a pass in progress completes first.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let windows = Windows {
        // Never within a call that may still be running.
        grace: GRACE.max(state.config.gateway_timeout * 2),
        abandon_after: ABANDON_AFTER,
    };
    loop {
        if let Err(e) = run_once(&state.pool, &state.config, windows, state.clock.now()).await {
            tracing::error!(job = "gateway_reconcile", error = %e.message, "gateway reconciliation failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => break,
        }
    }
}
