//! Flow-through provisioning on any store: `accept`, replay and
//! idempotency, organizations and the outbox.

use std::sync::Arc;

use super::*;
use crate::commands::{Command, COMMAND_VERSION};
use crate::domain::lifecycle::SubscriberStatus;
use crate::domain::subscriber::{ActivationCodeRequest, Operation, OperationKind};
use crate::domain::{ErrorCode, Package};
use crate::provision::testing::UseCases;
use crate::provision::DeliveryOutcome;
use crate::store::{OutboxState, StoreError};

// ---------------------------------------------------------------- AddUser

pub(crate) async fn trusted_add_creates_the_org_once_and_writes_commands_in_order(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;

    let out = accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    assert_eq!(
        out.results,
        vec![ok(
            0,
            OperationKind::AddUser,
            "alice@acme.example",
            SubscriberStatus::Provisioning
        )]
    );
    assert_eq!((out.replay_of, out.commands_written), (None, 2));

    let alice = sub(s, "alice@acme.example").await;
    assert_eq!(alice.status, SubscriberStatus::Provisioning);
    assert_eq!(
        alice.enterprise_key.as_ref().map(|k| k.as_str()),
        Some("SP1")
    );
    assert_eq!(alice.version, 1);
    assert_eq!(
        s.subscriber(&alice.id).await.expect("by id").as_ref(),
        Some(&alice)
    );
    let org_id: String = value(s, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    assert_eq!(alice.org_id.as_deref(), Some(org_id.as_str()));

    let entries = outbox(s).await;
    assert_eq!(
        keys_and_kinds(&entries),
        vec![
            ("T1:0:0".to_string(), "EnsureOrganization"),
            ("T1:0:1".to_string(), "ProvisionSubscriber"),
        ]
    );
    for e in &entries {
        assert_eq!(e.envelope.version, COMMAND_VERSION);
        assert_eq!(e.envelope.tracking_id, "T1");
        assert_eq!(e.envelope.enterprise_key.as_str(), "SP1");
        assert_eq!(e.envelope.issued_at, NOW);
        assert_eq!(
            (e.state, e.attempts, e.next_attempt_at),
            (OutboxState::Pending, 0, NOW)
        );
    }
    match &entries[0].envelope.command {
        Command::EnsureOrganization {
            org_id: o,
            enterprise_key,
            partner_id,
            provisioning_id,
            ..
        } => {
            assert_eq!((o, enterprise_key.as_str()), (&org_id, "SP1"));
            assert_eq!(
                (partner_id.as_str(), provisioning_id.as_str()),
                ("acme", "tpl")
            );
        }
        other => panic!("{other:?}"),
    }
    match &entries[1].envelope.command {
        Command::ProvisionSubscriber {
            subscriber_id,
            org_id: o,
            user_id,
            email,
            package,
            subscriber_version,
            phone_number,
            ..
        } => {
            assert_eq!(subscriber_id, &alice.id);
            assert_eq!(o, &org_id);
            assert_eq!(user_id.as_str(), "alice@acme.example");
            assert_eq!(email.as_deref(), Some("alice@acme.example"));
            assert_eq!(*package, Package::Basic, "template default");
            assert_eq!(*subscriber_version, 1);
            assert_eq!(
                phone_number.as_ref().map(DirectoryNumber::as_str),
                Some("+12405551212")
            );
        }
        other => panic!("{other:?}"),
    }

    // A second user of the same enterprise joins the organization.
    let out = accept(
        s,
        &t,
        "T2",
        vec![add(
            "bob@acme.example",
            "SP1",
            "G2",
            Some("bob@acme.example"),
        )],
    )
    .await;
    assert_eq!(out.commands_written, 1);
    assert_eq!(count(s, "SELECT count(*) FROM organizations").await, 1);
    assert_eq!(sub(s, "bob@acme.example").await.org_id, alice.org_id);
    assert_eq!(
        keys_and_kinds(&outbox(s).await)[2..],
        [("T2:0:0".to_string(), "ProvisionSubscriber")]
    );
}

pub(crate) async fn enterprise_mode_and_group_mode_derive_different_keys(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let ent = template(s, "ent", true, true).await;
    let grp = template(s, "grp", false, true).await;

    // Enterprise mode: two groups of SP1 are one enterprise, one org.
    accept(
        s,
        &ent,
        "E1",
        vec![
            add("a@x.example", "SP1", "G1", Some("a@x.example")),
            add("b@x.example", "SP1", "G2", Some("b@x.example")),
        ],
    )
    .await;
    // Group mode: each group of SP2 is its own enterprise.
    accept(
        s,
        &grp,
        "G1",
        vec![
            add("c@y.example", "SP2", "G1", Some("c@y.example")),
            add("d@y.example", "SP2", "G2", Some("d@y.example")),
        ],
    )
    .await;

    let keys: Vec<String> =
        s.db.query("SELECT enterprise_key FROM organizations ORDER BY 1", &[])
            .await
            .into_iter()
            .map(|row| row.into_iter().next().flatten().expect("keys"))
            .collect();
    assert_eq!(keys, ["SP1", "SP2+G1", "SP2+G2"]);
    let key_of = |r: SubscriberRecord| r.enterprise_key.map(|k| k.as_str().to_string());
    assert_eq!(key_of(sub(s, "b@x.example").await).as_deref(), Some("SP1"));
    assert_eq!(
        key_of(sub(s, "d@y.example").await).as_deref(),
        Some("SP2+G2")
    );
    assert_ne!(
        sub(s, "c@y.example").await.org_id,
        sub(s, "d@y.example").await.org_id
    );
    assert_eq!(
        sub(s, "a@x.example").await.org_id,
        sub(s, "b@x.example").await.org_id
    );
    let ensure = outbox(s)
        .await
        .into_iter()
        .filter(|e| e.envelope.command.kind() == "EnsureOrganization")
        .map(|e| e.envelope.enterprise_key.as_str().to_string())
        .collect::<Vec<_>>();
    assert_eq!(ensure, ["SP1", "SP2+G1", "SP2+G2"]);
}

pub(crate) async fn concurrent_first_adds_of_one_enterprise_create_one_org(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx.store, "tpl", true, true).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = Arc::clone(&fx.store);
            let t = t.clone();
            tokio::spawn(async move {
                let user = format!("u{i}@new.example");
                s.accept(batch(
                    &t,
                    &format!("C{i}"),
                    None,
                    vec![add(&user, "NEW", "G", Some(&user))],
                ))
                .await
            })
        })
        .collect();
    for task in tasks {
        let out = task.await.expect("task").expect("accept");
        assert_eq!(
            out.results[0].status,
            Some(SubscriberStatus::Provisioning),
            "{out:?}"
        );
    }
    let s = &fx;
    assert_eq!(count(s, "SELECT count(*) FROM organizations").await, 1);
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM outbox WHERE kind = 'EnsureOrganization'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM outbox WHERE kind = 'ProvisionSubscriber'"
        )
        .await,
        50
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM subscribers
                  WHERE org_id = (SELECT id FROM organizations WHERE enterprise_key = 'NEW')"
        )
        .await,
        50
    );
    // The EnsureOrganization precedes every ProvisionSubscriber of the enterprise.
    let first = outbox(s).await.into_iter().next().expect("entries");
    assert_eq!(first.envelope.command.kind(), "EnsureOrganization");
}

