//! Card and Tharwatt payments, through the two-phase flow of `services::gateway_flow`:
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

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{audit_payment, audit_snapshot, lock_payment, PaymentInput, RenderPayment};
use crate::auth::Principal;
use crate::billing::money::round_money;
use crate::billing::types::{Currency, PaymentMethod, PaymentStatus};
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::gateways::{ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway};
use crate::repository::invoices::InvoiceRow;
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::{NewPayment, PaymentRepository, PaymentRow};
use crate::repository::rates::RateRepository;
use crate::services::audit::Actor;
use crate::services::gateway_flow::{self, GatewayFlow, Opened};
use crate::services::idempotency::{IdempotencyKey, Outcome, StoredResponse};

mod answer;

pub use answer::{card_declined, gateway_error};
pub(crate) use answer::{fail, finish};

/// Who pays what, under which key.
pub struct PayRequest {
    pub principal: Principal,
    pub key: Option<IdempotencyKey>,
    pub input: PaymentInput,
    pub now: DateTime<Utc>,
}

pub async fn pay(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    request: PayRequest,
    fingerprint: &str,
    render: RenderPayment,
) -> AppResult<Outcome> {
    let scope = request.principal.scope.clone();
    let key = request.key.clone();
    let flow = Pay {
        gateway,
        request,
        render,
    };
    gateway_flow::run(pool, &scope, key.as_ref(), fingerprint, flow).await
}

/// A card or Tharwatt payment through [`gateway_flow`].
struct Pay<'a> {
    gateway: &'a dyn PaymentGateway,
    request: PayRequest,
    render: RenderPayment,
}

/// The payment to send, its invoice, and whether it is a retry of one sent before.
struct Open {
    payment: PaymentRow,
    invoice: InvoiceRow,
    retry: bool,
}

impl GatewayFlow for Pay<'_> {
    type Call = Open;
    type Answer = Result<ChargeOutcome, GatewayError>;
    type Error = AppError;

    async fn open(&mut self, conn: &mut PgConnection) -> AppResult<Opened<Open>> {
        let r = &self.request;
        let (payment, invoice, retry) =
            open_payment(conn, &r.principal, r.key.as_ref(), &r.input, r.now).await?;
        Ok(Opened::Call(Open {
            payment,
            invoice,
            retry,
        }))
    }

    async fn call(&mut self, open: &Open) -> AppResult<Self::Answer> {
        let payment = &open.payment;
        let request = ChargeRequest {
            payment_id: payment.payment_id,
            invoice_id: payment.invoice_id,
            tenant_id: payment.tenant_id.clone(),
            amount: payment.gateway_amount.unwrap_or(payment.amount),
            currency: payment
                .gateway_currency
                .clone()
                .unwrap_or_else(|| payment.currency.clone()),
            stripe_token: self.request.input.stripe_token.clone(),
            phone_number: self.request.input.phone_number.clone(),
            description: format!("SAHOOL invoice {}", open.invoice.invoice_number),
        };
        let answer = ask(self.gateway, &request, payment, open.retry).await;
        if let Err(e) = &answer {
            tracing::warn!(payment.id = %payment.payment_id, gateway = self.gateway.name(), error = %e, "gateway call failed");
        }
        Ok(answer)
    }

    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        open: Open,
        answer: Self::Answer,
    ) -> AppResult<StoredResponse> {
        let done = finish(conn, open.payment.payment_id, answer, self.request.now).await?;
        Ok((self.render)(&done))
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
    let metadata = super::notes::metadata(input);
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
    let created = Event::PaymentCreated {
        payment_id: payment.payment_id,
        invoice_id: payment.invoice_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        gateway_amount: Some(gateway_amount),
        gateway_currency: Some(gateway_currency),
        method: payment.method,
        status: payment.status,
    };
    OutboxRepository::record_event(conn, Some(&tenant_id), &created).await?;
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
