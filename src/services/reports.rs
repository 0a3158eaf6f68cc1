//! Platform reports for super admins: revenue over a date range and the subscription book.
//!
//! Rounding: every figure is an exact sum first (amounts in their currency, or each amount divided
//! by its invoice's stored exchange rate for USD figures) and is rounded once, at the end, by
//! `round_money`. Figures are gathered by a few set-based queries grouped by the dimensions the
//! report shows; the folding into the JSON shape happens here.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Duration, Months, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use crate::billing::money::{money_string, round_money};
use crate::billing::types::{BillingCycle, Currency, PaymentMethod, SubscriptionStatus};
use crate::error::{AppError, AppResult};
use crate::repository::rates::RateRepository;
use crate::services::rates::parse_date;

/// The four revenue figures, exact until they are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub invoiced: Decimal,
    pub collected: Decimal,
    pub refunded: Decimal,
    pub outstanding: Decimal,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.invoiced += o.invoiced;
        self.collected += o.collected;
        self.refunded += o.refunded;
        self.outstanding += o.outstanding;
    }

    /// In USD at `rate` units per USD. Not rounded: the caller rounds the final sum once.
    fn to_usd(self, rate: Decimal) -> AppResult<Figures> {
        let div = |v: Decimal| {
            v.checked_div(rate).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("exchange rate {rate} cannot convert"))
            })
        };
        Ok(Figures {
            invoiced: div(self.invoiced)?,
            collected: div(self.collected)?,
            refunded: div(self.refunded)?,
            outstanding: div(self.outstanding)?,
        })
    }

    fn json(&self) -> Value {
        let m = |v: Decimal| money_string(round_money(v));
        json!({
            "invoiced": m(self.invoiced),
            "collected": m(self.collected),
            "refunded": m(self.refunded),
            "outstanding": m(self.outstanding),
        })
    }
}

/// `start_date`/`end_date` (inclusive) from the query; each defaults to the bounds of the
/// current calendar month. A bad date or `start > end` is a 422 naming the field.
pub fn report_range(
    start: Option<&str>,
    end: Option<&str>,
    today: NaiveDate,
) -> AppResult<(NaiveDate, NaiveDate)> {
    let month_start = today.with_day(1).unwrap_or(today);
    let month_end = month_start
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(today);
    let parse = |field: &str, v: Option<&str>, default: NaiveDate| match v.filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(s) => {
            parse_date(s).ok_or_else(|| AppError::field(field, "must be a date as YYYY-MM-DD"))
        }
    };
    let start = parse("start_date", start, month_start)?;
    let end = parse("end_date", end, month_end)?;
    if start > end {
        return Err(AppError::field(
            "end_date",
            "must be on or after start_date",
        ));
    }
    Ok((start, end))
}

/// One group of the revenue query: amounts in `currency`, converted at `rate`.
#[derive(sqlx::FromRow)]
struct RevenueGroup {
    currency: String,
    rate: Decimal,
    plan_id: String,
    month: String,
    method: Option<String>,
    invoiced: Decimal,
    collected: Decimal,
    refunded: Decimal,
    outstanding: Decimal,
}

/// Invoices count by issue date; payments by `paid_at` and refunds by `created_at`, both in UTC.
/// Payments and refunds are attributed to their invoice's currency, rate and plan (the plan the
/// invoice was issued for, stored on it: a later plan change does not move it). Drafts are
/// not issued and voided (`canceled`) invoices are not revenue, so neither counts as invoiced.
/// Invoices without a plan are reported under the plan `none`.
const REVENUE_SQL: &str = "
SELECT i.currency, i.exchange_rate AS rate, COALESCE(i.plan_id, 'none') AS plan_id,
       to_char(i.issue_date, 'YYYY-MM') AS month, NULL::text AS method,
       COALESCE(sum(i.total) FILTER (WHERE i.status NOT IN ('draft', 'canceled')), 0) AS invoiced,
       0::numeric AS collected, 0::numeric AS refunded,
       COALESCE(sum(i.amount_due) FILTER (WHERE i.status IN ('pending', 'overdue')), 0) AS outstanding
  FROM invoices i
 WHERE i.issue_date BETWEEN $1 AND $2
 GROUP BY 1, 2, 3, 4
