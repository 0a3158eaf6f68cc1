//! Plan-change proration by remaining days of the current period.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::money::round_money;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proration {
    pub total_days: i64,
    pub remaining_days: i64,
    /// Unused part of the old price, returned to the tenant.
    pub credit: Decimal,
    /// The new price for the rest of the period.
    pub charge: Decimal,
}

impl Proration {
    /// `charge - credit`: positive → invoice now; negative → credit balance.
    pub fn net(&self) -> Decimal {
        self.charge - self.credit
    }
}

/// Prorates a change on `today` within `[start, end)`. `today` outside the period clamps to a
/// whole period (before start) or nothing (on or after end). Each side is rounded once.
pub fn prorate(
    old_price: Decimal,
    new_price: Decimal,
    start: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Proration {
    let total_days = (end - start).num_days().max(1);
    let remaining_days = (end - today).num_days().clamp(0, total_days);
    let share = |price: Decimal| {
        round_money(price * Decimal::from(remaining_days) / Decimal::from(total_days))
    };
    Proration {
        total_days,
        remaining_days,
        credit: share(old_price),
        charge: share(new_price),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn upgrade_halfway_through_a_thirty_day_month() {
        let p = prorate(
            Decimal::from(29),
            Decimal::from(99),
            d(2025, 4, 1),
            d(2025, 5, 1),
            d(2025, 4, 16),
        );
        assert_eq!((p.total_days, p.remaining_days), (30, 15));
        assert_eq!(p.credit, Decimal::new(1450, 2));
        assert_eq!(p.charge, Decimal::new(4950, 2));
        assert_eq!(p.net(), Decimal::new(3500, 2));
    }

    #[test]
    fn downgrade_gives_a_negative_net() {
        let p = prorate(
            Decimal::from(99),
            Decimal::from(29),
            d(2025, 1, 31),
            d(2025, 2, 28),
            d(2025, 2, 7),
        );
        assert_eq!(p.remaining_days, 21);
        assert_eq!(p.credit, Decimal::new(7425, 2));
        assert_eq!(p.charge, Decimal::new(2175, 2));
        assert!(p.net() < Decimal::ZERO);
    }

    proptest! {
        #[test]
        fn a_change_on_the_first_day_prorates_the_whole_price(cents in 0i64..100_000_000, len in 1u64..400) {
            let start = d(2025, 1, 1);
            let end = start + chrono::Days::new(len);
            let price = Decimal::new(cents, 2);
            let p = prorate(price, price, start, end, start);
            prop_assert_eq!(p.credit, price);
            prop_assert_eq!(p.charge, price);
            prop_assert_eq!(p.net(), Decimal::ZERO);
        }

        #[test]
        fn credit_never_exceeds_the_old_price(old in 0i64..10_000_000, new in 0i64..10_000_000, len in 1u64..400, at in 0u64..500) {
            let start = d(2025, 3, 1);
            let end = start + chrono::Days::new(len);
            let p = prorate(Decimal::new(old, 2), Decimal::new(new, 2), start, end, start + chrono::Days::new(at));
            prop_assert!(p.credit <= Decimal::new(old, 2) && p.credit >= Decimal::ZERO);
            prop_assert!(p.charge <= Decimal::new(new, 2) && p.charge >= Decimal::ZERO);
            prop_assert_eq!(p.credit + p.net(), p.charge);
        }
    }
}