pub(crate) async fn email_flows_decide_the_initial_status(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let trusted = template(s, "trusted", true, true).await;
    let untrusted = template(s, "untrusted", true, false).await;

    let out = accept(
        s,
        &trusted,
        "T1",
        vec![
            add("noemail@a.example", "SP1", "G", None),
            add("owner@a.example", "SP1", "G", Some("shared@a.example")),
            // Same address, other case in the local part: taken.
            add("second@a.example", "SP1", "G", Some("SHARED@A.example")),
        ],
    )
    .await;
    let statuses: Vec<_> = out.results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            None,
            Some(SubscriberStatus::Provisioning),
            Some(SubscriberStatus::PendingUserMigration),
        ]
    );
    // With trusted emails the email is mandatory: refused, nothing kept.
    assert_eq!(code_of(&out.results[0]), Some(1001), "{out:?}");
    assert!(out.results[0]
        .error_message
        .as_deref()
        .unwrap_or("")
        .contains("email"));
    assert!(s
        .subscriber_by_user_id("noemail@a.example")
        .await
        .expect("get")
        .is_none());
    // Without trusted emails an AddUser without one waits for its user.
    let out = accept(
        s,
        &untrusted,
        "U0",
        vec![add("noemail@b.example", "SP2", "G", None)],
    )
    .await;
    assert_eq!(
        out.results[0].status,
        Some(SubscriberStatus::PendingEmailInput)
    );
    let out = accept(
        s,
        &untrusted,
        "U1",
        vec![add("u@b.example", "SP2", "G", Some("u@b.example"))],
    )
    .await;
    assert_eq!(
        out.results[0].status,
        Some(SubscriberStatus::PendingEmailInput)
    );
    // The org was made for the enterprise by the first AddUser; no
    // ProvisionSubscriber for anyone still waiting for their user.
    assert_eq!(out.commands_written, 0);
    for user in ["noemail@b.example", "second@a.example", "u@b.example"] {
        let r = sub(s, user).await;
        assert!(r.org_id.is_some(), "{user}");
        assert_eq!(
            s.subscriber_commands(&r.id).await.expect("cmds"),
            vec![],
            "{user}"
        );
    }
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM outbox WHERE kind = 'ProvisionSubscriber'"
        )
        .await,
        1,
        "only owner@"
    );
}

pub(crate) async fn repeated_add_is_unchanged_and_changed_add_is_an_update(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    let alice = || {
        add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )
    };
    accept(s, &t, "T1", vec![alice()]).await;
    let before = snapshot(s).await;

    let out = accept(s, &t, "T2", vec![alice()]).await;
    assert_eq!(
        out.results,
        vec![ok(
            0,
            OperationKind::AddUser,
            "alice@acme.example",
            SubscriberStatus::Provisioning
        )]
    );
    assert_eq!(out.commands_written, 0);
    assert_eq!(
        snapshot(s).await,
        before,
        "an unchanged AddUser writes nothing"
    );

    let mut renamed = new_sub(
        "alice@acme.example",
        "SP1",
        "G1",
        Some("alice@acme.example"),
    );
    renamed.first_name = "Alicia".into();
    let out = accept(s, &t, "T3", vec![Operation::AddUser(renamed)]).await;
    assert_eq!(out.commands_written, 1);
    let r = sub(s, "alice@acme.example").await;
    assert_eq!((r.first_name.as_str(), r.version), ("Alicia", 2));
    assert_eq!(r.status, SubscriberStatus::Provisioning, "still in flight");
    let cmds = s.subscriber_commands(&r.id).await.expect("cmds");
    assert_eq!(
        keys_and_kinds(&cmds),
        [
            ("T1:0:1".to_string(), "ProvisionSubscriber"),
            ("T3:0:0".to_string(), "UpdateSubscriber"),
        ]
    );
    match &cmds[1].envelope.command {
        Command::UpdateSubscriber {
            first_name,
            subscriber_version,
            ..
        } => {
            assert_eq!((first_name.as_str(), *subscriber_version), ("Alicia", 2));
        }
        other => panic!("{other:?}"),
    }
}

