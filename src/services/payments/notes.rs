//! What a payment's `metadata` column holds, typed: the payer's reference and notes, and the
//! notes left for staff when money could not be applied as it arrived.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::PaymentInput;
use crate::billing::money;
use crate::repository::payments::PaymentRepository;

/// A new payment's metadata: what the payer wrote on it.
pub(crate) fn metadata(input: &PaymentInput) -> Value {
    #[derive(Serialize)]
    struct Metadata<'a> {
        reference: Option<&'a str>,
        notes: Option<&'a str>,
    }
    let m = Metadata {
        reference: input.reference.as_deref(),
        notes: input.notes.as_deref(),
    };
    serde_json::to_value(m).unwrap_or(Value::Null)
}

/// A note on a payment for staff, stored as `{"<kind>": {...}}` in its metadata (a later
/// note of the same kind replaces the earlier one).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Note<'a> {
    /// The gateway collected money that could not be applied (`error`: the refusal's code).
    UnappliedCharge {
        external_id: Option<&'a str>,
        error: &'a str,
        at: DateTime<Utc>,
    },
    /// A webhook's amount or currency differs from what the gateway was asked to collect.
    WebhookMismatch {
        #[serde(with = "money::as_string")]
        expected_amount: Decimal,
        expected_currency: &'a str,
        #[serde(with = "money::as_string::option")]
        received_amount: Option<Decimal>,
        received_currency: &'a str,
        external_id: Option<&'a str>,
        at: DateTime<Utc>,
    },
    /// Money arrived for a payment staff had rejected.
    SucceededAfterFailure {
        external_id: Option<&'a str>,
        at: DateTime<Utc>,
    },
    /// A failed refund could not be given back to its invoice (it was paid again meanwhile).
    RefundFailedSurplus {
        refund_id: Uuid,
        #[serde(with = "money::as_string")]
        amount: Decimal,
        at: DateTime<Utc>,
    },
}

/// Leaves `note` on the payment.
pub(crate) async fn leave(
    conn: &mut PgConnection,
    tenant_id: &str,
    payment_id: Uuid,
    note: Note<'_>,
) -> sqlx::Result<()> {
    let patch = serde_json::to_value(note).unwrap_or(Value::Null);
    PaymentRepository::merge_metadata(conn, tenant_id, payment_id, &patch).await
}
