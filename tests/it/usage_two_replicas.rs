//! The atomic quota holds across replicas: two services (two pools) on one database.
use crate::common;

use chrono::Datelike;
use common::{tenant_with, Auth, Sub, TestApp};
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn forty_requests_split_over_two_replicas_accept_exactly_the_ten_units_left() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    let today = chrono::Utc::now().date_naive();
    let start = today.with_day(1).unwrap();
    let end = billing_core::billing::period::period_end(
        start,
        1,
        billing_core::billing::types::BillingCycle::Monthly,
    );
    let (s, e) = (start.to_string(), end.to_string());
    let t = tenant_with(
        &a.pool,
        Sub {
            plan: "free",
            start: &s,
            end: &e,
            anchor: 1,
            ..Default::default()
        },
    )
    .await;
    let path = format!("/v1/tenants/{t}/usage");
    let body = json!({"metric": "satellite_analyses_per_month", "quantity": 1});
    let requests = (0..40).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post(&path, Auth::Service, body.clone())
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "{statuses:?}"
    );
    let used: i64 = sqlx::query_scalar("SELECT used FROM usage_counters WHERE tenant_id = $1 AND metric = 'satellite_analyses_per_month'")
        .bind(&t).fetch_one(&a.pool).await.unwrap();
    assert_eq!(used, 10);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_records WHERE tenant_id = $1")
        .bind(&t)
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(rows, 10);
}
