//! The activation flows on any store: untrusted email input and
//! verification, attempts and lockout, "provision admin first", consent to
//! move an email, and an admin's renewal.

use std::sync::Arc;

use super::*;
use crate::activation::{ActivationClaim, ActivationLinks};
use crate::commands::Command;
use crate::domain::activation::{ActivationPolicy, ActivationPurpose};
use crate::domain::email::EmailKind;
use crate::domain::lifecycle::{Rejection, SubscriberStatus};
use crate::domain::{CustomerTemplate, ErrorCode};
use crate::links::LinkSigner;
use crate::notify::ToDraft;
use crate::provision::testing::UseCases;
use crate::provision::{ActivationAction, ActivationStep, DeliveryOutcome};
use crate::store::{ActivationView, EmailFilter};

fn links() -> Arc<ActivationLinks> {
    Arc::new(ActivationLinks {
        signer: Arc::new(LinkSigner::from_secret(&[4u8; 32])),
        portal_base: "https://portal.example".into(),
        policy: ActivationPolicy {
            max_code_attempts: 3,
            ..ActivationPolicy::default()
        },
    })
}

async fn untrusted(store: &Fixture) -> CustomerTemplate {
    template(store, "untrusted", true, false).await
}

/// Accepts AddUsers with activation links on.
async fn add_users(store: &Fixture, t: &CustomerTemplate, users: &[(&str, Option<&str>)]) {
    let ops = users.iter().map(|(u, e)| add(u, "SP1", "G1", *e)).collect();
    let mut b = batch(t, &format!("T-{}", users[0].0), None, ops);
    b.activations = Some(links());
    let out = store.accept(b).await.expect("accept");
    assert!(
        out.results.iter().all(|r| r.error_code.is_none()),
        "{out:?}"
    );
}

/// The claim of the subscriber's current link (as the portal reads it).
async fn claim(store: &Fixture, user: &str) -> ActivationClaim {
    let s = sub(store, user).await;
    let view = store.activation(&s.id).await.unwrap().expect("activation");
    let l = links();
    let url = l.url(&view.activation);
    l.verify(url.split_once("token=").unwrap().1, NOW)
        .expect("own link verifies")
}

async fn step(
    store: &Fixture,
    claim: &ActivationClaim,
    action: ActivationAction,
    now: i64,
) -> Result<ActivationView, Rejection> {
    store
        .activation_step(ActivationStep {
            links: links(),
            claim: claim.clone(),
            action,
            tracking_id: format!("T-step-{now}"),
            now,
        })
        .await
        .expect("store")
}

fn email(e: &str) -> ActivationAction {
    ActivationAction::SubmitEmail { email: e.into() }
}

/// The code of the newest verification email to `to`, as the mailer makes
/// it at send time (the stored row holds a placeholder).
async fn sent_code(store: &Fixture, to: &str) -> String {
    let mail = mails(store, EmailKind::VerificationCode)
        .await
        .into_iter()
        .find(|m| m.message.to == [to])
        .expect("a code was mailed");
    let subject = crate::notify::secrets::fill(
        &mail.message.draft().subject,
        &mail.message.draft().secrets,
        &links().signer,
    );
    let code: String = subject.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{subject}");
    code
}

fn code(c: &str) -> ActivationAction {
    ActivationAction::VerifyCode { code: c.into() }
}

async fn mails(store: &Fixture, kind: EmailKind) -> Vec<crate::store::EmailRecord> {
    store
        .emails(
            &EmailFilter {
                subscriber_id: None,
                kind: Some(kind),
                state: None,
            },
            100,
        )
        .await
        .unwrap()
}

async fn kinds_for(store: &Fixture, subscriber_id: &str) -> Vec<&'static str> {
    outbox(store)
        .await
        .iter()
        .filter(|e| e.envelope.command.subscriber_id() == Some(subscriber_id))
        .map(|e| e.envelope.command.kind())
        .collect()
}

