//! `bwgate load --hold-channels` against the real binary: a user's bearer
//! JWT (from the auth service, the password checked at the stand-in XSP)
//! opens Xsi-Events channels up to `max_channels_per_owner`, holds them with
//! heartbeats, and deletes them; over HTTP/2 (streams multiplexed on two
//! connections) and HTTP/1.1 (a connection per channel).

use std::process::Command;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde_json::Value;

use crate::email::Relay;
use crate::flowthrough::{document, post};
use crate::harness::{Server, BIN};
use crate::signin::{config, Xsp, AUTH};

const USER: &str = "kim@bw.example";
const PASSWORD: &str = "Kim-secret-1";

/// A bearer JWT for `USER` from `GET /authService/token/{userId}`.
async fn bearer(server: &Server) -> String {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("/authService/token/{USER}"))
        .header("authorization", basic)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = server.client().request(req).await.expect("token request");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["token"]["bearer"].as_str().unwrap().to_string()
}

fn hold(server: &Server, jwt: &str, http: &str) -> Value {
    let certs = server.certs();
    let url = format!("https://localhost:{}/", server.https.port());
    let out = Command::new(BIN)
        .args(["load", "--url", &url, "--http", http, "--connections", "2"])
        .args(["--hold-channels", "20", "--duration", "3s"])
        .args(["--heartbeat-every", "1s", "--timeout", "10s", "--json"])
        .args(["--server-pid", &server.pid().to_string()])
        .arg("--cacert")
        .arg(certs.join("ca.crt"))
        .arg("--cert")
        .arg(certs.join("client.crt"))
        .arg("--key")
        .arg(certs.join("client.key"))
        .env("BWGATE_LOAD_BEARER", jwt)
        .output()
        .expect("run bwgate load --hold-channels");
    crate::load::report(&out)
}

#[tokio::test]
async fn load_holds_channels_up_to_the_owner_limit_and_ends_them_cleanly() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let cfg = format!(
        "{}\n[xsi.events]\nmax_channels_per_owner = 15\n",
        config(&relay, receiver.port, xsp.port)
    );
    let server = Server::start_with(Some(&cfg), &[]);
    let add = format!(
        "<AddUser><userId>{USER}</userId><serviceProviderId>globex</serviceProviderId>\
<groupId>sales</groupId><firstName>Kim</firstName><lastName>Ito</lastName>\
<phoneNumber>+1-240-555-0177</phoneNumber></AddUser>"
    );
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        document(None, &[add]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let jwt = bearer(&server).await;

    // HTTP/2 first, then HTTP/1.1 on the same server: the second run gets
    // 15 channels again only if the first one's DELETEs freed them.
    for (http, alpn, connections) in [("2", "h2", 2), ("1", "http/1.1", 2 + 20)] {
        let started = Instant::now();
        let r = hold(&server, &jwt, http);
        let took = started.elapsed();
        let ctx = format!("HTTP/{http}: {r}\n{}", server.logs());
        assert_eq!(r["alpn"], alpn, "{ctx}");
        assert_eq!(r["connections_opened"], connections, "{ctx}");
        assert_eq!(r["channels_asked"], 20, "{ctx}");
        assert_eq!(r["channels_opened"], 15, "{ctx}");
        assert_eq!(r["channels_refused"], 5, "{ctx}");
        assert_eq!(
            r["refused_by_error_code"],
            serde_json::json!({"9039": 5}),
            "{ctx}"
        );
        assert_eq!(r["open_errors"], serde_json::json!({}), "{ctx}");
        assert_eq!(r["lost_early"], 0, "{ctx}");
        assert_eq!(r["open_latency_us"]["count"], 15, "{ctx}");

        // Every channel beat about 3 times in 3 s; every beat came back
        // on its stream.
        let sent = r["heartbeats_sent"].as_u64().unwrap();
        assert!(sent >= 15 * 2, "{ctx}");
        assert_eq!(r["heartbeats_ok"], sent, "{ctx}");
        assert_eq!(r["heartbeat_chunks_received"], sent, "{ctx}");
        assert_eq!(r["heartbeat_chunks_unexpected"], 0, "{ctx}");
        assert_eq!(r["heartbeat_rtt_us"]["count"], sent, "{ctx}");
        assert_eq!(r["heartbeat_failures"], serde_json::json!({}), "{ctx}");
        // No subscription: no events, nothing else on the streams.
        assert_eq!(r["events_received"], serde_json::json!({}), "{ctx}");
        assert_eq!(r["other_chunks"], serde_json::json!({}), "{ctx}");

        // Each stream's last chunk was its ChannelTerminatedEvent.
        assert_eq!(r["deletes_sent"], 15, "{ctx}");
        assert_eq!(r["deletes_ok"], 15, "{ctx}");
        assert_eq!(r["ended_with_channel_terminated"], 15, "{ctx}");
        assert_eq!(r["end_problems"], serde_json::json!({}), "{ctx}");
        assert_eq!(
            r["terminated_by_reason"],
            serde_json::json!({"ChannelDeleted": 15}),
            "{ctx}"
        );
        assert!(r["first_error"].is_null(), "{ctx}");

        let held = r["held_secs"].as_f64().unwrap();
        assert!((3.0..4.0).contains(&held), "{ctx}");
        let rss = &r["server_rss"];
        assert_eq!(rss["pid"], server.pid(), "{ctx}");
        assert!(rss["before_kib"].as_u64().unwrap() > 0, "{ctx}");
        assert!(rss["held_kib"].as_u64().unwrap() > 0, "{ctx}");
        assert!(
            took.as_secs_f64() < 6.0,
            "HTTP/{http}: the run took {took:?}"
        );
    }
}
