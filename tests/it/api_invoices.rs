use crate::common;

use chrono::{TimeZone, Utc};
use common::{Auth, TestApp};
use futures::future::join_all;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;

/// A tenant with a live monthly subscription for March 2026, created straight in the
/// database (sign-up belongs to another module). The clock is set inside that period.
async fn tenant_with(app: &TestApp, tenant: &str, plan: &str, status: &str, currency: &str) {
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone)
         VALUES ($1, 'Green Valley Farm', 'مزرعة الوادي الأخضر', 'farm@example.com', '+967771234567')",
    )
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, currency,
             anchor_day, start_date, end_date, next_billing_date, trial_end_date)
         VALUES ($1, $2, $3, $4::subscription_status, 'monthly', $5, 1, DATE '2026-03-01',
                 DATE '2026-04-01', DATE '2026-04-01',
                 CASE WHEN $4 = 'trial' THEN DATE '2026-04-01' END)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(tenant)
    .bind(plan)
    .bind(status)
    .bind(currency)
    .execute(&app.pool)
    .await
    .unwrap();
}

async fn generate(app: &TestApp, tenant: &str) -> common::Resp {
    app.post(
        &format!("/v1/tenants/{tenant}/invoices/generate"),
        Auth::TenantAdmin(tenant.into()),
        json!({}),
    )
    .await
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().expect("money is a string")).unwrap()
}

/// Moves the subscription to the next month so that generate issues a new invoice.
async fn advance_period(app: &TestApp, tenant: &str, months: i32) {
    sqlx::query(
        "UPDATE subscriptions SET start_date = DATE '2026-03-01' + make_interval(months => $2),
             end_date = DATE '2026-04-01' + make_interval(months => $2)
         WHERE tenant_id = $1",
    )
    .bind(tenant)
    .bind(months)
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn generating_twice_issues_one_invoice_and_then_returns_it() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-a", "starter", "active", "USD").await;
    let first = generate(&app, "farm-a").await;
    assert_status!(first, 201);
    assert_eq!(first.body["created"], true);
    let inv = &first.body["invoice"];
    let number = inv["invoice_number"].as_str().unwrap();
    assert!(
        number.starts_with("SAH-2026-") && number.len() >= 13,
        "{number}"
    );
    assert!(number[9..].chars().all(|c| c.is_ascii_digit()));
    assert_eq!(inv["status"], "pending");
    assert_eq!(inv["subtotal"], "29.00");
    assert_eq!(inv["total"], "29.00");
    assert_eq!(inv["amount_due"], "29.00");
    assert_eq!(inv["amount_paid"], "0.00");
    assert_eq!(inv["period_start"], "2026-03-01");
    assert_eq!(inv["due_date"], "2026-03-12");
    let lines = inv["line_items"].as_array().unwrap();
    assert!(!lines.is_empty());
    let sum: Decimal = lines.iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(sum, dec(&inv["subtotal"]));

    let second = generate(&app, "farm-a").await;
    assert_status!(second, 200);
    assert_eq!(second.body["created"], false);
    assert_eq!(second.body["invoice"]["invoice_id"], inv["invoice_id"]);
    assert_eq!(
        second.body["invoice"]["invoice_number"],
        inv["invoice_number"]
    );

    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'invoice_generated'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn generate_with_an_idempotency_key_replays_the_first_response() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-k", "starter", "active", "USD").await;
    let path = "/v1/tenants/farm-k/invoices/generate";
    let a = app
        .post_idem(path, Auth::TenantAdmin("farm-k".into()), "gen-1", json!({}))
        .await;
    assert_status!(a, 201);
    let b = app
        .post_idem(
            &format!("/api{path}"),
            Auth::TenantAdmin("farm-k".into()),
            "gen-1",
            json!({}),
        )
        .await;
    assert_status!(b, 201);
    assert_eq!(a.body, b.body);
    assert_eq!(b.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn a_yer_subscription_is_invoiced_in_yer_with_the_rate_stored() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-yer", "starter", "active", "YER").await;
    let r = generate(&app, "farm-yer").await;
    assert_status!(r, 201);
    assert_eq!(r.body["invoice"]["currency"], "YER");
    assert_eq!(r.body["invoice"]["total"], "7250.00");
    assert_eq!(r.body["invoice"]["exchange_rate"], "250.00");
    let id = r.body["invoice"]["invoice_id"].as_str().unwrap();
    let one = app
        .get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantUser("farm-yer".into()),
        )
        .await;
    assert_status!(one, 200);
    assert_eq!(one.body["amount_yer"], "7250.00");
}

