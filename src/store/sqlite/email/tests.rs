//! SQLite's email outbox internals: `enqueue_email` inside another write,
//! the due query's partial index, and the 0008 migration that drops stored
//! secrets. The behaviour any back-end has is in `store::suite::emails`.

use std::sync::Arc;

use super::enqueue_email;
use crate::config::StoreConfig;
use crate::domain::email::EmailKind;
use crate::notify::ToDraft;
use crate::store::sqlite::SqliteStore;
use crate::store::suite::emails::keyed;
use crate::store::suite::NOW;
use crate::store::{EmailFilter, EmailOutcome, EmailState, Store, StoreError};

async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(&dir.path().join("bwgate.db"), &StoreConfig::default())
            .await
            .expect("open store"),
    )
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
