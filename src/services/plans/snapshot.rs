//! A plan as the audit log records it before and after a change: the API shape (the Python
//! field names, money as strings), so an entry reads like the answer the caller saw.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::billing::money::{as_string, round_money};
use crate::billing::types::{OveragePolicy, PlanTier};
use crate::repository::plans::Plan;

#[derive(Serialize)]
struct PlanSnapshot<'a> {
    plan_id: &'a str,
    name: &'a str,
    name_ar: &'a str,
    description: &'a str,
    description_ar: &'a str,
    tier: PlanTier,
    pricing: Pricing,
    limits: &'a BTreeMap<String, i64>,
    features: &'a Value,
    trial_days: i32,
    overage: OveragePolicy,
    overage_pricing: &'a BTreeMap<String, crate::billing::pricing::OveragePricing>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The three prices in USD and in YER at the day's rate, each rounded once.
#[derive(Serialize)]
struct Pricing {
    #[serde(with = "as_string")]
    monthly_usd: Decimal,
    #[serde(with = "as_string")]
    quarterly_usd: Decimal,
    #[serde(with = "as_string")]
    yearly_usd: Decimal,
    #[serde(with = "as_string")]
    monthly_yer: Decimal,
    #[serde(with = "as_string")]
    quarterly_yer: Decimal,
    #[serde(with = "as_string")]
    yearly_yer: Decimal,
}

/// The plan in the API shape at `yer_rate`, as the audit log stores it.
pub fn plan_json(plan: &Plan, yer_rate: Decimal) -> Value {
    let r = &plan.row;
    let yer = |usd: Decimal| round_money(usd * yer_rate);
    let snapshot = PlanSnapshot {
        plan_id: &r.plan_id,
        name: &r.name,
        name_ar: &r.name_ar,
        description: &r.description,
        description_ar: &r.description_ar,
        tier: r.tier,
        pricing: Pricing {
            monthly_usd: r.monthly_price_usd,
            quarterly_usd: r.quarterly_price_usd,
            yearly_usd: r.yearly_price_usd,
            monthly_yer: yer(r.monthly_price_usd),
            quarterly_yer: yer(r.quarterly_price_usd),
            yearly_yer: yer(r.yearly_price_usd),
        },
        limits: &plan.limits,
        features: &r.features,
        trial_days: r.trial_days,
        overage: r.overage,
        overage_pricing: &plan.overage_pricing,
        is_active: r.is_active,
        created_at: r.created_at,
        updated_at: r.updated_at,
    };
    serde_json::to_value(snapshot).unwrap_or(Value::Null)
}
