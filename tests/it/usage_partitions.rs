//! Retention: usage_records is range-partitioned by month on recorded_at; partitions are made
//! ahead by `ensure_usage_partitions`, and exactly-once ingestion by event id holds across
//! partitions (the claim lives in usage_event_ids).

use crate::common;

use billing_core::billing::types::UsageAction;
use billing_core::repository::usage::{NewUsageRecord, RecordColumns, UsageRepository};
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use common::TestApp;
use serde_json::json;
use uuid::Uuid;

async fn tenant(app: &TestApp) -> String {
    let tid = format!("farm-{}", Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, 'Farm', 'مزرعة', 'f@example.com', '+967771234567')",
    )
    .bind(&tid)
    .execute(&app.pool)
    .await
    .unwrap();
    tid
}

async fn add(app: &TestApp, tid: &str, when: DateTime<Utc>, event: Option<&str>) -> Option<Uuid> {
    let mut conn = app.pool.acquire().await.unwrap();
    let meta = json!({"source": "test"});
    UsageRepository::create(
        &mut conn,
        &NewUsageRecord {
            record_id: Uuid::new_v4(),
            tenant_id: tid,
            subscription_id: None,
            metric: "fields",
            action: UsageAction::Increment,
            quantity: 1,
            event_id: event,
            recorded_at: when,
            metadata: &meta,
        },
    )
    .await
    .unwrap()
    .map(|r| r.record_id)
}

async fn partition_of(app: &TestApp, record_id: Uuid) -> String {
    sqlx::query_scalar("SELECT tableoid::regclass::text FROM usage_records WHERE record_id = $1")
        .bind(record_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn count(app: &TestApp, tid: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM usage_records WHERE tenant_id = $1")
        .bind(tid)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The first day of the month `months` after the current one (UTC).
fn month_ahead(months: u32) -> NaiveDate {
    let today = Utc::now().date_naive();
    NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
        .unwrap()
        .checked_add_months(Months::new(months))
        .unwrap()
}

fn partition_name(month: NaiveDate) -> String {
    format!("usage_records_p{}", month.format("%Y%m"))
}

fn mid(month: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).unwrap()) + chrono::Duration::days(14)
}

async fn has_partition(app: &TestApp, name: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits
                        WHERE inhparent = 'usage_records'::regclass AND inhrelid::regclass::text = $1)",
    )
    .bind(name)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn usage_records_is_partitioned_by_recorded_at_with_a_default() {
    let app = TestApp::spawn().await;
    let strategy: String = sqlx::query_scalar(
        "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 'usage_records'::regclass",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(strategy, "r");
    let key: String = sqlx::query_scalar("SELECT pg_get_partkeydef('usage_records'::regclass)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(key, "RANGE (recorded_at)");
    assert!(has_partition(&app, "usage_records_default").await);
    // This month and three ahead exist from the migration (or the service start).
    for m in 0..=3 {
        assert!(
            has_partition(&app, &partition_name(month_ahead(m))).await,
            "month +{m}"
        );
    }
    let pk: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'usage_records'::regclass AND contype = 'p'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pk, "PRIMARY KEY (record_id, recorded_at)");
}

#[tokio::test]
async fn ensure_usage_partitions_creates_missing_months_once() {
    let app = TestApp::spawn().await;
    let far = month_ahead(30);
    assert!(!has_partition(&app, &partition_name(far)).await);
    let created: i32 = sqlx::query_scalar("SELECT ensure_usage_partitions(30)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(created >= 27, "created {created}");
    assert!(has_partition(&app, &partition_name(far)).await);
    let again: i32 = sqlx::query_scalar("SELECT ensure_usage_partitions(30)")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(again, 0);
    // The service's own call (serve start, daily job) is a no-op now.
    assert_eq!(
        billing_core::db::ensure_usage_partitions(&app.pool)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_row_lands_in_its_months_partition_or_the_default() {
    let app = TestApp::spawn().await;
    let tid = tenant(&app).await;

    let far = month_ahead(20);
    // Before its partition exists a far-future row still goes in (DEFAULT).
    let early = add(&app, &tid, mid(far), None).await.unwrap();
    assert_eq!(partition_of(&app, early).await, "usage_records_default");

    let further = month_ahead(22);
    sqlx::query("SELECT ensure_usage_partitions(22)")
        .execute(&app.pool)
        .await
        .unwrap();
    let row = add(&app, &tid, mid(further), Some("future-1"))
        .await
        .unwrap();
    assert_eq!(partition_of(&app, row).await, partition_name(further));
    // The month whose rows sit in DEFAULT was left to DEFAULT rather than failing the call.
    assert!(!has_partition(&app, &partition_name(far)).await);

    let past = Utc.with_ymd_and_hms(2025, 6, 10, 12, 0, 0).unwrap();
    let old = add(&app, &tid, past, Some("past-1")).await.unwrap();
    assert_eq!(partition_of(&app, old).await, "usage_records_p202506");
    assert_eq!(count(&app, &tid).await, 3);
}

#[tokio::test]
async fn an_event_id_counts_once_across_partitions() {
    let app = TestApp::spawn().await;
    let tid = tenant(&app).await;
    let first = Utc.with_ymd_and_hms(2025, 3, 2, 8, 0, 0).unwrap();
    let later = Utc.with_ymd_and_hms(2025, 9, 2, 8, 0, 0).unwrap();

    let id = add(&app, &tid, first, Some("evt-1")).await.unwrap();
    assert_eq!(add(&app, &tid, later, Some("evt-1")).await, None);
    assert_eq!(
        add(&app, &tid, mid(month_ahead(1)), Some("evt-1")).await,
        None
    );
    assert_eq!(count(&app, &tid).await, 1);
    let mut conn = app.pool.acquire().await.unwrap();
    let original = UsageRepository::get_by_event_id(&mut conn, &tid, "evt-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(original.record_id, id);
    assert_eq!(original.recorded_at, first);

    // Another tenant may use the same event id.
    let other = tenant(&app).await;
    assert!(add(&app, &other, later, Some("evt-1")).await.is_some());

    // Batch: the same event twice in one batch and once more from the single write, with
    // timestamps months apart, gives one row.
    let mut c = RecordColumns::default();
    for (event, when) in [("evt-1", later), ("evt-2", first), ("evt-2", later)] {
        c.record_id.push(Uuid::new_v4());
        c.tenant_id.push(tid.clone());
        c.subscription_id.push(None);
        c.metric.push("fields".into());
        c.action.push("increment");
        c.quantity.push(1);
        c.event_id.push(event.into());
        c.recorded_at.push(when);
        c.metadata.push(json!({}));
    }
    let inserted = UsageRepository::insert_records(&mut conn, &c)
        .await
        .unwrap();
    assert_eq!(inserted, vec![c.record_id[1]]);
    assert_eq!(count(&app, &tid).await, 2);
}

#[tokio::test]
async fn concurrent_copies_in_different_months_give_one_row() {
    let app = TestApp::spawn().await;
    let tid = tenant(&app).await;
    let a = Utc.with_ymd_and_hms(2025, 1, 5, 0, 0, 0).unwrap();
    let b = Utc.with_ymd_and_hms(2025, 7, 5, 0, 0, 0).unwrap();
    for round in 0..10 {
        let event = format!("race-{round}");
        let (x, y) = tokio::join!(
            add(&app, &tid, a, Some(&event)),
            add(&app, &tid, b, Some(&event))
        );
        assert!(x.is_some() ^ y.is_some(), "round {round}: {x:?} {y:?}");
    }
    assert_eq!(count(&app, &tid).await, 10);
}
