use crate::common;

use billing_core::auth::{issue_token, Role};
use chrono::{TimeZone, Utc};
use common::{Auth, Resp, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

/// A tenant with a live monthly subscription for March 2026 (straight SQL: sign-up belongs to
/// another module) and its invoice issued through the generate endpoint. Returns the invoice.
async fn tenant_with_invoice(app: &TestApp, tenant: &str, plan: &str) -> Value {
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
             anchor_day, start_date, end_date, next_billing_date)
         VALUES ($1, $2, $3, 'active', 'monthly', 'USD', 1, DATE '2026-03-01', DATE '2026-04-01', DATE '2026-04-01')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(tenant)
    .bind(plan)
    .execute(&app.pool)
    .await
    .unwrap();
    let r = app
        .post(
            &format!("/v1/tenants/{tenant}/invoices/generate"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(r, 201);
    r.body["invoice"].clone()
}

fn id(v: &Value) -> String {
    v["invoice_id"].as_str().unwrap().to_string()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

async fn invoice(app: &TestApp, invoice_id: &str) -> Value {
    app.get(&format!("/v1/invoices/{invoice_id}"), Auth::Admin)
        .await
        .body["invoice"]
        .clone()
}

fn admin_named(app: &TestApp, subject: &str) -> Auth {
    Auth::Bearer(
        issue_token(
            &app.config.jwt_secret,
            subject,
            Role::SuperAdmin,
            None,
            3600,
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn ten_concurrent_posts_with_one_key_record_one_payment() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-idem", "starter").await;
    let body = json!({"invoice_id": id(&inv), "amount": "29.00", "method": "cash"});
    let results: Vec<Resp> = join_all(
        (0..10).map(|_| app.post_idem("/v1/payments", Auth::Admin, "pay-key-1", body.clone())),
    )
    .await;
    for r in &results {
        assert_status!(r, 201);
        assert_eq!(r.body, results[0].body);
    }
    assert_eq!(results[0].body["payment"]["status"], "succeeded");
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
    assert_eq!(invoice(&app, &id(&inv)).await["amount_paid"], "29.00");
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_409() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-reuse", "starter").await;
    let a = app
        .post_idem(
            "/v1/payments",
            Auth::Admin,
            "k-1",
            json!({"invoice_id": id(&inv), "amount": "5", "method": "cash"}),
        )
        .await;
    assert_status!(a, 201);
    let b = app
        .post_idem(
            "/v1/payments",
            Auth::Admin,
            "k-1",
            json!({"invoice_id": id(&inv), "amount": "6", "method": "cash"}),
        )
        .await;
    assert_status!(b, 409);
    assert_eq!(b.error_code(), "idempotency_key_reused");
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn an_idempotency_key_in_the_body_works_like_the_header() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-bodykey", "starter").await;
    let auth = || Auth::TenantAdmin("farm-bodykey".into());
    let with_key = json!({"invoice_id": id(&inv), "amount": "10", "method": "bank_transfer", "idempotency_key": "bk-1"});
    let a = app.post("/v1/payments", auth(), with_key.clone()).await;
    assert_status!(a, 201);
    let b = app.post("/api/v1/payments", auth(), with_key).await;
    assert_status!(b, 201);
    assert_eq!(a.body, b.body);
    assert_eq!(b.headers["idempotent-replayed"], "true");
    // The same key as a header with the same request (minus the key member) is the same request.
    let c = app
        .post_idem(
            "/v1/payments",
            auth(),
            "bk-1",
            json!({"invoice_id": id(&inv), "amount": "10", "method": "bank_transfer"}),
        )
        .await;
    assert_eq!(c.body, a.body);
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn two_admins_paying_the_full_amount_at_once_settle_it_once() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-race", "starter").await;
    let body = json!({"invoice_id": id(&inv), "amount": "29.00", "method": "cash"});
    let (a, b) = tokio::join!(
        app.post("/v1/payments", admin_named(&app, "cashier-1"), body.clone()),
        app.post("/v1/payments", admin_named(&app, "cashier-2"), body.clone()),
    );
    let ok = [&a, &b].iter().filter(|r| r.status.as_u16() == 201).count();
    assert_eq!(ok, 1, "{} / {}", a.body, b.body);
    let loser = if a.status.as_u16() == 201 { &b } else { &a };
    assert!(
        matches!(
            (loser.status.as_u16(), loser.error_code()),
            (422, "amount_exceeds_due") | (409, "invoice_not_payable")
        ),
        "{}",
        loser.body
    );
    let inv = invoice(&app, &id(&inv)).await;
    assert_eq!(inv["amount_paid"], "29.00");
    assert_eq!(inv["status"], "paid");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM payments WHERE status = 'succeeded'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn paying_more_than_amount_due_is_rejected_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-over", "starter").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "29.01", "method": "cash"}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "amount_exceeds_due");
    assert_eq!(r.body["amount_due"], "29.00");
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type LIKE 'payment.%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn bad_payment_input_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-bad", "starter").await;
    for amount in [
        json!("0"),
        json!("-1"),
        json!("1.001"),
        json!("abc"),
        json!(0),
        json!(null),
        json!("1e3"),
    ] {
        let r = app
            .post(
                "/v1/payments",
                Auth::Admin,
                json!({"invoice_id": id(&inv), "amount": amount, "method": "cash"}),
            )
            .await;
        assert_status!(r, 422);
        assert_eq!(
            r.body["fields"][0]["field"], "amount",
            "{amount}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": "nope", "amount": "1", "method": "cash"}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "invoice_id");
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "1", "method": "gold"}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "method");
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "1", "method": "cash", "tip": 1}),
        )
        .await;
    assert_status!(r, 422);
    let r = app
        .post("/v1/payments", Auth::Admin, json!({"invoice_id": id(&inv), "amount": "1", "method": "mobile_money", "phone_number": "12"}))
        .await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "phone_number");
    assert_status!(
        app.post_raw("/v1/payments", Auth::Admin, "{\"invoice_id\": ")
            .await,
        422
    );
    let missing = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": uuid::Uuid::new_v4(), "amount": "1", "method": "cash"}),
        )
        .await;
    assert_status!(missing, 404);
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn card_and_tharwatt_payments_without_a_configured_gateway_are_unavailable() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-card", "starter").await;
    let bodies = [
        json!({"invoice_id": id(&inv), "amount": "29", "method": "credit_card", "stripe_token": "pm_card_visa"}),
        json!({"invoice_id": id(&inv), "amount": "29", "method": "tharwatt", "phone_number": "+967771234567"}),
    ];
    for body in bodies {
        let r = app.post("/v1/payments", Auth::Admin, body).await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "payment_method_unavailable");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_card_payment_needs_a_token_and_tharwatt_a_phone_number() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-card-fields", "starter").await;
    for (method, field) in [
        ("credit_card", "stripe_token"),
        ("tharwatt", "phone_number"),
    ] {
        let r = app
            .post(
                "/v1/payments",
                Auth::Admin,
                json!({"invoice_id": id(&inv), "amount": "29", "method": method}),
            )
            .await;
        assert_status!(r, 422);
        assert_eq!(r.body["fields"][0]["field"], field);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM payments").await, 0);
}

