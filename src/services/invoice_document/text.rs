//! Text pieces of the invoice page: digits, labels in both languages and number
//! formatting. Kept apart from the layout so the rules that protect the reader (numerals, bidi isolation) are easy to find and test.

use chrono::{Datelike, NaiveDate};
use maud::{html, Markup};
use rust_decimal::Decimal;

use super::{InvoiceDocument, Lang, Numerals};
use crate::billing::money::money_string;
use crate::billing::types::{InvoiceKind, InvoiceStatus};

/// Writes the digits of a number we formatted ourselves (amounts, dates, rates) in the chosen
/// numerals. Identifiers (invoice numbers, tax ids) never go through here: they must stay
/// exactly as other systems store and search them.
pub fn localize_digits(s: &str, numerals: Numerals) -> String {
    match numerals {
        Numerals::Latin => s.to_string(),
        Numerals::Arabic => s
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(0x0660 + (c as u32 - '0' as u32)).unwrap_or(c),
                '.' => '\u{066B}', // Arabic decimal separator
                '%' => '\u{066A}', // Arabic percent sign
                _ => c,
            })
            .collect(),
    }
}

/// The invoice status as the customer reads it.
pub fn status_label(status: InvoiceStatus, lang: Lang) -> &'static str {
    use InvoiceStatus::*;
    match (lang, status) {
        (Lang::Ar, Paid) => "مدفوعة",
        (Lang::Ar, Pending) => "معلقة",
        (Lang::Ar, Overdue) => "متأخرة",
        (Lang::Ar, Canceled) => "ملغاة",
        (Lang::Ar, Refunded) => "مستردة",
        (Lang::Ar, Draft) => "مسودة",
        (Lang::En, Paid) => "Paid",
        (Lang::En, Pending) => "Pending",
        (Lang::En, Overdue) => "Overdue",
        (Lang::En, Canceled) => "Canceled",
        (Lang::En, Refunded) => "Refunded",
        (Lang::En, Draft) => "Draft",
    }
}

pub(super) fn tr(lang: Lang, en: &'static str, ar: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ar => ar,
    }
}

pub(super) fn kind_label(kind: InvoiceKind, lang: Lang) -> &'static str {
    match kind {
        InvoiceKind::Subscription => tr(lang, "Subscription", "اشتراك"),
        InvoiceKind::Proration => tr(lang, "Plan change (prorated)", "تغيير الخطة (تناسبي)"),
        InvoiceKind::Manual => tr(lang, "Manual", "يدوية"),
    }
}

pub(super) fn currency_name(code: &str, lang: Lang) -> &'static str {
    match code {
        "USD" => tr(lang, "US dollar", "دولار أمريكي"),
        "YER" => tr(lang, "Yemeni rial", "ريال يمني"),
        "SAR" => tr(lang, "Saudi riyal", "ريال سعودي"),
        "AED" => tr(lang, "UAE dirham", "درهم إماراتي"),
        "EUR" => tr(lang, "Euro", "يورو"),
        _ => "",
    }
}

/// Paid in full / partially / not at all, from the amounts rather than the status alone.
pub(super) fn payment_state(doc: &InvoiceDocument, lang: Lang) -> &'static str {
    let inv = &doc.invoice;
    match inv.status {
        InvoiceStatus::Canceled => tr(lang, "Voided: nothing to pay", "ملغاة: لا يوجد مبلغ مستحق"),
        InvoiceStatus::Refunded => tr(lang, "Refunded", "مستردة"),
        _ if inv.amount_due.is_zero() => tr(lang, "Paid in full", "مدفوعة بالكامل"),
        _ if inv.amount_paid > Decimal::ZERO => tr(lang, "Partially paid", "مدفوعة جزئياً"),
        _ => tr(lang, "Unpaid", "غير مدفوعة"),
    }
}

/// Number helpers. Each wraps its output in an LTR isolate so that, inside Arabic text, a
/// minus sign, decimal point or currency code stays attached to its number in written order.
/// (Arabic-Indic dates still show day-month-year visually, i.e. year first read right to left,
/// which is what the bidi algorithm does and what Arabic readers expect.)
pub(super) struct Fmt {
    pub(super) numerals: Numerals,
}

