//! Redemptions: which subscription holds which coupon, and what it has covered so far.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::CouponRow;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RedemptionRow {
    pub redemption_id: Uuid,
    pub coupon_code: String,
    pub tenant_id: String,
    pub subscription_id: Uuid,
    pub redeemed_on: NaiveDate,
    pub first_period_start: NaiveDate,
    pub invoices_discounted: i32,
    pub periods_discounted: i32,
    pub last_period_start: Option<NaiveDate>,
    pub covers_until: Option<NaiveDate>,
    pub removed_at: Option<DateTime<Utc>>,
}

pub struct RedemptionRepository;

impl RedemptionRepository {
    /// The redemption that applies to a subscription now, if any.
    pub async fn active(
        conn: &mut PgConnection,
        subscription_id: Uuid,
    ) -> sqlx::Result<Option<RedemptionRow>> {
        sqlx::query_as!(
            RedemptionRow,
            "SELECT redemption_id, coupon_code, tenant_id, subscription_id, redeemed_on, first_period_start, invoices_discounted, periods_discounted, last_period_start, covers_until, removed_at FROM coupon_redemptions
             WHERE subscription_id = $1 AND removed_at IS NULL",
            subscription_id
        )
        .fetch_optional(conn)
        .await
    }

    /// Counts one more redemption of a live coupon that has one left: one statement, so racing
    /// redemptions of the last one serialize on the coupon row and only one gets it. `None`:
    /// archived or exhausted (the caller reads which).
    pub async fn take(conn: &mut PgConnection, code: &str) -> sqlx::Result<Option<CouponRow>> {
        sqlx::query_as!(
            CouponRow,
            "UPDATE coupons SET times_redeemed = times_redeemed + 1, updated_at = now()
             WHERE code = $1 AND archived_at IS NULL
               AND (max_redemptions IS NULL OR times_redeemed < max_redemptions)
             RETURNING code, name, name_ar, percent_off, amount_off, currency, duration, duration_periods, plan_ids, max_redemptions, redeem_by, times_redeemed, archived_at, created_at",
            code
        )
        .fetch_optional(conn)
        .await
    }

    pub async fn insert(
        conn: &mut PgConnection,
        code: &str,
        tenant_id: &str,
        subscription_id: Uuid,
        redeemed_on: NaiveDate,
        first_period_start: NaiveDate,
        covers_until: Option<NaiveDate>,
    ) -> sqlx::Result<RedemptionRow> {
        sqlx::query_as!(
            RedemptionRow,
            "INSERT INTO coupon_redemptions
                 (coupon_code, tenant_id, subscription_id, redeemed_on, first_period_start,
                  covers_until)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING redemption_id, coupon_code, tenant_id, subscription_id, redeemed_on, first_period_start, invoices_discounted, periods_discounted, last_period_start, covers_until, removed_at",
            code,
            tenant_id,
            subscription_id,
            redeemed_on,
            first_period_start,
            covers_until
        )
        .fetch_one(conn)
        .await
    }

    /// The subscriptions among `ids` that hold a coupon now.
    pub async fn holders(
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> sqlx::Result<std::collections::HashSet<Uuid>> {
        let rows = sqlx::query_scalar!(
            "SELECT subscription_id FROM coupon_redemptions
             WHERE subscription_id = ANY($1) AND removed_at IS NULL",
            ids
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Counts one more invoice the redemption discounted, for the period starting `period_start`.
    pub async fn record_use(
        conn: &mut PgConnection,
        redemption_id: Uuid,
        period_start: Option<NaiveDate>,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE coupon_redemptions
             SET invoices_discounted = invoices_discounted + 1,
                 periods_discounted = periods_discounted
                     + CASE WHEN last_period_start IS DISTINCT FROM $2 THEN 1 ELSE 0 END,
                 last_period_start = COALESCE($2, last_period_start), updated_at = now()
             WHERE redemption_id = $1",
            redemption_id,
            period_start
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Takes the subscription's coupon off; `None` when it had none.
    pub async fn remove(
        conn: &mut PgConnection,
        subscription_id: Uuid,
    ) -> sqlx::Result<Option<RedemptionRow>> {
        sqlx::query_as!(
            RedemptionRow,
            "UPDATE coupon_redemptions SET removed_at = now(), updated_at = now()
             WHERE subscription_id = $1 AND removed_at IS NULL
             RETURNING redemption_id, coupon_code, tenant_id, subscription_id, redeemed_on, first_period_start, invoices_discounted, periods_discounted, last_period_start, covers_until, removed_at",
            subscription_id
        )
        .fetch_optional(conn)
        .await
    }
}
