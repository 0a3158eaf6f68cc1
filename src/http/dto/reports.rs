//! `/reports/*`: the platform reports on the wire; every amount rounded once and written as a
//! string with 2 decimals, ratios with 4.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::billing::money::{money_string, round_money};
use crate::http::openapi::components::{DecimalSchema, MoneySchema};
use crate::services::reports::{Figures, Revenue, SubscriptionBook};

fn money(v: Decimal) -> String {
    money_string(round_money(v))
}

/// Invoiced, collected, refunded and outstanding amounts.
#[derive(Serialize, ToSchema)]
#[schema(as = Figures)]
pub struct FiguresBody {
    #[schema(value_type = MoneySchema)]
    pub invoiced: String,
    #[schema(value_type = MoneySchema)]
    pub collected: String,
    #[schema(value_type = MoneySchema)]
    pub refunded: String,
    #[schema(value_type = MoneySchema)]
    pub outstanding: String,
}

impl From<&Figures> for FiguresBody {
    fn from(f: &Figures) -> Self {
        FiguresBody {
            invoiced: money(f.invoiced),
            collected: money(f.collected),
            refunded: money(f.refunded),
            outstanding: money(f.outstanding),
        }
    }
}

/// One month of the range, in USD.
#[derive(Serialize, ToSchema)]
pub struct MonthFigures {
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    #[serde(flatten)]
    pub figures: FiguresBody,
}

fn figures_map(m: &BTreeMap<String, Figures>) -> BTreeMap<String, FiguresBody> {
    m.iter().map(|(k, f)| (k.clone(), f.into())).collect()
}

/// Revenue over `[start_date, end_date]`: invoices by issue date, payments by paid time and
/// refunds by creation time (UTC).
#[derive(Serialize, ToSchema)]
pub struct RevenueReport {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// Native amounts per currency: USD and YER always, others when they had activity.
    pub by_currency: BTreeMap<String, FiguresBody>,
    /// Everything in USD, each amount at its invoice's stored rate.
    pub total_usd: FiguresBody,
    /// Keyed by the plan each invoice was issued for (its plan_id; `none` for invoices without
    /// one), not the subscription's current plan. Payments and refunds follow their invoice.
    pub by_plan: BTreeMap<String, FiguresBody>,
    /// Collected in USD per payment method (every method present).
    #[schema(value_type = BTreeMap<String, MoneySchema>)]
    pub by_method: BTreeMap<String, String>,
    /// Every month of the range, in USD.
    pub by_month: Vec<MonthFigures>,
}

impl From<&Revenue> for RevenueReport {
    fn from(r: &Revenue) -> Self {
        RevenueReport {
            start_date: r.start,
            end_date: r.end,
            by_currency: figures_map(&r.by_currency),
            total_usd: (&r.total_usd).into(),
            by_plan: figures_map(&r.by_plan),
            by_method: r
                .by_method
                .iter()
                .map(|(k, v)| (k.clone(), money(*v)))
                .collect(),
            by_month: r
                .by_month
                .iter()
                .map(|(month, f)| MonthFigures {
                    month: month.clone(),
                    figures: f.into(),
                })
                .collect(),
        }
    }
}

/// The subscription book now; the 30-day window is the last 30 days.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionReport {
    pub total_subscriptions: i64,
    pub total_tenants: i64,
    /// Every status, with 0 for none.
    pub by_status: BTreeMap<String, i64>,
    /// Live (not canceled) subscriptions per plan.
    pub by_plan: BTreeMap<String, i64>,
    /// Paying (active and past_due) subscriptions, per month.
    #[schema(value_type = MoneySchema)]
    pub mrr_usd: String,
    #[schema(value_type = MoneySchema)]
    pub arr_usd: String,
    #[schema(value_type = MoneySchema)]
    pub mrr_yer: String,
    #[schema(value_type = MoneySchema)]
    pub arr_yer: String,
    /// The YER rate the YER figures use (today's).
    #[schema(value_type = DecimalSchema)]
    pub yer_exchange_rate: String,
    pub new_30d: i64,
    pub churned_30d: i64,
    pub reactivated_30d: i64,
    /// A ratio with 4 decimals.
    #[schema(value_type = DecimalSchema)]
    pub churn_rate_30d: String,
    /// A ratio with 4 decimals.
    #[schema(value_type = DecimalSchema)]
    pub trial_conversion_rate_30d: String,
}

impl From<&SubscriptionBook> for SubscriptionReport {
    fn from(b: &SubscriptionBook) -> Self {
        let twelve = Decimal::from(12);
        SubscriptionReport {
            total_subscriptions: b.total_subscriptions,
            total_tenants: b.total_tenants,
            by_status: b
                .by_status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            by_plan: b.by_plan.clone(),
            mrr_usd: money_string(b.mrr_usd),
            arr_usd: money_string(b.mrr_usd * twelve),
            mrr_yer: money_string(b.mrr_yer),
            arr_yer: money_string(b.mrr_yer * twelve),
            yer_exchange_rate: crate::services::rates::rate_text(b.yer_rate),
            new_30d: b.new_30d,
            churned_30d: b.churned_30d,
            reactivated_30d: b.reactivated_30d,
            churn_rate_30d: b.churn_rate_30d.to_string(),
            trial_conversion_rate_30d: b.trial_conversion_rate_30d.to_string(),
        }
    }
}
