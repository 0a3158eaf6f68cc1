//! Daily billing jobs: renewals and trial ends, dunning, and expired idempotency keys.
//! `serve` runs them from a scheduler; `bill --date` and `POST /v1/admin/billing-run` run the
//! same code as of a date.

pub mod outbox_relay;
pub mod reconcile;
pub mod scheduler;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::config::Config;
use crate::error::AppResult;
use crate::services::dunning::{run_dunning, DunningReport};
use crate::services::renewal::{run_renewals, RenewalReport};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DailyReport {
    pub date: String,
    pub renewals: RenewalReport,
    pub dunning: DunningReport,
    pub idempotency_keys_purged: u64,
    pub elapsed_ms: u128,
}

/// Subscriptions per renewal transaction.
pub const RENEWAL_BATCH: i64 = 200;

pub async fn run_daily(
    pool: &PgPool,
    config: &Config,
    now: DateTime<Utc>,
    progress: impl FnMut(&RenewalReport),
) -> AppResult<DailyReport> {
    let started = std::time::Instant::now();
    // Dunning runs even when renewals stop early (e.g. the database went away mid-run).
    let renewals = run_renewals(pool, config, now, RENEWAL_BATCH, progress).await;
    let dunning = run_dunning(pool, config, now.date_naive()).await?;
    let renewals = renewals?;
    let purged = crate::services::idempotency::purge_expired(pool).await?;
    if let Err(e) = crate::db::ensure_usage_partitions(pool).await {
        tracing::warn!(error = %e, "could not create usage_records partitions ahead");
    }
    let report = DailyReport {
        date: now.date_naive().to_string(),
        renewals,
        dunning,
        idempotency_keys_purged: purged,
        elapsed_ms: started.elapsed().as_millis(),
    };
    metrics::counter!("billing_job_runs_total", "job" => "daily_billing").increment(1);
    metrics::histogram!("billing_job_duration_seconds", "job" => "daily_billing")
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        job = "daily_billing",
        date = %report.date,
        invoices = report.renewals.invoices_issued,
        overdue = report.dunning.invoices_overdue,
        elapsed_ms = report.elapsed_ms as u64,
        "billing run finished"
    );
    Ok(report)
}