pub(crate) async fn untrusted_add_waits_until_an_email_is_entered_and_verified(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_users(s, &t, &[("u1@acme.example", Some("given@acme.example"))]).await;

    let u1 = sub(s, "u1@acme.example").await;
    assert_eq!(u1.status, SubscriberStatus::PendingEmailInput);
    assert!(
        kinds_for(s, &u1.id).await.is_empty(),
        "nothing provisioned yet"
    );
    // The enterprise's organization waits too: an unverified address
    // decides nothing (the verified one may attach it elsewhere).
    assert!(outbox(s).await.is_empty(), "no organization announced yet");
    // The activation link went to the (untrusted) address from BroadWorks.
    let sent = mails(s, EmailKind::ActivationLink).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message.to, ["given@acme.example"]);
    assert!(sent[0]
        .message
        .draft()
        .text_body
        .contains("https://portal.example/activate?token="));

    let c = claim(s, "u1@acme.example").await;
    assert_eq!(c.purpose, ActivationPurpose::EmailInput);
    // A link with another nonce (an older link) is refused, changing nothing.
    let before = snapshot(s).await;
    let stale = ActivationClaim {
        nonce: "old".into(),
        ..c.clone()
    };
    let err = step(s, &stale, email("me@home.example"), NOW + 1)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid);
    assert_eq!(snapshot(s).await, before);

    // The user enters an address: a code goes there.
    let v = step(s, &c, email("me@home.example"), NOW + 2)
        .await
        .unwrap();
    assert_eq!(
        v.subscriber.status,
        SubscriberStatus::PendingEmailValidation
    );
    assert_eq!(
        v.activation.pending_email.as_deref(),
        Some("me@home.example")
    );
    assert_eq!(v.emails_enqueued, 1);
    let codes = mails(s, EmailKind::VerificationCode).await;
    assert_eq!(codes[0].message.to, ["me@home.example"]);
    let sent = sent_code(s, "me@home.example").await;
    for stored in [
        &codes[0].message.draft().subject,
        &codes[0].message.draft().text_body,
    ] {
        assert!(!stored.contains(&sent), "no code at rest: {stored}");
    }
    let hash = v.activation.code_hash.clone().expect("hash kept");
    assert_ne!(hash, sent);
    assert!(
        !codes[0]
            .message
            .draft()
            .text_body
            .contains(&v.activation.nonce),
        "only the signed token travels"
    );

    // A wrong code counts (committed although refused).
    let err = step(s, &c, code("000000"), NOW + 3).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::VerificationCodeInvalid);
    assert!(err.message().contains("2 attempts left"), "{err:?}");
    let now_state = s.activation(&u1.id).await.unwrap().unwrap();
    assert_eq!(now_state.activation.code_attempts, 1);
    assert_eq!(
        now_state.subscriber.status,
        SubscriberStatus::PendingEmailValidation
    );

    // The right code provisions the subscriber with the verified address.
    let v = step(s, &c, code(&sent_code(s, "me@home.example").await), NOW + 4)
        .await
        .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(v.subscriber.email.as_deref(), Some("me@home.example"));
    assert_eq!(v.commands_written, 2, "the organization, then the user");
    assert!(v.activation.completed_at.is_some());
    assert_eq!(kinds_for(s, &u1.id).await, ["ProvisionSubscriber"]);
    let kinds: Vec<&str> = outbox(s)
        .await
        .iter()
        .map(|e| e.envelope.command.kind())
        .collect();
    assert_eq!(kinds, ["EnsureOrganization", "ProvisionSubscriber"]);
    let provision = outbox(s).await.into_iter().last().unwrap();
    match provision.envelope.command {
        Command::ProvisionSubscriber { email, .. } => {
            assert_eq!(email.as_deref(), Some("me@home.example"))
        }
        other => panic!("{other:?}"),
    }

    // The link is used up.
    let before = snapshot(s).await;
    let err = step(s, &c, code(&sent_code(s, "me@home.example").await), NOW + 5)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid);
    assert_eq!(snapshot(s).await, before);
}

pub(crate) async fn too_many_wrong_codes_lock_the_activation_even_for_the_right_code(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_users(s, &t, &[("u1@acme.example", None)]).await;
    assert!(
        mails(s, EmailKind::ActivationLink).await.is_empty(),
        "no address to send the link to"
    );
    let c = claim(s, "u1@acme.example").await;
    step(s, &c, email("me@home.example"), NOW + 1)
        .await
        .unwrap();
    for i in 0..2 {
        let err = step(s, &c, code("999999"), NOW + 2 + i).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::VerificationCodeInvalid);
    }
    let err = step(s, &c, code("999999"), NOW + 10).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyAttempts);
    assert!(err.message().contains("15 minutes"), "{err:?}");
    // Locked: the right code and a new email are refused, nothing changes.
    let before = snapshot(s).await;
    let err = step(
        s,
        &c,
        code(&sent_code(s, "me@home.example").await),
        NOW + 11,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyAttempts);
    let err = step(s, &c, email("me@home.example"), NOW + 12)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyAttempts);
    assert_eq!(snapshot(s).await, before);
    // After the lock a new code can be requested and used.
    let later = NOW + 10 + 15 * 60 * 1000;
    step(s, &c, email("me@home.example"), later).await.unwrap();
    let v = step(
        s,
        &c,
        code(&sent_code(s, "me@home.example").await),
        later + 1,
    )
    .await
    .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
}

pub(crate) async fn provision_admin_first_holds_other_users_until_the_admin_is_active(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_users(s, &t, &[("admin@acme.example", None)]).await;
    add_users(s, &t, &[("bob@acme.example", None)]).await;
    let (admin, bob) = (
        claim(s, "admin@acme.example").await,
        claim(s, "bob@acme.example").await,
    );
    step(s, &bob, email("bob@home.example"), NOW + 1)
        .await
        .unwrap();
    let before = snapshot(s).await;
    let err = step(
        s,
        &bob,
        code(&sent_code(s, "bob@home.example").await),
        NOW + 2,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::AdminNotActive);
    assert_eq!(snapshot(s).await, before, "nothing changes, the code stays");

    step(s, &admin, email("admin@home.example"), NOW + 3)
        .await
        .unwrap();
    let v = step(
        s,
        &admin,
        code(&sent_code(s, "admin@home.example").await),
        NOW + 4,
    )
    .await
    .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    // Still not active until the core has provisioned the admin.
    let err = step(
        s,
        &bob,
        code(&sent_code(s, "bob@home.example").await),
        NOW + 5,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::AdminNotActive);
    for e in s.due_commands(NOW + 10, 100).await.unwrap() {
        s.complete_command(e.seq, DeliveryOutcome::delivered(), NOW + 6)
            .await
            .unwrap();
    }
    assert_eq!(
        sub(s, "admin@acme.example").await.status,
        SubscriberStatus::Provisioned
    );
    let v = step(
        s,
        &bob,
        code(&sent_code(s, "bob@home.example").await),
        NOW + 7,
    )
    .await
    .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
}

