//! `/coupons` on the wire: a coupon with its percentage or amount as 2-decimal strings, and the
//! create request, checked field by field into a `services::coupons::CouponInput`.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::billing::discount::{CouponDuration, DiscountValue};
use crate::billing::money::{money_string, PositiveAmount};
use crate::billing::types::{is_slug, Currency};
use crate::error::AppResult;
use crate::http::dto::invoice_schemas::CurrencySchema;
use crate::http::dto::number::WholeNumber;
use crate::http::openapi::components::{MoneyInputSchema, MoneySchema, PlanIdSchema};
use crate::services::coupons::{Coupon, CouponInput};
use crate::services::rates::parse_date;
use crate::services::validate::{check_len, Checks};

/// The pattern of a coupon code.
pub const CODE_PATTERN: &str = "^[A-Z0-9_-]{3,40}$";

pub fn is_code(s: &str) -> bool {
    (3..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A coupon as every coupon answer writes it.
#[derive(Serialize, ToSchema)]
#[schema(as = Coupon)]
pub struct CouponBody {
    #[schema(pattern = "^[A-Z0-9_-]{3,40}$")]
    pub code: String,
    pub name: String,
    pub name_ar: String,
    /// The percentage taken off the subtotal (2 decimals); null for an amount coupon.
    #[schema(value_type = Option<MoneySchema>)]
    pub percent_off: Option<String>,
    /// The amount taken off, in `currency`; null for a percentage coupon.
    #[schema(value_type = Option<MoneySchema>)]
    pub amount_off: Option<String>,
    #[schema(value_type = Option<CurrencySchema>)]
    pub currency: Option<String>,
    #[schema(value_type = DurationSchema)]
    pub duration: String,
    /// The number of billing periods of a `repeating` coupon; null otherwise.
    pub duration_periods: Option<i32>,
    /// The plans it applies to; empty: every plan.
    #[schema(value_type = Vec<PlanIdSchema>)]
    pub plan_ids: Vec<String>,
    pub max_redemptions: Option<i32>,
    /// The last day (UTC) it can be redeemed.
    pub redeem_by: Option<NaiveDate>,
    pub times_redeemed: i32,
    /// Whether it can be redeemed now: not archived, not past `redeem_by`, not exhausted.
    pub valid: bool,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&Coupon> for CouponBody {
    fn from(c: &Coupon) -> Self {
        let r = &c.row;
        CouponBody {
            code: r.code.clone(),
            name: r.name.clone(),
            name_ar: r.name_ar.clone(),
            percent_off: r.percent_off.map(money_string),
            amount_off: r.amount_off.map(money_string),
            currency: r.currency.clone(),
            duration: r.duration.clone(),
            duration_periods: r.duration_periods,
            plan_ids: r.plan_ids.clone(),
            max_redemptions: r.max_redemptions,
            redeem_by: r.redeem_by,
            times_redeemed: r.times_redeemed,
            valid: c.valid,
            archived: r.archived_at.is_some(),
            created_at: r.created_at,
        }
    }
}

/// `{coupon}`: the answer of create, read and archive.
#[derive(Serialize, ToSchema)]
pub struct CouponEnvelope {
    pub coupon: CouponBody,
}

impl From<&Coupon> for CouponEnvelope {
    fn from(c: &Coupon) -> Self {
        CouponEnvelope {
            coupon: CouponBody::from(c),
        }
    }
}

/// A page of coupons in code order.
#[derive(Serialize, ToSchema)]
pub struct CouponList {
    pub coupons: Vec<CouponBody>,
    pub total: i64,
    pub has_more: bool,
}

/// `once`, `repeating` (with `duration_periods`) or `forever`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DurationInput {
    Once,
    Repeating,
    Forever,
}

/// The `CouponDuration` schema.
pub struct DurationSchema;
impl PartialSchema for DurationSchema {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["once", "repeating", "forever"]))
                .build(),
        ))
    }
}
impl ToSchema for DurationSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CouponDuration")
    }
}

/// A percentage: > 0 and ≤ 100 with at most 2 decimals, as a string or a number.
pub struct PercentInputSchema;
impl PartialSchema for PercentInputSchema {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(
                r"^(100(\.0{1,2})?|(?!0{1,2}(\.0{1,2})?$)[0-9]{1,2}(\.[0-9]{1,2})?)$",
            ))
            .build();
        let number = ObjectBuilder::new()
            .schema_type(Type::Number)
            .exclusive_minimum(Some(0))
            .maximum(Some(100))
            .multiple_of(Some(0.01))
            .build();
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(text)
                .item(number)
                .description(Some(
                    "A percentage > 0 and <= 100 with at most 2 decimals, as a string or a number.",
                ))
                .examples([json!("15.00")])
                .build(),
        ))
    }
}
impl ToSchema for PercentInputSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PercentInput")
    }
}

