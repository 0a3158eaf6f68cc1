//! Every line of every kind of invoice adds up: quantity × unit price = amount (rounded once),
//! in the JSON `line_items` and on the printed document in both languages; and the printed
//! period names its last day, inclusive, in words.
use crate::common;

use billing_core::billing::money::line_amount;
use billing_core::jobs::run_daily;
use chrono::{NaiveTime, TimeZone, Utc};
use common::{d, Auth, TestApp};
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Sets the service clock to 10:00 UTC on `date`.
pub(crate) fn at(app: &TestApp, date: &str) {
    app.clock.set(
        d(date)
            .and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap())
            .and_utc(),
    );
}

/// "Harvest": 33.33 USD a month, no trial (invoiced at sign-up), a few limits.
pub(crate) async fn create_harvest_plan(app: &TestApp) {
    let plan = json!({
        "plan_id": "harvest", "name": "Harvest", "name_ar": "الحصاد",
        "description": "For the harvest season", "description_ar": "لموسم الحصاد",
        "tier": "starter", "monthly_price_usd": "33.33", "trial_days": 0,
        "limits": {"fields": 5, "api_calls_per_day": 100}
    });
    assert_status!(app.post("/v1/plans", Auth::Admin, plan).await, 201);
}

/// Signs `tenant` up on `plan` in `currency`; returns the sign-up invoice id.
pub(crate) async fn sign_up(app: &TestApp, tenant: &str, plan: &str, currency: &str) -> String {
    let r = app
        .post(
            "/v1/tenants",
            Auth::Admin,
            json!({
                "tenant_id": tenant, "name": "Green Valley Farm", "name_ar": "مزرعة الوادي الأخضر",
                "email": "owner@greenvalley.example.com", "phone": "+967771234567",
                "plan_id": plan, "currency": currency
            }),
        )
        .await;
    assert_status!(r, 201);
    r.body["invoice_id"]
        .as_str()
        .expect("a sign-up invoice")
        .to_string()
}

pub(crate) async fn change_plan(app: &TestApp, tenant: &str, plan: &str) -> Value {
    let r = app
        .patch(
            &format!("/v1/tenants/{tenant}/subscription"),
            Auth::TenantAdmin(tenant.into()),
            json!({"plan_id": plan}),
        )
        .await;
    assert_status!(r, 200);
    r.body
}

/// The daily billing run as of 03:00 UTC on `date`.
pub(crate) async fn bill_on(app: &TestApp, date: &str) -> billing_core::jobs::DailyReport {
    let when = d(date)
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, when, |_| {})
        .await
        .unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

/// The text of every `<td>` of the rows of the lines table (tags stripped).
fn printed_lines(page: &str) -> Vec<Vec<String>> {
    let table = page
        .split("<table class=\"lines\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("a lines table");
    let body = table.split("<tbody>").nth(1).expect("a tbody");
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let inner = &cell[cell.find('>').unwrap() + 1..];
                    let inner = inner.split("</td>").next().unwrap();
                    let mut text = String::new();
                    let mut in_tag = false;
                    for c in inner.chars() {
                        match c {
                            '<' => in_tag = true,
                            '>' => in_tag = false,
                            _ if !in_tag => text.push(c),
                            _ => {}
                        }
                    }
                    text
                })
                .collect()
        })
        .collect()
}

