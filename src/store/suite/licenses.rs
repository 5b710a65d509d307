//! The license core on any store: package licenses taken from an
//! organization's subscriptions (oldest first, all or nothing), each key
//! answered once, the ledger (billing feed) and the admin rules.

use std::collections::BTreeMap;

use super::*;
use crate::commands::{Command, CommandEnvelope};
use crate::domain::license::LicenseSubscription;
use crate::domain::{ErrorCode, Package};
use crate::license::admin::{
    LicenseAdmin, LicenseAdminError, Place, SubscriptionMoves, TemplateApplication,
};
use crate::license::{
    package_licenses, Granted, LicenseCore, LicenseError, LicensePolicy, LocalLicenseCore,
};

const CALLING: &str = "webex-calling-basic";
const MESSAGING: &str = "webex-messaging";

/// `users` added to one enterprise (template default package: Basic),
/// their organization's id, and the commands that move licenses.
async fn org_with_users(fx: &Fixture, users: &[&str]) -> (String, Vec<CommandEnvelope>) {
    let t = template(fx, "tpl", true, true).await;
    let ops = users.iter().map(|u| add(u, "SP1", "G1", Some(u))).collect();
    accept(fx, &t, "T1", ops).await;
    let org_id = value(fx, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    let commands = provisions(fx).await;
    assert_eq!(commands.len(), users.len());
    (org_id, commands)
}

async fn provisions(fx: &Fixture) -> Vec<CommandEnvelope> {
    outbox(fx)
        .await
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| matches!(e.command, Command::ProvisionSubscriber { .. }))
        .collect()
}

pub(super) fn subscription(
    id: &str,
    starts_at: i64,
    quantities: &[(&str, u32)],
) -> LicenseSubscription {
    LicenseSubscription {
        id: id.into(),
        starts_at,
        quantities: quantities
            .iter()
            .map(|(l, n)| (l.to_string(), *n))
            .collect(),
    }
}

fn core(fx: &Fixture, policy: LicensePolicy) -> std::sync::Arc<LocalLicenseCore> {
    LocalLicenseCore::new(fx.store.clone(), policy)
}

/// `Ok` or the refusal's code, per command.
fn codes(results: &[Result<Granted, LicenseError>]) -> Vec<Option<u32>> {
    results
        .iter()
        .map(|r| match r {
            Ok(_) => None,
            Err(LicenseError::Rejected(refusal)) => Some(refusal.code.code()),
            Err(e) => panic!("unexpected {e}"),
        })
        .collect()
}

fn subscriber_of(env: &CommandEnvelope) -> String {
    match &env.command {
        Command::ProvisionSubscriber { subscriber_id, .. } => subscriber_id.clone(),
        other => panic!("not a provision: {other:?}"),
    }
}

/// A `ChangePackage` of the subscriber `provision` provisioned, under
/// `key` (without user or group ids: the core takes them from what the
/// subscriber holds).
fn change_package(provision: &CommandEnvelope, key: &str, package: Package) -> CommandEnvelope {
    let Command::ProvisionSubscriber {
        subscriber_id,
        org_id,
        ..
    } = &provision.command
    else {
        panic!("not a provision: {:?}", provision.command);
    };
    CommandEnvelope {
        idempotency_key: key.into(),
        command: Command::ChangePackage {
            subscriber_id: subscriber_id.clone(),
            org_id: org_id.clone(),
            package,
            subscriber_version: 2,
            user_id: None,
            group_id: None,
            phone_number: None,
        },
        ..provision.clone()
    }
}

/// Who holds what from which subscription: `(user, license) → subscription`.
async fn holdings(fx: &Fixture, org_id: &str) -> BTreeMap<(String, String), Option<String>> {
    fx.license_holders(org_id)
        .await
        .expect("holders")
        .into_iter()
        .map(|r| ((r.user_id, r.holding.license), r.holding.subscription_id))
        .collect()
}

fn key(user: &str, license: &str) -> (String, String) {
    (user.to_string(), license.to_string())
}

