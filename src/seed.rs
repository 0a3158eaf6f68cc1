//! Sample data for `db init --seed`: an active demo farm (starter plan) with a paid invoice, its
//! payment and five usage records, a demo farm on a professional trial, coupon `SEASON15` and
//! graduated API-call overage on the professional plan.
//!
//! Plain SQL against the schema, in one transaction, keyed on fixed tenant ids: a farm that is
//! already there is skipped, so running the seed again adds nothing. The data follows the same
//! rules as the service (invoice number from the yearly counter, totals equal to the sum of the
//! lines, usage counters matching the usage records), so the API shows it consistently. No
//! outbox events are written: demo rows are not news for other services.

use std::fmt;

use chrono::{Datelike, Days, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::money::{money_string, round_money};
use crate::billing::period::period_end;
use crate::billing::types::BillingCycle;

mod pricing;
pub use pricing::SEED_COUPON;

pub const ACTIVE_TENANT: &str = "demo-farm-active";
pub const TRIAL_TENANT: &str = "demo-farm-trial";
const ACTIVE_PLAN: &str = "starter";
const TRIAL_PLAN: &str = "professional";
const USAGE_METRIC: &str = "satellite_analyses_per_month";
const USAGE_RECORDS: i64 = 5;

/// What the seed did, one line per fact, printed by `db init --seed`.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub lines: Vec<String>,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

struct PlanFacts {
    name: String,
    name_ar: String,
    monthly_price_usd: Decimal,
    trial_days: i32,
}

pub async fn seed(pool: &PgPool, invoice_due_days: u32) -> anyhow::Result<SeedReport> {
    let today = Utc::now().date_naive();
    let mut tx = pool.begin().await?;
    // Two seeds at once: the second waits here and then finds the farms present.
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('billing-core:db-init-seed'))")
        .execute(&mut *tx)
        .await?;
    let mut report = SeedReport::default();
    if tenant_exists(&mut tx, ACTIVE_TENANT).await? {
        report
            .lines
            .push(format!("{ACTIVE_TENANT}: already present, skipped"));
    } else {
        seed_active(&mut tx, today, invoice_due_days, &mut report).await?;
    }
    if tenant_exists(&mut tx, TRIAL_TENANT).await? {
        report
            .lines
            .push(format!("{TRIAL_TENANT}: already present, skipped"));
    } else {
        seed_trial(&mut tx, today, &mut report).await?;
    }
    pricing::seed_pricing(&mut tx, &mut report).await?;
    tx.commit().await?;
    Ok(report)
}

async fn tenant_exists(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1) AS "exists!""#,
        tenant_id
    )
    .fetch_one(conn)
    .await
}

async fn plan(conn: &mut PgConnection, plan_id: &str) -> anyhow::Result<PlanFacts> {
    let row = sqlx::query_as!(
        PlanFacts,
        "SELECT name, name_ar, monthly_price_usd, trial_days FROM plans WHERE plan_id = $1",
        plan_id
    )
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| {
        anyhow::anyhow!(
            "plan {plan_id:?} is missing from the catalogue; were the migrations applied?"
        )
    })
}

