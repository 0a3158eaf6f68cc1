//! Cancellation (now or at the period end) and resuming a pending cancellation.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use super::{audit_subscription, lock_live, snapshot, SubscriptionError, SubscriptionResult};
use crate::billing::types::TenantId;
use crate::events::Event;
use crate::repository::outbox::OutboxRepository;
use crate::repository::subscriptions::{SubscriptionRepository, SubscriptionRow};
use crate::services::audit::{self, Actor};

/// A cancellation and the sentences that explain it (English and Arabic).
#[derive(Debug)]
pub struct Canceled {
    pub subscription: SubscriptionRow,
    pub message: String,
    pub message_ar: String,
}

/// Cancels now (`immediate`: status `canceled`, the period ends today on the service clock)
/// or at the period end (`cancel_at_period_end`; the renewal job ends it). The answer carries
/// the sentences the Python service sent (`message`, `message_ar`).
pub async fn cancel(
    conn: &mut PgConnection,
    tenant: &TenantId,
    immediate: bool,
    now: DateTime<Utc>,
    actor: &Actor,
) -> SubscriptionResult<Canceled> {
    let sub = lock_live(conn, tenant).await?;
    let today = now.date_naive();
    let saved: SubscriptionRow = if immediate {
        let row = SubscriptionRepository::cancel_now(conn, sub.subscription_id, now, today).await?;
        let event = Event::SubscriptionCanceled {
            subscription_id: sub.subscription_id,
            at_period_end: false,
        };
        OutboxRepository::record_event(conn, Some(tenant.as_str()), &event).await?;
        row
    } else {
        set_cancel_flag(conn, &sub, true).await?
    };
    let (old, mut new) = audit::changed(&snapshot(&sub), &snapshot(&saved));
    new["immediate"] = Value::Bool(immediate);
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
    Ok(Canceled {
        subscription: saved,
        message,
        message_ar,
    })
}

pub async fn resume(
    conn: &mut PgConnection,
    tenant: &TenantId,
    actor: &Actor,
) -> SubscriptionResult<SubscriptionRow> {
    let sub = lock_live(conn, tenant).await?;
    if !sub.cancel_at_period_end {
        return Err(SubscriptionError::NotPendingCancellation);
    }
    let saved = set_cancel_flag(conn, &sub, false).await?;
    let (old, new) = audit::changed(&snapshot(&sub), &snapshot(&saved));
    audit_subscription(conn, actor, "subscription.resume", &saved, old, new).await?;
    Ok(saved)
}

async fn set_cancel_flag(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
    on: bool,
) -> SubscriptionResult<SubscriptionRow> {
    Ok(SubscriptionRepository::set_cancel_at_period_end(conn, sub.subscription_id, on).await?)
}
