//! The audit log: every admin and money-moving action leaves one row written with the change,
//! read back through `GET /v1/audit`.
use crate::common;
use crate::fakes;

use billing_core::auth::{issue_token, Role};
use chrono::{TimeZone, Utc};
use common::{d, tenant_with, Auth, Resp, Sub, TestApp};
use serde_json::{json, Value};

/// A caller with a recognisable subject.
fn who(app: &TestApp, subject: &str, role: Role, tenant: Option<&str>) -> Auth {
    Auth::Bearer(issue_token(&app.config.jwt_secret, subject, role, tenant, 3600).unwrap())
}

fn alice(app: &TestApp) -> Auth {
    who(app, "alice", Role::SuperAdmin, None)
}

fn request_id(r: &Resp) -> String {
    r.headers["x-request-id"].to_str().unwrap().to_string()
}

/// Every audit row with `action`, oldest first.
async fn rows(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/audit?action={action}&limit=100"), Auth::Admin)
        .await;
    assert_status!(r, 200);
    r.body["audit"].as_array().unwrap().clone()
}

/// The single audit row of `action`, checked against the request that made it.
async fn only_row(app: &TestApp, action: &str, resp: &Resp) -> Value {
    let found = rows(app, action).await;
    assert_eq!(found.len(), 1, "one {action} row expected: {found:?}");
    let row = found[0].clone();
    assert_eq!(row["request_id"], request_id(resp), "{row}");
    row
}

async fn audit_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// A tenant with an active March 2026 starter subscription and its 29.00 invoice.
async fn tenant_with_invoice(app: &TestApp, tenant: &str) -> String {
    fakes::invoice_for(app, tenant).await
}

async fn pay(app: &TestApp, auth: Auth, invoice: &str, amount: &str, method: &str) -> Resp {
    app.post(
        "/v1/payments",
        auth,
        json!({"invoice_id": invoice, "amount": amount, "method": method}),
    )
    .await
}

fn plan_body(name: &str) -> Value {
    json!({"name": name, "name_ar": "خطة", "description": "d", "description_ar": "د",
           "tier": "starter", "monthly_price_usd": "10.00"})
}

