//! Exchange-rate management (super admin): listing the stored rates and the ones in force, and
//! setting a currency's rate from a date on. Issued invoices keep the rate stored on them; only
//! invoices issued later pick up a change.

use axum::http::StatusCode;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::{PgConnection, PgPool};

use crate::billing::money::decimal_from_json;
use crate::billing::types::Currency;
use crate::error::{AppError, AppResult};
use crate::repository::outbox::OutboxRepository;
use crate::repository::rates::{RateRepository, RateRow};
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::validate::Checks;

/// Rates are stored as `numeric(18, 6)`: at most 6 decimals and 12 integer digits.
const RATE_DECIMALS: u32 = 6;
const RATE_INTEGER_DIGITS: usize = 12;

/// Every field optional and loosely typed so each problem is reported as a 422 naming its field
/// (a missing or mistyped field would otherwise be reported against the whole body).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRateRequest {
    pub currency: Option<Value>,
    pub rate: Option<Value>,
    pub effective_date: Option<Value>,
}

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

fn parse_rate(v: &Value) -> Result<Decimal, &'static str> {
    let d =
        decimal_from_json(v).map_err(|_| "must be a decimal number given as a string or number")?;
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

impl SetRateRequest {
    /// Checks every field, reporting all problems at once; `today` is the default date.
    pub fn validate(&self, today: NaiveDate) -> AppResult<RateChange> {
        let mut checks = Checks::default();
        let currency = match &self.currency {
            None | Some(Value::Null) => {
                checks.push("currency", "is required");
                None
            }
            Some(Value::String(s)) => match Currency::parse(s) {
                Some(Currency::Usd) => {
                    checks.push("currency", "USD is the base currency; its rate is always 1");
                    None
                }
                Some(c) => Some(c),
                None => {
                    checks.push("currency", "must be one of YER, SAR, AED, EUR");
                    None
                }
            },
            Some(_) => {
                checks.push("currency", "must be a currency code string");
                None
            }
        };
        let rate = match &self.rate {
            None | Some(Value::Null) => {
                checks.push("rate", "is required");
                None
            }
            Some(v) => parse_rate(v)
                .map_err(|issue| checks.push("rate", issue))
                .ok(),
        };
        let effective_date = match &self.effective_date {
            None | Some(Value::Null) => Some(today),
            Some(Value::String(s)) => {
                let d = parse_date(s);
                if d.is_none() {
                    checks.push("effective_date", "must be a date as YYYY-MM-DD");
                }
                d
            }
            Some(_) => {
                checks.push("effective_date", "must be a date string as YYYY-MM-DD");
                None
            }
        };
        checks.finish()?;
        match (currency, rate, effective_date) {
            (Some(currency), Some(rate), Some(effective_date)) => Ok(RateChange {
                currency,
                rate,
                effective_date,
            }),
            // finish() returned early for every missing piece.
            _ => Err(AppError::internal(anyhow::anyhow!(
                "rate validation incomplete"
            ))),
        }
    }
}

fn row_json(r: &RateRow) -> Value {
    json!({
        "currency": r.currency,
        "rate": rate_text(r.rate),
        "effective_date": r.effective_date,
        "source": r.source,
    })
}

/// `{rates: [...], current: {USD: "1.00", YER: ..., ...}}`: every stored rate, and for every
/// currency of the allow-list the rate in force on `today`.
pub async fn list_rates(pool: &PgPool, today: NaiveDate) -> AppResult<Value> {
    let mut conn = pool.acquire().await?;
    let rows = RateRepository::list(&mut conn).await?;
    let mut current = Map::new();
    for c in Currency::ALL {
        let rate = RateRepository::rate_on(&mut conn, *c, today).await?;
        current.insert(c.code().to_string(), Value::from(rate_text(rate)));
    }
    Ok(json!({
        "rates": rows.iter().map(row_json).collect::<Vec<_>>(),
        "current": current,
    }))
}

/// Stores a rate: 201 when the currency had none for that date, 200 when it replaced one.
/// The outbox event carries the rate in force on that date before the change.
pub async fn set_rate(
    pool: &PgPool,
    change: RateChange,
    actor: &Actor,
) -> AppResult<(StatusCode, Value)> {
    let mut tx = pool.begin().await?;
    let (row, inserted) = store(&mut tx, change, actor).await?;
    tx.commit().await?;
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        json!({ "success": true, "replaced": !inserted, "rate": row_json(&row) }),
    ))
}

async fn store(
    conn: &mut PgConnection,
    change: RateChange,
    actor: &Actor,
) -> AppResult<(RateRow, bool)> {
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
    OutboxRepository::record(
        conn,
        "exchange_rate.changed",
        None,
        json!({
            "currency": row.currency,
            "rate": rate_text(row.rate),
            "effective_date": row.effective_date,
            "previous_rate": previous.map(rate_text),
            "replaced": !inserted,
            "changed_by": actor.subject,
        }),
    )
    .await?;
    // `before` is the rate in force on that date before the change (null when none was).
    let mut after = row_json(&row);
    after["replaced"] = json!(!inserted);
    let event = AuditEvent {
        tenant_id: None,
        action: "exchange_rate.set",
        target_type: "exchange_rate",
        target_id: format!("{}:{}", row.currency, row.effective_date),
        before: Some(json!({ "rate": previous.map(rate_text) })),
        after: Some(after),
    };
    audit::record(conn, actor, event).await?;
    Ok((row, inserted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> SetRateRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rates_take_strings_or_numbers_with_up_to_six_decimals() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let c = req(json!({"currency": "yer", "rate": "260.123456"}))
            .validate(today)
            .unwrap();
        assert_eq!(c.currency, Currency::Yer);
        assert_eq!(rate_text(c.rate), "260.123456");
        assert_eq!(c.effective_date, today);
        let c = req(json!({"currency": "SAR", "rate": 3.8, "effective_date": "2026-04-01"}))
            .validate(today)
            .unwrap();
        assert_eq!(rate_text(c.rate), "3.80");
        for bad in [
            json!("0"),
            json!(-1),
            json!("1.1234567"),
            json!("abc"),
            json!(true),
            json!("1e3"),
        ] {
            assert!(
                req(json!({"currency": "YER", "rate": bad}))
                    .validate(today)
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn dates_must_be_zero_padded_iso_dates() {
        assert!(parse_date("2026-02-28").is_some());
        assert!(parse_date("2026-2-28").is_none());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("28/02/2026").is_none());
    }
}
