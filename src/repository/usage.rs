//! Usage records (one row per accepted event) and usage counters (running totals per tenant,
//! metric and window that the quota check updates atomically).

mod batch;
mod group;
mod notices;
mod records;
mod report;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{MetricKind, OveragePolicy, SubscriptionStatus, UsageAction};

pub use batch::{CounterDeltas, RecordColumns, TenantSubscription};
pub use group::{GroupColumns, GroupRow};
pub use report::GaugeRange;

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct UsageRecordRow {
    pub record_id: Uuid,
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub metric: String,
    pub action: UsageAction,
    pub quantity: i64,
    pub event_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

const RECORD_COLUMNS: &str = "record_id, tenant_id, subscription_id, metric, action, quantity, \
    event_id, recorded_at, metadata, created_at";

pub struct NewUsageRecord<'a> {
    pub record_id: Uuid,
    pub tenant_id: &'a str,
    pub subscription_id: Option<Uuid>,
    pub metric: &'a str,
    pub action: UsageAction,
    pub quantity: i64,
    pub event_id: Option<&'a str>,
    pub recorded_at: DateTime<Utc>,
    pub metadata: &'a serde_json::Value,
}

/// Everything a usage write or an enforce check needs, read in one round trip. The tenant row
/// always exists when this is returned; the rest is `None` when missing.
#[derive(Clone, Debug, FromRow)]
pub struct QuotaContext {
    pub subscription_id: Option<Uuid>,
    pub status: Option<SubscriptionStatus>,
    pub plan_id: Option<String>,
    pub plan_name: Option<String>,
    pub plan_name_ar: Option<String>,
    pub overage: Option<OveragePolicy>,
    pub billing_cycle: Option<crate::billing::types::BillingCycle>,
    pub anchor_day: Option<i16>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub created_at: Option<DateTime<Utc>>,
    pub kind: Option<MetricKind>,
    pub limit_value: i64,
}

/// The key of one usage_counters row.
#[derive(Clone, Copy, Debug)]
pub struct CounterKey<'a> {
    pub tenant_id: &'a str,
    pub metric: &'a str,
    pub window_start: NaiveDate,
}

/// What `record_event` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOutcome {
    /// Recorded; the counter's new level.
    Accepted(i64),
    /// The event id was already stored; nothing written.
    Duplicate,
    /// The quota refused it; nothing written; the counter's current level.
    Refused(i64),
    /// The subscription or plan no longer matches the context passed; nothing written.
    Stale,
}

/// The SQLSTATE `record_usage_event` raises for a refused quota.
const QUOTA_REFUSED: &str = "SB429";

pub struct UsageRepository;

