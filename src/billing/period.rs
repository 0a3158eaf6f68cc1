//! Calendar billing periods. A subscription keeps its anchor day; each period adds whole
//! months, clamped to the month's last day (Jan 31 → Feb 28/29 → Mar 31). Periods are
//! `[start, end)` in UTC dates.

use chrono::{Datelike, Months, NaiveDate};

use super::types::BillingCycle;

/// The date `n` cycles after the period that starts on the anchor, following the anchor day.
pub fn add_cycles(anchor: NaiveDate, anchor_day: u32, cycle: BillingCycle, n: u32) -> NaiveDate {
    add_months_anchored(anchor, anchor_day, cycle.months() * n)
}

/// Adds `months` to `from`, landing on `anchor_day` or the month's last day if shorter.
pub fn add_months_anchored(from: NaiveDate, anchor_day: u32, months: u32) -> NaiveDate {
    let first = from.with_day(1).expect("day 1 exists") + Months::new(months);
    let last = last_day_of_month(first.year(), first.month());
    first
        .with_day(anchor_day.min(last))
        .expect("clamped day exists")
}

/// The end (exclusive) of the period starting at `start` for a subscription with `anchor_day`.
pub fn period_end(start: NaiveDate, anchor_day: u32, cycle: BillingCycle) -> NaiveDate {
    add_months_anchored(start, anchor_day, cycle.months())
}

pub fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Stepping period by period lands where jumping N cycles from the anchor does: the
        /// anchor day survives short months, so no drift accumulates.
        #[test]
        fn stepping_periods_matches_jumping_from_the_anchor(y in 2000i32..2100, m in 1u32..=12, day in 1u32..=31,
                                                             n in 0u32..40, c in 0usize..3) {
            let cycle = [BillingCycle::Monthly, BillingCycle::Quarterly, BillingCycle::Yearly][c];
            let start = NaiveDate::from_ymd_opt(y, m, day.min(last_day_of_month(y, m))).unwrap();
            let mut at = start;
            for _ in 0..n {
                let next = period_end(at, day, cycle);
                prop_assert!(next > at);
                at = next;
            }
            prop_assert_eq!(at, add_cycles(start, day, cycle, n));
            prop_assert_eq!(at.day(), day.min(last_day_of_month(at.year(), at.month())));
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn month_end_anchor_is_clamped_then_restored() {
        let jan31 = d(2025, 1, 31);
        let feb = period_end(jan31, 31, BillingCycle::Monthly);
        assert_eq!(feb, d(2025, 2, 28));
        assert_eq!(period_end(feb, 31, BillingCycle::Monthly), d(2025, 3, 31));
        assert_eq!(
            period_end(d(2024, 1, 31), 31, BillingCycle::Monthly),
            d(2024, 2, 29)
        );
    }

    #[test]
    fn cycles_add_one_three_and_twelve_months() {
        let s = d(2025, 1, 15);
        assert_eq!(period_end(s, 15, BillingCycle::Monthly), d(2025, 2, 15));
        assert_eq!(period_end(s, 15, BillingCycle::Quarterly), d(2025, 4, 15));
        assert_eq!(period_end(s, 15, BillingCycle::Yearly), d(2026, 1, 15));
        assert_eq!(add_cycles(s, 15, BillingCycle::Monthly, 12), d(2026, 1, 15));
    }
}
