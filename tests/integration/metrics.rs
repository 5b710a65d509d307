//! The ops listener: health, readiness and Prometheus metrics.

use crate::harness::{eventually, metric_value, Server};

#[tokio::test]
async fn metrics_show_requests_latency_and_certificate_expiry() {
    let server = Server::start();
    for _ in 0..3 {
        assert_eq!(server.get("/").await.status, 200);
    }
    assert_eq!(server.get("/missing").await.status, 404);
    let (status, text) = server.admin_get("/metrics").await;
    assert_eq!(status, 200);
    let ok = metric_value(
        &text,
        "bwgate_http_requests_total{route=\"/\",method=\"GET\",status=\"200\"}",
    );
    assert_eq!(ok, Some(3.0), "{text}");
    let missing = metric_value(
        &text,
        "bwgate_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}",
    );
    assert_eq!(missing, Some(1.0), "{text}");
    let count = metric_value(
        &text,
        "bwgate_http_request_duration_seconds_count{route=\"/\",method=\"GET\",status=\"200\"}",
    );
    assert_eq!(count, Some(3.0), "latency histogram: {text}");
    // Dev server certificate: valid one year.
    let expiry = text
        .lines()
        .find(|l| {
            l.starts_with("bwgate_tls_certificate_expiry_days{") && l.contains("cert=\"server\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("server certificate expiry gauge");
    assert!((363.0..=366.0).contains(&expiry), "expiry days {expiry}");
}

#[tokio::test]
async fn health_and_readiness() {
    let server = Server::start();
    assert_eq!(
        server.admin_get("/healthz").await,
        (200, "ok\n".to_string())
    );
    assert_eq!(
        server.admin_get("/readyz").await,
        (200, "ready\n".to_string())
    );
    assert_eq!(server.admin_get("/nope").await.0, 404);
}

#[tokio::test]
async fn unknown_flowthrough_elements_are_counted() {
    use crate::flowthrough::{add_user, demo, document, post};
    const METRIC: &str = "bwgate_flowthrough_unknown_elements_total";
    let server = Server::start();
    let d = demo(&server);
    let scrape = || async {
        let (status, text) = server.admin_get("/metrics").await;
        assert_eq!(status, 200);
        metric_value(&text, METRIC).unwrap_or(0.0)
    };
    let before = scrape().await;
    // Two elements the contract does not know, inside an AddUser.
    let op = add_user(
        "u1@unknown.example",
        "ent-unknown",
        Some("u1@unknown.example"),
    )
    .replace(
        "</AddUser>",
        "<nickName>Annie</nickName><vendorFlag>1</vendorFlag></AddUser>",
    );
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(None, &[op]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.text().contains("status=\"provisioning\""),
        "{}",
        resp.text()
    );
    assert_eq!(scrape().await, before + 2.0, "two unknown elements counted");
    // A document without unknown elements leaves the counter alone.
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            None,
            &[add_user(
                "u2@unknown.example",
                "ent-unknown",
                Some("u2@unknown.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(scrape().await, before + 2.0);
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_stderr_line() {
    let server = Server::start_with(None, &["--log-format", "json"]);
    // A failed request is logged at info (with its TrackingID).
    assert_eq!(server.get("/missing").await.status, 404);
    let lines = eventually(
        server.with_logs("a request log line"),
        std::time::Duration::from_secs(10),
        || async {
            let stderr = std::fs::read_to_string(server.path("stderr.log")).unwrap_or_default();
            let lines: Vec<String> = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
            if lines
                .iter()
                .any(|l| l.contains("TrackingID") || l.contains("tracking_id"))
            {
                Ok(lines)
            } else {
                Err(lines.len())
            }
        },
    )
    .await;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        assert!(v.get("level").is_some(), "no level: {line}");
        assert!(v.get("timestamp").is_some(), "no timestamp: {line}");
    }
}