pub(crate) async fn a_user_id_of_another_template_or_enterprise_is_refused(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t1 = template(s, "one", true, true).await;
    let t2 = template(s, "two", true, true).await;
    accept(
        s,
        &t1,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    let before = snapshot(s).await;

    let out = accept(
        s,
        &t2,
        "T2",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    assert_eq!(code_of(&out.results[0]), Some(10022), "{out:?}");
    let out = accept(
        s,
        &t1,
        "T3",
        vec![add(
            "alice@acme.example",
            "SP9",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    assert_eq!(code_of(&out.results[0]), Some(10022), "{out:?}");
    assert_eq!(
        out.results[0].user_id.as_deref(),
        Some("alice@acme.example")
    );
    assert_eq!(snapshot(s).await, before);
}

// ---------------------------------------------------------------- batches

pub(crate) async fn a_replayed_request_id_returns_the_first_answer_and_changes_nothing(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    let other = template(s, "other", true, true).await;
    let invalid = OperationResult::rejected(
        1,
        OperationKind::AddUser,
        Some("bad".into()),
        &crate::domain::lifecycle::Rejection::new(
            ErrorCode::MissingParameter,
            "firstName: is missing",
        ),
    );
    let mut first = batch(&t, "T1", Some("R1"), vec![]);
    first.operations = vec![
        (0, add("a@acme.example", "SP1", "G", Some("a@acme.example"))),
        (2, delete("ghost@acme.example")),
    ];
    first.invalid = vec![invalid.clone()];
    let out1 = s.accept(first.clone()).await.expect("first");
    assert_eq!(out1.results.len(), 3);
    assert_eq!(
        out1.results.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert_eq!(
        out1.results[1], invalid,
        "invalid lines are merged by index"
    );
    assert_eq!((out1.replay_of.clone(), out1.commands_written), (None, 2));
    let after_first = snapshot(s).await;

    // The same document again (a new tracking id, even different content).
    let mut again = first.clone();
    again.tracking_id = "T2".into();
    again
        .operations
        .push((3, add("b@acme.example", "SP1", "G", None)));
    let out2 = s.accept(again).await.expect("replay");
    assert_eq!(out2.results, out1.results);
    assert_eq!(out2.replay_of.as_deref(), Some("T1"));
    assert_eq!(out2.commands_written, 0);
    assert_eq!(snapshot(s).await, after_first, "a replay writes nothing");
    assert!(s
        .subscriber_by_user_id("b@acme.example")
        .await
        .expect("get")
        .is_none());

    // The same requestId under another template is another document.
    let mut elsewhere = batch(
        &other,
        "T3",
        Some("R1"),
        vec![add("c@other.example", "SP7", "G", Some("c@other.example"))],
    );
    elsewhere.invalid = vec![];
    let out3 = s.accept(elsewhere).await.expect("other template");
    assert_eq!(out3.replay_of, None);
    assert!(s
        .subscriber_by_user_id("c@other.example")
        .await
        .expect("get")
        .is_some());
}

pub(crate) async fn a_failing_operation_does_not_undo_its_neighbours(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    // A database failure inside one operation, after it already inserted
    // its enterprise's organization.
    s.db.fail_subscriber_inserts_named("Boom").await;
    let mut boom = new_sub("boom@e2.example", "E2", "G", Some("boom@e2.example"));
    boom.first_name = "Boom".into();

    let mut changes = no_changes("nobody@e1.example");
    changes.first_name = Some("X".into());
    let out = accept(
        s,
        &t,
        "T1",
        vec![
            add("a@e1.example", "E1", "G", Some("a@e1.example")),
            Operation::ModifyUser(changes),
            Operation::AddUser(boom),
            add("b@e1.example", "E1", "G", Some("b@e1.example")),
        ],
    )
    .await;
    let codes: Vec<_> = out.results.iter().map(code_of).collect();
    assert_eq!(codes, [None, Some(9015), Some(9020), None], "{out:?}");
    assert!(out.results[1]
        .error_message
        .as_deref()
        .unwrap_or("")
        .contains("nobody@e1.example"));
    assert_eq!(out.commands_written, 3, "E1's org, a and b");
    assert!(s
        .subscriber_by_user_id("a@e1.example")
        .await
        .expect("a")
        .is_some());
    assert!(s
        .subscriber_by_user_id("b@e1.example")
        .await
        .expect("b")
        .is_some());
    assert!(s
        .subscriber_by_user_id("boom@e2.example")
        .await
        .expect("boom")
        .is_none());
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM organizations WHERE enterprise_key = 'E2'"
        )
        .await,
        0,
        "the failed operation's organization was rolled back with it"
    );
    assert_eq!(
        keys_and_kinds(&outbox(s).await),
        [
            ("T1:0:0".to_string(), "EnsureOrganization"),
            ("T1:0:1".to_string(), "ProvisionSubscriber"),
            ("T1:3:0".to_string(), "ProvisionSubscriber"),
        ]
    );
    assert_eq!(s.stats().writes_failed, 0, "the document itself succeeded");
    if s.backend_name() == "sqlite" {
        // SQLite's writer runs batches without savepoints and undoes a
        // batch only when a write fails after changing rows.
        assert_eq!(
            s.stats().isolated_reruns,
            1,
            "the boom operation had changed rows: the document ran again isolated"
        );
    }
}

// ---------------------------------------------------------------- ModifyUser

pub(crate) async fn modify_moves_a_provisioned_subscriber_to_updating(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    deliver_all(s).await;
    let provisioned = sub(s, "alice@acme.example").await;
    assert_eq!(provisioned.status, SubscriberStatus::Provisioned);

    let mut rename = no_changes("alice@acme.example");
    rename.last_name = Some("Jones".into());
    let out = accept(s, &t, "T2", vec![Operation::ModifyUser(rename)]).await;
    assert_eq!(
        out.results,
        vec![ok(
            0,
            OperationKind::ModifyUser,
            "alice@acme.example",
            SubscriberStatus::Updating
        )]
    );
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(
        (r.last_name.as_str(), r.version, r.status),
        ("Jones", 2, SubscriberStatus::Updating)
    );
    assert_eq!(r.last_status_change, NOW);

    let mut repackage = no_changes("alice@acme.example");
    repackage.package = Some(Package::Premium);
    let out = accept(s, &t, "T3", vec![Operation::ModifyUser(repackage)]).await;
    assert_eq!(out.commands_written, 1);
    let cmds = s.subscriber_commands(&r.id).await.expect("cmds");
    assert_eq!(
        keys_and_kinds(&cmds)[1..],
        [
            ("T2:0:0".to_string(), "UpdateSubscriber"),
            ("T3:0:0".to_string(), "ChangePackage"),
        ]
    );
    match &cmds[2].envelope.command {
        Command::ChangePackage {
            package,
            subscriber_version,
            org_id,
            ..
        } => {
            assert_eq!((*package, *subscriber_version), (Package::Premium, 3));
            assert_eq!(Some(org_id), r.org_id.as_ref());
        }
        other => panic!("{other:?}"),
    }

    // Both a profile field and the package: one command each, same version.
    let mut both = no_changes("alice@acme.example");
    both.first_name = Some("Al".into());
    both.package = Some(Package::Standard);
    let out = accept(s, &t, "T4", vec![Operation::ModifyUser(both)]).await;
    assert_eq!(out.commands_written, 2);

    // Removing the last number is refused and changes nothing.
    let mut strip = no_changes("alice@acme.example");
    strip.extension = Some(None);
    accept(s, &t, "T5", vec![Operation::ModifyUser(strip)]).await; // phone remains
    let before = snapshot(s).await;
    let mut strip = no_changes("alice@acme.example");
    strip.phone_number = Some(None);
    strip.first_name = Some("Nope".into());
    let out = accept(s, &t, "T6", vec![Operation::ModifyUser(strip)]).await;
    assert_eq!(code_of(&out.results[0]), Some(1001), "{out:?}");
    assert_eq!(snapshot(s).await, before);

    // A no-op modify writes nothing either.
    let out = accept(
        s,
        &t,
        "T7",
        vec![Operation::ModifyUser(no_changes("alice@acme.example"))],
    )
    .await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Updating));
    assert_eq!(snapshot(s).await, before);
}

pub(crate) async fn modify_of_a_waiting_subscriber_sends_nothing_to_the_core(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    // Waiting for its user: a template without trusted emails.
    let t = template(s, "tpl", true, false).await;
    accept(s, &t, "T1", vec![add("w@acme.example", "SP1", "G", None)]).await;
    let mut c = no_changes("w@acme.example");
    c.package = Some(Package::Premium);
    c.first_name = Some("Wanda".into());
    let out = accept(s, &t, "T2", vec![Operation::ModifyUser(c)]).await;
    assert_eq!(
        out.results[0].status,
        Some(SubscriberStatus::PendingEmailInput)
    );
    assert_eq!(out.commands_written, 0);
    let r = sub(s, "w@acme.example").await;
    assert_eq!(
        (r.package, r.first_name.as_str(), r.version),
        (Package::Premium, "Wanda", 2)
    );

    // Another template's provisioning account cannot touch it.
    let t2 = template(s, "tpl2", true, true).await;
    let out = accept(
        s,
        &t2,
        "T3",
        vec![Operation::ModifyUser(no_changes("w@acme.example"))],
    )
    .await;
    assert_eq!(code_of(&out.results[0]), Some(9015));
    let out = accept(s, &t2, "T4", vec![delete("w@acme.example")]).await;
    assert_eq!(code_of(&out.results[0]), Some(9015));
    assert_eq!(
        sub(s, "w@acme.example").await.status,
        SubscriberStatus::PendingEmailInput
    );
}

// ---------------------------------------------------------------- DeleteUser

pub(crate) async fn delete_is_partial_and_the_user_id_can_come_back(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    let before = sub(s, "alice@acme.example").await;

    let out = accept(s, &t, "T2", vec![delete("alice@acme.example")]).await;
    assert_eq!(
        out.results,
        vec![ok(
            0,
            OperationKind::DeleteUser,
            "alice@acme.example",
            SubscriberStatus::Removed
        )]
    );
    assert!(s
        .subscriber_by_user_id("alice@acme.example")
        .await
        .expect("get")
        .is_none());
    let gone = s
        .subscriber(&before.id)
        .await
        .expect("get")
        .expect("row kept");
    assert_eq!(gone.status, SubscriberStatus::Removed);
    assert_eq!(
        (
            &gone.email,
            &gone.first_name,
            &gone.last_name,
            &gone.language
        ),
        (
            &before.email,
            &before.first_name,
            &before.last_name,
            &before.language
        )
    );
    assert_eq!(
        (
            &gone.user_id,
            &gone.phone_number,
            &gone.extension,
            &gone.mobile_phone_number
        ),
        (&None, &None, &None, &None)
    );
    assert_eq!((&gone.service_provider_id, &gone.group_id), (&None, &None));
    assert_eq!(gone.version, 2);
    let cmds = s.subscriber_commands(&before.id).await.expect("cmds");
    match &cmds.last().expect("remove").envelope.command {
        Command::RemoveSubscriber {
            subscriber_id,
            org_id,
            subscriber_version,
        } => {
            assert_eq!(subscriber_id, &before.id);
            assert_eq!(Some(org_id), before.org_id.as_ref());
            assert_eq!(*subscriber_version, 2);
        }
        other => panic!("{other:?}"),
    }

    // Deleting again, or an unknown user: removed, nothing written.
    let snap = snapshot(s).await;
    let out = accept(
        s,
        &t,
        "T3",
        vec![delete("alice@acme.example"), delete("nobody@acme.example")],
    )
    .await;
    assert!(
        out.results
            .iter()
            .all(|r| r.status == Some(SubscriberStatus::Removed)),
        "{out:?}"
    );
    assert_eq!(out.commands_written, 0);
    assert_eq!(snapshot(s).await, snap);

    // The user id is free again: a new subscriber (its email no longer
    // counts as taken: the removed one is not active).
    let out = accept(
        s,
        &t,
        "T4",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Provisioning));
    let again = sub(s, "alice@acme.example").await;
    assert_ne!(again.id, before.id);
    assert_eq!(again.version, 1);
    assert_eq!(again.org_id, before.org_id);
}

pub(crate) async fn deleting_a_waiting_subscriber_sends_no_command_and_activation_codes_need_a_provisioned_one(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    // Waiting for its user: a template without trusted emails.
    let t = template(s, "tpl", true, false).await;
    accept(s, &t, "T1", vec![add("w@acme.example", "SP1", "G", None)]).await;
    let w = sub(s, "w@acme.example").await;

    let code = |user: &str| {
        Operation::RequestActivationCode(ActivationCodeRequest {
            user_id: uid(user),
            device_type: Some("Polycom VVX 450".into()),
            mac_address: Some("0004F2AABBCC".into()),
        })
    };
    let out = accept(
        s,
        &t,
        "T2",
        vec![code("w@acme.example"), code("nobody@acme.example")],
    )
    .await;
    // Waiting for its email: no license yet, so no device code (9029).
    assert_eq!(code_of(&out.results[0]), Some(9029));
    assert_eq!(code_of(&out.results[1]), Some(9015));
    assert!(
        !outbox(s)
            .await
            .iter()
            .any(|e| e.envelope.command.kind() == "IssueActivationCode"),
        "nothing sent to the core"
    );
    assert_eq!(w.status, SubscriberStatus::PendingEmailInput);

    let out = accept(s, &t, "T3", vec![delete("w@acme.example")]).await;
    assert_eq!(out.results[0].status, Some(SubscriberStatus::Removed));
    assert_eq!(out.commands_written, 0, "the core never heard of it");
    let out = accept(s, &t, "T4", vec![code("w@acme.example")]).await;
    assert_eq!(code_of(&out.results[0]), Some(9015), "removed");
}

// ---------------------------------------------------------------- outbox

pub(crate) async fn due_commands_keep_per_enterprise_order_behind_a_backing_off_head(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let (a, b) = two_enterprises(s).await;
    assert_eq!((a.len(), b.len()), (3, 2));
    assert!(a[2] > b[1], "interleaved");

    let all: Vec<i64> = {
        let mut v = [a.clone(), b.clone()].concat();
        v.sort();
        v
    };
    assert_eq!(seqs(&s.due_commands(NOW, 100).await.expect("due")), all);
    assert_eq!(
        seqs(&s.due_commands(NOW, 2).await.expect("due")),
        all[..2],
        "limit"
    );
    assert_eq!(
        s.due_commands(NOW - 1, 100).await.expect("due"),
        vec![],
        "not yet due"
    );

    // A's head backs off: nothing of A is due, B is unaffected.
    let retry_at = NOW + 60_000;
    s.complete_command(
        a[0],
        DeliveryOutcome::Retry {
            error: "core down".into(),
            retry_at,
        },
        NOW,
    )
    .await
    .expect("retry");
    assert_eq!(seqs(&s.due_commands(NOW + 1, 100).await.expect("due")), b);
    assert_eq!(
        seqs(&s.due_commands(NOW + 1, 1).await.expect("due")),
        b[..1]
    );
    let head = entry(s, a[0]).await;
    assert_eq!((head.attempts, head.next_attempt_at), (1, retry_at));
    assert_eq!(
        (head.state, head.last_error.as_deref()),
        (OutboxState::Pending, Some("core down"))
    );

    // Once it is due again, A's three come back in seq order.
    let due = s.due_commands(retry_at, 100).await.expect("due");
    assert_eq!(seqs(&due), all);
    let a_due: Vec<i64> = due
        .iter()
        .filter(|e| e.envelope.enterprise_key.as_str() == "A")
        .map(|e| e.seq)
        .collect();
    assert_eq!(a_due, a);

    // A later command backing off holds only what follows it.
    s.complete_command(
        a[1],
        DeliveryOutcome::Retry {
            error: "x".into(),
            retry_at: NOW + 120_000,
        },
        NOW,
    )
    .await
    .expect("retry second");
    let due = seqs(&s.due_commands(retry_at, 100).await.expect("due"));
    assert_eq!(due, [a[0], b[0], b[1]]);

    // Settled commands leave the queue; a failed head no longer blocks.
    s.complete_command(a[0], DeliveryOutcome::delivered(), retry_at)
        .await
        .expect("deliver");
    s.complete_command(
        a[1],
        DeliveryOutcome::Rejected {
            error_code: 9020,
            description: "broken".into(),
        },
        retry_at,
    )
    .await
    .expect("reject");
    let due = seqs(&s.due_commands(retry_at, 100).await.expect("due"));
    let mut want = vec![a[2], b[0], b[1]];
    want.sort();
    assert_eq!(due, want);
    let counts = s.outbox_counts().await.expect("counts");
    assert_eq!(
        counts,
        [
            (OutboxState::Pending, 3),
            (OutboxState::Delivered, 1),
            (OutboxState::Failed, 1)
        ]
    );
}

pub(crate) async fn delivery_outcomes_settle_the_subscriber_status(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    let id = sub(s, "alice@acme.example").await.id;
    let cmds = s.subscriber_commands(&id).await.expect("cmds");
    let provision = cmds[0].seq;

    // Delivered: provisioning → provisioned.
    s.complete_command(provision, DeliveryOutcome::delivered(), NOW + 5)
        .await
        .expect("deliver");
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(
        (r.status, r.last_status_change),
        (SubscriberStatus::Provisioned, NOW + 5)
    );
    let e = entry(s, provision).await;
    assert_eq!(
        (e.state, e.delivered_at),
        (OutboxState::Delivered, Some(NOW + 5))
    );

    // Two modifies in flight (v2, v3): delivering v2 keeps `updating`.
    let rename = |name: &str| {
        let mut c = no_changes("alice@acme.example");
        c.first_name = Some(name.into());
        Operation::ModifyUser(c)
    };
    accept(s, &t, "T2", vec![rename("A2")]).await;
    accept(s, &t, "T3", vec![rename("A3")]).await;
    let cmds = s.subscriber_commands(&id).await.expect("cmds");
    let (v2, v3) = (cmds[1].seq, cmds[2].seq);
    deliver(s, v2).await;
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(
        (r.status, r.version),
        (SubscriberStatus::Updating, 3),
        "older version delivered"
    );
    deliver(s, v3).await;
    assert_eq!(
        sub(s, "alice@acme.example").await.status,
        SubscriberStatus::Provisioned
    );

    // Rejected: error, with the error recorded; a repeat changes nothing.
    accept(s, &t, "T4", vec![rename("A4")]).await;
    let v4 = s.subscriber_commands(&id).await.expect("cmds")[3].seq;
    let rejected = DeliveryOutcome::Rejected {
        error_code: 9003,
        description: "number already assigned".into(),
    };
    s.complete_command(v4, rejected.clone(), NOW + 9)
        .await
        .expect("reject");
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(r.status, SubscriberStatus::Error);
    assert_eq!(r.last_status_change, NOW + 9);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        (r.errors[0].error_code, r.errors[0].description.as_str()),
        (9003, "number already assigned")
    );
    let e = entry(s, v4).await;
    assert_eq!(e.state, OutboxState::Failed);
    assert!(e
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("number already assigned"));

    let before = snapshot(s).await;
    s.complete_command(v4, rejected, NOW + 10)
        .await
        .expect("again");
    s.complete_command(v4, DeliveryOutcome::delivered(), NOW + 10)
        .await
        .expect("late");
    s.complete_command(provision, DeliveryOutcome::delivered(), NOW + 10)
        .await
        .expect("twice");
    s.complete_command(
        provision,
        DeliveryOutcome::Retry {
            error: "late".into(),
            retry_at: NOW + 99,
        },
        NOW + 10,
    )
    .await
    .expect("late retry");
    assert_eq!(snapshot(s).await, before, "settled commands stay settled");

    let err = s
        .complete_command(9_999, DeliveryOutcome::delivered(), NOW)
        .await
        .expect_err("unknown seq");
    assert!(
        matches!(err, StoreError::MissingReference { .. }),
        "{err:?}"
    );
}

