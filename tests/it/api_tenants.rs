use crate::common;

use billing_core::repository::subscriptions::SubscriptionRepository;
use chrono::{TimeZone, Utc};
use common::{Auth, Resp, TestApp};
use serde_json::{json, Value};

/// Sign-ups in these tests happen on 2026-03-10 (UTC).
fn set_today(app: &TestApp) {
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 10, 9, 30, 0).unwrap());
}

fn signup(tenant_id: &str, plan_id: &str) -> Value {
    json!({
        "tenant_id": tenant_id, "name": "Green Valley Farm", "name_ar": "مزرعة الوادي الأخضر",
        "email": "owner@greenvalley.example.com", "phone": "+967771234567", "plan_id": plan_id
    })
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap()
}

fn field_names(r: &Resp) -> Vec<String> {
    r.field_names()
}

#[tokio::test]
async fn signing_up_for_starter_starts_a_fourteen_day_trial() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app
        .post("/v1/tenants", Auth::Admin, signup("farm-trial", "starter"))
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["tenant_id"], "farm-trial");
    assert_eq!(r.body["status"], "trial");
    assert_eq!(r.body["trial_ends"], "2026-03-24");
    assert_eq!(r.body["invoice_id"], Value::Null);
    assert_eq!(
        r.body["message_ar"],
        "مرحباً مزرعة الوادي الأخضر! تم إنشاء حسابك بنجاح."
    );
    assert!(r.body["subscription_id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .is_ok());

    let s = app
        .get(
            "/v1/tenants/farm-trial/subscription",
            Auth::TenantUser("farm-trial".into()),
        )
        .await;
    assert_status!(s, 200);
    let sub = &s.body["subscription"];
    assert_eq!(sub["subscription_id"], r.body["subscription_id"]);
    assert_eq!(sub["status"], "trial");
    assert_eq!(sub["billing_cycle"], "monthly");
    assert_eq!(sub["currency"], "USD");
    assert_eq!(sub["start_date"], "2026-03-10");
    assert_eq!(sub["end_date"], "2026-03-24");
    assert_eq!(sub["next_billing_date"], "2026-03-24");
    assert_eq!(sub["trial_end_date"], "2026-03-24");
    assert_eq!(sub["cancel_at_period_end"], false);
    assert_eq!(sub["canceled_at"], Value::Null);
    assert_eq!(s.body["plan"]["plan_id"], "starter");
    assert_eq!(s.body["plan"]["pricing"]["monthly_usd"], "29.00");
    assert_eq!(s.body["days_remaining"], 14);
    assert_eq!(s.body["is_trial"], true);

    let anchor: i16 =
        sqlx::query_scalar("SELECT anchor_day FROM subscriptions WHERE tenant_id = 'farm-trial'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(anchor, 24);
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox_events WHERE tenant_id = 'farm-trial' ORDER BY seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events, ["tenant.created", "subscription.created"]);
    assert_eq!(count(&app, "SELECT count(*) FROM invoices").await, 0);
}

#[tokio::test]
async fn signing_up_for_free_is_active_at_once_without_an_invoice() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app
        .post("/v1/tenants", Auth::Service, signup("farm-free", "free"))
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["trial_ends"], Value::Null);
    assert_eq!(r.body["invoice_id"], Value::Null);
    let s = app
        .get(
            "/v1/tenants/farm-free/subscription",
            Auth::TenantAdmin("farm-free".into()),
        )
        .await;
    assert_status!(s, 200);
    assert_eq!(s.body["subscription"]["start_date"], "2026-03-10");
    assert_eq!(s.body["subscription"]["end_date"], "2026-04-10");
    assert_eq!(s.body["subscription"]["next_billing_date"], "2026-04-10");
    assert_eq!(s.body["subscription"]["trial_end_date"], Value::Null);
    assert_eq!(s.body["days_remaining"], 31);
    assert_eq!(s.body["is_trial"], false);
    assert_eq!(count(&app, "SELECT count(*) FROM invoices").await, 0);
}

async fn create_paid_plan_without_trial(app: &TestApp) {
    let plan = json!({
        "plan_id": "coop_direct", "name": "Coop Direct", "name_ar": "تعاونية مباشرة",
        "description": "Paid from day one", "description_ar": "مدفوعة من اليوم الأول",
        "tier": "starter", "monthly_price_usd": "10.00", "trial_days": 0, "limits": {"fields": 5}
    });
    assert_status!(app.post("/v1/plans", Auth::Admin, plan).await, 201);
}

