//! Dunning, set-based: unpaid invoices past due become `overdue`; tenants unpaid
//! `PAST_DUE_GRACE_DAYS` after a due date go `past_due`, and `SUSPEND_AFTER_DAYS` after it
//! `suspended`. Paying every overdue invoice brings the subscription back to `active`.
//! Each state change writes its outbox event in the same statement.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use crate::config::Config;
use crate::error::AppResult;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DunningReport {
    pub invoices_overdue: u64,
    pub subscriptions_past_due: u64,
    pub subscriptions_suspended: u64,
    pub subscriptions_reactivated: u64,
}

/// Shared SQL tail that turns changed rows (`changed`) into outbox events.
///
/// The event id is `gen_random_uuid()` in the select list of the query that yields one row per
/// change, so it is evaluated once per row; a CTE holding a volatile function is never inlined,
/// so the column and the payload read the same id. (An uncorrelated
/// `CROSS JOIN LATERAL (SELECT gen_random_uuid())` may be evaluated once for the whole
/// statement: every event then gets the same id and the insert fails on the primary key.)
fn with_events(update: &str, event_type: &str, payload: &str) -> String {
    format!(
        "WITH updated AS ({update}),
         changed AS (SELECT gen_random_uuid() AS event_id, updated.* FROM updated)
         INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload)
         SELECT changed.event_id, 'sahool.billing.{event_type}', '{event_type}', changed.tenant_id,
                jsonb_build_object('event_id', changed.event_id, 'type', '{event_type}',
                                   'occurred_at', now(), 'tenant_id', changed.tenant_id) || {payload}
         FROM changed"
    )
}

pub async fn run_dunning(
    pool: &PgPool,
    config: &Config,
    today: NaiveDate,
) -> AppResult<DunningReport> {
    let mut tx = pool.begin().await?;
    // One dunning run at a time (the scheduler and an operator's run may overlap): the set-based
    // updates below touch many rows in whatever order their plans pick, and two of them racing
    // could deadlock. The second run waits, then finds nothing left to change.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('billing-core:dunning'))")
        .execute(&mut *tx)
        .await?;
    let invoices_overdue = sqlx::query(&with_events(
        "UPDATE invoices SET status = 'overdue'
         WHERE status = 'pending' AND due_date < $1 AND amount_due > 0
         RETURNING invoice_id, invoice_number, tenant_id, amount_due, currency, due_date",
        "invoice_overdue",
        "jsonb_build_object('invoice_id', changed.invoice_id, 'invoice_number', changed.invoice_number,
                            'amount_due', to_char(changed.amount_due, 'FM999999999990.00'),
                            'currency', changed.currency, 'due_date', changed.due_date)",
    ))
    .bind(today)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    // Suspension first, so a tenant that crossed both thresholds at once gets one change.
    let subscriptions_suspended = sqlx::query(&with_events(
        "UPDATE subscriptions s SET status = 'suspended'
         WHERE s.status IN ('active', 'past_due') AND EXISTS (
             SELECT 1 FROM invoices i WHERE i.tenant_id = s.tenant_id
               AND i.status IN ('pending', 'overdue') AND i.amount_due > 0
               AND i.due_date + $2::int <= $1)
         RETURNING s.subscription_id, s.tenant_id",
        "subscription.suspended",
        "jsonb_build_object('subscription_id', changed.subscription_id)",
    ))
    .bind(today)
    .bind(config.suspend_after_days as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    let subscriptions_past_due = sqlx::query(&with_events(
        "UPDATE subscriptions s SET status = 'past_due'
         WHERE s.status = 'active' AND EXISTS (
             SELECT 1 FROM invoices i WHERE i.tenant_id = s.tenant_id
               AND i.status IN ('pending', 'overdue') AND i.amount_due > 0
               AND i.due_date + $2::int <= $1)
         RETURNING s.subscription_id, s.tenant_id",
        "subscription.past_due",
        "jsonb_build_object('subscription_id', changed.subscription_id)",
    ))
    .bind(today)
    .bind(config.past_due_grace_days as i32)
    .execute(&mut *tx)
    .await?
    .rows_affected();

    let subscriptions_reactivated = reactivate(&mut tx, None).await?;
    tx.commit().await?;
    Ok(DunningReport {
        invoices_overdue,
        subscriptions_past_due,
        subscriptions_suspended,
        subscriptions_reactivated,
    })
}

/// Returns past_due/suspended subscriptions to `active` once their tenant has no overdue
/// invoice left. `tenant_id = None` sweeps every tenant. Call it in the transaction that
/// settles a payment, after the invoice update.
pub async fn reactivate(conn: &mut PgConnection, tenant_id: Option<&str>) -> AppResult<u64> {
    Ok(sqlx::query(&with_events(
        "UPDATE subscriptions s SET status = 'active'
         WHERE s.status IN ('past_due', 'suspended') AND ($1::text IS NULL OR s.tenant_id = $1)
           AND NOT EXISTS (
             SELECT 1 FROM invoices i WHERE i.tenant_id = s.tenant_id
               AND i.status = 'overdue' AND i.amount_due > 0)
         RETURNING s.subscription_id, s.tenant_id",
        "subscription.reactivated",
        "jsonb_build_object('subscription_id', changed.subscription_id)",
    ))
    .bind(tenant_id)
    .execute(conn)
    .await?
    .rows_affected())
}