pub(crate) async fn licenses_come_from_the_oldest_subscription_and_a_shortage_is_answered_once(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) =
        org_with_users(&fx, &["a@acme.example", "b@acme.example", "c@acme.example"]).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    // Added newest first: age decides, not the order of adding.
    for s in [
        subscription("new", NOW, &[(CALLING, 1), (MESSAGING, 5)]),
        subscription("old", NOW - 1_000, &[(CALLING, 1), (MESSAGING, 1)]),
    ] {
        assert!(
            admin
                .put_subscription(&org, s, NOW)
                .await
                .expect("put")
                .created
        );
    }
    let core = core(&fx, LicensePolicy::default());

    let results = core.apply_in_order(&commands).await;
    assert_eq!(
        codes(&results),
        [None, None, Some(ErrorCode::LicenseShortage.code())]
    );
    let Err(LicenseError::Rejected(shortage)) = &results[2] else {
        unreachable!()
    };
    assert!(
        shortage.message().contains(CALLING) && shortage.message().contains("hold 2"),
        "{}",
        shortage.message()
    );
    let held = holdings(&fx, &org).await;
    let from = |u: &str, l: &str| held.get(&key(u, l)).cloned().flatten();
    assert_eq!(from("a@acme.example", CALLING).as_deref(), Some("old"));
    assert_eq!(from("a@acme.example", MESSAGING).as_deref(), Some("old"));
    assert_eq!(from("b@acme.example", CALLING).as_deref(), Some("new"));
    assert_eq!(from("b@acme.example", MESSAGING).as_deref(), Some("new"));
    assert_eq!(
        held.len(),
        4,
        "all or nothing: c holds no messaging license"
    );

    // The same keys again (a redelivery): the same answers, nothing new.
    let before = snapshot(&fx).await;
    assert_eq!(
        codes(&core.apply_in_order(&commands).await),
        codes(&results)
    );
    assert_eq!(snapshot(&fx).await, before);

    // Usage per subscription, oldest first.
    let usage = fx.license_subscriptions(&org).await.expect("usage");
    let ids: Vec<&str> = usage.iter().map(|u| u.subscription.id.as_str()).collect();
    assert_eq!(ids, ["old", "new"]);
    assert_eq!(usage[0].assigned.get(CALLING), Some(&1));
    assert_eq!(usage[1].assigned.get(MESSAGING), Some(&1));

    // The ledger: four grants, with organization, subscription and time.
    let feed = fx.license_feed(0, 100).await.expect("feed");
    assert_eq!(feed.len(), 4, "{feed:?}");
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    assert!(feed.iter().all(|e| e.action == "grant"
        && e.org_id.as_deref() == Some(org.as_str())
        && e.subscription_id.is_some()
        && e.source == "package"
        && e.source_ref == "basic"
        && e.at >= NOW));
    assert_eq!(
        fx.license_feed(feed[1].id, 100).await.expect("rest").len(),
        2
    );

    // A leaves: its licenses go back to "old", and C's next command takes
    // them (oldest subscription with room again).
    let a = subscriber_of(&commands[0]);
    let remove = CommandEnvelope {
        idempotency_key: "remove-a".into(),
        command: Command::RemoveSubscriber {
            subscriber_id: a.clone(),
            org_id: org.clone(),
            subscriber_version: 2,
        },
        ..commands[0].clone()
    };
    let mut retry_c = commands[2].clone();
    retry_c.idempotency_key = "retry-c".into();
    assert_eq!(
        codes(&core.apply_in_order(&[remove, retry_c]).await),
        [None, None]
    );
    assert!(fx.licenses(&a).await.expect("a").is_empty());
    let held = holdings(&fx, &org).await;
    assert_eq!(
        held.get(&key("c@acme.example", CALLING))
            .cloned()
            .flatten()
            .as_deref(),
        Some("old")
    );
    let revoked: Vec<_> = fx
        .license_events(&a)
        .await
        .expect("a's ledger")
        .into_iter()
        .filter(|e| e.action == "revoke")
        .map(|e| (e.license, e.subscription_id))
        .collect();
    assert_eq!(
        revoked,
        [
            (CALLING.to_string(), Some("old".to_string())),
            (MESSAGING.to_string(), Some("old".to_string()))
        ]
    );
}

pub(crate) async fn package_changes_move_only_the_difference_and_keys_apply_once(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example"]).await;
    let core = core(&fx, LicensePolicy::default());
    let a = subscriber_of(&commands[0]);
    // No subscription: unmetered.
    assert_eq!(codes(&core.apply_in_order(&commands).await), [None]);
    let mut basic = package_licenses(Package::Basic);
    basic.sort();
    assert_eq!(fx.licenses(&a).await.expect("a"), basic);
    assert!(holdings(&fx, &org).await.values().all(Option::is_none));

    let change = |key: &str, package: Package| change_package(&commands[0], key, package);
    assert_eq!(
        codes(&core.apply_in_order(&[change("k2", Package::Premium)]).await),
        [None]
    );
    let mut premium = package_licenses(Package::Premium);
    premium.sort();
    assert_eq!(fx.licenses(&a).await.expect("a"), premium);
    let moved: Vec<(String, String)> = fx
        .license_events(&a)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.idempotency_key == "k2")
        .map(|e| (e.action, e.license))
        .collect();
    // Messaging stays (in both packages): not revoked and granted again.
    assert!(!moved.iter().any(|(_, l)| l == MESSAGING), "{moved:?}");
    assert_eq!(moved.iter().filter(|(a, _)| a == "revoke").count(), 1);
    assert_eq!(moved.iter().filter(|(a, _)| a == "grant").count(), 2);
    // The key again, with other content: already applied, nothing moves.
    assert_eq!(
        codes(&core.apply_in_order(&[change("k2", Package::Basic)]).await),
        [None]
    );
    assert_eq!(fx.licenses(&a).await.expect("a"), premium);
    // The schema itself refuses a second grant of a held license.
    let dup = fx
        .db
        .execute(
            "INSERT INTO licenses (subscriber_id, license, granted_at) VALUES (?1, ?2, 0)",
            &[&a, MESSAGING],
        )
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Database(ref m) | StoreError::Conflict(ref m))
                if m.to_lowercase().contains("unique")
        ),
        "{dup:?}"
    );

    // Once the organization has a subscription, a license held unmetered
    // is counted from it at the subscriber's next change.
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    let all: Vec<(&str, u32)> = premium.iter().map(|l| (l.as_str(), 1)).collect();
    admin
        .put_subscription(&org, subscription("s1", NOW, &all), NOW)
        .await
        .expect("put");
    assert_eq!(
        codes(&core.apply_in_order(&[change("k3", Package::Premium)]).await),
        [None]
    );
    assert!(
        holdings(&fx, &org)
            .await
            .values()
            .all(|s| s.as_deref() == Some("s1")),
        "every license now counts against s1"
    );
}