#[tokio::test]
async fn reading_an_invoice_shows_its_tenant_and_the_yer_amount() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-r", "starter", "active", "USD").await;
    let id = generate(&app, "farm-r").await.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantUser("farm-r".into()),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["amount_yer"], "7250.00");
    assert_eq!(r.body["tenant"]["tenant_id"], "farm-r");
    assert_eq!(r.body["tenant"]["name_ar"], "مزرعة الوادي الأخضر");
    assert_eq!(r.body["invoice"]["line_items"][0]["amount"], "29.00");
    assert_eq!(r.body["invoice"]["discount_amount"], "0.00");
    let admin = app
        .get(&format!("/api/v1/invoices/{id}"), Auth::Service)
        .await;
    assert_status!(admin, 200);
}

#[tokio::test]
async fn a_free_plan_invoice_is_issued_paid() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-free", "free", "active", "USD").await;
    let r = generate(&app, "farm-free").await;
    assert_status!(r, 201);
    assert_eq!(r.body["invoice"]["total"], "0.00");
    assert_eq!(r.body["invoice"]["status"], "paid");
    assert_eq!(r.body["invoice"]["paid_date"], "2026-03-05");
}

#[tokio::test]
async fn a_trial_is_not_invoiced_and_a_suspended_subscription_is() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-trial", "starter", "trial", "USD").await;
    let r = generate(&app, "farm-trial").await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "subscription_in_trial");

    tenant_with(&app, "farm-susp", "starter", "suspended", "USD").await;
    assert_status!(generate(&app, "farm-susp").await, 201);
}

#[tokio::test]
async fn a_tenant_without_a_live_subscription_gets_404() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-gone", "starter", "canceled", "USD").await;
    let r = generate(&app, "farm-gone").await;
    assert_status!(r, 404);
    assert_eq!(r.error_code(), "no_active_subscription");
    let missing = app
        .post(
            "/v1/tenants/nobody/invoices/generate",
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(missing, 404);
}

#[tokio::test]
async fn ten_concurrent_generate_calls_issue_one_invoice() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-race", "starter", "active", "USD").await;
    let results = join_all((0..10).map(|_| generate(&app, "farm-race"))).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(results
        .iter()
        .all(|r| matches!(r.status.as_u16(), 200 | 201)));
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| {
            r.body["invoice"]["invoice_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn twenty_tenants_generating_at_once_get_contiguous_numbers() {
    let app = TestApp::spawn().await;
    let tenants: Vec<String> = (0..20).map(|i| format!("farm-{i:02}")).collect();
    for t in &tenants {
        tenant_with(&app, t, "starter", "active", "USD").await;
    }
    let results = join_all(tenants.iter().map(|t| generate(&app, t))).await;
    let mut numbers: Vec<u32> = results
        .iter()
        .map(|r| {
            assert_status!(r, 201);
            r.body["invoice"]["invoice_number"].as_str().unwrap()["SAH-2026-".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=20).collect::<Vec<u32>>());
}

#[tokio::test]
async fn voiding_cancels_only_unpaid_invoices() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-v", "starter", "active", "USD").await;
    let id = generate(&app, "farm-v").await.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/invoices/{id}/void");
    assert_status!(
        app.post(&path, Auth::TenantAdmin("farm-v".into()), json!({}))
            .await,
        403
    );
    let r = app.post(&path, Auth::Admin, json!({})).await;
    assert_status!(r, 200);
    assert_eq!(r.body["invoice"]["status"], "canceled");
    let again = app.post(&path, Auth::Admin, json!({})).await;
    assert_status!(again, 409);
    assert_eq!(again.error_code(), "invoice_not_voidable");
    let voided: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'invoice.voided'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(voided, 1);

    // A partially paid invoice keeps its payment: it cannot be voided.
    advance_period(&app, "farm-v", 1).await;
    let id2 = generate(&app, "farm-v").await.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let paid = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id2, "amount": "10", "method": "cash"}),
        )
        .await;
    assert_status!(paid, 201);
    let r = app
        .post(&format!("/v1/invoices/{id2}/void"), Auth::Admin, json!({}))
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "invoice_not_voidable");

    tenant_with(&app, "farm-vfree", "free", "active", "USD").await;
    let free = generate(&app, "farm-vfree").await.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_status!(
        app.post(&format!("/v1/invoices/{free}/void"), Auth::Admin, json!({}))
            .await,
        409
    );
    let missing = app
        .post(
            &format!("/v1/invoices/{}/void", uuid::Uuid::new_v4()),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(missing, 404);
}

