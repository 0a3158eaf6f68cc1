//! Runs the daily jobs once a day at `BILLING_RUN_HOUR` (UTC) on exactly one replica: the run
//! for a date is claimed by inserting its `job_runs` row, so other replicas see it taken. A
//! claim left unfinished for an hour (a killed process) may be taken over. At start a replica
//! also runs at once when the hour has passed and today's run has not happened (a missed day).

use std::time::Duration;

use chrono::{NaiveDate, Timelike};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::repository::job_runs::JobRunRepository;
use crate::state::AppState;

const JOB: &str = "daily_billing";

/// Claims the run for `date`; true when this replica should do it.
pub async fn claim(pool: &PgPool, date: NaiveDate) -> sqlx::Result<bool> {
    JobRunRepository::claim(pool, JOB, date).await
}

async fn finish(pool: &PgPool, date: NaiveDate, report: &serde_json::Value) -> sqlx::Result<()> {
    JobRunRepository::finish(pool, JOB, date, report).await
}

/// One scheduler tick: run today's jobs if due and not yet claimed.
pub async fn tick(state: &AppState) -> anyhow::Result<bool> {
    let now = state.clock.now();
    if now.hour() < state.config.billing_run_hour {
        return Ok(false);
    }
    let date = now.date_naive();
    if !claim(&state.pool, date).await? {
        return Ok(false);
    }
    let report = super::run_daily(&state.pool, &state.config, now, |_| {}).await?;
    finish(&state.pool, date, &serde_json::to_value(&report)?).await?;
    Ok(true)
}

/// Ticks every minute until `shutdown` flips; a run in progress completes before it returns.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = tick(&state).await {
            tracing::error!(job = JOB, error = %e, "scheduled billing run failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("billing scheduler stopped");
}
