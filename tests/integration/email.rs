//! Email delivery end to end: the real `bwgate` binary sends through a real
//! SMTP receiver (aiosmtpd, `tests/support/smtp_receiver.py`) on loopback,
//! over STARTTLS with AUTH, trusting the relay's certificate through
//! `smtp.ca_file`; or spools `.eml` files when no relay is configured.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{eventually, metric_value, Server, BIN};

const RECEIVER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/smtp_receiver.py"
);
const FROM: &str = "noreply@acme-sp.example";
const RELAY_USER: &str = "relay-user";
const RELAY_PASSWORD: &str = "relay-pass-123";

/// A relay's certificates (`bwgate certs init`) and the receiver's files.
pub struct Relay {
    dir: tempfile::TempDir,
}

impl Relay {
    pub fn new() -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new(BIN)
            .args(["certs", "init", "--dir"])
            .arg(dir.path().join("certs"))
            .stdout(Stdio::null())
            .status()
            .expect("bwgate certs init");
        assert!(status.success());
        Relay { dir }
    }

    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.path().join("certs").join(name)
    }

    /// Starts the receiver with STARTTLS (server certificate from the dev
    /// CA) and, when `auth`, required AUTH. `port` 0 = ephemeral.
    pub fn start(&self, port: u16, auth: bool) -> Receiver {
        Receiver::start(self, port, auth)
    }

    /// `[smtp]` pointing at `port` over STARTTLS, trusting the dev CA.
    pub fn smtp_config(&self, port: u16, auth: bool) -> String {
        let creds = if auth {
            format!("username = \"{RELAY_USER}\"\npassword = \"{RELAY_PASSWORD}\"\n")
        } else {
            String::new()
        };
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"starttls\"\n{creds}\
             from_address = \"{FROM}\"\nfrom_name = \"ACME Activation\"\n\
             ca_file = \"{}\"\nhello_name = \"bwgate-test.example\"\ntimeout_secs = 5\n\
             retry_initial_ms = 200\nretry_max_secs = 1\n",
            self.cert("ca.crt").display()
        )
    }
}

/// A running `smtp_receiver.py`. Killed on drop; it also exits by itself
/// after its maximum lifetime.
pub struct Receiver {
    child: Option<Child>,
    pub port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(relay: &Relay, port: u16, auth: bool) -> Receiver {
        let out = relay.dir.path().join("received");
        let ready = relay.dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(relay.dir.path().join("receiver.log"))
            .expect("receiver log");
        let mut cmd = Command::new("python3");
        cmd.arg(RECEIVER)
            .arg("--port")
            .arg(port.to_string())
            .arg("--out-dir")
            .arg(&out)
            .arg("--ready-file")
            .arg(&ready)
            .arg("--tls-cert")
            .arg(relay.cert("server.crt"))
            .arg("--tls-key")
            .arg(relay.cert("server.key"))
            .args(["--max-lifetime", "180"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if auth {
            cmd.arg("--auth")
                .arg(format!("{RELAY_USER}:{RELAY_PASSWORD}"));
        }
        let mut child = cmd
            .spawn()
            .expect("python3 (tests/support/smtp_receiver.py)");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ready file");
                break v["port"].as_u64().unwrap() as u16;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(relay.dir.path().join("receiver.log"))
                    .unwrap_or_default();
                panic!(
                    "SMTP receiver exited ({status}); is aiosmtpd installed \
                     (pip install aiosmtpd)?\n{log}"
                );
            }
            assert!(Instant::now() < deadline, "SMTP receiver did not start");
            std::thread::sleep(Duration::from_millis(25));
        };
        Receiver {
            child: Some(child),
            port,
            out,
        }
    }

    /// Stops it (SIGTERM) and waits: the relay is down, its port free.
    fn stop(mut self) -> u16 {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.port
    }