async fn insert_tenant(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    name_ar: &str,
    n: u8,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, $2, $3, $4, $5)",
        id,
        name,
        name_ar,
        format!("{id}@example.com"),
        format!("+96777000000{n}")
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_subscription(
    conn: &mut PgConnection,
    tenant_id: &str,
    plan_id: &str,
    status: &str,
    anchor: NaiveDate,
    start: NaiveDate,
    end: NaiveDate,
    trial_end: Option<NaiveDate>,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle,
             currency, payment_method, anchor_day, start_date, end_date, next_billing_date, trial_end_date)
         VALUES ($1, $2, $3, $4::subscription_status, 'monthly', 'USD', $5::payment_method, $6, $7, $8, $8, $9)",
        id,
        tenant_id,
        plan_id,
        // Sent as text and cast by the statement, as before the macro.
        status as _,
        (if trial_end.is_some() { None } else { Some("cash") }) as _,
        anchor.day() as i16,
        start,
        end,
        trial_end
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// The active farm: its subscription started 15 days ago; the invoice for this period was issued
/// on its first day and paid in cash the next day; five satellite analyses were used since.
async fn seed_active(
    tx: &mut PgConnection,
    today: NaiveDate,
    due_days: u32,
    report: &mut SeedReport,
) -> anyhow::Result<()> {
    let plan = plan(tx, ACTIVE_PLAN).await?;
    insert_tenant(
        tx,
        ACTIVE_TENANT,
        "Demo Farm (active)",
        "مزرعة تجريبية (نشطة)",
        1,
    )
    .await?;
    let start = today - Days::new(15);
    let end = period_end(start, start.day(), BillingCycle::Monthly);
    let sub = insert_subscription(
        tx,
        ACTIVE_TENANT,
        ACTIVE_PLAN,
        "active",
        start,
        start,
        end,
        None,
    )
    .await?;
    report.lines.push(format!(
        "created tenant {ACTIVE_TENANT}: {} plan, monthly, active; subscription {sub}, period [{start}, {end})",
        plan.name
    ));

    // The same numbering as real issuance: the yearly counter row, incremented and locked.
    let year = start.year();
    let n = sqlx::query_scalar!(
        "INSERT INTO invoice_number_counters (year, last_value) VALUES ($1, 1)
         ON CONFLICT (year) DO UPDATE SET last_value = invoice_number_counters.last_value + 1,
             updated_at = now()
         RETURNING last_value",
        year
    )
    .fetch_one(&mut *tx)
    .await?;
    let number = format!("SAH-{year}-{n:04}");

    let rate = sqlx::query_scalar!(
        "SELECT rate FROM exchange_rates WHERE currency = 'USD' AND effective_date <= $1
         ORDER BY effective_date DESC LIMIT 1",
        start
    )
    .fetch_one(&mut *tx)
    .await?;
    let quantity = Decimal::ONE;
    let lines = [(
        quantity,
        plan.monthly_price_usd,
        round_money(quantity * plan.monthly_price_usd),
    )];
    let subtotal: Decimal = lines.iter().map(|(_, _, amount)| *amount).sum();
    let (tax_amount, discount) = (Decimal::ZERO, Decimal::ZERO);
    let total = subtotal + tax_amount - discount;
    let paid_date = (start + Days::new(1)).min(today);
    let invoice = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO invoices (invoice_id, invoice_number, tenant_id, subscription_id, kind, status,
             currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount,
             discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date, notes, notes_ar,
             plan_id)
         VALUES ($1, $2, $3, $4, 'subscription', 'paid', 'USD', $5, $6, $7, $8, 0, $9, $10, $11, $11, 0,
             $6, $12, $13, 'Sample invoice created by db init --seed', 'فاتورة تجريبية', $14)",
        invoice,
        number,
        ACTIVE_TENANT,
        sub,
        rate,
        start,
        end,
        subtotal,
        tax_amount,
        discount,
        total,
        start + Days::new(u64::from(due_days)),
        paid_date,
        ACTIVE_PLAN
    )
    .execute(&mut *tx)
    .await?;
    for (position, (qty, unit_price, amount)) in lines.iter().enumerate() {
        sqlx::query!(
            "INSERT INTO invoice_lines (line_id, invoice_id, tenant_id, position, kind, description,
                 description_ar, quantity, unit_price, amount)
             VALUES ($1, $2, $3, $4, 'plan', $5, $6, $7, $8, $9)",
            Uuid::new_v4(),
            invoice,
            ACTIVE_TENANT,
            position as i32,
            // The period's last day, inclusive (the stored end is exclusive).
            format!(
                "{} plan - monthly ({start} through {})",
                plan.name,
                end - Days::new(1)
            ),
            format!("خطة {} - شهري", plan.name_ar),
            qty,
            unit_price,
            amount
        )
        .execute(&mut *tx)
        .await?;
    }
    report.lines.push(format!(
        "  invoice {number} ({invoice}): paid, total {} USD, {} line(s)",
        money_string(total),
        lines.len()
    ));

    // A zero total (a plan repriced to 0) is paid without a payment row: payments are > 0.
    if total > Decimal::ZERO {
        let payment = Uuid::new_v4();
        let paid_at = paid_date.and_time(NaiveTime::MIN).and_utc() + chrono::Duration::hours(10);
        sqlx::query!(
            "INSERT INTO payments (payment_id, tenant_id, invoice_id, amount, currency, method, status,
                 created_by, confirmed_by, paid_at, processed_at, metadata, created_at)
             VALUES ($1, $2, $3, $4, 'USD', 'cash', 'succeeded', 'seed', 'seed', $5, $5,
                 '{\"source\": \"db init --seed\"}'::jsonb, $5)",
            payment,
            ACTIVE_TENANT,
            invoice,
            total,
            paid_at
        )
        .execute(&mut *tx)
        .await?;
        report.lines.push(format!(
            "  payment {payment}: cash, {} USD, succeeded",
            money_string(total)
        ));
    }

    // Each record moves the period counter (window = the period start), as ingestion does.
    let now = Utc::now();
    for i in 0..USAGE_RECORDS {
        sqlx::query!(
            "WITH claimed AS (
                 INSERT INTO usage_event_ids (tenant_id, event_id, record_id, recorded_at)
                 VALUES ($2, $5, $1, $6) RETURNING record_id)
             INSERT INTO usage_records (record_id, tenant_id, subscription_id, metric, action, quantity,
                 event_id, recorded_at, metadata)
             SELECT record_id, $2, $3, $4, 'increment', 1, $5, $6, '{\"source\": \"db init --seed\"}'::jsonb
             FROM claimed",
            Uuid::new_v4(),
            ACTIVE_TENANT,
            sub,
            USAGE_METRIC,
            format!("seed-{USAGE_METRIC}-{}", i + 1),
            now - chrono::Duration::hours(USAGE_RECORDS - i)
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            "INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES ($1, $2, $3, 1, 1)
             ON CONFLICT (tenant_id, metric, window_start) DO UPDATE
                SET used = usage_counters.used + 1,
                    peak = GREATEST(usage_counters.peak, usage_counters.used + 1),
                    updated_at = now()",
            ACTIVE_TENANT,
            USAGE_METRIC,
            start
        )
        .execute(&mut *tx)
        .await?;
    }
    report.lines.push(format!(
        "  usage: {USAGE_RECORDS} records of {USAGE_METRIC} (used {USAGE_RECORDS} this period)"
    ));
    Ok(())
}

/// The trial farm: the trial runs from today to its end, which is also the first billing date
/// and sets the anchor day (the same rule as sign-up).
async fn seed_trial(
    tx: &mut PgConnection,
    today: NaiveDate,
    report: &mut SeedReport,
) -> anyhow::Result<()> {
    let plan = plan(tx, TRIAL_PLAN).await?;
    insert_tenant(
        tx,
        TRIAL_TENANT,
        "Demo Farm (trial)",
        "مزرعة تجريبية (فترة تجربة)",
        2,
    )
    .await?;
    // A plan edited to have no trial still gets a short one: this farm exists to show a trial.
    let days = u64::try_from(plan.trial_days)
        .ok()
        .filter(|d| *d > 0)
        .unwrap_or(14);
    let trial_end = today + Days::new(days);
    let sub = insert_subscription(
        tx,
        TRIAL_TENANT,
        TRIAL_PLAN,
        "trial",
        trial_end,
        today,
        trial_end,
        Some(trial_end),
    )
    .await?;
    report.lines.push(format!(
        "created tenant {TRIAL_TENANT}: {} plan, monthly, trial until {trial_end}; subscription {sub}",
        plan.name
    ));
    Ok(())
}