#[tokio::test]
async fn creating_a_plan_records_its_snapshot_the_actor_and_the_time() {
    let app = TestApp::spawn().await;
    let started = Utc::now();
    let r = app
        .post("/v1/plans", alice(&app), plan_body("Audit One"))
        .await;
    assert_status!(r, 201);
    let row = only_row(&app, "plan.create", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["actor_role"], "super_admin");
    assert_eq!(row["tenant_id"], Value::Null);
    assert_eq!(
        (row["target_type"].as_str(), row["target_id"].as_str()),
        (Some("plan"), Some("audit_one"))
    );
    assert_eq!(row["before"], Value::Null);
    assert_eq!(row["after"]["pricing"]["monthly_usd"], "10.00");
    assert_eq!(row["after"]["is_active"], true);
    let at: chrono::DateTime<Utc> = serde_json::from_value(row["occurred_at"].clone()).unwrap();
    assert!(
        at >= started - chrono::Duration::seconds(5)
            && at <= Utc::now() + chrono::Duration::seconds(5)
    );
    assert!(row["seq"].as_i64().unwrap() > 0);
    assert!(uuid::Uuid::parse_str(row["audit_id"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn updating_a_plan_records_only_the_changed_fields() {
    let app = TestApp::spawn().await;
    assert_status!(
        app.post("/v1/plans", Auth::Admin, plan_body("Audit Two"))
            .await,
        201
    );
    let r = app
        .patch(
            "/v1/plans/audit_two",
            alice(&app),
            json!({"name": "Audit Two B", "trial_days": 7}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "plan.update", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(
        row["before"],
        json!({"name": "Audit Two", "trial_days": 14})
    );
    assert_eq!(
        row["after"],
        json!({"name": "Audit Two B", "trial_days": 7})
    );
}

#[tokio::test]
async fn archiving_a_plan_records_that_it_became_inactive() {
    let app = TestApp::spawn().await;
    assert_status!(
        app.post("/v1/plans", Auth::Admin, plan_body("Audit Three"))
            .await,
        201
    );
    let r = app.delete("/v1/plans/audit_three", alice(&app)).await;
    assert_status!(r, 200);
    let row = only_row(&app, "plan.archive", &r).await;
    assert_eq!(row["target_id"], "audit_three");
    assert_eq!(row["before"], json!({"is_active": true}));
    assert_eq!(row["after"], json!({"is_active": false}));
}

#[tokio::test]
async fn a_failed_plan_update_leaves_no_row() {
    let app = TestApp::spawn().await;
    let r = app
        .patch("/v1/plans/no_such_plan", Auth::Admin, json!({"name": "X"}))
        .await;
    assert_status!(r, 404);
    let r = app
        .patch("/v1/plans/starter", Auth::Admin, json!({"trial_days": 999}))
        .await;
    assert_status!(r, 422);
    assert_eq!(audit_count(&app).await, 0);
}

const APRIL: Sub<'static> = Sub {
    plan: "starter",
    cycle: "monthly",
    status: "active",
    start: "2025-04-01",
    end: "2025-05-01",
    anchor: 1,
    currency: "USD",
};

fn april_16(app: &TestApp) {
    app.clock
        .set(d("2025-04-16").and_hms_opt(10, 0, 0).unwrap().and_utc());
}

#[tokio::test]
async fn a_plan_change_records_the_tenant_admin_the_old_and_new_plan_and_the_proration() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    april_16(&app);
    let me = who(&app, "omar", Role::TenantAdmin, Some(&t));
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            me,
            json!({"plan_id": "professional"}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "subscription.change", &r).await;
    assert_eq!(
        (row["actor"].as_str(), row["actor_role"].as_str()),
        (Some("omar"), Some("tenant_admin"))
    );
    assert_eq!(row["tenant_id"], t);
    assert_eq!(row["target_type"], "subscription");
    assert_eq!(row["target_id"], r.body["subscription"]["subscription_id"]);
    assert_eq!(row["before"], json!({"plan_id": "starter"}));
    assert_eq!(row["after"]["plan_id"], "professional");
    assert_eq!(row["after"]["proration"]["net"], "35.00");
    assert_eq!(
        row["after"]["proration"]["invoice_id"],
        r.body["proration"]["invoice_id"]
    );
}

#[tokio::test]
async fn a_refused_plan_change_leaves_no_row() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    april_16(&app);
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            Auth::TenantAdmin(t.clone()),
            json!({"plan_id": "nope"}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(audit_count(&app).await, 0);
}

#[tokio::test]
async fn cancelling_records_the_pending_cancellation() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    april_16(&app);
    let r = app
        .post(
            &format!("/v1/tenants/{t}/cancel"),
            Auth::TenantAdmin(t.clone()),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "subscription.cancel", &r).await;
    assert_eq!(row["tenant_id"], t);
    assert_eq!(row["before"], json!({"cancel_at_period_end": false}));
    assert_eq!(
        row["after"],
        json!({"cancel_at_period_end": true, "immediate": false})
    );
}

#[tokio::test]
async fn an_immediate_cancel_records_the_status_change() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    april_16(&app);
    let r = app
        .post(
            &format!("/v1/tenants/{t}/cancel?immediate=true"),
            alice(&app),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "subscription.cancel", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["before"]["status"], "active");
    assert_eq!(row["after"]["status"], "canceled");
    assert_eq!(row["after"]["immediate"], true);
    assert!(row["after"]["canceled_at"].is_string());
}

#[tokio::test]
async fn resuming_records_the_cancellation_undone() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    april_16(&app);
    let me = Auth::TenantAdmin(t.clone());
    assert_status!(
        app.post(&format!("/v1/tenants/{t}/cancel"), me.clone(), json!({}))
            .await,
        200
    );
    let r = app
        .post(
            &format!("/v1/tenants/{t}/subscription/resume"),
            me.clone(),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "subscription.resume", &r).await;
    assert_eq!(row["before"], json!({"cancel_at_period_end": true}));
    assert_eq!(row["after"], json!({"cancel_at_period_end": false}));
    let again = app
        .post(
            &format!("/v1/tenants/{t}/subscription/resume"),
            me,
            json!({}),
        )
        .await;
    assert_status!(again, 409);
    assert_eq!(rows(&app, "subscription.resume").await.len(), 1);
}

#[tokio::test]
async fn recording_a_payment_records_it_pending_with_its_invoice() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-pay").await;
    let me = who(&app, "omar", Role::TenantAdmin, Some("farm-audit-pay"));
    let r = pay(&app, me, &inv, "10.00", "bank_transfer").await;
    assert_status!(r, 201);
    let row = only_row(&app, "payment.create", &r).await;
    assert_eq!(
        (row["actor"].as_str(), row["actor_role"].as_str()),
        (Some("omar"), Some("tenant_admin"))
    );
    assert_eq!(row["tenant_id"], "farm-audit-pay");
    assert_eq!(row["target_type"], "payment");
    assert_eq!(row["target_id"], r.body["payment"]["payment_id"]);
    assert_eq!(row["before"], Value::Null);
    assert_eq!(row["after"]["amount"], "10.00");
    assert_eq!(row["after"]["status"], "pending");
    assert_eq!(row["after"]["invoice_amount_due"], "29.00");
}

