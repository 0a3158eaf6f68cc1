//! Plan catalogue use cases.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgConnection;

use crate::billing::money::{round_money, Price};
use crate::billing::types::{is_slug, Currency, OveragePolicy, PlanTier};
use crate::error::{AppError, FieldIssue};
use crate::repository::overage_pricing::OveragePricingRepository;
use crate::repository::plans::{NewPlan, Plan, PlanChanges, PlanRepository};
use crate::repository::rates::RateRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::validate::{check_len, Checks};

mod features;
pub mod pricing_input;
mod snapshot;

use features::check_features;
use pricing_input::check_overage_pricing;
/// Also the `plan` of the subscription read until that resource has its own DTO.
pub use snapshot::plan_json;

/// What can go wrong with a plan use case (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("plan not found")]
    NotFound,
    #[error("plan {0} already exists")]
    AlreadyExists(String),
    #[error("invalid plan")]
    Invalid(Vec<FieldIssue>),
    /// Limits name metrics outside the catalogue (and nothing else is wrong).
    #[error("unknown metric in limits: {}", .metrics.join(", "))]
    UnknownMetrics {
        metrics: Vec<String>,
        fields: Vec<FieldIssue>,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The audit log still answers in the boundary's error type.
    #[error(transparent)]
    Audit(#[from] AppError),
}

pub type PlanResult<T> = Result<T, PlanError>;

/// A plan and the YER rate of the day its prices are shown at.
pub struct PricedPlan {
    pub plan: Plan,
    pub yer_rate: Decimal,
}

/// A page of the catalogue.
pub struct PlanPage {
    pub plans: Vec<Plan>,
    pub yer_rate: Decimal,
    pub total: i64,
    pub has_more: bool,
}

/// A new plan as given (checked by [`create_plan`]).
pub struct PlanInput {
    pub plan_id: Option<String>,
    pub name: String,
    pub name_ar: String,
    pub description: String,
    pub description_ar: String,
    pub tier: PlanTier,
    pub monthly_price_usd: Price,
    pub quarterly_price_usd: Option<Price>,
    pub yearly_price_usd: Option<Price>,
    pub features: Option<Value>,
    pub limits: BTreeMap<String, i64>,
    pub trial_days: Option<i32>,
    pub overage: Option<OveragePolicy>,
    /// metric → pricing object as given (checked by `pricing_input`).
    pub overage_pricing: BTreeMap<String, Value>,
}

/// The fields a plan update changes (`None`: kept).
pub struct PlanEdit {
    pub name: Option<String>,
    pub name_ar: Option<String>,
    pub description: Option<String>,
    pub description_ar: Option<String>,
    pub monthly_price_usd: Option<Price>,
    pub quarterly_price_usd: Option<Price>,
    pub yearly_price_usd: Option<Price>,
    pub features: Option<Value>,
    pub limits: Option<BTreeMap<String, i64>>,
    pub trial_days: Option<i32>,
    pub overage: Option<OveragePolicy>,
    /// metric → pricing object, or null to go back to the catalogue rate.
    pub overage_pricing: Option<BTreeMap<String, Value>>,
    pub is_active: Option<bool>,
}

pub async fn yer_rate(conn: &mut PgConnection, today: chrono::NaiveDate) -> sqlx::Result<Decimal> {
    RateRepository::rate_on(conn, Currency::Yer, today).await
}

/// The metrics of the catalogue.
async fn metric_names(conn: &mut PgConnection) -> PlanResult<Vec<String>> {
    Ok(PlanRepository::metrics(conn)
        .await?
        .into_iter()
        .map(|m| m.metric)
        .collect())
}

/// Checks each limit; returns the metrics it names that are not in the catalogue.
async fn check_limits(
    conn: &mut PgConnection,
    limits: &BTreeMap<String, i64>,
    checks: &mut Checks,
) -> PlanResult<Vec<String>> {
    let known = metric_names(conn).await?;
    let mut unknown = Vec::new();
    for (metric, value) in limits {
        if !known.contains(metric) {
            checks.push(&format!("limits.{metric}"), "is not a known metric");
            unknown.push(metric.clone());
        } else if *value < -1 {
            checks.push(
                &format!("limits.{metric}"),
                "must be -1 (unlimited) or a limit of 0 or more",
            );
        }
    }
    Ok(unknown)
}

/// Ends the input checks of a plan write. When the only problems are limits naming metrics
/// that do not exist, the answer is 422 `unknown_metric` (SPEC section 4) with the same
/// `fields` list; with other problems as well, `validation_error` lists them all.
fn finish_checks(checks: Checks, unknown: Vec<String>) -> PlanResult<()> {
    let fields = checks.into_issues();
    if fields.is_empty() {
        Ok(())
    } else if !unknown.is_empty() && fields.len() == unknown.len() {
        Err(PlanError::UnknownMetrics {
            metrics: unknown,
            fields,
        })
    } else {
        Err(PlanError::Invalid(fields))
    }
}

/// The catalogue, a keyset page of it.
pub async fn list_plans(
    conn: &mut PgConnection,
    active_only: bool,
    page: &crate::pagination::PageRequest,
    today: chrono::NaiveDate,
) -> PlanResult<PlanPage> {
    let page = PlanRepository::list(
        conn,
        active_only,
        page.limit,
        page.starting_after.as_deref(),
    )
    .await?;
    let yer_rate = yer_rate(conn, today).await?;
    Ok(PlanPage {
        plans: page.items,
        yer_rate,
        total: page.total,
        has_more: page.has_more,
    })
}

pub async fn get_plan(
    conn: &mut PgConnection,
    plan_id: &str,
    today: chrono::NaiveDate,
) -> PlanResult<PricedPlan> {
    let plan = PlanRepository::get(conn, plan_id)
        .await?
        .ok_or(PlanError::NotFound)?;
    let yer_rate = yer_rate(conn, today).await?;
    Ok(PricedPlan { plan, yer_rate })
}

/// Creates a plan, or [`PlanError::AlreadyExists`].
pub async fn create_plan(
    conn: &mut PgConnection,
    req: PlanInput,
    today: chrono::NaiveDate,
    actor: &Actor,
) -> PlanResult<PricedPlan> {
    let mut checks = Checks::default();
    check_len(&mut checks, "name", &req.name, 200);
    check_len(&mut checks, "name_ar", &req.name_ar, 200);
    check_len(&mut checks, "description", &req.description, 1000);
    check_len(&mut checks, "description_ar", &req.description_ar, 1000);
    let plan_id = match &req.plan_id {
        Some(id) => id.clone(),
        None => req.name.trim().to_lowercase().replace(' ', "_"),
    };
    if !is_slug(&plan_id) {
        checks.push(
            "plan_id",
            "must match [a-z][a-z0-9_]{0,99} (give plan_id when the name does not make one)",
        );
    }
    let trial_days = req.trial_days.unwrap_or(14);
    if !(0..=365).contains(&trial_days) {
        checks.push("trial_days", "must be from 0 to 365");
    }
    if let Some(f) = &req.features {
        check_features(f, &mut checks);
    }
    let unknown = check_limits(conn, &req.limits, &mut checks).await?;
    let known = metric_names(conn).await?;
    let pricing = check_overage_pricing(&req.overage_pricing, &known, &mut checks);
    finish_checks(checks, unknown)?;

    let monthly = req.monthly_price_usd.value();
    // Defaults: a quarter at 2.7 months, a year at 10 months, each rounded once.
    let quarterly = req
        .quarterly_price_usd
        .map(Price::value)
        .unwrap_or_else(|| round_money(monthly * Decimal::new(27, 1)));
    let yearly = req
        .yearly_price_usd
        .map(Price::value)
        .unwrap_or_else(|| round_money(monthly * Decimal::from(10)));
    let features = req
        .features
        .clone()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let created = PlanRepository::create(
        conn,
        &NewPlan {
            plan_id: &plan_id,
            name: req.name.trim(),
            name_ar: req.name_ar.trim(),
            description: req.description.trim(),
            description_ar: req.description_ar.trim(),
            tier: req.tier,
            monthly,
            quarterly,
            yearly,
            trial_days,
            overage: req.overage.unwrap_or(OveragePolicy::Billed),
            features: &features,
        },
    )
    .await?;
    if !created {
        return Err(PlanError::AlreadyExists(plan_id));
    }
    PlanRepository::set_limits(conn, &plan_id, &req.limits).await?;
    OveragePricingRepository::set(conn, &plan_id, &pricing).await?;
    let priced = get_plan(conn, &plan_id, today).await?;
    let body = plan_json(&priced.plan, priced.yer_rate);
    audit_plan(conn, actor, "plan.create", &plan_id, None, Some(body)).await?;
    Ok(priced)
}

pub async fn update_plan(
    conn: &mut PgConnection,
    plan_id: &str,
    req: PlanEdit,
    today: chrono::NaiveDate,
    actor: &Actor,
) -> PlanResult<PricedPlan> {
    let mut checks = Checks::default();
    for (field, value, max) in [
        ("name", &req.name, 200),
        ("name_ar", &req.name_ar, 200),
        ("description", &req.description, 1000),
        ("description_ar", &req.description_ar, 1000),
    ] {
        if let Some(v) = value {
            check_len(&mut checks, field, v, max);
        }
    }
    if let Some(t) = req.trial_days {
        if !(0..=365).contains(&t) {
            checks.push("trial_days", "must be from 0 to 365");
        }
    }
    if let Some(f) = &req.features {
        check_features(f, &mut checks);
    }
    let unknown = match &req.limits {
        Some(l) => check_limits(conn, l, &mut checks).await?,
        None => Vec::new(),
    };
    let pricing = match &req.overage_pricing {
        Some(given) => {
            let known = metric_names(conn).await?;
            check_overage_pricing(given, &known, &mut checks)
        }
        None => BTreeMap::new(),
    };
    finish_checks(checks, unknown)?;
    let rate = yer_rate(conn, today).await?;
    let before = locked_snapshot(conn, plan_id, rate).await?;
    let changes = PlanChanges {
        name: req.name.map(|s| s.trim().to_string()),
        name_ar: req.name_ar.map(|s| s.trim().to_string()),
        description: req.description.map(|s| s.trim().to_string()),
        description_ar: req.description_ar.map(|s| s.trim().to_string()),
        monthly: req.monthly_price_usd.map(Price::value),
        quarterly: req.quarterly_price_usd.map(Price::value),
        yearly: req.yearly_price_usd.map(Price::value),
        trial_days: req.trial_days,
        overage: req.overage,
        features: req.features,
        is_active: req.is_active,
    };
    if !PlanRepository::update(conn, plan_id, &changes).await? {
        return Err(PlanError::NotFound);
    }
    if let Some(l) = &req.limits {
        PlanRepository::set_limits(conn, plan_id, l).await?;
    }
    OveragePricingRepository::set(conn, plan_id, &pricing).await?;
    let priced = get_plan(conn, plan_id, today).await?;
    let (old, new) = audit::changed(&before, &plan_json(&priced.plan, rate));
    audit_plan(conn, actor, "plan.update", plan_id, Some(old), Some(new)).await?;
    Ok(priced)
}

/// Archiving hides a plan from sign-up and the default list; existing subscriptions keep it.
pub async fn archive_plan(
    conn: &mut PgConnection,
    plan_id: &str,
    today: chrono::NaiveDate,
    actor: &Actor,
) -> PlanResult<PricedPlan> {
    let rate = yer_rate(conn, today).await?;
    let before = locked_snapshot(conn, plan_id, rate).await?;
    let changes = PlanChanges {
        is_active: Some(false),
        ..Default::default()
    };
    if !PlanRepository::update(conn, plan_id, &changes).await? {
        return Err(PlanError::NotFound);
    }
    let priced = get_plan(conn, plan_id, today).await?;
    let (old, new) = audit::changed(&before, &plan_json(&priced.plan, rate));
    audit_plan(conn, actor, "plan.archive", plan_id, Some(old), Some(new)).await?;
    Ok(priced)
}

/// Locks the plan row (so the snapshot is the state the change starts from) and returns it in
/// the API shape; 404 when there is no such plan.
async fn locked_snapshot(
    conn: &mut PgConnection,
    plan_id: &str,
    rate: Decimal,
) -> PlanResult<Value> {
    if !PlanRepository::lock(conn, plan_id).await? {
        return Err(PlanError::NotFound);
    }
    let plan = PlanRepository::get(conn, plan_id)
        .await?
        .ok_or(PlanError::NotFound)?;
    Ok(plan_json(&plan, rate))
}

/// The audit row of a plan action (plans belong to no tenant).
async fn audit_plan(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    plan_id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> PlanResult<()> {
    let event = AuditEvent {
        tenant_id: None,
        action,
        target_type: "plan",
        target_id: plan_id.to_string(),
        before,
        after,
    };
    Ok(audit::record(conn, actor, event).await?)
}
