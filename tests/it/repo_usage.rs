use crate::common;

use billing_core::billing::types::UsageAction;
use billing_core::pagination::Page;
use billing_core::repository::usage::{CounterKey, NewUsageRecord, UsageRepository};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap()
}

/// A tenant and its active starter subscription, written directly; returns both ids.
async fn fixture(app: &TestApp) -> (String, Uuid) {
    let tid = format!("farm-{}", Uuid::new_v4().simple());
    let sid = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, 'Farm', 'مزرعة', 'f@example.com', '+967771234567')",
    )
    .bind(&tid)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, anchor_day, start_date, end_date, next_billing_date)
         VALUES ($1, $2, 'starter', 'active', 1, DATE '2026-03-01', DATE '2026-04-01', DATE '2026-04-01')",
    )
    .bind(sid)
    .bind(&tid)
    .execute(&app.pool)
    .await
    .unwrap();
    (tid, sid)
}

async fn add(
    app: &TestApp,
    tid: &str,
    sid: Uuid,
    metric: &str,
    quantity: i64,
    when: DateTime<Utc>,
    event: Option<&str>,
) -> Option<Uuid> {
    let mut conn = app.pool.acquire().await.unwrap();
    let meta = json!({"source": "test"});
    UsageRepository::create(
        &mut conn,
        &NewUsageRecord {
            record_id: Uuid::new_v4(),
            tenant_id: tid,
            subscription_id: Some(sid),
            metric,
            action: UsageAction::Increment,
            quantity,
            event_id: event,
            recorded_at: when,
            metadata: &meta,
        },
    )
    .await
    .unwrap()
    .map(|r| r.record_id)
}

#[tokio::test]
async fn create_stores_a_record_and_refuses_a_second_copy_of_an_event_id() {
    let app = TestApp::spawn().await;
    let (tid, sid) = fixture(&app).await;
    let id = add(&app, &tid, sid, "fields", 2, at(5, 10), Some("e-1"))
        .await
        .unwrap();
    assert!(add(&app, &tid, sid, "fields", 2, at(5, 11), Some("e-1"))
        .await
        .is_none());
    // The same event id belongs to each tenant separately.
    let (other, other_sid) = fixture(&app).await;
    assert!(
        add(&app, &other, other_sid, "fields", 1, at(5, 10), Some("e-1"))
            .await
            .is_some()
    );

    let mut conn = app.pool.acquire().await.unwrap();
    let row = UsageRepository::get_by_id(&mut conn, &tid, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.metric.as_str(), row.quantity, row.action),
        ("fields", 2, UsageAction::Increment)
    );
    assert_eq!(row.metadata, json!({"source": "test"}));
    assert_eq!(row.subscription_id, Some(sid));
    assert_eq!(
        UsageRepository::get_by_event_id(&mut conn, &tid, "e-1")
            .await
            .unwrap()
            .unwrap()
            .record_id,
        id
    );
}

