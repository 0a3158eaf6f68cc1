//! Subscriptions. At most one live (trial, active, past_due, suspended) per tenant.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::{BillingCycle, PaymentMethod, SubscriptionStatus};

#[derive(Clone, Debug, FromRow)]
pub struct SubscriptionRow {
    pub subscription_id: Uuid,
    pub tenant_id: String,
    pub plan_id: String,
    pub status: SubscriptionStatus,
    pub billing_cycle: BillingCycle,
    pub pending_billing_cycle: Option<BillingCycle>,
    pub currency: String,
    pub payment_method: Option<PaymentMethod>,
    pub anchor_day: i16,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub next_billing_date: NaiveDate,
    pub trial_end_date: Option<NaiveDate>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewSubscription<'a> {
    pub subscription_id: Uuid,
    pub tenant_id: &'a str,
    pub plan_id: &'a str,
    pub status: SubscriptionStatus,
    pub billing_cycle: BillingCycle,
    pub currency: &'a str,
    pub anchor_day: i16,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub next_billing_date: NaiveDate,
    pub trial_end_date: Option<NaiveDate>,
}

pub struct SubscriptionRepository;

impl SubscriptionRepository {
    pub async fn create(
        conn: &mut PgConnection,
        s: &NewSubscription<'_>,
    ) -> sqlx::Result<SubscriptionRow> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle,
                 currency, anchor_day, start_date, end_date, next_billing_date, trial_end_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            s.subscription_id,
            s.tenant_id,
            s.plan_id,
            s.status as _,
            s.billing_cycle as _,
            s.currency,
            s.anchor_day,
            s.start_date,
            s.end_date,
            s.next_billing_date,
            s.trial_end_date
        )
        .fetch_one(conn)
        .await
    }

    /// The tenant's live subscription, if any.
    pub async fn get_live(
        conn: &mut PgConnection,
        tenant_id: &str,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions
             WHERE tenant_id = $1 AND status <> 'canceled'"#,
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }

    /// The live subscription, else the most recent one (so a canceled tenant still sees it).
    pub async fn get_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions WHERE tenant_id = $1
             ORDER BY (status <> 'canceled') DESC, created_at DESC LIMIT 1"#,
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }

    /// Locks the tenant's live subscription (after the tenant row, per the lock order).
    pub async fn lock_live(
        conn: &mut PgConnection,
        tenant_id: &str,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions
             WHERE tenant_id = $1 AND status <> 'canceled' FOR NO KEY UPDATE"#,
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }
}

/// Fields an update may change; `None` leaves the column alone, `Some(None)` clears a
/// nullable column.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionChanges {
    pub plan_id: Option<String>,
    pub billing_cycle: Option<BillingCycle>,
    pub pending_billing_cycle: Option<Option<BillingCycle>>,
    pub status: Option<SubscriptionStatus>,
    pub anchor_day: Option<i16>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub next_billing_date: Option<NaiveDate>,
    pub trial_end_date: Option<Option<NaiveDate>>,
    pub cancel_at_period_end: Option<bool>,
    pub canceled_at: Option<Option<DateTime<Utc>>>,
    pub payment_method: Option<Option<PaymentMethod>>,
}

