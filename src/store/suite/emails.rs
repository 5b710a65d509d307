//! The email outbox on any store: enqueue with dedupe keys, due order
//! and backoff, settling, the filtered list, durability across a reopen
//! and leased claims.

use std::ops::Deref;

use std::sync::Arc;

use super::*;
use crate::domain::email::{EmailIntent, EmailKind, EmailMessage, MailSecret, PlainMessage};
use crate::store::{EmailFilter, EmailOutcome, EmailState, Store, StoreError};

pub(crate) fn msg(to: &str, kind: EmailKind) -> EmailMessage {
    EmailMessage::new(kind, [to], format!("Hello {to}"), "text body")
}

pub(crate) fn keyed(to: &str, key: &str) -> EmailMessage {
    EmailMessage {
        dedupe_key: Some(key.to_string()),
        ..msg(to, EmailKind::ActivationLink)
    }
}

pub(crate) async fn enqueue(
    store: &impl Deref<Target = dyn Store>,
    m: &EmailMessage,
    now: i64,
) -> i64 {
    store
        .enqueue_email(m, now)
        .await
        .expect("enqueue")
        .expect("not a duplicate")
}

pub(crate) async fn enqueue_round_trips_every_field(factory: &dyn StoreFactory) {
    let store = empty(factory).await;
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

pub(crate) async fn dedupe_key_enqueues_once_whatever_the_state(factory: &dyn StoreFactory) {
    let store = empty(factory).await;
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

pub(crate) async fn due_emails_are_ordered_by_due_time_and_respect_backoff(
    factory: &dyn StoreFactory,
) {
    let store = empty(factory).await;
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

pub(crate) async fn complete_settles_once_and_names_unknown_ids(factory: &dyn StoreFactory) {
    let store = empty(factory).await;
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

pub(crate) async fn emails_filter_by_subscriber_kind_and_state_newest_first(
    factory: &dyn StoreFactory,
) {
    let store = empty(factory).await;
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
        let store = Arc::clone(&store.store);
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
pub(crate) async fn pending_emails_survive_a_reopen(factory: &dyn StoreFactory) {
    let db = factory.create().await;
    let id = {
        let store = db.open().await;
        let id = enqueue(&store, &keyed("a@example.com", "durable"), NOW).await;
        store.close().await.unwrap();
        id
    };
    let store = db.open().await;
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

pub(crate) async fn two_claimers_never_take_one_email_and_an_expired_lease_is_retaken(
    factory: &dyn StoreFactory,
) {
    let store = empty(factory).await;
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
