//! Exchange rates: units of a currency per USD, with effective dates.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::types::Currency;

pub struct RateRepository;

impl RateRepository {
    /// The rate in force on `on` (the latest effective on or before it). USD is always 1.
    pub async fn rate_on(conn: &mut PgConnection, currency: Currency, on: NaiveDate) -> sqlx::Result<Decimal> {
        if currency == Currency::Usd {
            return Ok(Decimal::ONE);
        }
        let rate: Option<Decimal> = sqlx::query_scalar(
            "SELECT rate FROM exchange_rates WHERE currency = $1 AND effective_date <= $2
             ORDER BY effective_date DESC LIMIT 1",
        )
        .bind(currency.code())
        .bind(on)
        .fetch_optional(conn)
        .await?;
        rate.ok_or_else(|| sqlx::Error::Protocol(format!("no exchange rate for {currency} on {on}")))
    }
}
