//! Partner admins on any store: admin token hashes, the filtered
//! subscriber list with keyset pagination, and the delete and package
//! change actions (state and outbox commands in one transaction; bad input
//! changes nothing).

use super::*;
use crate::commands::Command;
use crate::domain::lifecycle::SubscriberStatus;
use crate::domain::template::TemplateSource;
use crate::domain::{CustomerTemplate, ErrorCode, Package, Partner, TemplateSettings};
use crate::provision::testing::UseCases;
use crate::provision::DeliveryOutcome;
use crate::store::{StoreError, SubscriberQuery};

/// A second partner with its own template.
async fn other_partner(s: &Fixture) -> CustomerTemplate {
    s.upsert_partner(&Partner {
        id: "globex".into(),
        name: "Globex".into(),
        admin_email: None,
    })
    .await
    .expect("partner");
    let t = CustomerTemplate {
        provisioning_id: "g-tpl".into(),
        partner_id: "globex".into(),
        cluster_id: None,
        name: "Globex template".into(),
        settings: TemplateSettings::default(),
        provisioning_username: "prov-g".into(),
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    };
    s.upsert_template(&t).await.expect("template");
    t
}

pub(crate) fn query(partner: &str) -> SubscriberQuery {
    SubscriberQuery {
        partner_id: partner.into(),
        limit: 1000,
        ..SubscriberQuery::default()
    }
}

async fn users(s: &Fixture, q: &SubscriberQuery) -> Vec<String> {
    s.partner_subscribers(q)
        .await
        .expect("list")
        .into_iter()
        .map(|r| {
            r.user_id
                .map(|u| u.as_str().to_string())
                .unwrap_or_else(|| format!("removed:{}", r.email.unwrap_or_default()))
        })
        .collect()
}

/// acme: `a1`, `a2` provisioned, `a3` provisioning, `p1` waiting for its
/// email (untrusted template), `e1` failed, `d1` removed; globex: `g1`.
async fn population(s: &Fixture) -> (CustomerTemplate, CustomerTemplate, CustomerTemplate) {
    let trusted = template(s, "tpl-a", true, true).await;
    let untrusted = template(s, "tpl-b", true, false).await;
    let globex = other_partner(s).await;
    let ok = |u: &str| add(u, "SP1", "G1", Some(u));
    s.accept(batch(
        &trusted,
        "T1",
        None,
        vec![
            ok("a1@acme.example"),
            ok("a2@acme.example"),
            ok("e1@acme.example"),
            ok("d1@acme.example"),
        ],
    ))
    .await
    .expect("accept");
    s.accept(batch(&untrusted, "T2", None, vec![ok("p1@acme.example")]))
        .await
        .expect("accept");
    s.accept(batch(&globex, "T3", None, vec![ok("g1@globex.example")]))
        .await
        .expect("accept");
    deliver_all(s).await;
    // e1's next attempt is rejected by the core.
    let e1 = sub(s, "e1@acme.example").await;
    s.accept(batch(
        &trusted,
        "T4",
        None,
        vec![add(
            "e1@acme.example",
            "SP1",
            "G1",
            Some("e1@other.example"),
        )],
    ))
    .await
    .expect("modify");
    let pending = s.subscriber_commands(&e1.id).await.expect("cmds");
    let last = pending.last().expect("update command").seq;
    s.complete_command(
        last,
        DeliveryOutcome::Rejected {
            error_code: 9008,
            description: "Phone number already assigned.".into(),
        },
        NOW + 2,
    )
    .await
    .expect("reject");
    let d1 = sub(s, "d1@acme.example").await;
    s.partner_delete_subscriber("acme", &d1.id, "T5", NOW + 3)
        .await
        .expect("store")
        .expect("deleted");
    s.accept(batch(&trusted, "T6", None, vec![ok("a3@acme.example")]))
        .await
        .expect("accept");
    (trusted, untrusted, globex)
}