    /// The directory the receiver writes each message into (`NNNNNN.json`).
    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// Every message received so far, in arrival order.
    fn messages(&self) -> Vec<serde_json::Value> {
        messages_in(&self.out)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn messages_in(dir: &Path) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// The value of header `name` in an RFC 5322 message (unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next()?;
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// Plain HTTP/1.0 POST on the admin listener: (status, body).
/// A JSON `POST` on the admin listener with the operator token.
pub async fn admin_post(server: &Server, path: &str, body: &str) -> (u16, String) {
    server.admin_json("POST", path, body).await
}

/// Enqueues a test email through the admin API; returns its id.
async fn send_test(server: &Server, to: &str, subject: &str) -> i64 {
    let (status, body) = admin_post(
        server,
        "/admin/v1/emails/test",
        &serde_json::json!({"to": to, "subject": subject}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "pending");
    v["id"].as_i64().expect("id")
}

/// The outbox row of email `id` (read back through the admin API).
async fn email_row(server: &Server, id: i64) -> serde_json::Value {
    let (status, body) = server
        .admin_get("/admin/v1/emails?kind=test&limit=500")
        .await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["emails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("email {id} not listed: {body}"))
}

/// Polls `email_row` until `done` holds (or fails after `timeout`).
async fn wait_row(
    server: &Server,
    id: i64,
    timeout: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    eventually(
        server.with_logs(format!("email {id}: {what}")),
        timeout,
        || async {
            let row = email_row(server, id).await;
            if done(&row) {
                Ok(row)
            } else {
                Err(row)
            }
        },
    )
    .await
}

pub async fn wait_messages(
    receiver: &Receiver,
    n: usize,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    eventually(format!("{n} messages at the receiver"), timeout, || async {
        let got = receiver.messages();
        if got.len() >= n {
            Ok(got)
        } else {
            Err(format!("{} messages", got.len()))
        }
    })
    .await
}

async fn metrics(server: &Server) -> String {
    server.admin_get("/metrics").await.1
}

#[tokio::test]
async fn test_email_goes_through_a_real_relay_over_starttls_with_auth() {
    let relay = Relay::new();
    let receiver = relay.start(0, true);
    let server = Server::start_with(Some(&relay.smtp_config(receiver.port, true)), &[]);

    let id = send_test(&server, "ops@acme.example", "Relay check ✓").await;
    let got = wait_messages(&receiver, 1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m["mail_from"], FROM, "envelope sender");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@acme.example"]));
    assert_eq!(m["tls"], true, "STARTTLS was used");
    assert_eq!(m["auth_user"], RELAY_USER, "AUTH with the configured user");
    let data = m["data"].as_str().unwrap();
    assert_eq!(
        header(data, "From").as_deref(),
        Some("\"ACME Activation\" <noreply@acme-sp.example>")
    );
    assert_eq!(header(data, "To").as_deref(), Some("ops@acme.example"));
    let subject = header(data, "Subject").unwrap();
    // RFC 2047: the non-ASCII word is encoded ("✓" is E2 9C 93).
    assert_eq!(subject, "Relay check =?utf-8?b?4pyT?=");
    assert_eq!(header(data, "X-Bwgate-Kind").as_deref(), Some("test"));
    assert_eq!(
        header(data, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(
        data.contains("This is a test message from bwgate"),
        "{data}"
    );
    let message_id = header(data, "Message-ID").unwrap();
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@acme-sp.example>"),
        "{message_id}"
    );

    let row = wait_row(&server, id, Duration::from_secs(10), "sent", |r| {
        r["state"] == "sent"
    })
    .await;
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["to"], serde_json::json!(["ops@acme.example"]));
    assert_eq!(row["subject"], "Relay check ✓");
    assert_eq!(row["kind"], "test");
    assert_eq!(
        row["messageId"],
        message_id.as_str(),
        "the row records the header"
    );
    assert!(row["sentAt"].as_i64().is_some());
    assert!(row.get("textBody").is_none(), "bodies stay out of the API");
    assert_eq!(
        metric_value(
            &metrics(&server).await,
            "bwgate_email_sent_total{kind=\"test\"}"
        ),
        Some(1.0)
    );

    // Bad requests are refused and enqueue nothing.
    let (status, body) = admin_post(&server, "/admin/v1/emails/test", r#"{"to": "nope"}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nope"), "{body}");
    assert_eq!(server.admin_get("/admin/v1/emails?kind=bogus").await.0, 400);
    assert_eq!(server.admin_get("/admin/v1/emails/test").await.0, 405);
    let (_, all) = server.admin_get("/admin/v1/emails").await;
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["emails"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn relay_down_retries_then_delivers_exactly_once() {
    let relay = Relay::new();
    // Learn a port the receiver can bind, then take the relay down.
    let port = relay.start(0, false).stop();
    let server = Server::start_with(Some(&relay.smtp_config(port, false)), &[]);
    let id = send_test(&server, "ops@acme.example", "Queued while down").await;

    let row = wait_row(
        &server,
        id,
        Duration::from_secs(20),
        "two failed attempts",
        |r| r["attempts"].as_u64().unwrap_or(0) >= 2,
    )
    .await;
    assert_eq!(row["state"], "pending", "still queued: {row}");
    let error = row["lastError"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "{row}");
    assert!(
        metric_value(
            &metrics(&server).await,
            "bwgate_email_failures_total{kind=\"test\",result=\"retry\"}"
        )
        .unwrap_or(0.0)
            >= 2.0
    );

    // The relay comes back on the same port: delivered, once.
    let receiver = relay.start(port, false);
    let row = wait_row(&server, id, Duration::from_secs(20), "sent", |r| {
        r["state"] == "sent"
    })
    .await;
    assert!(row["attempts"].as_u64().unwrap() >= 3, "{row}");
    let got = wait_messages(&receiver, 1, Duration::from_secs(5)).await;
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = receiver.messages();
    assert_eq!(got_later.len(), 1, "exactly one copy: {got_later:?}");
    assert_eq!(got, got_later);
    let data = got[0]["data"].as_str().unwrap();
    assert_eq!(
        header(data, "Subject").as_deref(),
        Some("Queued while down")
    );
    assert_eq!(
        header(data, "Message-ID").as_deref(),
        row["messageId"].as_str()
    );
}

#[tokio::test]
async fn permanent_refusal_fails_and_transient_refusal_retries() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let server = Server::start_with(Some(&relay.smtp_config(receiver.port, false)), &[]);

    // The receiver answers RCPT with 550 for "reject…" and 451 for "tempfail…".
    let rejected = send_test(&server, "reject-me@acme.example", "Refused").await;
    let deferred = send_test(&server, "tempfail@acme.example", "Deferred").await;

    let row = wait_row(&server, rejected, Duration::from_secs(20), "failed", |r| {
        r["state"] == "failed"
    })
    .await;
    assert_eq!(row["attempts"], 1, "a 5xx is not retried: {row}");
    assert!(row["lastError"].as_str().unwrap().contains("550"), "{row}");
    assert!(row["sentAt"].is_null());

    let row = wait_row(&server, deferred, Duration::from_secs(20), "retried", |r| {
        r["attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(row["state"], "pending", "a 4xx is retried: {row}");
    assert!(row["lastError"].as_str().unwrap().contains("451"), "{row}");

    assert!(receiver.messages().is_empty(), "nothing was accepted");
    let m = metrics(&server).await;
    assert_eq!(
        metric_value(
            &m,
            "bwgate_email_failures_total{kind=\"test\",result=\"failed\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn without_a_relay_mail_is_spooled_as_eml_files() {
    let server = Server::start();
    let id = send_test(&server, "ops@acme.example", "Spooled check").await;
    let row = wait_row(&server, id, Duration::from_secs(10), "sent", |r| {
        r["state"] == "sent"
    })
    .await;
    let file = server.path(&format!("data/mail/email-{id:08}.eml"));
    let eml = std::fs::read_to_string(&file).expect("spooled .eml");
    assert_eq!(
        header(&eml, "From").as_deref(),
        Some("bwgate <bwgate@localhost.localdomain>"),
        "{eml}"
    );
    assert_eq!(header(&eml, "To").as_deref(), Some("ops@acme.example"));
    assert_eq!(header(&eml, "Subject").as_deref(), Some("Spooled check"));
    assert_eq!(
        header(&eml, "Message-ID").as_deref(),
        row["messageId"].as_str()
    );
    assert!(header(&eml, "Date").is_some());
    assert_eq!(header(&eml, "MIME-Version").as_deref(), Some("1.0"));
    assert!(header(&eml, "Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        eml.contains("\r\n\r\nThis is a test message from bwgate"),
        "{eml}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mail carries activation links");
    let names: Vec<_> = std::fs::read_dir(server.path("data/mail"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [format!("email-{id:08}.eml")], "no temp files left");
    let stderr = std::fs::read_to_string(server.path("stderr.log")).unwrap();
    assert!(stderr.contains("no smtp.host configured"), "{stderr}");
}

#[tokio::test]
async fn acknowledged_email_is_delivered_after_sigkill_and_restart() {
    let relay = Relay::new();
    let port = relay.start(0, true).stop();
    let mut server = Server::start_with(Some(&relay.smtp_config(port, true)), &[]);
    // 202 means committed: kill -9 right after it, with the relay down so
    // it cannot have been delivered yet.
    let id = send_test(&server, "ops@acme.example", "Survives kill -9").await;
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));

    let receiver = relay.start(port, true);
    server.spawn();
    let row = wait_row(&server, id, Duration::from_secs(20), "sent", |r| {
        r["state"] == "sent"
    })
    .await;
    let got = wait_messages(&receiver, 1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.messages().len(), 1, "exactly one copy");
    let data = got[0]["data"].as_str().unwrap();
    assert_eq!(header(data, "Subject").as_deref(), Some("Survives kill -9"));
    assert_eq!(
        header(data, "Message-ID").as_deref(),
        row["messageId"].as_str()
    );
    assert_eq!(got[0]["tls"], true);
}

#[tokio::test]
async fn relay_certificate_must_chain_to_a_trusted_anchor() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    // Same relay, but without smtp.ca_file: its dev CA is not trusted.
    let config = relay
        .smtp_config(receiver.port, false)
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let server = Server::start_with(Some(&config), &[]);
    let id = send_test(&server, "ops@acme.example", "Untrusted relay").await;
    let row = wait_row(
        &server,
        id,
        Duration::from_secs(20),
        "a failed attempt",
        |r| r["attempts"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    assert_eq!(row["state"], "pending", "retried, not sent: {row}");
    let error = row["lastError"].as_str().unwrap().to_lowercase();
    assert!(error.contains("certificate"), "{error}");
    assert!(receiver.messages().is_empty());
}

/// A node's id survives restarts (kept in data/node-id), so the workers of
/// a restarted node take back their own leases at once: the kill -9 test
/// above waits for nothing else.
#[tokio::test]
async fn node_id_is_kept_in_the_data_dir_across_restarts() {
    let mut server = Server::start();
    let first = std::fs::read_to_string(server.path("data/node-id")).expect("data/node-id");
    let first = first.trim().to_string();
    assert!(first.starts_with("node-") && first.len() > 10, "{first}");
    assert!(
        server.logs().contains(&format!("node_id=\"{first}\"")),
        "{}",
        server.logs()
    );
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(10));
    server.spawn();
    let again = std::fs::read_to_string(server.path("data/node-id")).expect("data/node-id");
    assert_eq!(again.trim(), first, "same id after a restart");
}