UNION ALL
SELECT i.currency, i.exchange_rate, COALESCE(i.plan_id, 'none'),
       to_char(p.paid_at AT TIME ZONE 'UTC', 'YYYY-MM'), p.method::text,
       0, sum(p.amount), 0, 0
  FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id
 WHERE p.status IN ('succeeded', 'refunded') AND p.paid_at >= $3 AND p.paid_at < $4
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT i.currency, i.exchange_rate, COALESCE(i.plan_id, 'none'),
       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM'), NULL::text,
       0, 0, sum(r.amount), 0
  FROM refunds r JOIN invoices i ON i.invoice_id = r.invoice_id
 WHERE r.status = 'succeeded' AND r.created_at >= $3 AND r.created_at < $4
 GROUP BY 1, 2, 3, 4";

fn start_of_day(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Every `YYYY-MM` from `start`'s month to `end`'s month.
fn months_between(start: NaiveDate, end: NaiveDate) -> Vec<String> {
    let mut out = Vec::new();
    let mut m = start.with_day(1).unwrap_or(start);
    while m <= end {
        out.push(m.format("%Y-%m").to_string());
        match m.checked_add_months(Months::new(1)) {
            Some(next) => m = next,
            None => break,
        }
    }
    out
}

/// GET /reports/revenue. USD and YER always appear in `by_currency`, other currencies when they
/// had activity; every payment method appears in `by_method`; every month of the range in
/// `by_month`; plans with activity in `by_plan`.
pub async fn revenue(pool: &PgPool, start: NaiveDate, end: NaiveDate) -> AppResult<Value> {
    let after_end = end.checked_add_days(Days::new(1)).unwrap_or(end);
    let groups: Vec<RevenueGroup> = sqlx::query_as(REVENUE_SQL)
        .bind(start)
        .bind(end)
        .bind(start_of_day(start))
        .bind(start_of_day(after_end))
        .fetch_all(pool)
        .await?;

    let mut by_currency: BTreeMap<String, Figures> = BTreeMap::new();
    for c in [Currency::Usd, Currency::Yer] {
        by_currency.insert(c.code().to_string(), Figures::default());
    }
    let mut total_usd = Figures::default();
    let mut by_plan: BTreeMap<String, Figures> = BTreeMap::new();
    let mut by_month: BTreeMap<String, Figures> = months_between(start, end)
        .into_iter()
        .map(|m| (m, Figures::default()))
        .collect();
    let mut by_method: BTreeMap<String, Decimal> = PaymentMethod::ALL
        .iter()
        .map(|m| (m.as_str().to_string(), Decimal::ZERO))
        .collect();

    for g in &groups {
        let native = Figures {
            invoiced: g.invoiced,
            collected: g.collected,
            refunded: g.refunded,
            outstanding: g.outstanding,
        };
        let usd = native.to_usd(g.rate)?;
        by_currency
            .entry(g.currency.clone())
            .or_default()
            .add(&native);
        total_usd.add(&usd);
        by_plan.entry(g.plan_id.clone()).or_default().add(&usd);
        by_month.entry(g.month.clone()).or_default().add(&usd);
        if let Some(method) = &g.method {
            *by_method.entry(method.clone()).or_default() += usd.collected;
        }
    }

    let figures_map = |m: &BTreeMap<String, Figures>| -> Map<String, Value> {
        m.iter().map(|(k, f)| (k.clone(), f.json())).collect()
    };
    let months: Vec<Value> = by_month
        .iter()
        .map(|(month, f)| {
            let mut v = f.json();
            v["month"] = Value::from(month.clone());
            v
        })
        .collect();
    let methods: Map<String, Value> = by_method
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(money_string(round_money(*v)))))
        .collect();
    Ok(json!({
        "start_date": start,
        "end_date": end,
        "by_currency": figures_map(&by_currency),
        "total_usd": total_usd.json(),
        "by_plan": figures_map(&by_plan),
        "by_method": methods,
        "by_month": months,
    }))
}

