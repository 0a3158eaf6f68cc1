//! Builds the invoice page with plain string building: the page is small and fixed, so a
//! template engine would add a dependency without removing any risk. The one rule that
//! matters: every value that comes from a user or the database goes through [`escape_html`];
//! only our own literal markup and labels do not.

use super::style::CSS;
use super::text::{
    currency_name, decimal2_str, escape_html, kind_label, localize_digits, payment_state,
    status_label, tr, Fmt,
};
use super::{DocumentOptions, InvoiceDocument, Lang};
use crate::billing::money::money_string;

fn fact(out: &mut String, label: &str, value_html: &str) {
    out.push_str(&format!("<tr><td>{label}</td><td>{value_html}</td></tr>"));
}

/// The whole page.
pub fn render(doc: &InvoiceDocument, opts: DocumentOptions) -> String {
    let lang = opts.lang;
    let f = Fmt {
        numerals: opts.numerals,
    };
    let inv = &doc.invoice;
    let (code, dir) = match lang {
        Lang::Ar => ("ar", "rtl"),
        Lang::En => ("en", "ltr"),
    };
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} {} · SAHOOL</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main class=\"sheet\">\n",
        tr(lang, "Invoice", "فاتورة"),
        escape_html(&inv.invoice_number),
    ));
    header(&mut out, doc, lang, &f);
    parties(&mut out, doc, lang, &f);
    lines(&mut out, doc, lang, &f);
    bottom(&mut out, doc, lang, &f);
    let notes = match lang {
        Lang::Ar => inv.notes_ar.as_deref().or(inv.notes.as_deref()),
        Lang::En => inv.notes.as_deref().or(inv.notes_ar.as_deref()),
    };
    if let Some(n) = notes.filter(|n| !n.trim().is_empty()) {
        out.push_str(&format!(
            "<section class=\"notes\"><h2>{}</h2><p>{}</p></section>\n",
            tr(lang, "Notes", "ملاحظات"),
            escape_html(n)
        ));
    }
    out.push_str(&format!(
        "<footer>{}</footer>\n</main>\n</body>\n</html>\n",
        tr(
            lang,
            "Issued electronically by SAHOOL Billing.",
            "صادرة إلكترونياً من نظام الفوترة في منصة سهول."
        )
    ));
    out
}

fn header(out: &mut String, doc: &InvoiceDocument, lang: Lang, f: &Fmt) {
    let inv = &doc.invoice;
    out.push_str(&format!(
        "<header class=\"top\">\n<div class=\"brand\"><div class=\"logo\">SAHOOL</div>\
         <div class=\"logo-ar\" lang=\"ar\">سهول</div><div class=\"tagline\">{}</div></div>\n\
         <div class=\"title\"><h1>{}</h1><div class=\"number\">{}</div>\
         <div class=\"badge st-{}\">{}</div></div>\n</header>\n",
        tr(lang, "SAHOOL agricultural platform", "منصة سهول الزراعية"),
        tr(lang, "Invoice", "فاتورة"),
        f.code(&inv.invoice_number),
        inv.status.as_str(),
        status_label(inv.status, lang),
    ));
}

fn parties(out: &mut String, doc: &InvoiceDocument, lang: Lang, f: &Fmt) {
    let inv = &doc.invoice;
    let t = &doc.tenant;
    // The customer's name in the document's language first, the other one under it.
    let (name, alt, alt_lang) = match lang {
        Lang::Ar => (&t.name_ar, &t.name, "en"),
        Lang::En => (&t.name, &t.name_ar, "ar"),
    };
    out.push_str(&format!(
        "<section class=\"parties\">\n<div class=\"party\"><h2>{}</h2>\
         <div class=\"name\">{}</div><div class=\"alt\" lang=\"{alt_lang}\" dir=\"auto\">{}</div>\
         <table class=\"facts\">",
        tr(lang, "Bill to", "فاتورة إلى"),
        escape_html(name),
        escape_html(alt),
    ));
    fact(
        out,
        tr(lang, "Customer ID", "رقم العميل"),
        &f.code(&t.tenant_id),
    );
    let tax_id = match t.tax_id.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(id) => f.code(id),
        None => "—".to_string(),
    };
    fact(out, tr(lang, "Tax ID", "الرقم الضريبي"), &tax_id);
    fact(
        out,
        tr(lang, "Email", "البريد الإلكتروني"),
        &f.code(&t.email),
    );
    out.push_str("</table></div>\n<div><h2>");
    out.push_str(tr(lang, "Invoice details", "تفاصيل الفاتورة"));
    out.push_str("</h2><table class=\"facts\">");
    fact(
        out,
        tr(lang, "Invoice number", "رقم الفاتورة"),
        &f.code(&inv.invoice_number),
    );
    fact(out, tr(lang, "Type", "النوع"), kind_label(inv.kind, lang));
    fact(
        out,
        tr(lang, "Issue date", "تاريخ الإصدار"),
        &f.date(inv.issue_date),
    );
    fact(
        out,
        tr(lang, "Due date", "تاريخ الاستحقاق"),
        &f.date(inv.due_date),
    );
    if let (Some(start), Some(end)) = (inv.period_start, inv.period_end) {
        // Periods are stored half-open [start, end); the page names the last day and says it
        // is included, in words, so nobody reads the API's exclusive end into it.
        let last = end.pred_opt().filter(|l| *l >= start).unwrap_or(end);
        let period = match lang {
            Lang::En => format!(
                "{} through {}",
                f.long_date(start, lang),
                f.long_date(last, lang)
            ),
            Lang::Ar => format!(
                "من {} حتى {} ضمناً",
                f.long_date(start, lang),
                f.long_date(last, lang)
            ),
        };
        fact(out, tr(lang, "Billing period", "فترة الفوترة"), &period);
    }
    fact(
        out,
        tr(lang, "Status", "الحالة"),
        status_label(inv.status, lang),
    );
    fact(
        out,
        tr(lang, "Payment status", "حالة الدفع"),
        payment_state(doc, lang),
    );
    if let Some(paid) = inv.paid_date {
        fact(out, tr(lang, "Paid on", "تاريخ الدفع"), &f.date(paid));
    }
    let currency = format!(
        "{} {}",
        f.code(&inv.currency),
        currency_name(&inv.currency, lang)
    );
    fact(out, tr(lang, "Currency", "العملة"), currency.trim());
    out.push_str("</table></div>\n</section>\n");
}