#[tokio::test]
async fn a_paid_invoice_is_not_payable() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-free", "free").await;
    assert_eq!(inv["status"], "paid");
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "1", "method": "cash"}),
        )
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "invoice_not_payable");

    let voided = tenant_with_invoice(&app, "farm-void", "starter").await;
    assert_status!(
        app.post(
            &format!("/v1/invoices/{}/void", id(&voided)),
            Auth::Admin,
            json!({})
        )
        .await,
        200
    );
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&voided), "amount": "1", "method": "cash"}),
        )
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "invoice_not_payable");
}

#[tokio::test]
async fn a_tenant_admin_payment_waits_for_confirmation_then_pays_the_invoice() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-conf", "starter").await;
    let r = app
        .post("/v1/payments", Auth::TenantAdmin("farm-conf".into()),
              json!({"invoice_id": id(&inv), "amount": 29, "method": "cash", "reference": "receipt 17"}))
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["payment"]["status"], "pending");
    assert_eq!(r.body["payment"]["amount"], "29.00");
    assert_eq!(r.body["payment"]["currency"], "USD");
    assert_eq!(r.body["invoice_status"], "pending");
    assert_eq!(r.body["amount_due"], "29.00");
    assert!(r.body["message_ar"].is_string());
    let pid = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();

    let confirm = format!("/v1/payments/{pid}/confirm");
    assert_status!(
        app.post(&confirm, Auth::TenantAdmin("farm-conf".into()), json!({}))
            .await,
        403
    );
    let c = app
        .send(app.client.post(app.url(&confirm)), &Auth::Admin)
        .await;
    assert_status!(c, 200);
    assert_eq!(c.body["payment"]["status"], "succeeded");
    assert!(c.body["payment"]["paid_at"].is_string());
    assert_eq!(c.body["invoice_status"], "paid");
    assert_eq!(c.body["amount_due"], "0.00");
    let inv = invoice(&app, &id(&inv)).await;
    assert_eq!(inv["status"], "paid");
    assert_eq!(inv["paid_date"], "2026-03-05");
    assert_eq!(inv["amount_paid"], "29.00");

    let twice = app.post(&confirm, Auth::Admin, json!({})).await;
    assert_status!(twice, 409);
    assert_eq!(twice.error_code(), "invalid_payment_state");
    for event in ["payment.created", "payment.succeeded", "invoice.paid"] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = $1")
            .bind(event)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(n, 1, "{event}");
    }
}

