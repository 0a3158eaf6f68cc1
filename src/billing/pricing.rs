//! Overage pricing models (SPEC section 10): the units above a plan's included limit, priced
//! per unit, through graduated or volume tiers, or per started package.
//!
//! Pure: [`OveragePricing::lines`] gives the lines an invoice prints for a number of overage
//! units, each with `amount == line_amount(quantity, unit_price)`, so the total is the sum of
//! what the page shows and every amount is rounded once. Tier boundaries count overage units:
//! the first unit above the limit is unit 1, and a tier `up_to: 1000` holds units 1–1000.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{line_amount, round_unit_price};

/// The most decimals a price may carry (amounts have 2; unit prices up to 6).
pub const PRICE_DECIMALS: u32 = 6;

/// How a plan prices one metric's overage; stored in `plans.overage_pricing` by metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum OveragePricing {
    /// Every unit at one price.
    PerUnit { unit_price: Decimal },
    /// Each unit at the price of the tier it falls in.
    Graduated { tiers: Vec<Tier> },
    /// All units at the price of the tier the total falls in, plus that tier's flat fee.
    Volume { tiers: Vec<Tier> },
    /// A price per started package of `package_size` units.
    Package {
        package_size: u64,
        package_price: Decimal,
    },
}

/// One tier: the units up to and including `up_to` (`None`: no upper end, the last tier).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub up_to: Option<u64>,
    pub unit_price: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_fee: Option<Decimal>,
}

/// What a priced line stands for, so the invoice can describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinePart {
    /// All units at one price (`per_unit`).
    Units,
    /// The units of tier `index` (0-based), which spans units `from..=up_to`.
    Tier {
        index: usize,
        from: u64,
        up_to: Option<u64>,
    },
    /// The flat fee of tier `index` (quantity 1).
    FlatFee { index: usize },
    /// Started packages of `size` units.
    Packages { size: u64 },
}

/// A line of overage: `amount == line_amount(quantity, unit_price)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLine {
    pub part: LinePart,
    pub quantity: u64,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

/// Why a pricing is refused: the field (relative to the metric's pricing object) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidPricing {
    pub field: String,
    pub reason: &'static str,
}

fn invalid(field: impl Into<String>, reason: &'static str) -> InvalidPricing {
    InvalidPricing {
        field: field.into(),
        reason,
    }
}

fn check_price(field: String, price: Decimal) -> Result<(), InvalidPricing> {
    if price.is_sign_negative() && !price.is_zero() {
        return Err(invalid(field, "must not be negative"));
    }
    if price.normalize().scale() > PRICE_DECIMALS {
        return Err(invalid(field, "must have at most 6 decimals"));
    }
    if price.trunc() > Decimal::from(999_999_999_999i64) {
        return Err(invalid(
            field,
            "must have at most 12 digits before the decimal point",
        ));
    }
    Ok(())
}

fn check_tiers(tiers: &[Tier]) -> Result<(), InvalidPricing> {
    if tiers.is_empty() {
        return Err(invalid("tiers", "must hold at least one tier"));
    }
    let mut below = 0u64;
    for (i, tier) in tiers.iter().enumerate() {
        let last = i + 1 == tiers.len();
        match tier.up_to {
            None if !last => {
                return Err(invalid(
                    format!("tiers[{i}].up_to"),
                    "only the last tier may be open (null)",
                ))
            }
            Some(_) if last => {
                return Err(invalid(
                    format!("tiers[{i}].up_to"),
                    "the last tier must be open (null)",
                ))
            }
            Some(up_to) if up_to <= below => {
                return Err(invalid(
                    format!("tiers[{i}].up_to"),
                    "tiers must be in ascending order of up_to, starting above 0",
                ))
            }
            Some(up_to) => below = up_to,
            None => {}
        }
        check_price(format!("tiers[{i}].unit_price"), tier.unit_price)?;
        if let Some(fee) = tier.flat_fee {
            check_price(format!("tiers[{i}].flat_fee"), fee)?;
        }
    }
    Ok(())
}

impl OveragePricing {
    /// The default pricing: every unit at the catalogue's overage rate.
    pub fn per_unit(unit_price: Decimal) -> Self {
        OveragePricing::PerUnit { unit_price }
    }

