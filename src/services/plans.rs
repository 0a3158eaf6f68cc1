//! Plan catalogue use cases.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::billing::money::{money_string, round_money, Price};
use crate::billing::types::{is_slug, Currency, OveragePolicy, PlanTier};
use crate::error::{AppError, AppResult};
use crate::repository::plans::{NewPlan, Plan, PlanChanges, PlanRepository};
use crate::repository::rates::RateRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::usage::unknown_metric;
use crate::services::validate::{check_len, Checks};

/// The public JSON shape of a plan (the Python field names, money as strings).
pub fn plan_json(plan: &Plan, yer_rate: Decimal) -> Value {
    let r = &plan.row;
    let yer = |usd: Decimal| money_string(round_money(usd * yer_rate));
    json!({
        "plan_id": r.plan_id,
        "name": r.name,
        "name_ar": r.name_ar,
        "description": r.description,
        "description_ar": r.description_ar,
        "tier": r.tier,
        "pricing": {
            "monthly_usd": money_string(r.monthly_price_usd),
            "quarterly_usd": money_string(r.quarterly_price_usd),
            "yearly_usd": money_string(r.yearly_price_usd),
            "monthly_yer": yer(r.monthly_price_usd),
            "quarterly_yer": yer(r.quarterly_price_usd),
            "yearly_yer": yer(r.yearly_price_usd),
        },
        "limits": plan.limits,
        "features": r.features,
        "trial_days": r.trial_days,
        "overage": r.overage,
        "is_active": r.is_active,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

pub fn pricing_yer(plan: &Plan, yer_rate: Decimal) -> Value {
    let yer = |usd: Decimal| money_string(round_money(usd * yer_rate));
    json!({
        "monthly": yer(plan.row.monthly_price_usd),
        "quarterly": yer(plan.row.quarterly_price_usd),
        "yearly": yer(plan.row.yearly_price_usd),
        "exchange_rate": crate::billing::money::decimal_text(yer_rate),
    })
}

pub async fn yer_rate(conn: &mut PgConnection, today: chrono::NaiveDate) -> AppResult<Decimal> {
    Ok(RateRepository::rate_on(conn, Currency::Yer, today).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanRequest {
    pub plan_id: Option<String>,
    pub name: String,
    pub name_ar: String,
    pub description: String,
    pub description_ar: String,
    pub tier: PlanTier,
    pub monthly_price_usd: Price,
    pub quarterly_price_usd: Option<Price>,
    pub yearly_price_usd: Option<Price>,
    #[serde(default)]
    pub features: Option<Value>,
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    pub trial_days: Option<i32>,
    pub overage: Option<OveragePolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlanRequest {
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
    pub is_active: Option<bool>,
}

/// Checks each limit; returns the metrics it names that are not in the catalogue.
async fn check_limits(
    conn: &mut PgConnection,
    limits: &BTreeMap<String, i64>,
    checks: &mut Checks,
) -> AppResult<Vec<String>> {
    let known: Vec<String> = PlanRepository::metrics(conn)
        .await?
        .into_iter()
        .map(|m| m.metric)
        .collect();
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
fn finish_checks(checks: Checks, unknown: &[String]) -> AppResult<()> {
    match checks.finish() {
        Err(mut e) if !unknown.is_empty() && e.fields.len() == unknown.len() => {
            let mut err = unknown_metric(&unknown[0]).with_extra("metrics", unknown);
            err.message = format!("Unknown metric in limits: {}", unknown.join(", "));
            err.fields = std::mem::take(&mut e.fields);
            Err(err)
        }
        other => other,
    }
}

fn check_features(features: &Value, checks: &mut Checks) {
    if !(features.is_array() || features.is_object()) {
        checks.push("features", "must be a list of features or an object");
    }
}

/// Creates a plan: 201 with it, or 409 `already_exists`.
pub async fn create_plan(
    conn: &mut PgConnection,
    req: CreatePlanRequest,
    today: chrono::NaiveDate,
    actor: &Actor,
) -> AppResult<(StatusCode, Value)> {
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
    finish_checks(checks, &unknown)?;

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
    let features = req.features.clone().unwrap_or_else(|| json!([]));
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
        return Err(AppError::already_exists(&format!("Plan {plan_id}")));
    }
    PlanRepository::set_limits(conn, &plan_id, &req.limits).await?;
    let plan = PlanRepository::get(conn, &plan_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("plan vanished after insert")))?;
    let rate = yer_rate(conn, today).await?;
    let body = plan_json(&plan, rate);
    audit_plan(
        conn,
        actor,
        "plan.create",
        &plan_id,
        None,
        Some(body.clone()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        json!({ "success": true, "plan": body }),
    ))
}

pub async fn update_plan(
    conn: &mut PgConnection,
    plan_id: &str,
    req: UpdatePlanRequest,
    today: chrono::NaiveDate,
    actor: &Actor,
) -> AppResult<Value> {
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
    finish_checks(checks, &unknown)?;
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
        return Err(plan_not_found());
    }
    if let Some(l) = &req.limits {
        PlanRepository::set_limits(conn, plan_id, l).await?;
    }
    let plan = PlanRepository::get(conn, plan_id)
        .await?
        .ok_or_else(plan_not_found)?;
    let body = plan_json(&plan, rate);
    let (old, new) = audit::changed(&before, &body);
    audit_plan(conn, actor, "plan.update", plan_id, Some(old), Some(new)).await?;
    Ok(json!({ "success": true, "plan": body }))
}

/// Locks the plan row (so the snapshot is the state the change starts from) and returns it in
/// the API shape; 404 when there is no such plan.
pub async fn locked_snapshot(
    conn: &mut PgConnection,
    plan_id: &str,
    rate: Decimal,
) -> AppResult<Value> {
    sqlx::query("SELECT 1 FROM plans WHERE plan_id = $1 FOR UPDATE")
        .bind(plan_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(plan_not_found)?;
    let plan = PlanRepository::get(conn, plan_id)
        .await?
        .ok_or_else(plan_not_found)?;
    Ok(plan_json(&plan, rate))
}

/// The audit row of a plan action (plans belong to no tenant).
pub async fn audit_plan(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    plan_id: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> AppResult<()> {
    let event = AuditEvent {
        tenant_id: None,
        action,
        target_type: "plan",
        target_id: plan_id.to_string(),
        before,
        after,
    };
    audit::record(conn, actor, event).await
}

pub fn plan_not_found() -> AppError {
    AppError::not_found("Plan", "الخطة غير موجودة")
}