pub(crate) async fn a_deleted_admin_no_longer_holds_the_others(factory: &dyn StoreFactory) {
    // The first user (the admin) is deleted before activating: the others
    // used to wait for good (9028); now the next to finish is the admin.
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_users(s, &t, &[("admin@acme.example", None)]).await;
    add_users(s, &t, &[("bob@acme.example", None)]).await;
    add_users(s, &t, &[("cy@acme.example", None)]).await;
    let admin_id = sub(s, "admin@acme.example").await.id;
    let bob = claim(s, "bob@acme.example").await;
    step(s, &bob, email("bob@home.example"), NOW + 1)
        .await
        .unwrap();
    let out = accept(s, &t, "T-del", vec![delete("admin@acme.example")]).await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Removed));

    let v = step(
        s,
        &bob,
        code(&sent_code(s, "bob@home.example").await),
        NOW + 2,
    )
    .await
    .expect("no longer held by the removed admin");
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    let org_id = v.subscriber.org_id.clone().expect("org");
    let admin_now = crate::store::transact(&**s, move |tx| tx.org_admin(&org_id))
        .await
        .expect("org admin");
    assert_eq!(
        admin_now.map(|(id, _)| id),
        Some(v.subscriber.id.clone()),
        "bob is the organization's admin now (was {admin_id})"
    );
    // And bob holds the next user as the admin did.
    let cy = claim(s, "cy@acme.example").await;
    step(s, &cy, email("cy@home.example"), NOW + 3)
        .await
        .unwrap();
    let err = step(
        s,
        &cy,
        code(&sent_code(s, "cy@home.example").await),
        NOW + 4,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::AdminNotActive);
}

pub(crate) async fn without_admin_first_whoever_activates_first_becomes_admin(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let mut t = untrusted(s).await;
    t.settings.provision_admin_first = false;
    s.upsert_template(&t).await.unwrap();
    add_users(s, &t, &[("first@acme.example", None)]).await;
    add_users(s, &t, &[("second@acme.example", None)]).await;
    let second = claim(s, "second@acme.example").await;
    step(s, &second, email("second@home.example"), NOW + 1)
        .await
        .unwrap();
    let v = step(
        s,
        &second,
        code(&sent_code(s, "second@home.example").await),
        NOW + 2,
    )
    .await
    .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    let org_id = v.subscriber.org_id.clone().unwrap();
    let admin: Option<String> = value(
        s,
        "SELECT admin_subscriber_id FROM organizations WHERE id = ?1",
        &[&org_id],
    )
    .await;
    assert_eq!(admin.as_deref(), Some(v.subscriber.id.as_str()));
}

pub(crate) async fn consent_removes_the_old_account_and_provisions_with_the_same_email(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = template(s, "trusted", true, true).await;
    add_users(s, &t, &[("old@acme.example", Some("pat@acme.example"))]).await;
    add_users(s, &t, &[("new@acme.example", Some("pat@acme.example"))]).await;
    let (old, new) = (
        sub(s, "old@acme.example").await,
        sub(s, "new@acme.example").await,
    );
    assert_eq!(old.status, SubscriberStatus::Provisioning);
    assert_eq!(new.status, SubscriberStatus::PendingUserMigration);
    let consent = mails(s, EmailKind::ConsentMigration).await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].message.to, ["pat@acme.example"]);
    assert!(consent[0]
        .message
        .draft()
        .text_body
        .contains("https://portal.example/consent?token="));

    let c = claim(s, "new@acme.example").await;
    assert_eq!(c.purpose, ActivationPurpose::ConsentMigration);
    // A consent link does not take an email or a code.
    let err = step(s, &c, email("x@y.example"), NOW + 1)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid);

    let v = step(s, &c, ActivationAction::Consent, NOW + 2)
        .await
        .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(v.commands_written, 2);
    let old_after = s.subscriber(&old.id).await.unwrap().unwrap();
    assert_eq!(old_after.status, SubscriberStatus::Removed);
    assert_eq!(
        kinds_for(s, &old.id).await,
        ["ProvisionSubscriber", "RemoveSubscriber"]
    );
    assert_eq!(kinds_for(s, &new.id).await, ["ProvisionSubscriber"]);
    let err = step(s, &c, ActivationAction::Consent, NOW + 3)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid, "used once");
}

