//! The seed's promotion and bulk pricing: coupon `SEASON15` (15 % off for three billing
//! periods) and graduated pricing of the professional plan's API-call overage.

use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::PgConnection;

use super::SeedReport;
use crate::billing::pricing::{OveragePricing, Tier};

pub const SEED_COUPON: &str = "SEASON15";
const GRADUATED_PLAN: &str = "professional";
const GRADUATED_METRIC: &str = "api_calls_per_day";

/// Adds what is not there yet; running it again changes nothing.
pub(super) async fn seed_pricing(
    conn: &mut PgConnection,
    report: &mut SeedReport,
) -> sqlx::Result<()> {
    let coupon = sqlx::query!(
        "INSERT INTO coupons (code, name, name_ar, percent_off, duration, duration_periods)
         VALUES ($1, 'Planting season', 'موسم الزراعة', 15, 'repeating', 3)
         ON CONFLICT (code) DO NOTHING",
        SEED_COUPON
    )
    .execute(&mut *conn)
    .await?;
    report.lines.push(if coupon.rows_affected() == 1 {
        format!("coupon {SEED_COUPON}: 15% off for 3 billing periods")
    } else {
        format!("coupon {SEED_COUPON}: already present, skipped")
    });
    let graduated = OveragePricing::Graduated {
        tiers: vec![
            Tier {
                up_to: Some(10_000),
                unit_price: Decimal::new(1, 3),
                flat_fee: None,
            },
            Tier {
                up_to: None,
                unit_price: Decimal::new(5, 4),
                flat_fee: None,
            },
        ],
    };
    let priced = sqlx::query!(
        "INSERT INTO plan_overage_pricing (plan_id, metric, pricing) VALUES ($1, $2, $3)
         ON CONFLICT (plan_id, metric) DO NOTHING",
        GRADUATED_PLAN,
        GRADUATED_METRIC,
        Json(&graduated) as _
    )
    .execute(&mut *conn)
    .await?;
    report.lines.push(if priced.rows_affected() == 1 {
        format!(
            "plan {GRADUATED_PLAN}: {GRADUATED_METRIC} overage graduated \
             (0.001 USD up to 10000 units over the limit, 0.0005 above)"
        )
    } else {
        format!("plan {GRADUATED_PLAN}: {GRADUATED_METRIC} pricing already set, skipped")
    });
    Ok(())
}
