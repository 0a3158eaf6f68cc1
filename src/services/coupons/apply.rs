//! Which invoices a redeemed coupon covers, and counting them (SPEC section 10): `once` the
//! first invoice after redemption, `repeating N` the invoices of the billing periods that start
//! from its first period until `covers_until`, `forever` every one.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::redeem::{active_discount, ActiveDiscount};
use super::CouponResult;
use crate::billing::discount::{CouponDuration, Coverage, DiscountValue};
use crate::repository::coupons::redemptions::RedemptionRepository;
use crate::repository::subscriptions::SubscriptionRow;
use crate::services::invoicing::AppliedDiscount;

/// A discount to put on an invoice, and the redemption to count it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covering {
    pub redemption_id: Uuid,
    pub discount: AppliedDiscount,
}

/// Whether `held` covers an invoice for the period starting `period_start`.
pub fn covers(held: &ActiveDiscount, period_start: Option<NaiveDate>) -> bool {
    let r = &held.redemption;
    let coverage = Coverage {
        invoices_discounted: r.invoices_discounted,
        first_period_start: r.first_period_start,
        covers_until: r.covers_until,
    };
    CouponDuration::parse(&held.coupon.duration, held.coupon.duration_periods)
        .is_some_and(|d| d.covers(&coverage, period_start))
}

fn value(held: &ActiveDiscount) -> Option<DiscountValue> {
    match (held.coupon.percent_off, held.coupon.amount_off) {
        (Some(p), _) => Some(DiscountValue::PercentOff(p)),
        (None, Some(a)) => Some(DiscountValue::AmountOff(a)),
        _ => None,
    }
}

/// The discount covering `sub`'s invoice for the period starting `period_start`, if any.
pub async fn covering(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
    period_start: Option<NaiveDate>,
) -> CouponResult<Option<Covering>> {
    let Some(held) = active_discount(conn, sub).await? else {
        return Ok(None);
    };
    if !covers(&held, period_start) {
        return Ok(None);
    }
    Ok(value(&held).map(|value| Covering {
        redemption_id: held.redemption.redemption_id,
        discount: AppliedDiscount {
            code: held.coupon.code.clone(),
            value,
        },
    }))
}

/// Counts an issued invoice against the redemption that discounted it.
pub async fn record_use(
    conn: &mut PgConnection,
    covering: &Covering,
    period_start: Option<NaiveDate>,
) -> CouponResult<()> {
    RedemptionRepository::record_use(conn, covering.redemption_id, period_start).await?;
    Ok(())
}