pub(crate) async fn consent_removes_others_waiting_for_the_email_each_with_its_command(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = template(s, "trusted", true, true).await;
    add_users(s, &t, &[("old@acme.example", Some("pat@acme.example"))]).await;
    add_users(s, &t, &[("one@acme.example", Some("pat@acme.example"))]).await;
    add_users(s, &t, &[("two@acme.example", Some("pat@acme.example"))]).await;
    let (old, one, two) = (
        sub(s, "old@acme.example").await,
        sub(s, "one@acme.example").await,
        sub(s, "two@acme.example").await,
    );
    assert_eq!(one.status, SubscriberStatus::PendingUserMigration);
    assert_eq!(two.status, SubscriberStatus::PendingUserMigration);
    assert!(
        kinds_for(s, &two.id).await.is_empty(),
        "the core never knew it"
    );

    let c = claim(s, "one@acme.example").await;
    let v = step(s, &c, ActivationAction::Consent, NOW + 2)
        .await
        .unwrap();
    assert_eq!(v.commands_written, 3, "two removals and the provision");
    let two_after = s.subscriber(&two.id).await.unwrap().unwrap();
    assert_eq!(two_after.status, SubscriberStatus::Removed);
    // The waiting one's removal is a normalized command too, in the same
    // transaction, for the core to forget it.
    assert_eq!(kinds_for(s, &two.id).await, ["DiscardPendingSubscriber"]);
    assert_eq!(
        kinds_for(s, &old.id).await,
        ["ProvisionSubscriber", "RemoveSubscriber"]
    );
    assert_eq!(kinds_for(s, &one.id).await, ["ProvisionSubscriber"]);
    match &outbox(s)
        .await
        .into_iter()
        .find(|e| e.envelope.command.subscriber_id() == Some(two.id.as_str()))
        .expect("command")
        .envelope
        .command
    {
        Command::DiscardPendingSubscriber {
            org_id,
            subscriber_version,
            ..
        } => {
            assert_eq!(Some(org_id), two.org_id.as_ref());
            assert_eq!(*subscriber_version, two_after.version);
        }
        other => panic!("{other:?}"),
    }
}

pub(crate) async fn renewal_replaces_the_link_and_only_applies_to_waiting_users(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_users(s, &t, &[("u1@acme.example", None)]).await;
    let first = claim(s, "u1@acme.example").await;
    step(s, &first, email("me@home.example"), NOW + 1)
        .await
        .unwrap();
    let u1 = sub(s, "u1@acme.example").await;
    let v = s
        .renew_activation(links(), &u1.id, Some("other@home.example".into()), NOW + 2)
        .await
        .unwrap()
        .unwrap();
    // Back to the first step, with a new link mailed to the given address.
    assert_eq!(v.subscriber.status, SubscriberStatus::PendingEmailInput);
    assert_eq!(v.emails_enqueued, 1);
    let sent = mails(s, EmailKind::ActivationLink).await;
    assert_eq!(sent[0].message.to, ["other@home.example"]);
    let err = step(
        s,
        &first,
        code(&sent_code(s, "me@home.example").await),
        NOW + 3,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid, "old link died");
    let second = claim(s, "u1@acme.example").await;
    assert_ne!(second.nonce, first.nonce);
    step(s, &second, email("me@home.example"), NOW + 4)
        .await
        .unwrap();
    step(
        s,
        &second,
        code(&sent_code(s, "me@home.example").await),
        NOW + 5,
    )
    .await
    .unwrap();
    let err = s
        .renew_activation(links(), &u1.id, None, NOW + 6)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::WrongState);
    let err = s
        .renew_activation(links(), "no-such-id", None, NOW + 6)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

pub(crate) async fn a_trusted_email_sent_later_by_modify_ends_the_wait(factory: &dyn StoreFactory) {
    let f = fixture(factory).await;
    let s = &f;
    // Subscribers still waiting for an email when their template turns to
    // trusted emails (a trusted AddUser without one is refused, 1001).
    let waiting = template(s, "trusted", true, false).await;
    add_users(s, &waiting, &[("u1@acme.example", None)]).await;
    add_users(s, &waiting, &[("u2@acme.example", None)]).await;
    let t = template(s, "trusted", true, true).await;
    add_users(s, &t, &[("u3@acme.example", Some("taken@acme.example"))]).await;
    let u1 = sub(s, "u1@acme.example").await;
    assert_eq!(u1.status, SubscriberStatus::PendingEmailInput);
    let link = claim(s, "u1@acme.example").await;

    let modify = |user: &str, email: &str| {
        let mut c = no_changes(user);
        c.email = Some(email.to_string());
        crate::domain::subscriber::Operation::ModifyUser(c)
    };
    let mut b = batch(
        &t,
        "T-mod",
        None,
        vec![modify("u1@acme.example", "u1@mail.example")],
    );
    b.activations = Some(links());
    let out = s.accept(b).await.unwrap();
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Provisioning));
    let u1 = sub(s, "u1@acme.example").await;
    assert_eq!(u1.email.as_deref(), Some("u1@mail.example"));
    assert_eq!(kinds_for(s, &u1.id).await, ["ProvisionSubscriber"]);
    let err = step(s, &link, email("x@y.example"), NOW + 1)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ActivationLinkInvalid, "used up");

    // An address another account holds turns the wait into a consent.
    let mut b = batch(
        &t,
        "T-mod2",
        None,
        vec![modify("u2@acme.example", "taken@acme.example")],
    );
    b.activations = Some(links());
    let out = s.accept(b).await.unwrap();
    assert_eq!(
        out.results[0].status,
        Some(SubscriberStatus::PendingUserMigration)
    );
    let u2 = sub(s, "u2@acme.example").await;
    assert!(kinds_for(s, &u2.id).await.is_empty());
    let consent = mails(s, EmailKind::ConsentMigration).await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].message.to, ["taken@acme.example"]);
    assert_eq!(
        claim(s, "u2@acme.example").await.purpose,
        ActivationPurpose::ConsentMigration
    );
}