pub(crate) async fn partner_list_filters_by_status_template_and_exclude_provisioned(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let (trusted, _, _) = population(s).await;
    assert_eq!(
        sub(s, "e1@acme.example").await.status,
        SubscriberStatus::Error
    );

    let all = users(s, &query("acme")).await;
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "a1@acme.example",
            "a2@acme.example",
            "a3@acme.example",
            "e1@acme.example",
            "p1@acme.example"
        ],
        "removed and other partners' subscribers are not listed"
    );
    let ids: Vec<String> = s
        .partner_subscribers(&query("acme"))
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut in_order = ids.clone();
    in_order.sort();
    assert_eq!(ids, in_order, "keyset (id) order");

    let q = SubscriberQuery {
        exclude_provisioned: true,
        ..query("acme")
    };
    let mut got = users(s, &q).await;
    got.sort();
    assert_eq!(
        got,
        ["a3@acme.example", "e1@acme.example", "p1@acme.example"]
    );

    let q = SubscriberQuery {
        statuses: vec![SubscriberStatus::Error, SubscriberStatus::PendingEmailInput],
        ..query("acme")
    };
    let mut got = users(s, &q).await;
    got.sort();
    assert_eq!(got, ["e1@acme.example", "p1@acme.example"]);

    let q = SubscriberQuery {
        statuses: vec![SubscriberStatus::Provisioned],
        exclude_provisioned: true,
        ..query("acme")
    };
    assert!(users(s, &q).await.is_empty(), "both filters apply");

    let q = SubscriberQuery {
        statuses: vec![SubscriberStatus::Removed],
        ..query("acme")
    };
    assert_eq!(users(s, &q).await, ["removed:d1@acme.example"]);

    let q = SubscriberQuery {
        provisioning_id: Some("tpl-b".into()),
        ..query("acme")
    };
    assert_eq!(users(s, &q).await, ["p1@acme.example"]);

    // One enterprise (the XSI enterprise directory): exactly the live
    // subscribers whose enterprise key it is.
    s.accept(batch(
        &trusted,
        "T-other-enterprise",
        None,
        vec![add("x1@acme.example", "SP9", "G1", Some("x1@acme.example"))],
    ))
    .await
    .expect("accept");
    let all = users(s, &query("acme")).await;
    let key = sub(s, "a1@acme.example").await.enterprise_key.expect("key");
    let mut expected = Vec::new();
    for u in all.iter() {
        if sub(s, u).await.enterprise_key.as_ref() == Some(&key) {
            expected.push(u.clone());
        }
    }
    assert!(
        !expected.is_empty() && expected.len() < all.len(),
        "{expected:?} of {all:?}"
    );
    let q = SubscriberQuery {
        enterprise_key: Some(key),
        ..query("acme")
    };
    let mut got = users(s, &q).await;
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let q = SubscriberQuery {
        enterprise_key: Some(crate::domain::ids::EnterpriseKey::derive(
            "nobody", "g", true,
        )),
        ..query("acme")
    };
    assert!(users(s, &q).await.is_empty());

    // Another partner's template or subscribers never show.
    let q = SubscriberQuery {
        provisioning_id: Some("g-tpl".into()),
        ..query("acme")
    };
    assert!(users(s, &q).await.is_empty());
    assert_eq!(users(s, &query("globex")).await, ["g1@globex.example"]);
    assert!(users(s, &query("nobody")).await.is_empty());
    let g1 = sub(s, "g1@globex.example").await;
    assert!(s
        .partner_subscriber("acme", &g1.id)
        .await
        .expect("get")
        .is_none());
    assert_eq!(
        s.partner_subscriber("globex", &g1.id)
            .await
            .expect("get")
            .map(|r| r.id),
        Some(g1.id)
    );
}

pub(crate) async fn partner_list_pages_by_keyset_without_gaps_or_repeats(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    population(s).await;
    let all: Vec<String> = s
        .partner_subscribers(&query("acme"))
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all.len(), 5);
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .partner_subscribers(&SubscriberQuery {
                after: after.clone(),
                limit: 2,
                ..query("acme")
            })
            .await
            .expect("page");
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(seen, all);
    // A cursor past the end, and a limit of 0, give nothing.
    let q = SubscriberQuery {
        after: Some("~".into()),
        ..query("acme")
    };
    assert!(users(s, &q).await.is_empty());
    let q = SubscriberQuery {
        limit: 0,
        ..query("acme")
    };
    assert!(users(s, &q).await.is_empty());
}

