use crate::common;

use chrono::{TimeZone, Utc};
use common::{Auth, Sub, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

fn set_today(app: &TestApp) {
    app.clock
        .set(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
}

async fn rate_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM exchange_rates")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn rate_events(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT payload FROM outbox_events WHERE event_type = 'exchange_rate.changed' ORDER BY seq",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_seeded_rates_are_listed_with_the_ones_in_force() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app.get("/v1/exchange-rates", Auth::Admin).await;
    assert_status!(r, 200);
    assert_eq!(
        r.body["current"],
        json!({"USD": "1.00", "YER": "250.00", "SAR": "3.75", "AED": "3.6725", "EUR": "0.92"})
    );
    let rates = r.body["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 5);
    let yer = rates.iter().find(|x| x["currency"] == "YER").unwrap();
    assert_eq!(
        *yer,
        json!({"currency": "YER", "rate": "250.00", "effective_date": "2000-01-01", "source": "seed"})
    );
}

#[tokio::test]
async fn a_new_rate_is_created_then_replaced_for_the_same_day() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "YER", "rate": "260"}),
        )
        .await;
    assert_status!(r, 201);
    assert_eq!(r.body["success"], true);
    assert_eq!(r.body["replaced"], false);
    assert_eq!(
        r.body["rate"],
        json!({"currency": "YER", "rate": "260.00", "effective_date": "2026-03-01", "source": "api"})
    );

    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "yer", "rate": 265.125, "effective_date": "2026-03-01"}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["replaced"], true);
    assert_eq!(r.body["rate"]["rate"], "265.125");
    assert_eq!(rate_rows(&app).await, 6);

    // A future rate is stored but not yet in force.
    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "EUR", "rate": "0.912345", "effective_date": "2026-04-01"}),
        )
        .await;
    assert_status!(r, 201);
    let list = app.get("/api/v1/exchange-rates", Auth::Admin).await;
    assert_status!(list, 200);
    assert_eq!(list.body["current"]["YER"], "265.125");
    assert_eq!(list.body["current"]["EUR"], "0.92");
    let yer: Vec<&Value> = list.body["rates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["currency"] == "YER")
        .collect();
    assert_eq!(yer[0]["effective_date"], "2026-03-01");
    assert_eq!(yer[1]["effective_date"], "2000-01-01");

    let events = rate_events(&app).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["previous_rate"], "250.00");
    assert_eq!(events[1]["previous_rate"], "260.00");
    assert_eq!(events[1]["rate"], "265.125");
    assert_eq!(events[1]["replaced"], true);
    assert_eq!(events[2]["currency"], "EUR");
}

#[tokio::test]
async fn bad_rate_changes_are_422_naming_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let cases = [
        (json!({"currency": "USD", "rate": "2"}), "currency"),
        (json!({"currency": "JPY", "rate": "150"}), "currency"),
        (json!({"currency": 5, "rate": "150"}), "currency"),
        (json!({"rate": "150"}), "currency"),
        (json!({"currency": "YER"}), "rate"),
        (json!({"currency": "YER", "rate": "0"}), "rate"),
        (json!({"currency": "YER", "rate": -3}), "rate"),
        (json!({"currency": "YER", "rate": "1.1234567"}), "rate"),
        (json!({"currency": "YER", "rate": "abc"}), "rate"),
        (json!({"currency": "YER", "rate": "1234567890123"}), "rate"),
        (
            json!({"currency": "YER", "rate": "260", "effective_date": "2026-3-1"}),
            "effective_date",
        ),
        (
            json!({"currency": "YER", "rate": "260", "effective_date": "2026-02-30"}),
            "effective_date",
        ),
        (
            json!({"currency": "YER", "rate": "260", "effective_date": 20260301}),
            "effective_date",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .post("/v1/exchange-rates", Auth::Admin, body.clone())
            .await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "validation_error", "{body}");
        assert_eq!(r.body["fields"][0]["field"], field, "{body}");
    }
    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "YER", "rate": "1", "extra": 1}),
        )
        .await;
    assert_status!(r, 422);
    let r = app
        .post_raw("/v1/exchange-rates", Auth::Admin, "{not json")
        .await;
    assert_status!(r, 422);
    assert_eq!(rate_rows(&app).await, 5);
    assert!(rate_events(&app).await.is_empty());
}

