//! Tenant sign-up (tenant + subscription + events, and the first invoice of a paid plan, all in
//! one transaction) and the tenant and subscription reads.

use axum::http::StatusCode;
use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::period::period_end;
use crate::billing::types::{BillingCycle, Currency, SubscriptionStatus, TenantId};
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageRequest};
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::{Plan, PlanRepository};
use crate::repository::subscriptions::{NewSubscription, SubscriptionRepository, SubscriptionRow};
use crate::repository::tenants::{NewTenant, TenantRepository, TenantRow};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::validate::{check_len, is_email, is_phone, Checks};
use crate::services::{invoicing, plans};
use crate::state::AppState;

/// The sign-up body as sent. Every field is optional here so that missing and invalid fields
/// are all reported together by [`SignUpRequest::validate`]; a value of the wrong JSON type
/// is still rejected by the extractor, naming that field.
#[derive(Debug, Deserialize)]
pub struct SignUpRequest {
    pub name: Option<String>,
    pub name_ar: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub plan_id: Option<String>,
    pub billing_cycle: Option<String>,
    pub currency: Option<String>,
    pub tenant_id: Option<String>,
    pub tax_id: Option<String>,
    /// A percent given as a string or a number.
    pub tax_rate: Option<Value>,
}

/// A sign-up whose fields passed every check (the plan is checked inside the transaction).
#[derive(Debug, Clone)]
pub struct SignUp {
    pub tenant_id: TenantId,
    pub name: String,
    pub name_ar: String,
    pub email: String,
    pub phone: String,
    pub plan_id: String,
    pub billing_cycle: BillingCycle,
    pub currency: Currency,
    pub tax_id: Option<String>,
    pub tax_rate: Decimal,
}

fn required<'a>(checks: &mut Checks, field: &str, v: &'a Option<String>) -> &'a str {
    match v {
        Some(s) => s.trim(),
        None => {
            checks.push(field, "is required");
            ""
        }
    }
}

/// Percent from 0 to 100 with at most 3 decimals (the column is numeric(6, 3)).
fn parse_tax_rate(v: &Value) -> Result<Decimal, &'static str> {
    let d = crate::billing::money::decimal_from_json(v)
        .map_err(|_| "must be a number from 0 to 100")?;
    if d < Decimal::ZERO || d > Decimal::from(100) {
        return Err("must be from 0 to 100 (a percent)");
    }
    if d.normalize().scale() > 3 {
        return Err("must have at most 3 decimal places");
    }
    Ok(d)
}

impl SignUpRequest {
    /// Checks every field and reports all problems at once (422 `validation_error`).
    pub fn validate(self) -> AppResult<SignUp> {
        let mut checks = Checks::default();
        let name = required(&mut checks, "name", &self.name);
        if self.name.is_some() {
            check_len(&mut checks, "name", name, 200);
        }
        let name_ar = required(&mut checks, "name_ar", &self.name_ar);
        if self.name_ar.is_some() {
            check_len(&mut checks, "name_ar", name_ar, 200);
        }
        let email = required(&mut checks, "email", &self.email);
        if self.email.is_some() && !is_email(email) {
            checks.push("email", "must be a valid email address");
        }
        let phone = required(&mut checks, "phone", &self.phone);
        if self.phone.is_some() && !is_phone(phone) {
            checks.push("phone", "must be 5-20 digits with an optional leading +");
        }
        let plan_id = required(&mut checks, "plan_id", &self.plan_id);
        if self.plan_id.is_some() {
            check_len(&mut checks, "plan_id", plan_id, 100);
        }
        let billing_cycle = match self.billing_cycle.as_deref() {
            None => Some(BillingCycle::Monthly),
            Some(s) => BillingCycle::parse(s.trim()).or_else(|| {
                checks.push("billing_cycle", "must be one of monthly, quarterly, yearly");
                None
            }),
        };
        let currency = match self.currency.as_deref() {
            None => Some(Currency::Usd),
            Some(s) => Currency::parse(s).or_else(|| {
                checks.push("currency", "must be one of USD, YER, SAR, AED, EUR");
                None
            }),
        };
        let tenant_id = match self.tenant_id.as_deref() {
            None => TenantId::parse(&Uuid::new_v4().to_string()).ok(),
            Some(s) => TenantId::parse(s)
                .map_err(|_| checks.push("tenant_id", "must be 1-100 of A-Z a-z 0-9 _ -"))
                .ok(),
        };
        let tax_id = self
            .tax_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if tax_id.is_some_and(|t| t.chars().count() > 100) {
            checks.push("tax_id", "must be at most 100 characters");
        }
        let tax_rate = match &self.tax_rate {
            None | Some(Value::Null) => Some(Decimal::ZERO),
            Some(v) => parse_tax_rate(v)
                .map_err(|issue| checks.push("tax_rate", issue))
                .ok(),
        };
        checks.finish()?;
        match (tenant_id, billing_cycle, currency, tax_rate) {
            (Some(tenant_id), Some(billing_cycle), Some(currency), Some(tax_rate)) => Ok(SignUp {
                tenant_id,
                name: name.to_string(),
                name_ar: name_ar.to_string(),
                email: email.to_string(),
                phone: phone.to_string(),
                plan_id: plan_id.to_string(),
                billing_cycle,
                currency,
                tax_id: tax_id.map(str::to_string),
                tax_rate,
            }),
            // Unreachable: each None above pushed an issue, so `finish` returned the error.
            _ => Err(AppError::internal(anyhow::anyhow!(
                "sign-up validation lost an issue"
            ))),
        }
    }
}