pub(crate) async fn an_organization_without_subscriptions_grants_nothing_when_required(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example"]).await;
    let core = core(
        &fx,
        LicensePolicy {
            require_subscription: true,
        },
    );
    let results = core.apply_in_order(&commands).await;
    assert_eq!(codes(&results), [Some(ErrorCode::LicenseShortage.code())]);
    let Err(LicenseError::Rejected(r)) = &results[0] else {
        unreachable!()
    };
    assert!(
        r.message().contains("no license subscription"),
        "{}",
        r.message()
    );
    assert!(holdings(&fx, &org).await.is_empty());
}

pub(crate) async fn subscriptions_are_checked_and_never_drop_below_what_they_assigned(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example"]).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    let code = |r: Result<_, LicenseAdminError>| match r {
        Err(LicenseAdminError::Refused(refusal)) => refusal.code,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let s1 = subscription("s1", NOW, &[(CALLING, 2), (MESSAGING, 2)]);
    admin
        .put_subscription(&org, s1.clone(), NOW)
        .await
        .expect("put");
    core(&fx, LicensePolicy::default())
        .apply_in_order(&commands)
        .await;
    let before = fx.license_subscriptions(&org).await.expect("usage");

    // Below what is assigned (1 calling): refused, nothing changed.
    let lower = subscription("s1", NOW, &[(MESSAGING, 2)]);
    assert_eq!(
        code(admin.put_subscription(&org, lower, NOW).await),
        ErrorCode::SubscriptionBelowAssigned
    );
    assert_eq!(fx.license_subscriptions(&org).await.expect("usage"), before);
    // Down to exactly what is assigned is fine, and replaces.
    let exact = subscription("s1", NOW, &[(CALLING, 1), (MESSAGING, 1)]);
    let put = admin
        .put_subscription(&org, exact, NOW)
        .await
        .expect("exact");
    assert!(!put.created);
    assert_eq!(put.usage.assigned.get(CALLING), Some(&1));

    // Another organization's id, an unknown organization, bad names.
    fx.upsert_existing_orgs(vec![super::provisioning::existing_org(
        "other",
        1,
        false,
        &[],
    )])
    .await
    .expect("other org");
    assert_eq!(
        code(admin.put_subscription("other", s1.clone(), NOW).await),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        code(
            admin
                .put_subscription("ghost", subscription("g", NOW, &[]), NOW)
                .await
        ),
        ErrorCode::NotFound
    );
    assert!(matches!(
        admin.subscriptions("ghost").await,
        Err(LicenseAdminError::Refused(r)) if r.code == ErrorCode::NotFound
    ));
    assert_eq!(
        code(
            admin
                .put_subscription("other", subscription("a b", NOW, &[]), NOW)
                .await
        ),
        ErrorCode::InvalidParameterValue
    );
    assert_eq!(
        code(
            admin
                .put_subscription("other", subscription("x", NOW, &[("bad/name", 1)]), NOW)
                .await
        ),
        ErrorCode::InvalidParameterValue
    );
    // An existing organization (not linked yet) may hold subscriptions.
    let put = admin
        .put_subscription("other", subscription("o1", NOW, &[(CALLING, 3)]), NOW)
        .await
        .expect("existing org");
    assert!(put.created);
}

pub(crate) async fn concurrent_runs_never_assign_more_than_bought(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let users: Vec<String> = (0..12).map(|i| format!("u{i}@acme.example")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let (org, commands) = org_with_users(&fx, &names).await;
    LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway)
        .put_subscription(
            &org,
            subscription("s1", NOW, &[(CALLING, 5), (MESSAGING, 50)]),
            NOW,
        )
        .await
        .expect("put");
    // Two cores (two nodes' workers) each take every other command.
    let mut tasks = Vec::new();
    for half in 0..2 {
        let mine: Vec<CommandEnvelope> = commands.iter().skip(half).step_by(2).cloned().collect();
        let core = core(&fx, LicensePolicy::default());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            // One at a time, so the two cores' transactions interleave.
            for env in mine {
                out.extend(core.apply_in_order(std::slice::from_ref(&env)).await);
            }
            codes(&out)
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += t
            .await
            .expect("task")
            .iter()
            .filter(|c| c.is_none())
            .count();
    }
    assert_eq!(granted, 5, "exactly the five bought");
    let usage = fx.license_subscriptions(&org).await.expect("usage");
    assert_eq!(usage[0].assigned.get(CALLING), Some(&5));
    assert_eq!(usage[0].assigned.get(MESSAGING), Some(&5));
}