pub(crate) async fn a_rejected_older_command_records_the_error_but_not_the_status(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    let mut c = no_changes("alice@acme.example");
    c.first_name = Some("New".into());
    accept(s, &t, "T2", vec![Operation::ModifyUser(c)]).await;
    let id = sub(s, "alice@acme.example").await.id;
    let cmds = s.subscriber_commands(&id).await.expect("cmds");
    s.complete_command(
        cmds[0].seq,
        DeliveryOutcome::Rejected {
            error_code: 9020,
            description: "v1 failed".into(),
        },
        NOW,
    )
    .await
    .expect("reject v1");
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(r.status, SubscriberStatus::Provisioning, "v2 still decides");
    assert_eq!(r.errors.len(), 1);
    deliver(s, cmds[1].seq).await;
    let r = sub(s, "alice@acme.example").await;
    assert_eq!(r.status, SubscriberStatus::Provisioned);
    assert!(r.errors.is_empty(), "provisioned clears errors");
}

pub(crate) async fn a_device_activation_code_in_flight_does_not_hold_the_status(
    factory: &dyn StoreFactory,
) {
    // AddUser, then at once a device activation code: both commands are in
    // flight when the AddUser's is delivered. Only changes of the
    // subscriber settle its status, so it is provisioned then (it used to
    // stay `provisioning` for good: the code's delivery settles nothing).
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "dev@acme.example",
            "SP1",
            "G1",
            Some("dev@acme.example"),
        )],
    )
    .await;
    let out = accept(
        s,
        &t,
        "T2",
        vec![Operation::RequestActivationCode(ActivationCodeRequest {
            user_id: uid("dev@acme.example"),
            device_type: Some("Polycom VVX 450".into()),
            mac_address: Some("0004F2AABBCC".into()),
        })],
    )
    .await;
    assert_eq!(code_of(&out.results[0]), None, "{out:?}");
    let id = sub(s, "dev@acme.example").await.id;
    let cmds = s.subscriber_commands(&id).await.expect("cmds");
    let kinds: Vec<&str> = cmds.iter().map(|e| e.envelope.command.kind()).collect();
    assert_eq!(kinds, ["ProvisionSubscriber", "IssueActivationCode"]);
    match &cmds[1].envelope.command {
        Command::IssueActivationCode {
            org_id,
            user_id,
            mac_address,
            device_type,
            ..
        } => {
            assert_eq!(org_id, &sub(s, "dev@acme.example").await.org_id);
            assert_eq!(user_id.as_str(), "dev@acme.example");
            assert_eq!(mac_address.as_deref(), Some("0004F2AABBCC"));
            assert_eq!(device_type.as_deref(), Some("Polycom VVX 450"));
        }
        other => panic!("{other:?}"),
    }

    s.complete_command(cmds[0].seq, DeliveryOutcome::delivered(), NOW + 5)
        .await
        .expect("deliver");
    assert_eq!(
        sub(s, "dev@acme.example").await.status,
        SubscriberStatus::Provisioned,
        "the activation code still in flight does not hold the status"
    );
    s.complete_command(cmds[1].seq, DeliveryOutcome::delivered(), NOW + 6)
        .await
        .expect("deliver");
    assert_eq!(
        sub(s, "dev@acme.example").await.status,
        SubscriberStatus::Provisioned
    );
}

