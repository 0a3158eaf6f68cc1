//! `/metrics` as Prometheus reads it: bounded label values whatever clients send, and a HELP
//! line for every series.
use crate::common;

use std::collections::BTreeSet;

use common::{Auth, TestApp};
use futures::future::join_all;

const PATHS: [&str; 5] = [
    "/v1/plans",
    "/api/v1/plans/starter",
    "/healthz",
    "/v1/tenants/farm-1/usage",
    "/no/such/route",
];

const STANDARD: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
];

async fn scrape(app: &TestApp) -> String {
    let r = app.get("/metrics", Auth::None).await;
    assert_status!(r, 200);
    r.body.as_str().expect("prometheus text").to_string()
}

/// Sends `n` requests, each with a method name nobody has used before.
async fn made_up_methods(app: &TestApp, tag: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        join_all(chunk.iter().map(|i| {
            let method = reqwest::Method::from_bytes(format!("{tag}{i}").as_bytes()).unwrap();
            let url = app.url(PATHS[i % PATHS.len()]);
            app.send(app.client.request(method, url), &Auth::None)
        }))
        .await;
    }
}

/// The `http_requests_total` series (label sets) and their summed count (Prometheus writes
/// counters as floats).
#[allow(clippy::float_arithmetic)]
fn request_series(text: &str) -> (BTreeSet<String>, f64) {
    let mut series = BTreeSet::new();
    let mut total = 0.0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
    {
        let (labels, value) = line.rsplit_once(' ').unwrap();
        series.insert(labels.to_string());
        total += value.parse::<f64>().unwrap();
    }
    (series, total)
}

fn method_values(text: &str) -> BTreeSet<String> {
    text.split("method=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn three_thousand_made_up_methods_add_no_series() {
    let app = TestApp::spawn().await;
    made_up_methods(&app, "WARMUP", 50).await;
    let before = scrape(&app).await;
    let other = |text: &str| {
        let (series, total) = request_series(text);
        let series: BTreeSet<String> = series
            .into_iter()
            .filter(|s| s.contains(r#"method="OTHER""#))
            .collect();
        let count = text
            .lines()
            .filter(|l| l.starts_with("http_requests_total{") && l.contains(r#"method="OTHER""#))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>();
        (series, count, total)
    };
    let (series_before, count_before, _) = other(&before);
    assert!(!series_before.is_empty(), "{before}");

    made_up_methods(&app, "BREW", 3_000).await;
    let after = scrape(&app).await;
    let (series_after, count_after, _) = other(&after);
    assert_eq!(
        series_after, series_before,
        "made-up methods made new series"
    );
    // The requests that reach the metrics layer are still counted, under OTHER.
    assert!(
        count_after - count_before >= 500.0,
        "{count_before} → {count_after}: {series_after:?}"
    );
    for m in method_values(&after) {
        assert!(
            STANDARD.contains(&m.as_str()),
            "method label {m:?} in:\n{after}"
        );
    }
    assert!(!after.contains("BREW"), "a made-up method became a label");
}

/// Every exported series has one line of HELP; `promtool check metrics` (Debian package
/// `prometheus`), when installed, finds nothing to complain about.
#[tokio::test]
async fn every_series_has_help_text_and_promtool_accepts_the_page() {
    let app = TestApp::spawn().await;
    for path in PATHS {
        app.get(path, Auth::None).await;
    }
    let text = scrape(&app).await;
    let names = |prefix: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect()
    };
    let (typed, helped) = (names("# TYPE "), names("# HELP "));
    assert!(typed.contains("http_requests_total"), "{text}");
    let missing: Vec<_> = typed.difference(&helped).collect();
    assert!(missing.is_empty(), "no HELP for {missing:?} in:\n{text}");

    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed; HELP checked by hand only");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
