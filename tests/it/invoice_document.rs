use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{Auth, Resp, TestApp};
use serde_json::json;

const HOSTILE_NAME: &str = r#"<script>alert("pwned")</script> Farm & Sons"#;
const HOSTILE_NAME_AR: &str = "<img src=x onerror=alert(1)> مزرعة الوادي الأخضر";

/// A tenant (with a hostile name and a tax id) on the starter plan in `currency`, and its
/// March 2026 invoice issued through the API. Returns the invoice id and number.
async fn invoiced_tenant(app: &TestApp, tenant: &str, currency: &str) -> (String, String) {
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone, tax_id)
         VALUES ($1, $2, $3, 'farm@example.com', '+967771234567', 'YE-TAX-7788')",
    )
    .bind(tenant)
    .bind(HOSTILE_NAME)
    .bind(HOSTILE_NAME_AR)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, currency,
             anchor_day, start_date, end_date, next_billing_date)
         VALUES ($1, $2, 'starter', 'active', 'monthly', $3, 1, DATE '2026-03-01',
                 DATE '2026-04-01', DATE '2026-04-01')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(tenant)
    .bind(currency)
    .execute(&app.pool)
    .await
    .unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/invoices/generate"),
            Auth::TenantAdmin(tenant.into()),
            json!({}),
        )
        .await;
    assert_status!(r, 201);
    let inv = &r.body["invoice"];
    (
        inv["invoice_id"].as_str().unwrap().to_string(),
        inv["invoice_number"].as_str().unwrap().to_string(),
    )
}

async fn document(app: &TestApp, id: &str, query: &str, auth: Auth) -> Resp {
    app.get(&format!("/v1/invoices/{id}/document{query}"), auth)
        .await
}

fn html(r: &Resp) -> &str {
    assert_status!(r, 200);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    r.body.as_str().expect("an HTML body")
}

#[tokio::test]
async fn the_arabic_document_is_right_to_left_with_the_yer_amount_and_a_localized_status() {
    let app = TestApp::spawn().await;
    let (id, number) = invoiced_tenant(&app, "farm-doc-ar", "YER").await;
    let r = document(&app, &id, "", Auth::TenantUser("farm-doc-ar".into())).await;
    let page = html(&r);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<html lang="ar" dir="rtl">"#), "{page}");
    assert!(page.contains(&number));
    assert!(page.contains("معلقة"), "pending in Arabic");
    assert!(page.contains("غير مدفوعة"), "payment status");
    assert!(page.contains("7250.00 YER"), "total and amount in YER");
    assert!(page.contains("المبلغ بالريال اليمني"));
    assert!(page.contains("1 USD = 250.00 YER"), "rate at issue");
    assert!(page.contains("2026-03-05") && page.contains("2026-03-12"));
    assert!(page.contains("2026-03-31"), "the period's last day");
    assert!(page.contains("YE-TAX-7788"));
    assert!(
        page.contains("المبتدئ - شهري"),
        "the Arabic line description"
    );
    assert!(!page.contains("Starter - Monthly"));
    // Self-contained: nothing is fetched from anywhere.
    for external in [
        "http://",
        "https://",
        "@import",
        "@font-face",
        "url(",
        "<link",
        "<script",
        "<img",
    ] {
        assert!(!page.contains(external), "found {external}");
    }
    assert!(page.contains("@media print"));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"));
}

