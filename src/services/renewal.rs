//! Renewals and trial ends: every live subscription whose period has ended gets exactly one
//! invoice for its next period (plan price + overage for the period just ended − credit), and
//! its period advances; several missed periods give one invoice each.
//!
//! Rows are claimed in batches with `FOR UPDATE SKIP LOCKED`, so two runs (two replicas, or a
//! scheduler and an operator's `bill --date`) share the work and never bill a period twice;
//! the unique (subscription, period_start) key backs that up.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::billing::period::period_end;
use crate::billing::types::{BillingCycle, Currency, InvoiceKind, SubscriptionStatus};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::repository::invoices::NewLine;
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::{Plan, PlanRepository};
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::{SubscriptionRow, SUBSCRIPTION_COLUMNS};
use crate::repository::tenants::TenantRepository;
use crate::services::credits;
use crate::services::invoicing::{self, plan_line, InvoiceDraft};
use crate::services::overage;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RenewalReport {
    pub subscriptions_processed: u64,
    pub periods_renewed: u64,
    pub invoices_issued: u64,
    pub trials_converted: u64,
    pub canceled_at_period_end: u64,
    /// Subscriptions whose renewal failed (logged); their changes were rolled back and the
    /// next run retries them. The rest of the run is unaffected.
    pub failed: u64,
}

/// Per-run caches: plans and exchange rates do not change within a run.
#[derive(Default)]
struct RunCache {
    plans: HashMap<String, Plan>,
    rates: HashMap<Currency, Decimal>,
}

impl RunCache {
    async fn plan(&mut self, conn: &mut PgConnection, plan_id: &str) -> AppResult<Plan> {
        if let Some(p) = self.plans.get(plan_id) {
            return Ok(p.clone());
        }
        let p = PlanRepository::get(conn, plan_id).await?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("subscription refers to a missing plan"))
        })?;
        self.plans.insert(plan_id.to_string(), p.clone());
        Ok(p)
    }

    async fn rate(
        &mut self,
        conn: &mut PgConnection,
        currency: Currency,
        on: NaiveDate,
    ) -> AppResult<Decimal> {
        if let Some(r) = self.rates.get(&currency) {
            return Ok(*r);
        }
        let r = RateRepository::rate_on(conn, currency, on).await?;
        self.rates.insert(currency, r);
        Ok(r)
    }
}

/// Processes every due subscription as of `today`, `batch` rows per transaction.
pub async fn run_renewals(
    pool: &PgPool,
    config: &Config,
    today: DateTime<Utc>,
    batch: i64,
    mut progress: impl FnMut(&RenewalReport),
) -> AppResult<RenewalReport> {
    let mut report = RenewalReport::default();
    let mut cache = RunCache::default();
    let as_of = today.date_naive();
    let mut failed: Vec<uuid::Uuid> = Vec::new();
    loop {
        let mut tx = pool.begin().await?;
        let subs: Vec<SubscriptionRow> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions
             WHERE status IN ('trial', 'active', 'past_due') AND next_billing_date <= $1
               AND subscription_id <> ALL($3)
             ORDER BY next_billing_date, subscription_id
             LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED"
        ))
        .bind(as_of)
        .bind(batch)
        .bind(&failed)
        .fetch_all(&mut *tx)
        .await?;
        if subs.is_empty() {
            break;
        }
        for sub in subs {
            // A savepoint per subscription: one bad subscription (say an amount that does not
            // fit) is rolled back alone — including any invoice number it took, so numbers
            // stay gapless — and the batch goes on.
            let id = sub.subscription_id;
            let mut one = report.clone();
            let mut sp = sqlx::Connection::begin(&mut *tx).await?;
            match advance(&mut sp, config, &mut cache, sub, today, &mut one).await {
                Ok(()) => {
                    sp.commit().await?;
                    report = one;
                    report.subscriptions_processed += 1;
                }
                Err(e) => {
                    sp.rollback().await?;
                    tracing::error!(subscription.id = %id, error = %e, "renewal failed; rolled back");
                    report.failed += 1;
                    failed.push(id);
                }
            }
        }
        tx.commit().await?;
        progress(&report);
    }
    Ok(report)
}

