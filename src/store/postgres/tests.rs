//! What only a shared database has to get right: migrations that several
//! nodes run at once, and units of work from two nodes (two stores on one
//! schema) that collide. The behaviour every back-end shares is the store
//! suite's. Runs against a real scratch cluster (tests/support/pg_cluster.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{PgOptions, PgStore};
use crate::domain::ids::UserId;
use crate::domain::subscriber::{NewSubscriber, Operation};
use crate::domain::template::TemplateSource;
use crate::domain::{CustomerTemplate, Partner, TemplateSettings};
use crate::provision::testing::UseCases;
use crate::provision::AcceptBatch;
use crate::store::{Lease, Store, StoreError};

use super::pg_cluster::PgCluster;

const NOW: i64 = 1_700_000_000_000;

async fn open(url: &str) -> PgStore {
    PgStore::open(
        &PgOptions {
            url: url.to_string(),
            pool_size: 8,
            writers: 2,
            max_batch: 64,
        },
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("open {url}: {e}\n{}", PgCluster::shared().log()))
}

/// Two nodes on one fresh schema, with a partner and an enterprise-mode
/// template.
async fn two_nodes() -> (Arc<PgStore>, Arc<PgStore>, CustomerTemplate, String) {
    let url = PgCluster::shared().fresh_url();
    let a = Arc::new(open(&url).await);
    let b = Arc::new(open(&url).await);
    a.upsert_partner(&Partner {
        id: "acme".into(),
        name: "Acme".into(),
        admin_email: None,
    })
    .await
    .expect("partner");
    let t = CustomerTemplate {
        provisioning_id: "p1".into(),
        partner_id: "acme".into(),
        cluster_id: None,
        name: "Template p1".into(),
        settings: TemplateSettings {
            enterprise_mode: true,
            trusted_emails: true,
            ..TemplateSettings::default()
        },
        provisioning_username: "prov-p1".into(),
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    };
    b.upsert_template(&t).await.expect("template");
    (a, b, t, url)
}

fn add_user(user: &str, sp: &str) -> Operation {
    Operation::AddUser(NewSubscriber {
        user_id: UserId::parse(user).expect("user id"),
        service_provider_id: sp.into(),
        group_id: "G1".into(),
        first_name: "Alice".into(),
        last_name: "Smith".into(),
        email: Some(format!(
            "{}@example.com",
            user.split('@').next().unwrap_or(user)
        )),
        phone_number: None,
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    })
}

fn batch(
    t: &CustomerTemplate,
    tracking: &str,
    request_id: Option<&str>,
    op: Operation,
) -> AcceptBatch {
    AcceptBatch {
        template: t.clone(),
        tracking_id: tracking.into(),
        request_id: request_id.map(str::to_string),
        now: NOW,
        operations: vec![(0, op)],
        invalid: Vec::new(),
        sent_user_ids: Vec::new(),
        approvals: None,
        activations: None,
        self_activation: false,
    }
}

/// `n` documents, `doc(i)` each, sent at once, alternately to `a` and `b`;
/// their outcomes in order.
async fn accept_on_both(
    a: &Arc<PgStore>,
    b: &Arc<PgStore>,
    n: i64,
    doc: impl Fn(i64) -> AcceptBatch,
) -> Vec<crate::provision::AcceptOutcome> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { a } else { b });
            let call = doc(i);
            tokio::spawn(async move { store.accept(call).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(call.await.expect("joined").expect("accepted"));
    }
    outcomes
}

fn assert_all_accepted(outcomes: &[crate::provision::AcceptOutcome]) {
    for outcome in outcomes {
        assert!(
            outcome.results.iter().all(|r| r.error_code.is_none()),
            "{:?}",
            outcome.results
        );
    }
}