pub(crate) async fn templates_license_new_users_and_reach_existing_ones_when_asked(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    // a in G1, b and c in G2.
    let ops = [("a", "G1"), ("b", "G2"), ("c", "G2")]
        .iter()
        .map(|(u, g)| {
            let user = format!("{u}@acme.example");
            add(&user, "SP1", g, Some(&user))
        })
        .collect();
    accept(&fx, &t, "T1", ops).await;
    let org = value(&fx, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    let commands = provisions(&fx).await;
    let tpl = |l: &[&str]| crate::domain::license::AutoLicenseTemplate {
        licenses: l.iter().map(|s| s.to_string()).collect(),
        preserve_on_group_move: None,
    };
    admin
        .put_template(&org, None, tpl(&["webex-meetings-basic"]), NOW)
        .await
        .expect("org template");
    admin
        .put_template(
            &org,
            Some("G2"),
            tpl(&["meetings-host:s1", "cc-standard-agent"]),
            NOW,
        )
        .await
        .expect("group template");
    admin
        .put_subscription(
            &org,
            subscription(
                "s",
                NOW,
                &[
                    (CALLING, 10),
                    ("webex-calling-standard", 10),
                    (MESSAGING, 10),
                    ("webex-meetings-basic", 10),
                    ("webex-meetings-premium", 10),
                    ("meetings-host:s1", 1),
                    ("meetings-attendee:s1", 10),
                    ("cc-standard-agent", 10),
                ],
            ),
            NOW,
        )
        .await
        .expect("subscription");
    let core = core(&fx, LicensePolicy::default());
    assert_eq!(
        codes(&core.apply_in_order(&commands).await),
        [None, None, None]
    );
    let why = |rows: &[crate::store::HolderRow], user: &str, license: &str| {
        rows.iter()
            .find(|r| r.user_id == user && r.holding.license == license)
            .map(|r| (r.holding.source.as_str(), r.holding.source_ref.clone()))
    };
    let rows = fx.license_holders(&org).await.expect("holders");
    assert_eq!(
        why(&rows, "a@acme.example", "webex-meetings-basic"),
        Some(("template", "org".to_string()))
    );
    assert_eq!(
        why(&rows, "a@acme.example", "cc-standard-agent"),
        None,
        "G2's only"
    );
    // One host license: b (first) is host, c an attendee of the same site.
    assert_eq!(
        why(&rows, "b@acme.example", "meetings-host:s1"),
        Some(("template", "group:G2".to_string()))
    );
    assert!(why(&rows, "c@acme.example", "meetings-host:s1").is_none());
    assert!(why(&rows, "c@acme.example", "meetings-attendee:s1").is_some());
    assert_eq!(
        why(&rows, "c@acme.example", CALLING),
        Some(("package", "basic".to_string()))
    );

    // The organization's template changes: existing users get the new
    // license when asked; with preserve (the default) they keep the old.
    admin
        .put_template(&org, None, tpl(&["webex-meetings-premium"]), NOW)
        .await
        .expect("org template again");
    let report = admin
        .apply_templates(&org, TemplateApplication::default(), NOW + 1)
        .await
        .expect("apply");
    assert_eq!((report.users, report.changed), (3, 3), "{report:?}");
    assert!(report.short.is_empty());
    let rows = fx.license_holders(&org).await.expect("holders");
    assert!(why(&rows, "a@acme.example", "webex-meetings-basic").is_some());
    assert!(why(&rows, "a@acme.example", "webex-meetings-premium").is_some());
    // Applied again: nothing to change.
    let again = admin
        .apply_templates(&org, TemplateApplication::default(), NOW + 2)
        .await
        .expect("apply");
    assert_eq!(again.changed, 0, "{again:?}");
    // Without preserve, what no template gives goes; the package stays,
    // and b stays a host.
    let report = admin
        .apply_templates(
            &org,
            TemplateApplication {
                preserve: false,
                calling_loss_acknowledged: true,
            },
            NOW + 3,
        )
        .await
        .expect("apply");
    assert_eq!(report.changed, 3, "{report:?}");
    let rows = fx.license_holders(&org).await.expect("holders");
    assert!(why(&rows, "a@acme.example", "webex-meetings-basic").is_none());
    assert!(why(&rows, "a@acme.example", CALLING).is_some());
    assert!(why(&rows, "b@acme.example", "meetings-host:s1").is_some());
    // A package change keeps what templates gave.
    let a = subscriber_of(&commands[0]);
    let change = change_package(&commands[0], "k-premium", Package::Standard);
    assert_eq!(codes(&core.apply_in_order(&[change]).await), [None]);
    let held = fx.licenses(&a).await.expect("a");
    assert!(
        held.contains(&"webex-meetings-premium".to_string()),
        "{held:?}"
    );
    assert!(
        held.contains(&"webex-calling-standard".to_string()),
        "{held:?}"
    );
    assert!(!held.contains(&CALLING.to_string()), "{held:?}");
    // Unknown organization.
    assert!(matches!(
        admin
            .apply_templates("ghost", TemplateApplication::default(), NOW)
            .await,
        Err(LicenseAdminError::Refused(r)) if r.code == ErrorCode::NotFound
    ));
}

pub(crate) async fn subscription_moves_keep_why_and_losing_calling_needs_an_acknowledgement(
    factory: &dyn StoreFactory,
) {
    use crate::license::admin::SubscriptionMoves;
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example", "b@acme.example"]).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    for s in [
        subscription("old", NOW - 1, &[(CALLING, 2), (MESSAGING, 2)]),
        subscription("new", NOW, &[(CALLING, 1), (MESSAGING, 5)]),
    ] {
        admin.put_subscription(&org, s, NOW).await.expect("put");
    }
    let core = core(&fx, LicensePolicy::default());
    assert_eq!(codes(&core.apply_in_order(&commands).await), [None, None]);
    let from = |rows: &BTreeMap<(String, String), Option<String>>, u: &str, l: &str| {
        rows.get(&key(u, l)).cloned().flatten()
    };

    // Everyone from "old" to "new": room for one calling license only, so
    // a moves whole and b stays whole (all or nothing per user).
    let report = admin
        .move_subscription(
            &org,
            "old",
            SubscriptionMoves::All { to: "new".into() },
            NOW + 1,
        )
        .await
        .expect("move");
    assert_eq!(report.moved, [("a@acme.example".to_string(), 2)]);
    assert_eq!(report.short.len(), 1, "{report:?}");
    assert!(report.short[0].1.contains(CALLING), "{report:?}");
    let held = holdings(&fx, &org).await;
    assert_eq!(
        from(&held, "a@acme.example", CALLING).as_deref(),
        Some("new")
    );
    assert_eq!(
        from(&held, "a@acme.example", MESSAGING).as_deref(),
        Some("new")
    );
    assert_eq!(
        from(&held, "b@acme.example", CALLING).as_deref(),
        Some("old")
    );
    // The ledger: a removal from "old" and a grant on "new" per license,
    // with the package still the reason.
    let a = subscriber_of(&commands[0]);
    let moved: Vec<(String, Option<String>, String)> = fx
        .license_events(&a)
        .await
        .expect("ledger")
        .into_iter()
        .filter(|e| e.idempotency_key.starts_with("move:"))
        .map(|e| (e.action, e.subscription_id, e.source_ref))
        .collect();
    assert_eq!(moved.len(), 4, "{moved:?}");
    assert!(moved.iter().all(|(_, _, why)| why == "basic"), "{moved:?}");
    let usage = fx.license_subscriptions(&org).await.expect("usage");
    assert_eq!(usage[0].assigned.get(CALLING), Some(&1), "old keeps b's");
    assert_eq!(usage[1].assigned.get(CALLING), Some(&1), "new has a's");

    // Named users, unknown ones reported; subscriptions must be the org's.
    let report = admin
        .move_subscription(
            &org,
            "old",
            SubscriptionMoves::Users(vec![
                ("b@acme.example".into(), "new".into()),
                ("ghost@acme.example".into(), "new".into()),
            ]),
            NOW + 2,
        )
        .await
        .expect("move");
    assert!(report.moved.is_empty());
    assert_eq!(report.short.len(), 2, "{report:?}");
    for bad in ["nope", "old"] {
        let r = admin
            .move_subscription(&org, "old", SubscriptionMoves::All { to: bad.into() }, NOW)
            .await;
        assert!(
            matches!(r, Err(LicenseAdminError::Refused(_))),
            "{bad}: {r:?}"
        );
    }

    // A template that would take a calling license away (given by the
    // template, not the package) needs the acknowledgement.
    let tpl = |l: &[&str]| crate::domain::license::AutoLicenseTemplate {
        licenses: l.iter().map(|s| s.to_string()).collect(),
        preserve_on_group_move: None,
    };
    admin
        .put_template(&org, None, tpl(&["webex-calling-premium"]), NOW)
        .await
        .expect("template");
    admin
        .put_subscription(
            &org,
            subscription(
                "new",
                NOW,
                &[(CALLING, 1), (MESSAGING, 5), ("webex-calling-premium", 5)],
            ),
            NOW,
        )
        .await
        .expect("room");
    let report = admin
        .apply_templates(&org, TemplateApplication::default(), NOW + 3)
        .await
        .expect("apply");
    assert_eq!(report.changed, 2, "{report:?}");
    admin
        .put_template(&org, None, tpl(&[]), NOW)
        .await
        .expect("empty template");
    let without_ack = TemplateApplication {
        preserve: false,
        calling_loss_acknowledged: false,
    };
    let report = admin
        .apply_templates(&org, without_ack, NOW + 4)
        .await
        .expect("apply");
    assert_eq!((report.changed, report.short.len()), (0, 2), "{report:?}");
    assert!(report.short[0].1.contains("voicemail"), "{report:?}");
    assert!(fx
        .licenses(&a)
        .await
        .expect("a")
        .contains(&"webex-calling-premium".to_string()));
    let report = admin
        .apply_templates(
            &org,
            TemplateApplication {
                calling_loss_acknowledged: true,
                ..without_ack
            },
            NOW + 5,
        )
        .await
        .expect("apply");
    assert_eq!(report.changed, 2, "{report:?}");
    assert!(!fx
        .licenses(&a)
        .await
        .expect("a")
        .contains(&"webex-calling-premium".to_string()));
    assert!(
        fx.licenses(&a)
            .await
            .expect("a")
            .contains(&CALLING.to_string()),
        "the package's stays"
    );
}

