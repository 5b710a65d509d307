//! notify: message composition, the spool, the delivery worker against a
//! real SQLite store with a scripted transport, the Mailer handle and the
//! admin helpers. Real SMTP is covered by tests/integration/email.rs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lettre::Message;
use tokio::sync::{watch, Notify};

use super::*;
use crate::config::{SmtpConfig, StoreConfig};
use crate::domain::now_millis;
use crate::store::sqlite::SqliteStore;
use crate::store::{EmailRecord, SharedStore};
use crate::testing::eventually;

fn record(message: EmailMessage) -> EmailRecord {
    EmailRecord {
        id: 7,
        message,
        state: EmailState::Pending,
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        created_at: 1_700_000_000_000,
        sent_at: None,
        message_token: "0123456789abcdef0123456789abcdef".into(),
        message_id: None,
    }
}

fn sender() -> Sender {
    Sender::new("noreply@acme-sp.example", "ACME Activation").unwrap()
}

fn formatted(m: &Message) -> String {
    String::from_utf8(m.formatted()).unwrap()
}

/// The value of header `name` in a formatted message (first occurrence,
/// unfolded).
fn header(text: &str, name: &str) -> Option<String> {
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case(name) {
                let mut value = v.trim().to_string();
                while let Some(next) = lines.peek() {
                    if next.starts_with([' ', '\t']) {
                        value.push(' ');
                        value.push_str(next.trim());
                        lines.next();
                    } else {
                        break;
                    }
                }
                return Some(value);
            }
        }
    }
    None
}

#[test]
fn kinds_round_trip() {
    for kind in EmailKind::ALL {
        assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(json, format!("\"{}\"", kind.as_str()), "serde uses as_str");
    }
    assert_eq!(EmailKind::parse("activation"), None);
    assert_eq!(
        EmailKind::OrgAttachApproval.to_string(),
        "org_attach_approval"
    );
}

#[test]
fn validate_refuses_what_delivery_would_fail() {
    let ok = EmailMessage::new(EmailKind::Test, ["a@example.com"], "Hi", "body");
    ok.validate().unwrap();
    let none = EmailMessage::new(EmailKind::Test, Vec::<String>::new(), "Hi", "body");
    assert_eq!(none.validate(), Err(InvalidMessage::NoRecipients));
    let bad = EmailMessage::new(EmailKind::Test, ["a@example.com", "nope"], "Hi", "b");
    assert!(
        matches!(bad.validate(), Err(InvalidMessage::BadRecipient { ref address, .. }) if address == "nope")
    );
    let injected = EmailMessage::new(
        EmailKind::Test,
        ["a@example.com"],
        "Hi\r\nBcc: x@evil.example",
        "b",
    );
    assert_eq!(injected.validate(), Err(InvalidMessage::MultiLineSubject));
}

