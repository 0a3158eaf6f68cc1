//! The invoice page as a `maud` template: every interpolated value is escaped by the template
//! engine, so text from a user or the database cannot become markup; only our own stylesheet
//! is inserted as it is (`PreEscaped`).

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::style::CSS;
use super::text::{
    currency_name, decimal2_str, kind_label, localize_digits, payment_state, status_label, tr, Fmt,
};
use super::{InvoiceDocument, Lang};
use crate::billing::money::money_string;

/// The whole page.
pub fn render(doc: &InvoiceDocument, opts: super::DocumentOptions) -> String {
    let lang = opts.lang;
    let f = Fmt {
        numerals: opts.numerals,
    };
    let inv = &doc.invoice;
    let (code, dir) = match lang {
        Lang::Ar => ("ar", "rtl"),
        Lang::En => ("en", "ltr"),
    };
    let notes = match lang {
        Lang::Ar => inv.notes_ar.as_deref().or(inv.notes.as_deref()),
        Lang::En => inv.notes.as_deref().or(inv.notes_ar.as_deref()),
    }
    .filter(|n| !n.trim().is_empty());
    let page = html! {
        (DOCTYPE)
        html lang=(code) dir=(dir) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (tr(lang, "Invoice", "فاتورة")) " " (inv.invoice_number) " · SAHOOL" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main.sheet {
                    (header(doc, lang, &f))
                    (parties(doc, lang, &f))
                    (lines(doc, lang, &f))
                    (bottom(doc, lang, &f))
                    @if let Some(n) = notes {
                        section.notes { h2 { (tr(lang, "Notes", "ملاحظات")) } p { (n) } }
                    }
                    footer {
                        (tr(lang, "Issued electronically by SAHOOL Billing.",
                            "صادرة إلكترونياً من نظام الفوترة في منصة سهول."))
                    }
                }
            }
        }
    };
    page.into_string()
}

fn header(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let inv = &doc.invoice;
    html! {
        header.top {
            div.brand {
                div.logo { "SAHOOL" }
                div.logo-ar lang="ar" { "سهول" }
                div.tagline { (tr(lang, "SAHOOL agricultural platform", "منصة سهول الزراعية")) }
            }
            div.title {
                h1 { (tr(lang, "Invoice", "فاتورة")) }
                div.number { (f.code(&inv.invoice_number)) }
                div class={ "badge st-" (inv.status.as_str()) } { (status_label(inv.status, lang)) }
            }
        }
    }
}

/// One labelled row of a facts table.
fn fact(label: &str, value: impl maud::Render) -> Markup {
    html! { tr { td { (label) } td { (value) } } }
}

fn parties(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let t = &doc.tenant;
    // The customer's name in the document's language first, the other one under it.
    let (name, alt, alt_lang) = match lang {
        Lang::Ar => (&t.name_ar, &t.name, "en"),
        Lang::En => (&t.name, &t.name_ar, "ar"),
    };
    let tax_id = t.tax_id.as_deref().filter(|s| !s.trim().is_empty());
    html! {
        section.parties {
            div.party {
                h2 { (tr(lang, "Bill to", "فاتورة إلى")) }
                div.name { (name) }
                div.alt lang=(alt_lang) dir="auto" { (alt) }
                table.facts {
                    (fact(tr(lang, "Customer ID", "رقم العميل"), f.code(&t.tenant_id)))
                    @match tax_id {
                        Some(id) => (fact(tr(lang, "Tax ID", "الرقم الضريبي"), f.code(id))),
                        None => (fact(tr(lang, "Tax ID", "الرقم الضريبي"), "—")),
                    }
                    (fact(tr(lang, "Email", "البريد الإلكتروني"), f.code(&t.email)))
                }
            }
            div {
                h2 { (tr(lang, "Invoice details", "تفاصيل الفاتورة")) }
                table.facts { (details(doc, lang, f)) }
            }
        }
    }
}

fn details(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let inv = &doc.invoice;
    html! {
        (fact(tr(lang, "Invoice number", "رقم الفاتورة"), f.code(&inv.invoice_number)))
        (fact(tr(lang, "Type", "النوع"), kind_label(inv.kind, lang)))
        (fact(tr(lang, "Issue date", "تاريخ الإصدار"), f.date(inv.issue_date)))
        (fact(tr(lang, "Due date", "تاريخ الاستحقاق"), f.date(inv.due_date)))
        @if let (Some(start), Some(end)) = (inv.period_start, inv.period_end) {
            (fact(tr(lang, "Billing period", "فترة الفوترة"), period(start, end, lang, f)))
        }
        (fact(tr(lang, "Status", "الحالة"), status_label(inv.status, lang)))
        (fact(tr(lang, "Payment status", "حالة الدفع"), payment_state(doc, lang)))
        @if let Some(paid) = inv.paid_date {
            (fact(tr(lang, "Paid on", "تاريخ الدفع"), f.date(paid)))
        }
        (fact(tr(lang, "Currency", "العملة"), html! {
            (f.code(&inv.currency))
            @let name = currency_name(&inv.currency, lang);
            @if !name.is_empty() { " " (name) }
        }))
    }
}

