//! Subscription changes: plan change with proration, billing-cycle change at the next renewal,
//! cancellation (now or at period end) and resuming a pending cancellation.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::money::{convert_from_usd, money_string};
use crate::billing::proration::{prorate, Proration};
use crate::billing::types::{
    BillingCycle, Currency, InvoiceKind, InvoiceLineKind, PaymentMethod, SubscriptionStatus,
    TenantId,
};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::repository::invoices::NewLine;
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::{PlanRepository, PlanRow};
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::{SubscriptionRepository, SubscriptionRow};
use crate::repository::tenants::TenantRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::invoicing::{self, InvoiceDraft};
use crate::services::tenants::subscription_json;
use crate::services::{credits, tenants};

mod cancel;
pub use cancel::{cancel, resume, Canceled};

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

/// The proration as the outbox event and the audit log record it.
fn proration_json(p: Option<&ProrationOutcome>) -> Value {
    let Some(p) = p else { return Value::Null };
    let net = p.proration.net();
    json!({
        "credit": money_string(p.proration.credit),
        "charge": money_string(p.proration.charge),
        "net": money_string(net),
        "remaining_days": p.proration.remaining_days,
        "total_days": p.proration.total_days,
        "currency": p.currency,
        "invoice_id": p.invoice_id,
        "credit_balance_added": if net < Decimal::ZERO { json!(money_string(-net)) } else { Value::Null },
    })
}

fn not_changeable(status: SubscriptionStatus) -> AppError {
    AppError::conflict(
        "subscription_not_changeable",
        format!("A {status} subscription cannot be changed; settle the open invoices first"),
        "لا يمكن تعديل الاشتراك في حالته الحالية",
    )
}

/// Locks tenant then subscription (the documented order) and returns the live subscription.
async fn lock_live(conn: &mut PgConnection, tenant: &TenantId) -> AppResult<SubscriptionRow> {
    TenantRepository::lock(conn, tenant.as_str())
        .await?
        .ok_or_else(tenants::tenant_not_found)?;
    SubscriptionRepository::lock_live(conn, tenant.as_str())
        .await?
        .ok_or_else(tenants::subscription_not_found)
}

pub async fn change(
    conn: &mut PgConnection,
    config: &Config,
    tenant: &TenantId,
    req: ChangeRequest,
    now: DateTime<Utc>,
    actor: &Actor,
) -> AppResult<Changed> {
    if req.plan_id.is_none() && req.billing_cycle.is_none() && req.payment_method.is_none() {
        return Err(AppError::field(
            "body",
            "give at least one of plan_id, billing_cycle, payment_method",
        ));
    }
    let today = now.date_naive();
    let mut sub = lock_live(conn, tenant).await?;
    let before = snapshot(&sub);
    if sub.status == SubscriptionStatus::Suspended {
        return Err(not_changeable(sub.status));
    }
    let mut changes: Vec<String> = Vec::new();
    let mut proration: Option<ProrationOutcome> = None;

    if let Some(plan_id) = req.plan_id.as_deref().filter(|p| *p != sub.plan_id) {
        let new_plan = match PlanRepository::get(conn, plan_id).await? {
            Some(p) if p.row.is_active => p,
            _ => {
                return Err(AppError::unprocessable(
                    "unknown_plan",
                    format!("Plan {plan_id:?} does not exist or is archived"),
                    "الخطة غير موجودة",
                ))
            }
        };
        let old_plan = PlanRepository::get(conn, &sub.plan_id)
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("subscription refers to a missing plan"))
            })?;
        if sub.status != SubscriptionStatus::Trial {
            let currency = Currency::parse(&sub.currency).ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("unknown subscription currency"))
            })?;
            let rate = RateRepository::rate_on(conn, currency, today).await?;
            let old_price = convert_from_usd(old_plan.price_usd(sub.billing_cycle), rate);
            let new_price = convert_from_usd(new_plan.price_usd(sub.billing_cycle), rate);
            let p = prorate(old_price, new_price, sub.start_date, sub.end_date, today);
            let net = p.net();
            let mut invoice_id = None;
            if net > Decimal::ZERO {
                let tenant_row = TenantRepository::get(conn, tenant.as_str())
                    .await?
                    .ok_or_else(tenants::tenant_not_found)?;
                let lines = proration_lines(&old_plan.row, &new_plan.row, &p);
                let inv = invoicing::issue(
                    conn,
                    InvoiceDraft {
                        tenant: &tenant_row,
                        subscription_id: Some(sub.subscription_id),
                        kind: InvoiceKind::Proration,
                        currency,
                        exchange_rate: rate,
                        period: Some((today, sub.end_date)),
                        lines,
                        issue_date: today,
                        due_days: config.invoice_due_days,
                        notes: Some("Proration invoice for plan change"),
                        notes_ar: Some("فاتورة تناسبية لتغيير الخطة"),
                        plan_id: Some(&new_plan.row.plan_id),
                    },
                )
                .await?
                .ok_or_else(|| {
                    AppError::internal(anyhow::anyhow!("proration invoice not stored"))
                })?;
                invoice_id = Some(inv.invoice_id);
            } else if net < Decimal::ZERO {
                credits::grant(
                    conn,
                    tenant.as_str(),
                    currency,
                    -net,
                    &format!(
                        "downgrade from {} to {}",
                        old_plan.row.plan_id, new_plan.row.plan_id
                    ),
                    Some(sub.subscription_id),
                )
                .await?;
            }
            proration = Some(ProrationOutcome {
                proration: p,
                currency,
                invoice_id,
            });
        }
        OutboxRepository::record(
            conn,
            "subscription.plan_changed",
            Some(tenant.as_str()),
            json!({
                "subscription_id": sub.subscription_id,
                "old_plan": sub.plan_id,
                "new_plan": plan_id,
                "proration": proration_json(proration.as_ref()),
            }),
        )
        .await?;
        changes.push(format!("plan changed from {} to {}", sub.plan_id, plan_id));
        sub.plan_id = plan_id.to_string();
    }

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
    let saved: SubscriptionRow = sqlx::query_as(&format!(
        "UPDATE subscriptions SET plan_id = $2, pending_billing_cycle = $3, payment_method = $4
         WHERE subscription_id = $1 RETURNING {}",
        crate::repository::subscriptions::SUBSCRIPTION_COLUMNS
    ))
    .bind(sub.subscription_id)
    .bind(&sub.plan_id)
    .bind(sub.pending_billing_cycle)
    .bind(sub.payment_method)
    .fetch_one(&mut *conn)
    .await?;
    let body = snapshot(&saved);
    if !changes.is_empty() {
        let (old, mut new) = audit::changed(&before, &body);
        if proration.is_some() {
            new["proration"] = proration_json(proration.as_ref());
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

/// The subscription as the API shows it, with the cycle that starts at the next renewal.
fn snapshot(sub: &SubscriptionRow) -> Value {
    let mut body = subscription_json(sub);
    body["pending_billing_cycle"] = json!(sub.pending_billing_cycle);
    body
}

async fn audit_subscription(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    sub: &SubscriptionRow,
    before: Value,
    after: Value,
) -> AppResult<()> {
    let event = AuditEvent {
        tenant_id: Some(&sub.tenant_id),
        action,
        target_type: "subscription",
        target_id: sub.subscription_id.to_string(),
        before: Some(before),
        after: Some(after),
    };
    audit::record(conn, actor, event).await
}
