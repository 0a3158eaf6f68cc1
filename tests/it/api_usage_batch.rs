use crate::common;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use common::{Auth, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

const BATCH: &str = "/v1/usage/batch";

/// A tenant with one subscription in period [2026-03-01, 2026-04-01); the clock is mid-period.
async fn tenant_with(app: &TestApp, plan: &str, status: &str) -> String {
    let tid = format!("farm-{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO tenants (tenant_id, name, name_ar, email, phone) VALUES ($1, 'Farm', 'مزرعة', 'f@example.com', '+967771234567')",
    )
    .bind(&tid)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscriptions (subscription_id, tenant_id, plan_id, status, billing_cycle, anchor_day,
             start_date, end_date, next_billing_date)
         VALUES ($1, $2, $3, $4::subscription_status, 'monthly', 1, $5, $6, $6)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(&tid)
    .bind(plan)
    .bind(status)
    .bind(date(2026, 3, 1))
    .bind(date(2026, 4, 1))
    .execute(&app.pool)
    .await
    .unwrap();
    app.clock.set(at(2026, 3, 10, 12));
    tid
}

async fn counter(app: &TestApp, t: &str, metric: &str, window: NaiveDate) -> Option<(i64, i64)> {
    sqlx::query_as("SELECT used, peak FROM usage_counters WHERE tenant_id = $1 AND metric = $2 AND window_start = $3")
        .bind(t)
        .bind(metric)
        .bind(window)
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

async fn record_sum(app: &TestApp, t: &str, metric: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT count(*), COALESCE(SUM(quantity), 0)::bigint FROM usage_records WHERE tenant_id = $1 AND metric = $2",
    )
    .bind(t)
    .bind(metric)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn ev(t: &str, metric: &str, quantity: i64, event_id: &str) -> Value {
    json!({"tenant_id": t, "metric": metric, "quantity": quantity, "event_id": event_id})
}

fn rejected_indexes(body: &Value) -> Vec<u64> {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect()
}

fn rejected_code(body: &Value, index: u64) -> String {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["index"] == index)
        .map(|r| r["error"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_mixed_batch_reports_exact_accepted_duplicates_and_rejected_indexes() {
    let app = TestApp::spawn().await;
    let a = tenant_with(&app, "starter", "active").await;
    let suspended = tenant_with(&app, "starter", "suspended").await;
    let canceled = tenant_with(&app, "starter", "canceled").await;
    let ai = "ai_diagnoses_per_month";
    let pre = app
        .post(
            &format!("/v1/tenants/{a}/usage"),
            Auth::Service,
            json!({"metric": ai, "quantity": 2, "event_id": "pre-1"}),
        )
        .await;
    assert_status!(pre, 201);

    let mut no_id = ev(&a, ai, 1, "x");
    no_id.as_object_mut().unwrap().remove("event_id");
    let mut early = ev(&a, "satellite_analyses_per_month", 2, "e5");
    early["timestamp"] = json!("2026-02-27T10:00:00Z");
    let events = json!([
        ev(&a, ai, 3, "e1"),              // 0 accepted
        ev(&a, ai, 4, "e2"),              // 1 accepted
        ev(&a, ai, 1, "e1"),              // 2 duplicate inside the batch
        ev(&a, ai, 5, "pre-1"),           // 3 duplicate of an earlier event
        ev(&a, ai, 0, "e3"),              // 4 bad quantity
        ev("nobody", ai, 1, "e1"),        // 5 unknown tenant
        ev(&a, "drone_flights", 1, "e6"), // 6 unknown metric
        json!({"tenant_id": a, "metric": ai, "quantity": "x", "event_id": "e7"}), // 7 wrong type
        no_id,                            // 8 no event id
        ev(&suspended, ai, 1, "e1"),      // 9 suspended
        ev(&canceled, ai, 1, "e1"),       // 10 no live subscription
        ev(&a, "api_calls_per_day", 10, "e4"), // 11 accepted (daily window)
        early,                            // 12 before the period
        json!({"tenant_id": a, "metric": "fields", "action": "set", "quantity": 4, "event_id": "g1"}), // 13
        ev(&a, "fields", -10, "g2"), // 14 level floors at 0
        ev(&a, "fields", 3, "g3"),   // 15
    ]);
    let r = app
        .post(BATCH, Auth::Service, json!({"events": events}))
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["accepted"], 6);
    assert_eq!(r.body["duplicates"], 2);
    assert_eq!(rejected_indexes(&r.body), [4, 5, 6, 7, 8, 9, 10, 12]);
    assert_eq!(rejected_code(&r.body, 4), "validation_error");
    assert_eq!(rejected_code(&r.body, 5), "not_found");
    assert_eq!(rejected_code(&r.body, 6), "unknown_metric");
    assert_eq!(rejected_code(&r.body, 7), "validation_error");
    assert_eq!(rejected_code(&r.body, 8), "validation_error");
    assert_eq!(rejected_code(&r.body, 9), "subscription_suspended");
    assert_eq!(rejected_code(&r.body, 10), "no_active_subscription");
    assert_eq!(rejected_code(&r.body, 12), "validation_error");

    assert_eq!(record_sum(&app, &a, ai).await, (3, 9));
    assert_eq!(counter(&app, &a, ai, date(2026, 3, 1)).await, Some((9, 9)));
    assert_eq!(
        counter(&app, &a, "api_calls_per_day", date(2026, 3, 10)).await,
        Some((10, 10))
    );
    assert_eq!(
        counter(&app, &a, "fields", date(2026, 3, 1)).await,
        Some((3, 4))
    );
    assert_eq!(record_sum(&app, &suspended, ai).await, (0, 0));
}

#[tokio::test]
async fn a_second_identical_batch_is_all_duplicates_and_counts_nothing() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let events: Vec<Value> = (0..5)
        .map(|i| ev(&t, "satellite_analyses_per_month", 4, &format!("b-{i}")))
        .collect();
    let body = json!({"events": events});
    let first = app.post(BATCH, Auth::Admin, body.clone()).await;
    assert_status!(first, 200);
    // Quotas are not enforced on batches: 20 on a free limit of 10 is metered.
    assert_eq!(
        (
            first.body["accepted"].as_u64(),
            first.body["duplicates"].as_u64()
        ),
        (Some(5), Some(0))
    );
    let again = app.post(BATCH, Auth::Service, body).await;
    assert_status!(again, 200);
    assert_eq!(
        (
            again.body["accepted"].as_u64(),
            again.body["duplicates"].as_u64()
        ),
        (Some(0), Some(5))
    );
    assert_eq!(
        counter(&app, &t, "satellite_analyses_per_month", date(2026, 3, 1)).await,
        Some((20, 20))
    );
}

#[tokio::test]
async fn identical_batches_racing_count_each_event_once() {
    let app = TestApp::spawn().await;
    let a = tenant_with(&app, "starter", "active").await;
    let b = tenant_with(&app, "professional", "active").await;
    let mut events = Vec::new();
    for i in 0..300 {
        let (t, m) = match i % 3 {
            0 => (&a, "ai_diagnoses_per_month"),
            1 => (&b, "pdf_reports_per_month"),
            _ => (&b, "api_calls_per_day"),
        };
        events.push(ev(t, m, (i % 7) + 1, &format!("race-{i}")));
    }
    // Different orders, so the two batches reach the shared rows in different sequences.
    let mut reversed = events.clone();
    reversed.reverse();
    let bodies = [
        json!({"events": events}),
        json!({"events": reversed}),
        json!({"events": events}),
    ];
    let rs = join_all(
        bodies
            .iter()
            .map(|b| app.post(BATCH, Auth::Service, b.clone())),
    )
    .await;
    for r in &rs {
        assert_status!(r, 200);
    }
    let accepted: u64 = rs
        .iter()
        .map(|r| r.body["accepted"].as_u64().unwrap())
        .sum();
    let dups: u64 = rs
        .iter()
        .map(|r| r.body["duplicates"].as_u64().unwrap())
        .sum();
    assert_eq!((accepted, dups), (300, 600));
    let expect = |k: i64| {
        (0..300)
            .filter(|i| i % 3 == k)
            .map(|i| (i % 7) + 1)
            .sum::<i64>()
    };
    assert_eq!(
        counter(&app, &a, "ai_diagnoses_per_month", date(2026, 3, 1)).await,
        Some((expect(0), expect(0)))
    );
    assert_eq!(
        counter(&app, &b, "pdf_reports_per_month", date(2026, 3, 1)).await,
        Some((expect(1), expect(1)))
    );
    assert_eq!(
        counter(&app, &b, "api_calls_per_day", date(2026, 3, 10)).await,
        Some((expect(2), expect(2)))
    );
    assert_eq!(record_sum(&app, &b, "pdf_reports_per_month").await.0, 100);
}

#[tokio::test]
async fn ten_thousand_events_over_one_mebibyte_are_accepted_and_ten_thousand_and_one_are_422() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "enterprise", "active").await;
    let pad = "p".repeat(80);
    let events: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut e = ev(&t, "api_calls_per_day", 1, &format!("big-{i}"));
            e["metadata"] = json!({"pad": pad});
            e
        })
        .collect();
    let body = json!({"events": events});
    assert!(body.to_string().len() > 1024 * 1024);
    let ok = app.post(BATCH, Auth::Service, body).await;
    assert_status!(ok, 200);
    assert_eq!(ok.body["accepted"], 10_000);
    assert_eq!(
        counter(&app, &t, "api_calls_per_day", date(2026, 3, 10)).await,
        Some((10_000, 10_000))
    );

    let over: Vec<Value> = (0..10_001)
        .map(|i| ev(&t, "api_calls_per_day", 1, &format!("over-{i}")))
        .collect();
    let r = app
        .post(BATCH, Auth::Service, json!({"events": over}))
        .await;
    assert_status!(r, 422);
    assert_eq!(r.body["fields"][0]["field"], "events");
    assert_status!(
        app.post(BATCH, Auth::Service, json!({"events": []})).await,
        422
    );
    assert_status!(
        app.post(BATCH, Auth::Service, json!({"events": "x"})).await,
        422
    );
    assert_status!(
        app.post_raw(BATCH, Auth::Service, "{\"events\": [").await,
        422
    );
    let huge = format!("{{\"events\": [\"{}\"]}}", "x".repeat(17 * 1024 * 1024));
    let too_big = app.post_raw(BATCH, Auth::Service, &huge).await;
    assert_status!(too_big, 413);
    assert_eq!(too_big.error_code(), "payload_too_large");
}

