//! `/invoices`: invoices on the wire (money as strings with 2 decimals, rates and quantities as
//! exact decimal strings), built from the repository rows.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::billing::money::{decimal_text, money_string};
use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};
use crate::http::dto::invoice_schemas::{
    CurrencySchema, InvoiceKindSchema, InvoiceLineKindSchema, InvoiceNumberSchema,
    InvoiceStatusSchema,
};
use crate::http::openapi::components::{DecimalSchema, MoneySchema, PlanIdSchema, TenantIdSchema};
use crate::repository::invoices::{InvoiceLineRow, InvoiceRow};

/// One line of an invoice.
#[derive(Serialize, ToSchema)]
#[schema(as = InvoiceLine)]
pub struct InvoiceLineBody {
    #[schema(value_type = InvoiceLineKindSchema)]
    pub kind: InvoiceLineKind,
    pub description: String,
    pub description_ar: String,
    /// The metric of an overage line; null otherwise.
    pub metric: Option<String>,
    #[schema(value_type = DecimalSchema)]
    pub quantity: String,
    #[schema(value_type = DecimalSchema)]
    pub unit_price: String,
    /// quantity × unit_price, rounded once (half away from zero) to 2 decimals. A prorated line
    /// is quantity 1 at its prorated amount; its days are in the description.
    #[schema(value_type = MoneySchema)]
    pub amount: String,
}

impl From<&InvoiceLineRow> for InvoiceLineBody {
    fn from(l: &InvoiceLineRow) -> Self {
        InvoiceLineBody {
            kind: l.kind,
            description: l.description.clone(),
            description_ar: l.description_ar.clone(),
            metric: l.metric.clone(),
            quantity: l.quantity.normalize().to_string(),
            unit_price: decimal_text(l.unit_price),
            amount: money_string(l.amount),
        }
    }
}

