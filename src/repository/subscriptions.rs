//! Subscriptions. At most one live (trial, active, past_due, suspended) per tenant.

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

pub const SUBSCRIPTION_COLUMNS: &str = "subscription_id, tenant_id, plan_id, status, billing_cycle, \
    pending_billing_cycle, currency, payment_method, anchor_day, start_date, end_date, \
    next_billing_date, trial_end_date, cancel_at_period_end, canceled_at, created_at, updated_at";

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
    pub async fn create(conn: &mut PgConnection, s: &NewSubscription<'_>) -> sqlx::Result<SubscriptionRow> {
        sqlx::query_as(&format!(
            "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle,
                 currency, anchor_day, start_date, end_date, next_billing_date, trial_end_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING {SUBSCRIPTION_COLUMNS}"
        ))
        .bind(s.subscription_id)
        .bind(s.tenant_id)
        .bind(s.plan_id)
        .bind(s.status)
        .bind(s.billing_cycle)
        .bind(s.currency)
        .bind(s.anchor_day)
        .bind(s.start_date)
        .bind(s.end_date)
        .bind(s.next_billing_date)
        .bind(s.trial_end_date)
        .fetch_one(conn)
        .await
    }

    /// The tenant's live subscription, if any.
    pub async fn get_live(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions
             WHERE tenant_id = $1 AND status <> 'canceled'"
        ))
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    /// The live subscription, else the most recent one (so a canceled tenant still sees it).
    pub async fn get_by_tenant(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE tenant_id = $1
             ORDER BY (status <> 'canceled') DESC, created_at DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }

    /// Locks the tenant's live subscription (after the tenant row, per the lock order).
    pub async fn lock_live(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<SubscriptionRow>> {
        sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions
             WHERE tenant_id = $1 AND status <> 'canceled' FOR UPDATE"
        ))
        .bind(tenant_id)
        .fetch_optional(conn)
        .await
    }
}