#[test]
fn plain_message_has_the_expected_headers() {
    let msg = EmailMessage::new(
        EmailKind::ActivationLink,
        ["alice@acme.example", "bob@acme.example"],
        "Activate your account",
        "Open https://bwgate.example/activate/abc to activate.",
    );
    let (message, message_id) = compose(&sender(), &record(msg)).unwrap();
    assert_eq!(
        message_id,
        "<0123456789abcdef0123456789abcdef@acme-sp.example>"
    );
    let text = formatted(&message);
    assert_eq!(
        header(&text, "From").as_deref(),
        Some("\"ACME Activation\" <noreply@acme-sp.example>")
    );
    assert_eq!(
        header(&text, "To").as_deref(),
        Some("alice@acme.example, bob@acme.example")
    );
    assert_eq!(
        header(&text, "Subject").as_deref(),
        Some("Activate your account")
    );
    assert_eq!(header(&text, "Message-ID"), Some(message_id));
    assert_eq!(
        header(&text, "Date").as_deref(),
        Some("Tue, 14 Nov 2023 22:13:20 +0000"),
        "the time it was enqueued"
    );
    assert_eq!(
        header(&text, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        header(&text, "X-Bwgate-Kind").as_deref(),
        Some("activation_link")
    );
    assert_eq!(header(&text, "MIME-Version").as_deref(), Some("1.0"));
    assert!(header(&text, "Content-Type")
        .unwrap()
        .starts_with("text/plain; charset=utf-8"));
    assert!(
        text.contains("https://bwgate.example/activate/abc"),
        "{text}"
    );
    let envelope = message.envelope();
    assert_eq!(
        envelope.from().unwrap().to_string(),
        "noreply@acme-sp.example"
    );
    assert_eq!(envelope.to().len(), 2);
}

#[test]
fn html_makes_a_multipart_alternative() {
    let mut msg = EmailMessage::new(
        EmailKind::VerificationCode,
        ["alice@acme.example"],
        "Votre code: 123456 – bienvenue",
        "Code: 123456",
    );
    if let EmailIntent::Plain(p) = &mut msg.intent {
        p.html_body = Some("<p>Code: <b>123456</b></p>".into());
    }
    let (message, _) = compose(&sender(), &record(msg)).unwrap();
    let text = formatted(&message);
    let ct = header(&text, "Content-Type").unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    assert!(
        text.contains("Content-Type: text/plain; charset=utf-8"),
        "{text}"
    );
    assert!(
        text.contains("Content-Type: text/html; charset=utf-8"),
        "{text}"
    );
    assert!(text.contains("<b>123456</b>"), "{text}");
    let subject = header(&text, "Subject").unwrap();
    assert!(
        subject.is_ascii() && subject.contains("=?utf-8?"),
        "RFC 2047: {subject}"
    );
}

#[test]
fn unusable_addresses_fail_composition() {
    let msg = EmailMessage::new(EmailKind::Test, ["not an address"], "Hi", "b");
    assert!(matches!(
        compose(&sender(), &record(msg)),
        Err(ComposeError::BadRecipient(..))
    ));
    let msg = EmailMessage::new(EmailKind::Test, Vec::<String>::new(), "Hi", "b");
    assert_eq!(
        compose(&sender(), &record(msg)).unwrap_err(),
        ComposeError::NoRecipients
    );
    assert!(matches!(
        Sender::new("nope", "x"),
        Err(ComposeError::BadSender(..))
    ));
    // An empty display name gives the bare address.
    let bare = Sender::new("noreply@acme-sp.example", "").unwrap();
    assert_eq!(bare.mailbox().to_string(), "noreply@acme-sp.example");
}

#[test]
fn backoff_doubles_up_to_the_cap_with_little_jitter() {
    let policy = DeliveryPolicy {
        sender: sender(),
        retry_initial: Duration::from_millis(1000),
        retry_max: Duration::from_secs(10),
        give_up_after: Duration::from_secs(3600),
        lease: Duration::from_secs(60),
        node_id: "node-test".into(),
        signer: None,
    };
    for (attempts, base_ms) in [
        (1, 1000),
        (2, 2000),
        (3, 4000),
        (4, 8000),
        (5, 10_000),
        (40, 10_000),
    ] {
        for _ in 0..20 {
            let d = policy.backoff(attempts).as_millis() as u64;
            assert!(
                (base_ms..=base_ms + base_ms / 10).contains(&d),
                "attempt {attempts}: {d} ms"
            );
        }
    }
}

#[tokio::test]
async fn spool_writes_one_whole_private_file_per_email() {
    let dir = tempfile::tempdir().unwrap();
    let spool = SpoolTransport::new(dir.path().join("mail"));
    let msg = EmailMessage::new(EmailKind::Test, ["a@example.com"], "Spooled", "body");
    let (message, _) = compose(&sender(), &record(msg)).unwrap();
    spool.send(7, &message).await.unwrap();
    // A redelivery replaces the same file.
    spool.send(7, &message).await.unwrap();
    let names: Vec<String> = std::fs::read_dir(spool.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["email-00000007.eml"], "no temp files left");
    let path = spool.dir().join("email-00000007.eml");
    assert_eq!(std::fs::read(&path).unwrap(), message.formatted());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// A transport that answers from a script (then succeeds) and records what
/// it was given.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<(), SendError>>>,
    /// Answers by recipient address: the worker sends concurrently, so
    /// call order is not a stable way to pick an outcome.
    by_recipient: Vec<(String, Result<(), SendError>)>,
    sent: Mutex<Vec<(i64, String)>>,
}

impl Scripted {
    fn new(answers: Vec<Result<(), SendError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::new(answers.into()),
            by_recipient: Vec::new(),
            sent: Mutex::default(),
        })
    }

    fn by_recipient(answers: Vec<(&str, Result<(), SendError>)>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::default(),
            by_recipient: answers
                .into_iter()
                .map(|(to, r)| (to.to_string(), r))
                .collect(),
            sent: Mutex::default(),
        })
    }

    fn sent(&self) -> Vec<(i64, String)> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl MailTransport for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn send(&self, email_id: i64, message: &Message) -> Result<(), SendError> {
        let text = formatted(message);
        let scripted = self
            .by_recipient
            .iter()
            .find(|(to, _)| text.contains(&format!("To: {to}")))
            .map(|(_, r)| r.clone());
        self.sent.lock().unwrap().push((email_id, text));
        scripted.unwrap_or_else(|| self.answers.lock().unwrap().pop_front().unwrap_or(Ok(())))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SharedStore,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(&dir.path().join("bwgate.db"), &StoreConfig::default())
            .await
            .unwrap(),
    );
    Fixture { _dir: dir, store }
}

