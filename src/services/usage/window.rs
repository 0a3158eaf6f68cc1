//! Which counter window a usage event belongs to: the subscription's current period.

use chrono::NaiveDate;

use crate::billing::period::period_end;
use crate::billing::types::{BillingCycle, MetricKind};
use crate::repository::usage::QuotaContext;

/// The fields of a subscription that decide its billing period.
#[derive(Clone, Copy, Debug)]
pub struct PeriodInfo {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub anchor_day: u32,
    pub cycle: BillingCycle,
    pub created: NaiveDate,
}

/// The counter window of an event on `day`: that day for a daily counter, else the start of
/// the current period.
pub fn counter_window(kind: MetricKind, period_start: NaiveDate, day: NaiveDate) -> NaiveDate {
    if kind == MetricKind::DailyCounter {
        day
    } else {
        period_start
    }
}

/// The period `[start, end)` that contains `today`. A period the renewal job has not advanced
/// yet is rolled forward, so new usage never lands in a period that has already ended. Before
/// the first period (a trial that starts it later), the trial is the window.
pub fn current_period(p: &PeriodInfo, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    if today < p.start_date {
        let trial_start = p
            .created
            .min(p.start_date.pred_opt().unwrap_or(p.start_date));
        return (trial_start, p.start_date);
    }
    let (mut start, mut end) = (p.start_date, p.end_date.max(p.start_date));
    // Bounded: a subscription 1000 periods behind is a data problem, not a reason to spin.
    for _ in 0..1000 {
        if today < end || end <= start {
            break;
        }
        start = end;
        end = period_end(start, p.anchor_day, p.cycle);
    }
    (start, end)
}

pub fn period_info(ctx: &QuotaContext) -> Option<PeriodInfo> {
    Some(PeriodInfo {
        start_date: ctx.start_date?,
        end_date: ctx.end_date?,
        anchor_day: ctx.anchor_day? as u32,
        cycle: ctx.billing_cycle?,
        created: ctx.created_at?.date_naive(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn info(start: NaiveDate, end: NaiveDate) -> PeriodInfo {
        PeriodInfo {
            start_date: start,
            end_date: end,
            anchor_day: 31,
            cycle: BillingCycle::Monthly,
            created: d(2025, 1, 1),
        }
    }

    #[test]
    fn the_current_period_rolls_forward_past_an_unrenewed_end() {
        let p = info(d(2025, 1, 31), d(2025, 2, 28));
        assert_eq!(
            current_period(&p, d(2025, 2, 10)),
            (d(2025, 1, 31), d(2025, 2, 28))
        );
        assert_eq!(
            current_period(&p, d(2025, 2, 28)),
            (d(2025, 2, 28), d(2025, 3, 31))
        );
        assert_eq!(
            current_period(&p, d(2025, 4, 2)),
            (d(2025, 3, 31), d(2025, 4, 30))
        );
    }

    #[test]
    fn a_trial_before_its_first_period_is_its_own_window() {
        let p = info(d(2025, 1, 15), d(2025, 2, 15));
        assert_eq!(
            current_period(&p, d(2025, 1, 3)),
            (d(2025, 1, 1), d(2025, 1, 15))
        );
    }
}