/// `POST /v1/tenants`: runs the sign-up under the caller's idempotency key, so a retry replays
/// the first response and concurrent duplicates produce one tenant.
pub async fn sign_up(
    state: &AppState,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    req: SignUp,
) -> AppResult<Outcome> {
    let today = state.clock.today();
    let due_days = state.config.invoice_due_days;
    idempotency::run(&state.pool, scope, key, fingerprint, move |conn| {
        Box::pin(async move { sign_up_in(conn, &req, today, due_days).await })
    })
    .await
}

fn unknown_plan(plan_id: &str) -> AppError {
    AppError::unprocessable(
        "unknown_plan",
        format!("Plan {plan_id:?} does not exist or is archived"),
        "الخطة غير موجودة",
    )
}

/// The sign-up effect, inside the caller's transaction. Anything failing rolls back all of it.
pub async fn sign_up_in(
    conn: &mut PgConnection,
    req: &SignUp,
    today: NaiveDate,
    due_days: u32,
) -> AppResult<(StatusCode, Value)> {
    let plan = PlanRepository::get(conn, &req.plan_id)
        .await?
        .filter(|p| p.row.is_active)
        .ok_or_else(|| unknown_plan(&req.plan_id))?;
    let created = TenantRepository::create(
        conn,
        &NewTenant {
            tenant_id: req.tenant_id.as_str(),
            name: &req.name,
            name_ar: &req.name_ar,
            email: &req.email,
            phone: &req.phone,
            tax_id: req.tax_id.as_deref(),
            tax_rate: req.tax_rate,
        },
    )
    .await?;
    if !created {
        return Err(AppError::already_exists(&format!(
            "Tenant {}",
            req.tenant_id
        )));
    }
    let tenant = TenantRepository::get(conn, req.tenant_id.as_str())
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("tenant vanished after insert")))?;
    let sub = SubscriptionRepository::create(conn, &first_subscription(req, &plan, today)).await?;

    OutboxRepository::record(
        conn,
        "tenant.created",
        Some(&tenant.tenant_id),
        json!({ "name": tenant.name, "name_ar": tenant.name_ar, "plan_id": plan.row.plan_id,
                "subscription_id": sub.subscription_id }),
    )
    .await?;
    OutboxRepository::record(
        conn,
        "subscription.created",
        Some(&tenant.tenant_id),
        json!({ "subscription_id": sub.subscription_id, "plan_id": sub.plan_id, "status": sub.status,
                "billing_cycle": sub.billing_cycle, "currency": sub.currency,
                "start_date": sub.start_date, "end_date": sub.end_date,
                "trial_end_date": sub.trial_end_date }),
    )
    .await?;

    // A paid plan without a trial is invoiced at once for its first period; a trial is
    // invoiced when it ends (renewal job), a free plan never.
    let invoice_id = if sub.status == SubscriptionStatus::Active
        && plan.price_usd(sub.billing_cycle) > Decimal::ZERO
    {
        invoicing::issue_subscription_invoice(conn, &tenant, &sub, &plan, today, due_days)
            .await?
            .map(|inv| inv.invoice_id)
    } else {
        None
    };

    Ok((
        StatusCode::CREATED,
        json!({
            "success": true,
            "tenant_id": tenant.tenant_id,
            "subscription_id": sub.subscription_id,
            "status": sub.status,
            "trial_ends": sub.trial_end_date,
            "message_ar": format!("مرحباً {}! تم إنشاء حسابك بنجاح.", tenant.name_ar),
            "invoice_id": invoice_id,
        }),
    ))
}

