//! Coupons (SPEC section 10), super admin: defining, listing, reading and archiving them.
//! Redemption (sign-up and later) and the discount on invoices build on these rows.

use chrono::NaiveDate;
use sqlx::PgPool;

use crate::billing::discount::{CouponDuration, DiscountValue};
use crate::billing::types::Currency;
use crate::error::AppError;
use crate::pagination::{Page, PageRequest};
use crate::repository::coupons::{CouponRepository, CouponRow, NewCoupon};
use crate::services::audit::{self, Actor, AuditEvent};

pub mod apply;
pub mod redeem;

/// What can go wrong with a coupon use case (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum CouponError {
    #[error("coupon {0} already exists")]
    AlreadyExists(String),
    #[error("no such coupon")]
    NotFound,
    #[error("unknown plans: {0:?}")]
    UnknownPlans(Vec<String>),
    /// Redeeming a code no coupon has (422 `coupon_not_found`, unlike a read's 404).
    #[error("no coupon has this code")]
    UnknownCode,
    #[error("the coupon is archived or past its redeem_by date")]
    Expired,
    #[error("the coupon has no redemptions left")]
    Exhausted,
    #[error("the coupon does not apply to the subscription's plan")]
    NotApplicable,
    #[error("the coupon's amount is in another currency than the subscription")]
    CurrencyMismatch,
    #[error("the subscription already holds another coupon")]
    AlreadyApplied,
    #[error("the subscription holds no coupon")]
    NoDiscount,
    #[error("no such tenant")]
    TenantNotFound,
    #[error("the tenant has no live subscription")]
    SubscriptionNotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The audit log still answers in the boundary's error type.
    #[error(transparent)]
    Audit(#[from] AppError),
}

pub type CouponResult<T> = Result<T, CouponError>;

/// A validated coupon definition.
#[derive(Debug, Clone, PartialEq)]
pub struct CouponInput {
    pub code: String,
    pub name: String,
    pub name_ar: String,
    pub value: DiscountValue,
    /// The currency of an `amount_off` coupon (none for a percentage).
    pub currency: Option<Currency>,
    pub duration: CouponDuration,
    /// Empty: every plan.
    pub plan_ids: Vec<String>,
    pub max_redemptions: Option<i32>,
    pub redeem_by: Option<NaiveDate>,
}

/// A stored coupon and whether it can be redeemed today.
#[derive(Debug, Clone, PartialEq)]
pub struct Coupon {
    pub row: CouponRow,
    pub valid: bool,
}

impl Coupon {
    pub fn new(row: CouponRow, today: NaiveDate) -> Self {
        let valid = redeemable(&row, today);
        Coupon { row, valid }
    }
}

/// Not archived, not past `redeem_by` (redeemable through that whole UTC day) and not exhausted.
pub fn redeemable(row: &CouponRow, today: NaiveDate) -> bool {
    !expired(row, today) && row.max_redemptions.is_none_or(|m| row.times_redeemed < m)
}

/// Archived, or past its `redeem_by` day (`coupon_expired`).
pub(crate) fn expired(row: &CouponRow, today: NaiveDate) -> bool {
    row.archived_at.is_some() || row.redeem_by.is_some_and(|d| today > d)
}

fn duration_parts(d: CouponDuration) -> (&'static str, Option<i32>) {
    match d {
        CouponDuration::Once => ("once", None),
        CouponDuration::Repeating(n) => ("repeating", i32::try_from(n).ok()),
        CouponDuration::Forever => ("forever", None),
    }
}

pub(crate) fn snapshot(row: &CouponRow) -> serde_json::Value {
    serde_json::to_value(row).unwrap_or_default()
}

/// Creates a coupon; its plans must exist (archived ones count: they exist).
pub async fn create_coupon(
    pool: &PgPool,
    input: CouponInput,
    actor: &Actor,
    today: NaiveDate,
) -> CouponResult<Coupon> {
    let mut tx = pool.begin().await?;
    let unknown = CouponRepository::unknown_plans(&mut tx, &input.plan_ids).await?;
    if !unknown.is_empty() {
        return Err(CouponError::UnknownPlans(unknown));
    }
    let (percent_off, amount_off) = match input.value {
        DiscountValue::PercentOff(p) => (Some(p), None),
        DiscountValue::AmountOff(a) => (None, Some(a)),
    };
    let (duration, duration_periods) = duration_parts(input.duration);
    let new = NewCoupon {
        code: &input.code,
        name: &input.name,
        name_ar: &input.name_ar,
        percent_off,
        amount_off,
        currency: input.currency.map(Currency::code),
        duration,
        duration_periods,
        plan_ids: &input.plan_ids,
        max_redemptions: input.max_redemptions,
        redeem_by: input.redeem_by,
    };
    let row = CouponRepository::create(&mut tx, &new)
        .await?
        .ok_or_else(|| CouponError::AlreadyExists(input.code.clone()))?;
    audit::record(
        &mut tx,
        actor,
        AuditEvent {
            tenant_id: None,
            action: "coupon.created",
            target_type: "coupon",
            target_id: row.code.clone(),
            before: None,
            after: Some(snapshot(&row)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Coupon::new(row, today))
}

pub async fn get_coupon(pool: &PgPool, code: &str, today: NaiveDate) -> CouponResult<Coupon> {
    let mut conn = pool.acquire().await?;
    let row = CouponRepository::get(&mut conn, code)
        .await?
        .ok_or(CouponError::NotFound)?;
    Ok(Coupon::new(row, today))
}

pub async fn list_coupons(
    pool: &PgPool,
    page: &PageRequest,
    today: NaiveDate,
) -> CouponResult<Page<Coupon>> {
    let mut conn = pool.acquire().await?;
    let page =
        CouponRepository::list(&mut conn, page.limit, page.starting_after.as_deref()).await?;
    Ok(page.map(|r| Coupon::new(r, today)))
}

/// Archives a coupon: no new redemptions, subscriptions that hold it keep it. Archiving an
/// archived coupon answers it as it is and writes nothing.
pub async fn archive_coupon(
    pool: &PgPool,
    code: &str,
    actor: &Actor,
    today: NaiveDate,
) -> CouponResult<Coupon> {
    let mut tx = pool.begin().await?;
    let (row, archived_now) = CouponRepository::archive(&mut tx, code)
        .await?
        .ok_or(CouponError::NotFound)?;
    if archived_now {
        audit::record(
            &mut tx,
            actor,
            AuditEvent {
                tenant_id: None,
                action: "coupon.archived",
                target_type: "coupon",
                target_id: row.code.clone(),
                before: None,
                after: Some(snapshot(&row)),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Coupon::new(row, today))
}
