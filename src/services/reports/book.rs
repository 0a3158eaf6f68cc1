//! The subscription book: counts, MRR/ARR, churn and trial conversion as of a moment.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use sqlx::PgPool;

use crate::billing::money::round_money;
use crate::billing::types::{BillingCycle, Currency, SubscriptionStatus};
use crate::repository::rates::RateRepository;
use crate::repository::reports::ReportRepository;
use crate::services::reports::ReportResult;

/// The book as of a moment; money already rounded (once, from the exact MRR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionBook {
    pub total_subscriptions: i64,
    pub total_tenants: i64,
    /// Every status present.
    pub by_status: BTreeMap<&'static str, i64>,
    /// Live (not canceled) subscriptions per plan.
    pub by_plan: BTreeMap<String, i64>,
    pub mrr_usd: Decimal,
    pub mrr_yer: Decimal,
    pub yer_rate: Decimal,
    pub new_30d: i64,
    pub churned_30d: i64,
    pub reactivated_30d: i64,
    /// 4 decimals.
    pub churn_rate_30d: Decimal,
    /// 4 decimals.
    pub trial_conversion_rate_30d: Decimal,
}

/// `n / d` with 4 decimals, or `0.0000` when there is nothing to divide by.
fn ratio(n: i64, d: i64) -> Decimal {
    let mut r = if d <= 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(n) / Decimal::from(d))
            .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
    };
    r.rescale(4);
    r
}

/// Monthly recurring revenue from the summed cycle prices, normalized per month with a single
/// division (quarterly / 3, yearly / 12). Exact: the caller rounds once.
pub fn mrr_exact(monthly: Decimal, quarterly: Decimal, yearly: Decimal) -> Decimal {
    (monthly * Decimal::from(12) + quarterly * Decimal::from(4) + yearly) / Decimal::from(12)
}

/// GET /reports/subscriptions as of `now`; the 30-day window is `(now - 30 days, now]`.
pub async fn subscriptions(pool: &PgPool, now: DateTime<Utc>) -> ReportResult<SubscriptionBook> {
    let since = now - Duration::days(30);
    let mut conn = pool.acquire().await?;
    let groups = ReportRepository::book_groups(&mut conn, since, now).await?;
    let total_tenants = ReportRepository::tenant_count(&mut conn).await?;
    let (ended, converted, reactivated) = ReportRepository::trials(&mut conn, since, now).await?;
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
    Ok(SubscriptionBook {
        total_subscriptions: total,
        total_tenants,
        by_status,
        by_plan,
        mrr_usd,
        mrr_yer,
        yer_rate,
        new_30d: new,
        churned_30d: churned,
        reactivated_30d: reactivated,
        churn_rate_30d: ratio(churned, live_at_start),
        trial_conversion_rate_30d: ratio(converted, ended),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::money::money_string;

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
        assert_eq!(ratio(1, 3).to_string(), "0.3333");
        assert_eq!(ratio(2, 3).to_string(), "0.6667");
        assert_eq!(ratio(1, 0).to_string(), "0.0000");
        assert_eq!(ratio(0, 5).to_string(), "0.0000");
    }
}