/// A small existing organization (attaches without approval) listing
/// `users`.
async fn existing_org(store: &Fixture, id: &str, users: &[&str]) {
    existing_org_with(store, id, users, false).await
}

async fn existing_org_with(store: &Fixture, id: &str, users: &[&str], email_suppression: bool) {
    use crate::domain::organization::{ExistingOrganization, OrgUser};
    store
        .upsert_existing_orgs(vec![ExistingOrganization {
            id: id.into(),
            name: format!("Org {id}"),
            user_count: 10,
            users: users
                .iter()
                .map(|u| OrgUser {
                    email: (*u).into(),
                    is_admin: false,
                })
                .collect(),
            verified_domains: vec![],
            claimed_domains: vec![],
            licenses: vec![],
            auth_settings: serde_json::Value::Null,
            email_suppression,
            branding: None,
        }])
        .await
        .expect("existing org");
}

/// AddUsers for one enterprise (`sp`) with activation links on.
async fn add_in(store: &Fixture, t: &CustomerTemplate, sp: &str, user: &str, email: Option<&str>) {
    let mut b = batch(
        t,
        &format!("T-{user}"),
        None,
        vec![add(user, sp, "G1", email)],
    );
    b.activations = Some(links());
    let out = store.accept(b).await.expect("accept");
    assert!(out.results[0].error_code.is_none(), "{out:?}");
}

/// Enters and verifies `address` on the subscriber's current link.
async fn verify_address(store: &Fixture, user: &str, address: &str, now: i64) -> ActivationView {
    let c = claim(store, user).await;
    step(store, &c, email(address), now)
        .await
        .expect("code sent, whoever holds the address");
    let code = sent_code(store, address).await;
    step(store, &c, code_action(&code), now + 1)
        .await
        .expect("verified")
}

fn code_action(c: &str) -> ActivationAction {
    code(c)
}

fn all_kinds(entries: &[crate::store::OutboxEntry]) -> Vec<&'static str> {
    entries.iter().map(|e| e.envelope.command.kind()).collect()
}

pub(crate) async fn an_existing_org_user_named_by_a_later_user_waits_for_consent_and_leaves_that_org(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    existing_org(s, "ext", &["pat@ext.example", "kim@ext.example"]).await;
    let t = template(s, "trusted", true, true).await;
    // SP1's organization is made by its first user…
    add_in(
        s,
        &t,
        "SP1",
        "first@acme.example",
        Some("first@acme.example"),
    )
    .await;
    // …so a later user whose address an existing organization's user holds
    // (not a subscriber here) is not provisioned in a second organization.
    add_in(s, &t, "SP1", "pat@acme.example", Some("pat@ext.example")).await;
    let pat = sub(s, "pat@acme.example").await;
    assert_eq!(pat.status, SubscriberStatus::PendingUserMigration);
    assert!(
        kinds_for(s, &pat.id).await.is_empty(),
        "nothing provisioned"
    );
    let consent = mails(s, EmailKind::ConsentMigration).await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].message.to, ["pat@ext.example"]);

    let c = claim(s, "pat@acme.example").await;
    let v = step(s, &c, ActivationAction::Consent, NOW + 1)
        .await
        .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(
        kinds_for(s, &pat.id).await,
        ["MoveAccount", "ProvisionSubscriber"],
        "the account leaves its organization first"
    );
    let moved = outbox(s)
        .await
        .into_iter()
        .find(|e| e.envelope.command.kind() == "MoveAccount")
        .expect("MoveAccount");
    match moved.envelope.command {
        Command::MoveAccount {
            email, from_org_id, ..
        } => {
            assert_eq!(
                (email.as_str(), from_org_id.as_str()),
                ("pat@ext.example", "ext")
            );
        }
        other => panic!("{other:?}"),
    }
    let ext = s.existing_org("ext").await.unwrap().unwrap().organization;
    assert_eq!(
        ext.users
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        ["kim@ext.example"],
        "pat left ext"
    );
    assert_eq!(ext.user_count, 9);
}

pub(crate) async fn untrusted_addresses_held_elsewhere_are_verified_then_moved_by_consent(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let trusted = template(s, "trusted", true, true).await;
    add_in(
        s,
        &trusted,
        "OLD",
        "old@acme.example",
        Some("kim@home.example"),
    )
    .await;
    let old = sub_id(s, "old@acme.example").await;
    let t = untrusted(s).await;
    add_in(s, &t, "SP1", "one@acme.example", None).await;
    add_in(s, &t, "SP1", "two@acme.example", None).await;
    // The enterprise's first verified user settles its organization.
    let v = verify_address(s, "one@acme.example", "one@home.example", NOW).await;
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    deliver_all(s).await; // the admin is active: the others may finish

    // A later user enters an address another account holds: no 9001, a
    // code goes there (telling would say which addresses have accounts)…
    let v = verify_address(s, "two@acme.example", "kim@home.example", NOW + 10).await;
    // …and once verified, the move waits for the user's consent.
    assert_eq!(v.subscriber.status, SubscriberStatus::PendingUserMigration);
    assert_eq!(v.subscriber.email.as_deref(), Some("kim@home.example"));
    assert_eq!(v.activation.purpose, ActivationPurpose::ConsentMigration);
    assert_eq!(v.commands_written, 0);
    let consent = mails(s, EmailKind::ConsentMigration).await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].message.to, ["kim@home.example"]);
    let two = sub(s, "two@acme.example").await;
    let c = claim(s, "two@acme.example").await;
    let v = step(s, &c, ActivationAction::Consent, NOW + 20)
        .await
        .unwrap();
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(sub_by_id(s, &old).await.status, SubscriberStatus::Removed);
    assert_eq!(kinds_for(s, &two.id).await, ["ProvisionSubscriber"]);

    // The first user of another enterprise takes a held address at once.
    add_in(s, &t, "SP2", "three@acme.example", None).await;
    let v = verify_address(s, "three@acme.example", "kim@home.example", NOW + 30).await;
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(
        sub_by_id(s, &two.id).await.status,
        SubscriberStatus::Removed,
        "moved to the first user of SP2's new organization"
    );
}

