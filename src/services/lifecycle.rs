//! Subscription changes: plan change with proration, billing-cycle change at the next renewal,
//! cancellation (now or at period end) and resuming a pending cancellation.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    pub plan_id: Option<String>,
    pub billing_cycle: Option<BillingCycle>,
    pub payment_method: Option<PaymentMethod>,
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
) -> AppResult<Value> {
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
    let mut proration = Value::Null;

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
            let mut invoice_id = Value::Null;
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
                invoice_id = json!(inv.invoice_id);
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
            proration = json!({
                "credit": money_string(p.credit),
                "charge": money_string(p.charge),
                "net": money_string(net),
                "remaining_days": p.remaining_days,
                "total_days": p.total_days,
                "currency": currency,
                "invoice_id": invoice_id,
                "credit_balance_added": if net < Decimal::ZERO { json!(money_string(-net)) } else { Value::Null },
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
                "proration": proration,
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
        if !proration.is_null() {
            new["proration"] = proration.clone();
        }
        audit_subscription(conn, actor, "subscription.change", &saved, old, new).await?;
    }
    Ok(json!({ "success": true, "subscription": body, "changes": changes, "proration": proration }))
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

/// Cancels now (`immediate`: status `canceled`, the period ends today on the service clock)
/// or at the period end (`cancel_at_period_end`; the renewal job ends it). The answer carries
/// the Python service's top-level fields (`success`, `status`, `end_date`, `message_ar`) beside
/// the subscription object.
pub async fn cancel(
    conn: &mut PgConnection,
    tenant: &TenantId,
    immediate: bool,
    now: DateTime<Utc>,
    actor: &Actor,
) -> AppResult<Value> {
    let sub = lock_live(conn, tenant).await?;
    let today = now.date_naive();
    let saved: SubscriptionRow = if immediate {
        // The period is [start_date, end_date): ending it today leaves today out. A
        // subscription canceled on its first day keeps an empty period (end = start).
        let row = sqlx::query_as(&format!(
            "UPDATE subscriptions SET status = 'canceled', canceled_at = $2, cancel_at_period_end = false,
                 end_date = GREATEST($3, start_date), next_billing_date = GREATEST($3, start_date)
             WHERE subscription_id = $1 RETURNING {}",
            crate::repository::subscriptions::SUBSCRIPTION_COLUMNS
        ))
        .bind(sub.subscription_id)
        .bind(now)
        .bind(today)
        .fetch_one(&mut *conn)
        .await?;
        OutboxRepository::record(
            conn,
            "subscription.canceled",
            Some(tenant.as_str()),
            json!({"subscription_id": sub.subscription_id, "at_period_end": false}),
        )
        .await?;
        row
    } else {
        set_cancel_flag(conn, &sub, true).await?
    };
    let (old, mut new) = audit::changed(&snapshot(&sub), &snapshot(&saved));
    new["immediate"] = json!(immediate);
    audit_subscription(conn, actor, "subscription.cancel", &saved, old, new).await?;
    let (message, message_ar) = if immediate {
        (
            format!("The subscription is canceled as of {}", saved.end_date),
            "تم إلغاء اشتراكك فوراً.".to_string(),
        )
    } else {
        // The last day the subscription is active, inclusive (end_date is exclusive).
        let last = saved.end_date.pred_opt().unwrap_or(saved.end_date);
        (
            format!(
                "The subscription will be canceled at the end of the period; it stays active through {last}"
            ),
            format!(
                "تم إلغاء اشتراكك. سيظل حسابك نشطاً حتى نهاية الفترة المدفوعة ({last} ضمناً)."
            ),
        )
    };
    Ok(json!({
        "success": true,
        "status": saved.status,
        "end_date": saved.end_date,
        "message": message,
        "message_ar": message_ar,
        "subscription": subscription_json(&saved),
    }))
}

pub async fn resume(conn: &mut PgConnection, tenant: &TenantId, actor: &Actor) -> AppResult<Value> {
    let sub = lock_live(conn, tenant).await?;
    if !sub.cancel_at_period_end {
        return Err(AppError::conflict(
            "not_pending_cancellation",
            "The subscription has no pending cancellation",
            "لا يوجد إلغاء معلق لهذا الاشتراك",
        ));
    }
    let saved = set_cancel_flag(conn, &sub, false).await?;
    let (old, new) = audit::changed(&snapshot(&sub), &snapshot(&saved));
    audit_subscription(conn, actor, "subscription.resume", &saved, old, new).await?;
    Ok(json!({ "success": true, "subscription": subscription_json(&saved) }))
}

async fn set_cancel_flag(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
    on: bool,
) -> AppResult<SubscriptionRow> {
    Ok(sqlx::query_as(&format!(
        "UPDATE subscriptions SET cancel_at_period_end = $2 WHERE subscription_id = $1 RETURNING {}",
        crate::repository::subscriptions::SUBSCRIPTION_COLUMNS
    ))
    .bind(sub.subscription_id)
    .bind(on)
    .fetch_one(conn)
    .await?)
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