#[tokio::test]
async fn rejecting_a_payment_marks_it_failed_and_leaves_the_invoice_alone() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-rej", "starter").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "29", "method": "bank_transfer"}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["payment"]["status"], "pending");
    let pid = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let rej = app
        .post(
            &format!("/v1/payments/{pid}/reject"),
            Auth::Admin,
            json!({"reason": "No transfer arrived"}),
        )
        .await;
    assert_status!(rej, 200);
    assert_eq!(rej.body["payment"]["status"], "failed");
    assert_eq!(rej.body["payment"]["failure_reason"], "No transfer arrived");
    assert_eq!(rej.body["amount_due"], "29.00");
    let again = app
        .post(
            &format!("/v1/payments/{pid}/confirm"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(again, 409);
    assert_eq!(again.error_code(), "invalid_payment_state");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'payment.failed'"
        )
        .await,
        1
    );
    assert_eq!(invoice(&app, &id(&inv)).await["status"], "pending");
    assert_status!(
        app.post("/v1/payments/nope/reject", Auth::Admin, json!({}))
            .await,
        400
    );
    assert_status!(
        app.post(
            &format!("/v1/payments/{}/reject", uuid::Uuid::new_v4()),
            Auth::Admin,
            json!({})
        )
        .await,
        404
    );
}

#[tokio::test]
async fn confirming_after_the_invoice_was_paid_otherwise_is_409() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-late", "starter").await;
    let pending = app
        .post(
            "/v1/payments",
            Auth::TenantAdmin("farm-late".into()),
            json!({"invoice_id": id(&inv), "amount": "29", "method": "cash"}),
        )
        .await;
    let pid = pending.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cash = app
        .post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": "29", "method": "cash"}),
        )
        .await;
    assert_status!(cash, 201);
    let r = app
        .post(
            &format!("/v1/payments/{pid}/confirm"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "amount_exceeds_due");
    assert_eq!(invoice(&app, &id(&inv)).await["amount_paid"], "29.00");
}

#[tokio::test]
async fn a_tenant_user_cannot_pay() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-user", "starter").await;
    let body = json!({"invoice_id": id(&inv), "amount": "29", "method": "cash"});
    assert_status!(
        app.post(
            "/v1/payments",
            Auth::TenantUser("farm-user".into()),
            body.clone()
        )
        .await,
        403
    );
    assert_status!(
        app.post("/v1/payments", Auth::Service, body.clone()).await,
        403
    );
    assert_status!(app.post("/v1/payments", Auth::None, body).await, 401);
}

#[tokio::test]
async fn partial_payments_add_up_to_paid() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-part", "starter").await;
    let pay = |amount: &'static str| {
        app.post(
            "/v1/payments",
            Auth::Admin,
            json!({"invoice_id": id(&inv), "amount": amount, "method": "cash"}),
        )
    };
    let a = pay("10.50").await;
    assert_status!(a, 201);
    assert_eq!(a.body["invoice_status"], "pending");
    assert_eq!(a.body["amount_due"], "18.50");
    let b = pay("18.49").await;
    assert_eq!(b.body["amount_due"], "0.01");
    let c = pay("0.01").await;
    assert_status!(c, 201);
    assert_eq!(c.body["invoice_status"], "paid");
    assert_eq!(c.body["amount_due"], "0.00");
    let inv = invoice(&app, &id(&inv)).await;
    assert_eq!(inv["amount_paid"], "29.00");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'invoice.paid'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn tenants_cannot_see_or_pay_each_others_payments() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-x", "starter").await;
    tenant_with_invoice(&app, "farm-y", "starter").await;
    let r = app
        .post(
            "/v1/payments",
            Auth::TenantAdmin("farm-x".into()),
            json!({"invoice_id": id(&inv), "amount": "5", "method": "cash"}),
        )
        .await;
    let pid = r.body["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = || Auth::TenantAdmin("farm-y".into());

    assert_status!(app.get(&format!("/v1/payments/{pid}"), other()).await, 404);
    assert_status!(app.get("/v1/tenants/farm-x/payments", other()).await, 404);
    let pay = app
        .post(
            "/v1/payments",
            other(),
            json!({"invoice_id": id(&inv), "amount": "5", "method": "cash"}),
        )
        .await;
    assert_status!(pay, 404);
    let own = app
        .get(
            &format!("/v1/payments/{pid}"),
            Auth::TenantUser("farm-x".into()),
        )
        .await;
    assert_status!(own, 200);
    assert_eq!(own.body["payment"]["payment_id"], pid.as_str());
    assert_eq!(own.body["payment"]["refunded_amount"], "0.00");
    assert_status!(app.get("/v1/payments/not-a-uuid", Auth::Admin).await, 400);
}

