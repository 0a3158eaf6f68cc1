//! `/plans`: the catalogue on the wire (the Python service's field names, money as strings).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::billing::money::{decimal_text, money_string, round_money, Price};
use crate::billing::pricing::OveragePricing;
use crate::billing::types::{OveragePolicy, PlanTier};
use crate::http::dto::number::WholeNumber;
use crate::http::dto::plan_schemas::{
    features_schema, limits_schema, nullable_features_schema, nullable_limits_schema,
};
use crate::http::dto::pricing_schemas::{
    overage_pricing_input_schema, overage_pricing_schema, overage_pricing_update_schema,
};
use crate::http::openapi::components::{
    DecimalSchema, MoneySchema, OveragePolicySchema, PlanIdSchema, PlanTierSchema, PriceInputSchema,
};
use crate::repository::plans::Plan;
use crate::services::plans::{PlanEdit, PlanInput, PricedPlan};

#[derive(Serialize, ToSchema)]
pub struct PlanPricing {
    #[schema(value_type = MoneySchema)]
    pub monthly_usd: String,
    #[schema(value_type = MoneySchema)]
    pub quarterly_usd: String,
    #[schema(value_type = MoneySchema)]
    pub yearly_usd: String,
    #[schema(value_type = MoneySchema)]
    pub monthly_yer: String,
    #[schema(value_type = MoneySchema)]
    pub quarterly_yer: String,
    #[schema(value_type = MoneySchema)]
    pub yearly_yer: String,
}

