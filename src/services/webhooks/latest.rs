//! Stripe's latest word on refunds we recorded as failed. An event carries the object as it
//! was when the event was made, and events arrive in any order: a `refund.updated` saying
//! `succeeded` may be older than the `refund.failed` that followed it. Before a failed refund
//! is reopened on an event's word, the Refund is read back from Stripe (outside any
//! transaction, no lock held) and its current state is applied instead.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::gateways::{PaymentGateway, RefundOutcome, RefundStatus as GatewayStatus};
use crate::repository::payments::refunds::{RefundRepository, RefundRow, RefundStatus};
use crate::repository::payments::PaymentRepository;
use crate::services::refunds::gateway::request_for;
use crate::services::refunds::RefundError;

/// Stripe's current state of refunds, by Stripe's refund id.
pub(super) type Latest = HashMap<String, RefundOutcome>;

/// The Refund objects an event carries: its object for `refund.*`, the embedded list of a
/// `charge.refunded` (when Stripe expanded it).
pub(super) fn refund_objects<'a>(kind: &str, obj: &'a Value) -> Vec<&'a Value> {
    match kind {
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            vec![obj]
        }
        "charge.refunded" => obj["refunds"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["object"] == "refund" && r["status"].is_string())
            .collect(),
        _ => Vec::new(),
    }
}

/// Our refund a Refund object is about: by the refund id in its metadata, else by its id.
pub(super) async fn our_refund(
    conn: &mut PgConnection,
    obj: &Value,
) -> AppResult<Option<RefundRow>> {
    let by_metadata = obj["metadata"]["refund_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok());
    if let Some(id) = by_metadata {
        if let Some(r) = RefundRepository::get(conn, id).await? {
            return Ok(Some(r));
        }
    }
    match obj["id"].as_str() {
        Some(ext) => Ok(RefundRepository::get_by_external_id(conn, ext).await?),
        None => Ok(None),
    }
}

/// Reads back from Stripe each refund the event says succeeded that we hold as failed.
/// Without a Stripe client (no API key) the event's word is taken. A lookup that fails
/// answers 502, before anything is recorded, so Stripe delivers the event again.
pub(super) async fn latest_states(
    pool: &PgPool,
    gateway: Option<&dyn PaymentGateway>,
    kind: &str,
    obj: &Value,
) -> AppResult<Latest> {
    let mut latest = Latest::new();
    let Some(gateway) = gateway else {
        return Ok(latest);
    };
    for r in refund_objects(kind, obj) {
        let Some(ext) = r["id"].as_str().filter(|_| r["status"] == "succeeded") else {
            continue;
        };
        let mut conn = pool.acquire().await?;
        let Some(row) = our_refund(&mut conn, r).await? else {
            continue;
        };
        if row.status != RefundStatus::Failed {
            continue;
        }
        let Some(payment) = PaymentRepository::get_by_id(&mut conn, None, row.payment_id).await?
        else {
            continue;
        };
        drop(conn);
        let request = request_for(pool, &payment, &row).await?;
        let found = gateway
            .lookup_refund(&request, Some(ext))
            .await
            .map_err(|e| {
                tracing::warn!(refund.id = %row.refund_id, error = %e, "refund lookup failed");
                unconfirmed()
            })?;
        let outcome = found.unwrap_or(RefundOutcome {
            external_refund_id: Some(ext.to_string()),
            status: GatewayStatus::Failed(
                "The payment gateway has no record of this refund".into(),
            ),
        });
        latest.insert(ext.to_string(), outcome);
    }
    Ok(latest)
}

fn unconfirmed() -> AppError {
    RefundError::Unconfirmed.into()
}
