//! The ops listener: health, readiness and Prometheus metrics.

use crate::harness::{metric_value, Server};

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
