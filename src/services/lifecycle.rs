//! Subscription changes: plan change with proration, billing-cycle change at the next renewal,
//! cancellation (now or at period end) and resuming a pending cancellation.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::money::convert_from_usd;
use crate::billing::proration::{prorate, Proration};
use crate::billing::types::{
    BillingCycle, Currency, InvoiceKind, InvoiceLineKind, PaymentMethod, SubscriptionStatus,
    TenantId,
};
use crate::config::Config;
use crate::error::AppError;
use crate::events::{Event, ProrationPayload};
use crate::repository::invoices::NewLine;
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::{PlanRepository, PlanRow};
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::{SubscriptionRepository, SubscriptionRow};
use crate::repository::tenants::TenantRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::coupons;
use crate::services::credits;
use crate::services::invoicing::{self, InvoiceDraft};

mod cancel;
mod plan_change;
pub use cancel::{cancel, resume, Canceled};

/// What can go wrong with a subscription change (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("tenant not found")]
    TenantNotFound,
    #[error("subscription not found")]
    SubscriptionNotFound,
    #[error("give at least one of plan_id, billing_cycle, payment_method")]
    NothingToChange,
    #[error("plan {0:?} does not exist or is archived")]
    UnknownPlan(String),
    /// A suspended subscription is changed only once its open invoices are settled.
    #[error("a {0} subscription cannot be changed")]
    NotChangeable(SubscriptionStatus),
    #[error("the subscription has no pending cancellation")]
    NotPendingCancellation,
    /// Stored data that breaks an invariant (a subscription's plan or currency missing).
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Invoicing and the audit log still answer in the boundary's error type.
    #[error(transparent)]
    Other(#[from] AppError),
}

pub type SubscriptionResult<T> = Result<T, SubscriptionError>;

/// What a subscription change asks for (`None`: kept).
#[derive(Debug)]
pub struct ChangeRequest {
    pub plan_id: Option<String>,
    pub billing_cycle: Option<BillingCycle>,
    pub payment_method: Option<PaymentMethod>,
}

/// The proration of a plan change outside a trial.
#[derive(Debug, Clone)]
pub struct ProrationOutcome {
    pub proration: Proration,
    pub currency: Currency,
    /// The proration invoice, when the net is positive.
    pub invoice_id: Option<Uuid>,
}

/// A subscription after a change: what changed (one sentence each) and the proration.
#[derive(Debug)]
pub struct Changed {
    pub subscription: SubscriptionRow,
    pub changes: Vec<String>,
    pub proration: Option<ProrationOutcome>,
}

impl ProrationOutcome {
    /// The proration as the outbox event and the audit log record it.
    fn payload(&self) -> ProrationPayload {
        let net = self.proration.net();
        ProrationPayload {
            credit: self.proration.credit,
            charge: self.proration.charge,
            net,
            remaining_days: self.proration.remaining_days,
            total_days: self.proration.total_days,
            currency: self.currency,
            invoice_id: self.invoice_id,
            credit_balance_added: (net < Decimal::ZERO).then_some(-net),
        }
    }
}