/// One SQL answer from the schema behind `url` (psql, outside bwgate).
fn sql(url: &str, query: &str) -> String {
    let schema = url
        .split("search_path=")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("schema in url");
    PgCluster::shared()
        .psql(&format!("SET search_path TO {schema}; {query}"))
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let url = PgCluster::shared().fresh_url();
    let (a, b, c) = tokio::join!(open(&url), open(&url), open(&url));
    drop((a, b, c));
    assert_eq!(
        sql(&url, "SELECT count(*) FROM bwgate_schema"),
        super::migrations::latest_version().to_string(),
        "each migration recorded once"
    );
    sql(
        &url,
        "INSERT INTO bwgate_schema (version, name, applied_at) VALUES (999, '0999_future', 0)",
    );
    let refused = PgStore::open(
        &PgOptions {
            url: url.clone(),
            pool_size: 1,
            writers: 2,
            max_batch: 64,
        },
        None,
    )
    .await
    .expect_err("a newer schema is refused");
    assert!(
        matches!(refused, StoreError::SchemaTooNew { found: 999, .. }),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_add_users_of_an_enterprise_on_two_nodes_make_one_organization() {
    let (a, b, t, url) = two_nodes().await;
    let outcomes = accept_on_both(&a, &b, 24, |i| {
        let user = format!("u{i}@acme.example");
        batch(&t, &format!("trk-{i}"), None, add_user(&user, "SP-RACE"))
    })
    .await;
    assert_all_accepted(&outcomes);
    assert_eq!(sql(&url, "SELECT count(*) FROM organizations"), "1");
    assert_eq!(
        sql(&url, "SELECT count(DISTINCT org_id) FROM subscribers"),
        "1",
        "every subscriber of the enterprise is in its one organization"
    );
    assert_eq!(sql(&url, "SELECT count(*) FROM subscribers"), "24");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_replays_whichever_node_receives_it() {
    let (a, b, t, _url) = two_nodes().await;
    let first = a
        .accept(batch(
            &t,
            "trk-first",
            Some("req-1"),
            add_user("r1@acme.example", "SP1"),
        ))
        .await
        .expect("accepted");
    assert_eq!(first.replay_of, None);
    let again = b
        .accept(batch(
            &t,
            "trk-again",
            Some("req-1"),
            add_user("r1@acme.example", "SP1"),
        ))
        .await
        .expect("accepted");
    assert_eq!(again.replay_of.as_deref(), Some("trk-first"));
    assert_eq!(again.results, first.results);
    assert_eq!(again.commands_written, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_from_two_nodes_never_split_an_enterprise_and_keep_its_order() {
    let (a, b, t, _url) = two_nodes().await;
    // Six enterprises, four subscribers each: 24 AddUsers, each writing
    // its enterprise's commands.
    for e in 0..6 {
        for u in 0..4 {
            a.accept(batch(
                &t,
                &format!("trk-{e}-{u}"),
                None,
                add_user(&format!("e{e}u{u}@acme.example"), &format!("SP{e}")),
            ))
            .await
            .expect("accepted");
        }
    }
    let due = a.due_commands(NOW + 1, 10_000).await.expect("due");
    assert!(due.len() >= 24, "{} commands written", due.len());
    let mut pending_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in &due {
        let key = e.envelope.enterprise_key.as_str().to_string();
        pending_of.entry(key).or_default().push(e.seq);
    }
    // Both nodes claim in small bites, concurrently, until nothing is due.
    let claim_all = |store: Arc<PgStore>, owner: &'static str| async move {
        let mut got = Vec::new();
        loop {
            let lease = Lease {
                owner: owner.into(),
                now: NOW + 1,
                until: NOW + 1_000_000,
            };
            let batch = store.claim_commands(&lease, 3).await.expect("claim");
            if batch.is_empty() {
                return got;
            }
            got.extend(batch);
        }
    };
    let (got_a, got_b) = tokio::join!(
        claim_all(Arc::clone(&a), "node-a"),
        claim_all(Arc::clone(&b), "node-b")
    );
    let mut owner_of: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut claimed_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut seqs = BTreeSet::new();
    for (owner, entries) in [("node-a", &got_a), ("node-b", &got_b)] {
        let mut last_seq_of: BTreeMap<String, i64> = BTreeMap::new();
        for e in entries.iter() {
            assert!(seqs.insert(e.seq), "command {} claimed twice", e.seq);
            let key = e.envelope.enterprise_key.as_str().to_string();
            owner_of.entry(key.clone()).or_default().insert(owner);
            claimed_of.entry(key.clone()).or_default().push(e.seq);
            let last = last_seq_of.insert(key.clone(), e.seq);
            assert!(last.is_none_or(|l| l < e.seq), "{key}: out of order");
        }
    }
    // Leases never expire in this test, so an enterprise whose head one
    // node holds is blocked for the other: each enterprise has one owner.
    for (key, owners) in &owner_of {
        assert_eq!(owners.len(), 1, "{key} split between {owners:?}");
    }
    // Nothing settles here, so what each enterprise gave is a prefix of
    // its commands (at least its head): never a later one without an
    // earlier one.
    assert_eq!(
        claimed_of.len(),
        pending_of.len(),
        "every enterprise's head claimed"
    );
    for (key, claimed) in &claimed_of {
        let mut claimed = claimed.clone();
        claimed.sort_unstable();
        let all = &pending_of[key];
        assert_eq!(
            &all[..claimed.len()],
            claimed.as_slice(),
            "{key}: not a prefix"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_email_added_on_two_nodes_at_once_is_taken_once() {
    // Snapshot isolation alone lets two units that each find the email
    // free both commit; the email's guard row makes the second one conflict
    // and run again, and then it finds the email taken.
    let (a, b, t, url) = two_nodes().await;
    // Sixteen enterprises: each first user of a new organization takes the
    // address at once from whoever held it (`provision::accounts`), so in
    // the end one live subscriber holds it. Without the guard, two that
    // found it free would both keep it.
    let outcomes = accept_on_both(&a, &b, 16, |i| {
        let mut op = add_user(&format!("same{i}@acme.example"), &format!("SP{i}"));
        if let Operation::AddUser(new) = &mut op {
            new.email = Some("Shared@Example.com".into());
        }
        batch(&t, &format!("trk-{i}"), None, op)
    })
    .await;
    assert_all_accepted(&outcomes);
    assert_eq!(sql(&url, "SELECT count(*) FROM subscribers"), "16");
    assert_eq!(
        sql(
            &url,
            "SELECT count(*) FROM subscribers WHERE status <> 'removed'"
        ),
        "1",
        "one live subscriber holds the email; it moved away from the others"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_that_fails_after_writing_is_undone_alone_in_its_batch() {
    use crate::domain::email::{EmailKind, EmailMessage};
    let url = PgCluster::shared().fresh_url();
    let store = Arc::new(
        PgStore::open(
            &PgOptions {
                url: url.clone(),
                pool_size: 2,
                writers: 1,
                max_batch: 64,
            },
            None,
        )
        .await
        .expect("open"),
    );
    // Rounds of concurrent units on one lane until one batch held a unit
    // that failed after writing (the lane then reruns it isolated).
    let mut expected = 0;
    for round in 0..20 {
        let mut calls = Vec::new();
        for i in 0..24 {
            let store = Arc::clone(&store);
            calls.push(tokio::spawn(async move {
                crate::store::transact(store.as_ref(), move |tx| {
                    let msg = EmailMessage::new(
                        EmailKind::Test,
                        [format!("r{round}u{i}@example.com")],
                        "subject",
                        "body",
                    );
                    tx.enqueue_email(&msg, NOW)?;
                    if i % 4 == 0 {
                        return Err(StoreError::Database("refused after writing".into()));
                    }
                    Ok(i)
                })
                .await
            }));
        }
        for (i, call) in calls.into_iter().enumerate() {
            match call.await.expect("joined") {
                Ok(n) => {
                    assert_eq!(n, i, "each unit gets its own answer");
                    assert_ne!(i % 4, 0, "unit {i} should have failed");
                    expected += 1;
                }
                Err(e) => {
                    assert_eq!(i % 4, 0, "unit {i} failed: {e}");
                    assert!(e.to_string().contains("refused after writing"), "{e}");
                }
            }
        }
        if store.stats().isolated_reruns > 0 {
            break;
        }
    }
    let stats = store.stats();
    assert!(
        stats.isolated_reruns > 0,
        "no batch ever held a failing unit: {stats:?}"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(
        sql(&url, "SELECT count(*) FROM emails"),
        expected.to_string(),
        "only the units that succeeded left their email"
    );
    assert_eq!(
        sql(
            &url,
            "SELECT count(*) FROM emails WHERE to_json ~ 'u(0|4|8|12|16|20)@'"
        ),
        "0",
        "no email of a failed unit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_approval_email_per_window_when_two_nodes_refuse_at_once() {
    // Each node finds no approval request in the window in its snapshot;
    // the prefix's guard row lets only one of them commit its email.
    use crate::store::suite::provisioning::{approvals, big_org};
    let (a, b, t, url) = two_nodes().await;
    a.upsert_existing_orgs(vec![big_org()]).await.expect("orgs");
    let links = approvals(86_400_000);
    let outcomes = accept_on_both(&a, &b, 12, |i| {
        let mut op = add_user(&format!("ann{i}@bw.example"), "ent-big");
        if let Operation::AddUser(new) = &mut op {
            new.email = Some("ann@big.example".into());
        }
        let mut call = batch(&t, &format!("trk-{i}"), None, op);
        call.now = NOW + i;
        call.approvals = Some(Arc::clone(&links));
        call
    })
    .await;
    for outcome in outcomes {
        assert_eq!(outcome.results[0].error_code, Some(2017), "{outcome:?}");
    }
    assert_eq!(
        sql(&url, "SELECT count(*) FROM emails"),
        "1",
        "one approval request per organization and partner per window"
    );
}
