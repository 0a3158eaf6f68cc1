//! Exchange rates: units of a currency per USD, with effective dates.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::types::Currency;

pub struct RateRepository;

impl RateRepository {
    /// The rate in force on `on` (the latest effective on or before it). USD is always 1.
    pub async fn rate_on(
        conn: &mut PgConnection,
        currency: Currency,
        on: NaiveDate,
    ) -> sqlx::Result<Decimal> {
        if currency == Currency::Usd {
            return Ok(Decimal::ONE);
        }
        let rate = sqlx::query_scalar!(
            "SELECT rate FROM exchange_rates WHERE currency = $1 AND effective_date <= $2
             ORDER BY effective_date DESC LIMIT 1",
            currency.code(),
            on
        )
        .fetch_optional(conn)
        .await?;
        rate.ok_or_else(|| {
            sqlx::Error::Protocol(format!("no exchange rate for {currency} on {on}"))
        })
    }
}

/// One stored rate: `rate` units of `currency` per USD from `effective_date` on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RateRow {
    pub currency: String,
    pub effective_date: NaiveDate,
    pub rate: Decimal,
    pub source: String,
}

impl RateRepository {
    /// Every stored rate, newest first within each currency.
    pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<RateRow>> {
        sqlx::query_as!(
            RateRow,
            "SELECT currency, effective_date, rate, source FROM exchange_rates
             ORDER BY currency, effective_date DESC"
        )
        .fetch_all(conn)
        .await
    }

    /// Serializes rate changes of one currency until the transaction ends, so the "previous
    /// rate" a change reports is the one it actually replaced.
    pub async fn lock_currency(conn: &mut PgConnection, currency: Currency) -> sqlx::Result<()> {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtext('exchange_rate:' || $1))",
            currency.code()
        )
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Inserts the rate for `currency` on `effective_date`, or replaces the one stored for that
    /// day. Returns the stored row and whether it was new. Invoices keep the rate they stored.
    pub async fn upsert(
        conn: &mut PgConnection,
        currency: Currency,
        effective_date: NaiveDate,
        rate: Decimal,
        source: &str,
    ) -> sqlx::Result<(RateRow, bool)> {
        // `xmax = 0` only for a freshly inserted tuple; an updated one carries our xid.
        let r = sqlx::query!(
            r#"INSERT INTO exchange_rates (currency, effective_date, rate, source)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (currency, effective_date)
                 DO UPDATE SET rate = EXCLUDED.rate, source = EXCLUDED.source, updated_at = now()
                 RETURNING currency, effective_date, rate, source, (xmax = 0) AS "inserted!""#,
            currency.code(),
            effective_date,
            rate,
            source
        )
        .fetch_one(conn)
        .await?;
        Ok((
            RateRow {
                currency: r.currency,
                effective_date: r.effective_date,
                rate: r.rate,
                source: r.source,
            },
            r.inserted,
        ))
    }
}
