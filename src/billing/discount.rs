//! Coupon discounts (SPEC section 10), pure: how much a coupon takes off an invoice's subtotal,
//! which invoices it covers, and the totals after it (tax on the discounted subtotal).

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::round_money;

/// What a coupon takes off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountValue {
    /// A percentage of the subtotal, 0 < p ≤ 100.
    PercentOff(Decimal),
    /// A fixed amount in the coupon's currency.
    AmountOff(Decimal),
}

/// For how many billing periods a redeemed coupon applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponDuration {
    /// The first invoice after redemption.
    Once,
    /// The invoices of the first N billing periods that start on or after the redemption.
    Repeating(u32),
    /// Every invoice.
    Forever,
}

/// What a redemption has covered so far, to decide on the next invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Invoices the coupon has already discounted.
    pub invoices_discounted: i32,
    /// The start of the first billing period it covers.
    pub first_period_start: NaiveDate,
    /// For `repeating`: the end (exclusive) of the last period it covers.
    pub covers_until: Option<NaiveDate>,
}

impl CouponDuration {
    /// The stored form (`duration`, `duration_periods`) read back; `None` for anything else.
    pub fn parse(duration: &str, periods: Option<i32>) -> Option<Self> {
        match (duration, periods) {
            ("once", _) => Some(CouponDuration::Once),
            ("forever", _) => Some(CouponDuration::Forever),
            ("repeating", Some(n)) => u32::try_from(n).ok().map(CouponDuration::Repeating),
            _ => None,
        }
    }

    /// Whether an invoice for the period starting `period_start` is covered: `once` while no
    /// invoice was discounted, `repeating` for periods starting in
    /// `[first_period_start, covers_until)`, `forever` always.
    pub fn covers(self, c: &Coverage, period_start: Option<NaiveDate>) -> bool {
        match self {
            CouponDuration::Once => c.invoices_discounted == 0,
            CouponDuration::Repeating(_) => match (period_start, c.covers_until) {
                (Some(start), Some(until)) => start >= c.first_period_start && start < until,
                _ => false,
            },
            CouponDuration::Forever => true,
        }
    }
}

/// The discount on `subtotal`: a percentage rounded once by the money function, or the fixed
/// amount; never more than the subtotal and never negative.
pub fn discount_amount(value: DiscountValue, subtotal: Decimal) -> Decimal {
    if subtotal <= Decimal::ZERO {
        return Decimal::new(0, 2);
    }
    let raw = match value {
        DiscountValue::PercentOff(p) => round_money(subtotal * p / Decimal::ONE_HUNDRED),
        DiscountValue::AmountOff(a) => round_money(a),
    };
    round_money(raw.clamp(Decimal::ZERO, subtotal))
}

/// An invoice's totals with a discount: tax applies to the discounted subtotal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscountedTotals {
    pub subtotal: Decimal,
    pub discount_amount: Decimal,
    pub tax_amount: Decimal,
    pub total: Decimal,
}

/// `total = subtotal − discount + tax`, with `tax = round(taxable × rate / 100)` (the tenant's
/// rate in percent, as invoices store it) on `taxable = subtotal − discount`; never below zero.
pub fn discounted_totals(
    subtotal: Decimal,
    discount: Option<DiscountValue>,
    tax_rate_percent: Decimal,
) -> DiscountedTotals {
    let discount_amount = discount
        .map(|d| discount_amount(d, subtotal))
        .unwrap_or(Decimal::new(0, 2));
    totals_after(subtotal, discount_amount, tax_rate_percent)
}

/// The totals of a subtotal with a discount amount already taken (the one arithmetic invoices
/// use): tax rounded once on the discounted subtotal, never below zero.
pub fn totals_after(
    subtotal: Decimal,
    discount_amount: Decimal,
    tax_rate_percent: Decimal,
) -> DiscountedTotals {
    let taxable = (subtotal - discount_amount).max(Decimal::ZERO);
    let tax_amount = round_money(taxable * tax_rate_percent / Decimal::ONE_HUNDRED);
    DiscountedTotals {
        subtotal,
        discount_amount,
        tax_amount,
        total: round_money(taxable + tax_amount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn percent_and_amount_off_are_rounded_once_and_capped_at_the_subtotal() {
        let p = DiscountValue::PercentOff(dec("15"));
        assert_eq!(discount_amount(p, dec("29.00")), dec("4.35"));
        assert_eq!(discount_amount(p, dec("0.03")), dec("0.00"));
        let a = DiscountValue::AmountOff(dec("50"));
        assert_eq!(discount_amount(a, dec("29.00")), dec("29.00"));
        assert_eq!(discount_amount(a, dec("0")), dec("0"));
    }

    #[test]
    fn tax_applies_after_the_discount() {
        let t = discounted_totals(
            dec("100.00"),
            Some(DiscountValue::PercentOff(dec("10"))),
            dec("5"),
        );
        assert_eq!(t.discount_amount, dec("10.00"));
        assert_eq!(t.tax_amount, dec("4.50"));
        assert_eq!(t.total, dec("94.50"));
    }

    #[test]
    fn durations_count_billing_periods() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let c = |n| Coverage {
            invoices_discounted: n,
            first_period_start: d("2025-02-28"),
            covers_until: Some(d("2025-04-30")),
        };
        assert!(CouponDuration::Once.covers(&c(0), Some(d("2025-01-31"))));
        assert!(!CouponDuration::Once.covers(&c(1), Some(d("2025-02-28"))));
        let three = CouponDuration::parse("repeating", Some(3)).unwrap();
        assert!(three.covers(&c(2), Some(d("2025-03-31"))));
        assert!(!three.covers(&c(2), Some(d("2025-04-30"))));
        assert!(!three.covers(&c(0), Some(d("2025-01-31"))));
        assert!(CouponDuration::Forever.covers(&c(500), None));
        assert_eq!(CouponDuration::parse("repeating", None), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_discount_never_exceeds_the_subtotal_and_the_total_never_goes_below_zero(
            sub in 0i64..100_000_000,
            pct in 1i64..=10_000,
            off in 0i64..100_000_000,
            tax in 0i64..3_000,
            percent in any::<bool>(),
        ) {
            let subtotal = Decimal::new(sub, 2);
            let value = if percent {
                DiscountValue::PercentOff(Decimal::new(pct, 2))
            } else {
                DiscountValue::AmountOff(Decimal::new(off, 2))
            };
            let t = discounted_totals(subtotal, Some(value), Decimal::new(tax, 2));
            prop_assert!(t.discount_amount >= Decimal::ZERO && t.discount_amount <= subtotal);
            prop_assert!(t.total >= Decimal::ZERO);
            prop_assert_eq!(t.total, t.subtotal - t.discount_amount + t.tax_amount);
            prop_assert_eq!(t.discount_amount, round_money(t.discount_amount));
            prop_assert_eq!(t.tax_amount, round_money(t.tax_amount));
        }
    }
}
