//! Card and Tharwatt payments. The gateway call happens between two transactions, never
//! inside one (a slow gateway must not hold row locks):
//! 1. claim the Idempotency-Key and record the payment as `processing` (commit);
//! 2. call the gateway with our payment id as its idempotency key / reference;
//! 3. settle, fail or leave it open as the gateway answered, and store the response (commit).
//!
//! A duplicate arriving during step 2 gets 409 `idempotency_request_in_progress`. When the
//! gateway cannot be reached the payment goes back to `pending` and the key is released: a
//! retry with the same key continues with the same payment, so the gateway sees the same
//! idempotency key and cannot charge twice. Such a retry first asks the gateway what became of
//! the charge (Stripe stores its first answer under a key, a 500 included, so sending it again
//! would only replay the 500); what is still unknown is settled by the reconciliation job.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::{
    audit_payment, audit_snapshot, lock_payment, payment_body, payment_json, settle_with_external,
    PaymentInput,
};
use crate::auth::Principal;
use crate::billing::money::{money_string, round_money};
use crate::billing::types::{Currency, PaymentMethod, PaymentStatus};
use crate::error::{AppError, AppResult};
use crate::gateways::{
    ChargeOutcome, ChargeRequest, ChargeStatus, Decline, GatewayError, PaymentGateway,
};
use crate::repository::invoices::{InvoiceRepository, InvoiceRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::{NewPayment, PaymentChanges, PaymentRepository, PaymentRow};
use crate::repository::rates::RateRepository;
use crate::services::audit::Actor;
use crate::services::idempotency::{self, Claim, IdempotencyKey, Outcome};
use crate::services::invoices::invoice_not_found;

pub async fn pay(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    principal: Principal,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    input: PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    let scope = principal.scope.clone();
    let mut tx = pool.begin().await?;
    if let Some(k) = &key {
        if let Claim::Replay(done) = idempotency::claim(&mut tx, &scope, k, fingerprint).await? {
            return Ok(done);
        }
    }
    let (payment, inv, retry) =
        open_payment(&mut tx, &principal, key.as_ref(), &input, now).await?;
    tx.commit().await?;

    let request = ChargeRequest {
        payment_id: payment.payment_id,
        invoice_id: payment.invoice_id,
        tenant_id: payment.tenant_id.clone(),
        amount: payment.gateway_amount.unwrap_or(payment.amount),
        currency: payment
            .gateway_currency
            .clone()
            .unwrap_or_else(|| payment.currency.clone()),
        stripe_token: input.stripe_token.clone(),
        phone_number: input.phone_number.clone(),
        description: format!("SAHOOL invoice {}", inv.invoice_number),
    };
    let answer = ask(gateway, &request, &payment, retry).await;
    if let Err(e) = &answer {
        tracing::warn!(payment.id = %payment.payment_id, gateway = gateway.name(), error = %e, "gateway call failed");
    }

    let mut tx = pool.begin().await?;
    match finish(&mut tx, payment.payment_id, answer, now).await {
        Ok(body) => {
            if let Some(k) = &key {
                idempotency::complete(&mut tx, &scope, k, StatusCode::CREATED, &body).await?;
            }
            tx.commit().await?;
            Ok(Outcome {
                status: StatusCode::CREATED,
                body,
                replayed: false,
            })
        }
        Err(err) => {
            // The request failed: its key is free again, so a retry runs (and, for an open
            // payment, continues with it).
            if let Some(k) = &key {
                idempotency::release(&mut tx, &scope, k).await?;
            }
            tx.commit().await?;
            Err(err)
        }
    }
}

/// Step 2. A retry asks the gateway first: a charge it already holds is read, not sent again.
async fn ask(
    gateway: &dyn PaymentGateway,
    request: &ChargeRequest,
    payment: &PaymentRow,
    retry: bool,
) -> Result<ChargeOutcome, GatewayError> {
    if retry {
        let found = gateway
            .lookup_charge(payment.payment_id, payment.external_id.as_deref())
            .await;
        if let Ok(Some(outcome)) = found {
            return Ok(outcome);
        }
    }
    gateway.charge(request).await
}

/// Step 1: the payment to send — the open one created earlier under the same key (`true`: a
/// retry), or a new `processing` one. Locks tenant → invoice (→ payment).
async fn open_payment(
    conn: &mut PgConnection,
    principal: &Principal,
    key: Option<&IdempotencyKey>,
    input: &PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<(PaymentRow, InvoiceRow, bool)> {
    if let Some(k) = key {
        if let Some(open) =
            PaymentRepository::find_open_by_idempotency(conn, &principal.scope, k.as_str()).await?
        {
            let (tenant_id, inv, _) = lock_payment(conn, open.payment_id).await?;
            let p = PaymentRepository::mark_processing(conn, &tenant_id, open.payment_id)
                .await?
                .ok_or_else(|| super::invalid_state(&open))?;
            return Ok((p, inv, true));
        }
    }
    let (tenant_id, inv) = super::lock_payable_invoice(conn, principal, input).await?;
    let (gateway_amount, gateway_currency) = gateway_money(conn, &inv, input, now).await?;
    let metadata = json!({"reference": input.reference, "notes": input.notes});
    let payment = PaymentRepository::create(
        conn,
        &NewPayment {
            payment_id: Uuid::new_v4(),
            tenant_id: &tenant_id,
            invoice_id: inv.invoice_id,
            amount: input.amount,
            currency: &inv.currency,
            method: input.method,
            status: PaymentStatus::Processing,
            gateway_amount: Some(gateway_amount),
            gateway_currency: Some(&gateway_currency),
            external_id: None,
            phone_number: input.phone_number.as_deref(),
            created_by: Some(&principal.subject),
            metadata: &metadata,
        },
    )
    .await?;
    if let Some(k) = key {
        PaymentRepository::tag_idempotency(
            conn,
            &tenant_id,
            payment.payment_id,
            &principal.scope,
            k.as_str(),
        )
        .await?;
    }
    crate::metrics::count_payment(payment.method, "created");
    OutboxRepository::record(
        conn,
        "payment.created",
        Some(&tenant_id),
        json!({
            "payment_id": payment.payment_id,
            "invoice_id": payment.invoice_id,
            "amount": money_string(payment.amount),
            "currency": payment.currency,
            "gateway_amount": money_string(gateway_amount),
            "gateway_currency": gateway_currency,
            "method": payment.method,
            "status": payment.status,
        }),
    )
    .await?;
    // Recorded with the payment itself: a retry that reuses this payment above adds no row.
    let after = audit_snapshot(&payment, &inv);
    audit_payment(
        conn,
        &Actor::from(principal),
        "payment.create",
        &payment,
        None,
        after,
    )
    .await?;
    Ok((payment, inv, false))
}

/// What the gateway is asked to collect. Cards are charged in the invoice currency. Tharwatt
/// collects YER only: the amount goes back to USD at the rate stored on the invoice and on to
/// YER at today's rate, rounded once (a YER invoice is charged as is).
async fn gateway_money(
    conn: &mut PgConnection,
    inv: &InvoiceRow,
    input: &PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<(Decimal, String)> {
    if input.method != PaymentMethod::Tharwatt || inv.currency == Currency::Yer.code() {
        return Ok((input.amount, inv.currency.clone()));
    }
    let yer_rate = RateRepository::rate_on(conn, Currency::Yer, now.date_naive()).await?;
    Ok((
        round_money(input.amount * yer_rate / inv.exchange_rate),
        Currency::Yer.code().to_string(),
    ))
}

/// Step 3 (and the reconciliation job): applies the gateway's answer to the payment. Ok is the
/// 201 body; a decline is 402 `card_declined`, a refusal or an unknown outcome 502
/// `gateway_error` (the payment stays `failed` or `pending`).
pub(crate) async fn finish(
    conn: &mut PgConnection,
    payment_id: Uuid,
    answer: Result<ChargeOutcome, GatewayError>,
    now: DateTime<Utc>,
) -> AppResult<Value> {
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
            Ok(payment_body(
                &p,
                &inv,
                "Payment sent to the gateway; it settles when the gateway confirms it",
                "تم إرسال الدفعة إلى بوابة الدفع وستكتمل عند التأكيد",
            ))
        }
        ChargeStatus::RequiresAction {
            client_secret,
            next_action,
        } => {
            let (p, inv) = keep_open(conn, payment_id, external_id).await?;
            let mut body = payment_body(
                &p,
                &inv,
                "The card needs the payer's authentication (3-D Secure): confirm it in the app \
                 with client_secret; the payment settles when the gateway confirms it",
                "تحتاج البطاقة إلى تحقق صاحبها (3-D Secure): أكمل التحقق في التطبيق",
            );
            body["requires_action"] = json!(true);
            body["client_secret"] = json!(client_secret);
            body["next_action"] = next_action;
            Ok(body)
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
) -> AppResult<Value> {
    let mut sp = conn.begin().await?;
    match settle_with_external(&mut sp, payment_id, external_id.as_deref(), None, now).await {
        Ok(s) => {
            sp.commit().await?;
            Ok(payment_body(
                &s.payment,
                &s.invoice,
                "Payment received",
                "تم استلام الدفعة بنجاح",
            ))
        }
        Err(e) => {
            sp.rollback().await?;
            let (tenant_id, _, _) = lock_payment(conn, payment_id).await?;
            let note = json!({"unapplied_charge": {
                "external_id": external_id, "error": e.code, "at": now,
            }});
            PaymentRepository::merge_metadata(conn, &tenant_id, payment_id, &note).await?;
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
        .ok_or_else(super::payment_not_found)?;
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
    crate::metrics::count_payment(p.method, "failed");
    OutboxRepository::record(
        conn,
        "payment.failed",
        Some(&tenant_id),
        json!({"payment_id": p.payment_id, "invoice_id": p.invoice_id, "error": reason}),
    )
    .await?;
    Ok(Some(p))
}

async fn settled_anyway_by_id(conn: &mut PgConnection, payment_id: Uuid) -> AppResult<Value> {
    let (_, _, current) = lock_payment(conn, payment_id).await?;
    settled_anyway(conn, current).await
}

/// A webhook may have settled the payment while we waited for the gateway: then the request
/// succeeded after all. Otherwise the 502.
async fn settled_anyway(conn: &mut PgConnection, p: PaymentRow) -> AppResult<Value> {
    if p.status == PaymentStatus::Succeeded {
        let inv = InvoiceRepository::lock(conn, &p.tenant_id, p.invoice_id)
            .await?
            .ok_or_else(invoice_not_found)?;
        return Ok(payment_body(
            &p,
            &inv,
            "Payment received",
            "تم استلام الدفعة بنجاح",
        ));
    }
    Err(gateway_error(&p, None))
}

/// The payer's card was refused: 402, with the issuer's reason, in the bilingual envelope.
/// Stripe writes card-error messages for the payer, so its text is passed on.
pub fn card_declined(p: &PaymentRow, d: &Decline) -> AppError {
    AppError::new(
        StatusCode::PAYMENT_REQUIRED,
        "card_declined",
        "The card was declined. Try another card or contact the card issuer.",
        "تم رفض البطاقة. جرّب بطاقة أخرى أو تواصل مع البنك المصدر",
    )
    .with_extra("payment", payment_json(p))
    .with_extra("decline_code", &d.decline_code)
    .with_extra("gateway_code", &d.code)
    .with_extra("gateway_message", &d.message)
}

pub fn gateway_error(p: &PaymentRow, gateway_message: Option<&str>) -> AppError {
    AppError::new(
        StatusCode::BAD_GATEWAY,
        "gateway_error",
        "Payment processing failed. Please try again or contact support.",
        "فشلت معالجة الدفع عبر بوابة الدفع. يرجى المحاولة مرة أخرى",
    )
    .with_extra("payment", payment_json(p))
    .with_extra("gateway_message", gateway_message)
}
