//! Plan changes with proration, billing-cycle changes, cancel and resume.
use crate::common;

use billing_core::jobs::run_daily;
use chrono::NaiveTime;
use common::{d, tenant_with, Auth, Sub, TestApp};
use serde_json::json;

fn at(app: &TestApp, date: &str) {
    app.clock.set(
        d(date)
            .and_time(NaiveTime::from_hms_opt(10, 0, 0).unwrap())
            .and_utc(),
    );
}

async fn bill(app: &TestApp, date: &str) {
    let when = d(date)
        .and_time(NaiveTime::from_hms_opt(3, 0, 0).unwrap())
        .and_utc();
    run_daily(&app.pool, &app.config, when, |_| {})
        .await
        .unwrap();
}

async fn totals(app: &TestApp, tenant: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind::text, total::text FROM invoices WHERE tenant_id = $1 ORDER BY created_at",
    )
    .bind(tenant)
    .fetch_all(&app.pool)
    .await
    .unwrap()
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

#[tokio::test]
async fn an_upgrade_mid_period_invoices_the_prorated_difference_now() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    at(&app, "2025-04-16");
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            Auth::TenantAdmin(t.clone()),
            json!({"plan_id": "professional"}),
        )
        .await;
    assert_status!(r, 200);
    let p = &r.body["proration"];
    assert_eq!(
        (
            p["credit"].as_str(),
            p["charge"].as_str(),
            p["net"].as_str()
        ),
        (Some("14.50"), Some("49.50"), Some("35.00"))
    );
    assert_eq!(r.body["subscription"]["plan_id"], "professional");
    let inv = app
        .get(
            &format!("/v1/invoices/{}", p["invoice_id"].as_str().unwrap()),
            Auth::TenantAdmin(t.clone()),
        )
        .await;
    if inv.status == 200 {
        assert_eq!(inv.body["invoice"]["total"], "35.00");
        assert_eq!(
            inv.body["invoice"]["line_items"].as_array().unwrap().len(),
            2
        );
    }
    assert_eq!(
        totals(&app, &t).await,
        [("proration".to_string(), "35.00".to_string())]
    );
}

#[tokio::test]
async fn a_downgrade_becomes_credit_used_by_the_next_invoices() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            plan: "professional",
            ..APRIL
        },
    )
    .await;
    at(&app, "2025-04-16");
    let r = app
        .patch(
            &format!("/api/v1/tenants/{t}/subscription"),
            Auth::Admin,
            json!({"plan_id": "starter"}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["proration"]["net"], "-35.00");
    assert_eq!(r.body["proration"]["invoice_id"], serde_json::Value::Null);
    assert!(totals(&app, &t).await.is_empty());
    bill(&app, "2025-05-01").await;
    bill(&app, "2025-06-01").await;
    let got: Vec<String> = totals(&app, &t)
        .await
        .into_iter()
        .map(|(_, total)| total)
        .collect();
    assert_eq!(
        got,
        ["0.00", "23.00"],
        "29 − 29 credit, then 29 − the 6 left"
    );
}

#[tokio::test]
async fn a_plan_change_during_a_trial_just_switches() {
    let app = TestApp::spawn().await;
    let t = tenant_with(
        &app.pool,
        Sub {
            status: "trial",
            start: "2025-04-01",
            end: "2025-04-15",
            anchor: 15,
            ..APRIL
        },
    )
    .await;
    at(&app, "2025-04-05");
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            Auth::TenantAdmin(t.clone()),
            json!({"plan_id": "enterprise"}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["proration"], serde_json::Value::Null);
    assert_eq!(r.body["subscription"]["status"], "trial");
    assert!(totals(&app, &t).await.is_empty());
}

#[tokio::test]
async fn a_billing_cycle_change_takes_effect_at_the_next_renewal() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    at(&app, "2025-04-10");
    let r = app
        .patch(
            &format!("/v1/tenants/{t}/subscription"),
            Auth::TenantAdmin(t.clone()),
            json!({"billing_cycle": "yearly"}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["subscription"]["billing_cycle"], "monthly");
    assert_eq!(r.body["subscription"]["pending_billing_cycle"], "yearly");
    bill(&app, "2025-05-01").await;
    assert_eq!(totals(&app, &t).await[0].1, "290.00");
    let end: chrono::NaiveDate =
        sqlx::query_scalar("SELECT end_date FROM subscriptions WHERE tenant_id = $1")
            .bind(&t)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(end, d("2026-05-01"));
}

#[tokio::test]
async fn cancel_at_period_end_can_be_resumed_and_immediate_cancel_ends_now() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    at(&app, "2025-04-10");
    let me = Auth::TenantAdmin(t.clone());
    let r = app
        .post(&format!("/v1/tenants/{t}/cancel"), me.clone(), json!({}))
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["subscription"]["cancel_at_period_end"], true);
    assert_eq!(r.body["subscription"]["status"], "active");
    let r = app
        .post(
            &format!("/v1/tenants/{t}/subscription/resume"),
            me.clone(),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["subscription"]["cancel_at_period_end"], false);
    let again = app
        .post(
            &format!("/v1/tenants/{t}/subscription/resume"),
            me.clone(),
            json!({}),
        )
        .await;
    assert_status!(again, 409);
    assert_eq!(again.error_code(), "not_pending_cancellation");

    let r = app
        .post(
            &format!("/v1/tenants/{t}/cancel?immediate=true"),
            me.clone(),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["subscription"]["status"], "canceled");
    let s = app
        .get(&format!("/v1/tenants/{t}/subscription"), me.clone())
        .await;
    assert_status!(s, 200);
    assert_eq!(s.body["subscription"]["status"], "canceled");
    assert_status!(
        app.post(&format!("/v1/tenants/{t}/cancel"), me, json!({}))
            .await,
        404
    );
}