#[tokio::test]
async fn get_by_id_does_not_reach_another_tenants_record() {
    let app = TestApp::spawn().await;
    let (a, sa) = fixture(&app).await;
    let (b, _) = fixture(&app).await;
    let id = add(&app, &a, sa, "fields", 1, at(2, 8), None)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(UsageRepository::get_by_id(&mut conn, &b, id)
        .await
        .unwrap()
        .is_none());
    assert!(UsageRepository::get_by_id(&mut conn, &a, Uuid::new_v4())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn list_by_subscription_returns_its_records_newest_first() {
    let app = TestApp::spawn().await;
    let (tid, sid) = fixture(&app).await;
    let old = add(&app, &tid, sid, "fields", 1, at(2, 8), None)
        .await
        .unwrap();
    let new = add(&app, &tid, sid, "storage_gb", 1, at(3, 8), None)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let rows = UsageRepository::list_by_subscription(&mut conn, &tid, sid, 10)
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.record_id).collect::<Vec<_>>(),
        [new, old]
    );
    assert_eq!(
        UsageRepository::list_by_subscription(&mut conn, &tid, Uuid::new_v4(), 10)
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn list_by_tenant_pages_with_a_true_total_and_filters_by_metric() {
    let app = TestApp::spawn().await;
    let (tid, sid) = fixture(&app).await;
    let mut ids = Vec::new();
    for d in 1..=5 {
        ids.push(
            add(&app, &tid, sid, "ai_diagnoses_per_month", 1, at(d, 9), None)
                .await
                .unwrap(),
        );
    }
    add(&app, &tid, sid, "fields", 1, at(6, 9), None)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let Page {
        items: page,
        total,
        has_more: more,
        ..
    } = UsageRepository::list_by_tenant(&mut conn, &tid, None, 4, None)
        .await
        .unwrap();
    assert_eq!((page.len(), total, more), (4, 6, true));
    let Page {
        items: rest,
        has_more: more,
        ..
    } = UsageRepository::list_by_tenant(&mut conn, &tid, None, 4, Some(page[3].record_id))
        .await
        .unwrap();
    assert_eq!((rest.len(), more), (2, false));
    assert_eq!(rest[1].record_id, ids[0]);
    let Page {
        items: only, total, ..
    } = UsageRepository::list_by_tenant(&mut conn, &tid, Some("fields"), 10, None)
        .await
        .unwrap();
    assert_eq!((only.len(), total), (1, 1));
}

#[tokio::test]
async fn summary_and_metric_count_sum_within_the_half_open_range() {
    let app = TestApp::spawn().await;
    let (tid, sid) = fixture(&app).await;
    add(&app, &tid, sid, "ai_diagnoses_per_month", 3, at(1, 0), None).await;
    add(
        &app,
        &tid,
        sid,
        "ai_diagnoses_per_month",
        4,
        at(9, 23),
        None,
    )
    .await;
    add(&app, &tid, sid, "pdf_reports_per_month", 2, at(5, 12), None).await;
    add(&app, &tid, sid, "pdf_reports_per_month", 9, at(10, 0), None).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let (from, to) = (at(1, 0), at(10, 0));
    let s = UsageRepository::get_usage_summary(&mut conn, &tid, from, to)
        .await
        .unwrap();
    assert_eq!(s.get("ai_diagnoses_per_month"), Some(&7));
    assert_eq!(s.get("pdf_reports_per_month"), Some(&2));
    assert_eq!(s.len(), 2);
    assert_eq!(
        UsageRepository::get_metric_count(&mut conn, &tid, "pdf_reports_per_month", from, to)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        UsageRepository::get_metric_count(&mut conn, &tid, "fields", from, to)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn apply_adds_within_a_blocked_limit_and_refuses_beyond_it() {
    let app = TestApp::spawn().await;
    let (tid, _) = fixture(&app).await;
    let key = CounterKey {
        tenant_id: &tid,
        metric: "satellite_analyses_per_month",
        window_start: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    UsageRepository::ensure_counter(&mut conn, key, false)
        .await
        .unwrap();
    UsageRepository::ensure_counter(&mut conn, key, false)
        .await
        .unwrap();
    assert_eq!(
        UsageRepository::apply(&mut conn, key, UsageAction::Increment, 8, 10, true)
            .await
            .unwrap(),
        Some(8)
    );
    assert_eq!(
        UsageRepository::apply(&mut conn, key, UsageAction::Increment, 3, 10, true)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        UsageRepository::apply(&mut conn, key, UsageAction::Increment, 2, 10, true)
            .await
            .unwrap(),
        Some(10)
    );
    // Billed plans and unlimited limits go past it.
    assert_eq!(
        UsageRepository::apply(&mut conn, key, UsageAction::Increment, 5, 10, false)
            .await
            .unwrap(),
        Some(15)
    );
    assert_eq!(
        UsageRepository::apply(&mut conn, key, UsageAction::Increment, 5, -1, true)
            .await
            .unwrap(),
        Some(20)
    );
    assert_eq!(
        UsageRepository::counter(&mut conn, key).await.unwrap(),
        Some((20, 20))
    );
}

#[tokio::test]
async fn a_gauge_row_for_a_new_period_starts_from_the_last_level() {
    let app = TestApp::spawn().await;
    let (tid, _) = fixture(&app).await;
    let d = |m: u32| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
    let march = CounterKey {
        tenant_id: &tid,
        metric: "fields",
        window_start: d(3),
    };
    let april = CounterKey {
        window_start: d(4),
        ..march
    };
    let mut conn = app.pool.acquire().await.unwrap();
    UsageRepository::ensure_counter(&mut conn, march, true)
        .await
        .unwrap();
    assert_eq!(
        UsageRepository::apply(&mut conn, march, UsageAction::Set, 6, 10, true)
            .await
            .unwrap(),
        Some(6)
    );
    assert_eq!(
        UsageRepository::apply(&mut conn, march, UsageAction::Increment, -2, 10, true)
            .await
            .unwrap(),
        Some(4)
    );
    UsageRepository::ensure_counter(&mut conn, april, true)
        .await
        .unwrap();
    assert_eq!(
        UsageRepository::counter(&mut conn, april).await.unwrap(),
        Some((4, 4))
    );
    assert_eq!(
        UsageRepository::apply(&mut conn, april, UsageAction::Increment, -9, 10, true)
            .await
            .unwrap(),
        Some(0)
    );
    let levels = UsageRepository::current_levels(&mut conn, &tid, Some(d(4)), d(4), None)
        .await
        .unwrap();
    assert_eq!(levels.get("fields"), Some(&0));
    let march_levels =
        UsageRepository::current_levels(&mut conn, &tid, Some(d(3)), d(3), Some("fields"))
            .await
            .unwrap();
    assert_eq!(march_levels.get("fields"), Some(&4));
}