/// An invoice with its lines.
#[derive(Serialize, ToSchema)]
#[schema(as = Invoice)]
pub struct InvoiceBody {
    pub invoice_id: Uuid,
    #[schema(value_type = InvoiceNumberSchema)]
    pub invoice_number: String,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    pub subscription_id: Option<Uuid>,
    #[schema(value_type = InvoiceKindSchema)]
    pub kind: InvoiceKind,
    #[schema(value_type = InvoiceStatusSchema)]
    pub status: InvoiceStatus,
    #[schema(value_type = CurrencySchema)]
    pub currency: String,
    /// Units of the invoice's currency per USD when it was issued.
    #[schema(value_type = DecimalSchema)]
    pub exchange_rate: String,
    /// First day billed (inclusive).
    pub period_start: Option<NaiveDate>,
    /// End of the billed period, exclusive: the period is [period_start, period_end) in UTC
    /// dates, so its last day is period_end minus one day. The printed document names that last
    /// day ("through 2 January 2027" / "حتى 2 يناير 2027 ضمناً").
    pub period_end: Option<NaiveDate>,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub paid_date: Option<NaiveDate>,
    pub line_items: Vec<InvoiceLineBody>,
    #[schema(value_type = MoneySchema)]
    pub subtotal: String,
    /// Percent.
    #[schema(value_type = DecimalSchema)]
    pub tax_rate: String,
    #[schema(value_type = MoneySchema)]
    pub tax_amount: String,
    #[schema(value_type = MoneySchema)]
    pub discount_amount: String,
    #[schema(value_type = MoneySchema)]
    pub total: String,
    #[schema(value_type = MoneySchema)]
    pub amount_paid: String,
    #[schema(value_type = MoneySchema)]
    pub amount_due: String,
    pub notes: Option<String>,
    pub notes_ar: Option<String>,
    /// The plan the invoice was issued for (a proration invoice: the new plan); null for an
    /// invoice without a plan. A later plan change does not alter it.
    #[schema(value_type = Option<PlanIdSchema>)]
    pub plan_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl InvoiceBody {
    pub fn new(inv: &InvoiceRow, lines: &[InvoiceLineRow]) -> Self {
        InvoiceBody {
            invoice_id: inv.invoice_id,
            invoice_number: inv.invoice_number.clone(),
            tenant_id: inv.tenant_id.clone(),
            subscription_id: inv.subscription_id,
            kind: inv.kind,
            status: inv.status,
            currency: inv.currency.clone(),
            exchange_rate: decimal_text(inv.exchange_rate),
            period_start: inv.period_start,
            period_end: inv.period_end,
            issue_date: inv.issue_date,
            due_date: inv.due_date,
            paid_date: inv.paid_date,
            line_items: lines.iter().map(InvoiceLineBody::from).collect(),
            subtotal: money_string(inv.subtotal),
            tax_rate: decimal_text(inv.tax_rate),
            tax_amount: money_string(inv.tax_amount),
            discount_amount: money_string(inv.discount_amount),
            total: money_string(inv.total),
            amount_paid: money_string(inv.amount_paid),
            amount_due: money_string(inv.amount_due),
            notes: inv.notes.clone(),
            notes_ar: inv.notes_ar.clone(),
            plan_id: inv.plan_id.clone(),
            created_at: inv.created_at,
            updated_at: inv.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceList {
    pub invoices: Vec<InvoiceBody>,
    pub total: i64,
    pub has_more: bool,
}

/// The invoice's tenant, as the invoice shows it.
#[derive(Serialize, ToSchema)]
pub struct InvoiceTenant {
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    pub name: String,
    pub name_ar: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceDetail {
    pub invoice: InvoiceBody,
    pub tenant: InvoiceTenant,
    /// The total in YER: the invoice's own for a YER invoice, otherwise converted at today's rate.
    #[schema(value_type = MoneySchema)]
    pub amount_yer: String,
}

/// The answer of generate (with `created`) and void (without).
#[derive(Serialize, ToSchema)]
pub struct InvoiceResponse {
    pub success: bool,
    /// Generate only: true when this call issued the invoice, false when it already existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    pub invoice: InvoiceBody,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn row() -> (InvoiceRow, Vec<InvoiceLineRow>) {
        let id = Uuid::nil();
        let inv = InvoiceRow {
            invoice_id: id,
            invoice_number: "SAH-2026-0001".into(),
            tenant_id: "t1".into(),
            subscription_id: Some(Uuid::from_u128(7)),
            kind: InvoiceKind::Subscription,
            status: InvoiceStatus::Pending,
            currency: "YER".into(),
            exchange_rate: Decimal::new(250, 0),
            period_start: NaiveDate::from_ymd_opt(2026, 1, 1),
            period_end: None,
            subtotal: Decimal::new(725000, 2),
            tax_rate: Decimal::new(15, 1),
            tax_amount: Decimal::new(10875, 2),
            discount_amount: Decimal::ZERO,
            total: Decimal::new(735875, 2),
            amount_paid: Decimal::ZERO,
            amount_due: Decimal::new(735875, 2),
            issue_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            due_date: NaiveDate::from_ymd_opt(2026, 1, 15).unwrap(),
            paid_date: None,
            notes: None,
            notes_ar: Some("ملاحظة".into()),
            plan_id: Some("starter".into()),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let line = InvoiceLineRow {
            line_id: Uuid::from_u128(1),
            invoice_id: id,
            position: 0,
            kind: InvoiceLineKind::Overage,
            description: "d".into(),
            description_ar: "د".into(),
            metric: Some("fields".into()),
            quantity: Decimal::new(3000, 3),
            unit_price: Decimal::new(125, 3),
            amount: Decimal::new(38, 2),
        };
        (inv, vec![line])
    }

    /// Payments, sign-up and the audit log still write invoices through `invoice_json`: the
    /// typed answer must be that shape exactly.
    #[test]
    fn the_wire_invoice_is_the_json_the_other_answers_write() {
        let (inv, lines) = row();
        assert_eq!(
            serde_json::to_value(InvoiceBody::new(&inv, &lines)).unwrap(),
            crate::services::invoicing::invoice_json(&inv, &lines)
        );
    }
}