#[tokio::test]
async fn exchange_rates_are_for_super_admins_only() {
    let app = TestApp::spawn().await;
    let body = json!({"currency": "YER", "rate": "260"});
    assert_status!(app.get("/v1/exchange-rates", Auth::None).await, 401);
    assert_status!(
        app.get("/v1/exchange-rates", Auth::TenantAdmin("farm-1".into()))
            .await,
        403
    );
    assert_status!(app.get("/v1/exchange-rates", Auth::Service).await, 403);
    assert_status!(
        app.post("/v1/exchange-rates", Auth::None, body.clone())
            .await,
        401
    );
    assert_status!(
        app.post(
            "/v1/exchange-rates",
            Auth::TenantAdmin("farm-1".into()),
            body.clone()
        )
        .await,
        403
    );
    // The role is checked before the body, so a bad body still answers 403.
    let r = app
        .post_raw("/v1/exchange-rates", Auth::TenantUser("farm-1".into()), "{")
        .await;
    assert_status!(r, 403);
    assert_eq!(rate_rows(&app).await, 5);
}

#[tokio::test]
async fn concurrent_changes_for_one_day_leave_one_row_and_report_one_creation() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let reqs = (0..6).map(|i| {
        app.post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "SAR", "rate": format!("3.7{i}")}),
        )
    });
    let results = join_all(reqs).await;
    let created = results.iter().filter(|r| r.status.as_u16() == 201).count();
    let replaced = results.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!((created, replaced), (1, 5));
    assert_eq!(rate_rows(&app).await, 6);
    assert_eq!(rate_events(&app).await.len(), 6);
}

async fn generate(app: &TestApp, tenant: &str) -> common::Resp {
    app.post(
        &format!("/v1/tenants/{tenant}/invoices/generate"),
        Auth::TenantAdmin(tenant.into()),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn a_new_rate_applies_to_invoices_issued_after_it_and_not_to_earlier_ones() {
    let app = TestApp::spawn().await;
    set_today(&app);
    let march = || Sub {
        currency: "YER",
        start: "2026-03-01",
        end: "2026-04-01",
        anchor: 1,
        ..Default::default()
    };
    let early = common::tenant_with(&app.pool, march()).await;
    let late = common::tenant_with(&app.pool, march()).await;

    let first = generate(&app, &early).await;
    assert_status!(first, 201);
    assert_eq!(first.body["invoice"]["exchange_rate"], "250.00");
    assert_eq!(first.body["invoice"]["total"], "7250.00");

    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            json!({"currency": "YER", "rate": "260"}),
        )
        .await;
    assert_status!(r, 201);

    let second = generate(&app, &late).await;
    assert_status!(second, 201);
    assert_eq!(second.body["invoice"]["exchange_rate"], "260.00");
    assert_eq!(second.body["invoice"]["total"], "7540.00");

    let id = first.body["invoice"]["invoice_id"].as_str().unwrap();
    let again = app
        .get(
            &format!("/v1/invoices/{id}"),
            Auth::TenantAdmin(early.clone()),
        )
        .await;
    assert_status!(again, 200);
    assert_eq!(again.body["invoice"]["exchange_rate"], "250.00");
    assert_eq!(again.body["invoice"]["total"], "7250.00");
}

#[tokio::test]
async fn yer_exchange_rate_from_the_environment_replaces_the_seed_but_never_an_api_rate() {
    let app = TestApp::spawn().await;
    let today = chrono::Utc::now().date_naive();
    let in_force = |pool: sqlx::PgPool| async move {
        let r: (rust_decimal::Decimal, String) = sqlx::query_as(
            "SELECT rate, source FROM exchange_rates WHERE currency = 'YER' ORDER BY effective_date DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (r.0.normalize().to_string(), r.1)
    };
    let mut config = app.config.clone();
    config.yer_exchange_rate = Some("530".parse().unwrap());
    billing_core::db::sync_configured_rates(&app.pool, &config, today)
        .await
        .unwrap();
    assert_eq!(
        in_force(app.pool.clone()).await,
        ("530".to_string(), "env:YER_EXCHANGE_RATE".to_string())
    );

    let r = app
        .post(
            "/v1/exchange-rates",
            Auth::Admin,
            serde_json::json!({"currency": "YER", "rate": "535"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    billing_core::db::sync_configured_rates(&app.pool, &config, today)
        .await
        .unwrap();
    assert_eq!(
        in_force(app.pool.clone()).await.0,
        "535",
        "a restart keeps the API's rate"
    );
}
