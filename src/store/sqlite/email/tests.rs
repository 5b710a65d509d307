//! The email outbox on real database files (tempfile).

use std::sync::Arc;

use super::enqueue_email;
use crate::config::StoreConfig;
use crate::domain::email::{EmailIntent, EmailKind, EmailMessage, MailSecret, PlainMessage};
use crate::notify::ToDraft;
use crate::store::sqlite::SqliteStore;
use crate::store::{EmailFilter, EmailOutcome, EmailState, Store, StoreError};

/// Fixed clock (unix ms).
const NOW: i64 = 1_700_000_000_000;

async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(&dir.path().join("bwgate.db"), &StoreConfig::default())
            .await
            .expect("open store"),
    )
}

fn msg(to: &str, kind: EmailKind) -> EmailMessage {
    EmailMessage::new(kind, [to], format!("Hello {to}"), "text body")
}

fn keyed(to: &str, key: &str) -> EmailMessage {
    EmailMessage {
        dedupe_key: Some(key.to_string()),
        ..msg(to, EmailKind::ActivationLink)
    }
}

async fn enqueue(store: &SqliteStore, m: &EmailMessage, now: i64) -> i64 {
    store
        .enqueue_email(m, now)
        .await
        .expect("enqueue")
        .expect("not a duplicate")
}

#[tokio::test]
async fn enqueue_round_trips_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let m = EmailMessage {
        to: vec!["a@example.com".into(), "b@example.org".into()],
        kind: EmailKind::ConsentMigration,
        subscriber_id: Some("sub-1".into()),
        dedupe_key: Some("consent:sub-1:1".into()),
        intent: EmailIntent::Plain(PlainMessage {
            subject: "Activate your account – ünïcode".into(),
            text_body: "line 1\r\nline 2".into(),
            html_body: Some("<p>hi</p>".into()),
            secrets: vec![MailSecret::SignedToken {
                purpose: "activation".into(),
                fields: vec!["sub-1".into(), "nonce".into()],
                expires_at: NOW + 1,
            }],
        }),
    };
    let id = enqueue(&store, &m, NOW).await;
    let second = enqueue(&store, &msg("c@example.com", EmailKind::Test), NOW).await;
    assert!(second > id, "ids increase");

    let got = store.email(id).await.unwrap().expect("stored");
    assert_eq!(got.id, id);
    assert_eq!(got.message, m);
    assert_eq!(got.state, EmailState::Pending);
    assert_eq!(got.attempts, 0);
    assert_eq!(got.next_attempt_at, NOW, "due at once");
    assert_eq!(got.created_at, NOW);
    assert_eq!(
        (got.sent_at, got.last_error, got.message_id),
        (None, None, None)
    );
    assert_eq!(got.message_token.len(), 32, "{}", got.message_token);
    assert!(got.message_token.bytes().all(|b| b.is_ascii_hexdigit()));
    let other = store.email(second).await.unwrap().unwrap();
    assert_ne!(other.message_token, got.message_token, "tokens are random");
    assert!(store.email(9999).await.unwrap().is_none());
}

#[tokio::test]
async fn dedupe_key_enqueues_once_whatever_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let first = enqueue(&store, &keyed("a@example.com", "k1"), NOW).await;
    // Same key, different content: still a duplicate, nothing written.
    assert_eq!(
        store
            .enqueue_email(&keyed("other@example.com", "k1"), NOW + 5)
            .await
            .unwrap(),
        None
    );
    // After it was sent, too.
    store
        .complete_email(
            first,
            EmailOutcome::Sent {
                message_id: "<x@example.com>".into(),
            },
            NOW + 10,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .enqueue_email(&keyed("a@example.com", "k1"), NOW + 20)
            .await
            .unwrap(),
        None
    );
    // Another key, and messages without a key, never collide.
    enqueue(&store, &keyed("a@example.com", "k2"), NOW).await;
    enqueue(&store, &msg("a@example.com", EmailKind::Test), NOW).await;
    enqueue(&store, &msg("a@example.com", EmailKind::Test), NOW).await;
    let all = store.emails(&EmailFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(
        all.iter()
            .filter(|e| e.message.dedupe_key.as_deref() == Some("k1"))
            .count(),
        1
    );
    let kept = store.email(first).await.unwrap().unwrap();
    assert_eq!(kept.message.to, ["a@example.com"], "the first one is kept");
}

