//! Money: `Decimal` amounts with a currency, rounded by exactly one function.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The one rounding rule of the service: half away from zero, to the currency's 2 decimals.
/// Every computed amount (line, proration, tax, conversion) passes through here once.
pub fn round_money(amount: Decimal) -> Decimal {
    let mut r = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// A unit price (an overage rate converted into the invoice currency) as stored and printed:
/// at most 6 decimals, half away from zero like amounts.
pub fn round_unit_price(price: Decimal) -> Decimal {
    price
        .round_dp_with_strategy(6, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

/// The amount of an invoice line: quantity × unit price, rounded once. Every stored and
/// printed line satisfies `amount == line_amount(quantity, unit_price)`, so a reader can redo
/// the multiplication from what the page shows.
pub fn line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal {
    round_money(quantity * unit_price)
}

/// Formats an amount with exactly two decimals, as every JSON money value is written.
pub fn money_string(amount: Decimal) -> String {
    let mut d = amount;
    d.rescale(2);
    d.to_string()
}

/// Converts a USD amount into `currency` at `rate` (units per USD), rounding once.
pub fn convert_from_usd(usd: Decimal, rate: Decimal) -> Decimal {
    round_money(usd * rate)
}

/// Serde helper for `Decimal` money fields: written as a string with two decimals.
pub mod as_string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&money_string(*v))
    }

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(d) => s.serialize_str(&money_string(*d)),
                None => s.serialize_none(),
            }
        }
    }
}

/// Serde helper for unit prices and rates, which may carry up to 6 decimals: written as a
/// normalized string (at least 2 decimals).
pub mod rate_string {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&decimal_text(*v))
    }
}

/// A rate, unit price or percentage as text: its own decimals (up to 6 are stored), never
/// fewer than two — "250.00", "3.6725", "0.001".
pub fn decimal_text(v: Decimal) -> String {
    let mut d = v.normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

/// An amount given by a client: a JSON string or number, positive, with at most 2 decimals
/// and at most 12 digits. Parsing here is the only place such input is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositiveAmount(Decimal);

#[derive(Debug, PartialEq, Eq)]
pub enum AmountError {
    NotANumber,
    NotPositive,
    TooManyDecimals,
    TooManyDigits,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::NotANumber => "must be a decimal number given as a string or number",
            AmountError::NotPositive => "must be greater than zero",
            AmountError::TooManyDecimals => "must have at most 2 decimal places",
            AmountError::TooManyDigits => "must have at most 12 digits",
        })
    }
}

impl PositiveAmount {
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let d = parse_decimal(text)?;
        Self::new(d)
    }

    pub fn new(d: Decimal) -> Result<Self, AmountError> {
        if d <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        check_shape(d, 2)?;
        Ok(PositiveAmount(round_money(d)))
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

/// A non-negative price (0 allowed), same shape rules as [`PositiveAmount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price(Decimal);

impl Price {
    pub fn new(d: Decimal) -> Result<Self, AmountError> {
        if d < Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        check_shape(d, 2)?;
        Ok(Price(round_money(d)))
    }
    pub fn value(self) -> Decimal {
        self.0
    }
}

fn parse_decimal(text: &str) -> Result<Decimal, AmountError> {
    let t = text.trim();
    if t.is_empty() || t.contains(['e', 'E']) {
        return Err(AmountError::NotANumber);
    }
    Decimal::from_str_exact(t).map_err(|_| AmountError::NotANumber)
}

fn check_shape(d: Decimal, max_scale: u32) -> Result<(), AmountError> {
    let n = d.normalize();
    if n.scale() > max_scale {
        return Err(AmountError::TooManyDecimals);
    }
    let integer_digits = n.trunc().abs().to_string().trim_start_matches('0').len();
    if integer_digits + max_scale as usize > 12 {
        return Err(AmountError::TooManyDigits);
    }
    Ok(())
}

/// Reads a JSON string or number into a `Decimal` without passing through binary floating
/// point arithmetic: numbers are taken from their shortest decimal text.
pub fn decimal_from_json(v: &serde_json::Value) -> Result<Decimal, AmountError> {
    match v {
        serde_json::Value::String(s) => parse_decimal(s),
        serde_json::Value::Number(n) => parse_decimal(&n.to_string()),
        _ => Err(AmountError::NotANumber),
    }
}

impl<'de> Deserialize<'de> for PositiveAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        decimal_from_json(&v)
            .and_then(PositiveAmount::new)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        decimal_from_json(&v)
            .and_then(Price::new)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for PositiveAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&money_string(self.0))
    }
}

impl FromStr for PositiveAmount {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        macro_rules! dec {
            ($s:literal) => {
                rust_decimal::Decimal::from_str_exact(stringify!($s)).unwrap()
            };
        }
        pub(crate) use dec;
    }

    #[test]
    fn rounding_is_half_away_from_zero_to_two_places() {
        assert_eq!(money_string(round_money(dec!(2.345))), "2.35");
        assert_eq!(money_string(round_money(dec!(2.355))), "2.36");
        assert_eq!(money_string(round_money(dec!(-2.345))), "-2.35");
        assert_eq!(money_string(round_money(dec!(29))), "29.00");
        assert_eq!(money_string(round_money(dec!(0.004999))), "0.00");
    }

    #[test]
    fn amounts_accept_strings_and_numbers_with_two_decimals() {
        let ok: PositiveAmount = serde_json::from_str("\"29.5\"").unwrap();
        assert_eq!(money_string(ok.value()), "29.50");
        let ok: PositiveAmount = serde_json::from_str("0.1").unwrap();
        assert_eq!(money_string(ok.value()), "0.10");
        assert!(serde_json::from_str::<PositiveAmount>("\"1.001\"").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("0").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("\"-5\"").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("\"1e3\"").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("\"abc\"").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("true").is_err());
        assert!(serde_json::from_str::<PositiveAmount>("\"9999999999.99\"").is_ok());
        assert!(serde_json::from_str::<PositiveAmount>("\"99999999999.99\"").is_err());
    }

    #[test]
    fn conversion_rounds_once() {
        assert_eq!(
            money_string(convert_from_usd(dec!(29), dec!(250))),
            "7250.00"
        );
        assert_eq!(
            money_string(convert_from_usd(dec!(29), dec!(3.6725))),
            "106.50"
        );
        assert_eq!(
            money_string(convert_from_usd(dec!(0.01), dec!(0.92))),
            "0.01"
        );
    }

    proptest! {
        #[test]
        fn rounding_is_idempotent_and_close(cents in -10_000_000i64..10_000_000, extra in 0u32..10_000) {
            let d = Decimal::new(cents, 2) + Decimal::new(extra as i64, 6);
            let r = round_money(d);
            prop_assert_eq!(round_money(r), r);
            prop_assert!((r - d).abs() <= Decimal::new(5, 3));
            prop_assert_eq!(r.scale(), 2);
        }
    }
}