pub(crate) async fn only_the_last_command_of_the_current_version_settles_the_status(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add(
            "alice@acme.example",
            "SP1",
            "G1",
            Some("alice@acme.example"),
        )],
    )
    .await;
    deliver_all(s).await;
    let id = sub(s, "alice@acme.example").await.id;

    // One modify, two commands of the same version.
    let mut both = no_changes("alice@acme.example");
    both.first_name = Some("Al".into());
    both.package = Some(Package::Premium);
    accept(s, &t, "T2", vec![Operation::ModifyUser(both)]).await;
    let cmds = s.subscriber_commands(&id).await.expect("cmds");
    assert_eq!(
        keys_and_kinds(&cmds)[1..],
        [
            ("T2:0:0".to_string(), "UpdateSubscriber"),
            ("T2:0:1".to_string(), "ChangePackage"),
        ]
    );
    deliver(s, cmds[1].seq).await;
    assert_eq!(
        sub(s, "alice@acme.example").await.status,
        SubscriberStatus::Updating,
        "the package change is still in flight"
    );
    deliver(s, cmds[2].seq).await;
    assert_eq!(
        sub(s, "alice@acme.example").await.status,
        SubscriberStatus::Provisioned
    );

    // A change the core was not told about (a newer version without a
    // command): a delivery for the older version leaves the status alone.
    let mut rename = no_changes("alice@acme.example");
    rename.last_name = Some("Newer".into());
    accept(s, &t, "T3", vec![Operation::ModifyUser(rename)]).await;
    s.db.execute(
        "UPDATE subscribers SET version = version + 1 WHERE id = ?1",
        &[&id],
    )
    .await
    .expect("bump");
    let update = outbox(s).await.last().expect("T3 command").seq;
    deliver(s, update).await;
    assert_eq!(
        sub(s, "alice@acme.example").await.status,
        SubscriberStatus::Updating
    );
}

