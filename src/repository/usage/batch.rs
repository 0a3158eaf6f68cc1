//! Set-based writes for batch ingestion: one INSERT for all records, one UPSERT for all
//! counter totals, whatever the batch size.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{BillingCycle, SubscriptionStatus};

use super::UsageRepository;

/// A tenant and its live subscription (if any), as the batch needs them.
#[derive(Clone, Debug, FromRow)]
pub struct TenantSubscription {
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    pub status: Option<SubscriptionStatus>,
    pub billing_cycle: Option<BillingCycle>,
    pub anchor_day: Option<i16>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub created_at: Option<DateTime<Utc>>,
}

/// Columns of the records to insert, one vector per column (all of equal length).
#[derive(Default)]
pub struct RecordColumns {
    pub record_id: Vec<Uuid>,
    pub tenant_id: Vec<String>,
    pub subscription_id: Vec<Option<Uuid>>,
    pub metric: Vec<String>,
    pub action: Vec<&'static str>,
    pub quantity: Vec<i64>,
    pub event_id: Vec<String>,
    pub recorded_at: Vec<DateTime<Utc>>,
    pub metadata: Vec<serde_json::Value>,
}

/// Counter totals to add, one vector per column, sorted by key so that concurrent batches lock
/// counter rows in the same order and cannot deadlock.
#[derive(Default)]
pub struct CounterDeltas {
    pub tenant_id: Vec<String>,
    pub metric: Vec<String>,
    pub window_start: Vec<NaiveDate>,
    pub amount: Vec<i64>,
}

impl UsageRepository {
    /// The named tenants that exist, each with its live subscription's period fields.
    pub async fn tenant_subscriptions(
        conn: &mut PgConnection,
        tenant_ids: &[String],
    ) -> sqlx::Result<HashMap<String, TenantSubscription>> {
        let rows = sqlx::query_as!(
            TenantSubscription,
            r#"SELECT t.tenant_id, s.subscription_id AS "subscription_id?", s.status AS "status: _",
                    s.billing_cycle AS "billing_cycle: _", s.anchor_day AS "anchor_day?",
                    s.start_date AS "start_date?", s.end_date AS "end_date?",
                    s.created_at AS "created_at?"
             FROM tenants t
             LEFT JOIN subscriptions s ON s.tenant_id = t.tenant_id AND s.status <> 'canceled'
             WHERE t.tenant_id = ANY($1)"#,
            tenant_ids
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.tenant_id.clone(), r)).collect())
    }

    /// Inserts all records in one statement; rows whose (tenant, event id) is already claimed in
    /// `usage_event_ids` are skipped (the claim is made in the same statement). Rows should be
    /// sorted by (tenant, event id): a concurrent batch with the same events then waits on the
    /// claim's primary key in the same order instead of deadlocking.
    /// Returns the ids of the rows actually inserted.
    pub async fn insert_records(
        conn: &mut PgConnection,
        c: &RecordColumns,
    ) -> sqlx::Result<Vec<Uuid>> {
        sqlx::query_scalar!(
            r#"WITH u AS (
                 SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                                      $6::bigint[], $7::text[], $8::timestamptz[], $9::jsonb[])
                      WITH ORDINALITY AS u(r, t, s, m, a, q, e, at, md, n)),
             claimed AS (
                 INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
                 SELECT t, e, r, at FROM u WHERE e IS NOT NULL ORDER BY n
                 ON CONFLICT (tenant_id, event_id) DO NOTHING
                 RETURNING record_id)
             INSERT INTO usage_records (record_id, tenant_id, subscription_id, metric, action,
                 quantity, event_id, recorded_at, metadata)
             SELECT r, t, s, m, a::usage_action, q, e, at, md
             FROM u
             WHERE e IS NULL OR r IN (SELECT record_id FROM claimed)
             ORDER BY n
             RETURNING record_id AS "record_id!""#,
            &c.record_id,
            &c.tenant_id,
            &c.subscription_id as _,
            &c.metric,
            &c.action as _,
            &c.quantity,
            &c.event_id,
            &c.recorded_at,
            &c.metadata
        )
        .fetch_all(conn)
        .await
    }

    /// Adds counter totals in one UPSERT (counters only: they start at 0 and only grow, so
    /// adding a sum is the same as adding its parts in any order).
    pub async fn add_to_counters(conn: &mut PgConnection, d: &CounterDeltas) -> sqlx::Result<()> {
        if d.tenant_id.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            "INSERT INTO usage_counters AS c (tenant_id, metric, window_start, used, peak)
             SELECT t, m, w, n, n
             FROM UNNEST($1::text[], $2::text[], $3::date[], $4::bigint[]) AS u(t, m, w, n)
             ORDER BY t, m, w
             ON CONFLICT (tenant_id, metric, window_start) DO UPDATE
                SET used = c.used + EXCLUDED.used,
                    peak = GREATEST(c.peak, c.used + EXCLUDED.used),
                    updated_at = now()",
            &d.tenant_id,
            &d.metric,
            &d.window_start,
            &d.amount
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Locks the given counter rows in key order (gauge rows a batch is about to update one
    /// event at a time), so batches touching the same rows queue instead of deadlocking.
    pub async fn lock_counters(conn: &mut PgConnection, d: &CounterDeltas) -> sqlx::Result<()> {
        if d.tenant_id.is_empty() {
            return Ok(());
        }
        sqlx::query!(
            r#"SELECT 1 AS "locked!" FROM usage_counters c
             JOIN UNNEST($1::text[], $2::text[], $3::date[]) AS u(t, m, w)
               ON c.tenant_id = u.t AND c.metric = u.m AND c.window_start = u.w
             ORDER BY c.tenant_id, c.metric, c.window_start
             FOR UPDATE OF c"#,
            &d.tenant_id,
            &d.metric,
            &d.window_start
        )
        .fetch_all(conn)
        .await?;
        Ok(())
    }
}
