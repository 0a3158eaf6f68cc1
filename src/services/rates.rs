//! Exchange-rate management (super admin): listing the stored rates and the ones in force, and
//! setting a currency's rate from a date on. Issued invoices keep the rate stored on them; only
//! invoices issued later pick up a change.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::billing::money::{decimal_from_json, AmountError};
use crate::billing::types::Currency;
use crate::error::AppError;
use crate::events::Event;
use crate::repository::outbox::OutboxRepository;
use crate::repository::rates::{RateRepository, RateRow};
use crate::services::audit::{self, Actor, AuditEvent};

/// Rates are stored as `numeric(18, 6)`: at most 6 decimals and 12 integer digits.
const RATE_DECIMALS: u32 = 6;
const RATE_INTEGER_DIGITS: usize = 12;

/// What can go wrong with a rate use case (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The audit log still answers in the boundary's error type.
    #[error(transparent)]
    Audit(#[from] AppError),
}

pub type RateResult<T> = Result<T, RateError>;

/// A validated rate change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateChange {
    pub currency: Currency,
    pub rate: Decimal,
    pub effective_date: NaiveDate,
}

/// A rate as written in JSON: normalized, between 2 and 6 decimals (`"250.00"`, `"3.6725"`).
pub fn rate_text(rate: Decimal) -> String {
    crate::billing::money::decimal_text(rate)
}

/// Strict `YYYY-MM-DD` (chrono alone would accept unpadded months and days).
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let ok_shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !ok_shape {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A decimal from JSON. A number in exponent form (`2e-06`: how float serializers write small
/// values, and how serde_json prints them back) is read by its exact value; a string must be
/// plain decimal text.
pub fn json_decimal(v: &Value) -> Result<Decimal, AmountError> {
    if let Value::Number(n) = v {
        let text = n.to_string();
        if text.contains(['e', 'E']) {
            return Decimal::from_scientific(&text).map_err(|_| AmountError::NotANumber);
        }
    }
    decimal_from_json(v)
}

/// A rate as given (string or number): > 0, at most 6 decimals and 12 integer digits.
pub fn parse_rate(v: &Value) -> Result<Decimal, &'static str> {
    let d = json_decimal(v).map_err(|_| "must be a decimal number given as a string or number")?;
    if d <= Decimal::ZERO {
        return Err("must be greater than zero");
    }
    let n = d.normalize();
    if n.scale() > RATE_DECIMALS {
        return Err("must have at most 6 decimal places");
    }
    if n.trunc().to_string().trim_start_matches('0').len() > RATE_INTEGER_DIGITS {
        return Err("must have at most 12 digits before the decimal point");
    }
    Ok(n)
}

/// A stored rate as the audit log records it, with whether it replaced that day's rate.
#[derive(Serialize)]
struct AuditedRate<'a> {
    currency: &'a str,
    rate: String,
    effective_date: NaiveDate,
    source: &'a str,
    replaced: bool,
}

/// The rate in force on a date before a change, as the audit log records it.
#[derive(Serialize)]
struct AuditedPrevious {
    rate: Option<String>,
}

/// Every stored rate, and for every currency of the allow-list the rate in force on a day.
pub struct RateList {
    pub rows: Vec<RateRow>,
    pub current: Vec<(Currency, Decimal)>,
}

/// Every stored rate and, for every currency of the allow-list, the rate in force on `today`.
pub async fn list_rates(pool: &PgPool, today: NaiveDate) -> RateResult<RateList> {
    let mut conn = pool.acquire().await?;
    let rows = RateRepository::list(&mut conn).await?;
    let mut current = Vec::with_capacity(Currency::ALL.len());
    for c in Currency::ALL {
        current.push((*c, RateRepository::rate_on(&mut conn, *c, today).await?));
    }
    Ok(RateList { rows, current })
}

/// A stored rate and whether it was new for its date (false: it replaced that day's rate).
pub struct StoredRate {
    pub row: RateRow,
    pub inserted: bool,
}

/// Stores a rate. The outbox event carries the rate in force on that date before the change.
pub async fn set_rate(pool: &PgPool, change: RateChange, actor: &Actor) -> RateResult<StoredRate> {
    let mut tx = pool.begin().await?;
    let (row, inserted) = store(&mut tx, change, actor).await?;
    tx.commit().await?;
    Ok(StoredRate { row, inserted })
}

async fn store(
    conn: &mut PgConnection,
    change: RateChange,
    actor: &Actor,
) -> RateResult<(RateRow, bool)> {
    RateRepository::lock_currency(conn, change.currency).await?;
    // Before the earliest stored rate there is none in force; that is not an error here.
    let previous = RateRepository::rate_on(conn, change.currency, change.effective_date)
        .await
        .ok();
    let (row, inserted) = RateRepository::upsert(
        conn,
        change.currency,
        change.effective_date,
        change.rate,
        "api",
    )
    .await?;
    let changed = Event::ExchangeRateChanged {
        currency: row.currency.clone(),
        rate: row.rate,
        effective_date: row.effective_date,
        previous_rate: previous.map(rate_text),
        replaced: !inserted,
        changed_by: actor.subject.clone(),
    };
    OutboxRepository::record_event(conn, None, &changed).await?;
    // `before` is the rate in force on that date before the change (null when none was).
    let after = AuditedRate {
        currency: &row.currency,
        rate: rate_text(row.rate),
        effective_date: row.effective_date,
        source: &row.source,
        replaced: !inserted,
    };
    let before = AuditedPrevious {
        rate: previous.map(rate_text),
    };
    let event = AuditEvent {
        tenant_id: None,
        action: "exchange_rate.set",
        target_type: "exchange_rate",
        target_id: format!("{}:{}", row.currency, row.effective_date),
        before: serde_json::to_value(before).ok(),
        after: serde_json::to_value(after).ok(),
    };
    audit::record(conn, actor, event).await?;
    Ok((row, inserted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_in_exponent_form_are_read_by_their_value() {
        let v: Value = serde_json::from_str("2e-06").unwrap();
        assert_eq!(parse_rate(&v).map(rate_text), Ok("0.000002".to_string()));
        assert!(parse_rate(&json!("2e-06")).is_err());
        let tiny: Value = serde_json::from_str("2e-07").unwrap();
        assert!(parse_rate(&tiny).is_err());
    }

    #[test]
    fn dates_must_be_zero_padded_iso_dates() {
        assert!(parse_date("2026-02-28").is_some());
        assert!(parse_date("2026-2-28").is_none());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("28/02/2026").is_none());
    }
}
