//! A plan's `overage_pricing` as given: `{metric: {model, …}}`, read exactly (prices from their
//! decimal text, never through a float) into `billing::pricing::OveragePricing` and validated,
//! every problem named by its field (`overage_pricing.<metric>.tiers[1].up_to`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::billing::pricing::{OveragePricing, Tier};
use crate::services::rates::json_decimal;
use crate::services::validate::Checks;

/// The most tiers a table may have.
pub const MAX_TIERS: usize = 50;

type Issue = (String, &'static str);

fn price(obj: &Map<String, Value>, key: &str, at: &str) -> Result<rust_decimal::Decimal, Issue> {
    match obj.get(key) {
        None | Some(Value::Null) => Err((format!("{at}.{key}"), "is required")),
        Some(v) => json_decimal(v).map_err(|_| {
            (
                format!("{at}.{key}"),
                "must be a decimal number given as a string or number",
            )
        }),
    }
}

/// The largest tier bound or package size (a trillion units).
pub const MAX_UNITS: u64 = 1_000_000_000_000;

fn whole(v: &Value, field: String) -> Result<u64, Issue> {
    v.as_u64()
        .filter(|n| (1..=MAX_UNITS).contains(n))
        .ok_or((field, "must be a whole number from 1 to 1000000000000"))
}

fn only(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), Issue> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err((format!("{at}.{k}"), "is not a field of this pricing model")),
        None => Ok(()),
    }
}

fn tiers(obj: &Map<String, Value>, at: &str) -> Result<Vec<Tier>, Issue> {
    let Some(Value::Array(items)) = obj.get("tiers") else {
        return Err((format!("{at}.tiers"), "must be an array of tiers"));
    };
    if items.len() > MAX_TIERS {
        return Err((format!("{at}.tiers"), "must have at most 50 tiers"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let here = format!("{at}.tiers[{i}]");
            let Value::Object(t) = item else {
                return Err((here, "must be an object"));
            };
            only(t, &["up_to", "unit_price", "flat_fee"], &here)?;
            let up_to = match t.get("up_to") {
                None => {
                    return Err((
                        format!("{here}.up_to"),
                        "is required (null for the last tier)",
                    ))
                }
                Some(Value::Null) => None,
                Some(v) => Some(whole(v, format!("{here}.up_to"))?),
            };
            let flat_fee = match t.get("flat_fee") {
                None | Some(Value::Null) => None,
                Some(_) => Some(price(t, "flat_fee", &here)?),
            };
            Ok(Tier {
                up_to,
                unit_price: price(t, "unit_price", &here)?,
                flat_fee,
            })
        })
        .collect()
}

/// One metric's pricing, with `at` the field it came from.
pub fn parse_pricing(v: &Value, at: &str) -> Result<OveragePricing, Issue> {
    let Value::Object(obj) = v else {
        return Err((at.to_string(), "must be an object with a model"));
    };
    let model = obj.get("model").and_then(Value::as_str);
    let pricing = match model {
        Some("per_unit") => {
            only(obj, &["model", "unit_price"], at)?;
            OveragePricing::PerUnit {
                unit_price: price(obj, "unit_price", at)?,
            }
        }
        Some("graduated") => {
            only(obj, &["model", "tiers"], at)?;
            OveragePricing::Graduated {
                tiers: tiers(obj, at)?,
            }
        }
        Some("volume") => {
            only(obj, &["model", "tiers"], at)?;
            OveragePricing::Volume {
                tiers: tiers(obj, at)?,
            }
        }
        Some("package") => {
            only(obj, &["model", "package_size", "package_price"], at)?;
            let size = obj
                .get("package_size")
                .ok_or((format!("{at}.package_size"), "is required"))?;
            OveragePricing::Package {
                package_size: whole(size, format!("{at}.package_size"))?,
                package_price: price(obj, "package_price", at)?,
            }
        }
        _ => {
            return Err((
                format!("{at}.model"),
                "must be one of per_unit, graduated, volume, package",
            ))
        }
    };
    pricing
        .validate()
        .map_err(|e| (format!("{at}.{}", e.field), e.reason))?;
    Ok(pricing)
}

/// Checks every metric's pricing of a plan write; `null` (on an update) puts the metric back on
/// the catalogue rate. Metrics outside `known` are refused.
pub fn check_overage_pricing(
    given: &BTreeMap<String, Value>,
    known: &[String],
    checks: &mut Checks,
) -> BTreeMap<String, Option<OveragePricing>> {
    let mut out = BTreeMap::new();
    for (metric, v) in given {
        let at = format!("overage_pricing.{metric}");
        if !known.contains(metric) {
            checks.push(&at, "is not a known metric");
            continue;
        }
        if v.is_null() {
            out.insert(metric.clone(), None);
            continue;
        }
        match parse_pricing(v, &at) {
            Ok(p) => {
                out.insert(metric.clone(), Some(p));
            }
            Err((field, issue)) => checks.push(&field, issue),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(v: Value) -> String {
        parse_pricing(&v, "p").unwrap_err().0
    }

    #[test]
    fn prices_are_read_exactly_and_problems_name_their_field() {
        let p = parse_pricing(
            &json!({"model": "graduated", "tiers": [
                {"up_to": 1000, "unit_price": 0.001},
                {"up_to": null, "unit_price": "0.0005", "flat_fee": 2}
            ]}),
            "p",
        )
        .unwrap();
        let OveragePricing::Graduated { tiers } = p else {
            panic!("graduated")
        };
        assert_eq!(tiers[0].unit_price.to_string(), "0.001");
        assert_eq!(tiers[1].flat_fee.unwrap().to_string(), "2");
        assert_eq!(field(json!({"model": "tiered"})), "p.model");
        assert_eq!(field(json!({"model": "per_unit"})), "p.unit_price");
        assert_eq!(
            field(json!({"model": "per_unit", "unit_price": 1, "x": 1})),
            "p.x"
        );
        assert_eq!(
            field(json!({"model": "volume", "tiers": [{"up_to": 5, "unit_price": 1}]})),
            "p.tiers[0].up_to"
        );
        assert_eq!(
            field(json!({"model": "volume", "tiers": [{"up_to": 0, "unit_price": 1}]})),
            "p.tiers[0].up_to"
        );
        assert_eq!(
            field(json!({"model": "package", "package_size": 0, "package_price": 1})),
            "p.package_size"
        );
        assert_eq!(
            field(json!({"model": "package", "package_size": 10, "package_price": "-1"})),
            "p.package_price"
        );
        assert_eq!(field(json!([1])), "p");
    }
}
