//! Coupons: their definitions and how often they were redeemed.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::pagination::Page;
use crate::repository::keyset::{none, After, Keyset};

pub mod redemptions;

/// One stored coupon.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct CouponRow {
    pub code: String,
    pub name: String,
    pub name_ar: String,
    pub percent_off: Option<Decimal>,
    pub amount_off: Option<Decimal>,
    pub currency: Option<String>,
    pub duration: String,
    pub duration_periods: Option<i32>,
    pub plan_ids: Vec<String>,
    pub max_redemptions: Option<i32>,
    pub redeem_by: Option<NaiveDate>,
    pub times_redeemed: i32,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A coupon to insert, already validated.
#[derive(Debug, Clone)]
pub struct NewCoupon<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub name_ar: &'a str,
    pub percent_off: Option<Decimal>,
    pub amount_off: Option<Decimal>,
    pub currency: Option<&'a str>,
    pub duration: &'a str,
    pub duration_periods: Option<i32>,
    pub plan_ids: &'a [String],
    pub max_redemptions: Option<i32>,
    pub redeem_by: Option<NaiveDate>,
}

/// The columns of [`CouponRow`], for the keyset list (a query built at run time).
const COUPON_COLUMNS: &str = "code, name, name_ar, percent_off, amount_off, currency, duration, \
    duration_periods, plan_ids, max_redemptions, redeem_by, times_redeemed, archived_at, \
    created_at";

pub struct CouponRepository;

impl CouponRepository {
    /// Inserts a coupon; `None` when the code is taken (archived coupons keep theirs).
    pub async fn create(
        conn: &mut PgConnection,
        c: &NewCoupon<'_>,
    ) -> sqlx::Result<Option<CouponRow>> {
        sqlx::query_as!(
            CouponRow,
            "INSERT INTO coupons (code, name, name_ar, percent_off, amount_off, currency, duration,
                 duration_periods, plan_ids, max_redemptions, redeem_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (code) DO NOTHING
             RETURNING code, name, name_ar, percent_off, amount_off, currency, duration, duration_periods, plan_ids, max_redemptions, redeem_by, times_redeemed, archived_at, created_at",
            c.code,
            c.name,
            c.name_ar,
            c.percent_off,
            c.amount_off,
            c.currency,
            c.duration,
            c.duration_periods,
            c.plan_ids,
            c.max_redemptions,
            c.redeem_by
        )
        .fetch_optional(conn)
        .await
    }

    /// The ids among `plan_ids` that name no plan, in the order given.
    pub async fn unknown_plans(
        conn: &mut PgConnection,
        plan_ids: &[String],
    ) -> sqlx::Result<Vec<String>> {
        if plan_ids.is_empty() {
            return Ok(vec![]);
        }
        sqlx::query_scalar!(
            r#"SELECT id AS "id!" FROM unnest($1::text[]) WITH ORDINALITY AS given(id, n)
             WHERE NOT EXISTS (SELECT 1 FROM plans WHERE plan_id = given.id)
             ORDER BY n"#,
            plan_ids
        )
        .fetch_all(conn)
        .await
    }

    pub async fn get(conn: &mut PgConnection, code: &str) -> sqlx::Result<Option<CouponRow>> {
        sqlx::query_as!(
            CouponRow,
            "SELECT code, name, name_ar, percent_off, amount_off, currency, duration, duration_periods, plan_ids, max_redemptions, redeem_by, times_redeemed, archived_at, created_at FROM coupons WHERE code = $1",
            code
        )
        .fetch_optional(conn)
        .await
    }

    /// Coupons in code order after `starting_after` (a code), with the true total.
    pub async fn list(
        conn: &mut PgConnection,
        limit: i64,
        starting_after: Option<&str>,
    ) -> sqlx::Result<Page<CouponRow>> {
        const LIST: Keyset = Keyset::asc("coupons", COUPON_COLUMNS, &["code"]);
        LIST.page(conn, none, none, After::row(starting_after), limit)
            .await
    }

    /// Archives a coupon (no new redemptions); an archived one stays as it is. `None`: no such
    /// coupon. The flag tells whether this call archived it.
    pub async fn archive(
        conn: &mut PgConnection,
        code: &str,
    ) -> sqlx::Result<Option<(CouponRow, bool)>> {
        let changed = sqlx::query_as!(
            CouponRow,
            "UPDATE coupons SET archived_at = now(), updated_at = now()
             WHERE code = $1 AND archived_at IS NULL
             RETURNING code, name, name_ar, percent_off, amount_off, currency, duration, duration_periods, plan_ids, max_redemptions, redeem_by, times_redeemed, archived_at, created_at",
            code
        )
        .fetch_optional(&mut *conn)
        .await?;
        match changed {
            Some(row) => Ok(Some((row, true))),
            None => Ok(Self::get(conn, code).await?.map(|row| (row, false))),
        }
    }
}