// ---------------------------------------------------------------- durability

pub(crate) async fn acknowledged_acceptances_survive_drop_without_close(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx.store, "tpl", true, true).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = Arc::clone(&fx.store);
            let t = t.clone();
            tokio::spawn(async move {
                let user = format!("d{i}@dur.example");
                s.accept(batch(
                    &t,
                    &format!("D{i}"),
                    Some(&format!("R{i}")),
                    vec![add(&user, "DUR", "G", Some(&user))],
                ))
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task").expect("accept"));
    }
    let Fixture { db, store } = fx;
    drop(store); // no close(), no flush()

    let store = Fixture {
        store: db.open().await,
        db,
    };
    assert_eq!(count(&store, "SELECT count(*) FROM subscribers").await, 40);
    assert_eq!(count(&store, "SELECT count(*) FROM organizations").await, 1);
    assert_eq!(count(&store, "SELECT count(*) FROM outbox").await, 41);
    assert_eq!(store.due_commands(NOW, 1000).await.expect("due").len(), 41);
    // A replay after the restart still gets the first answer.
    let again = store
        .accept(batch(&t, "D7-again", Some("R7"), vec![]))
        .await
        .expect("replay");
    assert_eq!(again.results, answers[7].results);
    assert_eq!(again.replay_of.as_deref(), Some("D7"));
    store.close().await.expect("close");
}

// ---- org attach (existing organizations)

/// An existing organization with an admin (boss@) and a user (ann@), too
/// big to attach without its admins' approval.
pub(crate) fn big_org() -> crate::domain::organization::ExistingOrganization {
    use crate::domain::organization::{ExistingOrganization, OrgUser};
    ExistingOrganization {
        id: "big".into(),
        name: "Big".into(),
        user_count: 150,
        users: vec![
            OrgUser {
                email: "boss@big.example".into(),
                is_admin: true,
            },
            OrgUser {
                email: "ann@big.example".into(),
                is_admin: false,
            },
        ],
        verified_domains: vec![],
        claimed_domains: vec![],
        licenses: vec![],
        auth_settings: serde_json::Value::Null,
        email_suppression: false,
        branding: None,
    }
}

pub(crate) fn approvals(window_ms: i64) -> Arc<crate::orgs::ApprovalLinks> {
    Arc::new(crate::orgs::ApprovalLinks {
        signer: crate::orgs::ApprovalSigner::from_secret(&[3u8; 32]),
        portal_base: "https://portal.example".into(),
        notify_window_ms: window_ms,
        token_ttl_ms: 60_000,
    })
}

pub(crate) async fn a_2017_keeps_its_email_through_the_rollback_once_per_window(
    factory: &dyn StoreFactory,
) {
    use crate::domain::organization::{ExistingOrganization, OrgUser};
    let f = fixture(factory).await;
    let t = template(&f.store, "t1", true, true).await;
    let admins: Vec<OrgUser> = (0..3)
        .map(|i| OrgUser {
            email: format!("boss{i}@big.example"),
            is_admin: true,
        })
        .chain([OrgUser {
            email: "ann@big.example".into(),
            is_admin: false,
        }])
        .collect();
    f.store
        .upsert_existing_orgs(vec![ExistingOrganization {
            id: "big".into(),
            name: "Big".into(),
            user_count: 150,
            users: admins,
            verified_domains: vec![],
            claimed_domains: vec![],
            licenses: vec![],
            auth_settings: serde_json::Value::Null,
            email_suppression: false,
            branding: None,
        }])
        .await
        .expect("orgs");
    let links = approvals(1_000);
    let run = |now: i64, tracking: &str| {
        let mut b = batch(
            &t,
            tracking,
            None,
            vec![
                add("ann@bw.example", "ent-big", "g", Some("ANN@big.example")),
                add("zed@bw.example", "ent-new", "g", Some("zed@new.example")),
            ],
        );
        b.now = now;
        b.approvals = Some(links.clone());
        b
    };
    let out = f.store.accept(run(NOW, "T1")).await.expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017), "{out:?}");
    assert_eq!(
        out.results[1].error_code, None,
        "the other operation stands"
    );
    assert_eq!(out.emails_enqueued, 1);
    let report = f.store.existing_org("big").await.unwrap().unwrap();
    assert!(report.link.is_none(), "nothing attached");
    assert_eq!(report.approval_emails.len(), 1);
    assert_eq!(report.approval_emails[0].message.to.len(), 3);
    assert!(f
        .store
        .subscriber_by_user_id("ann@bw.example")
        .await
        .unwrap()
        .is_none());

    // A retry in the same window: refused again, no second email.
    let out = f.store.accept(run(NOW + 10, "T2")).await.expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017));
    assert_eq!(out.emails_enqueued, 0);
    // The next window notifies again.
    let out = f
        .store
        .accept(run(NOW + 1_000, "T3"))
        .await
        .expect("accept");
    assert_eq!(out.emails_enqueued, 1);
    assert_eq!(
        f.store
            .existing_org("big")
            .await
            .unwrap()
            .unwrap()
            .approval_emails
            .len(),
        2
    );
}

