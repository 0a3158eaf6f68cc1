//! Renewals and trial ends: every live subscription whose period has ended gets exactly one
//! invoice for its next period (plan price + overage for the period just ended − credit), and
//! its period advances; several missed periods give one invoice each.
//!
//! Rows are claimed in batches with `FOR UPDATE SKIP LOCKED`, so two runs (two replicas, or a
//! scheduler and an operator's `bill --date`) share the work and never bill a period twice;
//! the unique (subscription, period_start) key backs that up.

mod cache;

use cache::RunCache;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::period::period_end;
use crate::billing::types::{BillingCycle, Currency, InvoiceKind, SubscriptionStatus};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::repository::invoices::{InvoiceInsert, NewLine};
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::Plan;
use crate::repository::renewal::{Claim, RenewalRepository};
use crate::repository::subscriptions::SubscriptionRow;
use crate::repository::tenants::TenantRow;
use crate::services::coupons;
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

/// Processes every due subscription as of `today`, `batch` rows per transaction.
///
/// A batch first runs optimistically in one transaction (one statement per invoice, one
/// set-based save of the advanced periods). If any subscription in it fails, the whole batch
/// rolls back and is redone carefully, a savepoint per subscription, so the failure is
/// rolled back alone — with any invoice number it took, keeping numbers gapless — reported,
/// and left for the next run.
pub async fn run_renewals(
    pool: &PgPool,
    config: &Config,
    today: DateTime<Utc>,
    batch: i64,
    mut progress: impl FnMut(&RenewalReport),
) -> AppResult<RenewalReport> {
    let mut report = RenewalReport::default();
    let mut cache = RunCache::default();
    let mut failed: Vec<Uuid> = Vec::new();
    // Walk the due subscriptions in key order: each claim starts after the last batch instead
    // of re-reading the index entries that earlier batches moved past.
    let mut after: Option<(NaiveDate, Uuid)> = None;
    loop {
        let mut tx = pool.begin().await?;
        let claim = Claim {
            as_of: today.date_naive(),
            batch,
            failed: &failed,
            only: None,
            after,
        };
        let subs = RenewalRepository::claim(&mut tx, claim).await?;
        let Some(last) = subs.last() else {
            break;
        };
        after = Some((last.next_billing_date, last.subscription_id));
        let ids: Vec<Uuid> = subs.iter().map(|s| s.subscription_id).collect();
        cache.load_batch(&mut tx, &subs).await?;
        let mut fast = report.clone();
        let advanced = fast_batch(&mut tx, config, &mut cache, subs, today, &mut fast).await;
        if let Some(advanced) = advanced {
            RenewalRepository::save_periods(&mut tx, &advanced).await?;
            tx.commit().await?;
            fast.subscriptions_processed += advanced.len() as u64;
            report = fast;
        } else {
            tx.rollback().await?;
            careful_batch(
                pool,
                config,
                &mut cache,
                &ids,
                today,
                &mut report,
                &mut failed,
            )
            .await?;
        }
        progress(&report);
    }
    Ok(report)
}

/// One batch, optimistically: every subscription advanced and every invoice written in one
/// statement. `None` when anything failed (a period found already invoiced included): the
/// caller rolls back and takes the careful path.
async fn fast_batch(
    tx: &mut PgConnection,
    config: &Config,
    cache: &mut RunCache,
    subs: Vec<SubscriptionRow>,
    today: DateTime<Utc>,
    report: &mut RenewalReport,
) -> Option<Vec<SubscriptionRow>> {
    let mut advanced = Vec::with_capacity(subs.len());
    let mut pending: Vec<InvoiceInsert> = Vec::new();
    for sub in subs {
        let s = advance(tx, config, cache, sub, today, report, Some(&mut pending)).await;
        advanced.push(s.ok()?);
    }
    invoicing::issue_many(tx, today.date_naive().year(), &pending)
        .await
        .unwrap_or(false)
        .then_some(advanced)
}

/// Redoes one batch with a savepoint per subscription.
async fn careful_batch(
    pool: &PgPool,
    config: &Config,
    cache: &mut RunCache,
    ids: &[Uuid],
    today: DateTime<Utc>,
    report: &mut RenewalReport,
    failed: &mut Vec<Uuid>,
) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    let claim = Claim {
        as_of: today.date_naive(),
        batch: ids.len() as i64,
        failed,
        only: Some(ids),
        after: None,
    };
    let subs = RenewalRepository::claim(&mut tx, claim).await?;
    cache.load_batch(&mut tx, &subs).await?;
    for sub in subs {
        let id = sub.subscription_id;
        let mut one = report.clone();
        let mut sp = sqlx::Connection::begin(&mut *tx).await?;
        let result = match advance(&mut sp, config, cache, sub, today, &mut one, None).await {
            Ok(s) => RenewalRepository::save_periods(&mut sp, std::slice::from_ref(&s))
                .await
                .map_err(AppError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                sp.commit().await?;
                *report = one;
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
    Ok(())
}

/// What every period of one subscription's catch-up shares.
struct Account {
    tenant: TenantRow,
    has_credit: bool,
    has_usage: bool,
    /// The subscription holds a coupon: each period looks up whether it covers it.
    has_coupon: bool,
    currency: Currency,
    /// Invoice currency per USD.
    rate: Decimal,
}

/// Advances one locked subscription through every period that ended on or before `today`.
async fn advance(
    conn: &mut PgConnection,
    config: &Config,
    cache: &mut RunCache,
    mut sub: SubscriptionRow,
    now: DateTime<Utc>,
    report: &mut RenewalReport,
    mut deferred: Option<&mut Vec<InvoiceInsert>>,
) -> AppResult<SubscriptionRow> {
    let today = now.date_naive();
    let tenant = cache
        .tenants
        .get(&sub.tenant_id)
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("subscription without tenant")))?;
    let currency = Currency::parse(&sub.currency)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown subscription currency")))?;
    let account = Account {
        has_credit: cache.with_credit.contains(&sub.tenant_id),
        has_usage: cache.with_usage.contains(&sub.tenant_id),
        has_coupon: cache.with_coupon.contains(&sub.subscription_id),
        rate: cache.rate(conn, currency, today).await?,
        tenant,
        currency,
    };
    while sub.next_billing_date <= today && sub.status != SubscriptionStatus::Canceled {
        let plan = cache.plan(conn, &sub.plan_id).await?;
        if sub.cancel_at_period_end {
            // A pending cancellation ends the subscription at its period (or trial) end.
            cancel_now(conn, &mut sub, now).await?;
            report.canceled_at_period_end += 1;
            break;
        }
        let lines = next_period(conn, &mut sub, &plan, &account, report).await?;
        if !(plan.price_usd(sub.billing_cycle).is_zero() && lines.is_empty()) {
            let period = Period {
                sub: &sub,
                plan: &plan,
                lines,
                today,
            };
            bill(
                conn,
                config,
                &account,
                period,
                deferred.as_deref_mut(),
                report,
            )
            .await?;
        }
    }
    Ok(sub)
}