#[tokio::test]
async fn cash_taken_by_a_super_admin_is_recorded_as_settled() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-cash").await;
    let r = pay(&app, alice(&app), &inv, "29.00", "cash").await;
    assert_status!(r, 201);
    let row = only_row(&app, "payment.create", &r).await;
    assert_eq!(row["after"]["status"], "succeeded");
    assert_eq!(row["after"]["invoice_status"], "paid");
    assert_eq!(row["after"]["invoice_amount_due"], "0.00");
}

#[tokio::test]
async fn a_payment_over_the_amount_due_leaves_no_row() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-over").await;
    let before = audit_count(&app).await;
    let r = pay(&app, Auth::Admin, &inv, "29.01", "cash").await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "amount_exceeds_due");
    assert_eq!(audit_count(&app).await, before);
    assert!(rows(&app, "payment.create").await.is_empty());
}

#[tokio::test]
async fn a_replayed_payment_adds_no_second_row() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-replay").await;
    let body = json!({"invoice_id": inv, "amount": "5.00", "method": "cash"});
    let first = app
        .post_idem("/v1/payments", Auth::Admin, "audit-key-1", body.clone())
        .await;
    assert_status!(first, 201);
    let again = app
        .post_idem("/v1/payments", Auth::Admin, "audit-key-1", body)
        .await;
    assert_status!(again, 201);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    only_row(&app, "payment.create", &first).await;
}

async fn pending_payment(app: &TestApp, tenant: &str) -> String {
    let inv = tenant_with_invoice(app, tenant).await;
    let r = pay(
        app,
        Auth::TenantAdmin(tenant.into()),
        &inv,
        "29.00",
        "bank_transfer",
    )
    .await;
    assert_status!(r, 201);
    r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn confirming_a_payment_records_the_settlement() {
    let app = TestApp::spawn().await;
    let pid = pending_payment(&app, "farm-audit-confirm").await;
    let r = app
        .post(
            &format!("/v1/payments/{pid}/confirm"),
            alice(&app),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "payment.confirm", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["tenant_id"], "farm-audit-confirm");
    assert_eq!(row["target_id"], pid);
    assert_eq!(row["before"]["status"], "pending");
    assert_eq!(row["before"]["invoice_status"], "pending");
    assert_eq!(row["after"]["status"], "succeeded");
    assert_eq!(row["after"]["invoice_status"], "paid");
    assert_eq!(row["after"]["invoice_amount_due"], "0.00");
    // Confirming twice is a 409 and records nothing more.
    let again = app
        .post(
            &format!("/v1/payments/{pid}/confirm"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(again, 409);
    assert_eq!(rows(&app, "payment.confirm").await.len(), 1);
}

#[tokio::test]
async fn rejecting_a_payment_records_the_failure_and_its_reason() {
    let app = TestApp::spawn().await;
    let pid = pending_payment(&app, "farm-audit-reject").await;
    let r = app
        .post(
            &format!("/v1/payments/{pid}/reject"),
            alice(&app),
            json!({"reason": "No transfer arrived"}),
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "payment.reject", &r).await;
    assert_eq!(row["tenant_id"], "farm-audit-reject");
    assert_eq!(row["before"]["status"], "pending");
    assert_eq!(row["after"]["status"], "failed");
    assert_eq!(row["after"]["failure_reason"], "No transfer arrived");
    assert!(
        row["after"].get("invoice_status").is_none(),
        "the invoice did not change: {row}"
    );
}

#[tokio::test]
async fn a_refund_records_the_refund_and_what_it_did_to_the_payment_and_invoice() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-refund").await;
    let paid = pay(&app, Auth::Admin, &inv, "29.00", "cash").await;
    assert_status!(paid, 201);
    let pid = paid.body["payment"]["payment_id"].as_str().unwrap();
    let r = app
        .post(
            "/v1/refunds",
            alice(&app),
            json!({"payment_id": pid, "amount": "9.00", "reason": "Goodwill"}),
        )
        .await;
    assert_status!(r, 201);
    let row = only_row(&app, "refund.create", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["tenant_id"], "farm-audit-refund");
    assert_eq!(row["target_type"], "refund");
    assert_eq!(row["target_id"], r.body["refund"]["refund_id"]);
    assert_eq!(row["before"]["refunded_amount"], "0.00");
    assert_eq!(row["after"]["refunded_amount"], "9.00");
    assert_eq!(row["before"]["invoice_amount_due"], "0.00");
    assert_eq!(row["after"]["invoice_amount_due"], "9.00");
    assert_eq!(row["after"]["refund"]["refund_amount"], "9.00");
    assert_eq!(row["after"]["refund"]["reason"], "Goodwill");
    // A refund over what is left is refused and recorded nowhere.
    let over = app
        .post(
            "/v1/refunds",
            Auth::Admin,
            json!({"payment_id": pid, "amount": "20.01", "reason": "x"}),
        )
        .await;
    assert_status!(over, 422);
    assert_eq!(rows(&app, "refund.create").await.len(), 1);
}

#[tokio::test]
async fn voiding_an_invoice_records_its_cancellation() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-audit-void").await;
    let r = app
        .post(&format!("/v1/invoices/{inv}/void"), alice(&app), json!({}))
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "invoice.void", &r).await;
    assert_eq!(row["tenant_id"], "farm-audit-void");
    assert_eq!(
        (row["target_type"].as_str(), row["target_id"].as_str()),
        (Some("invoice"), Some(inv.as_str()))
    );
    assert_eq!(row["before"]["status"], "pending");
    assert_eq!(row["after"]["status"], "canceled");
}