async fn sub_id(store: &Fixture, user: &str) -> String {
    sub(store, user).await.id
}

async fn sub_by_id(store: &Fixture, id: &str) -> SubscriberRecord {
    store.subscriber(id).await.unwrap().expect("stored")
}

pub(crate) async fn an_untrusted_address_attaches_the_enterprise_only_once_verified(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    existing_org(s, "small", &["boss@small.example"]).await;
    let t = untrusted(s).await;
    // BroadWorks sends an address of the small organization: unverified,
    // it attaches nothing and grants the partner nothing.
    add_in(s, &t, "SP1", "u1@acme.example", Some("boss@small.example")).await;
    assert!(
        outbox(s).await.is_empty(),
        "{:?}",
        all_kinds(&outbox(s).await)
    );
    let report = s.existing_org("small").await.unwrap().unwrap();
    assert!(report.link.is_none());
    assert!(report.partner_roles.is_empty());
    // The user verifies another address: SP1 gets its own organization.
    let v = verify_address(s, "u1@acme.example", "me@home.example", NOW).await;
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(
        all_kinds(&outbox(s).await),
        ["EnsureOrganization", "ProvisionSubscriber"]
    );
    assert!(s
        .existing_org("small")
        .await
        .unwrap()
        .unwrap()
        .link
        .is_none());

    // In SP2 the verified address is the small organization's: attach.
    add_in(s, &t, "SP2", "u2@acme.example", None).await;
    let v = verify_address(s, "u2@acme.example", "boss@small.example", NOW + 10).await;
    assert_eq!(v.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(v.subscriber.org_id.as_deref(), Some("small"));
    assert_eq!(
        all_kinds(&outbox(s).await)[2..],
        ["AttachOrganization", "ProvisionSubscriber"]
    );
    let report = s.existing_org("small").await.unwrap().unwrap();
    assert!(report.link.is_some(), "linked to SP2");
    assert_eq!(report.partner_roles.len(), 1);
}

pub(crate) async fn an_organization_that_suppresses_emails_gets_no_activation_or_consent_emails(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    existing_org_with(s, "quiet", &["boss@quiet.example"], true).await;
    existing_org(s, "loud", &["boss@loud.example"]).await;
    let trusted = template(s, "trusted", true, true).await;
    add_in(
        s,
        &trusted,
        "SP1",
        "boss@acme.example",
        Some("boss@quiet.example"),
    )
    .await;
    add_in(
        s,
        &trusted,
        "SP2",
        "boss@bw.example",
        Some("boss@loud.example"),
    )
    .await;
    assert_eq!(
        sub(s, "boss@acme.example").await.org_id.as_deref(),
        Some("quiet")
    );
    // An address another account holds: consent, but no consent email in
    // the quiet organization (an admin's retry hands out the link)…
    add_in(
        s,
        &trusted,
        "SP9",
        "kim@acme.example",
        Some("kim@home.example"),
    )
    .await;
    add_in(
        s,
        &trusted,
        "SP1",
        "kim2@acme.example",
        Some("kim@home.example"),
    )
    .await;
    assert_eq!(
        sub(s, "kim2@acme.example").await.status,
        SubscriberStatus::PendingUserMigration
    );
    assert!(mails(s, EmailKind::ConsentMigration).await.is_empty());
    // …nor an activation link for an untrusted user joining it, while the
    // same user joining the loud organization gets one.
    let t = untrusted(s).await;
    add_in(s, &t, "SP1", "u1@acme.example", Some("u1@quiet.example")).await;
    add_in(s, &t, "SP2", "u2@acme.example", Some("u2@loud.example")).await;
    let links_sent: Vec<Vec<String>> = mails(s, EmailKind::ActivationLink)
        .await
        .into_iter()
        .map(|m| m.message.to)
        .collect();
    assert_eq!(links_sent, [vec!["u2@loud.example".to_string()]]);
    // The code the user asks for on the portal still goes (it proves the
    // address; without it the user could not finish).
    let c = claim(s, "u1@acme.example").await;
    step(s, &c, email("u1@home.example"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(mails(s, EmailKind::VerificationCode).await.len(), 1);
}

pub(crate) async fn a_template_removed_from_the_config_is_disabled_kept_and_refuses_activation(
    factory: &dyn StoreFactory,
) {
    use crate::domain::template::TemplateSource;
    let s = fixture(factory).await;
    // Declared in the configuration file (source config) …
    let t = CustomerTemplate {
        source: TemplateSource::Config,
        ..untrusted(&s).await
    };
    s.upsert_template(&t).await.expect("config template");
    // … and one created otherwise, which the config sync leaves alone.
    let api = template(&s, "api-made", true, true).await;
    add_users(&s, &t, &[("wait@bw.example", Some("wait@x.example"))]).await;
    let c = claim(&s, "wait@bw.example").await;

    // The file no longer declares it: disabled, nothing deleted.
    let disabled = s.sync_config_templates(&[], NOW + 1).await.expect("sync");
    assert_eq!(disabled, ["untrusted"]);
    let stored = s.template("untrusted").await.unwrap().expect("kept");
    assert_eq!(stored.disabled_at, Some(NOW + 1));
    assert!(stored.is_disabled());
    let listed = s.templates().await.unwrap();
    assert!(listed
        .iter()
        .any(|x| x.provisioning_id == "untrusted" && x.is_disabled()));
    let other = s.template("api-made").await.unwrap().expect("api template");
    assert_eq!(other, api, "an api template is not touched");
    let waiting = sub(&s, "wait@bw.example").await;
    assert_eq!(waiting.status, SubscriberStatus::PendingEmailInput);
    // Its waiting users cannot finish on the portal (a clear code).
    let r = step(&s, &c, email("wait@x.example"), NOW + 2)
        .await
        .expect_err("refused");
    assert_eq!(r.code, ErrorCode::TemplateDisabled);
    assert_eq!(
        sub(&s, "wait@bw.example").await.status,
        SubscriberStatus::PendingEmailInput
    );
    // Again without it: nothing more to disable, the time stays.
    assert!(s
        .sync_config_templates(&[], NOW + 3)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.template("untrusted").await.unwrap().unwrap().disabled_at,
        Some(NOW + 1)
    );

    // Declared again: enabled, and the activation goes on.
    let back = s
        .sync_config_templates(&["untrusted".to_string()], NOW + 4)
        .await
        .expect("sync");
    assert!(back.is_empty());
    assert!(!s
        .template("untrusted")
        .await
        .unwrap()
        .unwrap()
        .is_disabled());
    let v = step(&s, &c, email("wait@x.example"), NOW + 5)
        .await
        .expect("accepted again");
    assert_eq!(
        v.subscriber.status,
        SubscriberStatus::PendingEmailValidation
    );
}

/// A ModifyUser changing only the email of `user` (SP1/G1).
async fn change_email(
    store: &Fixture,
    t: &CustomerTemplate,
    user: &str,
    to: &str,
) -> AcceptOutcome {
    let mut changes = no_changes(user);
    changes.email = Some(to.into());
    let mut b = batch(
        t,
        &format!("T-mod-{user}-{to}"),
        None,
        vec![Operation::ModifyUser(changes)],
    );
    b.activations = Some(links());
    let out = store.accept(b).await.expect("accept");
    assert!(out.results[0].error_code.is_none(), "{out:?}");
    out
}

pub(crate) async fn an_active_subscribers_new_email_is_confirmed_or_consented_before_it_is_taken(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    // Untrusted: the new address gets a code first; the account keeps the
    // old one meanwhile.
    let t = untrusted(s).await;
    add_in(s, &t, "SP1", "u1@acme.example", None).await;
    verify_address(s, "u1@acme.example", "u1@home.example", NOW).await;
    deliver_all(s).await;
    let before = outbox(s).await.len();
    let out = change_email(s, &t, "u1@acme.example", "u1@new.example").await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Provisioned));
    let u1 = sub(s, "u1@acme.example").await;
    assert_eq!(u1.email.as_deref(), Some("u1@home.example"), "not yet");
    assert_eq!(outbox(s).await.len(), before, "nothing for the core yet");
    let c = claim(s, "u1@acme.example").await;
    assert_eq!(c.purpose, ActivationPurpose::EmailChange);
    let code = sent_code(s, "u1@new.example").await;
    let v = step(s, &c, code_action(&code), NOW + 10).await.unwrap();
    assert_eq!(v.subscriber.email.as_deref(), Some("u1@new.example"));
    assert_eq!(v.subscriber.status, SubscriberStatus::Updating);
    assert_eq!(all_kinds(&outbox(s).await)[before..], ["UpdateSubscriber"]);

    // Trusted: a free address is taken at once; one another account holds
    // waits for its user's consent, asked at that address.
    let tt = template(s, "trusted", true, true).await;
    add_in(s, &tt, "SP2", "a@acme.example", Some("a@acme.example")).await;
    add_in(s, &tt, "SP2", "b@acme.example", Some("b@acme.example")).await;
    deliver_all(s).await;
    change_email(s, &tt, "a@acme.example", "a2@acme.example").await;
    assert_eq!(
        sub(s, "a@acme.example").await.email.as_deref(),
        Some("a2@acme.example")
    );
    deliver_all(s).await;
    let out = change_email(s, &tt, "a@acme.example", "b@acme.example").await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Provisioned));
    assert_eq!(
        sub(s, "a@acme.example").await.email.as_deref(),
        Some("a2@acme.example"),
        "never two live subscribers with one address"
    );
    let consent = mails(s, EmailKind::ConsentMigration).await;
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0].message.to, ["b@acme.example"]);
    let b = sub_id(s, "b@acme.example").await;
    let c = claim(s, "a@acme.example").await;
    let v = step(s, &c, ActivationAction::Consent, NOW + 20)
        .await
        .unwrap();
    assert_eq!(v.subscriber.email.as_deref(), Some("b@acme.example"));
    assert_eq!(sub_by_id(s, &b).await.status, SubscriberStatus::Removed);
    let live_with_b = count(
        s,
        "SELECT count(*) FROM subscribers WHERE lower(email) = 'b@acme.example' AND status <> 'removed'",
    )
    .await;
    assert_eq!(live_with_b, 1);
}

