//! The overage at the current level, priced as the renewal prices overage (SPEC section 10:
//! the quota report's `overage_units` and `overage_amount`): a period counter's use over the
//! limit so far, a daily counter's today, a gauge's level now. Priced only when some metric is
//! over its limit, so a report within the limits costs no extra query.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::types::Currency;
use crate::error::AppResult;
use crate::repository::plans::Plan;
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::SubscriptionRow;

/// A metric's use over its limit and what it costs, in the subscription's currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverageSoFar {
    pub units: i64,
    pub amount: Decimal,
}

/// One metric's excess to price: its name, the units over the limit, the catalogue rate.
pub struct Excess<'a> {
    pub metric: &'a str,
    pub units: i64,
    pub catalogue_rate_usd: Decimal,
}

/// Prices each excess at the plan's pricing in the subscription's currency (at today's rate).
pub async fn price_excess(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
    plan: &Plan,
    excess: &[Excess<'_>],
    today: chrono::NaiveDate,
) -> AppResult<Vec<OverageSoFar>> {
    let currency = Currency::parse(&sub.currency).ok_or_else(|| {
        crate::error::AppError::internal(anyhow::anyhow!("unknown subscription currency"))
    })?;
    let rate = RateRepository::rate_on(conn, currency, today).await?;
    Ok(excess
        .iter()
        .map(|e| {
            let units = e.units.max(0);
            let pricing = plan
                .pricing_for(e.metric, e.catalogue_rate_usd)
                .converted(rate);
            OverageSoFar {
                units,
                amount: pricing.amount(units.unsigned_abs()),
            }
        })
        .collect())
}
