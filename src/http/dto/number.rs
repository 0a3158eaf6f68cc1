//! Whole numbers as JSON gives them: `53` and `53.0` are the same integer to JSON Schema (and
//! so to generated clients), so both are accepted; `53.5` is not a whole number.

use serde::{Deserialize, Deserializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeNumber(pub i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Number::deserialize(d)? {
            n if n.is_i64() => Ok(WholeNumber(n.as_i64().unwrap_or_default())),
            n => match n.as_f64() {
                // Every float this large is an integer; below 2^63 it converts exactly.
                Some(f) if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_807.0 => {
                    Ok(WholeNumber(f as i64))
                }
                _ => Err(serde::de::Error::custom(format!(
                    "invalid value: {n}, expected a whole number"
                ))),
            },
        }
    }
}

impl WholeNumber {
    /// The value as an `i32`, or the error a field of that range would give.
    pub fn to_i32(self) -> Option<i32> {
        i32::try_from(self.0).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_are_whole_numbers_and_fractions_are_not() {
        let p = |s: &str| serde_json::from_str::<WholeNumber>(s).map(|w| w.0).ok();
        assert_eq!(p("53"), Some(53));
        assert_eq!(p("53.0"), Some(53));
        assert_eq!(p("-1"), Some(-1));
        assert_eq!(p("53.5"), None);
        assert_eq!(p("\"53\""), None);
    }
}
