use crate::common;

use billing_core::billing::types::{BillingCycle, PaymentMethod, SubscriptionStatus};
use billing_core::error::is_unique_violation;
use billing_core::repository::subscriptions::{
    NewSubscription, SubscriptionChanges, SubscriptionRepository,
};
use billing_core::repository::tenants::{NewTenant, TenantChanges, TenantRepository};
use chrono::{NaiveDate, TimeZone, Utc};
use common::TestApp;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

async fn tenant(conn: &mut PgConnection, id: &str) {
    let created = TenantRepository::create(
        conn,
        &NewTenant {
            tenant_id: id,
            name: "Farm",
            name_ar: "مزرعة",
            email: "farm@example.com",
            phone: "+967700000000",
            tax_id: None,
            tax_rate: Decimal::ZERO,
        },
    )
    .await
    .unwrap();
    assert!(created);
}

fn new_sub<'a>(
    tenant_id: &'a str,
    plan_id: &'a str,
    status: SubscriptionStatus,
    next: NaiveDate,
) -> NewSubscription<'a> {
    NewSubscription {
        subscription_id: Uuid::new_v4(),
        tenant_id,
        plan_id,
        status,
        billing_cycle: BillingCycle::Monthly,
        currency: "USD",
        anchor_day: 1,
        start_date: d(2026, 1, 1),
        end_date: next,
        next_billing_date: next,
        trial_end_date: None,
    }
}