pub(crate) async fn a_failed_subscriber_retried_is_provisioned_again_never_sent_back_to_waiting(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = untrusted(s).await;
    add_in(s, &t, "SP1", "u1@acme.example", None).await;
    verify_address(s, "u1@acme.example", "u1@home.example", NOW).await;
    deliver_all(s).await;
    // A change the license core refuses: the subscriber is in error.
    let mut changes = no_changes("u1@acme.example");
    changes.first_name = Some("Una".into());
    let b = batch(&t, "T-mod", None, vec![Operation::ModifyUser(changes)]);
    s.accept(b).await.expect("accept");
    let last = outbox(s).await.last().expect("update").seq;
    s.complete_command(
        last,
        DeliveryOutcome::Rejected {
            error_code: 9008,
            description: "no".into(),
        },
        NOW + 5,
    )
    .await
    .expect("reject");
    let u1 = sub(s, "u1@acme.example").await;
    assert_eq!(u1.status, SubscriberStatus::Error);
    let r = s
        .retry_activation(links(), &u1.id, None, NOW + 6)
        .await
        .expect("store")
        .expect("retried");
    assert_eq!(r.subscriber.status, SubscriberStatus::Provisioning);
    assert_eq!(r.subscriber.email.as_deref(), Some("u1@home.example"));
    assert!(r.activation.is_none(), "no link: it is provisioned again");
    assert_eq!(
        all_kinds(&outbox(s).await).last(),
        Some(&"ProvisionSubscriber")
    );
    // The core still knows it: a DeleteUser revokes what it holds.
    let b = batch(&t, "T-del", None, vec![delete("u1@acme.example")]);
    s.accept(b).await.expect("accept");
    assert_eq!(
        all_kinds(&outbox(s).await).last(),
        Some(&"RemoveSubscriber")
    );
}

