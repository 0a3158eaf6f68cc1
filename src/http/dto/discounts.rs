//! A subscription's coupon on the wire: the redemption request and the discount it holds.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::billing::money::money_string;
use crate::http::dto::coupons::DurationSchema;
use crate::http::dto::invoice_schemas::CurrencySchema;
use crate::http::openapi::components::MoneySchema;
use crate::services::coupons::redeem::ActiveDiscount;

/// `{code}`: the coupon to redeem.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemCouponRequest {
    #[schema(pattern = "^[A-Z0-9_-]{3,40}$")]
    pub code: String,
}

/// The coupon a subscription holds.
#[derive(Serialize, ToSchema)]
#[schema(as = Discount)]
pub struct DiscountBody {
    #[schema(pattern = "^[A-Z0-9_-]{3,40}$")]
    pub code: String,
    #[schema(value_type = Option<MoneySchema>)]
    pub percent_off: Option<String>,
    #[schema(value_type = Option<MoneySchema>)]
    pub amount_off: Option<String>,
    #[schema(value_type = Option<CurrencySchema>)]
    pub currency: Option<String>,
    #[schema(value_type = DurationSchema)]
    pub duration: String,
    pub duration_periods: Option<i32>,
    pub redeemed_on: NaiveDate,
    /// For a `repeating` coupon: the end (exclusive, like `end_date`) of the last billing
    /// period it covers; null for `once` and `forever`.
    pub ends_after_period: Option<NaiveDate>,
}

impl From<&ActiveDiscount> for DiscountBody {
    fn from(d: &ActiveDiscount) -> Self {
        let c = &d.coupon;
        DiscountBody {
            code: c.code.clone(),
            percent_off: c.percent_off.map(money_string),
            amount_off: c.amount_off.map(money_string),
            currency: c.currency.clone(),
            duration: c.duration.clone(),
            duration_periods: c.duration_periods,
            redeemed_on: d.redemption.redeemed_on,
            ends_after_period: d.ends_after_period,
        }
    }
}

/// The answer of a redemption (201; 200 when the subscription already held this coupon).
#[derive(Serialize, ToSchema)]
pub struct RedeemResponse {
    pub success: bool,
    pub tenant_id: String,
    pub subscription_id: uuid::Uuid,
    pub discount: DiscountBody,
}

/// The answer of a removal: the coupon taken off.
#[derive(Serialize, ToSchema)]
pub struct RemoveDiscountResponse {
    pub success: bool,
    pub tenant_id: String,
    pub subscription_id: uuid::Uuid,
    pub removed: DiscountBody,
}
