//! Abuse tests: ops. The ops listener's operator API refuses callers
//! without the operator token, browsers (Origin, DNS-rebinding Host) and
//! non-JSON bodies, and changes nothing when it refuses; the probes stay
//! open; demo secrets are printed once; user ids differing only in case
//! are one subscriber, and invisible or look-alike characters are refused.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::Value;

use crate::flowthrough::{add_user, demo, document, post, subscriber};
use crate::harness::{admin_get, admin_http, admin_request, metric_value, Server, BIN};

const ORG: &str = "/admin/v1/organizations/ops-abuse";
const ORG_BODY: &str = r#"{"id": "ops-abuse", "name": "Ops Abuse", "userCount": 1}"#;

fn error_code(body: &str) -> u64 {
    serde_json::from_str::<Value>(body).unwrap_or(Value::Null)["errors"][0]["errorCode"]
        .as_u64()
        .unwrap_or(0)
}

/// Nothing a refused request tried to do happened.
async fn assert_unchanged(server: &Server) {
    let (status, body) = server.admin_get(ORG).await;
    assert_eq!(status, 404, "organization created: {body}");
    let (status, body) = server.admin_get("/admin/v1/emails?kind=test").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["emails"], serde_json::json!([]), "test email queued: {v}");
}

#[tokio::test]
async fn state_changes_without_the_operator_token_are_refused_and_change_nothing() {
    let server = Server::start();
    let ops = [
        ("PUT", ORG, ORG_BODY),
        (
            "POST",
            "/admin/v1/emails/test",
            r#"{"to": "x@evil.example"}"#,
        ),
        (
            "POST",
            "/admin/v1/enterprises/demo-partner/ent-1/detach",
            "",
        ),
        (
            "POST",
            "/admin/v1/subscribers/a@b.example/activation",
            r#"{"email": "x@evil.example"}"#,
        ),
    ];
    let json = ("Content-Type", "application/json");
    for (method, path, body) in ops {
        for auth in [None, Some("Bearer wrong-token"), Some("Basic b3BzOm9wcw==")] {
            let mut headers = vec![json];
            headers.extend(auth.map(|a| ("Authorization", a)));
            let (status, answer) = admin_http(server.admin, method, path, &headers, body).await;
            assert_eq!(status, 401, "{method} {path} {auth:?}: {answer}");
            assert_eq!(error_code(&answer), 9032, "{answer}");
        }
    }
    // Reads expose subscriber data: they need the token too.
    for path in [ORG, "/admin/v1/emails", "/admin/v1/subscribers/a@b.example"] {
        let (status, answer) = admin_get(server.admin, path).await;
        assert_eq!((status, error_code(&answer)), (401, 9032), "{path}");
    }
    assert_unchanged(&server).await;
    let (_, metrics) = admin_get(server.admin, "/metrics").await;
    let refused = |reason: &str| {
        metric_value(
            &metrics,
            &format!("bwgate_ops_requests_refused_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(refused("missing_token") >= 11.0, "{metrics}");
    assert!(refused("wrong_token") >= 4.0, "{metrics}");
}

#[tokio::test]
async fn non_json_bodies_are_refused_with_415_and_change_nothing() {
    let server = Server::start();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, body) = server.admin_send("PUT", ORG, ct, ORG_BODY).await;
        assert_eq!((status, error_code(&body)), (415, 9014), "{ct:?}: {body}");
        let (status, body) = server
            .admin_send(
                "POST",
                "/admin/v1/emails/test",
                ct,
                r#"{"to": "x@evil.example"}"#,
            )
            .await;
        assert_eq!((status, error_code(&body)), (415, 9014), "{ct:?}: {body}");
    }
    assert_unchanged(&server).await;
    // The same request as JSON goes through: the refusals were the type's.
    let (status, body) = server.admin_json("PUT", ORG, ORG_BODY).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn browser_origins_and_rebinding_hosts_are_refused_even_with_the_token() {
    let server = Server::start();
    let auth = format!("Bearer {}", server.ops_token());
    let same_host = format!("http://{}", server.admin);
    let rebound = format!("rebind.evil.example:{}", server.admin.port());
    let cases: [Vec<(&str, &str)>; 5] = [
        vec![("Origin", "http://evil.example")],
        vec![("Origin", same_host.as_str())],
        vec![("Origin", "null")],
        vec![("Host", rebound.as_str())],
        // An address the listener does not bind (it binds 127.0.0.1).
        vec![("Host", "10.9.9.9:9090")],
    ];
    for extra in &cases {
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend(extra.iter().copied());
        let (status, body) = admin_http(server.admin, "PUT", ORG, &headers, ORG_BODY).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, 9033),
            "{extra:?}: {body}"
        );
    }
    assert_unchanged(&server).await;
    // An IP-literal Host (how operators and probes address it) is fine.
    let host = server.admin.to_string();
    let (status, body) = admin_http(
        server.admin,
        "GET",
        ORG,
        &[("Authorization", auth.as_str()), ("Host", host.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_answer_with_table_codes() {
    let server = Server::start();
    // Beside the probes: no token needed to learn nothing is there.
    let (status, body) = admin_get(server.admin, "/nope").await;
    assert_eq!((status, error_code(&body)), (404, 9015), "{body}");
    let (status, body) = admin_request(server.admin, "POST", "/healthz", None, "").await;
    assert_eq!((status, error_code(&body)), (405, 9016), "{body}");
    // Under /admin/ the guard answers first, known path or not.
    let (status, body) = admin_get(server.admin, "/admin/v1/nope").await;
    assert_eq!((status, error_code(&body)), (401, 9032), "{body}");
    for (method, path, expected) in [
        ("GET", "/admin/v1/nope", (404, 9015)),
        ("GET", "/admin/v1/organizations/a%2Fb", (404, 9015)),
        ("GET", "/admin/v1/emails/test", (405, 9016)),
        (
            "GET",
            "/admin/v1/subscribers/a@b.example/activation",
            (405, 9016),
        ),
        ("POST", "/admin/v1/emails", (405, 9016)),
        ("DELETE", ORG, (405, 9016)),
    ] {
        let (status, body) = server.admin_json(method, path, "").await;
        assert_eq!(
            (status, error_code(&body)),
            expected,
            "{method} {path}: {body}"
        );
    }
    assert_unchanged(&server).await;
}

#[tokio::test]
async fn probes_and_metrics_stay_open() {
    let server = Server::start();
    assert_eq!(
        admin_get(server.admin, "/healthz").await,
        (200, "ok\n".into())
    );
    assert_eq!(
        admin_get(server.admin, "/readyz").await,
        (200, "ready\n".into())
    );
    let (status, metrics) = admin_get(server.admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("bwgate_"), "{metrics}");
}

#[tokio::test]
async fn demo_secrets_are_printed_at_creation_only() {
    let mut server = Server::start();
    let file = server.path("data/demo-template.json");
    let read =
        || -> Value { serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap() };
    let first = read();
    let secrets: Vec<String> = ["password", "adminToken", "opsToken"]
        .iter()
        .map(|k| {
            first[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k}"))
                .to_string()
        })
        .collect();
    let stdout = std::fs::read_to_string(server.path("stdout.log")).unwrap();
    for s in &secrets {
        assert!(
            stdout.contains(s.as_str()),
            "created: printed once: {stdout}"
        );
    }
    let hash_file = server.path("data/ops-token.hash");
    let hash = std::fs::read_to_string(&hash_file).unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(secrets[2].as_str()));
    assert_eq!(
        std::fs::metadata(&hash_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    server.spawn();
    let stdout = std::fs::read_to_string(server.path("stdout.log")).unwrap();
    for s in &secrets {
        assert!(!stdout.contains(s.as_str()), "printed again: {stdout}");
    }
    assert!(stdout.contains("demo-template.json"), "{stdout}");
    assert!(
        stdout.contains(first["provisioningId"].as_str().unwrap()),
        "{stdout}"
    );
    let second = read();
    for k in ["password", "adminToken", "opsToken"] {
        assert_eq!(second[k], first[k], "{k} kept");
    }
    // The kept operator token still opens the operator API.
    assert_eq!(server.admin_get(ORG).await.0, 404);
}

fn config_check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["config", "check", file.to_str().unwrap()])
        .output()
        .expect("run bwgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_warns_about_an_exposed_ops_listener_and_refuses_one_without_token() {
    let template = "[[partners]]\nid = \"p\"\nname = \"P\"\n\n[[templates]]\n\
                    provisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\n\
                    provisioning_username = \"u\"\nprovisioning_password = \"pw\"\n";
    let (code, err) = config_check(&format!(
        "[server]\nadmin_listen = \"0.0.0.0:9090\"\n\n{template}"
    ));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.admin_listen"), "{err}");
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$9R4EGvcgNOjUXBoHfecn2g$ctdOppSTZN9+Kyiluau8loTAjFhDOpyG02ZDOi2RNOo";
    let (code, err) = config_check(&format!(
        "[server]\nadmin_listen = \"0.0.0.0:9090\"\noperator_token_hash = \"{hash}\"\n\n{template}"
    ));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: server.admin_listen") && err.contains("beyond loopback"),
        "{err}"
    );
}

/// The demo partner's subscribers whose user id is `user` in any case.
async fn subscribers_named(server: &Server, user: &str) -> Vec<Value> {
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(server.path("data/demo-template.json")).unwrap(),
    )
    .unwrap();
    let mut req = bwgate::client::get("/partner/v1/subscribers?max=100");
    let bearer = format!("Bearer {}", demo["adminToken"].as_str().unwrap());
    req.headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    let r = server.portal_client().request(req).await.expect("list");
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["userId"]
                .as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(user))
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn user_ids_differing_in_case_are_one_subscriber() {
    let server = Server::start();
    let d = demo(&server);
    for user in [
        "Case@Acme.example",
        "case@acme.example",
        "CASE@ACME.EXAMPLE",
    ] {
        let doc = document(
            None,
            &[add_user(user, "ent-case", Some("case@acme.example"))],
        );
        let r = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    }
    // Accepted means durably recorded: no need to wait for provisioning.
    let (status, v) = subscriber(&server, "case@acme.example").await;
    assert_eq!(status, 200, "{v}");
    let id = v["subscriber"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["subscriber"]["userId"], "case@acme.example");
    // The admin read-back finds it under any case.
    for key in ["Case@Acme.example", "CASE@ACME.EXAMPLE"] {
        let (status, v) = subscriber(&server, key).await;
        assert_eq!(status, 200, "{key}: {v}");
        assert_eq!(v["subscriber"]["id"], id.as_str(), "{key}");
    }
    let found = subscribers_named(&server, "case@acme.example").await;
    assert_eq!(
        found.len(),
        1,
        "one subscriber for three spellings: {found:?}"
    );
}

#[tokio::test]
async fn invisible_and_look_alike_user_id_characters_are_refused_with_9017() {
    let server = Server::start();
    let d = demo(&server);
    let doc = document(
        None,
        &[add_user(
            "zw@acme.example",
            "ent-zw",
            Some("zw@acme.example"),
        )],
    );
    let r = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    for (user, char_code) in [
        ("z\u{200B}w@acme.example", "U+200B"),
        ("zw\u{200D}@acme.example", "U+200D"),
        ("\u{FEFF}zw@acme.example", "U+FEFF"),
        // Cyrillic "z"-like ze is not ASCII: refused, not a second "zw".
        ("\u{437}w@acme.example", "U+0437"),
    ] {
        let doc = document(None, &[add_user(user, "ent-zw", None)]);
        let r = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
        let text = r.text();
        assert_eq!(r.status.as_u16(), 200, "{text}");
        assert!(text.contains("errorCode=\"9017\""), "{user:?}: {text}");
        assert!(
            text.contains("userId") && text.contains(char_code),
            "{text}"
        );
    }
    assert_eq!(subscriber(&server, "zw@acme.example").await.0, 200);
    let found = subscribers_named(&server, "zw@acme.example").await;
    assert_eq!(found.len(), 1, "{found:?}");
}