pub(crate) async fn a_new_address_for_a_user_waiting_for_consent_is_decided_again(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let s = &f;
    let t = template(s, "trusted", true, true).await;
    add_in(
        s,
        &t,
        "SP1",
        "first@acme.example",
        Some("first@acme.example"),
    )
    .await;
    add_in(s, &t, "OLD", "old@acme.example", Some("pat@acme.example")).await;
    add_in(s, &t, "SP1", "new@acme.example", Some("pat@acme.example")).await;
    let old = sub_id(s, "old@acme.example").await;
    let before = claim(s, "new@acme.example").await;
    // The AS sends another address, free: provisioned with it at once, and
    // the consent for the first address is dead (it would move pat's).
    let mut changes = no_changes("new@acme.example");
    changes.email = Some("new@home.example".into());
    let mut b = batch(&t, "T-mod", None, vec![Operation::ModifyUser(changes)]);
    b.activations = Some(links());
    s.accept(b).await.expect("accept");
    let new = sub(s, "new@acme.example").await;
    assert_eq!(new.status, SubscriberStatus::Provisioning);
    assert_eq!(new.email.as_deref(), Some("new@home.example"));
    let err = step(s, &before, ActivationAction::Consent, NOW + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.code,
            ErrorCode::ActivationLinkInvalid | ErrorCode::WrongState
        ),
        "{err:?}"
    );
    assert_eq!(
        sub_by_id(s, &old).await.status,
        SubscriberStatus::Provisioning,
        "pat's account is untouched"
    );
}

pub(crate) async fn an_unverified_address_belongs_to_nobody(factory: &dyn StoreFactory) {
    let f = fixture(factory).await;
    let s = &f;
    // BroadWorks gave A an address through an untrusted template: A has
    // not proven it, so it is nobody's yet.
    let u = untrusted(s).await;
    add_in(s, &u, "SP1", "a@acme.example", Some("x@home.example")).await;
    let t = template(s, "trusted", true, true).await;
    add_in(s, &t, "SP2", "b@acme.example", Some("x@home.example")).await;
    assert_eq!(
        sub(s, "b@acme.example").await.status,
        SubscriberStatus::Provisioning
    );
    assert_eq!(
        sub(s, "a@acme.example").await.status,
        SubscriberStatus::PendingEmailInput,
        "not moved away: it held nothing"
    );
    // And a trusted user of an existing organization is not held up by it.
    add_in(s, &t, "SP2", "c@acme.example", Some("c@home.example")).await;
    add_in(s, &u, "SP1", "d@acme.example", Some("c2@home.example")).await;
    add_in(s, &t, "SP2", "e@acme.example", Some("c2@home.example")).await;
    assert_eq!(
        sub(s, "e@acme.example").await.status,
        SubscriberStatus::Provisioning,
        "no consent wait for an address nobody proved"
    );
}
