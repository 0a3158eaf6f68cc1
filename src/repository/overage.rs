//! What a tenant used over its plan's limits in a period, per metric, from the usage counters.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};

pub struct OverageRepository;

/// A metric's use over the limit in a period, with what the invoice line needs to name it.
#[derive(Debug, Clone, FromRow)]
pub struct Excess {
    pub metric: String,
    pub name: String,
    pub name_ar: String,
    pub overage_rate_usd: Decimal,
    pub lim: i64,
    pub excess: i64,
}

impl OverageRepository {
    /// Period and daily counters in `[start, end)`: each counter window's use over the limit,
    /// summed (a period counter has one window, a daily counter one per day). Unlimited
    /// metrics (-1) are left out.
    pub async fn counter_excess(
        conn: &mut PgConnection,
        tenant_id: &str,
        plan_id: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> sqlx::Result<Vec<Excess>> {
        sqlx::query_as!(
            Excess,
            r#"SELECT m.metric, m.name, m.name_ar, m.overage_rate_usd,
                    COALESCE(l.limit_value, 0) AS "lim!",
                    SUM(GREATEST(c.used - COALESCE(l.limit_value, 0), 0))::bigint AS "excess!"
             FROM metrics m
             JOIN usage_counters c ON c.metric = m.metric AND c.tenant_id = $1
                                  AND c.window_start >= $2 AND c.window_start < $3
             LEFT JOIN plan_limits l ON l.plan_id = $4 AND l.metric = m.metric
             WHERE m.kind IN ('period_counter', 'daily_counter') AND COALESCE(l.limit_value, 0) <> -1
             GROUP BY m.metric, m.name, m.name_ar, m.overage_rate_usd, l.limit_value"#,
            tenant_id,
            start,
            end,
            plan_id
        )
        .fetch_all(conn)
        .await
    }

    /// Gauges: the peak level over the limit. A gauge's level carries over: its peak in the
    /// period is the period row's peak, or the last level before the period when nothing
    /// changed during it.
    pub async fn gauge_excess(
        conn: &mut PgConnection,
        tenant_id: &str,
        plan_id: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> sqlx::Result<Vec<Excess>> {
        sqlx::query_as!(
            Excess,
            r#"SELECT metric AS "metric!", name AS "name!", name_ar AS "name_ar!",
                    overage_rate_usd AS "overage_rate_usd!", lim AS "lim!",
                    GREATEST(level - lim, 0) AS "excess!"
             FROM (
                SELECT DISTINCT ON (m.metric) m.metric, m.name, m.name_ar, m.overage_rate_usd,
                       COALESCE(l.limit_value, 0) AS lim,
                       CASE WHEN c.window_start >= $2 THEN c.peak ELSE c.used END AS level
                FROM metrics m
                JOIN usage_counters c ON c.metric = m.metric AND c.tenant_id = $1 AND c.window_start < $3
                LEFT JOIN plan_limits l ON l.plan_id = $4 AND l.metric = m.metric
                WHERE m.kind = 'gauge' AND COALESCE(l.limit_value, 0) <> -1
                ORDER BY m.metric, c.window_start DESC
             ) g"#,
            tenant_id,
            start,
            end,
            plan_id
        )
        .fetch_all(conn)
        .await
    }
}