pub(crate) async fn partner_delete_is_partial_and_writes_remove_subscriber_in_the_same_transaction(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    population(s).await;
    let a1 = sub(s, "a1@acme.example").await;
    let before = outbox(s).await.len();

    let done = s
        .partner_delete_subscriber("acme", &a1.id, "TD", NOW + 10)
        .await
        .expect("store")
        .expect("deleted");
    assert_eq!(done.commands_written, 1);
    let r = done.subscriber;
    assert_eq!(r.status, SubscriberStatus::Removed);
    assert_eq!(r.user_id, None, "the BroadWorks user id goes");
    assert_eq!(r.phone_number, None);
    assert_eq!(r.email.as_deref(), Some("a1@acme.example"), "email stays");
    assert_eq!(
        (r.first_name.as_str(), r.version),
        ("Alice", a1.version + 1)
    );
    assert_eq!(s.subscriber(&a1.id).await.expect("get"), Some(r.clone()));
    let entries = outbox(s).await;
    assert_eq!(entries.len(), before + 1);
    let last = entries.last().expect("command");
    assert_eq!(last.envelope.idempotency_key, "TD:partner:0");
    assert_eq!(last.envelope.tracking_id, "TD");
    match &last.envelope.command {
        Command::RemoveSubscriber {
            subscriber_id,
            org_id,
            subscriber_version,
        } => {
            assert_eq!(subscriber_id, &a1.id);
            assert_eq!(Some(org_id), a1.org_id.as_ref());
            assert_eq!(*subscriber_version, r.version);
        }
        other => panic!("{other:?}"),
    }

    // A subscriber the core never knew: removed, no command.
    let p1 = sub(s, "p1@acme.example").await;
    let done = s
        .partner_delete_subscriber("acme", &p1.id, "TP", NOW + 11)
        .await
        .expect("store")
        .expect("deleted");
    assert_eq!(
        (done.subscriber.status, done.commands_written),
        (SubscriberStatus::Removed, 0)
    );
    assert_eq!(outbox(s).await.len(), before + 1);

    // Refusals change nothing.
    let g1 = sub(s, "g1@globex.example").await;
    let frozen = snapshot(s).await;
    for (partner, id) in [
        ("acme", a1.id.as_str()),
        ("acme", g1.id.as_str()),
        ("acme", "no-such-id"),
        ("globex", p1.id.as_str()),
    ] {
        let refused = s
            .partner_delete_subscriber(partner, id, "TX", NOW + 12)
            .await
            .expect("store")
            .expect_err("refused");
        assert_eq!(refused.code, ErrorCode::NotFound, "{partner} {id}");
    }
    assert_eq!(snapshot(s).await, frozen, "nothing changed");
}

