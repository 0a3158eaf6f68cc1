//! `/exchange-rates` on the wire: rates as decimal strings (2 to 6 decimals), dates as
//! `YYYY-MM-DD`.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::billing::types::Currency;
use crate::error::AppResult;
use crate::http::openapi::components::DecimalSchema;
use crate::repository::rates::RateRow;
use crate::services::rates::{parse_date, parse_rate, rate_text, RateChange, RateList, StoredRate};
use crate::services::validate::Checks;

/// One stored rate: `rate` units of `currency` per USD from `effective_date` on.
#[derive(Serialize, ToSchema)]
pub struct ExchangeRate {
    #[schema(schema_with = currency_schema)]
    pub currency: String,
    /// Units of the currency per USD.
    #[schema(value_type = DecimalSchema)]
    pub rate: String,
    pub effective_date: NaiveDate,
    /// `seed`, `config` or `api`: where the rate came from.
    pub source: String,
}

impl From<&RateRow> for ExchangeRate {
    fn from(r: &RateRow) -> Self {
        ExchangeRate {
            currency: r.currency.clone(),
            rate: rate_text(r.rate),
            effective_date: r.effective_date,
            source: r.source.clone(),
        }
    }
}

/// Every stored rate (newest first within a currency) and the rate in force today per currency.
#[derive(Serialize, ToSchema)]
pub struct ExchangeRateList {
    pub rates: Vec<ExchangeRate>,
    /// currency → the rate in force today (`USD` is always `"1.00"`).
    #[schema(value_type = BTreeMap<String, DecimalSchema>)]
    pub current: BTreeMap<String, String>,
}

impl From<RateList> for ExchangeRateList {
    fn from(l: RateList) -> Self {
        ExchangeRateList {
            rates: l.rows.iter().map(ExchangeRate::from).collect(),
            current: l
                .current
                .into_iter()
                .map(|(c, r)| (c.code().to_string(), rate_text(r)))
                .collect(),
        }
    }
}

/// The answer of a rate change: 201 when the currency had no rate on that date, 200 (with
/// `replaced: true`) when it replaced that day's rate.
#[derive(Serialize, ToSchema)]
pub struct SetRateResponse {
    pub success: bool,
    pub replaced: bool,
    pub rate: ExchangeRate,
}

impl From<&StoredRate> for SetRateResponse {
    fn from(s: &StoredRate) -> Self {
        SetRateResponse {
            success: true,
            replaced: !s.inserted,
            rate: ExchangeRate::from(&s.row),
        }
    }
}

/// Every field optional and loosely typed so each problem is reported as a 422 naming its field
/// (a missing or mistyped field would otherwise be reported against the whole body).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRateRequest {
    /// Not USD (the base currency, always 1). Case-insensitive.
    #[schema(schema_with = settable_currency_schema, required = true)]
    pub currency: Option<Value>,
    #[schema(schema_with = rate_input_schema, required = true)]
    pub rate: Option<Value>,
    /// Default: today.
    #[schema(value_type = Option<NaiveDate>)]
    pub effective_date: Option<Value>,
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
            _ => Err(crate::error::AppError::internal(anyhow::anyhow!(
                "rate validation incomplete"
            ))),
        }
    }
}

fn currency_schema() -> RefOr<Schema> {
    let codes = Currency::ALL.iter().map(|c| c.code());
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .build(),
    ))
}

fn settable_currency_schema() -> RefOr<Schema> {
    let codes = Currency::ALL
        .iter()
        .filter(|c| **c != Currency::Usd)
        .map(|c| c.code());
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes))
            .description(Some(
                "Not USD (the base currency, always 1); case-insensitive.",
            ))
            .build(),
    ))
}

/// A rate > 0 with at most 6 decimals and 12 integer digits, as a string or a number (the
/// column is `numeric(18, 6)`; trailing zeros do not count as decimals).
fn rate_input_schema() -> RefOr<Schema> {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^(?!0*(\.0*)?$)0*[0-9]{1,12}(\.[0-9]{1,6}0*)?$"));
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .exclusive_minimum(Some(0))
        // 10^12 has 13 integer digits (and 999999999999.999999 is 10^12 as a float).
        .exclusive_maximum(Some(1_000_000_000_000.0))
        .multiple_of(Some(0.000_001));
    let one_of = OneOfBuilder::new()
        .item(text)
        .item(number)
        .description(Some(
            "Units of the currency per USD: > 0, at most 6 decimals and 12 integer digits, as a string or a number.",
        ))
        .examples([serde_json::json!("250.00")]);
    RefOr::T(Schema::OneOf(one_of.build()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