#[tokio::test]
async fn tenant_roles_get_403_and_anonymous_callers_401_on_batches() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let body = json!({"events": [ev(&t, "ai_diagnoses_per_month", 1, "r-1")]});
    for auth in [Auth::TenantAdmin(t.clone()), Auth::TenantUser(t.clone())] {
        let r = app.post(BATCH, auth, body.clone()).await;
        assert_status!(r, 403);
    }
    assert_status!(app.post(BATCH, Auth::None, body.clone()).await, 401);
    assert_eq!(record_sum(&app, &t, "ai_diagnoses_per_month").await, (0, 0));
    let ok = app.post(&format!("/api{BATCH}"), Auth::Admin, body).await;
    assert_status!(ok, 200);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_batch_response() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let body = json!({"events": [ev(&t, "ai_diagnoses_per_month", 2, "i-1")]});
    let first = app
        .post_idem(BATCH, Auth::Service, "batch-k1", body.clone())
        .await;
    assert_status!(first, 200);
    assert_eq!(first.body["accepted"], 1);
    let again = app
        .post_idem(&format!("/api{BATCH}"), Auth::Service, "batch-k1", body)
        .await;
    assert_status!(again, 200);
    assert_eq!(again.body["accepted"], 1);
    assert!(again.headers.contains_key("idempotent-replayed"));
    let other = app
        .post_idem(
            BATCH,
            Auth::Service,
            "batch-k1",
            json!({"events": [ev(&t, "ai_diagnoses_per_month", 3, "i-2")]}),
        )
        .await;
    assert_status!(other, 409);
    assert_eq!(other.error_code(), "idempotency_key_reused");
}