/// Checks every line of the invoice in JSON and on both printed documents; returns the kinds.
async fn check_invoice(app: &TestApp, tenant: &str, id: &str) -> Vec<String> {
    let auth = || Auth::TenantAdmin(tenant.into());
    let r = app.get(&format!("/v1/invoices/{id}"), auth()).await;
    assert_status!(r, 200);
    let items = r.body["invoice"]["line_items"].as_array().unwrap().clone();
    assert!(!items.is_empty());
    let mut sum = Decimal::ZERO;
    for l in &items {
        let (q, u, a) = (
            dec(l["quantity"].as_str().unwrap()),
            dec(l["unit_price"].as_str().unwrap()),
            dec(l["amount"].as_str().unwrap()),
        );
        assert_eq!(line_amount(q, u), a, "JSON line does not add up: {l}");
        sum += a;
    }
    assert_eq!(
        sum,
        dec(r.body["invoice"]["subtotal"].as_str().unwrap()),
        "lines sum to the subtotal"
    );
    for lang in ["en", "ar"] {
        let doc = app
            .get(&format!("/v1/invoices/{id}/document?lang={lang}"), auth())
            .await;
        assert_status!(doc, 200);
        let rows = printed_lines(doc.body.as_str().unwrap());
        assert_eq!(rows.len(), items.len(), "{lang}: one printed row per line");
        for row in rows {
            let (q, u, a) = (dec(&row[2]), dec(&row[3]), dec(&row[4]));
            assert_eq!(
                line_amount(q, u),
                a,
                "{lang}: printed line does not add up: {row:?}"
            );
        }
    }
    items
        .iter()
        .map(|l| l["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_line_of_every_kind_of_invoice_adds_up_in_json_and_on_paper() {
    let app = TestApp::spawn().await;
    at(&app, "2026-12-03");
    create_harvest_plan(&app).await;
    // Sign-ups: an AED tenant (unit prices with 4+ decimals) and a USD one.
    sign_up(&app, "farm-up", "harvest", "AED").await;
    sign_up(&app, "farm-down", "harvest", "USD").await;
    // An upgrade after 16 days (proration invoice), a downgrade (credit for the renewal).
    at(&app, "2026-12-19");
    let up = change_plan(&app, "farm-up", "professional").await;
    assert!(up["proration"]["invoice_id"].is_string(), "{up}");
    let down = change_plan(&app, "farm-down", "starter").await;
    assert!(down["proration"]["invoice_id"].is_null(), "{down}");
    // Overage in the period: 241 API calls over the daily limit (0.001 USD × 3.6725 AED has
    // 7 decimals) and 3 fields over the gauge limit.
    sqlx::query(
        "INSERT INTO usage_counters (tenant_id, metric, window_start, used, peak) VALUES
         ('farm-up', 'api_calls_per_day', '2026-12-20', 2241, 2241),
         ('farm-up', 'fields', '2026-12-03', 53, 53)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let r = bill_on(&app, "2027-01-03").await;
    assert_eq!(r.renewals.invoices_issued, 2);

    let invoices: Vec<(String, String)> = sqlx::query_as(
        "SELECT tenant_id, invoice_id::text FROM invoices ORDER BY tenant_id, created_at",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(invoices.len(), 5, "2 sign-ups, 1 proration, 2 renewals");
    let mut kinds = Vec::new();
    for (tenant, id) in &invoices {
        kinds.extend(check_invoice(&app, tenant, id).await);
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["credit", "overage", "plan", "proration"]);
}

#[tokio::test]
async fn a_proration_line_is_one_unit_at_its_prorated_amount_with_the_days_in_words() {
    let app = TestApp::spawn().await;
    at(&app, "2026-12-03");
    create_harvest_plan(&app).await;
    sign_up(&app, "farm-pro", "harvest", "USD").await;
    at(&app, "2026-12-19");
    let up = change_plan(&app, "farm-pro", "professional").await;
    let id = up["proration"]["invoice_id"].as_str().unwrap();
    let r = app
        .get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantAdmin("farm-pro".into()),
        )
        .await;
    let items = r.body["invoice"]["line_items"].as_array().unwrap();
    // 15 of the 31 days of [2026-12-03, 2027-01-03) remain.
    let shown: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|l| {
            (
                l["quantity"].as_str().unwrap(),
                l["unit_price"].as_str().unwrap(),
                l["amount"].as_str().unwrap(),
                l["description"].as_str().unwrap(),
                l["description_ar"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "1",
                "-16.13",
                "-16.13",
                "Credit for unused days on Harvest: 15 of 31 days",
                "رصيد الأيام غير المستخدمة من الحصاد: 15 من 31 يوماً"
            ),
            (
                "1",
                "47.90",
                "47.90",
                "Charge for remaining days on Professional: 15 of 31 days",
                "رسوم الأيام المتبقية على الاحترافي: 15 من 31 يوماً"
            ),
        ]
    );
}

#[tokio::test]
async fn the_printed_period_names_its_last_day_inclusive_in_both_languages() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap());
    create_harvest_plan(&app).await;
    let id = sign_up(&app, "farm-period", "harvest", "USD").await;
    let auth = || Auth::TenantUser("farm-period".into());
    let json = app.get(&format!("/v1/invoices/{id}"), auth()).await;
    assert_eq!(
        json.body["invoice"]["period_end"], "2027-01-03",
        "exclusive"
    );
    let en = app
        .get(&format!("/v1/invoices/{id}/document?lang=en"), auth())
        .await;
    let en = en.body.as_str().unwrap();
    assert!(
        en.contains(
            "<time datetime=\"2026-12-03\">3 December 2026</time> through \
             <time datetime=\"2027-01-02\">2 January 2027</time>"
        ),
        "{en}"
    );
    assert!(
        !en.contains("2027-01-03"),
        "the exclusive end is not printed"
    );
    let ar = app
        .get(&format!("/v1/invoices/{id}/document?lang=ar"), auth())
        .await;
    let ar = ar.body.as_str().unwrap();
    assert!(
        ar.contains(
            "من <time datetime=\"2026-12-03\">3 ديسمبر 2026</time> حتى \
             <time datetime=\"2027-01-02\">2 يناير 2027</time> ضمناً"
        ),
        "{ar}"
    );
    let arabic_digits = app
        .get(
            &format!("/v1/invoices/{id}/document?lang=ar&numerals=arabic"),
            auth(),
        )
        .await;
    assert!(arabic_digits
        .body
        .as_str()
        .unwrap()
        .contains("حتى <time datetime=\"2027-01-02\">٢ يناير ٢٠٢٧</time> ضمناً"));

    // The published schema says which convention the API uses.
    let doc = app.get("/openapi.json", Auth::None).await;
    let schemas = &doc.body["components"]["schemas"];
    for (schema, field) in [
        ("Invoice", "period_end"),
        ("Subscription", "end_date"),
        ("Invoice", "period_start"),
        ("UsageReport", "to"),
        ("QuotaReport", "billing_cycle_ends"),
        ("CancelResponse", "end_date"),
    ] {
        let text = schemas[schema]["properties"][field]["description"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        let want = if field == "period_start" {
            "inclusive"
        } else {
            "exclusive"
        };
        assert!(text.contains(want), "{schema}.{field}: {text:?}");
    }
    let params = doc.body["paths"]["/v1/tenants/{tenant_id}/usage"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let to = params.iter().find(|p| p["name"] == "to").unwrap();
    assert!(
        to["description"].as_str().unwrap().contains("exclusive"),
        "{to}"
    );
}