fn lines(out: &mut String, doc: &InvoiceDocument, lang: Lang, f: &Fmt) {
    let cur = escape_html(&doc.invoice.currency);
    out.push_str(&format!(
        "<table class=\"lines\">\n<thead><tr><th class=\"n\">#</th><th>{}</th><th class=\"n\">{}</th>\
         <th class=\"n\">{} ({cur})</th><th class=\"n\">{} ({cur})</th></tr></thead>\n<tbody>\n",
        tr(lang, "Description", "الوصف"),
        tr(lang, "Quantity", "الكمية"),
        tr(lang, "Unit price", "سعر الوحدة"),
        tr(lang, "Amount", "المبلغ"),
    ));
    for (i, l) in doc.lines.iter().enumerate() {
        let description = match lang {
            Lang::Ar if !l.description_ar.trim().is_empty() => &l.description_ar,
            Lang::En if l.description.trim().is_empty() => &l.description_ar,
            _ => &l.description,
        };
        out.push_str(&format!(
            "<tr><td class=\"n\">{}</td><td dir=\"auto\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            f.num(&(i + 1).to_string()),
            escape_html(description),
            f.plain(l.quantity),
            f.decimal2(l.unit_price),
            f.money(l.amount),
        ));
    }
    out.push_str("</tbody>\n</table>\n");
}

fn bottom(out: &mut String, doc: &InvoiceDocument, lang: Lang, f: &Fmt) {
    let inv = &doc.invoice;
    let cur = inv.currency.as_str();
    out.push_str("<section class=\"bottom\">\n<div class=\"fx\"><h2>");
    out.push_str(tr(lang, "Exchange rate", "سعر الصرف"));
    out.push_str("</h2>");
    if cur != "USD" {
        out.push_str(&format!(
            "<p>{}: {}</p>",
            tr(lang, "Rate at issue", "السعر عند الإصدار"),
            f.code(&format!(
                "{} USD = {} {cur}",
                localize_digits("1", f.numerals),
                localize_digits(&decimal2_str(inv.exchange_rate), f.numerals)
            )),
        ));
    }
    let yer = &doc.yer;
    match yer.rate_date {
        None => out.push_str(&format!(
            "<p>{}: {}</p>",
            tr(lang, "Amount in YER", "المبلغ بالريال اليمني"),
            f.money_cur(yer.amount, "YER"),
        )),
        Some(on) => out.push_str(&format!(
            "<p>{}: {}</p><p>{} {} {} {}</p>",
            tr(lang, "YER equivalent", "المعادل بالريال اليمني"),
            f.money_cur(yer.amount, "YER"),
            tr(lang, "At", "بسعر"),
            f.code(&format!(
                "{} USD = {} YER",
                localize_digits("1", f.numerals),
                localize_digits(&decimal2_str(yer.rate), f.numerals)
            )),
            tr(lang, "on", "بتاريخ"),
            f.date(on),
        )),
    }
    out.push_str("</div>\n<table class=\"totals\">");
    let row = |out: &mut String, class: &str, label: &str, value: String| {
        out.push_str(&format!(
            "<tr class=\"{class}\"><td>{label}</td><td class=\"n\">{value}</td></tr>"
        ));
    };
    row(
        out,
        "",
        tr(lang, "Subtotal", "المجموع الفرعي"),
        f.money(inv.subtotal),
    );
    let tax_rate = format!("{}%", inv.tax_rate.normalize());
    row(
        out,
        "",
        &format!("{} ({})", tr(lang, "Tax", "الضريبة"), f.num(&tax_rate)),
        f.money(inv.tax_amount),
    );
    let discount = if inv.discount_amount.is_zero() {
        f.money(inv.discount_amount)
    } else {
        f.num(&format!("-{}", money_string(inv.discount_amount)))
    };
    row(out, "", tr(lang, "Discount", "الخصم"), discount);
    row(
        out,
        "total",
        tr(lang, "Total", "الإجمالي"),
        f.money_cur(inv.total, cur),
    );
    row(
        out,
        "",
        tr(lang, "Amount paid", "المبلغ المدفوع"),
        f.money_cur(inv.amount_paid, cur),
    );
    row(
        out,
        "due",
        tr(lang, "Amount due", "المبلغ المستحق"),
        f.money_cur(inv.amount_due, cur),
    );
    out.push_str("</table>\n</section>\n");
}