fn policy(give_up_after: Duration) -> Arc<DeliveryPolicy> {
    Arc::new(DeliveryPolicy {
        sender: sender(),
        retry_initial: Duration::from_millis(60_000),
        retry_max: Duration::from_secs(600),
        give_up_after,
        lease: Duration::from_secs(60),
        node_id: "node-test".into(),
        signer: Some(Arc::new(crate::links::LinkSigner::from_secret(&[9u8; 32]))),
    })
}

async fn pass(f: &Fixture, transport: Arc<Scripted>, policy: &Arc<DeliveryPolicy>) -> usize {
    let transport: Arc<dyn MailTransport> = transport;
    let (_tx, rx) = watch::channel(false);
    deliver_due(&f.store, &transport, policy, &rx)
        .await
        .unwrap()
}

async fn enqueue(f: &Fixture, to: &str) -> i64 {
    let msg = EmailMessage::new(EmailKind::Test, [to], format!("To {to}"), "body");
    // A second in the past: this VM's CPUs disagree on the wall clock by a
    // few milliseconds, and the pass below must see the message as due.
    f.store
        .enqueue_email(&msg, now_millis() - 1_000)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_pass_claims_as_the_policys_node() {
    // Stopped right after its claim, the pass leaves the email leased:
    // the lease names the policy's node, which releases it on restart.
    let f = fixture().await;
    enqueue(&f, "a@example.com").await;
    let transport: Arc<dyn MailTransport> = Scripted::new(Vec::new());
    let (_tx, stopped) = watch::channel(true);
    let policy = policy(Duration::from_secs(3600));
    let attempted = deliver_due(&f.store, &transport, &policy, &stopped)
        .await
        .unwrap();
    assert_eq!(attempted, 0);
    assert_eq!(f.store.release_leases("node-other").await.unwrap(), 0);
    assert_eq!(f.store.release_leases(&policy.node_id).await.unwrap(), 1);
}

#[tokio::test]
async fn worker_sends_fails_and_retries_by_outcome() {
    let f = fixture().await;
    let ok = enqueue(&f, "ok@example.com").await;
    let rejected = enqueue(&f, "rejected@example.com").await;
    let later = enqueue(&f, "later@example.com").await;
    let bad = enqueue(&f, "not an address").await;
    let transport = Scripted::by_recipient(vec![
        ("ok@example.com", Ok(())),
        (
            "rejected@example.com",
            Err(SendError::Permanent("550 5.1.1 no such user".into())),
        ),
        (
            "later@example.com",
            Err(SendError::Transient("connection refused".into())),
        ),
    ]);
    let policy = policy(Duration::from_secs(3600));
    let before = now_millis();
    assert_eq!(pass(&f, transport.clone(), &policy).await, 4);

    // All three usable ones were tried (concurrently, so in any order); the
    // unusable address never reached the transport.
    let mut ids: Vec<i64> = transport.sent().iter().map(|(id, _)| *id).collect();
    ids.sort();
    assert_eq!(ids, [ok, rejected, later]);
    let store = &f.store;
    let sent = store.email(ok).await.unwrap().unwrap();
    assert_eq!(sent.state, EmailState::Sent);
    assert_eq!(sent.attempts, 1);
    let mid = sent.message_id.clone().unwrap();
    assert_eq!(mid, format!("<{}@acme-sp.example>", sent.message_token));
    assert!(
        transport
            .sent()
            .iter()
            .any(|(id, text)| *id == ok && text.contains(&mid)),
        "the header carries it"
    );

    let failed = store.email(rejected).await.unwrap().unwrap();
    assert_eq!(failed.state, EmailState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("550 5.1.1 no such user"));

    let retry = store.email(later).await.unwrap().unwrap();
    assert_eq!(retry.state, EmailState::Pending);
    assert_eq!(retry.attempts, 1);
    assert_eq!(retry.last_error.as_deref(), Some("connection refused"));
    assert!(
        retry.next_attempt_at >= before + 60_000,
        "backs off retry_initial"
    );

    let bad = store.email(bad).await.unwrap().unwrap();
    assert_eq!(bad.state, EmailState::Failed);
    assert!(
        bad.last_error
            .as_deref()
            .unwrap()
            .contains("not an address"),
        "{:?}",
        bad.last_error
    );

    // Nothing else is due now.
    assert_eq!(pass(&f, transport.clone(), &policy).await, 0);
    assert_eq!(transport.sent().len(), 3);
}

#[tokio::test]
async fn worker_gives_up_on_old_transient_failures() {
    let f = fixture().await;
    let msg = EmailMessage::new(EmailKind::Test, ["a@example.com"], "Old", "body");
    // Enqueued two hours ago.
    let id = f
        .store
        .enqueue_email(&msg, now_millis() - 2 * 3600 * 1000)
        .await
        .unwrap()
        .unwrap();
    let transport = Scripted::new(vec![Err(SendError::Transient("451 busy".into()))]);
    pass(&f, transport, &policy(Duration::from_secs(3600))).await;
    let e = f.store.email(id).await.unwrap().unwrap();
    assert_eq!(e.state, EmailState::Failed);
    let err = e.last_error.unwrap();
    assert!(err.starts_with("gave up after 1 attempts"), "{err}");
    assert!(err.ends_with("451 busy"), "{err}");
}

#[tokio::test]
async fn mailer_enqueues_wakes_the_worker_and_stops_on_shutdown() {
    let f = fixture().await;
    let wake = Arc::new(Notify::new());
    let mailer = Mailer::new(f.store.clone(), wake.clone());
    let transport = Scripted::new(vec![]);
    let (stop, rx) = watch::channel(false);
    let cfg = SmtpConfig {
        from_address: "noreply@acme-sp.example".into(),
        ..SmtpConfig::default()
    };
    let task = spawn_mailer(
        f.store.clone(),
        transport.clone(),
        DeliveryPolicy::from_config(&cfg, "node-test").unwrap(),
        mailer.wake_handle(),
        rx,
    );
    // Let the worker reach its idle wait, so only a wake-up gets it going
    // before the idle poll.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut msg = EmailMessage::new(EmailKind::Welcome, ["a@example.com"], "Welcome", "hi");
    msg.dedupe_key = Some("welcome:1".into());
    let id = mailer.send(msg.clone()).await.unwrap().expect("enqueued");
    assert_eq!(mailer.send(msg).await.unwrap(), None, "deduplicated");
    eventually("the email sent", Duration::from_secs(5), || async {
        let e = f.store.email(id).await.unwrap().unwrap();
        if e.state == EmailState::Sent {
            Ok(())
        } else {
            Err(e)
        }
    })
    .await;
    assert_eq!(transport.sent().len(), 1, "exactly one send");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("mailer stops on shutdown")
        .unwrap();
}

#[test]
fn admin_test_message_and_list_query() {
    let msg =
        admin::test_message(br#"{"to": " ops@acme.example ", "subject": "relay check"}"#).unwrap();
    assert_eq!(msg.kind, EmailKind::Test);
    assert_eq!(msg.to, ["ops@acme.example"]);
    assert_eq!(msg.draft().subject, "relay check");
    let default_subject = admin::test_message(br#"{"to": "ops@acme.example"}"#).unwrap();
    assert_eq!(default_subject.draft().subject, "bwgate test message");
    for bad in [
        &br#"{"to": "nope"}"#[..],
        br#"{"subject": "x"}"#,
        br#"{"to": "a@b.example", "cc": "x"}"#,
        b"not json",
    ] {
        assert!(
            admin::test_message(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }

    let (f, limit) = admin::list_query(None).unwrap();
    assert_eq!((f, limit), (EmailFilter::default(), admin::LIST_DEFAULT));
    let (f, limit) = admin::list_query(Some(
        "subscriber=a%2Bb%40x&kind=activation_link&state=sent&limit=5",
    ))
    .unwrap();
    assert_eq!(f.subscriber_id.as_deref(), Some("a+b@x"));
    assert_eq!(f.kind, Some(EmailKind::ActivationLink));
    assert_eq!(f.state, Some(EmailState::Sent));
    assert_eq!(limit, 5);
    for bad in [
        "kind=nope",
        "state=done",
        "limit=0",
        "limit=100000",
        "x=1",
        "subscriber=%zz",
    ] {
        assert!(admin::list_query(Some(bad)).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn links_and_codes_are_made_at_send_time_the_same_on_every_attempt() {
    use crate::links::{LinkSigner, Reveal};
    use crate::notify::secrets::placeholder;
    use crate::notify::MailSecret;
    let f = fixture().await;
    let signer = Arc::new(LinkSigner::from_secret(&[9u8; 32]));
    let secrets = vec![
        MailSecret::SignedToken {
            purpose: "activation".into(),
            fields: vec!["sub-1".into(), "nonce".into(), "email_input".into()],
            expires_at: i64::MAX,
        },
        MailSecret::DerivedCode {
            context: "activation:sub-1:nonce:1".into(),
            digits: 6,
        },
    ];
    let (token, code) = (secrets[0].reveal(&signer), secrets[1].reveal(&signer));
    let mut msg = EmailMessage::new(
        EmailKind::VerificationCode,
        ["a@example.com"],
        format!("Your code: {}", placeholder(1)),
        format!(
            "https://p.example/v?token={}&code={}",
            placeholder(0),
            placeholder(1)
        ),
    );
    if let EmailIntent::Plain(p) = &mut msg.intent {
        p.secrets = secrets;
    }
    let id = f
        .store
        .enqueue_email(&msg, now_millis() - 1_000)
        .await
        .unwrap()
        .unwrap();
    // First attempt fails for now, the retry (due at once) goes out.
    let transport = Scripted::new(vec![Err(SendError::Transient("421 busy".into()))]);
    let policy = Arc::new(DeliveryPolicy {
        sender: sender(),
        retry_initial: Duration::ZERO,
        retry_max: Duration::ZERO,
        give_up_after: Duration::from_secs(3600),
        lease: Duration::from_secs(60),
        node_id: "node-test".into(),
        signer: Some(signer.clone()),
    });
    assert_eq!(pass(&f, transport.clone(), &policy).await, 1);
    assert_eq!(pass(&f, transport.clone(), &policy).await, 1);
    let attempts = transport.sent();
    assert_eq!(attempts.len(), 2);
    for (_, text) in &attempts {
        let text = text.replace("=\r\n", "").replace("=3D", "=");
        assert!(
            text.contains(&format!("Subject: Your code: {code}")),
            "{text}"
        );
        assert!(
            text.contains(&format!("token={token}&code={code}")),
            "{text}"
        );
        assert!(!text.contains("bwgate-secret"), "{text}");
    }
    let stored = f.store.email(id).await.unwrap().unwrap();
    assert_eq!(stored.state, EmailState::Sent);
    assert_eq!(stored.message, msg, "the row keeps its placeholders");

    // Without the key such a message cannot be made: it fails, nothing is sent.
    let id = f
        .store
        .enqueue_email(&msg, now_millis() - 1_000)
        .await
        .unwrap()
        .unwrap();
    let keyless = Arc::new(DeliveryPolicy {
        signer: None,
        ..(*policy).clone()
    });
    let transport = Scripted::new(Vec::new());
    assert_eq!(pass(&f, transport.clone(), &keyless).await, 1);
    assert!(transport.sent().is_empty());
    let failed = f.store.email(id).await.unwrap().unwrap();
    assert_eq!(failed.state, EmailState::Failed);
    assert!(failed.last_error.unwrap().contains("no key"));
}
