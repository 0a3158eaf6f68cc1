//! The revenue report files each invoice under the plan it was issued for (stored on the
//! invoice), whatever plan the subscription has later; and the migration that added the column
//! recovers that plan for invoices issued before it.
use crate::common;

use common::{Auth, TestApp};
use serde_json::Value;
use sqlx::PgPool;

use crate::invoice_arithmetic::{at, bill_on, change_plan, create_harvest_plan, sign_up};

fn invoiced(v: &Value) -> &str {
    v["invoiced"].as_str().unwrap_or("absent")
}

async fn plan_of(pool: &PgPool, invoice_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT plan_id FROM invoices WHERE invoice_id = $1::uuid")
        .bind(invoice_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_invoice_stays_under_the_plan_it_was_issued_for_after_an_upgrade() {
    let app = TestApp::spawn().await;
    at(&app, "2026-12-03");
    create_harvest_plan(&app).await;
    let first = sign_up(&app, "farm-plan", "harvest", "USD").await;
    at(&app, "2026-12-19");
    let up = change_plan(&app, "farm-plan", "professional").await;
    let proration = up["proration"]["invoice_id"].as_str().unwrap().to_string();
    bill_on(&app, "2027-01-03").await;

    assert_eq!(plan_of(&app.pool, &first).await.as_deref(), Some("harvest"));
    assert_eq!(
        plan_of(&app.pool, &proration).await.as_deref(),
        Some("professional")
    );
    let inv = app.get(&format!("/v1/invoices/{first}"), Auth::Admin).await;
    assert_eq!(
        inv.body["invoice"]["plan_id"], "harvest",
        "the API shows it"
    );

    let dec = app
        .get(
            "/v1/reports/revenue?start_date=2026-12-01&end_date=2026-12-31",
            Auth::Admin,
        )
        .await;
    assert_status!(dec, 200);
    let by_plan = &dec.body["by_plan"];
    // Sign-up 33.33 under harvest; the upgrade's net (47.90 - 16.13) under professional.
    assert_eq!(invoiced(&by_plan["harvest"]), "33.33", "{by_plan}");
    assert_eq!(invoiced(&by_plan["professional"]), "31.77", "{by_plan}");
    let both = app
        .get(
            "/v1/reports/revenue?start_date=2026-12-01&end_date=2027-01-31",
            Auth::Admin,
        )
        .await;
    let by_plan = &both.body["by_plan"];
    assert_eq!(invoiced(&by_plan["harvest"]), "33.33", "{by_plan}");
    assert_eq!(invoiced(&by_plan["professional"]), "130.77", "{by_plan}");
    assert_eq!(by_plan.as_object().unwrap().len(), 2);

    // The generate endpoint stores the plan too; no invoice is left without one.
    let t = common::tenant_with(&app.pool, common::Sub::default()).await;
    let g = app
        .post(
            &format!("/v1/tenants/{t}/invoices/generate"),
            Auth::TenantAdmin(t.clone()),
            serde_json::json!({}),
        )
        .await;
    assert_status!(g, 201);
    let id = g.body["invoice"]["invoice_id"].as_str().unwrap();
    assert_eq!(plan_of(&app.pool, id).await.as_deref(), Some("starter"));
    assert_eq!(g.body["invoice"]["plan_id"], "starter");
    let without: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE plan_id IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(without, 0);
}

const PLAN_MIGRATION: &str = include_str!("../../migrations/20261203000100_invoice_plan_id.sql");
const LINES_MIGRATION: &str =
    include_str!("../../migrations/20261203000101_proration_lines_one_unit.sql");

#[tokio::test]
async fn the_migration_recovers_the_plan_of_invoices_issued_before_it() {
    let app = TestApp::spawn().await;
    at(&app, "2026-12-03");
    create_harvest_plan(&app).await;
    // Three tenants on harvest, each upgraded to professional later.
    let named = sign_up(&app, "farm-named", "harvest", "USD").await;
    let evented = sign_up(&app, "farm-evented", "harvest", "USD").await;
    let current = sign_up(&app, "farm-current", "harvest", "USD").await;
    at(&app, "2026-12-19");
    let up = change_plan(&app, "farm-named", "professional").await;
    let proration = up["proration"]["invoice_id"].as_str().unwrap().to_string();
    change_plan(&app, "farm-evented", "professional").await;
    // farm-current's plan changes without any record of it (as if done by hand).
    sqlx::query("UPDATE subscriptions SET plan_id = 'enterprise' WHERE tenant_id = 'farm-current'")
        .execute(&app.pool)
        .await
        .unwrap();
    // Back to the schema before the migration, with lines as they were written then: the
    // plan lines of farm-evented's and farm-current's invoices name no plan, and the proration lines carry
    // the days as their quantity.
    sqlx::raw_sql(
        "ALTER TABLE invoices DROP COLUMN plan_id;
         UPDATE invoice_lines SET description = 'Subscription'
          WHERE tenant_id IN ('farm-evented', 'farm-current');
         UPDATE invoice_lines SET quantity = 15,
                description = split_part(description, ':', 1)
          WHERE kind = 'proration';",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let before: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT invoice_id::text, updated_at FROM invoices ORDER BY invoice_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();

    sqlx::raw_sql(PLAN_MIGRATION)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::raw_sql(LINES_MIGRATION)
        .execute(&app.pool)
        .await
        .unwrap();

    // By the plan line, by the plan change event, by the subscription's plan.
    assert_eq!(plan_of(&app.pool, &named).await.as_deref(), Some("harvest"));
    assert_eq!(
        plan_of(&app.pool, &proration).await.as_deref(),
        Some("professional")
    );
    assert_eq!(
        plan_of(&app.pool, &evented).await.as_deref(),
        Some("harvest")
    );
    assert_eq!(
        plan_of(&app.pool, &current).await.as_deref(),
        Some("enterprise")
    );
    let after: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT invoice_id::text, updated_at FROM invoices ORDER BY invoice_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(before, after, "the backfill is not an invoice change");
    let bad_lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invoice_lines WHERE round(quantity * unit_price, 2) <> amount",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(bad_lines, 0, "old proration lines are one unit each");
    let r = app
        .get(
            "/v1/reports/revenue?start_date=2026-12-01&end_date=2026-12-31",
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    // farm-current's invoice went to the plan its subscription has now (nothing else is known).
    assert_eq!(invoiced(&r.body["by_plan"]["harvest"]), "66.66");
}
