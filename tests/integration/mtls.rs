//! mTLS on the HTTPS listener: who gets in, per client_auth mode.

use crate::harness::{eventually, Server};

#[tokio::test]
async fn valid_client_certificate_succeeds_over_h2_and_http1() {
    let server = Server::start();
    let resp = server.get("/").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(body["service"], "bwgate");
    assert_eq!(
        body["clientCertificate"]["subjectCommonName"],
        "bwgate-dev-as"
    );
    assert_eq!(body["http"], "HTTP/2.0");
    let tracking = resp.header("trackingid").expect("TrackingID header");
    assert_eq!(body["trackingId"], tracking);

    let certs = server.certs();
    let h1 = server.client_with(
        Some((&certs.join("client.crt"), &certs.join("client.key"))),
        false,
    );
    let mut conn = h1.connect().await.unwrap();
    assert!(!conn.is_h2());
    // Keep-alive: two requests on one connection, distinct tracking ids.
    let a = conn.send(bwgate::client::get("/")).await.unwrap();
    let b = conn.send(bwgate::client::get("/")).await.unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    assert_ne!(a.header("trackingid"), b.header("trackingid"));
    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(body["http"], "HTTP/1.1");
}

#[tokio::test]
async fn gateway_issues_tracking_ids_and_echoes_the_callers() {
    let server = Server::start();
    let mut req = bwgate::client::get("/");
    req.headers_mut()
        .insert("TrackingID", "NA_0123-abcd".parse().unwrap());
    let resp = server.client().request(req).await.unwrap();
    // Stored work is keyed by the TrackingID, so the gateway always issues
    // its own; the caller's comes back for correlation.
    assert!(resp.header("trackingid").unwrap().starts_with("BWG_"));
    assert_eq!(resp.header("x-client-trackingid"), Some("NA_0123-abcd"));
}

#[tokio::test]
async fn require_mode_refuses_missing_and_foreign_certificates() {
    let server = Server::start();
    // No certificate at all.
    let anonymous = server.client_with(None, false);
    assert!(
        anonymous.request(bwgate::client::get("/")).await.is_err(),
        "a client without certificate must be refused"
    );
    // A certificate from a CA the server does not trust.
    let other_ca = bwgate::tls::generate_ca("rogue CA", 30).unwrap();
    let (cert, key) = bwgate::tls::issue_client_cert(&other_ca, "rogue-as", 30).unwrap();
    let cert_path = server.path("rogue.crt");
    let key_path = server.path("rogue.key");
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let rogue = server.client_with(Some((&cert_path, &key_path)), false);
    assert!(
        rogue.request(bwgate::client::get("/")).await.is_err(),
        "a certificate from an unknown CA must be refused"
    );
    // Both refusals happened in the TLS layer, not as HTTP answers. The
    // server counts a failure just after sending its alert, so poll.
    let metrics = eventually(
        "2 handshake failures",
        std::time::Duration::from_secs(5),
        || async {
            let (_, metrics) = server.admin_get("/metrics").await;
            let failures = crate::harness::metric_value(
                &metrics,
                "bwgate_tls_handshake_failures_total{reason=\"error\"}",
            )
            .unwrap_or(0.0);
            if failures >= 2.0 {
                Ok(metrics)
            } else {
                Err(format!("handshake failures = {failures}\n{metrics}"))
            }
        },
    )
    .await;
    assert!(
        !metrics.contains("bwgate_http_requests_total{route=\"/\""),
        "no HTTP request may have been served"
    );
    // The legitimate client still gets in.
    assert_eq!(server.get("/").await.status, 200);
}

#[tokio::test]
async fn optional_mode_admits_anonymous_clients_but_still_verifies_certificates() {
    let server = Server::start_with(None, &["--client-auth", "optional"]);
    let anonymous = server.client_with(None, true);
    let resp = anonymous.request(bwgate::client::get("/")).await.unwrap();
    assert_eq!(resp.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert!(body["clientCertificate"].is_null());

    let other_ca = bwgate::tls::generate_ca("rogue CA", 30).unwrap();
    let (cert, key) = bwgate::tls::issue_client_cert(&other_ca, "rogue-as", 30).unwrap();
    std::fs::write(server.path("rogue.crt"), cert).unwrap();
    std::fs::write(server.path("rogue.key"), key).unwrap();
    let rogue = server.client_with(
        Some((&server.path("rogue.crt"), &server.path("rogue.key"))),
        true,
    );
    assert!(rogue.request(bwgate::client::get("/")).await.is_err());
}

#[tokio::test]
async fn unknown_paths_and_methods_get_table_errors() {
    let server = Server::start();
    let resp = server.get("/no/such/thing").await;
    assert_eq!(resp.status, 404);
    let text = resp.text();
    assert!(text.contains("<errorCode>9015</errorCode>"), "{text}");
    assert!(text.contains("http://schema.broadsoft.com/xsi"));

    let post = bwgate::client::request("POST", "/", "x".into(), Some("text/plain"));
    let resp = server.client().request(post).await.unwrap();
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(json["errors"][0]["errorCode"], 9016);
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let server = Server::start_with(Some("[limits]\nmax_body_bytes = 2048\n"), &[]);
    let post = bwgate::client::request(
        "POST",
        "/",
        vec![b'a'; 4096].into(),
        Some("application/xml"),
    );
    let resp = server.client().request(post).await.unwrap();
    assert_eq!(resp.status, 413);
    let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(json["errors"][0]["errorCode"], 9010, "{}", resp.text());
}

#[tokio::test]
async fn portal_listener_needs_no_client_certificate_and_answers_html() {
    let server = Server::start();
    let tls = bwgate::tls::client_config(&server.certs().join("ca.crt"), None, None, true).unwrap();
    let portal = bwgate::client::HttpsClient::new(server.portal, "localhost", tls).unwrap();
    let resp = portal.request(bwgate::client::get("/")).await.unwrap();
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        resp.text().contains("<h1>Activation portal</h1>"),
        "{}",
        resp.text()
    );
    assert!(resp.header("content-security-policy").is_some());
    let missing = portal.request(bwgate::client::get("/nope")).await.unwrap();
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("Error 9015"), "{}", missing.text());
    // The flow-through API is not on the portal.
    let ft = portal
        .request(bwgate::client::request(
            "POST",
            "/uc-one/v1/provisioning/x",
            "<a/>".into(),
            Some("application/xml"),
        ))
        .await
        .unwrap();
    assert_eq!(ft.status, 404);
}