/// The trial rule: a plan with trial days starts a trial whose end is the first billing date
/// and sets the anchor day; otherwise the first period starts today and is anchored on today.
fn first_subscription<'a>(req: &'a SignUp, plan: &Plan, today: NaiveDate) -> NewSubscription<'a> {
    let trial_days = u64::try_from(plan.row.trial_days).unwrap_or(0);
    let (status, anchor_day, end, trial_end) = match today.checked_add_days(Days::new(trial_days)) {
        Some(trial_end) if trial_days > 0 => (
            SubscriptionStatus::Trial,
            trial_end.day(),
            trial_end,
            Some(trial_end),
        ),
        _ => (
            SubscriptionStatus::Active,
            today.day(),
            period_end(today, today.day(), req.billing_cycle),
            None,
        ),
    };
    NewSubscription {
        subscription_id: Uuid::new_v4(),
        tenant_id: req.tenant_id.as_str(),
        plan_id: &req.plan_id,
        status,
        billing_cycle: req.billing_cycle,
        currency: req.currency.code(),
        // A day of the month (1..=31) always fits.
        anchor_day: anchor_day as i16,
        start_date: today,
        end_date: end,
        next_billing_date: end,
        trial_end_date: trial_end,
    }
}

/// A percent with at least two decimals and no trailing noise: `"0.00"`, `"5.00"`, `"7.125"`.
pub fn tenant_json(t: &TenantRow) -> Value {
    json!({
        "tenant_id": t.tenant_id,
        "name": t.name,
        "name_ar": t.name_ar,
        "email": t.email,
        "phone": t.phone,
        "contact": { "email": t.email, "phone": t.phone },
        "tax_id": t.tax_id,
        "tax_rate": crate::billing::money::decimal_text(t.tax_rate),
        "is_active": t.is_active,
        "created_at": t.created_at,
    })
}

/// The public JSON shape of a subscription (the Python field names).
pub fn subscription_json(s: &SubscriptionRow) -> Value {
    json!({
        "subscription_id": s.subscription_id,
        "tenant_id": s.tenant_id,
        "plan_id": s.plan_id,
        "status": s.status,
        "billing_cycle": s.billing_cycle,
        "currency": s.currency,
        "start_date": s.start_date,
        "end_date": s.end_date,
        "next_billing_date": s.next_billing_date,
        "trial_end_date": s.trial_end_date,
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": s.canceled_at,
        "payment_method": s.payment_method,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

pub use crate::services::missing::{subscription_not_found, tenant_not_found};

/// `{tenant, subscription, usage}`; `usage` is the quota view of every metric as of `now`.
pub async fn get_tenant(
    conn: &mut PgConnection,
    tenant_id: &TenantId,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<Value> {
    let tenant = TenantRepository::get(conn, tenant_id.as_str())
        .await?
        .ok_or_else(tenant_not_found)?;
    let sub = SubscriptionRepository::get_by_tenant(conn, tenant_id.as_str()).await?;
    Ok(json!({
        "tenant": tenant_json(&tenant),
        "subscription": sub.as_ref().map(subscription_json),
        "usage": crate::services::usage::usage_snapshot(conn, tenant_id.as_str(), now).await?,
    }))
}

pub async fn list_tenants(conn: &mut PgConnection, page: &PageRequest) -> AppResult<Value> {
    let (rows, total, has_more) =
        TenantRepository::list(conn, page.limit, page.starting_after.as_deref()).await?;
    let items: Vec<Value> = rows.iter().map(tenant_json).collect();
    Ok(Page {
        items,
        total,
        has_more,
    }
    .into_body("tenants"))
}

/// `{subscription, plan, days_remaining, is_trial}` for the live subscription, else the latest
/// one (a canceled tenant still sees its subscription).
pub async fn get_subscription(
    conn: &mut PgConnection,
    tenant_id: &TenantId,
    today: NaiveDate,
) -> AppResult<Value> {
    let sub = SubscriptionRepository::get_by_tenant(conn, tenant_id.as_str())
        .await?
        .ok_or_else(subscription_not_found)?;
    let plan = PlanRepository::get(conn, &sub.plan_id)
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("subscription refers to a missing plan"))
        })?;
    let rate = plans::yer_rate(conn, today).await?;
    let days_remaining = (sub.end_date - today).num_days().max(0);
    Ok(json!({
        "subscription": subscription_json(&sub),
        "plan": plans::plan_json(&plan, rate),
        "days_remaining": days_remaining,
        "is_trial": sub.status == SubscriptionStatus::Trial,
    }))
}