    /// The model's name as the API writes it.
    pub fn model(&self) -> &'static str {
        match self {
            OveragePricing::PerUnit { .. } => "per_unit",
            OveragePricing::Graduated { .. } => "graduated",
            OveragePricing::Volume { .. } => "volume",
            OveragePricing::Package { .. } => "package",
        }
    }

    /// Refuses tiers that are not ascending, without an open last tier or with an open tier
    /// before the last, negative prices, prices with more than 6 decimals, and empty packages.
    pub fn validate(&self) -> Result<(), InvalidPricing> {
        match self {
            OveragePricing::PerUnit { unit_price } => {
                check_price("unit_price".to_string(), *unit_price)
            }
            OveragePricing::Graduated { tiers } | OveragePricing::Volume { tiers } => {
                check_tiers(tiers)
            }
            OveragePricing::Package {
                package_size,
                package_price,
            } => {
                if *package_size == 0 {
                    return Err(invalid("package_size", "must be at least 1"));
                }
                check_price("package_price".to_string(), *package_price)
            }
        }
    }

    /// The same pricing with every price multiplied by `rate` (units of the invoice currency
    /// per USD) and kept at [`PRICE_DECIMALS`], as overage rates are converted today.
    pub fn converted(&self, rate: Decimal) -> Self {
        let p = |price: Decimal| round_unit_price(price * rate);
        let tiers = |tiers: &[Tier]| {
            tiers
                .iter()
                .map(|t| Tier {
                    up_to: t.up_to,
                    unit_price: p(t.unit_price),
                    flat_fee: t.flat_fee.map(p),
                })
                .collect()
        };
        match self {
            OveragePricing::PerUnit { unit_price } => OveragePricing::PerUnit {
                unit_price: p(*unit_price),
            },
            OveragePricing::Graduated { tiers: t } => OveragePricing::Graduated { tiers: tiers(t) },
            OveragePricing::Volume { tiers: t } => OveragePricing::Volume { tiers: tiers(t) },
            OveragePricing::Package {
                package_size,
                package_price,
            } => OveragePricing::Package {
                package_size: *package_size,
                package_price: p(*package_price),
            },
        }
    }

    /// The lines for `units` overage units (none for 0 units). Expects a validated pricing.
    pub fn lines(&self, units: u64) -> Vec<PricedLine> {
        if units == 0 {
            return vec![];
        }
        match self {
            OveragePricing::PerUnit { unit_price } => {
                vec![line(LinePart::Units, units, *unit_price)]
            }
            OveragePricing::Graduated { tiers } => graduated(tiers, units),
            OveragePricing::Volume { tiers } => volume(tiers, units),
            OveragePricing::Package {
                package_size,
                package_price,
            } => {
                let size = (*package_size).max(1);
                let packages = units.div_ceil(size);
                vec![line(LinePart::Packages { size }, packages, *package_price)]
            }
        }
    }

    /// The amount for `units`: the sum of [`lines`](Self::lines), no further rounding.
    pub fn amount(&self, units: u64) -> Decimal {
        total(&self.lines(units))
    }
}

/// The sum of lines' amounts (each already rounded once).
pub fn total(lines: &[PricedLine]) -> Decimal {
    let mut sum = Decimal::new(0, 2);
    for l in lines {
        sum += l.amount;
    }
    sum
}

fn line(part: LinePart, quantity: u64, unit_price: Decimal) -> PricedLine {
    PricedLine {
        part,
        quantity,
        unit_price,
        amount: line_amount(Decimal::from(quantity), unit_price),
    }
}

fn flat_fee(index: usize, tier: &Tier) -> Option<PricedLine> {
    tier.flat_fee
        .filter(|fee| !fee.is_zero())
        .map(|fee| line(LinePart::FlatFee { index }, 1, fee))
}

fn graduated(tiers: &[Tier], units: u64) -> Vec<PricedLine> {
    let mut out = vec![];
    let mut below = 0u64;
    for (index, tier) in tiers.iter().enumerate() {
        if units <= below {
            break;
        }
        let top = tier.up_to.map_or(units, |u| u.min(units));
        let part = LinePart::Tier {
            index,
            from: below + 1,
            up_to: tier.up_to,
        };
        out.push(line(part, top - below, tier.unit_price));
        out.extend(flat_fee(index, tier));
        below = tier.up_to.unwrap_or(u64::MAX);
    }
    out
}

fn volume(tiers: &[Tier], units: u64) -> Vec<PricedLine> {
    let mut below = 0u64;
    for (index, tier) in tiers.iter().enumerate() {
        let last = index + 1 == tiers.len();
        if last || tier.up_to.is_some_and(|u| units <= u) {
            let part = LinePart::Tier {
                index,
                from: below + 1,
                up_to: tier.up_to,
            };
            let mut out = vec![line(part, units, tier.unit_price)];
            out.extend(flat_fee(index, tier));
            return out;
        }
        below = tier.up_to.unwrap_or(below);
    }
    vec![]
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