/// Moves `sub` to its next period (a trial to its first paid one) and returns the overage
/// lines of the period that ended.
async fn next_period(
    conn: &mut PgConnection,
    sub: &mut SubscriptionRow,
    plan: &Plan,
    account: &Account,
    report: &mut RenewalReport,
) -> AppResult<Vec<NewLine>> {
    let mut lines = Vec::new();
    if sub.status == SubscriptionStatus::Trial {
        // The first paid period starts when the trial ends and keeps that day as anchor.
        let start = sub.trial_end_date.unwrap_or(sub.next_billing_date);
        sub.anchor_day = chrono::Datelike::day(&start) as i16;
        sub.start_date = start;
        sub.status = SubscriptionStatus::Active;
        let event = Event::SubscriptionTrialExpired {
            subscription_id: sub.subscription_id,
            plan_id: sub.plan_id.clone(),
        };
        OutboxRepository::record_event(conn, Some(&sub.tenant_id), &event).await?;
        report.trials_converted += 1;
    } else {
        if account.has_usage {
            lines.extend(overage::lines_for_period(conn, sub, plan, account.rate).await?);
        }
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
    Ok(lines)
}

/// The period being invoiced: the subscription already moved to it.
struct Period<'a> {
    sub: &'a SubscriptionRow,
    plan: &'a Plan,
    /// Overage of the period that ended; the plan line is added here.
    lines: Vec<NewLine>,
    today: NaiveDate,
}

/// Invoices one period: deferred into the batch's one statement when possible, else at once.
async fn bill(
    conn: &mut PgConnection,
    config: &Config,
    account: &Account,
    period: Period<'_>,
    deferred: Option<&mut Vec<InvoiceInsert>>,
    report: &mut RenewalReport,
) -> AppResult<()> {
    let Period {
        sub,
        plan,
        mut lines,
        today,
    } = period;
    lines.insert(0, plan_line(plan, sub, account.rate));
    if account.has_credit {
        let tenant_id = &account.tenant.tenant_id;
        credits::apply_to_lines(conn, tenant_id, account.currency, &mut lines).await?;
    }
    let covering = if account.has_coupon {
        coupons::apply::covering(conn, sub, Some(sub.start_date)).await?
    } else {
        None
    };
    let draft = InvoiceDraft {
        tenant: &account.tenant,
        subscription_id: Some(sub.subscription_id),
        kind: InvoiceKind::Subscription,
        currency: account.currency,
        exchange_rate: account.rate,
        period: Some((sub.start_date, sub.end_date)),
        lines,
        issue_date: today,
        due_days: config.invoice_due_days,
        notes: Some("Thank you for choosing SAHOOL"),
        notes_ar: Some("شكراً لاختياركم منصة سهول الزراعية"),
        plan_id: Some(&plan.row.plan_id),
        discount: covering.as_ref().map(|c| c.discount.clone()),
    };
    match deferred {
        // Stored with the whole batch in one statement at its end. A tenant with credit is
        // issued at once instead: the credit it used is recorded against the invoice before
        // a later period of the same catch-up reads the balance; a coupon is counted the same
        // way, before the next period asks whether it still covers.
        Some(batch) if !account.has_credit && covering.is_none() => {
            batch.push(invoicing::prepare(draft)?)
        }
        _ => match invoicing::issue(conn, draft).await? {
            Some(inv) => {
                if account.has_credit {
                    credits::record_applied(conn, &inv).await?;
                }
                if let Some(c) = &covering {
                    coupons::apply::record_use(conn, c, inv.period_start).await?;
                }
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
        },
    }
    report.invoices_issued += 1;
    Ok(())
}

async fn cancel_now(
    conn: &mut PgConnection,
    sub: &mut SubscriptionRow,
    now: DateTime<Utc>,
) -> AppResult<()> {
    sub.status = SubscriptionStatus::Canceled;
    RenewalRepository::cancel(&mut *conn, sub.subscription_id, now).await?;
    let event = Event::SubscriptionCanceled {
        subscription_id: sub.subscription_id,
        at_period_end: true,
    };
    OutboxRepository::record_event(conn, Some(&sub.tenant_id), &event).await?;
    Ok(())
}