/// The notification window slides from the last approval email of the
/// (org, partner) pair: two retries a second apart never both notify, even
/// across a multiple of the window (the old fixed buckets did).
pub(crate) async fn approval_notifications_use_a_sliding_window_from_the_last_email(
    factory: &dyn StoreFactory,
) {
    let f = fixture(factory).await;
    let t = template(&f.store, "t1", true, true).await;
    f.store
        .upsert_existing_orgs(vec![big_org()])
        .await
        .expect("orgs");
    let window = 86_400_000;
    let links = approvals(window);
    let run = |now: i64, tracking: &str| {
        let mut b = batch(
            &t,
            tracking,
            None,
            vec![add(
                "ann@bw.example",
                "ent-big",
                "g",
                Some("ann@big.example"),
            )],
        );
        b.now = now;
        b.approvals = Some(links.clone());
        b
    };
    // The first 2017 one second before a multiple of the window...
    let t0 = (NOW / window + 1) * window - 1_000;
    let out = f.store.accept(run(t0, "T1")).await.expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017), "{out:?}");
    assert_eq!(out.emails_enqueued, 1);
    // ...and its retry one second later, past the multiple: no new email.
    let out = f.store.accept(run(t0 + 1_000, "T2")).await.expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017));
    assert_eq!(out.emails_enqueued, 0, "a second after the first");
    // Just inside the window, counted from the first email: none.
    let out = f
        .store
        .accept(run(t0 + window - 1, "T3"))
        .await
        .expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017));
    assert_eq!(out.emails_enqueued, 0, "at t + window - 1");
    // Past it: exactly one new email, and the window restarts from it.
    let out = f
        .store
        .accept(run(t0 + window + 1, "T4"))
        .await
        .expect("accept");
    assert_eq!(out.results[0].error_code, Some(2017));
    assert_eq!(out.emails_enqueued, 1, "at t + window + 1");
    let out = f
        .store
        .accept(run(t0 + window + 2, "T5"))
        .await
        .expect("accept");
    assert_eq!(out.emails_enqueued, 0, "the window restarted");
    let emails = f
        .store
        .existing_org("big")
        .await
        .expect("report")
        .expect("org")
        .approval_emails;
    assert_eq!(emails.len(), 2);
    let mut sent_at: Vec<i64> = emails.iter().map(|e| e.created_at).collect();
    sent_at.sort();
    assert_eq!(sent_at, [t0, t0 + window + 1]);
}

/// The trunk flags are stored: a ModifyUser that sets only one of them is
/// checked against the stored other, so an existing trunk user cannot be
/// given a route list (9006, nothing changes), while a change that clears
/// one flag as it sets the other goes through.
pub(crate) async fn trunk_flags_are_stored_and_rechecked_on_modify(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    let mut trunk = new_sub(
        "trunk@acme.example",
        "SP1",
        "G1",
        Some("trunk@acme.example"),
    );
    trunk.is_trunk_user = true;
    let out = accept(s, &t, "T1", vec![Operation::AddUser(trunk)]).await;
    assert_eq!(out.results[0].error_code, None, "{out:?}");
    let flags = |id: String| async move {
        let row =
            s.db.query(
                "SELECT is_trunk_user, has_route_list FROM subscribers WHERE id = ?1",
                &[&id],
            )
            .await;
        let flag = |i: usize| match row.first().and_then(|r| r.get(i)).cloned().flatten() {
            Some(v) if v == "1" => true,
            Some(v) if v == "0" => false,
            v => panic!("flag {i} is a boolean: {v:?}"),
        };
        (flag(0), flag(1))
    };
    let id = sub(s, "trunk@acme.example").await.id;
    assert_eq!(flags(id.clone()).await, (true, false));

    let modify = |is_trunk: Option<bool>, route_list: Option<bool>, first_name: &str| {
        let mut c = no_changes("trunk@acme.example");
        c.is_trunk_user = is_trunk;
        c.has_route_list = route_list;
        c.first_name = Some(first_name.into());
        Operation::ModifyUser(c)
    };
    // A route list for the stored trunk user: refused, nothing written.
    let before = snapshot(s).await;
    let out = accept(s, &t, "T2", vec![modify(None, Some(true), "Renamed")]).await;
    assert_eq!(code_of(&out.results[0]), Some(9006), "{out:?}");
    assert_eq!(snapshot(s).await, before, "nothing changed");
    // No longer a trunk user, with a route list: accepted and stored.
    let out = accept(s, &t, "T3", vec![modify(Some(false), Some(true), "Routed")]).await;
    assert_eq!(out.results[0].error_code, None, "{out:?}");
    assert_eq!(flags(id.clone()).await, (false, true));
    assert_eq!(sub(s, "trunk@acme.example").await.first_name, "Routed");
    // Now the other way round: a trunk user again while the route list is
    // stored is refused too.
    let out = accept(s, &t, "T4", vec![modify(Some(true), None, "Trunk")]).await;
    assert_eq!(code_of(&out.results[0]), Some(9006), "{out:?}");
    assert_eq!(flags(id.clone()).await, (false, true));
    // A modify that leaves the flags alone is not affected.
    let out = accept(s, &t, "T5", vec![modify(None, None, "Plain")]).await;
    assert_eq!(out.results[0].error_code, None, "{out:?}");
    assert_eq!(flags(id).await, (false, true));
}

// ---------------------------------------------------------------- detach

/// An existing organization with `users` (non-admin) and one admin.
pub(crate) fn existing_org(
    id: &str,
    user_count: u32,
    active_license: bool,
    users: &[&str],
) -> crate::domain::organization::ExistingOrganization {
    use crate::domain::organization::{ExistingOrganization, LicenseState, OrgLicense, OrgUser};
    ExistingOrganization {
        id: id.into(),
        name: format!("Existing {id}"),
        user_count,
        users: std::iter::once(OrgUser {
            email: format!("boss@{id}.example"),
            is_admin: true,
        })
        .chain(users.iter().map(|u| OrgUser {
            email: (*u).to_string(),
            is_admin: false,
        }))
        .collect(),
        verified_domains: vec![],
        claimed_domains: vec![],
        licenses: if active_license {
            vec![OrgLicense {
                name: "webex-meetings".into(),
                state: LicenseState::Active,
            }]
        } else {
            vec![]
        },
        auth_settings: serde_json::Value::Null,
        email_suppression: false,
        branding: None,
    }
}