/// One group of the subscription book.
#[derive(sqlx::FromRow)]
struct BookGroup {
    status: SubscriptionStatus,
    plan_id: String,
    billing_cycle: BillingCycle,
    count: i64,
    /// The plan's USD price for this cycle, summed over the group.
    cycle_price_usd: Decimal,
    created_in_window: i64,
    canceled_in_window: i64,
}

const BOOK_SQL: &str = "
SELECT s.status, s.plan_id, s.billing_cycle, count(*) AS count,
       COALESCE(sum(CASE s.billing_cycle WHEN 'monthly' THEN p.monthly_price_usd
                                         WHEN 'quarterly' THEN p.quarterly_price_usd
                                         ELSE p.yearly_price_usd END), 0) AS cycle_price_usd,
       count(*) FILTER (WHERE s.created_at > $1 AND s.created_at <= $2) AS created_in_window,
       count(*) FILTER (WHERE s.status = 'canceled' AND s.canceled_at > $1 AND s.canceled_at <= $2)
           AS canceled_in_window
  FROM subscriptions s JOIN plans p ON p.plan_id = s.plan_id
 GROUP BY 1, 2, 3";

/// Trial conversion over the window. A trial "ended in the window" when either
/// - the renewal job recorded `subscription.trial_expired` for it in the window (it then became
///   active); it counts as converted unless the subscription is canceled now, or
/// - it was canceled in the window before its trial end date (never converted).
///
/// Conversion = converted / ended. The event is the only record of a trial ending, so a trial
/// converted and canceled within the window counts as not converted.
const TRIALS_SQL: &str = "
WITH expired AS (
    SELECT DISTINCT (payload->>'subscription_id')::uuid AS id FROM outbox_events
     WHERE event_type = 'subscription.trial_expired' AND occurred_at > $1 AND occurred_at <= $2
       AND payload->>'subscription_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
), expired_subs AS (
    SELECT s.status FROM expired e JOIN subscriptions s ON s.subscription_id = e.id
), canceled_in_trial AS (
    SELECT 1 FROM subscriptions s
     WHERE s.status = 'canceled' AND s.trial_end_date IS NOT NULL
       AND s.canceled_at > $1 AND s.canceled_at <= $2
       AND (s.canceled_at AT TIME ZONE 'UTC')::date < s.trial_end_date
       AND NOT EXISTS (SELECT 1 FROM expired e WHERE e.id = s.subscription_id)
)
SELECT (SELECT count(*) FROM expired_subs) + (SELECT count(*) FROM canceled_in_trial) AS ended,
       (SELECT count(*) FROM expired_subs WHERE status <> 'canceled') AS converted,
       (SELECT count(*) FROM outbox_events
         WHERE event_type = 'subscription.reactivated' AND occurred_at > $1 AND occurred_at <= $2)
           AS reactivated";

/// `n / d` with 4 decimals, or `"0.0000"` when there is nothing to divide by.
fn ratio(n: i64, d: i64) -> String {
    let mut r = if d <= 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(n) / Decimal::from(d))
            .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
    };
    r.rescale(4);
    r.to_string()
}

/// Monthly recurring revenue from the summed cycle prices, normalized per month with a single
/// division (quarterly / 3, yearly / 12). Exact: the caller rounds once.
pub fn mrr_exact(monthly: Decimal, quarterly: Decimal, yearly: Decimal) -> Decimal {
    (monthly * Decimal::from(12) + quarterly * Decimal::from(4) + yearly) / Decimal::from(12)
}

