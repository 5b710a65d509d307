//! `bwgate load` end to end: real provisioning with unique ids, full
//! handshakes per request, and the loopback-only rule. Bounded by
//! `--requests`, loopback only.

use std::process::{Command, Output};

use crate::flowthrough::subscriber;
use crate::harness::{metric_value, Server, BIN};

fn load(server: &Server, args: &[&str]) -> Output {
    let certs = server.certs();
    Command::new(BIN)
        .arg("load")
        .arg("--demo")
        .arg(server.path("data/demo-template.json"))
        .arg("--cacert")
        .arg(certs.join("ca.crt"))
        .arg("--cert")
        .arg(certs.join("client.crt"))
        .arg("--key")
        .arg(certs.join("client.key"))
        .args(["--duration", "120s", "--timeout", "20s", "--json"])
        .args(args)
        .output()
        .expect("run bwgate load")
}

pub fn report(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "bwgate load failed ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn handshakes(server: &Server) -> f64 {
    let (status, text) = server.admin_get("/metrics").await;
    assert_eq!(status, 200);
    metric_value(&text, "bwgate_tls_handshakes_total").unwrap_or(0.0)
}

#[tokio::test]
async fn load_provisions_a_new_subscriber_per_request() {
    let server = Server::start();
    let out = load(&server, &["--requests", "200", "--connections", "4"]);
    let r = report(&out);
    assert_eq!(r["requests"], 200, "{r}");
    assert_eq!(r["responses"], 200, "{r}");
    assert_eq!(r["ok"], 200, "{r}");
    assert_eq!(r["status"], serde_json::json!({"200": 200}), "{r}");
    assert_eq!(r["error_codes"], serde_json::json!({}), "{r}");
    assert_eq!(r["transport_errors"], serde_json::json!({}), "{r}");
    assert_eq!(r["connections_opened"], 4, "keep-alive: {r}");
    let l = &r["latency_us"];
    assert_eq!(l["count"], 200, "{r}");
    let (p50, p99, max) = (
        l["p50"].as_u64().unwrap(),
        l["p99"].as_u64().unwrap(),
        l["max"].as_u64().unwrap(),
    );
    assert!(p50 >= 1 && p50 <= p99 && p99 <= max, "{r}");
    assert!(r["throughput"].as_f64().unwrap() > 0.0, "{r}");

    // Ids are `load-{run}-{n}@…`, n = 0..200: the first and the last exist.
    let run = r["run"].as_str().unwrap();
    for n in [0, 199] {
        let user_id = format!("load-{run}-{n}@load.bwgate.example");
        let (code, v) = subscriber(&server, &user_id).await;
        assert_eq!(code, 200, "{user_id} was provisioned: {v}");
        assert_eq!(v["subscriber"]["userId"], user_id.as_str(), "{v}");
    }
    let (code, _) = subscriber(&server, &format!("load-{run}-200@load.bwgate.example")).await;
    assert_eq!(code, 404, "exactly --requests documents were sent");

    // A second run gets a new run token: new subscribers, not replays.
    let r2 = report(&load(&server, &["--requests", "5", "--connections", "1"]));
    assert_ne!(r2["run"], r["run"]);
    assert_eq!(r2["ok"], 5, "{r2}");
}

#[tokio::test]
async fn handshake_mode_does_a_full_handshake_per_request() {
    let server = Server::start();
    let before = handshakes(&server).await;
    let r = report(&load(
        &server,
        &[
            "--mode",
            "handshake",
            "--requests",
            "20",
            "--connections",
            "2",
        ],
    ));
    assert_eq!(r["requests"], 20, "{r}");
    assert_eq!(r["ok"], 20, "{r}");
    assert_eq!(r["connections_opened"], 20, "{r}");
    assert_eq!(r["full_handshakes"], 20, "{r}");
    assert_eq!(r["resumed_handshakes"], 0, "resumption is off: {r}");
    let after = handshakes(&server).await;
    assert!(
        after - before >= 20.0,
        "server counted {before} -> {after} handshakes"
    );
}

#[tokio::test]
async fn http2_and_fixed_rate_work_against_the_server() {
    let server = Server::start();
    let r = report(&load(
        &server,
        &[
            "--http",
            "2",
            "--rate",
            "200",
            "--requests",
            "40",
            "--connections",
            "2",
        ],
    ));
    assert_eq!(r["alpn"], "h2", "{r}");
    assert_eq!(r["ok"], 40, "{r}");
    assert_eq!(r["rate"], 200.0, "{r}");
    // 40 requests at 200/s are spread over ~0.2 s, not sent at once.
    assert!(r["duration_secs"].as_f64().unwrap() >= 0.18, "{r}");
}

#[test]
fn non_loopback_targets_are_refused() {
    for url in [
        "https://10.1.2.3:8443/uc-one/v1/provisioning/x",
        "https://192.168.0.1/",
        "https://8.8.8.8/",
        "https://example.com/",
    ] {
        let out = Command::new(BIN)
            .args(["load", "--url", url, "--requests", "1"])
            .output()
            .expect("run bwgate load");
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing to send load") && err.contains("only loopback"),
            "{url}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

/// `bwgate bench-store` (the anchor of scripts/bench.sh) provisions for
/// real: its data directory afterwards holds every AddUser it counted,
/// provisioned through the outbox.
#[test]
fn bench_store_counts_only_stored_and_delivered_add_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args([
            "bench-store",
            "--seconds",
            "1",
            "--concurrency",
            "4",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run bwgate bench-store");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let n = report["add_users"].as_u64().expect("add_users");
    assert!(n > 0, "{report}");
    assert!(
        report["ok_throughput"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    assert!(
        report["cpu_us_per_add_user"].as_f64().unwrap_or(0.0) > 0.0,
        "{report}"
    );
    let db = rusqlite::Connection::open(dir.path().join("bwgate.db")).expect("open db");
    let count =
        |sql: &str| -> u64 { db.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql) as u64 };
    assert_eq!(count("SELECT count(*) FROM subscribers"), n);
    assert_eq!(
        count("SELECT count(*) FROM outbox WHERE kind = 'ProvisionSubscriber' AND state = 'delivered'"),
        n,
        "every counted AddUser was delivered before the tool stopped"
    );
}
