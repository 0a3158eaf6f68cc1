//! The set-based queries of the platform reports: rows grouped by the dimensions a report
//! shows, folded into exact figures by `services::reports`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::types::{BillingCycle, SubscriptionStatus};

pub struct ReportRepository;

/// One group of the revenue query: amounts in `currency`, converted at `rate`.
#[derive(sqlx::FromRow)]
pub struct RevenueGroup {
    pub currency: String,
    pub rate: Decimal,
    pub plan_id: String,
    pub month: String,
    pub method: Option<String>,
    pub invoiced: Decimal,
    pub collected: Decimal,
    pub refunded: Decimal,
    pub outstanding: Decimal,
}

/// One group of the subscription book.
#[derive(sqlx::FromRow)]
pub struct BookGroup {
    pub status: SubscriptionStatus,
    pub plan_id: String,
    pub billing_cycle: BillingCycle,
    pub count: i64,
    /// The plan's USD price for this cycle, summed over the group.
    pub cycle_price_usd: Decimal,
    pub created_in_window: i64,
    pub canceled_in_window: i64,
}

impl ReportRepository {
    /// Revenue groups: invoices issued in `[start, end]`, payments and refunds in `[from, until)`.
    ///
    /// Invoices count by issue date; payments by `paid_at` and refunds by `created_at`, both in UTC.
    /// Payments and refunds are attributed to their invoice's currency, rate and plan (the plan the
    /// invoice was issued for, stored on it: a later plan change does not move it). Drafts are
    /// not issued and voided (`canceled`) invoices are not revenue, so neither counts as invoiced.
    /// Invoices without a plan are reported under the plan `none`.
    pub async fn revenue_groups(
        conn: &mut PgConnection,
        start: NaiveDate,
        end: NaiveDate,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> sqlx::Result<Vec<RevenueGroup>> {
        sqlx::query_as!(
            RevenueGroup,
            r#"SELECT i.currency AS "currency!", i.exchange_rate AS "rate!",
       COALESCE(i.plan_id, 'none') AS "plan_id!", to_char(i.issue_date, 'YYYY-MM') AS "month!",
       NULL::text AS method,
       COALESCE(sum(i.total) FILTER (WHERE i.status NOT IN ('draft', 'canceled')), 0) AS "invoiced!",
       0::numeric AS "collected!", 0::numeric AS "refunded!",
       COALESCE(sum(i.amount_due) FILTER (WHERE i.status IN ('pending', 'overdue')), 0) AS "outstanding!"
  FROM invoices i
 WHERE i.issue_date BETWEEN $1 AND $2
 GROUP BY 1, 2, 3, 4
UNION ALL
SELECT i.currency, i.exchange_rate, COALESCE(i.plan_id, 'none'),
       to_char(p.paid_at AT TIME ZONE 'UTC', 'YYYY-MM'), p.method::text,
       0, sum(p.amount), 0, 0
  FROM payments p JOIN invoices i ON i.invoice_id = p.invoice_id
 WHERE p.status IN ('succeeded', 'refunded') AND p.paid_at >= $3 AND p.paid_at < $4
 GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT i.currency, i.exchange_rate, COALESCE(i.plan_id, 'none'),
       to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM'), NULL::text,
       0, 0, sum(r.amount), 0
  FROM refunds r JOIN invoices i ON i.invoice_id = r.invoice_id
 WHERE r.status = 'succeeded' AND r.created_at >= $3 AND r.created_at < $4
 GROUP BY 1, 2, 3, 4"#,
            start,
            end,
            from,
            until
        )
        .fetch_all(conn)
        .await
    }

    /// The subscription book by status, plan and cycle, with what changed in `(since, now]`.
    pub async fn book_groups(
        conn: &mut PgConnection,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<BookGroup>> {
        sqlx::query_as!(
            BookGroup,
            r#"SELECT s.status AS "status: _", s.plan_id, s.billing_cycle AS "billing_cycle: _",
       count(*) AS "count!",
       COALESCE(sum(CASE s.billing_cycle WHEN 'monthly' THEN p.monthly_price_usd
                                         WHEN 'quarterly' THEN p.quarterly_price_usd
                                         ELSE p.yearly_price_usd END), 0) AS "cycle_price_usd!",
       count(*) FILTER (WHERE s.created_at > $1 AND s.created_at <= $2) AS "created_in_window!",
       count(*) FILTER (WHERE s.status = 'canceled' AND s.canceled_at > $1 AND s.canceled_at <= $2)
           AS "canceled_in_window!"
  FROM subscriptions s JOIN plans p ON p.plan_id = s.plan_id
 GROUP BY 1, 2, 3"#,
            since,
            now
        )
        .fetch_all(conn)
        .await
    }

    pub async fn tenant_count(conn: &mut PgConnection) -> sqlx::Result<i64> {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM tenants"#)
            .fetch_one(conn)
            .await
    }

    /// Trials that ended, converted and subscriptions reactivated in `(since, now]`.
    ///
    /// Trial conversion over the window. A trial "ended in the window" when either
    /// - the renewal job recorded `subscription.trial_expired` for it in the window (it then became
    ///   active); it counts as converted unless the subscription is canceled now, or
    /// - it was canceled in the window before its trial end date (never converted).
    ///
    /// Conversion = converted / ended. The event is the only record of a trial ending, so a trial
    /// converted and canceled within the window counts as not converted.
    pub async fn trials(
        conn: &mut PgConnection,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> sqlx::Result<(i64, i64, i64)> {
        let r = sqlx::query!(
            r#"WITH expired AS (
    SELECT DISTINCT (payload->>'subscription_id')::uuid AS id FROM outbox_events
     WHERE event_type = 'subscription.trial_expired' AND occurred_at > $1 AND occurred_at <= $2
       AND payload->>'subscription_id' ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$'
), expired_subs AS (
    SELECT s.status FROM expired e JOIN subscriptions s ON s.subscription_id = e.id
), canceled_in_trial AS (
    SELECT 1 FROM subscriptions s
     WHERE s.status = 'canceled' AND s.trial_end_date IS NOT NULL
       AND s.canceled_at > $1 AND s.canceled_at <= $2
       AND (s.canceled_at AT TIME ZONE 'UTC')::date < s.trial_end_date
       AND NOT EXISTS (SELECT 1 FROM expired e WHERE e.id = s.subscription_id)
)
SELECT (SELECT count(*) FROM expired_subs) + (SELECT count(*) FROM canceled_in_trial) AS "ended!",
       (SELECT count(*) FROM expired_subs WHERE status <> 'canceled') AS "converted!",
       (SELECT count(*) FROM outbox_events
         WHERE event_type = 'subscription.reactivated' AND occurred_at > $1 AND occurred_at <= $2)
           AS "reactivated!""#,
            since,
            now
        )
        .fetch_one(conn)
        .await?;
        Ok((r.ended, r.converted, r.reactivated))
    }
}