pub(crate) async fn template_extras_are_best_effort_and_outlive_package_changes(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example", "b@acme.example"]).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    let tpl = crate::domain::license::AutoLicenseTemplate {
        preserve_on_group_move: None,
        licenses: ["webex-meetings-basic", "never-bought"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    admin
        .put_template(&org, None, tpl, NOW)
        .await
        .expect("template");
    // A subscription that starts far in the future gives nothing yet, but
    // makes the organization metered.
    let later = crate::domain::now_millis() + 86_400_000;
    admin
        .put_subscription(&org, subscription("later", later, &[(CALLING, 9)]), NOW)
        .await
        .expect("later");
    admin
        .put_subscription(
            &org,
            subscription(
                "now",
                NOW,
                &[
                    (CALLING, 1),
                    ("webex-calling-standard", 5),
                    (MESSAGING, 5),
                    ("webex-meetings-basic", 5),
                ],
            ),
            NOW,
        )
        .await
        .expect("now");
    let core = core(&fx, LicensePolicy::default());
    // a: the package, plus the template's meetings license; the license no
    // subscription has is left out instead of refusing a. b: short of
    // calling ("later" has not started).
    assert_eq!(
        codes(&core.apply_in_order(&commands).await),
        [None, Some(ErrorCode::LicenseShortage.code())]
    );
    let a = subscriber_of(&commands[0]);
    assert_eq!(
        fx.licenses(&a).await.expect("a"),
        [CALLING, "webex-meetings-basic", MESSAGING]
    );
    // Standard grants meetings-basic too, Basic does not: the template's
    // license stays through both changes.
    let change = |key: &str, package: Package| change_package(&commands[0], key, package);
    assert_eq!(
        codes(
            &core
                .apply_in_order(&[
                    change("up", Package::Standard),
                    change("down", Package::Basic)
                ])
                .await
        ),
        [None, None]
    );
    assert!(fx
        .licenses(&a)
        .await
        .expect("a")
        .contains(&"webex-meetings-basic".to_string()));
}

pub(crate) async fn a_group_move_follows_the_new_groups_template_and_the_preserve_setting(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    let ops = ["a", "b"]
        .iter()
        .map(|u| {
            let user = format!("{u}@acme.example");
            add(&user, "SP1", "G1", Some(&user))
        })
        .collect();
    accept(&fx, &t, "T1", ops).await;
    let org = value(&fx, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    let tpl = |l: &[&str], preserve: Option<bool>| crate::domain::license::AutoLicenseTemplate {
        licenses: l.iter().map(|s| s.to_string()).collect(),
        preserve_on_group_move: preserve,
    };
    // G1's template also lists messaging, which the package gives too.
    admin
        .put_template(
            &org,
            Some("G1"),
            tpl(&["webex-webinars", MESSAGING], None),
            NOW,
        )
        .await
        .expect("G1");
    admin
        .put_template(&org, Some("G2"), tpl(&["webex-meetings-basic"], None), NOW)
        .await
        .expect("G2");
    let core = core(&fx, LicensePolicy::default());
    assert_eq!(
        codes(&core.apply_in_order(&provisions(&fx).await).await),
        [None, None]
    );

    // BroadWorks moves a user to G2 (enterprise mode: same enterprise):
    // the gateway sends an UpdateSubscriber naming the new group.
    let move_to_g2 = |user: &str, tracking: &str| {
        let changes = SubscriberChanges {
            group_id: "G2".into(),
            ..no_changes(user)
        };
        let (t, tracking) = (t.clone(), tracking.to_string());
        let fx = &fx;
        async move {
            accept(fx, &t, &tracking, vec![Operation::ModifyUser(changes)]).await;
            outbox(fx)
                .await
                .into_iter()
                .map(|e| e.envelope)
                .filter(|e| e.tracking_id == tracking)
                .collect::<Vec<_>>()
        }
    };
    let sent = move_to_g2("a@acme.example", "T2").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        matches!(&sent[0].command, Command::UpdateSubscriber { group_id: Some(g), .. } if g == "G2"),
        "{:?}",
        sent[0].command
    );
    assert_eq!(codes(&core.apply_in_order(&sent).await), [None]);
    let held = holdings(&fx, &org).await;
    let has = |u: &str, l: &str| held.contains_key(&key(u, l));
    // Preserve (the default): a keeps G1's webinars and gets G2's meetings.
    assert!(has("a@acme.example", "webex-webinars"));
    assert!(has("a@acme.example", "webex-meetings-basic"));
    assert_eq!(
        value(
            &fx,
            "SELECT DISTINCT group_id FROM licenses WHERE user_id = 'a@acme.example'",
            &[]
        )
        .await
        .as_deref(),
        Some("G2")
    );

    // The organization no longer preserves on group moves: b loses G1's.
    admin
        .put_template(&org, None, tpl(&[], Some(false)), NOW)
        .await
        .expect("org setting");
    // A later PUT of the organization's licenses keeps the setting.
    admin
        .put_template(&org, None, tpl(&[], None), NOW)
        .await
        .expect("org licenses");
    let kept = admin.templates(&org).await.expect("templates").org;
    assert_eq!(kept.and_then(|t| t.preserve_on_group_move), Some(false));
    let sent = move_to_g2("b@acme.example", "T3").await;
    assert_eq!(codes(&core.apply_in_order(&sent).await), [None]);
    let held = holdings(&fx, &org).await;
    let has = |u: &str, l: &str| held.contains_key(&key(u, l));
    assert!(!has("b@acme.example", "webex-webinars"));
    assert!(has("b@acme.example", "webex-meetings-basic"));
    assert!(has("b@acme.example", CALLING), "the package's stay");
    assert!(
        has("b@acme.example", MESSAGING),
        "the package gives it too: it stays though G1's template gave it"
    );
    let b_events: Vec<(String, String)> = fx
        .license_feed(0, 100)
        .await
        .expect("feed")
        .into_iter()
        .filter(|e| e.idempotency_key == sent[0].idempotency_key)
        .map(|e| (e.action, e.license))
        .collect();
    assert_eq!(
        b_events,
        [
            ("revoke".to_string(), "webex-webinars".to_string()),
            ("grant".to_string(), "webex-meetings-basic".to_string())
        ]
    );
    // Delivered again, or moved to the group it is in: nothing changes.
    let before = snapshot(&fx).await;
    assert_eq!(codes(&core.apply_in_order(&sent).await), [None]);
    assert_eq!(snapshot(&fx).await, before);
}

pub(crate) async fn admins_grant_and_revoke_by_hand_within_the_subscriptions(
    factory: &dyn StoreFactory,
) {
    use crate::license::admin_grants::{AdminGrant, GrantAction};
    let fx = fixture(factory).await;
    let (org, commands) = org_with_users(&fx, &["a@acme.example", "b@acme.example"]).await;
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    admin
        .put_subscription(
            &org,
            subscription(
                "s1",
                NOW,
                &[(CALLING, 5), (MESSAGING, 5), ("webex-webinars", 1)],
            ),
            NOW,
        )
        .await
        .expect("put");
    assert_eq!(
        codes(
            &core(&fx, LicensePolicy::default())
                .apply_in_order(&commands)
                .await
        ),
        [None, None]
    );
    let ask = |action, users: &[&str], licenses: &[&str]| AdminGrant {
        action,
        users: users.iter().map(|u| u.to_string()).collect(),
        licenses: licenses.iter().map(|l| l.to_string()).collect(),
        by: "jane.ops".into(),
        calling_loss_acknowledged: false,
    };
    // a named twice: granted once.
    let users = [
        "a@acme.example",
        "a@acme.example",
        "b@acme.example",
        "ghost@acme.example",
    ];
    let r = admin
        .admin_grant(
            &org,
            ask(GrantAction::Grant, &users, &["webex-webinars"]),
            NOW,
        )
        .await
        .expect("grant");
    assert_eq!(r.changed, ["a@acme.example"]);
    let short: Vec<&str> = r.short.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        short,
        ["b@acme.example", "ghost@acme.example"],
        "one webinar license"
    );
    let why = fx
        .license_holders(&org)
        .await
        .expect("holders")
        .into_iter()
        .find(|h| h.user_id == "a@acme.example" && h.holding.license == "webex-webinars")
        .expect("a's webinars")
        .holding;
    assert_eq!(
        (
            why.source,
            why.source_ref.as_str(),
            why.subscription_id.as_deref()
        ),
        (
            crate::domain::license::GrantSource::Admin,
            "jane.ops",
            Some("s1")
        )
    );
    // Webex Calling is not given by hand; a package's licenses are not
    // taken by hand. Nothing changes.
    let before = snapshot(&fx).await;
    let r = admin
        .admin_grant(
            &org,
            ask(
                GrantAction::Grant,
                &["b@acme.example"],
                &["webex-calling-premium"],
            ),
            NOW,
        )
        .await
        .expect("calling");
    assert!(
        r.changed.is_empty() && r.short[0].1.contains("comes with the package"),
        "{r:?}"
    );
    let r = admin
        .admin_grant(
            &org,
            ask(GrantAction::Revoke, &["a@acme.example"], &[MESSAGING]),
            NOW,
        )
        .await
        .expect("package");
    assert!(r.short[0].1.contains("package 'basic'"), "{r:?}");
    assert_eq!(snapshot(&fx).await, before);
    // Taken from a, the webinar license is b's to have.
    let r = admin
        .admin_grant(
            &org,
            ask(
                GrantAction::Revoke,
                &["a@acme.example"],
                &["webex-webinars"],
            ),
            NOW,
        )
        .await
        .expect("revoke");
    assert_eq!(r.changed, ["a@acme.example"]);
    let r = admin
        .admin_grant(
            &org,
            ask(GrantAction::Grant, &["b@acme.example"], &["webex-webinars"]),
            NOW,
        )
        .await
        .expect("grant b");
    assert_eq!(r.changed, ["b@acme.example"]);
    // Granted again: unchanged. Bad names: refused.
    let r = admin
        .admin_grant(
            &org,
            ask(GrantAction::Grant, &["b@acme.example"], &["webex-webinars"]),
            NOW,
        )
        .await
        .expect("again");
    assert_eq!(r.unchanged, ["b@acme.example"]);
    let bad = admin
        .admin_grant(
            &org,
            ask(GrantAction::Grant, &["b@acme.example"], &["no spaces"]),
            NOW,
        )
        .await;
    assert!(
        matches!(bad, Err(LicenseAdminError::Refused(r)) if r.code == ErrorCode::InvalidParameterValue)
    );
    let events: Vec<(String, String, String)> = fx
        .license_feed(0, 100)
        .await
        .expect("feed")
        .into_iter()
        .filter(|e| e.source == "admin")
        .map(|e| (e.subscriber_id.clone(), e.action, e.license))
        .collect();
    assert_eq!(events.len(), 3, "{events:?}");
}