#[tokio::test]
async fn a_paid_plan_without_trial_is_active_and_invoiced_for_its_first_period() {
    let app = TestApp::spawn().await;
    set_today(&app);
    create_paid_plan_without_trial(&app).await;
    let mut body = signup("farm-paid", "coop_direct");
    body["currency"] = json!("YER");
    let r = app.post("/v1/tenants", Auth::Admin, body).await;
    assert_status!(r, 201);
    assert_eq!(r.body["status"], "active");
    let invoice_id: uuid::Uuid = r.body["invoice_id"]
        .as_str()
        .expect("an invoice")
        .parse()
        .unwrap();
    let (tenant, currency, total, start, end): (String, String, rust_decimal::Decimal, chrono::NaiveDate, chrono::NaiveDate) =
        sqlx::query_as(
            "SELECT tenant_id, currency, total, period_start, period_end FROM invoices WHERE invoice_id = $1",
        )
        .bind(invoice_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((tenant.as_str(), currency.as_str()), ("farm-paid", "YER"));
    assert_eq!(total.to_string(), "2500.00");
    assert_eq!(start.to_string(), "2026-03-10");
    assert_eq!(end.to_string(), "2026-04-10");
}

#[tokio::test]
async fn an_unknown_or_archived_plan_is_rejected_as_unknown_plan() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/v1/tenants", Auth::Admin, signup("farm-x", "platinum"))
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "unknown_plan");
    assert_status!(app.delete("/v1/plans/professional", Auth::Admin).await, 200);
    let r = app
        .post("/v1/tenants", Auth::Admin, signup("farm-x", "professional"))
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "unknown_plan");
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
}

#[tokio::test]
async fn allowed_currencies_are_accepted_in_any_case_and_others_are_rejected() {
    let app = TestApp::spawn().await;
    for (i, cur) in ["YER", "yer", "Sar"].iter().enumerate() {
        let mut body = signup(&format!("farm-cur-{i}"), "starter");
        body["currency"] = json!(cur);
        let r = app.post("/v1/tenants", Auth::Admin, body).await;
        assert_status!(r, 201);
        let s = app
            .get(&format!("/v1/tenants/farm-cur-{i}"), Auth::Admin)
            .await;
        assert_eq!(s.body["subscription"]["currency"], cur.to_ascii_uppercase());
    }
    for cur in ["xyz", "XYZ", "", "US"] {
        let mut body = signup("farm-bad-cur", "starter");
        body["currency"] = json!(cur);
        let r = app.post("/v1/tenants", Auth::Admin, body).await;
        assert_status!(r, 422);
        assert_eq!(field_names(&r), ["currency"], "{cur}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 3);
}

#[tokio::test]
async fn each_bad_field_is_a_422_naming_that_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, Value)> = vec![
        ("phone", json!("abc")),
        ("phone", json!("+12")),
        ("email", json!("not-an-email")),
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", json!("n".repeat(201))),
        ("name_ar", json!("ع".repeat(201))),
        ("tenant_id", json!("bad id/..")),
        ("tenant_id", json!("t".repeat(101))),
        ("billing_cycle", json!("weekly")),
        ("tax_rate", json!("100.5")),
        ("tax_rate", json!(-1)),
        ("tax_rate", json!("1.2345")),
        ("tax_rate", json!(true)),
        ("tax_id", json!("x".repeat(101))),
        ("plan_id", json!("p".repeat(101))),
    ];
    for (field, value) in cases {
        let mut body = signup("farm-bad", "starter");
        body[field] = value.clone();
        let r = app.post("/v1/tenants", Auth::Admin, body).await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "validation_error", "{field}={value}");
        assert_eq!(field_names(&r), [field], "{field}={value}");
        assert!(r.body["message_ar"].is_string() && r.body["request_id"].is_string());
    }
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_events").await, 0);
}

