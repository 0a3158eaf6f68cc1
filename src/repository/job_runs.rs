//! `job_runs`: one row per daily job and date, so exactly one replica runs it.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

pub struct JobRunRepository;

impl JobRunRepository {
    /// Claims the run of `job` for `date`: true when this caller should do it. A claim left
    /// unfinished for an hour (a killed process) may be taken over.
    pub async fn claim(pool: &PgPool, job: &str, date: NaiveDate) -> sqlx::Result<bool> {
        let claimed: Option<i32> = sqlx::query_scalar(
            "INSERT INTO job_runs (job, run_date) VALUES ($1, $2)
             ON CONFLICT (job, run_date) DO UPDATE SET started_at = now(), updated_at = now()
                WHERE job_runs.finished_at IS NULL AND job_runs.started_at < now() - interval '1 hour'
             RETURNING 1",
        )
        .bind(job)
        .bind(date)
        .fetch_optional(pool)
        .await?;
        Ok(claimed.is_some())
    }

    /// Marks the run done with its report.
    pub async fn finish(
        pool: &PgPool,
        job: &str,
        date: NaiveDate,
        report: &serde_json::Value,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE job_runs SET finished_at = now(), report = $3 WHERE job = $1 AND run_date = $2",
        )
        .bind(job)
        .bind(date)
        .bind(report)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// The database's clock (what `updated_at` and `created_at` are written with), so a job
    /// compares ages on one clock.
    pub async fn db_now(conn: &mut PgConnection) -> sqlx::Result<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar("SELECT now()").fetch_one(conn).await
    }
}
