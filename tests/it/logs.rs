//! What the binary writes to its log when it is not a terminal: plain text (no ANSI colour
//! codes), every field of the access line once, and the embedded PostgreSQL's URL.

use crate::common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Runs `serve` on the test's database with stderr piped and `env` added, makes one request,
/// stops it with SIGTERM and returns everything it logged.
async fn serve_log(env: &[(&str, &str)]) -> String {
    let url = common::fresh_database().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-core"))
        .args(["serve", "--no-migrate"])
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", &url)
        .env("ENVIRONMENT", "test")
        .env("PORT", port.to_string())
        .env("SCHEDULER_ENABLED", "false")
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOG_FORMAT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "service did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let plans = client.get(format!("{base}/v1/plans")).send().await.unwrap();
    assert_eq!(plans.status(), 200);
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("stops")
        .unwrap();
    assert!(out.status.success(), "clean exit: {:?}", out.status);
    let mut log = String::from_utf8_lossy(&out.stderr).to_string();
    log.push_str(&String::from_utf8_lossy(&out.stdout));
    log
}

fn access_line<'a>(log: &'a str, route: &str) -> &'a str {
    log.lines()
        .find(|l| l.contains("request finished") && l.contains(route))
        .unwrap_or_else(|| panic!("no access line for {route} in:\n{log}"))
}

#[tokio::test]
async fn a_piped_log_is_plain_text_with_each_access_field_once() {
    let log = serve_log(&[]).await;
    assert!(
        !log.contains("\x1b["),
        "ANSI escape codes in a pipe:\n{log}"
    );
    let line = access_line(&log, "/v1/plans");
    for field in [
        "http.method=GET",
        "http.route=/v1/plans",
        "http.status=200",
        "request.id=",
    ] {
        assert_eq!(line.matches(field).count(), 1, "{field} once in: {line}");
    }
    assert!(log.contains("billing-core listening"), "{log}");
}

#[tokio::test]
async fn the_json_log_carries_the_request_fields_once() {
    let log = serve_log(&[("LOG_FORMAT", "json")]).await;
    assert!(!log.contains("\x1b["), "{log}");
    let line: Value = serde_json::from_str(access_line(&log, "/v1/plans")).unwrap();
    assert_eq!(line["span"]["http.method"], "GET", "{line}");
    assert_eq!(line["span"]["http.route"], "/v1/plans", "{line}");
    assert_eq!(line["http.status"], 200, "{line}");
    assert!(line.get("http.method").is_none(), "repeated: {line}");
    assert!(line.get("spans").is_none(), "repeated: {line}");
}

#[tokio::test]
async fn the_embedded_postgres_logs_the_url_it_serves_on() {
    let dir = std::env::temp_dir().join(format!("billing-it-embedded-{}", uuid::Uuid::new_v4()));
    let dir_str = dir.to_string_lossy().to_string();
    let run = |args: &'static [&'static str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-core"))
            .args(args)
            .current_dir(std::env::temp_dir())
            .env_remove("DATABASE_URL")
            .env("BILLING_PGDATA", &dir_str)
            .env("ENVIRONMENT", "test")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .output()
    };
    let started = run(&["db", "embedded"]).await.unwrap();
    let stopped = run(&["db", "embedded", "--stop"]).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("lock"));
    let log = String::from_utf8_lossy(&started.stderr);
    assert!(started.status.success(), "{log}");
    assert!(stopped.status.success());
    let url = String::from_utf8_lossy(&started.stdout).trim().to_string();
    assert!(url.starts_with("postgres://postgres@127.0.0.1:"), "{url}");
    let line = log
        .lines()
        .find(|l| l.contains("embedded PostgreSQL ready"))
        .unwrap_or_else(|| panic!("no start line in:\n{log}"));
    assert!(line.contains(&format!("url={url}")), "{line}");
    assert!(!log.contains("\x1b["), "{log}");
}