#[tokio::test]
async fn every_bad_field_is_listed_together() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/tenants",
            Auth::Admin,
            json!({"name": "", "email": "nope", "phone": "abc", "currency": "xyz"}),
        )
        .await;
    assert_status!(r, 422);
    let mut fields = field_names(&r);
    fields.sort();
    assert_eq!(
        fields,
        ["currency", "email", "name", "name_ar", "phone", "plan_id"]
    );
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_422_in_the_envelope() {
    let app = TestApp::spawn().await;
    let r = app
        .post_raw("/v1/tenants", Auth::Admin, "{\"name\": ")
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "validation_error");
    assert_eq!(field_names(&r), ["body"]);

    let r = app.post_raw("/v1/tenants", Auth::Admin, "").await;
    assert_status!(r, 422);

    let r = app.post_raw("/v1/tenants", Auth::Admin, "[1, 2]").await;
    assert_status!(r, 422);

    let mut body = signup("farm-types", "starter");
    body["name"] = json!(123);
    let r = app.post("/v1/tenants", Auth::Admin, body).await;
    assert_status!(r, 422);
    assert_eq!(field_names(&r), ["name"]);

    let mut body = signup("farm-types", "starter");
    body["billing_cycle"] = json!(12);
    let r = app.post("/v1/tenants", Auth::Admin, body).await;
    assert_status!(r, 422);
    assert_eq!(field_names(&r), ["billing_cycle"]);
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
}

#[tokio::test]
async fn a_duplicate_tenant_id_is_409_already_exists() {
    let app = TestApp::spawn().await;
    assert_status!(
        app.post("/v1/tenants", Auth::Admin, signup("farm-dup", "starter"))
            .await,
        201
    );
    let r = app
        .post("/v1/tenants", Auth::Service, signup("farm-dup", "free"))
        .await;
    assert_status!(r, 409);
    assert_eq!(r.error_code(), "already_exists");
    assert_eq!(count(&app, "SELECT count(*) FROM subscriptions").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_events").await, 2);
}

#[tokio::test]
async fn only_super_admins_and_services_can_sign_tenants_up() {
    let app = TestApp::spawn().await;
    let body = signup("farm-roles", "starter");
    let r = app
        .post(
            "/v1/tenants",
            Auth::TenantAdmin("farm-roles".into()),
            body.clone(),
        )
        .await;
    assert_status!(r, 403);
    assert_eq!(r.error_code(), "forbidden");
    assert_status!(
        app.post(
            "/v1/tenants",
            Auth::TenantUser("farm-roles".into()),
            body.clone()
        )
        .await,
        403
    );
    // The role is checked before the body, so a forbidden caller learns nothing from a bad body.
    assert_status!(
        app.post_raw("/v1/tenants", Auth::TenantAdmin("farm-roles".into()), "{")
            .await,
        403
    );
    assert_status!(app.post("/v1/tenants", Auth::None, body.clone()).await, 401);
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
    assert_status!(app.post("/v1/tenants", Auth::Service, body).await, 201);
}

#[tokio::test]
async fn a_generated_tenant_id_is_a_uuid_string() {
    let app = TestApp::spawn().await;
    let mut body = signup("ignored", "free");
    body.as_object_mut().unwrap().remove("tenant_id");
    let r = app.post("/v1/tenants", Auth::Admin, body).await;
    assert_status!(r, 201);
    let id = r.body["tenant_id"].as_str().unwrap();
    assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");
    assert_status!(
        app.get(&format!("/v1/tenants/{id}"), Auth::Admin).await,
        200
    );
}

#[tokio::test]
async fn a_tenant_reads_its_own_tenant_and_never_another_one() {
    let app = TestApp::spawn().await;
    let mut body = signup("farm-a", "starter");
    body["tax_id"] = json!("YE-123");
    body["tax_rate"] = json!("7.125");
    assert_status!(app.post("/v1/tenants", Auth::Admin, body).await, 201);
    assert_status!(
        app.post("/v1/tenants", Auth::Admin, signup("farm-b", "free"))
            .await,
        201
    );

    let own = app
        .get("/v1/tenants/farm-a", Auth::TenantUser("farm-a".into()))
        .await;
    assert_status!(own, 200);
    let t = &own.body["tenant"];
    assert_eq!(t["tenant_id"], "farm-a");
    assert_eq!(t["name_ar"], "مزرعة الوادي الأخضر");
    assert_eq!(
        t["contact"],
        json!({"email": "owner@greenvalley.example.com", "phone": "+967771234567"})
    );
    assert_eq!(t["tax_id"], "YE-123");
    assert_eq!(t["tax_rate"], "7.125");
    assert_eq!(t["is_active"], true);
    assert!(t["created_at"].is_string());
    assert_eq!(own.body["subscription"]["plan_id"], "starter");
    let usage = &own.body["usage"];
    assert_eq!(
        usage.as_object().unwrap().len(),
        7,
        "every catalogue metric: {usage}"
    );
    assert_eq!(usage["fields"]["limit"], 10);
    assert_eq!(usage["fields"]["used"], 0);

    let b = app.get("/v1/tenants/farm-b", Auth::Service).await;
    assert_eq!(b.body["tenant"]["tax_rate"], "0.00");
    assert_eq!(b.body["tenant"]["tax_id"], Value::Null);

    for path in [
        "/v1/tenants/farm-b",
        "/v1/tenants/farm-b/subscription",
        "/api/v1/tenants/farm-b",
    ] {
        let other = app.get(path, Auth::TenantAdmin("farm-a".into())).await;
        assert_status!(other, 404);
        let missing = app
            .get(&path.replace("farm-b", "farm-zz"), Auth::Admin)
            .await;
        assert_status!(missing, 404);
        assert_eq!(other.error_code(), missing.error_code());
    }
    assert_status!(app.get("/v1/tenants/farm-a", Auth::None).await, 401);
    let bad = app.get("/v1/tenants/bad%20id", Auth::Admin).await;
    assert_status!(bad, 400);
    assert_eq!(bad.error_code(), "invalid_id");
}

#[tokio::test]
async fn a_canceled_subscription_is_still_answered_with_its_status() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app
        .post("/v1/tenants", Auth::Admin, signup("farm-gone", "starter"))
        .await;
    let sub_id: uuid::Uuid = r.body["subscription_id"].as_str().unwrap().parse().unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    SubscriptionRepository::cancel(&mut conn, "farm-gone", sub_id, true, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let s = app
        .get(
            "/v1/tenants/farm-gone/subscription",
            Auth::TenantUser("farm-gone".into()),
        )
        .await;
    assert_status!(s, 200);
    assert_eq!(s.body["subscription"]["status"], "canceled");
    assert!(s.body["subscription"]["canceled_at"].is_string());
    assert_eq!(s.body["is_trial"], false);

    // Long after the period ended, days_remaining stays at zero.
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap());
    let s = app
        .get("/v1/tenants/farm-gone/subscription", Auth::Admin)
        .await;
    assert_eq!(s.body["days_remaining"], 0);
}