#[tokio::test]
async fn the_english_document_is_left_to_right_and_shows_the_yer_equivalent() {
    let app = TestApp::spawn().await;
    let (id, number) = invoiced_tenant(&app, "farm-doc-en", "USD").await;
    let r = document(
        &app,
        &id,
        "?lang=en",
        Auth::TenantAdmin("farm-doc-en".into()),
    )
    .await;
    let page = html(&r);
    assert!(page.contains(r#"<html lang="en" dir="ltr">"#));
    assert!(page.contains(&format!("Invoice {number}")), "title");
    assert!(page.contains("29.00 USD"), "total");
    assert!(page.contains(">Pending<"));
    assert!(page.contains("Unpaid"));
    assert!(page.contains("YER equivalent"));
    assert!(page.contains("7250.00 YER"));
    assert!(page.contains("1 USD = 250.00 YER"), "the rate used");
    assert!(page.contains("Tax (<bdi class=\"num\">0%</bdi>)"));
    assert!(!page.contains("معلقة"));
    assert!(page.contains("Starter - Monthly"));
    // The same figure the JSON API reports.
    let json = app
        .get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantAdmin("farm-doc-en".into()),
        )
        .await;
    assert_eq!(json.body["amount_yer"], "7250.00");
}

#[tokio::test]
async fn arabic_indic_numerals_are_used_only_when_asked_and_identifiers_stay_latin() {
    let app = TestApp::spawn().await;
    let (id, number) = invoiced_tenant(&app, "farm-doc-num", "USD").await;
    let auth = || Auth::TenantUser("farm-doc-num".into());
    let latin = document(&app, &id, "?lang=ar&numerals=latin", auth()).await;
    assert!(html(&latin).contains("29.00 USD"));
    assert!(!html(&latin).contains('٢'));

    let r = document(&app, &id, "?numerals=arabic", auth()).await;
    let page = html(&r);
    assert!(page.contains("٢٩٫٠٠ USD"), "total in Arabic-Indic digits");
    assert!(page.contains("٧٢٥٠٫٠٠ YER"));
    assert!(page.contains("٢٠٢٦-٠٣-٠٥"));
    assert!(!page.contains("29.00"));
    assert!(
        page.contains(&number),
        "the invoice number is an identifier: Latin"
    );
    assert!(page.contains("YE-TAX-7788"));
}

#[tokio::test]
async fn user_provided_strings_are_html_escaped_in_both_languages() {
    let app = TestApp::spawn().await;
    let (id, _) = invoiced_tenant(&app, "farm-doc-xss", "USD").await;
    sqlx::query(
        "UPDATE invoice_lines SET description = '<b onmouseover=x>Plan</b>',
                description_ar = '</td><script>alert(2)</script>'
         WHERE invoice_id = $1",
    )
    .bind(uuid::Uuid::parse_str(&id).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    for lang in ["ar", "en"] {
        let r = document(&app, &id, &format!("?lang={lang}"), Auth::Admin).await;
        let page = html(&r);
        assert!(!page.contains("<script"), "{lang}: raw script tag");
        assert!(!page.contains("<img"), "{lang}: raw img tag");
        assert!(!page.contains("<b "), "{lang}: raw b tag");
        assert!(
            page.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; Farm &amp; Sons")
        );
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt; مزرعة الوادي الأخضر"));
    }
    let ar = document(&app, &id, "?lang=ar", Auth::Admin).await;
    assert!(html(&ar).contains("&lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    let en = document(&app, &id, "?lang=en", Auth::Admin).await;
    assert!(html(&en).contains("&lt;b onmouseover=x&gt;Plan&lt;/b&gt;"));
}

#[tokio::test]
async fn a_partly_paid_invoice_shows_what_was_paid_and_what_is_still_due() {
    let app = TestApp::spawn().await;
    let (id, _) = invoiced_tenant(&app, "farm-doc-paid", "USD").await;
    let paid = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id, "amount": "10", "method": "cash"}),
        )
        .await;
    assert_status!(paid, 201);
    let r = document(
        &app,
        &id,
        "?lang=en",
        Auth::TenantUser("farm-doc-paid".into()),
    )
    .await;
    let page = html(&r);
    assert!(page.contains("10.00 USD"), "amount paid");
    assert!(page.contains("19.00 USD"), "amount due");
    assert!(page.contains("Partially paid"));
    let ar = document(&app, &id, "", Auth::TenantUser("farm-doc-paid".into())).await;
    assert!(html(&ar).contains("مدفوعة جزئياً"));
}

#[tokio::test]
async fn another_tenants_invoice_document_is_404_like_a_missing_one() {
    let app = TestApp::spawn().await;
    let (id, _) = invoiced_tenant(&app, "farm-doc-1", "USD").await;
    let (_, _) = invoiced_tenant(&app, "farm-doc-2", "USD").await;
    let other = document(&app, &id, "", Auth::TenantAdmin("farm-doc-2".into())).await;
    assert_status!(other, 404);
    let missing = document(
        &app,
        &uuid::Uuid::new_v4().to_string(),
        "",
        Auth::TenantAdmin("farm-doc-2".into()),
    )
    .await;
    assert_status!(missing, 404);
    assert_eq!(other.body["error"], missing.body["error"]);
    assert_eq!(other.body["message"], missing.body["message"]);

    assert_status!(document(&app, &id, "", Auth::None).await, 401);
    html(&document(&app, &id, "", Auth::Admin).await);
    html(
        &app.get(&format!("/api/v1/invoices/{id}/document"), Auth::Service)
            .await,
    );
    let bad = document(&app, "not-a-uuid", "", Auth::Admin).await;
    assert_status!(bad, 400);
    assert_eq!(bad.error_code(), "invalid_id");
}

#[tokio::test]
async fn an_unknown_lang_or_numerals_is_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let (id, _) = invoiced_tenant(&app, "farm-doc-bad", "USD").await;
    let auth = || Auth::TenantUser("farm-doc-bad".into());
    let r = document(&app, &id, "?lang=fr", auth()).await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "lang");
    let r = document(&app, &id, "?lang=en&numerals=roman", auth()).await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "numerals");
    // Validation comes before the lookup: a bad parameter is 422 even for a missing invoice.
    let r = document(&app, &uuid::Uuid::new_v4().to_string(), "?lang=xx", auth()).await;
    assert_status!(r, 422);
}