#[tokio::test]
async fn due_emails_are_ordered_by_due_time_and_respect_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = enqueue(&store, &msg("a@example.com", EmailKind::Test), NOW).await;
    let b = enqueue(&store, &msg("b@example.com", EmailKind::Test), NOW).await;
    let c = enqueue(&store, &msg("c@example.com", EmailKind::Test), NOW + 10).await;
    let ids = |v: Vec<crate::store::EmailRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store.due_emails(NOW - 1, 10).await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(ids(store.due_emails(NOW, 10).await.unwrap()), [a, b]);
    assert_eq!(
        ids(store.due_emails(NOW + 10, 10).await.unwrap()),
        [a, b, c]
    );
    assert_eq!(
        ids(store.due_emails(NOW + 10, 2).await.unwrap()),
        [a, b],
        "limit"
    );

    // `a` backs off: not due until its retry time, then after `c` (due earlier).
    store
        .complete_email(
            a,
            EmailOutcome::Retry {
                error: "451 try later".into(),
                retry_at: NOW + 1000,
            },
            NOW + 1,
        )
        .await
        .unwrap();
    assert_eq!(ids(store.due_emails(NOW + 999, 10).await.unwrap()), [b, c]);
    assert_eq!(
        ids(store.due_emails(NOW + 1000, 10).await.unwrap()),
        [b, c, a]
    );
    let retried = store.email(a).await.unwrap().unwrap();
    assert_eq!(retried.state, EmailState::Pending);
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.next_attempt_at, NOW + 1000);
    assert_eq!(retried.last_error.as_deref(), Some("451 try later"));

    // Settled emails are never due again.
    store
        .complete_email(
            b,
            EmailOutcome::Sent {
                message_id: "<b@x.example>".into(),
            },
            NOW + 2,
        )
        .await
        .unwrap();
    store
        .complete_email(
            c,
            EmailOutcome::Failed {
                error: "550 no such user".into(),
            },
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(ids(store.due_emails(i64::MAX, 10).await.unwrap()), [a]);
}

#[tokio::test]
async fn complete_settles_once_and_names_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let id = enqueue(&store, &msg("a@example.com", EmailKind::Test), NOW).await;
    for attempt in 1..=3 {
        store
            .complete_email(
                id,
                EmailOutcome::Retry {
                    error: format!("connection refused #{attempt}"),
                    retry_at: NOW + attempt,
                },
                NOW + attempt,
            )
            .await
            .unwrap();
    }
    store
        .complete_email(
            id,
            EmailOutcome::Sent {
                message_id: "<tok@example.com>".into(),
            },
            NOW + 50,
        )
        .await
        .unwrap();
    let sent = store.email(id).await.unwrap().unwrap();
    assert_eq!(sent.state, EmailState::Sent);
    assert_eq!(sent.attempts, 4);
    assert_eq!(sent.sent_at, Some(NOW + 50));
    assert_eq!(sent.message_id.as_deref(), Some("<tok@example.com>"));
    assert_eq!(
        sent.last_error.as_deref(),
        Some("connection refused #3"),
        "the last failure stays for diagnosis"
    );

    // At least once: a repeated completion changes nothing.
    store
        .complete_email(
            id,
            EmailOutcome::Failed {
                error: "late".into(),
            },
            NOW + 60,
        )
        .await
        .unwrap();
    assert_eq!(store.email(id).await.unwrap().unwrap(), sent);

    let failed = enqueue(&store, &msg("b@example.com", EmailKind::Test), NOW).await;
    store
        .complete_email(
            failed,
            EmailOutcome::Failed {
                error: "550 5.1.1 no such user".into(),
            },
            NOW + 1,
        )
        .await
        .unwrap();
    let failed = store.email(failed).await.unwrap().unwrap();
    assert_eq!(failed.state, EmailState::Failed);
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.sent_at, None);
    assert_eq!(failed.last_error.as_deref(), Some("550 5.1.1 no such user"));

    let err = store
        .complete_email(424_242, EmailOutcome::Failed { error: "x".into() }, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::MissingReference { entity: "email", ref id } if id == "424242"),
        "{err:?}"
    );
}

