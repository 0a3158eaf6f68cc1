//! The printable invoice document: one self-contained HTML page (inline CSS, print styles, no
//! fonts, scripts or images fetched from anywhere) in Arabic (right to left) or English.
//!
//! HTML rather than PDF on purpose: the Rust PDF crates lay text out glyph by glyph without
//! Arabic shaping or bidi reordering, so Arabic would print as disconnected, reversed letters.
//! A browser shapes Arabic correctly and "Print → Save as PDF" gives the PDF.

mod html;
mod style;
mod text;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::billing::types::Currency;
use crate::error::{AppError, AppResult};
use crate::repository::invoices::{InvoiceLineRow, InvoiceRepository, InvoiceRow};
use crate::repository::rates::RateRepository;
use crate::repository::tenants::{TenantRepository, TenantRow};
use crate::services::invoices::invoice_not_found;
use crate::services::invoicing::amount_in_yer;

/// The document's language; Arabic is the default (the platform's customers read Arabic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ar,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ar" => Some(Lang::Ar),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// Which digits numbers are written with. Latin is the default in both languages so amounts
/// copy cleanly into spreadsheets and match the JSON API character for character.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Numerals {
    #[default]
    Latin,
    /// Arabic-Indic digits (٠١٢٣٤٥٦٧٨٩) with the Arabic decimal separator (٫).
    Arabic,
}

impl Numerals {
    pub fn parse(s: &str) -> Option<Numerals> {
        match s.trim().to_ascii_lowercase().as_str() {
            "latin" => Some(Numerals::Latin),
            "arabic" => Some(Numerals::Arabic),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DocumentOptions {
    pub lang: Lang,
    pub numerals: Numerals,
}

impl DocumentOptions {
    /// From the raw `lang` and `numerals` query values; absent or empty → the default,
    /// anything else unknown → 422 naming the parameter.
    pub fn from_query(lang: Option<&str>, numerals: Option<&str>) -> AppResult<DocumentOptions> {
        let lang = match lang.filter(|s| !s.trim().is_empty()) {
            None => Lang::default(),
            Some(s) => Lang::parse(s).ok_or_else(|| AppError::field("lang", "must be ar or en"))?,
        };
        let numerals = match numerals.filter(|s| !s.trim().is_empty()) {
            None => Numerals::default(),
            Some(s) => Numerals::parse(s)
                .ok_or_else(|| AppError::field("numerals", "must be arabic or latin"))?,
        };
        Ok(DocumentOptions { lang, numerals })
    }
}

/// The invoice total in YER and the rate that produced it.
#[derive(Clone, Debug)]
pub struct YerFigures {
    /// YER per USD.
    pub rate: Decimal,
    /// `None` when the rate is the invoice's own (issued in YER); otherwise the day of the
    /// current rate used for the equivalent (the same figure `GET /v1/invoices/{id}` reports).
    pub rate_date: Option<NaiveDate>,
    pub amount: Decimal,
}

/// Everything the document shows, read in one go.
#[derive(Clone, Debug)]
pub struct InvoiceDocument {
    pub invoice: InvoiceRow,
    pub lines: Vec<InvoiceLineRow>,
    pub tenant: TenantRow,
    pub yer: YerFigures,
}

/// Reads the invoice for the document. `tenant_scope` is the caller's tenant (None for
/// platform callers): another tenant's invoice is not found, exactly like a missing one.
pub async fn load(
    pool: &PgPool,
    tenant_scope: Option<&str>,
    invoice_id: Uuid,
    today: NaiveDate,
) -> AppResult<InvoiceDocument> {
    let mut conn = pool.acquire().await?;
    let invoice = InvoiceRepository::get_by_id(&mut conn, tenant_scope, invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?;
    let tenant = TenantRepository::get(&mut conn, &invoice.tenant_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("invoice without its tenant")))?;
    let lines = InvoiceRepository::lines(&mut conn, invoice.invoice_id).await?;
    let yer = if invoice.currency == Currency::Yer.code() {
        YerFigures {
            rate: invoice.exchange_rate,
            rate_date: None,
            amount: invoice.total,
        }
    } else {
        let rate = RateRepository::rate_on(&mut conn, Currency::Yer, today).await?;
        YerFigures {
            rate,
            rate_date: Some(today),
            amount: amount_in_yer(&invoice, rate),
        }
    };
    Ok(InvoiceDocument {
        invoice,
        lines,
        tenant,
        yer,
    })
}

/// The document as a complete HTML page.
pub async fn render(
    pool: &PgPool,
    tenant_scope: Option<&str>,
    invoice_id: Uuid,
    opts: DocumentOptions,
    today: NaiveDate,
) -> AppResult<String> {
    let doc = load(pool, tenant_scope, invoice_id, today).await?;
    Ok(html::render(&doc, opts))
}

pub use text::{localize_digits, status_label};
