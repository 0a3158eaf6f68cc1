//! The harness drops each test's database when the test ends, also when it ends in a panic, and
//! not while another app (a second replica) still uses it.

use std::str::FromStr;

use crate::common::{self, TestApp};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

async fn name_of(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn exists(any_url: &str, name: &str) -> bool {
    let admin = PgConnectOptions::from_str(any_url)
        .unwrap()
        .database("postgres");
    let mut conn = PgConnection::connect_with(&admin).await.unwrap();
    let found = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    found
}

#[tokio::test]
async fn the_database_outlives_the_first_app_and_goes_with_the_last() {
    let a = TestApp::spawn().await;
    let (url, name) = (a.database_url.to_string(), name_of(&a).await);
    let b = TestApp::spawn_on(&a.database_url, |_| {}).await;
    drop(a);
    assert!(exists(&url, &name).await);
    assert_eq!(name_of(&b).await, name, "the replica still works");
    drop(b);
    assert!(!exists(&url, &name).await, "{name} left behind");
}

#[tokio::test]
async fn a_database_given_only_as_a_url_goes_with_the_url() {
    let url = common::fresh_database().await;
    let name = PgConnectOptions::from_str(&url)
        .unwrap()
        .get_database()
        .unwrap()
        .to_string();
    let plain = url.to_string();
    assert!(exists(&plain, &name).await);
    drop(url);
    assert!(!exists(&plain, &name).await, "{name} left behind");
}

#[tokio::test]
async fn a_panicking_test_drops_its_database_too() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A test body that panics while its app (and its pool's connections) are alive.
    let body = tokio::spawn(async move {
        let app = TestApp::spawn().await;
        tx.send((app.database_url.to_string(), name_of(&app).await))
            .unwrap();
        panic!("a failing test (on purpose)");
    });
    assert!(body.await.unwrap_err().is_panic());
    let (url, name) = rx.await.unwrap();
    assert!(!exists(&url, &name).await, "{name} left behind");
}