/// A plan with its prices in USD and, at today's rate, in YER.
#[derive(Serialize, ToSchema)]
#[schema(as = Plan)]
pub struct PlanBody {
    #[schema(value_type = PlanIdSchema)]
    pub plan_id: String,
    pub name: String,
    pub name_ar: String,
    pub description: String,
    pub description_ar: String,
    #[schema(value_type = PlanTierSchema)]
    pub tier: PlanTier,
    pub pricing: PlanPricing,
    /// metric → limit; -1 = unlimited.
    pub limits: BTreeMap<String, i64>,
    /// Bilingual feature list: `[{key, name, name_ar, included, limit}]` (or an object).
    #[schema(schema_with = features_schema)]
    pub features: Value,
    pub trial_days: i32,
    #[schema(value_type = OveragePolicySchema)]
    pub overage: OveragePolicy,
    #[schema(schema_with = overage_pricing_schema)]
    pub overage_pricing: BTreeMap<String, OveragePricing>,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn yer(usd: Decimal, rate: Decimal) -> String {
    money_string(round_money(usd * rate))
}

impl PlanBody {
    pub fn new(plan: &Plan, rate: Decimal) -> Self {
        let r = &plan.row;
        PlanBody {
            plan_id: r.plan_id.clone(),
            name: r.name.clone(),
            name_ar: r.name_ar.clone(),
            description: r.description.clone(),
            description_ar: r.description_ar.clone(),
            tier: r.tier,
            pricing: PlanPricing {
                monthly_usd: money_string(r.monthly_price_usd),
                quarterly_usd: money_string(r.quarterly_price_usd),
                yearly_usd: money_string(r.yearly_price_usd),
                monthly_yer: yer(r.monthly_price_usd, rate),
                quarterly_yer: yer(r.quarterly_price_usd, rate),
                yearly_yer: yer(r.yearly_price_usd, rate),
            },
            limits: plan.limits.clone(),
            features: r.features.clone(),
            trial_days: r.trial_days,
            overage: r.overage,
            overage_pricing: plan.overage_pricing.clone(),
            is_active: r.is_active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub plans: Vec<PlanBody>,
    pub total: i64,
    pub has_more: bool,
}

/// The plan's prices in YER at today's rate.
#[derive(Serialize, ToSchema)]
pub struct PricingYer {
    #[schema(value_type = MoneySchema)]
    pub monthly: String,
    #[schema(value_type = MoneySchema)]
    pub quarterly: String,
    #[schema(value_type = MoneySchema)]
    pub yearly: String,
    #[schema(value_type = DecimalSchema)]
    pub exchange_rate: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlanWithYer {
    pub plan: PlanBody,
    pub pricing_yer: PricingYer,
}

impl From<PricedPlan> for PlanWithYer {
    fn from(p: PricedPlan) -> Self {
        let row = &p.plan.row;
        let pricing_yer = PricingYer {
            monthly: yer(row.monthly_price_usd, p.yer_rate),
            quarterly: yer(row.quarterly_price_usd, p.yer_rate),
            yearly: yer(row.yearly_price_usd, p.yer_rate),
            exchange_rate: decimal_text(p.yer_rate),
        };
        PlanWithYer {
            plan: PlanBody::new(&p.plan, p.yer_rate),
            pricing_yer,
        }
    }
}

/// The answer of a plan write: `archived` only on DELETE.
#[derive(Serialize, ToSchema)]
pub struct PlanChanged {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    pub plan: PlanBody,
}

impl PlanChanged {
    pub fn new(p: &PricedPlan, archived: Option<bool>) -> Self {
        PlanChanged {
            success: true,
            archived,
            plan: PlanBody::new(&p.plan, p.yer_rate),
        }
    }
}

fn whole_limits(limits: BTreeMap<String, WholeNumber>) -> BTreeMap<String, i64> {
    limits.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// Out of `i32` is out of 0..=365 too: the service's range check names the field.
fn trial_days(w: WholeNumber) -> i32 {
    w.to_i32().unwrap_or(i32::MAX)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanRequest {
    /// Required here; the server also derives it from `name` (lowercase, `_` for spaces) when
    /// that makes a valid id.
    #[schema(value_type = PlanIdSchema, required = true)]
    pub plan_id: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name_ar: String,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub description: String,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub description_ar: String,
    #[schema(value_type = PlanTierSchema)]
    pub tier: PlanTier,
    #[schema(value_type = PriceInputSchema)]
    pub monthly_price_usd: Price,
    /// Default 2.7 × monthly.
    #[schema(value_type = Option<PriceInputSchema>)]
    pub quarterly_price_usd: Option<Price>,
    /// Default 10 × monthly.
    #[schema(value_type = Option<PriceInputSchema>)]
    pub yearly_price_usd: Option<Price>,
    #[serde(default)]
    #[schema(schema_with = nullable_features_schema)]
    pub features: Option<Value>,
    #[serde(default)]
    #[schema(schema_with = limits_schema)]
    pub limits: BTreeMap<String, WholeNumber>,
    /// Default 14.
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 365)]
    pub trial_days: Option<WholeNumber>,
    /// Default billed.
    #[schema(value_type = Option<OveragePolicySchema>)]
    pub overage: Option<OveragePolicy>,
    #[serde(default)]
    #[schema(schema_with = overage_pricing_input_schema)]
    pub overage_pricing: BTreeMap<String, Value>,
}

impl From<CreatePlanRequest> for PlanInput {
    fn from(r: CreatePlanRequest) -> Self {
        PlanInput {
            plan_id: r.plan_id,
            name: r.name,
            name_ar: r.name_ar,
            description: r.description,
            description_ar: r.description_ar,
            tier: r.tier,
            monthly_price_usd: r.monthly_price_usd,
            quarterly_price_usd: r.quarterly_price_usd,
            yearly_price_usd: r.yearly_price_usd,
            features: r.features,
            limits: whole_limits(r.limits),
            trial_days: r.trial_days.map(trial_days),
            overage: r.overage,
            overage_pricing: r.overage_pricing,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlanRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name_ar: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub description: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub description_ar: Option<String>,
    #[schema(value_type = Option<PriceInputSchema>)]
    pub monthly_price_usd: Option<Price>,
    #[schema(value_type = Option<PriceInputSchema>)]
    pub quarterly_price_usd: Option<Price>,
    #[schema(value_type = Option<PriceInputSchema>)]
    pub yearly_price_usd: Option<Price>,
    #[schema(schema_with = nullable_features_schema)]
    pub features: Option<Value>,
    #[schema(schema_with = nullable_limits_schema)]
    pub limits: Option<BTreeMap<String, WholeNumber>>,
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 365)]
    pub trial_days: Option<WholeNumber>,
    #[schema(value_type = Option<OveragePolicySchema>)]
    pub overage: Option<OveragePolicy>,
    #[schema(schema_with = overage_pricing_update_schema)]
    pub overage_pricing: Option<BTreeMap<String, Value>>,
    pub is_active: Option<bool>,
}

impl From<UpdatePlanRequest> for PlanEdit {
    fn from(r: UpdatePlanRequest) -> Self {
        PlanEdit {
            name: r.name,
            name_ar: r.name_ar,
            description: r.description,
            description_ar: r.description_ar,
            monthly_price_usd: r.monthly_price_usd,
            quarterly_price_usd: r.quarterly_price_usd,
            yearly_price_usd: r.yearly_price_usd,
            features: r.features,
            limits: r.limits.map(whole_limits),
            trial_days: r.trial_days.map(trial_days),
            overage: r.overage,
            overage_pricing: r.overage_pricing,
            is_active: r.is_active,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::plans::PlanRow;

    #[test]
    fn text_fields_use_the_shared_text_pattern() {
        let doc = crate::http::openapi::spec();
        let create = &doc["components"]["schemas"]["CreatePlanRequest"]["properties"];
        let update = &doc["components"]["schemas"]["UpdatePlanRequest"]["properties"];
        for f in ["name", "name_ar", "description", "description_ar"] {
            assert_eq!(
                create[f]["pattern"],
                crate::http::openapi::components::TEXT_PATTERN
            );
            assert!(
                update[f]["pattern"].is_string() || update[f]["oneOf"].is_array(),
                "{f}"
            );
        }
    }

    /// The audit log records plans in the shape of this answer (`services::plans::plan_json`).
    #[test]
    fn the_wire_plan_is_the_audited_plan() {
        let plan = Plan {
            row: PlanRow {
                plan_id: "p".into(),
                name: "P".into(),
                name_ar: "ب".into(),
                description: "d".into(),
                description_ar: "د".into(),
                tier: PlanTier::Starter,
                monthly_price_usd: Decimal::new(2900, 2),
                quarterly_price_usd: Decimal::new(7900, 2),
                yearly_price_usd: Decimal::new(29000, 2),
                trial_days: 14,
                overage: OveragePolicy::Billed,
                features: serde_json::json!([]),
                is_active: true,
                sort_order: 0,
                created_at: Utc::now(),
                updated_at: Utc::now(),
            },
            limits: BTreeMap::from([("fields".to_string(), 10)]),
            overage_pricing: BTreeMap::new(),
        };
        let rate = Decimal::new(250, 0);
        assert_eq!(
            serde_json::to_value(PlanBody::new(&plan, rate)).unwrap(),
            crate::services::plans::plan_json(&plan, rate)
        );
    }
}