/// Periods are stored half-open [start, end); the page names the last day and says it is
/// included, in words, so nobody reads the API's exclusive end into it.
fn period(start: chrono::NaiveDate, end: chrono::NaiveDate, lang: Lang, f: &Fmt) -> Markup {
    let last = end.pred_opt().filter(|l| *l >= start).unwrap_or(end);
    match lang {
        Lang::En => html! { (f.long_date(start, lang)) " through " (f.long_date(last, lang)) },
        Lang::Ar => {
            html! { "من " (f.long_date(start, lang)) " حتى " (f.long_date(last, lang)) " ضمناً" }
        }
    }
}

fn lines(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let cur = &doc.invoice.currency;
    html! {
        table.lines {
            thead {
                tr {
                    th.n { "#" }
                    th { (tr(lang, "Description", "الوصف")) }
                    th.n { (tr(lang, "Quantity", "الكمية")) }
                    th.n { (tr(lang, "Unit price", "سعر الوحدة")) " (" (cur) ")" }
                    th.n { (tr(lang, "Amount", "المبلغ")) " (" (cur) ")" }
                }
            }
            tbody {
                @for (i, l) in doc.lines.iter().enumerate() {
                    @let description = match lang {
                        Lang::Ar if !l.description_ar.trim().is_empty() => &l.description_ar,
                        Lang::En if l.description.trim().is_empty() => &l.description_ar,
                        _ => &l.description,
                    };
                    tr {
                        td.n { (f.num(&(i + 1).to_string())) }
                        td dir="auto" { (description) }
                        td.n { (f.plain(l.quantity)) }
                        td.n { (f.decimal2(l.unit_price)) }
                        td.n { (f.money(l.amount)) }
                    }
                }
            }
        }
    }
}

fn bottom(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    html! {
        section.bottom {
            div.fx {
                h2 { (tr(lang, "Exchange rate", "سعر الصرف")) }
                (exchange(doc, lang, f))
            }
            table.totals { (totals(doc, lang, f)) }
        }
    }
}

/// The rate the invoice was issued at (when not in USD) and its value in YER.
fn exchange(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let inv = &doc.invoice;
    let cur = inv.currency.as_str();
    let one = localize_digits("1", f.numerals);
    let yer = &doc.yer;
    html! {
        @if cur != "USD" {
            p {
                (tr(lang, "Rate at issue", "السعر عند الإصدار")) ": "
                (f.code(&format!("{one} USD = {} {cur}",
                    localize_digits(&decimal2_str(inv.exchange_rate), f.numerals))))
            }
        }
        @match yer.rate_date {
            None => p { (tr(lang, "Amount in YER", "المبلغ بالريال اليمني")) ": " (f.money_cur(yer.amount, "YER")) },
            Some(on) => {
                p { (tr(lang, "YER equivalent", "المعادل بالريال اليمني")) ": " (f.money_cur(yer.amount, "YER")) }
                p {
                    (tr(lang, "At", "بسعر")) " "
                    (f.code(&format!("{one} USD = {} YER",
                        localize_digits(&decimal2_str(yer.rate), f.numerals))))
                    " " (tr(lang, "on", "بتاريخ")) " " (f.date(on))
                }
            }
        }
    }
}

fn totals(doc: &InvoiceDocument, lang: Lang, f: &Fmt) -> Markup {
    let inv = &doc.invoice;
    let cur = inv.currency.as_str();
    let row = |class: &str, label: Markup, value: Markup| {
        html! { tr class=(class) { td { (label) } td.n { (value) } } }
    };
    let text = |s: &str| html! { (s) };
    let discount = if inv.discount_amount.is_zero() {
        f.money(inv.discount_amount)
    } else {
        f.num(&format!("-{}", money_string(inv.discount_amount)))
    };
    let tax_rate = format!("{}%", inv.tax_rate.normalize());
    html! {
        (row("", text(tr(lang, "Subtotal", "المجموع الفرعي")), f.money(inv.subtotal)))
        (row("", html! { (tr(lang, "Tax", "الضريبة")) " (" (f.num(&tax_rate)) ")" }, f.money(inv.tax_amount)))
        (row("", text(tr(lang, "Discount", "الخصم")), discount))
        (row("total", text(tr(lang, "Total", "الإجمالي")), f.money_cur(inv.total, cur)))
        (row("", text(tr(lang, "Amount paid", "المبلغ المدفوع")), f.money_cur(inv.amount_paid, cur)))
        (row("due", text(tr(lang, "Amount due", "المبلغ المستحق")), f.money_cur(inv.amount_due, cur)))
    }
}
