//! The set-based statements of dunning: each moves every row that qualifies at once and
//! returns what it changed, so the service writes one event per change.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::billing::types::SubscriptionStatus;

pub struct DunningRepository;

/// An invoice dunning just turned `overdue`.
#[derive(Debug, Clone, FromRow)]
pub struct OverdueInvoice {
    pub invoice_id: Uuid,
    pub invoice_number: String,
    pub tenant_id: String,
    pub amount_due: Decimal,
    pub currency: String,
    pub due_date: NaiveDate,
}

/// A subscription whose status dunning just changed.
#[derive(Debug, Clone, FromRow)]
pub struct ChangedSubscription {
    pub subscription_id: Uuid,
    pub tenant_id: String,
}

impl DunningRepository {
    /// One dunning run at a time (the scheduler and an operator's run may overlap): the
    /// set-based updates touch many rows in whatever order their plans pick, and two of them
    /// racing could deadlock. The second run waits, then finds nothing left to change.
    pub async fn lock_run(conn: &mut PgConnection) -> sqlx::Result<()> {
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('billing-core:dunning'))")
            .execute(conn)
            .await?;
        Ok(())
    }

    /// Unpaid pending invoices due before `today` become `overdue`.
    pub async fn mark_overdue(
        conn: &mut PgConnection,
        today: NaiveDate,
    ) -> sqlx::Result<Vec<OverdueInvoice>> {
        sqlx::query_as!(
            OverdueInvoice,
            "UPDATE invoices SET status = 'overdue'
             WHERE status = 'pending' AND due_date < $1 AND amount_due > 0
             RETURNING invoice_id, invoice_number, tenant_id, amount_due, currency, due_date",
            today
        )
        .fetch_all(conn)
        .await
    }

    /// Subscriptions in one of `from` whose tenant has an invoice unpaid `days` after its due
    /// date go to `to` (`past_due` or `suspended`).
    pub async fn escalate(
        conn: &mut PgConnection,
        today: NaiveDate,
        days: i32,
        from: &[SubscriptionStatus],
        to: SubscriptionStatus,
    ) -> sqlx::Result<Vec<ChangedSubscription>> {
        sqlx::query_as!(
            ChangedSubscription,
            "UPDATE subscriptions s SET status = $4
             WHERE s.status = ANY($3) AND EXISTS (
                 SELECT 1 FROM invoices i WHERE i.tenant_id = s.tenant_id
                   AND i.status IN ('pending', 'overdue') AND i.amount_due > 0
                   AND i.due_date + $2::int <= $1)
             RETURNING s.subscription_id, s.tenant_id",
            today,
            days,
            from as _,
            to as _
        )
        .fetch_all(conn)
        .await
    }

    /// Past-due and suspended subscriptions whose tenant has nothing overdue left go back to
    /// `active`; `tenant_id = None` sweeps every tenant.
    pub async fn reactivate(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
    ) -> sqlx::Result<Vec<ChangedSubscription>> {
        sqlx::query_as!(
            ChangedSubscription,
            "UPDATE subscriptions s SET status = 'active'
             WHERE s.status IN ('past_due', 'suspended') AND ($1::text IS NULL OR s.tenant_id = $1)
               AND NOT EXISTS (
                 SELECT 1 FROM invoices i WHERE i.tenant_id = s.tenant_id
                   AND i.status = 'overdue' AND i.amount_due > 0)
             RETURNING s.subscription_id, s.tenant_id",
            tenant_id
        )
        .fetch_all(conn)
        .await
    }
}
