//! The group commit of single usage events (`services::usage::coalesce`): many events in one
//! statement and one commit.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::billing::types::{BillingCycle, SubscriptionStatus};

use super::UsageRepository;

/// A group of single events for `write_group`, one bind array per column (all of equal
/// length): the record, its counter window, and the quota context it was checked against.
#[derive(Default)]
pub struct GroupColumns {
    pub record_id: Vec<Uuid>,
    pub tenant_id: Vec<String>,
    pub subscription_id: Vec<Option<Uuid>>,
    pub metric: Vec<String>,
    pub quantity: Vec<i64>,
    pub event_id: Vec<Option<String>>,
    pub recorded_at: Vec<DateTime<Utc>>,
    pub metadata: Vec<serde_json::Value>,
    pub window_start: Vec<NaiveDate>,
    pub status: Vec<Option<SubscriptionStatus>>,
    pub plan_id: Vec<Option<String>>,
    pub billing_cycle: Vec<Option<BillingCycle>>,
    pub anchor_day: Vec<Option<i16>>,
    pub start_date: Vec<Option<NaiveDate>>,
    pub end_date: Vec<Option<NaiveDate>>,
    pub limit: Vec<i64>,
}

/// One event's outcome: `n` is its 1-based position; `outcome` is `accepted` (with the
/// counter's level after the whole group), `duplicate` or `retry` (its context no longer
/// matches the database, or its plan can refuse: nothing written).
#[derive(Debug, FromRow)]
pub struct GroupRow {
    pub n: i64,
    pub outcome: String,
    pub level: Option<i64>,
}

impl UsageRepository {
    /// Writes a group in one statement: each event is checked against the subscription and
    /// plan it was validated with, its event id claimed (in key order), its record inserted,
    /// and the counters raised by their sums in key order (the order every writer locks in).
    pub async fn write_group(pool: &PgPool, c: &GroupColumns) -> sqlx::Result<Vec<GroupRow>> {
        sqlx::query_as!(
            GroupRow,
            r#"WITH u AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::bigint[],
                                      $6::text[], $7::timestamptz[], $8::jsonb[], $9::date[],
                                      $10::subscription_status[], $11::text[], $12::billing_cycle[],
                                      $13::smallint[], $14::date[], $15::date[], $16::bigint[])
                      WITH ORDINALITY AS u(rec, t, sub, m, q, e, at, md, w, st, pl, cy, an, sd, ed, lim, n)),
             fresh AS (
                 SELECT u.* FROM u
                 JOIN subscriptions s ON s.subscription_id = u.sub AND s.tenant_id = u.t
                      AND s.status = u.st AND s.plan_id = u.pl AND s.billing_cycle = u.cy
                      AND s.anchor_day = u.an AND s.start_date = u.sd AND s.end_date = u.ed
                 JOIN plans p ON p.plan_id = s.plan_id
                 LEFT JOIN plan_limits l ON l.plan_id = s.plan_id AND l.metric = u.m
                 WHERE COALESCE(l.limit_value, 0) = u.lim AND (p.overage = 'billed' OR u.lim = -1)),
             claimed AS (
                 INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
                 SELECT t, e, rec, at FROM fresh WHERE e IS NOT NULL ORDER BY t, e
                 ON CONFLICT (tenant_id, event_id) DO NOTHING
                 RETURNING record_id),
             kept AS (
                 SELECT * FROM fresh WHERE e IS NULL OR rec IN (SELECT record_id FROM claimed)),
             stored AS (
                 INSERT INTO usage_records (record_id, tenant_id, subscription_id, metric, action,
                                            quantity, event_id, recorded_at, metadata)
                 SELECT rec, t, sub, m, 'increment', q, e, at, md FROM kept ORDER BY n),
             counted AS (
                 INSERT INTO usage_counters AS c (tenant_id, metric, window_start, used, peak)
                 SELECT t, m, w, sum(q), sum(q) FROM kept GROUP BY t, m, w ORDER BY t, m, w
                 ON CONFLICT (tenant_id, metric, window_start) DO UPDATE
                    SET used = c.used + EXCLUDED.used,
                        peak = GREATEST(c.peak, c.used + EXCLUDED.used),
                        updated_at = now()
                 RETURNING tenant_id, metric, window_start, used)
             SELECT u.n AS "n!",
                    CASE WHEN f.rec IS NULL THEN 'retry'
                         WHEN k.rec IS NULL THEN 'duplicate'
                         ELSE 'accepted' END AS "outcome!",
                    CASE WHEN k.rec IS NOT NULL THEN c.used END AS "level?"
             FROM u
             LEFT JOIN fresh f ON f.n = u.n
             LEFT JOIN kept k ON k.n = u.n
             LEFT JOIN counted c ON c.tenant_id = u.t AND c.metric = u.m AND c.window_start = u.w
             ORDER BY u.n"#,
            &c.record_id,
            &c.tenant_id,
            &c.subscription_id as _,
            &c.metric,
            &c.quantity,
            &c.event_id as _,
            &c.recorded_at,
            &c.metadata,
            &c.window_start,
            &c.status as _,
            &c.plan_id as _,
            &c.billing_cycle as _,
            &c.anchor_day as _,
            &c.start_date as _,
            &c.end_date as _,
            &c.limit
        )
        .fetch_all(pool)
        .await
    }
}
