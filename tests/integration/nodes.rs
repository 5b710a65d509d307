//! Several bwgate nodes on one PostgreSQL database (a scratch cluster):
//! two real processes with one configuration file, concurrent AddUser load
//! on both, then every acknowledged user provisioned once with one
//! delivered command, one organization per enterprise whichever node took
//! its first users, a `requestId` replayed by the other node, and tenancy
//! changes seen across nodes. A node signing links with another secret is
//! refused at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::crash::{accepted_all, settle_all};
use crate::flowthrough::{add_user, document, post, without_tracking_id};
use crate::harness::{eventually, Server};
use crate::pg_cluster::PgCluster;

const PATH: &str = "/uc-one/v1/provisioning/nodes-t";
/// Documents each node gets (one AddUser each), from `WORKERS` connections.
const DOCS_PER_NODE: usize = 60;
const WORKERS: usize = 3;
const ENTERPRISES: usize = 4;

fn config(password: &str) -> String {
    format!(
        "[[partners]]\nid = \"sp\"\nname = \"SP\"\n\n\
         [[templates]]\nprovisioning_id = \"nodes-t\"\npartner = \"sp\"\nname = \"Nodes\"\n\
         provisioning_username = \"prov\"\nprovisioning_password = \"{password}\"\n"
    )
}

fn auth(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("prov:{password}"))
    )
}

async fn fresh_url() -> String {
    tokio::task::spawn_blocking(|| PgCluster::shared().fresh_url())
        .await
        .expect("cluster")
}

/// A node on `url` with `config`, not started yet.
fn node(url: &str, config: &str) -> Server {
    Server::unstarted(
        Some(config),
        &[],
        &[
            ("BWGATE__STORE__BACKEND", "postgres"),
            ("BWGATE__STORE__URL", url),
            ("BWGATE__STORE__TENANCY_CHECK_SECS", "1"),
            ("BWGATE__LIMITS__RATE_PER_SEC", "0"),
        ],
    )
}

/// Gives `b` the link secret `a` made (operators copy one file to every node).
fn share_secret(a: &Server, b: &Server) {
    std::fs::create_dir_all(b.path("data")).expect("data dir");
    std::fs::copy(a.path("data/secret.key"), b.path("data/secret.key")).expect("copy secret");
}

/// The stored template's password hash, read with psql.
fn stored_hash(url: &str) -> String {
    let schema = url
        .split("search_path=")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("schema");
    PgCluster::shared()
        .psql(&format!(
            "SET search_path TO {schema}; \
             SELECT provisioning_password_hash FROM templates WHERE provisioning_id = 'nodes-t'"
        ))
        .expect("hash")
}

