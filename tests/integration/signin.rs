//! Signing in with BroadWorks credentials and self-activation, end to end:
//! the real binary checks credentials at a stand-in XSP (Xsi-Actions over
//! HTTPS, `tests/support/xsp_stub.py`, trusted through
//! `broadworks.xsp_ca_file`), the verification code arrives through a real
//! SMTP receiver, and the subscriber is provisioned as self-activated.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::email::{header, wait_messages, Relay};
use crate::flowthrough::{add_user, document, post, subscriber, wait_status};
use crate::harness::Server;

const STUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/xsp_stub.py");
pub const AUTH: &str = "Basic YWN0OmFjdC1wdy0x"; // act:act-pw-1

/// The stand-in XSP; killed on drop.
pub struct Xsp {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Xsp {
    pub fn start(relay: &Relay, dir: &std::path::Path) -> Xsp {
        let users = dir.join("xsp-users.json");
        std::fs::write(
            &users,
            serde_json::json!({
                "kim@bw.example": {"password": "Kim-secret-1", "firstName": "Kim", "lastName": "Ito",
                    "groupId": "sales", "serviceProvider": "globex", "number": "2405550177",
                    "extension": "0177", "countryCode": "1", "email": "kim@globex.example"},
                "lee@bw.example": {"password": "Lee-secret-1", "firstName": "Lee", "lastName": "Park",
                    "groupId": "ops", "serviceProvider": "initech", "number": "2405550188",
                    "extension": "0188", "countryCode": "1", "email": ""}
            })
            .to_string(),
        )
        .unwrap();
        let ready = dir.join("xsp-ready.json");
        let child = Command::new("python3")
            .arg(STUB)
            .arg("--users")
            .arg(&users)
            .arg("--tls-cert")
            .arg(relay.cert("server.crt"))
            .arg("--tls-key")
            .arg(relay.cert("server.key"))
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 tests/support/xsp_stub.py");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: Value = serde_json::from_str(&text).unwrap();
                break v["port"].as_u64().unwrap() as u16;
            }
            assert!(Instant::now() < deadline, "XSP stub did not start");
            std::thread::sleep(Duration::from_millis(25));
        };
        Xsp {
            child,
            port,
            log: dir.join("xsp-ready.json.log"),
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Xsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn config(relay: &Relay, smtp_port: u16, xsp_port: u16) -> String {
    format!(
        "{smtp}\n[broadworks]\nxsp_ca_file = \"{ca}\"\n\n\
[[partners]]\nid = \"sp\"\nname = \"SP\"\n\n\
[[clusters]]\nid = \"c1\"\npartner = \"sp\"\nname = \"Cluster 1\"\nxsp_url = \"https://127.0.0.1:{xsp_port}\"\n\n\
[[templates]]\nprovisioning_id = \"selfact\"\npartner = \"sp\"\ncluster = \"c1\"\nname = \"Self\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\nallow_self_activation = true\n\n\
[[templates]]\nprovisioning_id = \"noself\"\npartner = \"sp\"\ncluster = \"c1\"\nname = \"No self\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n",
        smtp = relay.smtp_config(smtp_port, false),
        ca = relay.cert("ca.crt").display(),
    )
}

fn code_in(data: &str) -> String {
    let subject = header(data, "Subject").expect("subject");
    subject.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn self_activation_signs_in_at_the_xsp_and_provisions_a_self_activated_user() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let server = Server::start_with(Some(&config(&relay, receiver.port, xsp.port)), &[]);

    let (status, page) = server.portal_get("/self-activate/selfact").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("BroadWorks password"), "{page}");
    let (status, page) = server.portal_get("/self-activate/noself").await;
    assert_eq!(
        status, 404,
        "self-activation is off for this template: {page}"
    );

    // A wrong password is refused at the XSP; nothing is recorded.
    let (status, _, page) = server
        .portal_form(
            "/self-activate/selfact",
            &[("userId", "kim@bw.example"), ("password", "wrong")],
        )
        .await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("error 9004"), "{page}");
    assert_eq!(subscriber(&server, "kim@bw.example").await.0, 404);
    let calls = xsp.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        calls[0]["path"],
        "/com.broadsoft.xsi-actions/v2.0/user/kim@bw.example/profile"
    );
    assert_eq!(calls[0]["noChallenge"], "true");

    let (status, location, page) = server
        .portal_form(
            "/self-activate/selfact",
            &[("userId", "kim@bw.example"), ("password", "Kim-secret-1")],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    assert!(location.starts_with("/activate?token="), "{location}");
    let v = subscriber(&server, "kim@bw.example").await.1;
    assert_eq!(v["subscriber"]["status"], "pending_email_input");
    assert_eq!(v["subscriber"]["firstName"], "Kim");
    assert_eq!(v["subscriber"]["phoneNumber"], "+12405550177");
    assert_eq!(v["activation"]["activation"]["purpose"], "self_activation");
    // Signing in again leads to the same activation, nothing new.
    let (status, again, _) = server
        .portal_form(
            "/self-activate/selfact",
            &[("userId", "kim@bw.example"), ("password", "Kim-secret-1")],
        )
        .await;
    assert_eq!((status, again.as_str()), (303, location.as_str()));

    let token = location.split_once("token=").unwrap().1.to_string();
    let (status, page) = server.portal_get(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Kim Ito"), "{page}");
    let (status, _, page) = server
        .portal_form(
            "/activate/email",
            &[("token", &token), ("email", "kim@globex.example")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let got = wait_messages(&receiver, 1, Duration::from_secs(20)).await;
    let code = code_in(got[0]["data"].as_str().unwrap());
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    let v = wait_status(&server, "kim@bw.example", "provisioned").await;
    assert_eq!(v["subscriber"]["selfActivated"], true);
    assert_eq!(v["subscriber"]["email"], "kim@globex.example");
    assert_eq!(v["subscriber"]["serviceProviderId"], "globex");

    let (status, _, page) = server
        .portal_form(
            "/self-activate/selfact",
            &[("userId", "kim@bw.example"), ("password", "Kim-secret-1")],
        )
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("already active"), "{page}");
}

#[tokio::test]
async fn a_waiting_user_signs_in_with_broadworks_credentials_to_reach_the_activation() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let server = Server::start_with(Some(&config(&relay, receiver.port, xsp.port)), &[]);
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        document(None, &[add_user("lee@bw.example", "initech", None)]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = subscriber(&server, "lee@bw.example").await.1;
    let url = v["activation"]["activationUrl"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, page) = server.portal_get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("action=\"/activate/signin\""), "{page}");
    for (user, password) in [
        ("lee@bw.example", "nope"),
        ("nobody@bw.example", "Lee-secret-1"),
        ("kim@bw.example", "Kim-secret-1"),
    ] {
        let (status, _, page) = server
            .portal_form(
                "/activate/signin",
                &[("userId", user), ("password", password)],
            )
            .await;
        assert_eq!(status, 401, "{user}: {page}");
        assert!(page.contains("error 9004"), "{page}");
    }
    let (status, location, page) = server
        .portal_form(
            "/activate/signin",
            &[("userId", "lee@BW.example"), ("password", "Lee-secret-1")],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    assert!(url.ends_with(&location), "{url} vs {location}");
    let (status, page) = server.portal_get(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Step 1"), "{page}");
}

#[tokio::test]
async fn a_failed_user_signs_in_to_retry_its_activation() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let server = Server::start_with(Some(&config(&relay, receiver.port, xsp.port)), &[]);
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        document(None, &[add_user("lee@bw.example", "initech", None)]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let first = subscriber(&server, "lee@bw.example").await.1["activation"]["activationUrl"]
        .as_str()
        .unwrap()
        .to_string();
    // The user activated (its address verified), then the license core
    // refused it: it is in `error`, and the core knows it.
    let conn = rusqlite::Connection::open(server.path("data/bwgate.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let n = conn
        .execute(
            "UPDATE subscribers SET status = 'error', email = 'lee@home.example', \
             errors_json = '[{\"errorCode\":9008,\"description\":\"no\"}]' \
             WHERE user_id = 'lee@bw.example'",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(conn);
    let _ = first;

    // Signing in retries it: provisioned again with its address (never
    // sent back to a pending status the core would not know of).
    let (status, _, page) = server
        .portal_form(
            "/activate/signin",
            &[("userId", "lee@bw.example"), ("password", "Lee-secret-1")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Activation retried"), "{page}");
    let v = subscriber(&server, "lee@bw.example").await.1;
    assert_eq!(v["subscriber"]["errors"], serde_json::json!([]), "{v}");
    assert_eq!(v["subscriber"]["email"], "lee@home.example", "{v}");
    let status = v["subscriber"]["status"].as_str().unwrap_or_default();
    assert!(status == "provisioning" || status == "provisioned", "{v}");
}
