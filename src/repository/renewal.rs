//! The statements of the renewal run: claiming due subscriptions in batches, the per-batch
//! lookups that spare the common case a query per subscription, and the set-based save of the
//! advanced periods.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::types::{BillingCycle, SubscriptionStatus};
use crate::repository::subscriptions::SubscriptionRow;
use crate::repository::tenants::TenantRow;

pub struct RenewalRepository;

/// Which subscriptions a batch claims.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Due on or before this day.
    pub as_of: NaiveDate,
    pub batch: i64,
    /// Left out (their renewal failed earlier in this run).
    pub failed: &'a [Uuid],
    /// Only these, when given.
    pub only: Option<&'a [Uuid]>,
    /// Keyset position: after this (next_billing_date, subscription_id).
    pub after: Option<(NaiveDate, Uuid)>,
}

impl RenewalRepository {
    /// Claims due subscriptions, skipping rows another run holds.
    pub async fn claim(
        conn: &mut PgConnection,
        c: Claim<'_>,
    ) -> sqlx::Result<Vec<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _",
                 billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _",
                 currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date,
                 next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at,
                 updated_at
             FROM subscriptions
             WHERE status IN ('trial', 'active', 'past_due') AND next_billing_date <= $1
               AND subscription_id <> ALL($3) AND ($4::uuid[] IS NULL OR subscription_id = ANY($4))
               AND ($5::date IS NULL OR (next_billing_date, subscription_id) > ($5, $6))
             ORDER BY next_billing_date, subscription_id
             LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"#,
            c.as_of,
            c.batch,
            c.failed,
            c.only,
            c.after.map(|a| a.0),
            c.after.map(|a| a.1)
        )
        .fetch_all(conn)
        .await
    }

    pub async fn tenants(conn: &mut PgConnection, ids: &[&str]) -> sqlx::Result<Vec<TenantRow>> {
        sqlx::query_as!(
            TenantRow,
            "SELECT tenant_id, name, name_ar, email, phone, tax_id, tax_rate, is_active, created_at,
                 updated_at
             FROM tenants WHERE tenant_id = ANY($1)",
            ids as &[&str]
        )
        .fetch_all(conn)
        .await
    }

    /// Which of `ids` have any downgrade credit entry at all.
    pub async fn tenants_with_credit(
        conn: &mut PgConnection,
        ids: &[&str],
    ) -> sqlx::Result<HashSet<String>> {
        let found = sqlx::query_scalar!(
            "SELECT DISTINCT tenant_id FROM credit_balance_entries WHERE tenant_id = ANY($1)",
            ids as &[&str]
        )
        .fetch_all(conn)
        .await?;
        Ok(found.into_iter().collect())
    }

    /// Which of `ids` have any usage counter at all.
    pub async fn tenants_with_usage(
        conn: &mut PgConnection,
        ids: &[&str],
    ) -> sqlx::Result<HashSet<String>> {
        let found = sqlx::query_scalar!(
            "SELECT DISTINCT tenant_id FROM usage_counters WHERE tenant_id = ANY($1)",
            ids as &[&str]
        )
        .fetch_all(conn)
        .await?;
        Ok(found.into_iter().collect())
    }

    /// Writes the advanced periods of many subscriptions in one statement. A subscription
    /// canceled meanwhile (`cancel`) keeps that status.
    pub async fn save_periods(
        conn: &mut PgConnection,
        subs: &[SubscriptionRow],
    ) -> sqlx::Result<()> {
        if subs.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = subs.iter().map(|s| s.subscription_id).collect();
        let statuses: Vec<SubscriptionStatus> = subs.iter().map(|s| s.status).collect();
        let cycles: Vec<BillingCycle> = subs.iter().map(|s| s.billing_cycle).collect();
        let pending: Vec<Option<BillingCycle>> =
            subs.iter().map(|s| s.pending_billing_cycle).collect();
        let anchors: Vec<i16> = subs.iter().map(|s| s.anchor_day).collect();
        let starts: Vec<NaiveDate> = subs.iter().map(|s| s.start_date).collect();
        let ends: Vec<NaiveDate> = subs.iter().map(|s| s.end_date).collect();
        sqlx::query!(
            "UPDATE subscriptions s
             SET status = CASE WHEN s.status = 'canceled' THEN s.status ELSE t.status END,
                 billing_cycle = t.cycle,
                 pending_billing_cycle = t.pending, anchor_day = t.anchor, start_date = t.start_date,
                 end_date = t.end_date, next_billing_date = t.end_date
             FROM UNNEST($1::uuid[], $2::subscription_status[], $3::billing_cycle[], $4::billing_cycle[],
                         $5::smallint[], $6::date[], $7::date[])
                  AS t(id, status, cycle, pending, anchor, start_date, end_date)
             WHERE s.subscription_id = t.id",
            &ids,
            &statuses as _,
            &cycles as _,
            &pending as _,
            &anchors,
            &starts,
            &ends
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Ends a subscription whose cancellation was pending for its period end.
    pub async fn cancel(
        conn: &mut PgConnection,
        subscription_id: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE subscriptions SET status = 'canceled', canceled_at = COALESCE(canceled_at, $2)
             WHERE subscription_id = $1",
            subscription_id,
            now
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}