#[tokio::test]
async fn the_invoice_list_filters_paginates_and_counts() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-l", "starter", "active", "USD").await;
    let mut ids = Vec::new();
    for m in 0..3 {
        advance_period(&app, "farm-l", m).await;
        let r = generate(&app, "farm-l").await;
        assert_status!(r, 201);
        ids.push(
            r.body["invoice"]["invoice_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_status!(
        app.post(
            &format!("/v1/invoices/{}/void", ids[0]),
            Auth::Admin,
            json!({})
        )
        .await,
        200
    );
    let auth = || Auth::TenantUser("farm-l".into());

    let all = app.get("/v1/tenants/farm-l/invoices", auth()).await;
    assert_status!(all, 200);
    assert_eq!(all.body["total"], 3);
    assert_eq!(all.body["has_more"], false);
    let listed: Vec<&str> = all.body["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["invoice_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    assert!(all.body["invoices"][0]["line_items"]
        .as_array()
        .is_some_and(|l| !l.is_empty()));

    let pending = app
        .get("/v1/tenants/farm-l/invoices?status=pending&limit=1", auth())
        .await;
    assert_eq!(pending.body["total"], 2);
    assert_eq!(pending.body["has_more"], true);
    assert_eq!(pending.body["invoices"][0]["invoice_id"], ids[2].as_str());
    let next = app
        .get(
            &format!(
                "/v1/tenants/farm-l/invoices?status=pending&limit=1&starting_after={}",
                ids[2]
            ),
            auth(),
        )
        .await;
    assert_eq!(next.body["invoices"][0]["invoice_id"], ids[1].as_str());
    assert_eq!(next.body["has_more"], false);
    assert_eq!(next.body["total"], 2);

    let canceled = app
        .get("/v1/tenants/farm-l/invoices?status=canceled", auth())
        .await;
    assert_eq!(canceled.body["total"], 1);
    let bad = app
        .get("/v1/tenants/farm-l/invoices?status=unpaid", auth())
        .await;
    assert_status!(bad, 422);
    assert_eq!(bad.body["fields"][0]["field"], "status");
    assert_status!(
        app.get("/v1/tenants/farm-l/invoices?starting_after=zzz", auth())
            .await,
        422
    );
    assert_status!(
        app.get("/v1/tenants/farm-l/invoices?limit=0", auth()).await,
        422
    );
}

#[tokio::test]
async fn tenants_cannot_see_or_generate_each_others_invoices() {
    let app = TestApp::spawn().await;
    tenant_with(&app, "farm-1", "starter", "active", "USD").await;
    tenant_with(&app, "farm-2", "starter", "active", "USD").await;
    let id = generate(&app, "farm-1").await.body["invoice"]["invoice_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = || Auth::TenantAdmin("farm-2".into());

    let r = app.get(&format!("/v1/invoices/{id}"), other()).await;
    assert_status!(r, 404);
    let missing = app
        .get(&format!("/v1/invoices/{}", uuid::Uuid::new_v4()), other())
        .await;
    assert_status!(missing, 404);
    assert_eq!(r.body["error"], missing.body["error"]);
    assert_eq!(r.body["message"], missing.body["message"]);

    assert_status!(app.get("/v1/tenants/farm-1/invoices", other()).await, 404);
    assert_status!(
        app.post("/v1/tenants/farm-1/invoices/generate", other(), json!({}))
            .await,
        404
    );
    assert_status!(
        app.post(
            "/v1/tenants/farm-2/invoices/generate",
            Auth::TenantUser("farm-2".into()),
            json!({})
        )
        .await,
        403
    );
    assert_status!(
        app.post(
            "/v1/tenants/farm-2/invoices/generate",
            Auth::Service,
            json!({})
        )
        .await,
        403
    );
    assert_status!(
        app.get("/v1/tenants/farm-1/invoices", Auth::None).await,
        401
    );
    assert_status!(
        app.get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantUser("farm-1".into())
        )
        .await,
        200
    );
}

#[tokio::test]
async fn a_malformed_invoice_id_is_400() {
    let app = TestApp::spawn().await;
    let r = app.get("/v1/invoices/not-a-uuid", Auth::Admin).await;
    assert_status!(r, 400);
    assert_eq!(r.error_code(), "invalid_id");
    assert_status!(
        app.post("/v1/invoices/not-a-uuid/void", Auth::Admin, json!({}))
            .await,
        400
    );
}
