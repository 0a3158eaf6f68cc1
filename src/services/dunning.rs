//! Dunning, set-based: unpaid invoices past due become `overdue`; tenants unpaid
//! `PAST_DUE_GRACE_DAYS` after a due date go `past_due`, and `SUSPEND_AFTER_DAYS` after it
//! `suspended`. Paying every overdue invoice brings the subscription back to `active`.
//! Each state change writes its outbox event in the same transaction.

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use crate::billing::types::SubscriptionStatus;
use crate::config::Config;
use crate::error::AppResult;
use crate::events::{Event, TenantEvent};
use crate::repository::dunning::{ChangedSubscription, DunningRepository};
use crate::repository::outbox::OutboxRepository;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DunningReport {
    pub invoices_overdue: u64,
    pub subscriptions_past_due: u64,
    pub subscriptions_suspended: u64,
    pub subscriptions_reactivated: u64,
}

pub async fn run_dunning(
    pool: &PgPool,
    config: &Config,
    today: NaiveDate,
) -> AppResult<DunningReport> {
    use SubscriptionStatus::{Active, PastDue, Suspended};
    let mut tx = pool.begin().await?;
    DunningRepository::lock_run(&mut tx).await?;
    let overdue = DunningRepository::mark_overdue(&mut tx, today).await?;
    let events: Vec<TenantEvent> = overdue
        .iter()
        .map(|i| {
            TenantEvent::new(
                &i.tenant_id,
                Event::InvoiceOverdue {
                    invoice_id: i.invoice_id,
                    invoice_number: i.invoice_number.clone(),
                    amount_due: i.amount_due,
                    currency: i.currency.clone(),
                    due_date: i.due_date,
                },
            )
        })
        .collect();
    OutboxRepository::record_events(&mut tx, &events).await?;

    // Suspension first, so a tenant that crossed both thresholds at once gets one change.
    let days = config.suspend_after_days as i32;
    let suspended =
        DunningRepository::escalate(&mut tx, today, days, &[Active, PastDue], Suspended).await?;
    record(&mut tx, &suspended, |subscription_id| {
        Event::SubscriptionSuspended { subscription_id }
    })
    .await?;
    let days = config.past_due_grace_days as i32;
    let past_due = DunningRepository::escalate(&mut tx, today, days, &[Active], PastDue).await?;
    record(&mut tx, &past_due, |subscription_id| {
        Event::SubscriptionPastDue { subscription_id }
    })
    .await?;

    let subscriptions_reactivated = reactivate(&mut tx, None).await?;
    tx.commit().await?;
    Ok(DunningReport {
        invoices_overdue: overdue.len() as u64,
        subscriptions_past_due: past_due.len() as u64,
        subscriptions_suspended: suspended.len() as u64,
        subscriptions_reactivated,
    })
}

/// One event per changed subscription, in one statement.
async fn record(
    conn: &mut PgConnection,
    changed: &[ChangedSubscription],
    event: impl Fn(uuid::Uuid) -> Event,
) -> AppResult<()> {
    let events: Vec<TenantEvent> = changed
        .iter()
        .map(|s| TenantEvent::new(&s.tenant_id, event(s.subscription_id)))
        .collect();
    OutboxRepository::record_events(conn, &events).await?;
    Ok(())
}

/// Returns past_due/suspended subscriptions to `active` once their tenant has no overdue
/// invoice left. `tenant_id = None` sweeps every tenant. Call it in the transaction that
/// settles a payment, after the invoice update.
pub async fn reactivate(conn: &mut PgConnection, tenant_id: Option<&str>) -> AppResult<u64> {
    let changed = DunningRepository::reactivate(conn, tenant_id).await?;
    record(conn, &changed, |subscription_id| {
        Event::SubscriptionReactivated { subscription_id }
    })
    .await?;
    Ok(changed.len() as u64)
}
