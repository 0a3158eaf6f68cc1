//! Platform reports for super admins: revenue over a date range and the subscription book.
//!
//! Rounding: every figure is an exact sum first (amounts in their currency, or each amount divided
//! by its invoice's stored exchange rate for USD figures) and is rounded once, at the end, by
//! `round_money`. Figures are gathered by a few set-based queries grouped by the dimensions the
//! report shows and folded here into exact figures; the HTTP layer rounds and writes them.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgPool;

use crate::billing::types::{Currency, PaymentMethod};
use crate::repository::reports::ReportRepository;
use crate::services::rates::parse_date;

mod book;

pub use book::{mrr_exact, subscriptions, SubscriptionBook};

/// What can go wrong with a report (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `start_date` or `end_date` is not a `YYYY-MM-DD` date.
    #[error("{0} must be a date as YYYY-MM-DD")]
    BadDate(&'static str),
    #[error("end_date must be on or after start_date")]
    EndBeforeStart,
    /// A stored exchange rate that cannot divide (zero).
    #[error("exchange rate {0} cannot convert")]
    BadRate(Decimal),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type ReportResult<T> = Result<T, ReportError>;

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
    fn to_usd(self, rate: Decimal) -> ReportResult<Figures> {
        let div = |v: Decimal| v.checked_div(rate).ok_or(ReportError::BadRate(rate));
        Ok(Figures {
            invoiced: div(self.invoiced)?,
            collected: div(self.collected)?,
            refunded: div(self.refunded)?,
            outstanding: div(self.outstanding)?,
        })
    }
}

/// The revenue report: exact figures, rounded once when they are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revenue {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Native amounts per currency (USD and YER always present).
    pub by_currency: BTreeMap<String, Figures>,
    pub total_usd: Figures,
    /// In USD, per plan the invoice was issued for (`none` without one).
    pub by_plan: BTreeMap<String, Figures>,
    /// Collected, in USD, per payment method (every method present).
    pub by_method: BTreeMap<String, Decimal>,
    /// In USD, per `YYYY-MM` of the range (every month present).
    pub by_month: BTreeMap<String, Figures>,
}

/// `start_date`/`end_date` (inclusive) from the query; each defaults to the bounds of the
/// current calendar month. A bad date or `start > end` is an error naming the field.
pub fn report_range(
    start: Option<&str>,
    end: Option<&str>,
    today: NaiveDate,
) -> ReportResult<(NaiveDate, NaiveDate)> {
    let month_start = today.with_day(1).unwrap_or(today);
    let month_end = month_start
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(today);
    let parse = |field: &'static str, v: Option<&str>, default: NaiveDate| match v
        .filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(s) => parse_date(s).ok_or(ReportError::BadDate(field)),
    };
    let start = parse("start_date", start, month_start)?;
    let end = parse("end_date", end, month_end)?;
    if start > end {
        return Err(ReportError::EndBeforeStart);
    }
    Ok((start, end))
}

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
pub async fn revenue(pool: &PgPool, start: NaiveDate, end: NaiveDate) -> ReportResult<Revenue> {
    let after_end = end.checked_add_days(Days::new(1)).unwrap_or(end);
    let mut conn = pool.acquire().await?;
    let (from, until) = (start_of_day(start), start_of_day(after_end));
    let groups = ReportRepository::revenue_groups(&mut conn, start, end, from, until).await?;

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

    Ok(Revenue {
        start,
        end,
        by_currency,
        total_usd,
        by_plan,
        by_method,
        by_month,
    })
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
