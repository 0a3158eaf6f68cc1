//! Step 3 of a gateway payment, shared with the reconciliation job: the gateway's answer
//! applied to the payment (settled, failed, or left open with the gateway's id), and the
//! errors a client is answered when it is not a success.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::super::notes::{self, Note};
use super::super::{
    lock_payment, settle_with_external, PaymentAnswer, PaymentError, PaymentResult,
};
use crate::billing::types::PaymentStatus;
use crate::error::{AppError, AppResult};
use crate::gateways::{ChargeOutcome, ChargeStatus, Decline, GatewayError};
use crate::repository::invoices::{InvoiceRepository, InvoiceRow};
use crate::repository::payments::{PaymentChanges, PaymentRepository, PaymentRow};
use crate::services::invoices::invoice_not_found;

/// Step 3 (and the reconciliation job): applies the gateway's answer to the payment. Ok is the
/// 201 body; a decline is 402 `card_declined`, a refusal or an unknown outcome 502
/// `gateway_error` (the payment stays `failed` or `pending`).
pub(crate) async fn finish(
    conn: &mut PgConnection,
    payment_id: Uuid,
    answer: Result<ChargeOutcome, GatewayError>,
    now: DateTime<Utc>,
) -> AppResult<PaymentAnswer> {
    let outcome = match answer {
        Ok(o) => o,
        Err(_) => {
            let (tenant_id, _, current) = lock_payment(conn, payment_id).await?;
            let p = PaymentRepository::mark_unconfirmed(
                conn,
                &tenant_id,
                payment_id,
                "The payment gateway did not answer; the payment is not confirmed",
            )
            .await?
            .unwrap_or(current);
            return settled_anyway(conn, p).await;
        }
    };
    let external_id = outcome.external_id;
    match outcome.status {
        ChargeStatus::Succeeded => succeeded(conn, payment_id, external_id, now).await,
        ChargeStatus::Processing => {
            let (p, inv) = keep_open(conn, payment_id, external_id).await?;
            Ok(PaymentAnswer::new(&p, &inv, PaymentResult::SentToGateway))
        }
        ChargeStatus::RequiresAction {
            client_secret,
            next_action,
        } => {
            let (p, inv) = keep_open(conn, payment_id, external_id).await?;
            let action = PaymentResult::RequiresAction {
                client_secret,
                next_action,
            };
            Ok(PaymentAnswer::new(&p, &inv, action))
        }
        ChargeStatus::Declined(d) => {
            let p = fail(conn, payment_id, external_id, &d.message, now).await?;
            match p {
                Some(p) => Err(card_declined(&p, &d)),
                None => settled_anyway_by_id(conn, payment_id).await,
            }
        }
        ChargeStatus::Failed(reason) => {
            let p = fail(conn, payment_id, external_id, &reason, now).await?;
            match p {
                Some(p) => Err(gateway_error(&p, Some(&reason))),
                None => settled_anyway_by_id(conn, payment_id).await,
            }
        }
    }
}

/// The gateway collected the money: settle. A savepoint, so a refusal to apply the money
/// leaves a note instead of nothing.
async fn succeeded(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_id: Option<String>,
    now: DateTime<Utc>,
) -> AppResult<PaymentAnswer> {
    let mut sp = conn.begin().await?;
    match settle_with_external(&mut sp, payment_id, external_id.as_deref(), None, now).await {
        Ok(s) => {
            sp.commit().await?;
            Ok(PaymentAnswer::new(
                &s.payment,
                &s.invoice,
                PaymentResult::Received,
            ))
        }
        Err(e) => {
            sp.rollback().await?;
            let (tenant_id, _, _) = lock_payment(conn, payment_id).await?;
            let note = Note::UnappliedCharge {
                external_id: external_id.as_deref(),
                error: e.code,
                at: now,
            };
            notes::leave(conn, &tenant_id, payment_id, note).await?;
            tracing::error!(payment.id = %payment_id, error = e.code, "gateway collected money that could not be applied");
            Err(e)
        }
    }
}

/// Still open at the gateway: keep the payment `processing` with the gateway's id.
async fn keep_open(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_id: Option<String>,
) -> AppResult<(PaymentRow, InvoiceRow)> {
    let (tenant_id, inv, current) = lock_payment(conn, payment_id).await?;
    if current.status != PaymentStatus::Pending && current.status != PaymentStatus::Processing {
        return Ok((current, inv));
    }
    let changes = PaymentChanges {
        status: Some(PaymentStatus::Processing),
        external_id: external_id.map(Some),
        failure_reason: Some(None),
        ..Default::default()
    };
    let p = PaymentRepository::update(conn, &tenant_id, payment_id, &changes)
        .await?
        .ok_or_else(super::super::payment_not_found)?;
    Ok((p, inv))
}

/// Definitely not collected: the payment fails (with the gateway's id, when it gave one).
/// `None` when it had already left pending/processing (a webhook settled it meanwhile).
pub(crate) async fn fail(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_id: Option<String>,
    reason: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<PaymentRow>> {
    let (tenant_id, _, _) = lock_payment(conn, payment_id).await?;
    if let Some(id) = external_id {
        let changes = PaymentChanges {
            external_id: Some(Some(id)),
            ..Default::default()
        };
        PaymentRepository::update(conn, &tenant_id, payment_id, &changes).await?;
    }
    let failed =
        PaymentRepository::mark_failed(conn, &tenant_id, payment_id, reason, None, now).await?;
    let Some(p) = failed else {
        return Ok(None);
    };
    super::super::failed_event(conn, &p, reason).await?;
    Ok(Some(p))
}

async fn settled_anyway_by_id(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> AppResult<PaymentAnswer> {
    let (_, _, current) = lock_payment(conn, payment_id).await?;
    settled_anyway(conn, current).await
}

/// A webhook may have settled the payment while we waited for the gateway: then the request
/// succeeded after all. Otherwise the 502.
async fn settled_anyway(conn: &mut PgConnection, p: PaymentRow) -> AppResult<PaymentAnswer> {
    if p.status == PaymentStatus::Succeeded {
        let inv = InvoiceRepository::lock(conn, &p.tenant_id, p.invoice_id)
            .await?
            .ok_or_else(invoice_not_found)?;
        return Ok(PaymentAnswer::new(&p, &inv, PaymentResult::Received));
    }
    Err(gateway_error(&p, None))
}

/// The payer's card was refused (402 `card_declined`, with the issuer's reason).
pub fn card_declined(p: &PaymentRow, d: &Decline) -> AppError {
    PaymentError::CardDeclined {
        payment: Box::new(p.clone()),
        decline: d.clone(),
    }
    .into()
}

/// The gateway refused the payment or did not answer (502 `gateway_error`).
pub fn gateway_error(p: &PaymentRow, gateway_message: Option<&str>) -> AppError {
    PaymentError::Gateway {
        payment: Box::new(p.clone()),
        message: gateway_message.map(String::from),
    }
    .into()
}
