//! Tenant sign-up (tenant + subscription + events, and the first invoice of a paid plan, all in
//! one transaction) and the tenant and subscription reads.

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::period::period_end;
use crate::billing::types::{BillingCycle, Currency, SubscriptionStatus, TenantId};
use crate::error::AppError;
use crate::events::Event;
use crate::pagination::{Page, PageRequest};
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::{Plan, PlanRepository};
use crate::repository::subscriptions::{NewSubscription, SubscriptionRepository, SubscriptionRow};
use crate::repository::tenants::{NewTenant, TenantRepository, TenantRow};
use crate::services::audit::Actor;
use crate::services::coupons;
use crate::services::idempotency::{
    self, IdempotencyError, IdempotencyKey, Outcome, StoredResponse,
};
use crate::services::usage::MetricQuota;
use crate::services::{invoicing, plans};
use crate::state::AppState;

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
    /// A coupon to redeem with the subscription (it covers the sign-up period).
    pub coupon: Option<String>,
}

/// A tenant just signed up: its subscription and, for a paid plan without a trial, the first
/// invoice.
#[derive(Debug)]
pub struct SignedUp {
    pub tenant: TenantRow,
    pub subscription: SubscriptionRow,
    pub invoice_id: Option<Uuid>,
}

/// How the caller writes a sign-up's answer: the body is stored under the idempotency key
/// in the same transaction, so it is made there.
pub type RenderSignUp = fn(&SignedUp) -> StoredResponse;

/// `POST /v1/tenants`: runs the sign-up under the caller's idempotency key, so a retry replays
/// the first response and concurrent duplicates produce one tenant.
pub async fn sign_up(
    state: &AppState,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    req: SignUp,
    render: RenderSignUp,
) -> TenantResult<Outcome> {
    let today = state.clock.today();
    let due_days = state.config.invoice_due_days;
    idempotency::run(&state.pool, scope, key, fingerprint, move |conn| {
        Box::pin(async move {
            let done = sign_up_in(conn, &req, today, due_days).await?;
            Ok(render(&done))
        })
    })
    .await
}

/// The sign-up effect, inside the caller's transaction. Anything failing rolls back all of it.
pub async fn sign_up_in(
    conn: &mut PgConnection,
    req: &SignUp,
    today: NaiveDate,
    due_days: u32,
) -> TenantResult<SignedUp> {
    let plan = PlanRepository::get(conn, &req.plan_id)
        .await?
        .filter(|p| p.row.is_active)
        .ok_or_else(|| TenantError::UnknownPlan(req.plan_id.clone()))?;
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
        return Err(TenantError::AlreadyExists(req.tenant_id.clone()));
    }
    let tenant = TenantRepository::get(conn, req.tenant_id.as_str())
        .await?
        .ok_or(TenantError::Inconsistent("tenant vanished after insert"))?;
    let sub = SubscriptionRepository::create(conn, &first_subscription(req, &plan, today)).await?;

    let created = Event::TenantCreated {
        name: tenant.name.clone(),
        name_ar: tenant.name_ar.clone(),
        plan_id: plan.row.plan_id.clone(),
        subscription_id: sub.subscription_id,
    };
    OutboxRepository::record_event(conn, Some(&tenant.tenant_id), &created).await?;
    let subscribed = Event::SubscriptionCreated {
        subscription_id: sub.subscription_id,
        plan_id: sub.plan_id.clone(),
        status: sub.status,
        billing_cycle: sub.billing_cycle,
        currency: sub.currency.clone(),
        start_date: sub.start_date,
        end_date: sub.end_date,
        trial_end_date: sub.trial_end_date,
    };
    OutboxRepository::record_event(conn, Some(&tenant.tenant_id), &subscribed).await?;
    if let Some(code) = &req.coupon {
        let actor = Actor::system("sign-up");
        coupons::redeem::redeem_in(conn, &tenant.tenant_id, code, true, &actor, today).await?;
    }

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

    Ok(SignedUp {
        tenant,
        subscription: sub,
        invoice_id,
    })
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

/// What can go wrong signing up or reading a tenant (`http::errors` turns it into the
/// envelope).
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// 422 `unknown_plan`: the sign-up names a plan that does not exist or is archived.
    #[error("plan {0:?} does not exist or is archived")]
    UnknownPlan(String),
    /// 409 `already_exists`: the tenant_id is taken.
    #[error("tenant {0} already exists")]
    AlreadyExists(TenantId),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("tenant not found")]
    TenantNotFound,
    #[error("subscription not found")]
    SubscriptionNotFound,
    /// Stored data that breaks an invariant (a subscription's plan missing).
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Invoicing and the usage snapshot still answer in the boundary's error type.
    #[error(transparent)]
    Other(#[from] AppError),
    /// The sign-up's coupon was refused (SPEC section 10 codes).
    #[error(transparent)]
    Coupon(#[from] crate::services::coupons::CouponError),
}

pub type TenantResult<T> = Result<T, TenantError>;

/// A tenant, its latest subscription and its usage per metric (the quota view).
#[derive(Debug)]
pub struct TenantView {
    pub tenant: TenantRow,
    pub subscription: Option<SubscriptionRow>,
    pub usage: Vec<MetricQuota>,
}

/// The tenant with its subscription and usage as of `now`.
pub async fn get_tenant(
    conn: &mut PgConnection,
    tenant_id: &TenantId,
    now: chrono::DateTime<chrono::Utc>,
) -> TenantResult<TenantView> {
    let tenant = TenantRepository::get(conn, tenant_id.as_str())
        .await?
        .ok_or(TenantError::TenantNotFound)?;
    let subscription = SubscriptionRepository::get_by_tenant(conn, tenant_id.as_str()).await?;
    let usage = crate::services::usage::quota_snapshot(conn, tenant_id.as_str(), now).await?;
    Ok(TenantView {
        tenant,
        subscription,
        usage,
    })
}

pub async fn list_tenants(
    conn: &mut PgConnection,
    page: &PageRequest,
) -> TenantResult<Page<TenantRow>> {
    Ok(TenantRepository::list(conn, page.limit, page.starting_after.as_deref()).await?)
}

/// A subscription with its plan and the YER rate of the day the plan's prices are shown at.
#[derive(Debug)]
pub struct SubscriptionView {
    pub subscription: SubscriptionRow,
    pub plan: Plan,
    pub yer_rate: Decimal,
    pub days_remaining: i64,
    /// The coupon the subscription holds, if any.
    pub discount: Option<coupons::redeem::ActiveDiscount>,
}

/// The live subscription, else the latest one (a canceled tenant still sees its subscription).
pub async fn get_subscription(
    conn: &mut PgConnection,
    tenant_id: &TenantId,
    today: NaiveDate,
) -> TenantResult<SubscriptionView> {
    let subscription = SubscriptionRepository::get_by_tenant(conn, tenant_id.as_str())
        .await?
        .ok_or(TenantError::SubscriptionNotFound)?;
    let plan = PlanRepository::get(conn, &subscription.plan_id)
        .await?
        .ok_or(TenantError::Inconsistent(
            "subscription refers to a missing plan",
        ))?;
    let yer_rate = plans::yer_rate(conn, today).await?;
    let days_remaining = (subscription.end_date - today).num_days().max(0);
    let discount = coupons::redeem::active_discount(conn, &subscription).await?;
    Ok(SubscriptionView {
        subscription,
        plan,
        yer_rate,
        days_remaining,
        discount,
    })
}