#[tokio::test]
async fn a_billing_run_records_one_row_with_its_report() {
    let app = TestApp::spawn().await;
    tenant_with(&app.pool, Sub::default()).await;
    tenant_with(&app.pool, Sub::default()).await;
    let r = app
        .post(
            "/v1/admin/billing-run?date=2025-02-28",
            alice(&app),
            Value::Null,
        )
        .await;
    assert_status!(r, 200);
    let row = only_row(&app, "billing.run", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["tenant_id"], Value::Null);
    assert_eq!(
        (row["target_type"].as_str(), row["target_id"].as_str()),
        (Some("billing_run"), Some("2025-02-28"))
    );
    assert_eq!(row["after"]["renewals"]["invoices_issued"], 2);
    assert_eq!(row["after"]["renewals"], r.body["report"]["renewals"]);
    // A bad date runs nothing and records nothing.
    assert_status!(
        app.post(
            "/v1/admin/billing-run?date=2025-02-30",
            Auth::Admin,
            Value::Null
        )
        .await,
        422
    );
    assert_eq!(rows(&app, "billing.run").await.len(), 1);
}

#[tokio::test]
async fn an_exchange_rate_change_records_the_previous_and_new_rate() {
    let app = TestApp::spawn().await;
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap());
    let body = json!({"currency": "YER", "rate": "300.5", "effective_date": "2026-03-05"});
    let r = app.post("/v1/exchange-rates", alice(&app), body).await;
    assert_status!(r, 201);
    let row = only_row(&app, "exchange_rate.set", &r).await;
    assert_eq!(row["actor"], "alice");
    assert_eq!(row["target_type"], "exchange_rate");
    assert_eq!(row["target_id"], "YER:2026-03-05");
    assert!(
        row["before"]["rate"].is_string(),
        "the seeded rate was in force: {row}"
    );
    assert_eq!(row["after"]["rate"], "300.50");
    assert_eq!(row["after"]["replaced"], false);
    let bad = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "YER", "rate": "-1"}),
        )
        .await;
    assert_status!(bad, 422);
    assert_eq!(rows(&app, "exchange_rate.set").await.len(), 1);
}

