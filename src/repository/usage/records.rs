//! Reading usage records: by id, by event id, per subscription and per tenant, and the sums
//! over a range.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::*;

impl UsageRepository {
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: &str,
        record_id: Uuid,
    ) -> sqlx::Result<Option<UsageRecordRow>> {
        sqlx::query_as!(
            UsageRecordRow,
            r#"SELECT record_id, tenant_id, subscription_id, metric, action AS "action: _", quantity,
                 event_id, recorded_at, metadata, created_at FROM usage_records WHERE tenant_id = $1 AND record_id = $2"#,
            tenant_id,
            record_id,
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn get_by_event_id(
        conn: &mut PgConnection,
        tenant_id: &str,
        event_id: &str,
    ) -> sqlx::Result<Option<UsageRecordRow>> {
        sqlx::query_as!(
            UsageRecordRow,
            r#"SELECT record_id, tenant_id, subscription_id, metric, action AS "action: _", quantity,
                 event_id, recorded_at, metadata, created_at FROM usage_records u
             WHERE u.tenant_id = $1 AND u.event_id = $2
               AND u.recorded_at = (SELECT recorded_at FROM usage_event_ids
                                    WHERE tenant_id = $1 AND event_id = $2)"#,
            tenant_id,
            event_id,
        )
        .fetch_optional(conn)
        .await
    }

    /// A subscription's records, newest first (at most `limit`).
    pub async fn list_by_subscription(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
        limit: i64,
    ) -> sqlx::Result<Vec<UsageRecordRow>> {
        sqlx::query_as!(
            UsageRecordRow,
            r#"SELECT record_id, tenant_id, subscription_id, metric, action AS "action: _", quantity,
                 event_id, recorded_at, metadata, created_at FROM usage_records WHERE tenant_id = $1 AND subscription_id = $2
             ORDER BY recorded_at DESC, record_id DESC LIMIT $3"#,
            tenant_id,
            subscription_id,
            limit,
        )
        .fetch_all(conn)
        .await
    }

    /// The tenant's records, newest first, optionally for one metric, after the `starting_after`
    /// record, with the true total under the same filter.
    pub async fn list_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
        metric: Option<&str>,
        limit: i64,
        starting_after: Option<Uuid>,
    ) -> sqlx::Result<crate::pagination::Page<UsageRecordRow>> {
        use crate::repository::keyset::Keyset;
        const KEY: &[&str] = &["recorded_at", "record_id"];
        let of_metric = metric.map(|m| ("metric", m));
        Keyset::desc("usage_records", RECORD_COLUMNS, KEY)
            .of_tenant(conn, tenant_id, of_metric, starting_after, limit)
            .await
    }

    /// Per-metric sums of incremented quantities recorded in `[from, to)`. Gauge `set` records
    /// are levels, not amounts, so they are left out of the sums.
    pub async fn get_usage_summary(
        conn: &mut PgConnection,
        tenant_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> sqlx::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query!(
            r#"SELECT metric, COALESCE(SUM(quantity), 0)::bigint AS "total!" FROM usage_records
             WHERE tenant_id = $1 AND action = 'increment' AND recorded_at >= $2 AND recorded_at < $3
             GROUP BY metric"#,
            tenant_id,
            from,
            to,
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.metric, r.total)).collect())
    }

    /// The sum of incremented quantities of one metric in `[from, to)` (0 when none).
    pub async fn get_metric_count(
        conn: &mut PgConnection,
        tenant_id: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> sqlx::Result<i64> {
        sqlx::query_scalar!(
            r#"SELECT COALESCE(SUM(quantity), 0)::bigint AS "total!" FROM usage_records
             WHERE tenant_id = $1 AND metric = $2 AND action = 'increment'
               AND recorded_at >= $3 AND recorded_at < $4"#,
            tenant_id,
            metric,
            from,
            to,
        )
        .fetch_one(conn)
        .await
    }
}