#[tokio::test]
async fn the_usage_report_sums_counters_over_the_range_and_tracks_gauge_peaks() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "starter", "active").await;
    let other = tenant_with(&app, "starter", "active").await;
    let sat = "satellite_analyses_per_month";
    let mut e1 = ev(&t, sat, 3, "s1");
    e1["timestamp"] = json!("2026-03-02T08:00:00Z");
    let mut e2 = ev(&t, sat, 4, "s2");
    e2["timestamp"] = json!("2026-03-09T08:00:00Z");
    let gauge_set = json!({"tenant_id": t, "metric": "fields", "action": "set", "quantity": 7, "event_id": "f1"});
    let r = app
        .post(
            BATCH,
            Auth::Service,
            json!({"events": [e1, e2, gauge_set, ev(&t, "fields", -5, "f2")]}),
        )
        .await;
    assert_eq!(r.body["accepted"], 4, "{}", r.body);

    let path = format!("/v1/tenants/{t}/usage");
    let all = app.get(&path, Auth::TenantUser(t.clone())).await;
    assert_status!(all, 200);
    assert_eq!(all.body["tenant_id"], t.as_str());
    assert_eq!(
        (all.body["from"].as_str(), all.body["to"].as_str()),
        (Some("2026-03-01"), Some("2026-04-01"))
    );
    assert_eq!(
        all.body["metrics"][sat],
        json!({"kind": "period_counter", "used": 7, "limit": 50})
    );
    assert_eq!(
        all.body["metrics"]["fields"],
        json!({"kind": "gauge", "used": 2, "limit": 10, "peak": 7, "current": 2})
    );
    assert_eq!(all.body["metrics"].as_object().unwrap().len(), 7);

    let part = app
        .get(
            &format!("{path}?from=2026-03-05&to=2026-03-10"),
            Auth::TenantAdmin(t.clone()),
        )
        .await;
    assert_eq!(part.body["metrics"][sat]["used"], 4);
    let none = app
        .get(
            &format!("{path}?from=2026-03-03&to=2026-03-05"),
            Auth::Admin,
        )
        .await;
    assert_eq!(none.body["metrics"][sat]["used"], 0);

    // Next period: the level carries over, and March keeps its own peak.
    app.clock.set(at(2026, 4, 3, 9));
    let up = app
        .post(
            BATCH,
            Auth::Service,
            json!({"events": [ev(&t, "fields", 1, "f3")]}),
        )
        .await;
    assert_eq!(up.body["accepted"], 1);
    let april = app.get(&path, Auth::Service).await;
    assert_eq!(april.body["from"], "2026-04-01");
    assert_eq!(april.body["metrics"]["fields"]["peak"], 3);
    assert_eq!(april.body["metrics"][sat]["used"], 0);
    let march = app
        .get(
            &format!("{path}?from=2026-03-01&to=2026-04-01"),
            Auth::Service,
        )
        .await;
    assert_eq!(
        march.body["metrics"]["fields"],
        json!({"kind": "gauge", "used": 2, "limit": 10, "peak": 7, "current": 3})
    );
    assert_eq!(march.body["metrics"][sat]["used"], 7);

    for q in [
        "from=2026-13-01",
        "to=yesterday",
        "from=2026-03-10&to=2026-03-01",
    ] {
        let bad = app.get(&format!("{path}?{q}"), Auth::Service).await;
        assert_status!(bad, 422);
        assert_eq!(bad.error_code(), "validation_error", "{q}");
    }
    assert_status!(app.get(&path, Auth::TenantUser(other)).await, 404);
    assert_status!(app.get("/v1/tenants/nobody/usage", Auth::Admin).await, 404);
    assert_status!(app.get(&path, Auth::None).await, 401);
}