impl Fmt {
    pub(super) fn num(&self, s: &str) -> Markup {
        html! { bdi.num { (localize_digits(s, self.numerals)) } }
    }
    pub(super) fn money(&self, d: Decimal) -> Markup {
        self.num(&money_string(d))
    }
    pub(super) fn money_cur(&self, d: Decimal, currency: &str) -> Markup {
        let digits = localize_digits(&money_string(d), self.numerals);
        html! { bdi.num { (digits) " " (currency) } }
    }
    /// At least two decimals, more when the value has them (unit prices, rates).
    pub(super) fn decimal2(&self, d: Decimal) -> Markup {
        self.num(&decimal2_str(d))
    }
    pub(super) fn plain(&self, d: Decimal) -> Markup {
        self.num(&d.normalize().to_string())
    }
    pub(super) fn date(&self, d: NaiveDate) -> Markup {
        self.num(&d.format("%Y-%m-%d").to_string())
    }
    /// A date written out ("3 December 2026", "3 ديسمبر 2026"), marked up with its ISO form
    /// for machines.
    pub(super) fn long_date(&self, d: NaiveDate, lang: Lang) -> Markup {
        let text = format!("{} {} {}", d.day(), month_name(d.month(), lang), d.year());
        html! {
            time datetime=(d.format("%Y-%m-%d").to_string()) { (localize_digits(&text, self.numerals)) }
        }
    }
    /// An identifier shown verbatim (escaped, Latin, left to right).
    pub(super) fn code(&self, s: &str) -> Markup {
        html! { bdi.code { (s) } }
    }
}

/// The month's name; Arabic uses the names read in Yemen and the Gulf (يناير … ديسمبر).
pub(super) fn month_name(month: u32, lang: Lang) -> &'static str {
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const AR: [&str; 12] = [
        "يناير",
        "فبراير",
        "مارس",
        "أبريل",
        "مايو",
        "يونيو",
        "يوليو",
        "أغسطس",
        "سبتمبر",
        "أكتوبر",
        "نوفمبر",
        "ديسمبر",
    ];
    let i = (month.clamp(1, 12) - 1) as usize;
    match lang {
        Lang::En => EN[i],
        Lang::Ar => AR[i],
    }
}

/// At least two decimals, more when the value has them (as the JSON API writes rates).
pub(super) fn decimal2_str(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_date_names_the_month_in_either_language_and_keeps_the_iso_date() {
        let f = Fmt {
            numerals: Numerals::Latin,
        };
        let d = NaiveDate::from_ymd_opt(2027, 1, 2).unwrap();
        assert_eq!(
            f.long_date(d, Lang::En).into_string(),
            "<time datetime=\"2027-01-02\">2 January 2027</time>"
        );
        assert_eq!(
            f.long_date(d, Lang::Ar).into_string(),
            "<time datetime=\"2027-01-02\">2 يناير 2027</time>"
        );
        let arabic = Fmt {
            numerals: Numerals::Arabic,
        };
        assert!(arabic
            .long_date(d, Lang::Ar)
            .into_string()
            .ends_with(">٢ يناير ٢٠٢٧</time>"));
    }

    #[test]
    fn markup_characters_in_values_are_escaped() {
        let f = Fmt {
            numerals: Numerals::Latin,
        };
        assert_eq!(
            f.code(r#"<script>alert("x")</script> & 'y'"#).into_string(),
            "<bdi class=\"code\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'y'</bdi>"
        );
        assert_eq!(
            f.code("مزرعة").into_string(),
            "<bdi class=\"code\">مزرعة</bdi>"
        );
    }

    #[test]
    fn arabic_numerals_replace_digits_decimal_point_and_percent() {
        assert_eq!(localize_digits("7250.00", Numerals::Arabic), "٧٢٥٠٫٠٠");
        assert_eq!(
            localize_digits("2026-03-05", Numerals::Arabic),
            "٢٠٢٦-٠٣-٠٥"
        );
        assert_eq!(localize_digits("5%", Numerals::Arabic), "٥٪");
        assert_eq!(localize_digits("7250.00", Numerals::Latin), "7250.00");
    }

    #[test]
    fn every_status_has_an_arabic_and_an_english_label() {
        let ar: Vec<&str> = InvoiceStatus::ALL
            .iter()
            .map(|s| status_label(*s, Lang::Ar))
            .collect();
        assert_eq!(
            ar,
            ["مسودة", "معلقة", "مدفوعة", "متأخرة", "ملغاة", "مستردة"]
        );
        for s in InvoiceStatus::ALL {
            assert!(status_label(*s, Lang::En).eq_ignore_ascii_case(s.as_str()));
        }
    }
}
