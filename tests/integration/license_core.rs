//! The remote license core: a gateway with `[license] mode = "remote"`
//! sends its commands over mTLS to a `bwgate license-core serve` process
//! with its own database. The core is killed (SIGKILL) while runs are in
//! flight, stays down while more AddUsers are accepted, and comes back on
//! the same port and data: every command is then applied exactly once
//! (each key recorded once, each license granted once), and every
//! subscriber is provisioned.

use std::net::SocketAddr;
use std::time::Duration;

use rusqlite::Connection;

use crate::flowthrough::{add_user, demo, document, post, Demo};
use crate::harness::{eventually, Server};

/// Users sent before the kill, and while the core is down.
const BEFORE: usize = 120;
const DURING: usize = 60;
/// Users per document.
const PER_DOC: usize = 10;

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn count(db: &std::path::Path, sql: &str) -> i64 {
    let conn = Connection::open(db).expect("open");
    conn.busy_timeout(Duration::from_secs(5)).expect("busy");
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Sends users `from..to` in documents of [`PER_DOC`], over three
/// enterprises.
async fn send(gateway: &Server, d: &Demo, from: usize, to: usize) {
    for start in (from..to).step_by(PER_DOC) {
        let users: Vec<(String, String)> = (start..(start + PER_DOC).min(to))
            .map(|i| (format!("u{i}@core.example"), format!("sp{}", i % 3)))
            .collect();
        send_users(gateway, d, &users).await;
    }
}

async fn provisioned_at_least(gateway: &Server, n: i64) -> i64 {
    let db = gateway.path("data/bwgate.db");
    eventually(
        format!("{n} subscribers provisioned"),
        Duration::from_secs(60),
        || {
            let db = db.clone();
            async move {
                let got = count(
                    &db,
                    "SELECT count(*) FROM subscribers WHERE status = 'provisioned'",
                );
                if got >= n {
                    Ok(got)
                } else {
                    Err(got)
                }
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_remote_core_applies_every_command_exactly_once_when_back() {
    let core_addr = free_port();
    let gateway_config = format!(
        "[license]\nmode = \"remote\"\n\n[license.remote]\nurl = \"https://{core_addr}\"\n\
         timeout_ms = 2000\nattempts = 2\n"
    );
    let gateway = Server::start_with(Some(&gateway_config), &[]);
    let d = demo(&gateway);
    // The core shares the gateway's dev CA: its server certificate is the
    // gateway's trust anchor's, and it trusts the gateway's client one.
    let certs = gateway.certs().display().to_string();
    let mut core =
        Server::unstarted(None, &["--certs-dir", &certs], &[]).into_license_core(core_addr);
    core.spawn();
    let core_db = core.path("data/bwgate.db");

    // The core answers its route only, over mTLS.
    let wrong = core_request(&core, &gateway, "GET", "/license-core/v1/commands").await;
    assert_eq!(wrong, 405);
    let flowthrough = core_request(&core, &gateway, "POST", &d.path).await;
    assert_eq!(flowthrough, 404, "a core serves no flow-through");
    // Without a client certificate nothing reaches it.
    let anonymous = bwgate::client::HttpsClient::new(
        core.https,
        "localhost",
        bwgate::tls::client_config(&gateway.certs().join("ca.crt"), None, None, false)
            .expect("tls"),
    )
    .expect("client")
    .request(bwgate::client::request(
        "POST",
        "/license-core/v1/commands",
        bytes::Bytes::from_static(b"{\"commands\":[]}"),
        Some("application/json"),
    ))
    .await;
    assert!(anonymous.is_err(), "{anonymous:?}");

    // Load, then SIGKILL while runs are still being delivered.
    send(&gateway, &d, 0, BEFORE).await;
    provisioned_at_least(&gateway, 30).await;
    core.child
        .as_mut()
        .expect("core running")
        .kill()
        .expect("SIGKILL");
    let status = core.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    let at_kill = count(
        &gateway.path("data/bwgate.db"),
        "SELECT count(*) FROM subscribers WHERE status = 'provisioned'",
    );
    // More work while the core is down: accepted, waiting in the outbox.
    send(&gateway, &d, BEFORE, BEFORE + DURING).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let while_down = count(
        &gateway.path("data/bwgate.db"),
        "SELECT count(*) FROM subscribers WHERE status = 'provisioned'",
    );
    assert!(
        while_down < (BEFORE + DURING) as i64,
        "nothing applies while the core is down"
    );
    core.spawn();

    let total = (BEFORE + DURING) as i64;
    provisioned_at_least(&gateway, total).await;
    assert!(at_kill < total);
    // Exactly once, on the core's own database.
    assert_eq!(
        count(&core_db, "SELECT count(*) FROM license_applied"),
        total
    );
    assert_eq!(
        count(
            &core_db,
            "SELECT count(*) FROM license_applied WHERE refused_code IS NOT NULL"
        ),
        0
    );
    // Basic: two licenses per subscriber, each granted once.
    assert_eq!(count(&core_db, "SELECT count(*) FROM licenses"), 2 * total);
    assert_eq!(
        count(
            &core_db,
            "SELECT count(*) FROM license_events WHERE action = 'grant'"
        ),
        2 * total
    );
    assert_eq!(
        count(
            &core_db,
            "SELECT count(*) FROM license_events WHERE action = 'revoke'"
        ),
        0
    );
    assert_eq!(
        count(
            &core_db,
            "SELECT count(*) FROM (SELECT subscriber_id, license FROM license_events
             GROUP BY 1, 2 HAVING count(*) > 1)"
        ),
        0
    );
    // The gateway delivered every command and recorded it once.
    let gw = gateway.path("data/bwgate.db");
    assert_eq!(
        count(
            &gw,
            "SELECT count(*) FROM outbox WHERE state <> 'delivered'"
        ),
        0
    );
    let (_, metrics) = crate::harness::admin_get(gateway.admin, "/metrics").await;
    let failures =
        crate::harness::metric_value(&metrics, "bwgate_license_core_request_failures_total")
            .unwrap_or(0.0);
    eprintln!("provisioned at kill: {at_kill}, while down: {while_down}, failed tries: {failures}");
    assert!(
        failures >= 1.0,
        "runs were tried again while the core was down"
    );
}

/// A request to the core with the gateway's client certificate: its status.
async fn core_request(core: &Server, gateway: &Server, method: &str, path: &str) -> u16 {
    let certs = gateway.certs();
    let client = bwgate::client::HttpsClient::new(
        core.https,
        "localhost",
        bwgate::tls::client_config(
            &certs.join("ca.crt"),
            Some(&certs.join("client.crt")),
            Some(&certs.join("client.key")),
            false,
        )
        .expect("tls"),
    )
    .expect("client");
    let req = bwgate::client::request(
        method,
        path,
        bytes::Bytes::from_static(b"{}"),
        Some("application/json"),
    );
    client
        .request(req)
        .await
        .expect("core answers")
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_core_keeps_the_subscriptions_and_its_refusals_reach_the_subscriber() {
    let core_addr = free_port();
    let gateway = Server::start_with(
        Some(&format!(
            "[license]\nmode = \"remote\"\n\n[license.remote]\nurl = \"https://{core_addr}\"\n"
        )),
        &[],
    );
    let d = demo(&gateway);
    let certs = gateway.certs().display().to_string();
    // An (empty) config file: the harness gives the core an operator token.
    let mut core =
        Server::unstarted(Some(""), &["--certs-dir", &certs], &[]).into_license_core(core_addr);
    core.spawn();

    send_users(&gateway, &d, &remote_users(&["a@remote.example"])).await;
    let a = crate::flowthrough::wait_status(&gateway, "a@remote.example", "provisioned").await;
    let org = a["organization"]["id"].as_str().expect("org").to_string();

    // Subscriptions live in the core: the operator puts them there.
    let (status, body) = core
        .admin_json(
            "PUT",
            &format!("/admin/v1/organizations/{org}/subscriptions/s1"),
            r#"{"startsAt":"2026-01-01","quantities":{"webex-calling-basic":1,"webex-messaging":5}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // The gateway keeps none: its operator API relays to the core.
    let (status, body) = gateway
        .admin_get(&format!("/admin/v1/organizations/{org}/subscriptions"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""webex-calling-basic":1"#), "{body}");
    // An organization the gateway does not know is not relayed (the core
    // would take any id).
    let (status, body) = gateway
        .admin_json(
            "PUT",
            "/admin/v1/organizations/typo-org/license-templates/organization",
            r#"{"licenses":[]}"#,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = core
        .admin_get("/admin/v1/organizations/typo-org/license-templates")
        .await;
    assert!(
        status == 200 && body.contains(r#""organizationTemplate":null"#),
        "{body}"
    );
    // The ledger is not an organization's: the core's operator API has it.
    let (status, body) = gateway.admin_get("/admin/v1/licenses/ledger").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("remote license core"), "{body}");

    send_users(
        &gateway,
        &d,
        &remote_users(&["b@remote.example", "c@remote.example"]),
    )
    .await;
    crate::flowthrough::wait_status(&gateway, "b@remote.example", "provisioned").await;
    let c = crate::flowthrough::wait_status(&gateway, "c@remote.example", "error").await;
    assert_eq!(c["subscriber"]["errors"][0]["errorCode"], 9041, "{c}");

    // Who holds what, from the core (user ids from the commands).
    let (status, csv) = core
        .admin_get(&format!(
            "/admin/v1/organizations/{org}/licenses?format=csv"
        ))
        .await;
    assert_eq!(status, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows.iter()
            .filter(|r| r.contains(",a@remote.example,"))
            .all(|r| r.contains(",,package,")),
        "a is unmetered: {csv}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.contains(",b@remote.example,"))
            .all(|r| r.contains(",s1,package,")),
        "b counts against s1: {csv}"
    );

    // The partner admin reads them through the gateway, which asks the
    // core over mTLS (its own organization only).
    let demo: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(gateway.path("data/demo-template.json")).expect("demo"),
    )
    .expect("demo json");
    let token = demo["adminToken"]
        .as_str()
        .expect("admin token")
        .to_string();
    let partner_get = |path: String| {
        let (gateway, token) = (&gateway, token.clone());
        async move {
            let r = gateway
                .portal_client()
                .request(bwgate::client::get_with_headers(
                    "localhost",
                    &path,
                    &[("authorization", format!("Bearer {token}"))],
                ))
                .await
                .expect("portal");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (r.status.as_u16(), v)
        }
    };
    let (status, v) = partner_get(format!("/partner/v1/organizations/{org}/subscriptions")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subscriptions"][0]["id"], "s1", "{v}");
    assert_eq!(
        v["subscriptions"][0]["assigned"]["webex-calling-basic"], 1,
        "{v}"
    );
    let (status, v) = partner_get(format!("/partner/v1/organizations/{org}/licenses")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["holders"].as_array().map(Vec::len), Some(4), "{v}");
    let (status, _) = partner_get("/partner/v1/organizations/not-ours/licenses".into()).await;
    assert_eq!(status, 404);
    // Admins asking at once each get their answer (a relay has a
    // connection of its own).
    let path = || format!("/partner/v1/organizations/{org}/licenses");
    let (a, b, c, d) = tokio::join!(
        partner_get(path()),
        partner_get(path()),
        partner_get(path()),
        partner_get(format!("/partner/v1/organizations/{org}/subscriptions")),
    );
    for (status, v) in [&a, &b, &c] {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["holders"], a.1["holders"], "{v}");
    }
    assert_eq!(d.1["subscriptions"][0]["id"], "s1", "{}", d.1);
    // A partner admin changes them through the gateway too: the core
    // decides (its refusals come back as they are).
    let partner_send = |method: &'static str, path: String, body: String| {
        let (gateway, token) = (&gateway, token.clone());
        async move {
            let mut req = bwgate::client::request(
                method,
                &path,
                bytes::Bytes::from(body),
                Some("application/json"),
            );
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            let r = gateway.portal_client().request(req).await.expect("portal");
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            (r.status.as_u16(), v)
        }
    };
    let (status, v) = partner_send(
        "PUT",
        format!("/partner/v1/organizations/{org}/license-templates/organization"),
        r#"{"licenses":["webex-messaging"]}"#.into(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, body) = core
        .admin_get(&format!("/admin/v1/organizations/{org}/license-templates"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""organizationTemplate":["webex-messaging"]"#),
        "the core keeps it: {body}"
    );
    // The core reads the document: its refusal reaches the partner.
    let (status, v) = partner_send(
        "PUT",
        format!("/partner/v1/organizations/{org}/license-templates/organization"),
        r#"{"licenses":["not a license!"]}"#.into(),
    )
    .await;
    assert_eq!(
        (status, &v["errors"][0]["errorCode"]),
        (400, &serde_json::json!(9017)),
        "{v}"
    );
    // A partner's grant is recorded under its name on the core too,
    // whatever its body says.
    let (status, body) = core
        .admin_json(
            "PUT",
            &format!("/admin/v1/organizations/{org}/subscriptions/s3"),
            r#"{"startsAt":"2026-01-01","quantities":{"webex-meetings-basic":2}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, v) = partner_send(
        "POST",
        format!("/partner/v1/organizations/{org}/licenses/grant"),
        r#"{"users":["b@remote.example"],"licenses":["webex-meetings-basic"],"by":"ops"}"#.into(),
    )
    .await;
    assert_eq!(
        v["changed"],
        serde_json::json!(["b@remote.example"]),
        "{status} {v}"
    );
    let (_, v) = partner_get(format!("/partner/v1/organizations/{org}/licenses")).await;
    let source_ref = v["holders"]
        .as_array()
        .and_then(|h| {
            h.iter().find(|h| {
                h["userId"] == "b@remote.example" && h["license"] == "webex-meetings-basic"
            })
        })
        .map(|h| h["sourceRef"].clone());
    let source_ref = source_ref
        .expect("granted")
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        source_ref.starts_with("partner:") && source_ref.ends_with(":ops"),
        "{source_ref}"
    );
    // Subscriptions stay the operator's, remote or not.
    let (status, v) = partner_send(
        "PUT",
        format!("/partner/v1/organizations/{org}/subscriptions/s2"),
        r#"{"startsAt":"2026-02-01","quantities":{"webex-calling-basic":2}}"#.into(),
    )
    .await;
    assert_eq!(
        (status, &v["errors"][0]["errorCode"]),
        (403, &serde_json::json!(9045)),
        "{v}"
    );
    // The holders as CSV, through the gateway's `.csv` path.
    let r = gateway
        .portal_client()
        .request(bwgate::client::get_with_headers(
            "localhost",
            &format!("/partner/v1/organizations/{org}/licenses.csv"),
            &[("authorization", format!("Bearer {token}"))],
        ))
        .await
        .expect("portal");
    assert_eq!(r.status.as_u16(), 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/csv"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.text().lines().skip(1).count(), 5, "{}", r.text());
    // Another partner's organization is not relayed at all.
    let (status, _) = partner_send(
        "PUT",
        "/partner/v1/organizations/not-ours/license-templates/organization".into(),
        r#"{"licenses":[]}"#.into(),
    )
    .await;
    assert_eq!(status, 404);
    // The core's organization routes: device codes are the gateway's to ask
    // (404), a wrong method is 405.
    assert_eq!(
        core_request(
            &core,
            &gateway,
            "POST",
            &format!("/license-core/v1/organizations/{org}/devices")
        )
        .await,
        404
    );
    assert_eq!(
        core_request(
            &core,
            &gateway,
            "DELETE",
            &format!("/license-core/v1/organizations/{org}/licenses")
        )
        .await,
        405
    );
    // A workspace is the core's to license too: `s1` has no workspace
    // license, so the core's 9041 reaches the workspace.
    let (_, list) = partner_get("/partner/v1/subscribers".into()).await;
    let item = &list["items"][0];
    let ws_body = serde_json::json!({
        "provisioningId": item["provisioningId"],
        "userId": "room@remote.example",
        "spEnterpriseId": item["spEnterpriseId"],
        "displayName": "Room",
    })
    .to_string();
    let (status, v) = partner_send("POST", "/v1/broadworks/workspaces".into(), ws_body).await;
    assert_eq!(status, 200, "{v}");
    let ws = v["id"].as_str().expect("id").to_string();
    let failed = crate::harness::eventually(
        "the core refuses the workspace",
        std::time::Duration::from_secs(20),
        || async {
            let (status, v) = partner_get(format!("/v1/broadworks/workspaces/{ws}")).await;
            if status == 200 && v["status"] == "error" {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await;
    assert_eq!(failed["errors"][0]["errorCode"], 9041, "{failed}");
    // Core down: the partner is told to retry, not that nothing exists.
    drop(core);
    let (status, v) = partner_get(format!("/partner/v1/organizations/{org}/licenses")).await;
    assert_eq!(
        (status, &v["errors"][0]["errorCode"]),
        (503, &serde_json::json!(9021)),
        "{v}"
    );
    let port = core_addr.port().to_string();
    assert!(
        !v.to_string().contains(&port),
        "the core's address stays the operator's: {v}"
    );
}

async fn send_users(gateway: &Server, d: &Demo, users: &[(String, String)]) {
    let ops: Vec<String> = users
        .iter()
        .map(|(u, sp)| add_user(u, sp, Some(u)))
        .collect();
    let resp = post(
        gateway,
        &d.path,
        Some(&d.auth),
        document(None, &ops),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn remote_users(users: &[&str]) -> Vec<(String, String)> {
    users
        .iter()
        .map(|u| (u.to_string(), "remote".to_string()))
        .collect()
}