#[tokio::test]
async fn changes_are_refused_to_the_wrong_people_and_for_bad_input() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app.pool, APRIL).await;
    let other = tenant_with(&app.pool, APRIL).await;
    at(&app, "2025-04-10");
    let path = format!("/v1/tenants/{t}/subscription");
    assert_status!(
        app.patch(
            &path,
            Auth::TenantUser(t.clone()),
            json!({"plan_id": "professional"})
        )
        .await,
        403
    );
    assert_status!(
        app.patch(
            &path,
            Auth::TenantAdmin(other.clone()),
            json!({"plan_id": "professional"})
        )
        .await,
        404
    );
    assert_status!(
        app.patch(&path, Auth::None, json!({"plan_id": "professional"}))
            .await,
        401
    );
    let r = app
        .patch(
            &path,
            Auth::TenantAdmin(t.clone()),
            json!({"plan_id": "platinum"}),
        )
        .await;
    assert_status!(r, 422);
    assert_eq!(r.error_code(), "unknown_plan");
    assert_status!(
        app.patch(&path, Auth::TenantAdmin(t.clone()), json!({}))
            .await,
        422
    );
    assert_status!(
        app.patch(
            &path,
            Auth::TenantAdmin(t.clone()),
            json!({"billing_cycle": "weekly"})
        )
        .await,
        422
    );
    assert_status!(
        app.post(
            &format!("/v1/tenants/{t}/cancel?immediate=maybe"),
            Auth::TenantAdmin(t.clone()),
            json!({})
        )
        .await,
        422
    );
    sqlx::query("UPDATE subscriptions SET status = 'suspended' WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    let r = app
        .patch(
            &path,
            Auth::TenantAdmin(t.clone()),
            json!({"plan_id": "professional"}),
        )
        .await;
    assert_status!(r, 409);
    let plan: String = sqlx::query_scalar("SELECT plan_id FROM subscriptions WHERE tenant_id = $1")
        .bind(&t)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(plan, "starter");
}

/// POST `path` as the tenant's admin; asserts 200 and returns the body.
async fn cancel_via(app: &TestApp, t: &str, path: &str) -> serde_json::Value {
    let r = app
        .post(
            &format!("/v1/tenants/{t}/{path}"),
            Auth::TenantAdmin(t.to_string()),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    r.body
}

#[tokio::test]
async fn immediate_cancellation_ends_the_period_today_with_the_python_fields() {
    let app = TestApp::spawn().await;
    at(&app, "2025-04-10");
    for path in [
        "cancel?immediate=true",
        "subscription/cancel?immediate=true",
    ] {
        let t = tenant_with(&app.pool, APRIL).await;
        let b = cancel_via(&app, &t, path).await;
        assert_eq!(b["success"], true, "{path}: {b}");
        assert_eq!(b["status"], "canceled", "{path}");
        assert_eq!(
            b["end_date"], "2025-04-10",
            "{path}: today, not the period end"
        );
        assert_eq!(b["message_ar"], "تم إلغاء اشتراكك فوراً.", "{path}");
        assert_eq!(b["subscription"]["status"], "canceled", "{path}");
        assert_eq!(b["subscription"]["end_date"], "2025-04-10", "{path}");
        let s = app
            .get(
                &format!("/v1/tenants/{t}/subscription"),
                Auth::TenantAdmin(t.clone()),
            )
            .await;
        assert_eq!(s.body["subscription"]["end_date"], "2025-04-10", "{path}");
        assert_eq!(s.body["days_remaining"], 0, "{path}");
    }
    // Canceled on its first day: the period is empty, not an error.
    let fresh = tenant_with(
        &app.pool,
        Sub {
            start: "2025-04-10",
            end: "2025-05-10",
            anchor: 10,
            ..APRIL
        },
    )
    .await;
    let b = cancel_via(&app, &fresh, "cancel?immediate=true").await;
    assert_eq!(
        (b["status"].as_str(), b["end_date"].as_str()),
        (Some("canceled"), Some("2025-04-10"))
    );
    // Nothing is billed for a canceled subscription afterwards.
    bill(&app, "2025-05-01").await;
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(invoices, 0);
}

#[tokio::test]
async fn cancellation_at_period_end_answers_with_the_python_fields_and_the_period_end() {
    let app = TestApp::spawn().await;
    at(&app, "2025-04-10");
    for path in ["cancel", "subscription/cancel", "cancel?immediate=false"] {
        let t = tenant_with(&app.pool, APRIL).await;
        let b = cancel_via(&app, &t, path).await;
        assert_eq!(b["success"], true, "{path}: {b}");
        assert_eq!(b["status"], "active", "{path}");
        assert_eq!(b["end_date"], "2025-05-01", "{path}");
        assert!(
            b["message_ar"]
                .as_str()
                .unwrap()
                .starts_with("تم إلغاء اشتراكك. سيظل حسابك نشطاً حتى نهاية الفترة المدفوعة"),
            "{path}: {b}"
        );
        assert!(
            b["message"]
                .as_str()
                .unwrap()
                .contains("through 2025-04-30"),
            "{b}"
        );
        assert_eq!(b["subscription"]["cancel_at_period_end"], true, "{path}");
        assert_eq!(b["subscription"]["end_date"], "2025-05-01", "{path}");
    }
}