#[tokio::test]
async fn a_card_payment_is_recorded_without_the_card_token() {
    let fake = fakes::stripe().await;
    let url = common::fresh_database().await;
    let base = fake.url();
    let app = TestApp::spawn_on(&url, |cfg| {
        cfg.stripe_api_base = base;
        cfg.stripe_api_key = Some("sk_test_123".into());
        cfg.stripe_webhook_secret = Some("whsec_a".into());
    })
    .await;
    let inv = fakes::invoice_for(&app, "farm-audit-card").await;
    let body = json!({"invoice_id": inv, "amount": "29.00", "method": "credit_card", "stripe_token": "pm_card_visa"});
    let r = app.post("/v1/payments", Auth::Admin, body).await;
    assert_status!(r, 201);
    let row = only_row(&app, "payment.create", &r).await;
    assert_eq!(row["after"]["method"], "credit_card");
    assert_eq!(row["after"]["status"], "processing");
    let text: String = sqlx::query_scalar(
        "SELECT string_agg(coalesce(before::text, '') || after::text, ' ') FROM audit_log",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(!text.contains("pm_card_visa"), "{text}");
}

/// Rows for two tenants: an offline payment each, then a plan created (no tenant).
async fn some_history(app: &TestApp) -> (String, String) {
    for t in ["farm-audit-a", "farm-audit-b"] {
        let inv = tenant_with_invoice(app, t).await;
        assert_status!(
            pay(
                app,
                Auth::TenantAdmin(t.into()),
                &inv,
                "1.00",
                "bank_transfer"
            )
            .await,
            201
        );
        assert_status!(
            pay(
                app,
                Auth::TenantAdmin(t.into()),
                &inv,
                "2.00",
                "bank_transfer"
            )
            .await,
            201
        );
    }
    assert_status!(
        app.post("/v1/plans", Auth::Admin, plan_body("Audit Four"))
            .await,
        201
    );
    ("farm-audit-a".into(), "farm-audit-b".into())
}

#[tokio::test]
async fn the_log_filters_by_tenant_and_action_and_pages_by_seq() {
    let app = TestApp::spawn().await;
    let (a, b) = some_history(&app).await;
    let all = app.get("/v1/audit", Auth::Admin).await;
    assert_status!(all, 200);
    assert_eq!(all.body["total"], 5);
    assert_eq!(all.body["has_more"], false);
    let seqs: Vec<i64> = all.body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    let only_a = app
        .get(&format!("/v1/audit?tenant_id={a}"), Auth::Admin)
        .await;
    assert_eq!(only_a.body["total"], 2);
    assert!(only_a.body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["tenant_id"] == a));
    let plans = app.get("/v1/audit?action=plan.create", Auth::Admin).await;
    assert_eq!(plans.body["total"], 1);
    let both = app
        .get(
            &format!("/v1/audit?tenant_id={b}&action=payment.create"),
            Auth::Admin,
        )
        .await;
    assert_eq!(both.body["total"], 2);
    let none = app
        .get(
            &format!("/v1/audit?tenant_id={b}&action=plan.create"),
            Auth::Admin,
        )
        .await;
    assert_eq!(
        (
            none.body["total"].as_i64(),
            none.body["audit"].as_array().unwrap().len()
        ),
        (Some(0), 0)
    );

    // Pages of two, following the last seq seen, cover every row once; total stays the same.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(&format!("/v1/audit?limit=2&after={after}"), Auth::Admin)
            .await;
        assert_status!(page, 200);
        assert_eq!(page.body["total"], 5);
        let items = page.body["audit"].as_array().unwrap();
        seen.extend(items.iter().map(|r| r["seq"].as_i64().unwrap()));
        if page.body["has_more"] == false {
            break;
        }
        assert_eq!(items.len(), 2);
        after = items[1]["seq"].as_i64().unwrap();
    }
    assert_eq!(seen, seqs);
}

#[tokio::test]
async fn bad_audit_query_parameters_are_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("tenant_id=..%2Fetc", "tenant_id"),
        ("action=Payment.Confirm", "action"),
        ("action=payment", "action"),
    ] {
        let r = app.get(&format!("/v1/audit?{query}"), Auth::Admin).await;
        assert_status!(r, 422);
        let named = r.body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == field);
        assert!(named, "{query} should name {field}: {}", r.body);
    }
}

#[tokio::test]
async fn only_super_admins_read_the_log() {
    let app = TestApp::spawn().await;
    let (a, _) = some_history(&app).await;
    assert_status!(app.get("/v1/audit", Auth::None).await, 401);
    assert_status!(
        app.get(
            &format!("/v1/audit?tenant_id={a}"),
            Auth::TenantAdmin(a.clone())
        )
        .await,
        403
    );
    assert_status!(app.get("/v1/audit", Auth::TenantUser(a)).await, 403);
    assert_status!(app.get("/v1/audit", Auth::Service).await, 403);
    assert_status!(app.get("/v1/audit", Auth::Admin).await, 200);
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_or_deleted() {
    let app = TestApp::spawn().await;
    assert_status!(
        app.post("/v1/plans", Auth::Admin, plan_body("Audit Five"))
            .await,
        201
    );
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(&app.pool)
        .await;
    assert!(update.is_err());
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&app.pool)
        .await;
    assert!(delete.is_err());
    assert_eq!(audit_count(&app).await, 1);
}