pub(crate) async fn partner_package_change_follows_the_modify_rules(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    population(s).await;
    let a2 = sub(s, "a2@acme.example").await;
    assert_eq!(a2.package, Package::Basic, "the template's default");
    let before = outbox(s).await.len();

    // Provisioned: updating, ChangePackage in the same transaction.
    let done = s
        .partner_change_package("acme", &a2.id, Package::Premium, "TC", NOW + 20)
        .await
        .expect("store")
        .expect("changed");
    assert_eq!(done.commands_written, 1);
    assert_eq!(done.subscriber.status, SubscriberStatus::Updating);
    assert_eq!(done.subscriber.package, Package::Premium);
    assert_eq!(done.subscriber.version, a2.version + 1);
    assert_eq!(sub(s, "a2@acme.example").await, done.subscriber);
    let entries = outbox(s).await;
    assert_eq!(entries.len(), before + 1);
    let last = entries.last().expect("command");
    assert_eq!(last.envelope.idempotency_key, "TC:partner:0");
    assert!(
        matches!(
            &last.envelope.command,
            Command::ChangePackage { package: Package::Premium, subscriber_version, .. }
                if *subscriber_version == a2.version + 1
        ),
        "{:?}",
        last.envelope.command
    );

    // The same package again: nothing changes.
    let frozen = snapshot(s).await;
    let same = s
        .partner_change_package("acme", &a2.id, Package::Premium, "TS", NOW + 21)
        .await
        .expect("store")
        .expect("unchanged");
    assert_eq!(same.commands_written, 0);
    assert_eq!(snapshot(s).await, frozen);

    // Waiting for its user: the package is kept for provisioning, no command.
    let p1 = sub(s, "p1@acme.example").await;
    let done = s
        .partner_change_package("acme", &p1.id, Package::Standard, "TW", NOW + 22)
        .await
        .expect("store")
        .expect("changed");
    assert_eq!(
        (
            done.subscriber.status,
            done.subscriber.package,
            done.commands_written
        ),
        (SubscriberStatus::PendingEmailInput, Package::Standard, 0)
    );
    assert_eq!(done.subscriber.version, p1.version + 1);

    // Failed: the change is a retry (ProvisionSubscriber with the package).
    let e1 = sub(s, "e1@acme.example").await;
    assert_eq!(e1.status, SubscriberStatus::Error);
    let done = s
        .partner_change_package("acme", &e1.id, Package::Softphone, "TE", NOW + 23)
        .await
        .expect("store")
        .expect("retried");
    assert_eq!(done.subscriber.status, SubscriberStatus::Provisioning);
    assert!(done.subscriber.errors.is_empty());
    let last = outbox(s).await.pop().expect("command");
    assert!(
        matches!(
            &last.envelope.command,
            Command::ProvisionSubscriber {
                package: Package::Softphone,
                ..
            }
        ),
        "{:?}",
        last.envelope.command
    );

    // Refusals change nothing: removed, another partner's, unknown.
    let removed = s
        .partner_subscribers(&SubscriberQuery {
            statuses: vec![SubscriberStatus::Removed],
            ..query("acme")
        })
        .await
        .expect("list")
        .pop()
        .expect("d1");
    let g1 = sub(s, "g1@globex.example").await;
    let frozen = snapshot(s).await;
    for id in [removed.id.as_str(), g1.id.as_str(), "no-such-id"] {
        let refused = s
            .partner_change_package("acme", id, Package::Basic, "TX", NOW + 24)
            .await
            .expect("store")
            .expect_err("refused");
        assert_eq!(refused.code, ErrorCode::NotFound, "{id}");
    }
    assert_eq!(snapshot(s).await, frozen, "nothing changed");
}

pub(crate) async fn partner_admin_tokens_are_set_kept_and_cleared(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    other_partner(s).await;
    assert!(s.partner_admin_tokens().await.expect("list").is_empty());
    s.set_partner_admin_token("globex", Some("$argon2id$g"))
        .await
        .expect("set");
    s.set_partner_admin_token("acme", Some("$argon2id$a"))
        .await
        .expect("set");
    let want = vec![
        ("acme".to_string(), "$argon2id$a".to_string()),
        ("globex".to_string(), "$argon2id$g".to_string()),
    ];
    assert_eq!(s.partner_admin_tokens().await.expect("list"), want);
    // Upserting the partner (every start) keeps its token.
    s.upsert_partner(&Partner {
        id: "acme".into(),
        name: "Acme renamed".into(),
        admin_email: None,
    })
    .await
    .expect("upsert");
    assert_eq!(s.partner_admin_tokens().await.expect("list"), want);
    s.set_partner_admin_token("acme", None)
        .await
        .expect("clear");
    assert_eq!(
        s.partner_admin_tokens().await.expect("list"),
        want[1..].to_vec()
    );
    let err = s
        .set_partner_admin_token("nobody", Some("$argon2id$x"))
        .await
        .expect_err("unknown partner");
    assert!(
        matches!(
            err,
            StoreError::MissingReference {
                entity: "partner",
                ..
            }
        ),
        "{err:?}"
    );
}