/// Sends `DOCS_PER_NODE` one-user documents to `server` over `WORKERS`
/// keep-alive connections; returns the acknowledged users.
async fn load(server: Arc<Server>, node: &'static str, password: &'static str) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (server, next) = (server.clone(), next.clone());
        tasks.spawn(async move {
            let client =
                bwgate::client::HttpsClient::new(server.https, "localhost", server.dev_tls(w == 0))
                    .expect("client");
            let mut conn = client.connect().await.expect("connect");
            let mut acked = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= DOCS_PER_NODE {
                    return acked;
                }
                let user = format!("{node}-{n}@nodes{}.example", n % ENTERPRISES);
                let sp = format!("nodesp{}", n % ENTERPRISES);
                let request_id = format!("{node}-{n}");
                let body = document(
                    (n % 2 == 0).then_some(request_id.as_str()),
                    &[add_user(&user, &sp, Some(&user))],
                );
                let mut req =
                    bwgate::client::request("POST", PATH, body.into(), Some("application/xml"));
                req.headers_mut()
                    .insert("authorization", auth(password).parse().unwrap());
                let resp = conn.send(req).await.expect("answer");
                assert!(
                    resp.status == 200
                        && accepted_all(
                            &resp.text(),
                            std::slice::from_ref(&user),
                            &["provisioning"]
                        ),
                    "{node} {user}: {} {}",
                    resp.status,
                    resp.text()
                );
                acked.push(user);
            }
        });
    }
    let mut acked = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acked.extend(done.expect("worker"));
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_lose_duplicate_and_split_nothing() {
    let url = fresh_url().await;
    let cfg = config("pw-nodes-1");
    let mut a = node(&url, &cfg);
    a.spawn();
    let hash_after_a = stored_hash(&url);
    let mut b = node(&url, &cfg);
    share_secret(&a, &b);
    b.spawn();
    assert_eq!(
        stored_hash(&url),
        hash_after_a,
        "a node starting with the same plain password keeps the stored hash"
    );
    let (a, b) = (Arc::new(a), Arc::new(b));

    // Concurrent load on both nodes; the first users of each enterprise
    // reach both at once.
    let started = Instant::now();
    let (acked_a, acked_b) = tokio::join!(
        load(a.clone(), "a", "pw-nodes-1"),
        load(b.clone(), "b", "pw-nodes-1")
    );
    println!(
        "two nodes: {} + {} AddUsers acknowledged in {:?}",
        acked_a.len(),
        acked_b.len(),
        started.elapsed()
    );
    let users: Vec<String> = acked_a.iter().chain(&acked_b).cloned().collect();
    assert_eq!(users.len(), 2 * DOCS_PER_NODE);

    // Every acknowledged user provisioned, exactly one delivered command,
    // licenses granted once: read back through node A, whichever node took it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (found, failures) = settle_all(&a, users.clone(), deadline).await;
    assert!(
        failures.is_empty(),
        "{failures:#?}\n{}\n{}",
        a.logs(),
        b.logs()
    );
    let mut orgs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (user, v) in &found {
        let v = v
            .as_ref()
            .unwrap_or_else(|| panic!("{user}: acknowledged, then lost"));
        let enterprise = user.split('@').nth(1).unwrap_or_default().to_string();
        orgs.entry(enterprise)
            .or_default()
            .insert(v["subscriber"]["orgId"].as_str().unwrap_or("?").to_string());
    }
    assert_eq!(orgs.len(), ENTERPRISES);
    for (enterprise, ids) in &orgs {
        assert_eq!(ids.len(), 1, "{enterprise} has organizations {ids:?}");
    }

    // A requestId the AS sends again reaches the other node: the first
    // answer comes back, nothing is applied twice.
    let body = document(
        Some("a-0"),
        &[add_user(
            "a-0@nodes0.example",
            "nodesp0",
            Some("a-0@nodes0.example"),
        )],
    );
    let first = post(
        &a,
        PATH,
        Some(&auth("pw-nodes-1")),
        body.clone(),
        "application/xml",
    )
    .await;
    let replayed = post(&b, PATH, Some(&auth("pw-nodes-1")), body, "application/xml").await;
    assert_eq!(replayed.status, 200);
    assert_eq!(
        without_tracking_id(&replayed.text()),
        without_tracking_id(&first.text())
    );
    let (after, failures) = settle_all(&b, vec!["a-0@nodes0.example".into()], deadline).await;
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(after.values().all(Option::is_some));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_changed_by_one_node_is_seen_by_the_other() {
    let url = fresh_url().await;
    let mut a = node(&url, &config("pw-old-1"));
    a.spawn();
    let doc = |n: usize| {
        document(
            None,
            &[add_user(
                &format!("t{n}@tenancy.example"),
                "tenancysp",
                Some(&format!("t{n}@tenancy.example")),
            )],
        )
    };
    let ok = post(&a, PATH, Some(&auth("pw-old-1")), doc(0), "application/xml").await;
    assert_eq!(ok.status, 200, "{}", ok.text());

    // Node B starts with a new password for the template (a new file).
    let mut b = node(&url, &config("pw-new-2"));
    share_secret(&a, &b);
    b.spawn();

    // Node A follows within its check interval: the old password stops
    // working there, the new one works.
    eventually(
        "node A to refuse the old password",
        Duration::from_secs(10),
        || async {
            let r = post(&a, PATH, Some(&auth("pw-old-1")), doc(1), "application/xml").await;
            if r.status == 401 {
                Ok(())
            } else {
                Err(r.status)
            }
        },
    )
    .await;
    let r = post(&a, PATH, Some(&auth("pw-new-2")), doc(2), "application/xml").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_link_secret_is_refused_at_start() {
    let url = fresh_url().await;
    let cfg = config("pw-secret-1");
    let mut a = node(&url, &cfg);
    a.spawn();
    let mut b = node(&url, &cfg);
    let refused = b.try_spawn().expect_err("another secret must not start");
    assert!(!refused.success());
    let logs = b.logs();
    assert!(
        logs.contains("differs from the one the other nodes"),
        "{logs}"
    );
    // With the same file it starts.
    share_secret(&a, &b);
    b.spawn();
    assert!(b.is_running());
}
