//! Abuse tests: secrets at rest. Someone who can read the data directory's
//! files but holds no key (a backup, a copied database, another local
//! user) must not be able to activate, consent or approve: the files are
//! owner-only, and the database never holds a link token or a code that
//! was mailed (the mailer makes them with the key in `secret.key` at send
//! time). Mail goes to the spool (no relay configured): the `.eml` files
//! are the delivery, read here as the recipient would.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use rusqlite::types::ValueRef;
use serde_json::{json, Value};

use crate::email::{admin_post, header};
use crate::flowthrough::{add_user, document, post, subscriber, wait_status};
use crate::harness::{eventually, Server};

const AUTH: &str = "Basic YWN0OmFjdC1wdy0x"; // act:act-pw-1

fn config() -> &'static str {
    "[[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_email = \"admin@sp.example\"\n\n\
[[templates]]\nprovisioning_id = \"untrusted\"\npartner = \"sp\"\nname = \"Untrusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n\n\
[[templates]]\nprovisioning_id = \"trusted\"\npartner = \"sp\"\nname = \"Trusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n"
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn add(server: &Server, template: &str, user: &str, sp: &str, email: &str) -> String {
    let resp = post(
        server,
        &format!("/uc-one/v1/provisioning/{template}"),
        Some(AUTH),
        document(None, &[add_user(user, sp, Some(email))]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
}

/// The `n`-th spooled message (1-based, in email id order), waiting up to
/// 15 s for it.
async fn spooled(server: &Server, n: usize) -> String {
    let dir = server.path("data/mail");
    let names = eventually(
        format!("{n} messages spooled"),
        Duration::from_secs(15),
        || async {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            if names.len() >= n {
                Ok(names)
            } else {
                Err(names)
            }
        },
    )
    .await;
    std::fs::read_to_string(dir.join(&names[n - 1])).expect("read .eml")
}

/// Every text the message holds: raw, quoted-printable and base64 parts
/// decoded.
fn texts(data: &str) -> Vec<String> {
    let mut out = vec![data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")];
    for block in data.split("\r\n\r\n") {
        let joined: String = block.lines().map(str::trim).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined.as_bytes()) {
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    out
}

/// The token of the first `{page}?token=` link in the message.
fn token_in(mail: &str, page: &str) -> String {
    let needle = format!("{page}?token=");
    for text in texts(mail) {
        if let Some(i) = text.find(&needle) {
            return text[i + needle.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
        }
    }
    panic!("no {page} link in {mail}");
}

fn code_in(mail: &str) -> String {
    let subject = header(mail, "Subject").expect("subject");
    let code: String = subject.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{subject}");
    code
}

/// Every text and blob value of every table of the database, read
/// directly from the file (as anyone who can read it could).
fn stored_values(db: &Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let text = match row.get_ref(i).unwrap() {
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                    _ => continue,
                };
                out.push((table.clone(), text));
            }
        }
    }
    out
}

/// Whether `code` stands alone (not inside a longer run of digits) in `text`.
fn has_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// No link token (nor its MAC alone) and no code is anywhere in the
/// database: not in any column, not in the raw bytes of the file or its
/// WAL (free space, old page images).
fn assert_not_at_rest(server: &Server, tokens: &[&str], codes: &[&str]) {
    let db = server.path("data/bwgate.db");
    let values = stored_values(&db);
    assert!(values.len() > 10, "the database has rows: {values:?}");
    let mut needles: Vec<&str> = Vec::new();
    for token in tokens {
        let mac = token.rsplit('.').next().expect("token has a MAC");
        needles.extend([*token, mac]);
    }
    for (table, text) in &values {
        for needle in &needles {
            assert!(!text.contains(needle), "{table} holds a link token: {text}");
        }
        for code in codes {
            assert!(!has_code(text, code), "{table} holds code {code}: {text}");
        }
    }
    for file in ["data/bwgate.db", "data/bwgate.db-wal"] {
        let bytes = std::fs::read(server.path(file)).unwrap_or_default();
        let raw = String::from_utf8_lossy(&bytes);
        for needle in &needles {
            assert!(!raw.contains(needle), "{file} holds a link token");
        }
    }
}

#[tokio::test]
async fn data_files_are_owner_only_and_wide_ones_are_tightened_at_start() {
    let mut server = Server::start();
    let (status, body) = admin_post(
        &server,
        "/admin/v1/emails/test",
        &json!({"to": "ops@acme.example", "subject": "spool check"}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    spooled(&server, 1).await;

    for dir in ["data", "data/mail"] {
        assert_eq!(mode(&server.path(dir)), 0o700, "{dir}");
    }
    let mut files = vec![
        "data/bwgate.db".to_string(),
        "data/bwgate.db-wal".to_string(),
        "data/bwgate.db-shm".to_string(),
        "data/secret.key".to_string(),
    ];
    for entry in std::fs::read_dir(server.path("data/mail")).unwrap() {
        files.push(format!(
            "data/mail/{}",
            entry.unwrap().file_name().into_string().unwrap()
        ));
    }
    assert!(files.iter().any(|f| f.ends_with(".eml")), "{files:?}");
    for file in &files {
        assert_eq!(mode(&server.path(file)), 0o600, "{file}");
    }

    // Files an older version left readable by others are tightened at the
    // next start, with a warning.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let wide = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(server.path("data/bwgate.db"), wide.clone()).unwrap();
    std::fs::set_permissions(server.path("data"), std::fs::Permissions::from_mode(0o755)).unwrap();
    server.spawn();
    assert_eq!(mode(&server.path("data")), 0o700);
    assert_eq!(mode(&server.path("data/bwgate.db")), 0o600);
    for companion in ["data/bwgate.db-wal", "data/bwgate.db-shm"] {
        assert_eq!(mode(&server.path(companion)), 0o600, "{companion}");
    }
    let logs = server.logs();
    let warned: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("was readable by other users; made owner-only"))
        .collect();
    assert_eq!(warned.len(), 2, "{logs}");
    assert!(warned.iter().any(|l| l.contains("bwgate.db")), "{logs}");
    assert!(
        warned.iter().any(|l| !l.contains("bwgate.db")),
        "the directory: {logs}"
    );
}

#[tokio::test]
async fn an_untrusted_activation_and_an_approval_leave_no_usable_secret_in_the_database() {
    let server = Server::start_with(Some(config()), &[]);

    // The activation link.
    add(
        &server,
        "untrusted",
        "ann@acme.example",
        "acme",
        "ann@bw.example",
    )
    .await;
    let mail = spooled(&server, 1).await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("activation_link")
    );
    let token = token_in(&mail, "/activate");
    assert_not_at_rest(&server, &[&token], &[]);

    // The code, and the link that fills it in.
    let (status, _, page) = server
        .portal_form(
            "/activate/email",
            &[("token", &token), ("email", "ann@home.example")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mail = spooled(&server, 2).await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("verification_code")
    );
    let code = code_in(&mail);
    let verify_token = token_in(&mail, "/activate/verify");
    assert!(
        texts(&mail)
            .iter()
            .any(|t| t.contains(&format!("code={code}"))),
        "the link carries the code: {mail}"
    );
    assert_not_at_rest(&server, &[&token, &verify_token], &[&code]);
    // The admin read-back shows subjects: the code's is a placeholder.
    let (status, body) = server
        .admin_get("/admin/v1/emails?kind=verification_code")
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !has_code(&body, &code) && body.contains("bwgate-secret"),
        "{body}"
    );

    // What was mailed works end to end.
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "ann@acme.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "ann@home.example");
    assert_not_at_rest(&server, &[&token, &verify_token], &[&code]);

    // An approval link: an existing organization of 150 users needs its
    // admins' approval before an enterprise attaches (error 2017).
    let org = json!({
        "id": "big",
        "name": "Existing big",
        "userCount": 150,
        "users": [
            {"email": "admin0@big.example", "isAdmin": true},
            {"email": "bob@big.example", "isAdmin": false},
        ],
        "licenses": [{"name": "webex-meetings", "state": "active"}],
    });
    let (status, body) = server
        .admin_json("PUT", "/admin/v1/organizations/big", &org.to_string())
        .await;
    assert_eq!(status, 200, "{body}");
    let xml = add(
        &server,
        "trusted",
        "bob@bw.example",
        "ent-big",
        "bob@big.example",
    )
    .await;
    assert!(xml.contains("errorCode=\"2017\""), "{xml}");
    let mail = spooled(&server, 3).await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("org_attach_approval")
    );
    let approval = token_in(&mail, "/orgs/approve");
    assert_not_at_rest(&server, &[&approval], &[]);
    let (status, _, page) = server
        .portal_form("/orgs/approve", &[("token", &approval)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Approved"), "{page}");
    let xml = add(
        &server,
        "trusted",
        "bob@bw.example",
        "ent-big",
        "bob@big.example",
    )
    .await;
    assert!(!xml.contains("errorCode"), "approved: {xml}");
}

/// The subscriber id behind a user id (admin read-back).
async fn subscriber_id(server: &Server, user: &str) -> String {
    let (status, v) = subscriber(server, user).await;
    assert_eq!(status, 200, "{v}");
    v["subscriber"]["id"].as_str().expect("id").to_string()
}

/// The outbox commands about `subscriber_id` as (kind, state), read from
/// the database.
fn commands_of(server: &Server, subscriber_id: &str) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        server.path("data/bwgate.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, state FROM outbox WHERE subscriber_id = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([subscriber_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_consent_link_is_not_stored_and_every_removal_it_causes_is_a_delivered_command() {
    let server = Server::start_with(Some(config()), &[]);
    add(
        &server,
        "trusted",
        "old@acme.example",
        "acme",
        "pat@acme.example",
    )
    .await;
    wait_status(&server, "old@acme.example", "provisioned").await;
    // Two new subscribers of other enterprises (whose organizations their
    // first users made) wait for the same address.
    for (user, sp) in [
        ("first@beta.example", "beta"),
        ("first@gamma.example", "gamma"),
    ] {
        add(&server, "trusted", user, sp, user).await;
    }
    add(
        &server,
        "trusted",
        "one@beta.example",
        "beta",
        "pat@acme.example",
    )
    .await;
    let first = spooled(&server, 1).await;
    add(
        &server,
        "trusted",
        "two@gamma.example",
        "gamma",
        "pat@acme.example",
    )
    .await;
    let second = spooled(&server, 2).await;
    for mail in [&first, &second] {
        assert_eq!(
            header(mail, "X-Bwgate-Kind").as_deref(),
            Some("consent_migration")
        );
    }
    let (one_token, two_token) = (token_in(&first, "/consent"), token_in(&second, "/consent"));
    assert_not_at_rest(&server, &[&one_token, &two_token], &[]);
    let (old, two) = (
        subscriber_id(&server, "old@acme.example").await,
        subscriber_id(&server, "two@gamma.example").await,
    );
    let waiting: Value = subscriber(&server, "two@gamma.example").await.1;
    assert_eq!(waiting["subscriber"]["status"], "pending_user_migration");

    let (status, _, page) = server
        .portal_form("/consent", &[("token", &one_token)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    wait_status(&server, "one@beta.example", "provisioned").await;
    // Both others are gone (partial deletion drops the user id) ...
    for user in ["old@acme.example", "two@gamma.example"] {
        assert_eq!(subscriber(&server, user).await.0, 404, "{user}");
    }
    // ... and each removal went to the license core as a command: the
    // waiting one's too (it had none before).
    let t = eventually(
        "both removal commands delivered",
        Duration::from_secs(15),
        || async {
            let (o, t) = (commands_of(&server, &old), commands_of(&server, &two));
            let delivered = |v: &[(String, String)], kind: &str| {
                v.iter().any(|(k, s)| k == kind && s == "delivered")
            };
            if delivered(&o, "RemoveSubscriber") && delivered(&t, "DiscardPendingSubscriber") {
                Ok(t)
            } else {
                Err(format!("old: {o:?}, waiting: {t:?}"))
            }
        },
    )
    .await;
    assert_eq!(t.len(), 1, "{t:?}");
    // The other consent link died with its subscriber (removed: 9029).
    let (status, _, page) = server
        .portal_form("/consent", &[("token", &two_token)])
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("9029"), "{page}");
    assert_not_at_rest(&server, &[&one_token, &two_token], &[]);
}