/// GET /reports/subscriptions as of `now`; the 30-day window is `(now - 30 days, now]`.
pub async fn subscriptions(pool: &PgPool, now: DateTime<Utc>) -> AppResult<Value> {
    let since = now - Duration::days(30);
    let mut conn = pool.acquire().await?;
    let groups: Vec<BookGroup> = sqlx::query_as(BOOK_SQL)
        .bind(since)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    let total_tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut *conn)
        .await?;
    let (ended, converted, reactivated): (i64, i64, i64) = sqlx::query_as(TRIALS_SQL)
        .bind(since)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    let yer_rate = RateRepository::rate_on(&mut conn, Currency::Yer, now.date_naive()).await?;

    let mut by_status: BTreeMap<&'static str, i64> = SubscriptionStatus::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    let mut by_plan: BTreeMap<String, i64> = BTreeMap::new();
    let (mut total, mut live, mut new, mut churned) = (0i64, 0i64, 0i64, 0i64);
    let (mut monthly, mut quarterly, mut yearly) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    for g in &groups {
        total += g.count;
        new += g.created_in_window;
        churned += g.canceled_in_window;
        *by_status.entry(g.status.as_str()).or_default() += g.count;
        if g.status != SubscriptionStatus::Canceled {
            live += g.count;
            *by_plan.entry(g.plan_id.clone()).or_default() += g.count;
        }
        // Paying subscriptions only: trials have not paid yet and suspended ones are not paying.
        if matches!(
            g.status,
            SubscriptionStatus::Active | SubscriptionStatus::PastDue
        ) {
            match g.billing_cycle {
                BillingCycle::Monthly => monthly += g.cycle_price_usd,
                BillingCycle::Quarterly => quarterly += g.cycle_price_usd,
                BillingCycle::Yearly => yearly += g.cycle_price_usd,
            }
        }
    }
    let mrr_exact = mrr_exact(monthly, quarterly, yearly);
    let mrr_usd = round_money(mrr_exact);
    // The YER figure converts the exact USD value, so it too is rounded only once.
    let mrr_yer = round_money(mrr_exact * yer_rate);
    // Live at the start of the window, approximately: those live now, plus the ones that left
    // during it, minus the ones that arrived during it.
    let live_at_start = live + churned - new;
    Ok(json!({
        "total_subscriptions": total,
        "total_tenants": total_tenants,
        "by_status": by_status,
        "by_plan": by_plan,
        "mrr_usd": money_string(mrr_usd),
        "arr_usd": money_string(mrr_usd * Decimal::from(12)),
        "mrr_yer": money_string(mrr_yer),
        "arr_yer": money_string(mrr_yer * Decimal::from(12)),
        "yer_exchange_rate": crate::services::rates::rate_text(yer_rate),
        "new_30d": new,
        "churned_30d": churned,
        "reactivated_30d": reactivated,
        "churn_rate_30d": ratio(churned, live_at_start),
        "trial_conversion_rate_30d": ratio(converted, ended),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_default_range_is_the_current_calendar_month() {
        assert_eq!(
            report_range(None, None, d("2024-02-10")).unwrap(),
            (d("2024-02-01"), d("2024-02-29"))
        );
        assert_eq!(
            report_range(Some("2024-01-01"), None, d("2024-02-10"))
                .unwrap()
                .0,
            d("2024-01-01")
        );
        assert!(report_range(Some("2024-03-01"), Some("2024-02-01"), d("2024-02-10")).is_err());
        assert!(report_range(Some("2024-13-01"), None, d("2024-02-10")).is_err());
    }

    #[test]
    fn mrr_normalizes_cycles_and_rounds_once() {
        // 29 + 79/3 + 290/12 = 29 + 26.333.. + 24.1666.. = 79.50 exactly.
        let mrr = |m: i64, q: i64, y: i64| {
            money_string(round_money(mrr_exact(m.into(), q.into(), y.into())))
        };
        assert_eq!(mrr(29, 79, 290), "79.50");
        // Two quarterly 79s: 158 / 3 = 52.666.. → 52.67 (rounding each to 26.33 would give 52.66).
        assert_eq!(mrr(0, 158, 0), "52.67");
    }

    #[test]
    fn ratios_have_four_decimals() {
        assert_eq!(ratio(1, 3), "0.3333");
        assert_eq!(ratio(2, 3), "0.6667");
        assert_eq!(ratio(1, 0), "0.0000");
        assert_eq!(ratio(0, 5), "0.0000");
    }

    #[test]
    fn months_cover_the_range() {
        assert_eq!(
            months_between(d("2025-11-15"), d("2026-01-02")),
            ["2025-11", "2025-12", "2026-01"]
        );
        assert_eq!(
            months_between(d("2026-01-31"), d("2026-01-31")),
            ["2026-01"]
        );
    }
}