pub(crate) async fn a_move_by_template_takes_the_users_the_template_applies_to(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let ops = [("a", "G1"), ("b", "G2"), ("c", "G1")]
        .iter()
        .map(|(u, g)| {
            let user = format!("{u}@acme.example");
            add(&user, "SP1", g, Some(&user))
        })
        .collect();
    accept(&fx, &t, "T1", ops).await;
    let org = value(&fx, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    for (id, at) in [("old", NOW - 1_000), ("new", NOW)] {
        admin
            .put_subscription(
                &org,
                subscription(id, at, &[(CALLING, 3), (MESSAGING, 3)]),
                NOW,
            )
            .await
            .expect("put");
    }
    let core = core(&fx, LicensePolicy::default());
    assert_eq!(
        codes(&core.apply_in_order(&provisions(&fx).await).await),
        [None; 3]
    );
    let move_by = |template: &str| SubscriptionMoves::Template {
        template: template.into(),
        to: "new".into(),
    };
    let bad = admin
        .move_subscription(&org, "old", move_by("sales"), NOW)
        .await;
    assert!(
        matches!(&bad, Err(LicenseAdminError::Refused(r)) if r.code == ErrorCode::InvalidParameterValue),
        "{bad:?}"
    );
    let report = admin
        .move_subscription(&org, "old", move_by("group:G1"), NOW)
        .await
        .expect("move");
    let moved: Vec<&str> = report.moved.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(moved, ["a@acme.example", "c@acme.example"]);
    let held = holdings(&fx, &org).await;
    let on = |u: &str| held.get(&key(u, CALLING)).cloned().flatten();
    assert_eq!(on("a@acme.example").as_deref(), Some("new"));
    assert_eq!(on("c@acme.example").as_deref(), Some("new"));
    assert_eq!(on("b@acme.example").as_deref(), Some("old"), "b is in G2");
    // `org`: every user still on the source.
    let report = admin
        .move_subscription(&org, "old", move_by("org"), NOW)
        .await
        .expect("move all");
    assert_eq!(report.moved.len(), 1);
    assert_eq!(
        holdings(&fx, &org)
            .await
            .get(&key("b@acme.example", CALLING))
            .cloned()
            .flatten()
            .as_deref(),
        Some("new")
    );
}

pub(crate) async fn the_holders_report_comes_in_keyset_pages(factory: &dyn StoreFactory) {
    use crate::domain::license::HolderCursor;
    let fx = fixture(factory).await;
    let (org, commands) =
        org_with_users(&fx, &["c@acme.example", "a@acme.example", "b@acme.example"]).await;
    assert_eq!(
        codes(
            &core(&fx, LicensePolicy::default())
                .apply_in_order(&commands)
                .await
        ),
        [None; 3]
    );
    let all = fx.license_holders(&org).await.expect("all");
    assert_eq!(all.len(), 6);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = fx
            .license_holders_page(&org, after.clone(), 4)
            .await
            .expect("page");
        after = page.last().map(HolderCursor::after);
        let done = page.len() < 4;
        paged.extend(page);
        if done {
            break;
        }
    }
    assert_eq!(
        paged, all,
        "pages in the report's order, none twice or skipped"
    );
    // A cursor whose row is gone still starts after it.
    let cursor = HolderCursor::after(&all[1]);
    core(&fx, LicensePolicy::default())
        .apply_in_order(&[CommandEnvelope {
            idempotency_key: "rm-a".into(),
            command: Command::RemoveSubscriber {
                subscriber_id: all[1].subscriber_id.clone(),
                org_id: org.clone(),
                subscriber_version: 9,
            },
            ..commands[0].clone()
        }])
        .await;
    let rest = fx
        .license_holders_page(&org, Some(cursor), 100)
        .await
        .expect("rest");
    assert_eq!(
        rest,
        all[2..]
            .iter()
            .filter(|r| r.subscriber_id != all[1].subscriber_id)
            .cloned()
            .collect::<Vec<_>>()
    );
}