/// Advances one locked subscription through every period that ended on or before `today`.
async fn advance(
    conn: &mut PgConnection,
    config: &Config,
    cache: &mut RunCache,
    mut sub: SubscriptionRow,
    now: DateTime<Utc>,
    report: &mut RenewalReport,
) -> AppResult<()> {
    let today = now.date_naive();
    let tenant = TenantRepository::get(conn, &sub.tenant_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("subscription without tenant")))?;
    let currency = Currency::parse(&sub.currency)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown subscription currency")))?;
    let rate = cache.rate(conn, currency, today).await?;
    while sub.next_billing_date <= today && sub.status != SubscriptionStatus::Canceled {
        let plan = cache.plan(conn, &sub.plan_id).await?;
        let mut lines: Vec<NewLine> = Vec::new();
        if sub.cancel_at_period_end {
            // A pending cancellation ends the subscription at its period (or trial) end.
            cancel_now(conn, &mut sub, now).await?;
            report.canceled_at_period_end += 1;
            break;
        }
        if sub.status == SubscriptionStatus::Trial {
            // The first paid period starts when the trial ends and keeps that day as anchor.
            let start = sub.trial_end_date.unwrap_or(sub.next_billing_date);
            sub.anchor_day = chrono::Datelike::day(&start) as i16;
            sub.start_date = start;
            sub.status = SubscriptionStatus::Active;
            OutboxRepository::record(
                conn,
                "subscription.trial_expired",
                Some(&sub.tenant_id),
                json!({"subscription_id": sub.subscription_id, "plan_id": sub.plan_id}),
            )
            .await?;
            report.trials_converted += 1;
        } else {
            lines.extend(overage::lines_for_period(conn, &sub, &plan, rate).await?);
            sub.start_date = sub.end_date;
        }
        let cycle: BillingCycle = sub
            .pending_billing_cycle
            .take()
            .unwrap_or(sub.billing_cycle);
        sub.billing_cycle = cycle;
        sub.end_date = period_end(sub.start_date, sub.anchor_day as u32, cycle);
        sub.next_billing_date = sub.end_date;
        report.periods_renewed += 1;

        if !(plan.price_usd(cycle).is_zero() && lines.is_empty()) {
            lines.insert(0, plan_line(&plan, &sub, rate));
            credits::apply_to_lines(conn, &tenant.tenant_id, currency, &mut lines).await?;
            let issued = invoicing::issue(
                conn,
                InvoiceDraft {
                    tenant: &tenant,
                    subscription_id: Some(sub.subscription_id),
                    kind: InvoiceKind::Subscription,
                    currency,
                    exchange_rate: rate,
                    period: Some((sub.start_date, sub.end_date)),
                    lines,
                    issue_date: today,
                    due_days: config.invoice_due_days,
                    notes: Some("Thank you for choosing SAHOOL"),
                    notes_ar: Some("شكراً لاختياركم منصة سهول الزراعية"),
                },
            )
            .await?;
            match issued {
                Some(inv) => {
                    credits::record_applied(conn, &inv).await?;
                    report.invoices_issued += 1;
                }
                // Someone invoiced this period already: roll back (the caller's savepoint), so
                // the invoice number taken for it is returned.
                None => {
                    return Err(AppError::conflict(
                        "period_already_invoiced",
                        "The period already has its invoice",
                        "الفترة مفوترة مسبقاً",
                    ))
                }
            }
        }
        save_period(conn, &sub).await?;
    }
    Ok(())
}

async fn save_period(conn: &mut PgConnection, s: &SubscriptionRow) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE subscriptions SET status = $2, billing_cycle = $3, pending_billing_cycle = $4,
             anchor_day = $5, start_date = $6, end_date = $7, next_billing_date = $8
         WHERE subscription_id = $1",
    )
    .bind(s.subscription_id)
    .bind(s.status)
    .bind(s.billing_cycle)
    .bind(s.pending_billing_cycle)
    .bind(s.anchor_day)
    .bind(s.start_date)
    .bind(s.end_date)
    .bind(s.next_billing_date)
    .execute(conn)
    .await?;
    Ok(())
}

async fn cancel_now(
    conn: &mut PgConnection,
    sub: &mut SubscriptionRow,
    now: DateTime<Utc>,
) -> AppResult<()> {
    sub.status = SubscriptionStatus::Canceled;
    sqlx::query(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = COALESCE(canceled_at, $2)
         WHERE subscription_id = $1",
    )
    .bind(sub.subscription_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    OutboxRepository::record(
        conn,
        "subscription.canceled",
        Some(&sub.tenant_id),
        json!({"subscription_id": sub.subscription_id, "at_period_end": true}),
    )
    .await?;
    Ok(())
}