#[tokio::test]
async fn emails_filter_by_subscriber_kind_and_state_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let for_sub = |to: &str, kind, sub: &str| EmailMessage {
        subscriber_id: Some(sub.to_string()),
        ..msg(to, kind)
    };
    let s1a = enqueue(
        &store,
        &for_sub("a@x.example", EmailKind::ActivationLink, "s1"),
        NOW,
    )
    .await;
    let s2 = enqueue(
        &store,
        &for_sub("b@x.example", EmailKind::ActivationLink, "s2"),
        NOW,
    )
    .await;
    let s1b = enqueue(
        &store,
        &for_sub("a@x.example", EmailKind::VerificationCode, "s1"),
        NOW,
    )
    .await;
    let test = enqueue(&store, &msg("ops@x.example", EmailKind::Test), NOW).await;
    store
        .complete_email(
            s1a,
            EmailOutcome::Sent {
                message_id: "<m@x.example>".into(),
            },
            NOW,
        )
        .await
        .unwrap();
    let ids = |f: EmailFilter, limit| {
        let store = store.clone();
        async move {
            store
                .emails(&f, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(EmailFilter::default(), 10).await, [test, s1b, s2, s1a]);
    assert_eq!(ids(EmailFilter::default(), 2).await, [test, s1b]);
    let by_sub = EmailFilter {
        subscriber_id: Some("s1".into()),
        ..EmailFilter::default()
    };
    assert_eq!(ids(by_sub.clone(), 10).await, [s1b, s1a]);
    let by_kind = EmailFilter {
        kind: Some(EmailKind::ActivationLink),
        ..EmailFilter::default()
    };
    assert_eq!(ids(by_kind.clone(), 10).await, [s2, s1a]);
    let both = EmailFilter {
        state: Some(EmailState::Pending),
        ..by_kind
    };
    assert_eq!(ids(both, 10).await, [s2]);
    assert_eq!(
        ids(
            EmailFilter {
                kind: Some(EmailKind::Test),
                ..by_sub
            },
            10
        )
        .await,
        Vec::<i64>::new()
    );
}

/// Other store code calls `enqueue_email` inside its own write: the email
/// commits, or rolls back, with the rest of that write.
#[tokio::test]
async fn enqueue_inside_another_write_shares_its_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let rolled_back = store
        .write(|conn| {
            enqueue_email(conn, &keyed("a@example.com", "tx-1"), NOW)?;
            Err::<(), _>(StoreError::Database("the state change failed".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(store
        .emails(&EmailFilter::default(), 10)
        .await
        .unwrap()
        .is_empty());
    // The key was released with the rollback.
    let id = store
        .write(|conn| {
            let id = enqueue_email(conn, &keyed("a@example.com", "tx-1"), NOW)?;
            assert_eq!(
                enqueue_email(conn, &keyed("a@example.com", "tx-1"), NOW)?,
                None,
                "duplicates are seen inside the same transaction"
            );
            Ok(id)
        })
        .await
        .unwrap()
        .expect("enqueued");
    assert_eq!(store.due_emails(NOW, 10).await.unwrap()[0].id, id);
}

#[tokio::test]
async fn pending_emails_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(&dir).await;
        let id = enqueue(&store, &keyed("a@example.com", "durable"), NOW).await;
        store.close().await.unwrap();
        id
    };
    let store = open(&dir).await;
    let due = store.due_emails(NOW, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    assert_eq!(
        store
            .enqueue_email(&keyed("a@example.com", "durable"), NOW)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn due_query_uses_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let plan: Vec<String> = store
        .read(|conn| {
            let mut stmt = conn.prepare(
                "EXPLAIN QUERY PLAN SELECT id FROM emails INDEXED BY emails_pending_due
                 WHERE state = 'pending' AND next_attempt_at <= 1
                 ORDER BY next_attempt_at, id LIMIT 5",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    let text = plan.join("\n");
    assert!(text.contains("emails_pending_due"), "{text}");
    assert!(!text.contains("TEMP B-TREE"), "no sort: {text}");

    // Read-back by subscriber or kind walks its index in id order.
    for (sql, index) in [
        ("subscriber_id = 's1'", "emails_by_subscriber"),
        ("kind = 'test'", "emails_by_kind"),
    ] {
        let plan: Vec<String> = store
            .read(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM emails WHERE {sql}
                     ORDER BY id DESC LIMIT 5"
                ))?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        let text = plan.join("\n");
        assert!(text.contains(index), "{sql}: {text}");
        assert!(!text.contains("TEMP B-TREE"), "{sql}: no sort: {text}");
    }
}

/// A database as version 7 left it: emails with their links and codes in
/// clear.
fn legacy_database(path: &std::path::Path) {
    use crate::store::sqlite::migrations::{migrate, MIGRATIONS};
    let conn = rusqlite::Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    migrate(&conn, &MIGRATIONS[..7]).unwrap();
    let insert = |kind: &str, state: &str, subject: &str, body: &str| {
        conn.execute(
            "INSERT INTO emails (kind, to_json, subject, text_body, html_body, state,
                                 next_attempt_at, created_at, message_token)
             VALUES (?1, '[\"a@x.example\"]', ?2, ?3, ?3, ?4, ?5, ?5, 'tok')",
            rusqlite::params![kind, subject, body, state, NOW],
        )
        .unwrap();
    };
    insert(
        "verification_code",
        "sent",
        "Your Webex verification code: 493817",
        "Confirm: https://p.example/activate/verify?token=SENTTOKENxxxxxxxxxxxx&code=493817",
    );
    insert(
        "consent_migration",
        "pending",
        "Consent needed",
        "Open https://p.example/consent?token=PENDINGTOKENyyyyyyyyyy",
    );
    insert("test", "sent", "Relay check", "keep these words");
}

#[tokio::test]
async fn rows_from_before_0008_lose_their_secrets_once_settled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bwgate.db");
    legacy_database(&path);
    let store = open(&dir).await;
    let all = store.emails(&EmailFilter::default(), 10).await.unwrap();
    let by_kind = |kind: EmailKind| {
        all.iter()
            .find(|e| e.message.kind == kind)
            .expect("row")
            .clone()
    };
    let sent = by_kind(EmailKind::VerificationCode);
    assert!(!sent.message.draft().subject.contains("493817"), "{sent:?}");
    assert!(
        !sent.message.draft().text_body.contains("SENTTOKEN"),
        "{sent:?}"
    );
    assert_eq!(sent.message.draft().html_body, None);
    let kept = by_kind(EmailKind::Test);
    assert_eq!(
        kept.message.draft().text_body,
        "keep these words",
        "no secret: kept"
    );
    // A pending one is still sent as it was written, then redacted.
    let pending = by_kind(EmailKind::ConsentMigration);
    assert!(pending.message.draft().text_body.contains("PENDINGTOKEN"));
    let due = store.due_emails(NOW, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, pending.id);
    store
        .complete_email(
            pending.id,
            EmailOutcome::Sent {
                message_id: "<m@x.example>".into(),
            },
            NOW + 1,
        )
        .await
        .unwrap();
    let after = store.email(pending.id).await.unwrap().unwrap();
    assert!(
        !after.message.draft().text_body.contains("PENDINGTOKEN"),
        "{after:?}"
    );
    assert_eq!(after.state, EmailState::Sent);
    store.close().await.unwrap();

    // Nor do the old words survive in the file's free space or the WAL.
    for file in ["bwgate.db", "bwgate.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        let raw = String::from_utf8_lossy(&bytes);
        for secret in ["SENTTOKEN", "493817", "PENDINGTOKEN"] {
            assert!(!raw.contains(secret), "{file} still holds {secret}");
        }
    }
}

#[tokio::test]
async fn two_claimers_never_take_one_email_and_an_expired_lease_is_retaken() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = enqueue(&store, &msg("a@example.com", EmailKind::Test), NOW).await;
    let b = enqueue(&store, &msg("b@example.com", EmailKind::Test), NOW).await;
    let c = enqueue(&store, &msg("c@example.com", EmailKind::Test), NOW + 1).await;
    let ids = |v: Vec<crate::store::EmailRecord>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let lease = |owner: &str, now: i64| crate::store::Lease {
        owner: owner.into(),
        now,
        until: now + 5_000,
    };

    let (lx, ly) = (lease("x", NOW + 1), lease("y", NOW + 1));
    let (x, y) = tokio::join!(store.claim_emails(&lx, 2), store.claim_emails(&ly, 10));
    let (x, y) = (ids(x.unwrap()), ids(y.unwrap()));
    let mut taken = [x.clone(), y.clone()].concat();
    taken.sort();
    assert_eq!(taken, [a, b, c], "each email claimed once: {x:?} {y:?}");
    assert!(store
        .claim_emails(&lease("z", NOW + 2), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.due_emails(NOW + 2, 10).await.unwrap().is_empty());

    // A retry releases its lease; the others come back when theirs expire.
    store
        .complete_email(
            a,
            EmailOutcome::Retry {
                error: "451".into(),
                retry_at: NOW + 100,
            },
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .claim_emails(&lease("z", NOW + 100), 10)
            .await
            .unwrap()),
        [a]
    );
    assert_eq!(
        ids(store
            .claim_emails(&lease("z", NOW + 1 + 5_000), 10)
            .await
            .unwrap()),
        [b, c],
        "retaken after the lease, earliest due first"
    );
    assert_eq!(store.release_leases("z").await.unwrap(), 3);
}
