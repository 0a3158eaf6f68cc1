//! Processed gateway webhook events: one row per (provider, event id), written in the same
//! transaction as the event's effect, so a redelivered event changes nothing.

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct WebhookEventRepository;

impl WebhookEventRepository {
    /// Records the event; false when it was already recorded (a replay). Concurrent deliveries
    /// of one event serialize on the primary key: the second waits for the first to commit and
    /// then sees it.
    pub async fn record(
        conn: &mut PgConnection,
        provider: &str,
        event_id: &str,
        event_type: &str,
        payload: &Value,
    ) -> sqlx::Result<bool> {
        let inserted = sqlx::query_scalar!(
            r#"INSERT INTO processed_webhook_events (provider, event_id, event_type, outcome, payload)
             VALUES ($1, $2, $3, 'received', $4)
             ON CONFLICT (provider, event_id) DO NOTHING
             RETURNING 1 AS "inserted!""#,
            provider,
            event_id,
            event_type,
            payload
        )
        .fetch_optional(conn)
        .await?;
        Ok(inserted.is_some())
    }

    /// Takes back a `record` made in the caller's transaction: the event was refused (it did not
    /// match its payment), so a later, correct delivery with the same id must not be taken for
    /// a replay. The row's lock is held until the transaction ends, so a concurrent delivery
    /// waiting on it then inserts its own.
    pub async fn unrecord(
        conn: &mut PgConnection,
        provider: &str,
        event_id: &str,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "DELETE FROM processed_webhook_events WHERE provider = $1 AND event_id = $2",
            provider,
            event_id
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// What the event did, and to which payment.
    pub async fn set_outcome(
        conn: &mut PgConnection,
        provider: &str,
        event_id: &str,
        payment_id: Option<Uuid>,
        outcome: &str,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE processed_webhook_events SET payment_id = $3, outcome = $4
             WHERE provider = $1 AND event_id = $2",
            provider,
            event_id,
            payment_id,
            outcome
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}