#[tokio::test]
async fn a_tenant_without_any_subscription_has_no_subscription_to_show() {
    let app = TestApp::spawn().await;
    sqlx::query("INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ('bare', 'B', 'ب', 'b@x.example', '12345')")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app
        .get(
            "/v1/tenants/bare/subscription",
            Auth::TenantUser("bare".into()),
        )
        .await;
    assert_status!(r, 404);
    assert_eq!(r.error_code(), "not_found");
    let t = app
        .get("/v1/tenants/bare", Auth::TenantUser("bare".into()))
        .await;
    assert_status!(t, 200);
    assert_eq!(t.body["subscription"], Value::Null);
}

#[tokio::test]
async fn listing_tenants_needs_super_admin_and_pages_with_a_true_total() {
    let app = TestApp::spawn().await;
    for i in 1..=5 {
        assert_status!(
            app.post(
                "/v1/tenants",
                Auth::Admin,
                signup(&format!("farm-{i}"), "free")
            )
            .await,
            201
        );
    }
    assert_status!(app.get("/v1/tenants", Auth::Service).await, 403);
    assert_status!(
        app.get("/v1/tenants", Auth::TenantAdmin("farm-1".into()))
            .await,
        403
    );
    assert_status!(app.get("/v1/tenants", Auth::None).await, 401);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/v1/tenants?limit=2".to_string(),
            Some(c) => format!("/api/v1/tenants?limit=2&starting_after={c}"),
        };
        let r = app.get(&path, Auth::Admin).await;
        assert_status!(r, 200);
        assert_eq!(r.body["total"], 5);
        let items = r.body["tenants"].as_array().unwrap();
        seen.extend(
            items
                .iter()
                .map(|t| t["tenant_id"].as_str().unwrap().to_string()),
        );
        pages += 1;
        if r.body["has_more"] == false {
            break;
        }
        assert_eq!(items.len(), 2);
        cursor = seen.last().cloned();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["farm-5", "farm-4", "farm-3", "farm-2", "farm-1"]);

    let all = app.get("/v1/tenants", Auth::Admin).await;
    assert_eq!(all.body["tenants"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["has_more"], false);
    for bad in ["limit=0", "limit=101", "limit=abc"] {
        let r = app.get(&format!("/v1/tenants?{bad}"), Auth::Admin).await;
        assert_status!(r, 422);
        assert_eq!(field_names(&r), ["limit"]);
    }
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_first_sign_up() {
    let app = TestApp::spawn().await;
    let mut body = signup("ignored", "starter");
    body.as_object_mut().unwrap().remove("tenant_id");
    let first = app
        .post_idem("/v1/tenants", Auth::Service, "signup-1", body.clone())
        .await;
    assert_status!(first, 201);
    let again = app
        .post_idem("/v1/tenants", Auth::Service, "signup-1", body.clone())
        .await;
    assert_status!(again, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 1);

    // The /api/v1 alias shares the key.
    let alias = app
        .post_idem("/api/v1/tenants", Auth::Service, "signup-1", body.clone())
        .await;
    assert_status!(alias, 201);
    assert_eq!(alias.body, first.body);

    let mut other = body.clone();
    other["name"] = json!("Another Farm");
    let reused = app
        .post_idem("/v1/tenants", Auth::Service, "signup-1", other)
        .await;
    assert_status!(reused, 409);
    assert_eq!(reused.error_code(), "idempotency_key_reused");
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM subscriptions").await, 1);
}

#[tokio::test]
async fn concurrent_identical_sign_ups_with_one_key_create_one_tenant() {
    let app = TestApp::spawn().await;
    let mut body = signup("ignored", "starter");
    body.as_object_mut().unwrap().remove("tenant_id");
    let calls = (0..10).map(|i| {
        let path = if i % 2 == 0 {
            "/v1/tenants"
        } else {
            "/api/v1/tenants"
        };
        app.post_idem(path, Auth::Admin, "race-key", body.clone())
    });
    let responses = futures::future::join_all(calls).await;
    for r in &responses {
        assert_status!(r, 201);
        assert_eq!(r.body, responses[0].body);
    }
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM subscriptions").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_events").await, 2);
}

