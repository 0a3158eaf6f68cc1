use crate::common;

use billing_core::repository::outbox::OutboxRepository;
use common::{Auth, Resp, TestApp};
use serde_json::{json, Value};
use uuid::Uuid;

fn new_tenant() -> String {
    format!("farm-{}", Uuid::new_v4().simple())
}

async fn record(app: &TestApp, event_type: &str, tenant: &str, n: usize) -> Vec<Uuid> {
    let mut tx = app.pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let payload = json!({ "invoice_id": format!("inv-{i}"), "amount": "10.00" });
        ids.push(
            OutboxRepository::record(&mut tx, event_type, Some(tenant), payload)
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

fn ids_of(r: &Resp) -> Vec<String> {
    r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect()
}

fn strings(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

fn field_names(r: &Resp) -> Vec<String> {
    r.field_names()
}

#[tokio::test]
async fn events_are_listed_in_seq_order_and_paged_with_the_after_cursor() {
    let app = TestApp::spawn().await;
    let tenant = new_tenant();
    let ids = record(&app, "invoice.paid", &tenant, 5).await;
    let base = format!("/v1/events?tenant_id={tenant}&limit=2");

    let first = app.get(&base, Auth::Admin).await;
    assert_status!(first, 200);
    assert_eq!(first.body["total"], 5);
    assert_eq!(first.body["has_more"], true);
    assert_eq!(ids_of(&first), strings(&ids[..2]));
    let last_seq = first.body["events"][1]["seq"].as_i64().unwrap();
    assert!(first.body["events"][0]["seq"].as_i64().unwrap() < last_seq);

    let second = app
        .get(&format!("{base}&after={last_seq}"), Auth::Admin)
        .await;
    assert_status!(second, 200);
    assert_eq!(ids_of(&second), strings(&ids[2..4]));
    assert_eq!(second.body["total"], 5, "total ignores the cursor");
    assert_eq!(second.body["has_more"], true);

    let cursor = second.body["events"][1]["seq"].as_i64().unwrap();
    let third = app
        .get(
            &format!("/api/v1/events?tenant_id={tenant}&limit=2&starting_after={cursor}"),
            Auth::Admin,
        )
        .await;
    assert_status!(third, 200);
    assert_eq!(ids_of(&third), strings(&ids[4..]));
    assert_eq!(third.body["has_more"], false);
}

#[tokio::test]
async fn an_event_shows_its_envelope_payload_and_publication_time() {
    let app = TestApp::spawn().await;
    let tenant = new_tenant();
    let ids = record(&app, "payment.succeeded", &tenant, 2).await;
    let mut conn = app.pool.acquire().await.unwrap();
    OutboxRepository::mark_published(&mut conn, &ids[..1])
        .await
        .unwrap();

    let r = app
        .get(&format!("/v1/events?tenant_id={tenant}"), Auth::Admin)
        .await;
    assert_status!(r, 200);
    let events = r.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let e = &events[0];
    assert_eq!(e["event_id"], ids[0].to_string());
    assert_eq!(e["subject"], "sahool.billing.payment.succeeded");
    assert_eq!(e["type"], "payment.succeeded");
    assert_eq!(e["tenant_id"], tenant.as_str());
    assert!(e["seq"].is_i64());
    assert!(chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap()).is_ok());
    assert!(chrono::DateTime::parse_from_rfc3339(e["published_at"].as_str().unwrap()).is_ok());
    assert_eq!(e["payload"]["event_id"], ids[0].to_string());
    assert_eq!(e["payload"]["amount"], "10.00");
    assert_eq!(events[1]["published_at"], Value::Null);
}

#[tokio::test]
async fn events_filter_by_type_and_by_tenant() {
    let app = TestApp::spawn().await;
    let (a, b) = (new_tenant(), new_tenant());
    let paid_a = record(&app, "invoice.paid", &a, 2).await;
    let failed_a = record(&app, "payment.failed", &a, 1).await;
    let paid_b = record(&app, "invoice.paid", &b, 3).await;

    let r = app
        .get(
            &format!("/v1/events?tenant_id={a}&type=invoice.paid"),
            Auth::Admin,
        )
        .await;
    assert_status!(r, 200);
    assert_eq!(ids_of(&r), strings(&paid_a));
    assert_eq!(r.body["total"], 2);

    let r = app
        .get(&format!("/v1/events?tenant_id={a}"), Auth::Admin)
        .await;
    assert_eq!(ids_of(&r), strings(&[paid_a.clone(), failed_a].concat()));

    let r = app
        .get(&format!("/v1/events?tenant_id={b}"), Auth::Admin)
        .await;
    assert_eq!(ids_of(&r), strings(&paid_b));

    let r = app
        .get("/v1/events?type=invoice.paid&limit=100", Auth::Admin)
        .await;
    let all = ids_of(&r);
    assert!(paid_a
        .iter()
        .chain(&paid_b)
        .all(|id| all.contains(&id.to_string())));
    assert!(r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "invoice.paid"));

    let none = app
        .get(
            &format!("/v1/events?tenant_id={}", new_tenant()),
            Auth::Admin,
        )
        .await;
    assert_status!(none, 200);
    assert_eq!(none.body["total"], 0);
    assert_eq!(none.body["events"], json!([]));
}

#[tokio::test]
async fn only_super_admins_read_events() {
    let app = TestApp::spawn().await;
    let tenant = new_tenant();
    record(&app, "tenant.created", &tenant, 1).await;
    let path = format!("/v1/events?tenant_id={tenant}");
    assert_status!(app.get(&path, Auth::None).await, 401);
    for auth in [
        Auth::Service,
        Auth::TenantAdmin(tenant.clone()),
        Auth::TenantUser(tenant.clone()),
    ] {
        let r = app.get(&path, auth).await;
        assert_status!(r, 403);
        assert_eq!(r.error_code(), "forbidden");
    }
    assert_status!(app.get(&path, Auth::Admin).await, 200);
}

#[tokio::test]
async fn bad_cursors_limits_and_filters_are_422_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let cases = [
        ("after=abc", "after"),
        ("after=-1", "after"),
        ("after=1.5", "after"),
        ("starting_after=x", "starting_after"),
        ("after=1&starting_after=2", "after"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("type=Invoice.Paid", "type"),
        ("type=invoice..paid", "type"),
        ("tenant_id=../etc", "tenant_id"),
    ];
    for (query, field) in cases {
        let r = app.get(&format!("/v1/events?{query}"), Auth::Admin).await;
        assert_status!(r, 422);
        assert_eq!(field_names(&r), [field], "{query}: {}", r.body);
    }
    // An empty value means "not given".
    assert_status!(
        app.get("/v1/events?after=&type=&tenant_id=", Auth::Admin)
            .await,
        200
    );
}