#[tokio::test]
async fn the_payment_list_filters_paginates_and_counts() {
    let app = TestApp::spawn().await;
    let inv = tenant_with_invoice(&app, "farm-pl", "starter").await;
    let mut ids = Vec::new();
    for (amount, method) in [("1", "cash"), ("2", "bank_transfer"), ("3", "mobile_money")] {
        let r = app
            .post(
                "/v1/payments",
                Auth::Admin,
                json!({"invoice_id": id(&inv), "amount": amount, "method": method}),
            )
            .await;
        assert_status!(r, 201);
        ids.push(
            r.body["payment"]["payment_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let auth = || Auth::TenantUser("farm-pl".into());
    let all = app
        .get("/v1/tenants/farm-pl/payments?limit=2", auth())
        .await;
    assert_status!(all, 200);
    assert_eq!(all.body["total"], 3);
    assert_eq!(all.body["has_more"], true);
    assert_eq!(all.body["payments"][0]["payment_id"], ids[2].as_str());
    let next = app
        .get(
            &format!(
                "/v1/tenants/farm-pl/payments?limit=2&starting_after={}",
                ids[1]
            ),
            auth(),
        )
        .await;
    assert_eq!(next.body["payments"][0]["payment_id"], ids[0].as_str());
    assert_eq!(next.body["has_more"], false);
    let pending = app
        .get("/v1/tenants/farm-pl/payments?status=pending", auth())
        .await;
    assert_eq!(pending.body["total"], 2);
    let succeeded = app
        .get("/v1/tenants/farm-pl/payments?status=succeeded", auth())
        .await;
    assert_eq!(succeeded.body["total"], 1);
    assert_eq!(succeeded.body["payments"][0]["amount"], "1.00");
    assert_status!(
        app.get("/v1/tenants/farm-pl/payments?status=done", auth())
            .await,
        422
    );
}

#[tokio::test]
async fn a_card_payment_stuck_processing_can_be_rejected_only_once_it_is_stale() {
    let app = TestApp::spawn().await;
    let now = chrono::Utc::now();
    let start = now.date_naive() - chrono::Days::new(3);
    let end = start + chrono::Days::new(30);
    let (s, e) = (start.to_string(), end.to_string());
    let t = common::tenant_with(
        &app.pool,
        common::Sub {
            start: &s,
            end: &e,
            anchor: 1,
            ..Default::default()
        },
    )
    .await;
    let inv = app
        .post(
            &format!("/v1/tenants/{t}/invoices/generate"),
            Auth::Admin,
            json!({}),
        )
        .await;
    assert_status!(inv, 201);
    let payment_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO payments (payment_id, tenant_id, invoice_id, amount, currency, method, status)
         VALUES ($1, $2, $3, 29.00, 'USD', 'credit_card', 'processing')",
    )
    .bind(payment_id)
    .bind(&t)
    .bind(uuid::Uuid::parse_str(inv.body["invoice"]["invoice_id"].as_str().unwrap()).unwrap())
    .execute(&app.pool)
    .await
    .unwrap();
    let reject = format!("/v1/payments/{payment_id}/reject");
    app.clock.set(now);
    let r = app
        .post(&reject, Auth::Admin, json!({"reason": "stuck"}))
        .await;
    assert_status!(r, 409);
    assert_status!(
        app.post(
            &format!("/v1/payments/{payment_id}/confirm"),
            Auth::Admin,
            json!({})
        )
        .await,
        409
    );
    app.clock.set(now + chrono::Duration::minutes(11));
    let r = app
        .post(&reject, Auth::Admin, json!({"reason": "stuck"}))
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["payment"]["status"], "failed");
}