/// Makes every insert into `table` fail, as a broken disk or a bug would.
async fn break_inserts(app: &TestApp, table: &str) {
    sqlx::query("CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE TRIGGER {table}_broken BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION fail_insert()"))
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_subscription_insert_leaves_no_orphan_tenant_and_frees_the_key() {
    let app = TestApp::spawn().await;
    break_inserts(&app, "subscriptions").await;
    let r = app
        .post_idem(
            "/v1/tenants",
            Auth::Admin,
            "k-broken",
            signup("farm-half", "starter"),
        )
        .await;
    assert_status!(r, 500);
    assert_eq!(r.error_code(), "internal_error");
    assert!(
        !r.body.to_string().contains("boom"),
        "internals leaked: {}",
        r.body
    );
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_events").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_keys").await,
        0
    );

    sqlx::query("DROP TRIGGER subscriptions_broken ON subscriptions")
        .execute(&app.pool)
        .await
        .unwrap();
    let retry = app
        .post_idem(
            "/v1/tenants",
            Auth::Admin,
            "k-broken",
            signup("farm-half", "starter"),
        )
        .await;
    assert_status!(retry, 201);
}

#[tokio::test]
async fn a_failing_first_invoice_rolls_the_whole_sign_up_back() {
    let app = TestApp::spawn().await;
    create_paid_plan_without_trial(&app).await;
    break_inserts(&app, "invoices").await;
    let r = app
        .post(
            "/v1/tenants",
            Auth::Admin,
            signup("farm-noinv", "coop_direct"),
        )
        .await;
    assert_status!(r, 500);
    assert_eq!(count(&app, "SELECT count(*) FROM tenants").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM subscriptions").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_events").await, 0);
}