pub(crate) async fn detach_needs_full_admin_deletes_the_users_data_and_drops_the_role(
    factory: &dyn StoreFactory,
) {
    use crate::domain::organization::PartnerRole;
    use crate::provision::DetachOutcome;
    use crate::store::transact;
    let f = fixture(factory).await;
    let t = template(&f.store, "t1", true, true).await;
    f.store
        .upsert_existing_orgs(vec![
            // Needs approval (150 users): the admins approved the partner.
            existing_org("big", 150, true, &["ann@big.example", "bob@big.example"]),
            // Auto-attached with a license: provisioning admin only.
            existing_org("small", 10, true, &["cid@small.example"]),
        ])
        .await
        .expect("orgs");
    transact(&*f.store, |tx| {
        tx.grant_role("big", "acme", PartnerRole::FullAdmin, "approval", NOW)
    })
    .await
    .expect("approval");
    let out = accept(
        &f,
        &t,
        "T1",
        vec![
            add("ann@bw.example", "ent-big", "g", Some("ann@big.example")),
            add("bob@bw.example", "ent-big", "g", Some("bob@big.example")),
            add(
                "cid@bw.example",
                "ent-small",
                "g",
                Some("cid@small.example"),
            ),
        ],
    )
    .await;
    assert!(
        out.results.iter().all(|r| r.error_code.is_none()),
        "{out:?}"
    );
    let role = |org: &'static str| {
        let store = f.store.clone();
        async move {
            let report = store.existing_org(org).await.expect("report").expect(org);
            report
                .partner_roles
                .iter()
                .find(|r| r.partner_id == "acme")
                .map(|r| (r.role, r.source.clone()))
        }
    };
    assert_eq!(
        role("small").await,
        Some((PartnerRole::ProvisioningAdmin, "attach".to_string()))
    );

    // Provisioning admin is not enough: refused, nothing written.
    let before = snapshot(&f).await;
    let refused = f.store.detach("acme", "ent-small", "D0", NOW).await;
    assert_eq!(
        refused.expect("detach"),
        DetachOutcome::NotAdmin {
            org_id: "small".into()
        }
    );
    assert_eq!(
        snapshot(&f).await,
        before,
        "a refused detach writes nothing"
    );
    assert!(f
        .store
        .existing_org("small")
        .await
        .expect("report")
        .expect("small")
        .link
        .is_some());

    // Full admin: detached; the users' data is gone, the role too.
    let ann_id = sub(&f, "ann@bw.example").await.id;
    let bob_id = sub(&f, "bob@bw.example").await.id;
    // A workspace of the enterprise goes with it.
    let room = transact(&*f.store, |tx| {
        crate::provision::workspaces::create(
            tx,
            "acme",
            &crate::provision::workspaces::NewWorkspace {
                provisioning_id: "t1".into(),
                user_id: uid("room@bw.example"),
                sp_enterprise_id: "ent-big".into(),
                display_name: "Room".into(),
                phone_number: None,
                extension: None,
            },
            "W1",
            NOW,
        )
    })
    .await
    .expect("store")
    .expect("workspace");
    let outcome = f
        .store
        .detach("acme", "ent-big", "D1", NOW + 5)
        .await
        .expect("detach");
    let DetachOutcome::Detached(report) = outcome else {
        panic!("detached: {outcome:?}");
    };
    assert_eq!(report.subscribers_removed, 2, "{report:?}");
    assert_eq!(report.workspaces_removed, 1, "{report:?}");
    let id = room.id.clone();
    let room = transact(&*f.store, move |tx| tx.workspace(&id))
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        room.status,
        crate::domain::workspace::WorkspaceStatus::Removed
    );
    assert!(
        outbox(&f).await.iter().any(|e| matches!(
            &e.envelope.command,
            crate::commands::Command::RemoveWorkspace { workspace_id, .. } if *workspace_id == room.id
        )),
        "the core is told"
    );
    for id in [&ann_id, &bob_id] {
        let s = f.store.subscriber(id).await.expect("read").expect("row");
        assert_eq!(s.status, SubscriberStatus::Removed);
        assert_eq!((s.first_name.as_str(), s.last_name.as_str()), ("", ""));
        assert_eq!(s.email, None);
        assert_eq!((s.language, s.time_zone), (None, None));
        assert_eq!(
            (s.user_id, s.phone_number, s.mobile_phone_number),
            (None, None, None)
        );
    }
    assert_eq!(
        role("big").await,
        Some((PartnerRole::None, "detach".to_string()))
    );
    let big = f
        .store
        .existing_org("big")
        .await
        .expect("report")
        .expect("big");
    assert!(big.link.is_none());

    // Attaching again is decided afresh: the approval does not carry over.
    let out = accept(
        &f,
        &t,
        "T2",
        vec![add(
            "ann@bw.example",
            "ent-big",
            "g",
            Some("ann@big.example"),
        )],
    )
    .await;
    assert_eq!(out.results[0].error_code, Some(2017), "{out:?}");
    assert!(f
        .store
        .subscriber_by_user_id("ann@bw.example")
        .await
        .expect("read")
        .is_none());
}

// ---------------------------------------------------------------- org names

pub(crate) async fn created_orgs_are_named_after_the_broadworks_names(factory: &dyn StoreFactory) {
    use crate::store::tx::OrgOrigin;
    let f = fixture(factory).await;
    let ent = template(&f.store, "ent", true, true).await;
    let grp = template(&f.store, "grp", false, true).await;
    let named = |user: &str, sp: &str, group: &str, sp_name: Option<&str>, g_name: Option<&str>| {
        let mut s = new_sub(user, sp, group, Some(&user.replace('@', ".at@")));
        s.service_provider_name = sp_name.map(str::to_string);
        s.group_name = g_name.map(str::to_string);
        Operation::AddUser(s)
    };
    accept(
        &f,
        &ent,
        "E1",
        vec![
            named("a@bw.example", "acme", "hq", Some("Acme Inc"), Some("HQ")),
            named("b@bw.example", "bare", "hq", None, Some("HQ")),
        ],
    )
    .await;
    accept(
        &f,
        &grp,
        "G1",
        vec![
            named("c@bw.example", "acme", "hq", Some("Acme Inc"), Some("HQ")),
            named("d@bw.example", "acme", "lab", None, Some("Lab")),
            named("e@bw.example", "acme", "ops", Some("Acme Inc"), None),
            // The enterprise exists: a later subscriber's names change nothing.
            named("f@bw.example", "acme", "hq", Some("Other"), Some("Other")),
        ],
    )
    .await;
    let mut names = Vec::new();
    for user in ["a", "b", "c", "d", "e", "f"] {
        let s = sub(&f, &format!("{user}@bw.example")).await;
        let org_id = s.org_id.expect("in an organization");
        let (org, origin) = f
            .store
            .organization(&org_id)
            .await
            .expect("read")
            .expect("organization");
        assert_eq!(origin, OrgOrigin::Created);
        assert_eq!(Some(&org.enterprise_key), s.enterprise_key.as_ref());
        names.push(org.name);
    }
    assert_eq!(
        names,
        [
            "Acme Inc",
            "bare",
            "Acme Inc — HQ",
            "Lab",
            "acme+ops",
            "Acme Inc — HQ"
        ]
    );
    // The license core is told the same name.
    let ensured: Vec<String> = outbox(&f)
        .await
        .into_iter()
        .filter_map(|e| match e.envelope.command {
            Command::EnsureOrganization { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(ensured, names[..5]);
    assert!(f
        .store
        .organization("no-such-org")
        .await
        .expect("read")
        .is_none());
}