impl UsageRepository {
    /// Inserts a record. With an `event_id` already used by the tenant nothing is written and
    /// `None` is returned. The event id is claimed in `usage_event_ids` in the same statement
    /// (usage_records is partitioned, so it cannot hold a unique index on the event id); a
    /// concurrent copy waits on that primary key until the first commits.
    pub async fn create(
        conn: &mut PgConnection,
        r: &NewUsageRecord<'_>,
    ) -> sqlx::Result<Option<UsageRecordRow>> {
        sqlx::query_as!(
            UsageRecordRow,
            r#"WITH claimed AS (
                 INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
                 SELECT $2, $7, $1, $8 WHERE $7::text IS NOT NULL
                 ON CONFLICT (tenant_id, event_id) DO NOTHING
                 RETURNING record_id)
             INSERT INTO usage_records (record_id, tenant_id, subscription_id, metric, action, quantity,
                 event_id, recorded_at, metadata)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE $7::text IS NULL OR EXISTS (SELECT 1 FROM claimed)
             RETURNING record_id, tenant_id, subscription_id, metric, action AS "action: _", quantity,
                 event_id, recorded_at, metadata, created_at"#,
            r.record_id,
            r.tenant_id,
            r.subscription_id,
            r.metric,
            r.action as _,
            r.quantity,
            r.event_id,
            r.recorded_at,
            r.metadata,
        )
        .fetch_optional(conn)
        .await
    }

    /// Writes one event with `record_usage_event` (one statement: freshness check against
    /// `ctx`, event-id claim, quota check and counter change, record). `ctx` must describe a
    /// live subscription (its period fields, plan and overage set).
    pub async fn record_event(
        conn: &mut PgConnection,
        r: &NewUsageRecord<'_>,
        window_start: NaiveDate,
        gauge: bool,
        ctx: &QuotaContext,
    ) -> sqlx::Result<EventOutcome> {
        let row = sqlx::query!(
            r#"SELECT r_outcome AS "r_outcome!", r_level FROM record_usage_event(
                 $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"#,
            r.record_id,
            r.tenant_id,
            r.subscription_id,
            r.metric,
            r.action as _,
            r.quantity,
            r.event_id,
            r.recorded_at,
            r.metadata,
            window_start,
            gauge,
            ctx.limit_value,
            ctx.status as _,
            ctx.plan_id.as_deref(),
            ctx.overage as _,
            ctx.billing_cycle as _,
            ctx.anchor_day,
            ctx.start_date,
            ctx.end_date,
        )
        .fetch_one(conn)
        .await
        .map(|row| (row.r_outcome, row.r_level));
        match row {
            Ok((outcome, level)) => Ok(match (outcome.as_str(), level) {
                ("accepted", Some(level)) => EventOutcome::Accepted(level),
                ("duplicate", _) => EventOutcome::Duplicate,
                _ => EventOutcome::Stale,
            }),
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(QUOTA_REFUSED) => {
                let pg = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
                let level = pg
                    .and_then(|pg| pg.detail())
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                Ok(EventOutcome::Refused(level))
            }
            Err(e) => Err(e),
        }
    }

    /// Tenant, live subscription, plan, metric kind and limit in one query. `None` when the
    /// tenant does not exist.
    pub async fn quota_context(
        conn: &mut PgConnection,
        tenant_id: &str,
        metric: &str,
    ) -> sqlx::Result<Option<QuotaContext>> {
        sqlx::query_as!(
            QuotaContext,
            r#"SELECT s.subscription_id AS "subscription_id?", s.status AS "status?: _",
                    s.plan_id AS "plan_id?", p.name AS "plan_name?", p.name_ar AS "plan_name_ar?",
                    p.overage AS "overage?: _", s.billing_cycle AS "billing_cycle?: _",
                    s.anchor_day AS "anchor_day?", s.start_date AS "start_date?",
                    s.end_date AS "end_date?", s.created_at AS "created_at?", m.kind AS "kind?: _",
                    COALESCE(l.limit_value, 0) AS "limit_value!"
             FROM tenants t
             LEFT JOIN subscriptions s ON s.tenant_id = t.tenant_id AND s.status <> 'canceled'
             LEFT JOIN plans p ON p.plan_id = s.plan_id
             LEFT JOIN metrics m ON m.metric = $2
             LEFT JOIN plan_limits l ON l.plan_id = s.plan_id AND l.metric = $2
             WHERE t.tenant_id = $1"#,
            tenant_id,
            metric,
        )
        .fetch_optional(conn)
        .await
    }

    /// Makes sure the counter row exists. A gauge's first row in a new period starts from the
    /// most recent earlier level, so the level carries across windows; counters start at 0.
    pub async fn ensure_counter(
        conn: &mut PgConnection,
        key: CounterKey<'_>,
        carry_level: bool,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak)
             SELECT $1, $2, $3, lvl, lvl FROM (
                 SELECT CASE WHEN $4 THEN COALESCE((
                     SELECT used FROM usage_counters
                     WHERE tenant_id = $1 AND metric = $2 AND window_start < $3
                     ORDER BY window_start DESC LIMIT 1), 0) ELSE 0 END AS lvl) AS carried
             ON CONFLICT (tenant_id, metric, window_start) DO NOTHING",
            key.tenant_id,
            key.metric,
            key.window_start,
            carry_level,
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The quota check and the write in ONE statement: the row lock serialises concurrent
    /// writers and the WHERE clause is re-checked against the committed value, so a blocked
    /// limit can never be overshot. `set` replaces the level; otherwise `quantity` is added
    /// (a gauge delta may be negative; the level never drops below zero, and a decrease is
    /// always allowed). Returns the new level, or `None` when the limit refused it.
    pub async fn apply(
        conn: &mut PgConnection,
        key: CounterKey<'_>,
        action: UsageAction,
        quantity: i64,
        limit: i64,
        blocked: bool,
    ) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar(
            "UPDATE usage_counters
                SET used = CASE WHEN $4 THEN $5 ELSE GREATEST(used + $5, 0) END,
                    peak = GREATEST(peak, CASE WHEN $4 THEN $5 ELSE used + $5 END),
                    updated_at = now()
              WHERE tenant_id = $1 AND metric = $2 AND window_start = $3
                AND ($6 = false OR $7 = -1 OR (NOT $4 AND $5 <= 0)
                     OR CASE WHEN $4 THEN $5 ELSE used + $5 END <= $7)
             RETURNING used",
        )
        .bind(key.tenant_id)
        .bind(key.metric)
        .bind(key.window_start)
        .bind(action == UsageAction::Set)
        .bind(quantity)
        .bind(blocked)
        .bind(limit)
        .fetch_optional(conn)
        .await
    }

    /// Current usage per metric for a tenant, without writing: period counters in the window
    /// starting `period_start`, daily counters on `day`, gauges at their latest level up to the
    /// period (or `day` without a period). Metrics with no row are absent (0).
    pub async fn current_levels(
        conn: &mut PgConnection,
        tenant_id: &str,
        period_start: Option<NaiveDate>,
        day: NaiveDate,
        metric: Option<&str>,
    ) -> sqlx::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query!(
            "SELECT DISTINCT ON (c.metric) c.metric, c.used
             FROM usage_counters c JOIN metrics m ON m.metric = c.metric
             WHERE c.tenant_id = $1 AND ($4::text IS NULL OR c.metric = $4)
               AND ((m.kind = 'period_counter' AND c.window_start = $2)
                 OR (m.kind = 'daily_counter' AND c.window_start = $3)
                 OR (m.kind = 'gauge' AND c.window_start <= COALESCE($2, $3)))
             ORDER BY c.metric, c.window_start DESC",
            tenant_id,
            period_start,
            day,
            metric,
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.metric, r.used)).collect())
    }

    /// The level the enforce check compares against, in one indexed read: the counter row of
    /// `window_start`, or for a gauge (`latest`) the most recent row at or before it. 0 when none.
    pub async fn level<'e>(
        ex: impl sqlx::PgExecutor<'e>,
        key: CounterKey<'_>,
        latest: bool,
    ) -> sqlx::Result<i64> {
        let used: Option<i64> = if latest {
            sqlx::query_scalar!(
                "SELECT used FROM usage_counters WHERE tenant_id = $1 AND metric = $2 AND window_start <= $3
             ORDER BY window_start DESC LIMIT 1",
                key.tenant_id,
                key.metric,
                key.window_start,
            )
            .fetch_optional(ex)
            .await?
        } else {
            sqlx::query_scalar!(
                "SELECT used FROM usage_counters WHERE tenant_id = $1 AND metric = $2 AND window_start = $3",
                key.tenant_id,
                key.metric,
                key.window_start,
            )
            .fetch_optional(ex)
            .await?
        };
        Ok(used.unwrap_or(0))
    }

    /// One counter row's `(used, peak)`, if it exists.
    pub async fn counter(
        conn: &mut PgConnection,
        key: CounterKey<'_>,
    ) -> sqlx::Result<Option<(i64, i64)>> {
        let row = sqlx::query!(
            "SELECT used, peak FROM usage_counters WHERE tenant_id = $1 AND metric = $2 AND window_start = $3",
            key.tenant_id,
            key.metric,
            key.window_start,
        )
        .fetch_optional(conn)
        .await?;
        Ok(row.map(|r| (r.used, r.peak)))
    }
}