impl SubscriptionRepository {
    /// One subscription of `tenant_id`; another tenant's id answers `None`.
    pub async fn get_by_id(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions
             WHERE tenant_id = $1 AND subscription_id = $2"#,
            tenant_id,
            subscription_id
        )
        .fetch_optional(conn)
        .await
    }

    /// Every subscription the tenant ever had, newest first.
    pub async fn list_by_tenant(
        conn: &mut PgConnection,
        tenant_id: &str,
    ) -> sqlx::Result<Vec<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions WHERE tenant_id = $1
             ORDER BY created_at DESC, subscription_id DESC"#,
            tenant_id
        )
        .fetch_all(conn)
        .await
    }

    /// Applies `changes` to the tenant's subscription; `None` when it does not exist.
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
        changes: &SubscriptionChanges,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        // A column is written only when its change is given: `$n IS NOT NULL` (or the
        // `set_*` flag of a nullable column) picks the new value, else the column keeps its own.
        let c = changes;
        sqlx::query_as!(
            SubscriptionRow,
            r#"UPDATE subscriptions SET updated_at = now(),
                 plan_id = COALESCE($3, plan_id),
                 billing_cycle = COALESCE($4, billing_cycle),
                 pending_billing_cycle = CASE WHEN $5 THEN $6 ELSE pending_billing_cycle END,
                 status = COALESCE($7, status),
                 anchor_day = COALESCE($8, anchor_day),
                 start_date = COALESCE($9, start_date),
                 end_date = COALESCE($10, end_date),
                 next_billing_date = COALESCE($11, next_billing_date),
                 trial_end_date = CASE WHEN $12 THEN $13 ELSE trial_end_date END,
                 cancel_at_period_end = COALESCE($14, cancel_at_period_end),
                 canceled_at = CASE WHEN $15 THEN $16 ELSE canceled_at END,
                 payment_method = CASE WHEN $17 THEN $18 ELSE payment_method END
             WHERE tenant_id = $1 AND subscription_id = $2
             RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            tenant_id,
            subscription_id,
            c.plan_id.as_deref(),
            c.billing_cycle as _,
            c.pending_billing_cycle.is_some(),
            c.pending_billing_cycle.flatten() as _,
            c.status as _,
            c.anchor_day,
            c.start_date,
            c.end_date,
            c.next_billing_date,
            c.trial_end_date.is_some(),
            c.trial_end_date.flatten(),
            c.cancel_at_period_end,
            c.canceled_at.is_some(),
            c.canceled_at.flatten(),
            c.payment_method.is_some(),
            c.payment_method.flatten() as _
        )
        .fetch_optional(conn)
        .await
    }

    /// Cancels a live subscription. `immediate` ends it now (status `canceled`, `canceled_at`
    /// = `now`); otherwise it only sets `cancel_at_period_end`, and the renewal job cancels it
    /// when the period ends (setting `canceled_at` then). `None` when there is no such live
    /// subscription.
    pub async fn cancel(
        conn: &mut PgConnection,
        tenant_id: &str,
        subscription_id: Uuid,
        immediate: bool,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"UPDATE subscriptions SET
                 status = CASE WHEN $3 THEN 'canceled'::subscription_status ELSE status END,
                 canceled_at = CASE WHEN $3 THEN $4 ELSE canceled_at END,
                 cancel_at_period_end = NOT $3
             WHERE tenant_id = $1 AND subscription_id = $2 AND status <> 'canceled'
             RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            tenant_id,
            subscription_id,
            immediate,
            now
        )
        .fetch_optional(conn)
        .await
    }

    /// Stores a plan change, the cycle that starts at the next renewal and the payment method.
    pub async fn save_change(
        conn: &mut PgConnection,
        subscription_id: Uuid,
        plan_id: &str,
        pending_billing_cycle: Option<BillingCycle>,
        payment_method: Option<PaymentMethod>,
    ) -> sqlx::Result<SubscriptionRow> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"UPDATE subscriptions SET plan_id = $2, pending_billing_cycle = $3, payment_method = $4
             WHERE subscription_id = $1 RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            subscription_id,
            plan_id,
            pending_billing_cycle as _,
            payment_method as _
        )
        .fetch_one(conn)
        .await
    }

    /// Ends a subscription now. The period is [start_date, end_date): ending it `today` leaves
    /// today out; one canceled on its first day keeps an empty period (end = start).
    pub async fn cancel_now(
        conn: &mut PgConnection,
        subscription_id: Uuid,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> sqlx::Result<SubscriptionRow> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"UPDATE subscriptions SET status = 'canceled', canceled_at = $2, cancel_at_period_end = false,
                 end_date = GREATEST($3, start_date), next_billing_date = GREATEST($3, start_date)
             WHERE subscription_id = $1 RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            subscription_id,
            now,
            today
        )
        .fetch_one(conn)
        .await
    }

    /// Sets or clears the pending cancellation at the period end.
    pub async fn set_cancel_at_period_end(
        conn: &mut PgConnection,
        subscription_id: Uuid,
        on: bool,
    ) -> sqlx::Result<SubscriptionRow> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"UPDATE subscriptions SET cancel_at_period_end = $2 WHERE subscription_id = $1
             RETURNING subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at"#,
            subscription_id,
            on
        )
        .fetch_one(conn)
        .await
    }

    /// Live subscriptions whose current period (or trial) has ended by `as_of`, oldest due
    /// first. Read only: the renewal job locks each one (tenant first) before acting on it.
    pub async fn get_due_for_billing(
        conn: &mut PgConnection,
        as_of: NaiveDate,
        limit: i64,
    ) -> sqlx::Result<Vec<SubscriptionRow>> {
        sqlx::query_as!(
            SubscriptionRow,
            r#"SELECT subscription_id, tenant_id, plan_id, status AS "status: _", billing_cycle AS "billing_cycle: _", pending_billing_cycle AS "pending_billing_cycle: _", currency, payment_method AS "payment_method: _", anchor_day, start_date, end_date, next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at FROM subscriptions
             WHERE status IN ('trial', 'active', 'past_due', 'suspended') AND next_billing_date <= $1
             ORDER BY next_billing_date, subscription_id LIMIT $2"#,
            as_of,
            limit
        )
        .fetch_all(conn)
        .await
    }

    /// Number of subscriptions per status label (statuses with none are absent).
    pub async fn count_by_status(conn: &mut PgConnection) -> sqlx::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query!(
            r#"SELECT status AS "status: SubscriptionStatus", count(*) AS "n!"
             FROM subscriptions GROUP BY status"#
        )
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.status.as_str().to_string(), r.n))
            .collect())
    }

    /// Number of subscriptions per plan; with `live_only`, canceled ones are left out.
    pub async fn count_by_plan(
        conn: &mut PgConnection,
        live_only: bool,
    ) -> sqlx::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query!(
            r#"SELECT plan_id, count(*) AS "n!" FROM subscriptions
             WHERE $1 = false OR status <> 'canceled' GROUP BY plan_id"#,
            live_only
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.plan_id, r.n)).collect())
    }
}