#[tokio::test]
async fn tenants_are_created_read_updated_counted_and_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    for id in ["t-1", "t-2", "t-3"] {
        tenant(&mut conn, id).await;
    }
    // A taken id is reported, not overwritten.
    let again = TenantRepository::create(
        &mut conn,
        &NewTenant {
            tenant_id: "t-1",
            name: "Other",
            name_ar: "أخرى",
            email: "o@example.com",
            phone: "12345",
            tax_id: None,
            tax_rate: Decimal::ONE,
        },
    )
    .await
    .unwrap();
    assert!(!again);
    assert_eq!(
        TenantRepository::get(&mut conn, "t-1")
            .await
            .unwrap()
            .unwrap()
            .name,
        "Farm"
    );
    assert!(TenantRepository::get(&mut conn, "nope")
        .await
        .unwrap()
        .is_none());
    assert_eq!(TenantRepository::count(&mut conn).await.unwrap(), 3);

    let changes = TenantChanges {
        name: Some("Renamed".into()),
        name_ar: Some("جديد".into()),
        email: Some("new@example.com".into()),
        phone: Some("+96711111".into()),
        tax_id: Some(Some("TAX-9".into())),
        tax_rate: Some(Decimal::new(5125, 3)),
    };
    let row = TenantRepository::update(&mut conn, "t-2", &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.name.as_str(), row.name_ar.as_str(), row.email.as_str()),
        ("Renamed", "جديد", "new@example.com")
    );
    assert_eq!(
        (row.phone.as_str(), row.tax_id.as_deref()),
        ("+96711111", Some("TAX-9"))
    );
    assert_eq!(row.tax_rate, Decimal::new(5125, 3));
    let cleared = TenantRepository::update(
        &mut conn,
        "t-2",
        &TenantChanges {
            tax_id: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((cleared.tax_id, cleared.name.as_str()), (None, "Renamed"));
    assert!(TenantRepository::update(&mut conn, "nope", &changes)
        .await
        .unwrap()
        .is_none());

    let first = TenantRepository::list(&mut conn, 2, None).await.unwrap();
    let ids: Vec<&str> = first.items.iter().map(|t| t.tenant_id.as_str()).collect();
    assert_eq!(
        (ids, first.total, first.has_more),
        (vec!["t-3", "t-2"], 3, true)
    );
    // The next page starts after the last item of this one.
    assert_eq!(first.next.as_deref(), Some("t-2"));
    let last = TenantRepository::list(&mut conn, 2, first.next.as_deref())
        .await
        .unwrap();
    let ids: Vec<&str> = last.items.iter().map(|t| t.tenant_id.as_str()).collect();
    assert_eq!((ids, last.total, last.has_more), (vec!["t-1"], 3, false));
    assert_eq!(last.next, None);
    let unknown = TenantRepository::list(&mut conn, 2, Some("unknown"))
        .await
        .unwrap();
    assert!(unknown.items.is_empty() && !unknown.has_more);
}

#[tokio::test]
async fn subscriptions_are_read_per_tenant_and_updated() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    tenant(&mut conn, "s-a").await;
    tenant(&mut conn, "s-b").await;
    let old = SubscriptionRepository::create(
        &mut conn,
        &new_sub("s-a", "free", SubscriptionStatus::Canceled, d(2026, 2, 1)),
    )
    .await
    .unwrap();
    let live = SubscriptionRepository::create(
        &mut conn,
        &new_sub("s-a", "starter", SubscriptionStatus::Trial, d(2026, 2, 15)),
    )
    .await
    .unwrap();

    let got = SubscriptionRepository::get_by_id(&mut conn, "s-a", live.subscription_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.plan_id, "starter");
    // Another tenant cannot reach it by id.
    assert!(
        SubscriptionRepository::get_by_id(&mut conn, "s-b", live.subscription_id)
            .await
            .unwrap()
            .is_none()
    );
    let by_tenant = SubscriptionRepository::get_by_tenant(&mut conn, "s-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tenant.subscription_id, live.subscription_id);
    let all = SubscriptionRepository::list_by_tenant(&mut conn, "s-a")
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|s| s.subscription_id).collect::<Vec<_>>(),
        [live.subscription_id, old.subscription_id]
    );
    assert!(SubscriptionRepository::list_by_tenant(&mut conn, "s-b")
        .await
        .unwrap()
        .is_empty());

    let changes = SubscriptionChanges {
        plan_id: Some("professional".into()),
        billing_cycle: Some(BillingCycle::Yearly),
        status: Some(SubscriptionStatus::Active),
        start_date: Some(d(2026, 2, 15)),
        end_date: Some(d(2027, 2, 15)),
        next_billing_date: Some(d(2027, 2, 15)),
        trial_end_date: Some(None),
        anchor_day: Some(15),
        payment_method: Some(Some(PaymentMethod::Tharwatt)),
        ..Default::default()
    };
    let upd = SubscriptionRepository::update(&mut conn, "s-a", live.subscription_id, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (upd.plan_id.as_str(), upd.billing_cycle, upd.status),
        (
            "professional",
            BillingCycle::Yearly,
            SubscriptionStatus::Active
        )
    );
    assert_eq!(
        (upd.start_date, upd.end_date, upd.next_billing_date),
        (d(2026, 2, 15), d(2027, 2, 15), d(2027, 2, 15))
    );
    assert_eq!(
        (upd.trial_end_date, upd.anchor_day, upd.payment_method),
        (None, 15, Some(PaymentMethod::Tharwatt))
    );
    assert!(upd.updated_at >= live.updated_at);
    // The wrong tenant updates nothing.
    assert!(
        SubscriptionRepository::update(&mut conn, "s-b", live.subscription_id, &changes)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn cancel_ends_now_or_at_period_end_and_only_once() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    tenant(&mut conn, "c-a").await;
    let sub = SubscriptionRepository::create(
        &mut conn,
        &new_sub("c-a", "starter", SubscriptionStatus::Active, d(2026, 2, 1)),
    )
    .await
    .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 20, 12, 0, 0).unwrap();
    assert!(
        SubscriptionRepository::cancel(&mut conn, "other", sub.subscription_id, true, now)
            .await
            .unwrap()
            .is_none()
    );

    let pending = SubscriptionRepository::cancel(&mut conn, "c-a", sub.subscription_id, false, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            pending.status,
            pending.cancel_at_period_end,
            pending.canceled_at
        ),
        (SubscriptionStatus::Active, true, None)
    );

    let done = SubscriptionRepository::cancel(&mut conn, "c-a", sub.subscription_id, true, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (done.status, done.cancel_at_period_end, done.canceled_at),
        (SubscriptionStatus::Canceled, false, Some(now))
    );
    assert!(
        SubscriptionRepository::cancel(&mut conn, "c-a", sub.subscription_id, true, now)
            .await
            .unwrap()
            .is_none()
    );
    // The canceled one is still the tenant's latest subscription.
    let latest = SubscriptionRepository::get_by_tenant(&mut conn, "c-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.status, SubscriptionStatus::Canceled);
    assert!(SubscriptionRepository::get_live(&mut conn, "c-a")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn due_subscriptions_are_the_live_ones_whose_billing_date_has_come() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let cases = [
        ("due-trial", SubscriptionStatus::Trial, d(2026, 2, 1)),
        ("due-active", SubscriptionStatus::Active, d(2026, 1, 31)),
        ("due-pastdue", SubscriptionStatus::PastDue, d(2026, 2, 1)),
        (
            "due-suspended",
            SubscriptionStatus::Suspended,
            d(2026, 1, 15),
        ),
        ("later", SubscriptionStatus::Active, d(2026, 2, 2)),
        ("gone", SubscriptionStatus::Canceled, d(2026, 1, 10)),
    ];
    for (id, status, next) in cases {
        tenant(&mut conn, id).await;
        SubscriptionRepository::create(&mut conn, &new_sub(id, "starter", status, next))
            .await
            .unwrap();
    }
    let due = SubscriptionRepository::get_due_for_billing(&mut conn, d(2026, 2, 1), 100)
        .await
        .unwrap();
    let mut ids: Vec<&str> = due.iter().map(|s| s.tenant_id.as_str()).collect();
    assert_eq!(ids[0], "due-suspended", "oldest due first");
    ids.sort();
    assert_eq!(
        ids,
        ["due-active", "due-pastdue", "due-suspended", "due-trial"]
    );
    assert_eq!(
        SubscriptionRepository::get_due_for_billing(&mut conn, d(2026, 2, 1), 2)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        SubscriptionRepository::get_due_for_billing(&mut conn, d(2026, 1, 1), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn subscriptions_are_counted_by_status_and_by_plan() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let cases = [
        ("n-1", "starter", SubscriptionStatus::Trial),
        ("n-2", "starter", SubscriptionStatus::Active),
        ("n-3", "free", SubscriptionStatus::Active),
        ("n-4", "professional", SubscriptionStatus::Canceled),
    ];
    for (id, plan, status) in cases {
        tenant(&mut conn, id).await;
        SubscriptionRepository::create(&mut conn, &new_sub(id, plan, status, d(2026, 2, 1)))
            .await
            .unwrap();
    }
    let by_status = SubscriptionRepository::count_by_status(&mut conn)
        .await
        .unwrap();
    assert_eq!(by_status.get("trial"), Some(&1));
    assert_eq!(by_status.get("active"), Some(&2));
    assert_eq!(by_status.get("canceled"), Some(&1));
    assert_eq!(by_status.get("past_due"), None);
    let all = SubscriptionRepository::count_by_plan(&mut conn, false)
        .await
        .unwrap();
    assert_eq!(
        (all.get("starter"), all.get("free"), all.get("professional")),
        (Some(&2), Some(&1), Some(&1))
    );
    let live = SubscriptionRepository::count_by_plan(&mut conn, true)
        .await
        .unwrap();
    assert_eq!(live.get("professional"), None);
    assert_eq!(live.get("starter"), Some(&2));
}

#[tokio::test]
async fn the_database_refuses_a_second_live_subscription_for_one_tenant() {
    let app = TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    tenant(&mut conn, "one-live").await;
    SubscriptionRepository::create(
        &mut conn,
        &new_sub(
            "one-live",
            "starter",
            SubscriptionStatus::Active,
            d(2026, 2, 1),
        ),
    )
    .await
    .unwrap();
    let err = SubscriptionRepository::create(
        &mut conn,
        &new_sub(
            "one-live",
            "free",
            SubscriptionStatus::Suspended,
            d(2026, 2, 1),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        is_unique_violation(&err, Some("subscriptions_one_live_per_tenant")),
        "{err}"
    );
    // Canceled ones do not count: history may hold many.
    for _ in 0..2 {
        SubscriptionRepository::create(
            &mut conn,
            &new_sub(
                "one-live",
                "free",
                SubscriptionStatus::Canceled,
                d(2026, 2, 1),
            ),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        SubscriptionRepository::list_by_tenant(&mut conn, "one-live")
            .await
            .unwrap()
            .len(),
        3
    );
}
