//! The `quota.exceeded` notices already given: one per tenant, metric and counter window.

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::UsageRepository;

impl UsageRepository {
    /// Claims the window's one notice; false when it was given already. A concurrent claim
    /// of the same window waits on the primary key until this transaction ends, so exactly one
    /// caller gets true.
    pub async fn claim_quota_notice(
        conn: &mut PgConnection,
        tenant_id: &str,
        metric: &str,
        window_start: NaiveDate,
    ) -> sqlx::Result<bool> {
        let claimed = sqlx::query_scalar!(
            r#"INSERT INTO quota_exceeded_notices (tenant_id, metric, window_start)
             VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, metric, window_start) DO NOTHING
             RETURNING 1 AS "claimed!""#,
            tenant_id,
            metric,
            window_start
        )
        .fetch_optional(conn)
        .await?;
        Ok(claimed.is_some())
    }
}
