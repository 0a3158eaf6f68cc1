//! Daily billing jobs: renewals and trial ends, dunning, and expired idempotency keys.
//! `serve` runs them from a scheduler; `bill --date` and `POST /v1/admin/billing-run` run the
//! same code as of a date (the HTTP one through [`billing_run`], which audits it).

pub mod outbox_relay;
pub mod reconcile;
pub mod scheduler;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::services::audit::{self, Actor};
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

/// Runs the daily billing jobs as of `at` and records one row summarising the run: the report,
/// or the error that stopped it (work committed before the error stays done).
pub async fn billing_run(
    pool: &PgPool,
    config: &Config,
    actor: &Actor,
    at: DateTime<Utc>,
) -> AppResult<DailyReport> {
    let result = run_daily(pool, config, at, |_| {}).await;
    let date = at.date_naive().to_string();
    let after = match &result {
        Ok(report) => {
            serde_json::to_value(report).map_err(|e| AppError::internal(anyhow::Error::new(e)))?
        }
        Err(e) => serde_json::json!({ "date": date, "error": e.code, "message": e.message }),
    };
    let event = audit::AuditEvent {
        tenant_id: None,
        action: "billing.run",
        target_type: "billing_run",
        target_id: date,
        before: None,
        after: Some(after),
    };
    let written = async {
        let mut conn = pool.acquire().await?;
        audit::record(&mut conn, actor, event).await
    }
    .await;
    match (result, written) {
        (Ok(report), Ok(())) => Ok(report),
        (Ok(_), Err(e)) => Err(e),
        (Err(run), Ok(())) => Err(run),
        (Err(run), Err(audit)) => {
            // The run's own error is what the caller needs; the lost row is logged.
            tracing::error!(
                error = audit.code,
                "could not record the failed billing run in the audit log"
            );
            Err(run)
        }
    }
}