/// Locks tenant then subscription (the documented order) and returns the live subscription.
async fn lock_live(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> SubscriptionResult<SubscriptionRow> {
    TenantRepository::lock(conn, tenant.as_str())
        .await?
        .ok_or(SubscriptionError::TenantNotFound)?;
    SubscriptionRepository::lock_live(conn, tenant.as_str())
        .await?
        .ok_or(SubscriptionError::SubscriptionNotFound)
}

/// The billing cycle (from the next renewal) and payment method of a change, with the words
/// for what changed.
fn apply_settings(sub: &mut SubscriptionRow, req: &ChangeRequest, changes: &mut Vec<String>) {
    if let Some(cycle) = req.billing_cycle {
        let pending = (cycle != sub.billing_cycle).then_some(cycle);
        if pending != sub.pending_billing_cycle {
            sub.pending_billing_cycle = pending;
            changes.push(match pending {
                Some(c) => format!(
                    "billing cycle becomes {c} at the next renewal ({})",
                    sub.next_billing_date
                ),
                None => format!("billing cycle stays {}", sub.billing_cycle),
            });
        }
    }
    if let Some(method) = req.payment_method {
        if sub.payment_method != Some(method) {
            sub.payment_method = Some(method);
            changes.push(format!("payment method set to {method}"));
        }
    }
}

pub async fn change(
    conn: &mut PgConnection,
    config: &Config,
    tenant: &TenantId,
    req: ChangeRequest,
    now: DateTime<Utc>,
    actor: &Actor,
) -> SubscriptionResult<Changed> {
    if req.plan_id.is_none() && req.billing_cycle.is_none() && req.payment_method.is_none() {
        return Err(SubscriptionError::NothingToChange);
    }
    let today = now.date_naive();
    let mut sub = lock_live(conn, tenant).await?;
    let before = snapshot(&sub);
    if sub.status == SubscriptionStatus::Suspended {
        return Err(SubscriptionError::NotChangeable(sub.status));
    }
    let mut changes: Vec<String> = Vec::new();
    let mut proration: Option<ProrationOutcome> = None;

    if let Some(plan_id) = req.plan_id.as_deref().filter(|p| *p != sub.plan_id) {
        let new_plan = match PlanRepository::get(conn, plan_id).await? {
            Some(p) if p.row.is_active => p,
            _ => return Err(SubscriptionError::UnknownPlan(plan_id.to_string())),
        };
        let old_plan = PlanRepository::get(conn, &sub.plan_id).await?.ok_or(
            SubscriptionError::Inconsistent("subscription refers to a missing plan"),
        )?;
        if sub.status != SubscriptionStatus::Trial {
            let p = plan_change::prorate_plan_change(
                conn, config, tenant, &sub, &old_plan, &new_plan, today,
            )
            .await?;
            proration = Some(p);
        }
        let event = Event::SubscriptionPlanChanged {
            subscription_id: sub.subscription_id,
            old_plan: sub.plan_id.clone(),
            new_plan: plan_id.to_string(),
            proration: proration.as_ref().map(ProrationOutcome::payload),
        };
        OutboxRepository::record_event(conn, Some(tenant.as_str()), &event).await?;
        changes.push(format!("plan changed from {} to {}", sub.plan_id, plan_id));
        sub.plan_id = plan_id.to_string();
    }

    apply_settings(&mut sub, &req, &mut changes);
    let saved = SubscriptionRepository::save_change(
        conn,
        sub.subscription_id,
        &sub.plan_id,
        sub.pending_billing_cycle,
        sub.payment_method,
    )
    .await?;
    let body = snapshot(&saved);
    if !changes.is_empty() {
        let (old, mut new) = audit::changed(&before, &body);
        if let Some(p) = &proration {
            new["proration"] = to_json(&p.payload());
        }
        audit_subscription(conn, actor, "subscription.change", &saved, old, new).await?;
    }
    Ok(Changed {
        subscription: saved,
        changes,
        proration,
    })
}

/// The two lines of a proration invoice. Each is one unit priced at its prorated amount, so
/// quantity × unit price = amount holds on the printed page; the days it covers are text.
fn proration_lines(old: &PlanRow, new: &PlanRow, p: &Proration) -> Vec<NewLine> {
    let (days, total) = (p.remaining_days, p.total_days);
    vec![
        NewLine {
            kind: InvoiceLineKind::Proration,
            description: format!(
                "Credit for unused days on {}: {days} of {total} days",
                old.name
            ),
            description_ar: format!(
                "رصيد الأيام غير المستخدمة من {}: {days} من {total} يوماً",
                old.name_ar
            ),
            metric: None,
            quantity: Decimal::ONE,
            unit_price: -p.credit,
            amount: -p.credit,
        },
        NewLine {
            kind: InvoiceLineKind::Proration,
            description: format!(
                "Charge for remaining days on {}: {days} of {total} days",
                new.name
            ),
            description_ar: format!(
                "رسوم الأيام المتبقية على {}: {days} من {total} يوماً",
                new.name_ar
            ),
            metric: None,
            quantity: Decimal::ONE,
            unit_price: p.charge,
            amount: p.charge,
        },
    ]
}

/// A subscription as the audit log records it: the API's field names, with the cycle that
/// starts at the next renewal.
#[derive(Serialize)]
struct SubscriptionSnapshot<'a> {
    subscription_id: Uuid,
    tenant_id: &'a str,
    plan_id: &'a str,
    status: SubscriptionStatus,
    billing_cycle: BillingCycle,
    currency: &'a str,
    start_date: chrono::NaiveDate,
    end_date: chrono::NaiveDate,
    next_billing_date: chrono::NaiveDate,
    trial_end_date: Option<chrono::NaiveDate>,
    cancel_at_period_end: bool,
    canceled_at: Option<DateTime<Utc>>,
    payment_method: Option<PaymentMethod>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    pending_billing_cycle: Option<BillingCycle>,
}

/// A typed audit value as the JSON the log stores (`Null` if it could not be written).
fn to_json(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn snapshot(s: &SubscriptionRow) -> Value {
    to_json(&SubscriptionSnapshot {
        subscription_id: s.subscription_id,
        tenant_id: &s.tenant_id,
        plan_id: &s.plan_id,
        status: s.status,
        billing_cycle: s.billing_cycle,
        currency: &s.currency,
        start_date: s.start_date,
        end_date: s.end_date,
        next_billing_date: s.next_billing_date,
        trial_end_date: s.trial_end_date,
        cancel_at_period_end: s.cancel_at_period_end,
        canceled_at: s.canceled_at,
        payment_method: s.payment_method,
        created_at: s.created_at,
        updated_at: s.updated_at,
        pending_billing_cycle: s.pending_billing_cycle,
    })
}

async fn audit_subscription(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    sub: &SubscriptionRow,
    before: Value,
    after: Value,
) -> SubscriptionResult<()> {
    let event = AuditEvent {
        tenant_id: Some(&sub.tenant_id),
        action,
        target_type: "subscription",
        target_id: sub.subscription_id.to_string(),
        before: Some(before),
        after: Some(after),
    };
    Ok(audit::record(conn, actor, event).await?)
}
