//! Reads for the usage report over a date range.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::UsageRepository;

/// A gauge's figures for a range: the highest level in any counter window overlapping it, and
/// the level of the last window that starts before its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GaugeRange {
    pub peak: i64,
    pub level_at_end: i64,
}

impl UsageRepository {
    /// Gauge figures for `[from, to)`. Levels are tracked per counter window (billing period),
    /// so the window that contains `from` counts as overlapping. Gauges without rows are absent.
    pub async fn gauge_ranges(
        conn: &mut PgConnection,
        tenant_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> sqlx::Result<BTreeMap<String, GaugeRange>> {
        let rows = sqlx::query!(
            r#"SELECT m.metric,
                (SELECT max(c.peak) FROM usage_counters c
                  WHERE c.tenant_id = $1 AND c.metric = m.metric AND c.window_start < $3
                    AND c.window_start >= COALESCE(
                        (SELECT max(w.window_start) FROM usage_counters w
                          WHERE w.tenant_id = $1 AND w.metric = m.metric AND w.window_start <= $2), $2))
                    AS "peak?",
                (SELECT c.used FROM usage_counters c
                  WHERE c.tenant_id = $1 AND c.metric = m.metric AND c.window_start < $3
                  ORDER BY c.window_start DESC LIMIT 1) AS "level?"
             FROM metrics m WHERE m.kind = 'gauge'"#,
            tenant_id,
            from,
            to
        )
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.peak.is_some() || r.level.is_some())
            .map(|r| {
                let range = GaugeRange {
                    peak: r.peak.unwrap_or(0),
                    level_at_end: r.level.unwrap_or(0),
                };
                (r.metric, range)
            })
            .collect())
    }
}