#[tokio::test]
async fn enforce_follows_a_status_or_plan_change_within_the_cache_ttl() {
    let app = TestApp::spawn().await;
    let t = tenant_with(&app, "free", "active").await;
    let sat = "/v1/enforce?metric=satellite_analyses_per_month&quantity=10";
    let me = || Auth::TenantUser(t.clone());
    let first = app.get(sat, me()).await;
    assert_status!(first, 200);
    assert_eq!(first.body["limit"], 10);

    // Usage is never cached: it shows at once.
    assert_status!(
        app.post(
            &format!("/v1/tenants/{t}/usage"),
            Auth::Service,
            json!({"metric": "satellite_analyses_per_month", "quantity": 4})
        )
        .await,
        201
    );
    let after_use = app.get(sat, me()).await;
    assert_status!(after_use, 429);
    assert_eq!(after_use.body["used"], 4);

    let ttl = app.usage_cache.ttl();
    sqlx::query("UPDATE subscriptions SET status = 'suspended' WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    let refused = app.get(sat, me()).await;
    assert_status!(refused, 402);
    assert_eq!(refused.error_code(), "subscription_suspended");

    sqlx::query(
        "UPDATE subscriptions SET status = 'active', plan_id = 'starter' WHERE tenant_id = $1",
    )
    .bind(&t)
    .execute(&app.pool)
    .await
    .unwrap();
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    let upgraded = app.get(sat, me()).await;
    assert_status!(upgraded, 200);
    assert_eq!(
        (
            upgraded.body["limit"].as_i64(),
            upgraded.body["used"].as_i64()
        ),
        (Some(50), Some(4))
    );

    // A write in this process can skip the wait.
    sqlx::query("UPDATE subscriptions SET plan_id = 'professional' WHERE tenant_id = $1")
        .bind(&t)
        .execute(&app.pool)
        .await
        .unwrap();
    app.usage_cache.invalidate_tenant(&t);
    let now = app.get(sat, me()).await;
    assert_eq!(now.body["limit"], 200);
}

/// Events are parsed one by one from the body's text: a NUL character (which PostgreSQL text
/// cannot hold) or a non-object rejects only its own event, and bodies that are not a batch
/// are 422 as a whole.
#[tokio::test]
async fn nul_characters_and_malformed_events_reject_only_their_event() {
    let app = TestApp::spawn().await;
    let a = tenant_with(&app, "starter", "active").await;
    let ai = "ai_diagnoses_per_month";
    let mut in_metadata = ev(&a, ai, 1, "n3");
    in_metadata["metadata"] = json!({"note": {"deep": "a\u{0}b"}});
    let events = json!([
        ev(&a, ai, 1, "n1"),         // 0 accepted
        ev(&a, ai, 1, "bad\u{0}id"), // 1 NUL in the event id
        in_metadata,                 // 2 NUL deep in metadata
        7,                           // 3 not an object
        ev(&a, ai, 2, "n4"),         // 4 accepted
    ]);
    let r = app
        .post(BATCH, Auth::Service, json!({"events": events}))
        .await;
    assert_status!(r, 200);
    assert_eq!(r.body["accepted"], 2);
    assert_eq!(rejected_indexes(&r.body), [1, 2, 3]);
    let field = |i: usize| r.body["rejected"][i]["fields"][0]["field"].clone();
    assert_eq!(field(0), "event_id");
    assert_eq!(field(1), "metadata.note.deep");
    assert_eq!(field(2), "event");
    assert_eq!(record_sum(&app, &a, ai).await, (2, 3));

    for body in [
        "",
        "{\"events\": [",
        "{\"events\": 5}",
        "{}",
        "[1]",
        "{\"events\": []} trailing",
    ] {
        let r = app.post_raw(BATCH, Auth::Service, body).await;
        assert_status!(r, 422);
        assert_eq!(r.error_code(), "validation_error", "{body}: {}", r.body);
    }
}

/// A NUL in a metadata key (or in a value a serde message would quote) rejects only its event,
/// and the answer, which names the key, is storable: under an Idempotency-Key the valid events
/// are written and a retry replays the same answer instead of failing with 500 every time.
#[tokio::test]
async fn a_nul_in_a_metadata_key_is_a_per_event_rejection_with_or_without_a_key() {
    let app = TestApp::spawn().await;
    let a = tenant_with(&app, "starter", "active").await;
    let ai = "ai_diagnoses_per_month";
    let batch = |tag: &str| {
        let mut key_nul = ev(&a, ai, 1, &format!("{tag}-2"));
        key_nul["metadata"] = json!({"farm\u{0}id": "f-1"});
        let mut action_nul = ev(&a, ai, 1, &format!("{tag}-3"));
        action_nul["action"] = json!("incr\u{0}ement");
        json!({"events": [
            ev(&a, ai, 1, &format!("{tag}-1")),
            key_nul,
            action_nul,
            ev(&a, ai, 2, &format!("{tag}-4")),
        ]})
    };
    let check = |r: &common::Resp| {
        assert_status!(r, 200);
        assert_eq!(r.body["accepted"], 2, "{}", r.body);
        assert_eq!(rejected_indexes(&r.body), [1, 2]);
        let rej = &r.body["rejected"];
        assert_eq!(rej[0]["fields"][0]["field"], "metadata.farm\\u0000id");
        assert_eq!(rej[1]["fields"][0]["field"], "action");
        assert!(
            !billing_core::storable::has_nul(&r.body),
            "no NUL is echoed: {}",
            r.body
        );
    };

    let body = batch("k");
    let first = app
        .post_idem(BATCH, Auth::Service, "nul-batch", body.clone())
        .await;
    check(&first);
    assert_eq!(record_sum(&app, &a, ai).await, (2, 3));
    for _ in 0..2 {
        let again = app
            .post_idem(BATCH, Auth::Service, "nul-batch", body.clone())
            .await;
        check(&again);
        assert!(again.headers.contains_key("idempotent-replayed"));
        assert_eq!(again.body, first.body);
    }
    assert_eq!(record_sum(&app, &a, ai).await, (2, 3));

    let plain = app.post(BATCH, Auth::Service, batch("p")).await;
    check(&plain);
    assert_eq!(record_sum(&app, &a, ai).await, (4, 6));
}