// ---- Headless Chromium: the page really renders (screenshots kept for a human to look at).

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs headless Chromium with a throwaway profile; returns its stdout. Killed after 90 s.
async fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempdir("chromium-profile");
    let mut cmd = tokio::process::Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium finished within 90 s")
        .expect("chromium ran");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tempdir(what: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn headless_chromium_renders_both_languages() {
    if !Path::new(CHROMIUM).exists() {
        // In CI the page must really be rendered: scripts/test installs Chromium there, and a
        // machine where that failed must not pass this test silently.
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "CI is set and {CHROMIUM} is absent: the invoice document was not rendered"
        );
        println!("\n!!!!!!!! SKIPPED: chromium not installed ({CHROMIUM} is absent) !!!!!!!!\n");
        eprintln!("\n!!!!!!!! SKIPPED: chromium not installed ({CHROMIUM} is absent) !!!!!!!!\n");
        return;
    }
    let app = TestApp::spawn().await;
    let (id, number) = invoiced_tenant(&app, "farm-doc-png", "YER").await;
    // Chromium cannot send our bearer token, so the page fetched over HTTP is saved and
    // opened from disk; that also proves it needs nothing beyond itself.
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("invoice-document");
    std::fs::create_dir_all(&out_dir).unwrap();
    for (name, query) in [
        ("ar", "?lang=ar"),
        ("ar-numerals", "?numerals=arabic"),
        ("en", "?lang=en"),
    ] {
        let r = document(&app, &id, query, Auth::TenantUser("farm-doc-png".into())).await;
        let html_path = out_dir.join(format!("invoice-{name}.html"));
        std::fs::write(&html_path, html(&r)).unwrap();
        let url = format!("file://{}", html_path.display());

        let dom = chromium(&["--dump-dom"], &url).await;
        assert!(dom.contains(&number), "{name}: number in the rendered DOM");
        let total = if name == "ar-numerals" {
            "٧٢٥٠٫٠٠ YER"
        } else {
            "7250.00 YER"
        };
        assert!(dom.contains(total), "{name}: total in the rendered DOM");
        let dir = if name == "en" {
            r#"dir="ltr""#
        } else {
            r#"dir="rtl""#
        };
        assert!(dom.contains(dir));

        let png = out_dir.join(format!("invoice-{name}.png"));
        let _ = std::fs::remove_file(&png);
        chromium(
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1024,1400",
            ],
            &url,
        )
        .await;
        let bytes = std::fs::read(&png).expect("screenshot written");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: a PNG");
        assert!(
            bytes.len() > 20_000,
            "{name}: a blank page is tiny ({} bytes)",
            bytes.len()
        );
        println!("{name}: {}", png.display());
    }
}