/// A coupon to create. Exactly one of `percent_off` and `amount_off`; `currency` goes with
/// `amount_off`; `duration_periods` with (and only with) `repeating`; `redeem_by` not in the
/// past; every plan of `plan_ids` must exist.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCouponRequest {
    #[schema(pattern = "^[A-Z0-9_-]{3,40}$")]
    pub code: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub name_ar: String,
    #[schema(value_type = Option<PercentInputSchema>)]
    pub percent_off: Option<PositiveAmount>,
    #[schema(value_type = Option<MoneyInputSchema>)]
    pub amount_off: Option<PositiveAmount>,
    /// The currency of `amount_off` (case-insensitive).
    #[schema(value_type = Option<CurrencySchema>)]
    pub currency: Option<String>,
    #[schema(value_type = DurationSchema)]
    pub duration: DurationInput,
    /// Billing periods of a `repeating` coupon.
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 36)]
    pub duration_periods: Option<WholeNumber>,
    /// Empty or absent: every plan.
    #[serde(default)]
    #[schema(value_type = Option<Vec<PlanIdSchema>>, max_items = 100)]
    pub plan_ids: Option<Vec<String>>,
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 2147483647)]
    pub max_redemptions: Option<WholeNumber>,
    /// The last day (UTC) it can be redeemed; today or later.
    #[schema(value_type = Option<NaiveDate>)]
    pub redeem_by: Option<String>,
}

impl CreateCouponRequest {
    /// Checks every field, reporting all problems at once; `today` bounds `redeem_by`.
    pub fn validate(self, today: NaiveDate) -> AppResult<CouponInput> {
        let mut checks = Checks::default();
        if !is_code(&self.code) {
            checks.push("code", "must be 3-40 of A-Z, 0-9, _ and -");
        }
        for (field, text) in [("name", &self.name), ("name_ar", &self.name_ar)] {
            check_len(&mut checks, field, text, 200);
            if text.contains('\0') {
                checks.push(field, "must not contain U+0000");
            }
        }
        let currency = self.currency.as_deref().map(|c| {
            let parsed = Currency::parse(c);
            if parsed.is_none() {
                checks.push("currency", "must be one of USD, YER, SAR, AED, EUR");
            }
            parsed
        });
        let value = discount_value(&mut checks, self.percent_off, self.amount_off, currency);
        let duration = duration(&mut checks, self.duration, self.duration_periods);
        let plan_ids = self.plan_ids.unwrap_or_default();
        if plan_ids.len() > 100 {
            checks.push("plan_ids", "must list at most 100 plans");
        }
        if plan_ids.iter().any(|p| !is_slug(p)) {
            checks.push("plan_ids", "must be plan ids ([a-z][a-z0-9_]{0,99})");
        }
        let max_redemptions = self.max_redemptions.map(|w| {
            let n = w.to_i32().filter(|n| *n >= 1);
            if n.is_none() {
                checks.push(
                    "max_redemptions",
                    "must be a whole number from 1 to 2147483647",
                );
            }
            n
        });
        let redeem_by = self.redeem_by.as_deref().map(|s| match parse_date(s) {
            Some(d) if d >= today => Some(d),
            Some(_) => {
                checks.push("redeem_by", "must be today or later");
                None
            }
            None => {
                checks.push("redeem_by", "must be a date as YYYY-MM-DD");
                None
            }
        });
        checks.finish()?;
        let (Some(value), Some(duration)) = (value, duration) else {
            // finish() returned early for every missing piece.
            return Err(crate::error::AppError::internal(anyhow::anyhow!(
                "coupon validation incomplete"
            )));
        };
        Ok(CouponInput {
            code: self.code,
            name: self.name.trim().to_string(),
            name_ar: self.name_ar.trim().to_string(),
            value,
            currency: currency.flatten(),
            duration,
            plan_ids,
            max_redemptions: max_redemptions.flatten(),
            redeem_by: redeem_by.flatten(),
        })
    }
}

/// The discount: exactly one of the two, a percentage at most 100, a currency with (and only
/// with) an amount.
fn discount_value(
    checks: &mut Checks,
    percent_off: Option<PositiveAmount>,
    amount_off: Option<PositiveAmount>,
    currency: Option<Option<Currency>>,
) -> Option<DiscountValue> {
    match (percent_off, amount_off) {
        (Some(p), None) => {
            if p.value() > rust_decimal::Decimal::ONE_HUNDRED {
                checks.push("percent_off", "must be at most 100");
            }
            if currency.is_some() {
                checks.push("currency", "goes with amount_off only");
            }
            Some(DiscountValue::PercentOff(p.value()))
        }
        (None, Some(a)) => {
            if currency.is_none() {
                checks.push("currency", "is required with amount_off");
            }
            Some(DiscountValue::AmountOff(a.value()))
        }
        _ => {
            checks.push(
                "percent_off",
                "give exactly one of percent_off and amount_off",
            );
            None
        }
    }
}

/// The duration: `duration_periods` (1–36) with `repeating` and only with it.
fn duration(
    checks: &mut Checks,
    duration: DurationInput,
    periods: Option<WholeNumber>,
) -> Option<CouponDuration> {
    let periods = periods.map(|w| w.0);
    match (duration, periods) {
        (DurationInput::Repeating, Some(n)) if (1..=36).contains(&n) => {
            Some(CouponDuration::Repeating(n as u32))
        }
        (DurationInput::Repeating, Some(_)) => {
            checks.push("duration_periods", "must be from 1 to 36");
            None
        }
        (DurationInput::Repeating, None) => {
            checks.push("duration_periods", "is required with duration repeating");
            None
        }
        (_, Some(_)) => {
            checks.push("duration_periods", "goes with duration repeating only");
            None
        }
        (DurationInput::Once, None) => Some(CouponDuration::Once),
        (DurationInput::Forever, None) => Some(CouponDuration::Forever),
    }
}
