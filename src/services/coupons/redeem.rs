//! Redeeming a coupon on a tenant's live subscription, and taking it off again. One coupon per
//! subscription; `max_redemptions` is never exceeded (the count is taken by one conditional
//! update, so racing redemptions of the last one get it once).

use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};

use super::{snapshot, CouponError, CouponResult};
use crate::billing::period::add_cycles;
use crate::events::Event;
use crate::repository::coupons::redemptions::{RedemptionRepository, RedemptionRow};
use crate::repository::coupons::{CouponRepository, CouponRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::subscriptions::{SubscriptionRepository, SubscriptionRow};
use crate::repository::tenants::TenantRepository;
use crate::services::audit::{self, Actor, AuditEvent};

/// A coupon a subscription holds, and until when it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveDiscount {
    pub coupon: CouponRow,
    pub redemption: RedemptionRow,
    /// For a `repeating` coupon: the end (exclusive) of the last billing period it covers.
    pub ends_after_period: Option<NaiveDate>,
}

/// The outcome of a redemption: `created` false when the subscription already held this same
/// coupon (a retried request), which changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Redeemed {
    pub subscription_id: uuid::Uuid,
    pub discount: ActiveDiscount,
    pub created: bool,
}

/// Where a repeating coupon stops: `periods` billing periods from its first one. A coupon
/// redeemed at sign-up into a trial counts the trial as its first period.
fn ends_after(sub: &SubscriptionRow, coupon: &CouponRow, first: NaiveDate) -> Option<NaiveDate> {
    let periods = u32::try_from(coupon.duration_periods?).ok()?;
    let anchor = u32::try_from(sub.anchor_day).unwrap_or(1);
    match sub.trial_end_date {
        Some(trial_end) if first == sub.start_date && trial_end > first => Some(add_cycles(
            trial_end,
            anchor,
            sub.billing_cycle,
            periods - 1,
        )),
        _ => Some(add_cycles(first, anchor, sub.billing_cycle, periods)),
    }
}

/// The discount a subscription holds now, if any.
pub async fn active_discount(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
) -> CouponResult<Option<ActiveDiscount>> {
    let Some(redemption) = RedemptionRepository::active(conn, sub.subscription_id).await? else {
        return Ok(None);
    };
    let coupon = CouponRepository::get(conn, &redemption.coupon_code)
        .await?
        .ok_or(CouponError::NotFound)?;
    let ends_after_period = redemption.covers_until;
    Ok(Some(ActiveDiscount {
        coupon,
        redemption,
        ends_after_period,
    }))
}

async fn lock_subscription(
    conn: &mut PgConnection,
    tenant_id: &str,
) -> CouponResult<SubscriptionRow> {
    TenantRepository::lock(conn, tenant_id)
        .await?
        .ok_or(CouponError::TenantNotFound)?;
    SubscriptionRepository::lock_live(conn, tenant_id)
        .await?
        .ok_or(CouponError::SubscriptionNotFound)
}

/// Why `coupon` cannot go on `sub` today, checked before a redemption is counted.
fn refusal(coupon: &CouponRow, sub: &SubscriptionRow, today: NaiveDate) -> Option<CouponError> {
    if super::expired(coupon, today) {
        return Some(CouponError::Expired);
    }
    if !coupon.plan_ids.is_empty() && !coupon.plan_ids.contains(&sub.plan_id) {
        return Some(CouponError::NotApplicable);
    }
    match &coupon.currency {
        Some(c) if *c != sub.currency => Some(CouponError::CurrencyMismatch),
        _ => None,
    }
}

/// Redeems `code` on the tenant's live subscription inside the caller's transaction (sign-up
/// passes its own, with `at_signup`: the sign-up period is then the first one covered; later,
/// the next period is).
pub async fn redeem_in(
    conn: &mut PgConnection,
    tenant_id: &str,
    code: &str,
    at_signup: bool,
    actor: &Actor,
    today: NaiveDate,
) -> CouponResult<Redeemed> {
    let sub = lock_subscription(conn, tenant_id).await?;
    if let Some(held) = active_discount(conn, &sub).await? {
        if held.coupon.code == code {
            return Ok(Redeemed {
                subscription_id: sub.subscription_id,
                discount: held,
                created: false,
            });
        }
        return Err(CouponError::AlreadyApplied);
    }
    let coupon = CouponRepository::get(conn, code)
        .await?
        .ok_or(CouponError::UnknownCode)?;
    if let Some(refused) = refusal(&coupon, &sub, today) {
        return Err(refused);
    }
    let Some(coupon) = RedemptionRepository::take(conn, code).await? else {
        // Archived or used up between the read and the count.
        let now = CouponRepository::get(conn, code).await?;
        return Err(match now {
            Some(c) if c.archived_at.is_some() => CouponError::Expired,
            _ => CouponError::Exhausted,
        });
    };
    let first = if at_signup {
        sub.start_date
    } else {
        sub.end_date
    };
    let ends_after_period = ends_after(&sub, &coupon, first);
    let redemption = RedemptionRepository::insert(
        conn,
        code,
        tenant_id,
        sub.subscription_id,
        today,
        first,
        ends_after_period,
    )
    .await?;
    let event = Event::CouponRedeemed {
        coupon_code: coupon.code.clone(),
        subscription_id: sub.subscription_id,
        redemption_id: redemption.redemption_id,
        duration: coupon.duration.clone(),
        duration_periods: coupon.duration_periods,
    };
    OutboxRepository::record_event(conn, Some(tenant_id), &event).await?;
    audit::record(
        conn,
        actor,
        AuditEvent {
            tenant_id: Some(tenant_id),
            action: "coupon.redeemed",
            target_type: "subscription",
            target_id: sub.subscription_id.to_string(),
            before: None,
            after: Some(snapshot(&coupon)),
        },
    )
    .await?;
    Ok(Redeemed {
        subscription_id: sub.subscription_id,
        discount: ActiveDiscount {
            coupon,
            redemption,
            ends_after_period,
        },
        created: true,
    })
}

/// Redeems `code` on the tenant's live subscription (after sign-up: from the next period).
pub async fn redeem(
    pool: &PgPool,
    tenant_id: &str,
    code: &str,
    actor: &Actor,
    today: NaiveDate,
) -> CouponResult<Redeemed> {
    let mut tx = pool.begin().await?;
    let done = redeem_in(&mut tx, tenant_id, code, false, actor, today).await?;
    tx.commit().await?;
    Ok(done)
}

/// Takes the subscription's coupon off (its redemption still counts); no coupon → not found.
pub async fn remove(
    pool: &PgPool,
    tenant_id: &str,
    actor: &Actor,
) -> CouponResult<(uuid::Uuid, ActiveDiscount)> {
    let mut tx = pool.begin().await?;
    let sub = lock_subscription(&mut tx, tenant_id).await?;
    let held = active_discount(&mut tx, &sub)
        .await?
        .ok_or(CouponError::NoDiscount)?;
    let removed = RedemptionRepository::remove(&mut tx, sub.subscription_id)
        .await?
        .ok_or(CouponError::NoDiscount)?;
    audit::record(
        &mut tx,
        actor,
        AuditEvent {
            tenant_id: Some(tenant_id),
            action: "coupon.removed",
            target_type: "subscription",
            target_id: sub.subscription_id.to_string(),
            before: Some(snapshot(&held.coupon)),
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        sub.subscription_id,
        ActiveDiscount {
            redemption: removed,
            ..held
        },
    ))
}
