//! Crash safety under load: concurrent AddUser traffic over mTLS while the
//! server is killed with SIGKILL at random moments, several times, and
//! restarted on the same data directory. Afterwards every acknowledged
//! operation must be stored and provisioned with exactly one delivered
//! `ProvisionSubscriber` and each license granted once; every document that
//! got no answer must be stored entirely or not at all (never half), and
//! consistent when stored. A store that answered before COMMIT, a torn
//! transaction, a lost or doubled outbox delivery all fail it.
//!
//! The kill moments come from a seeded RNG; the seed is printed and named in
//! every failure (`BWGATE_CRASH_SEED=N cargo test --test integration crash`
//! repeats the schedule; thread timing still varies).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::flowthrough::{add_user, demo, document, post, subscriber, Demo};
use crate::harness::Server;

/// SIGKILLs (and restarts) under load.
const KILLS: usize = 5;
/// Concurrent keep-alive client connections (half HTTP/2, half HTTP/1.1).
const WORKERS: usize = 6;
/// BroadWorks enterprises the users are spread over: each one's first
/// concurrent AddUsers create its organization, and delivery is ordered per
/// enterprise.
const ENTERPRISES: usize = 5;
/// Load before each kill: a random time in this range (ms).
const KILL_AFTER_MS: std::ops::Range<u64> = 200..1500;
/// Each connection sends at most one document per this interval, so a fast
/// machine does not pile up more subscribers than the checks can read back
/// within the test's time budget (~20 s).
const MIN_REQUEST_INTERVAL: Duration = Duration::from_millis(8);
/// One request may take this long before the test calls it hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One flow-through document and the users it adds.
struct Doc {
    body: String,
    users: Vec<String>,
}

#[derive(Default)]
struct Outcome {
    /// Users whose AddUser was answered 200 with status `provisioning`.
    acknowledged: Vec<String>,
    /// Documents that got no answer: the connection died with the server.
    unanswered: Vec<Doc>,
    /// Anything else (an error answer, a failure while no kill was under
    /// way, a hang): each one fails the test.
    unexpected: Vec<String>,
}

/// The next document: 1 AddUser, or 3 in every fourth; half carry a
/// `requestId`, half rely on identical-AddUser idempotency.
fn next_doc(n: usize) -> Doc {
    let count = if n % 4 == 3 { 3 } else { 1 };
    let users: Vec<String> = (0..count)
        .map(|k| format!("c{n}-{k}@crash{}.example", n % ENTERPRISES))
        .collect();
    let ops: Vec<String> = users
        .iter()
        .map(|u| add_user(u, &format!("crashsp{}", n % ENTERPRISES), Some(u)))
        .collect();
    let request_id = format!("crash-{n}");
    let body = document((n % 2 == 0).then_some(request_id.as_str()), &ops);
    Doc { body, users }
}

/// Whether a 200 answer accepted every user of the document with `status`
/// among `statuses`.
pub(crate) fn accepted_all(xml: &str, users: &[String], statuses: &[&str]) -> bool {
    users.iter().all(|u| {
        statuses
            .iter()
            .any(|s| xml.contains(&format!("userId=\"{u}\" status=\"{s}\"/>")))
    })
}

/// One keep-alive client: sends documents back to back until a kill is
/// under way, and sorts every document into acknowledged / unanswered /
/// unexpected.
async fn worker(
    https: SocketAddr,
    tls: rustls::ClientConfig,
    d: Arc<Demo>,
    next: Arc<AtomicUsize>,
    killing: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
) -> Outcome {
    let mut out = Outcome::default();
    let client = bwgate::client::HttpsClient::new(https, "localhost", tls).expect("client");
    let mut conn = match tokio::time::timeout(REQUEST_TIMEOUT, client.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(_)) if killing.load(Ordering::SeqCst) => return out,
        Ok(Err(e)) => {
            out.unexpected.push(format!("connect failed: {e}"));
            return out;
        }
        Err(_) => {
            out.unexpected.push("connect hung".into());
            return out;
        }
    };
    while !killing.load(Ordering::SeqCst) {
        let doc = next_doc(next.fetch_add(1, Ordering::SeqCst));
        let mut req = bwgate::client::request(
            "POST",
            &d.path,
            doc.body.clone().into(),
            Some("application/xml"),
        );
        req.headers_mut()
            .insert("authorization", d.auth.parse().unwrap());
        let sent = Instant::now();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let res = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(req)).await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
        match res {
            Ok(Ok(resp))
                if resp.status == 200
                    && accepted_all(&resp.text(), &doc.users, &["provisioning"]) =>
            {
                out.acknowledged.extend(doc.users);
            }
            Ok(Ok(resp)) => out.unexpected.push(format!(
                "{:?} answered {}: {}",
                doc.users,
                resp.status,
                resp.text()
            )),
            Ok(Err(_)) if killing.load(Ordering::SeqCst) => {
                out.unanswered.push(doc);
                break;
            }
            Ok(Err(e)) => {
                out.unexpected.push(format!(
                    "{:?} failed with no kill under way: {e}",
                    doc.users
                ));
                break;
            }
            Err(_) => {
                out.unexpected.push(format!("{:?} hung", doc.users));
                break;
            }
        }
        tokio::time::sleep(MIN_REQUEST_INTERVAL.saturating_sub(sent.elapsed())).await;
    }
    out
}

/// A subscriber's read-back once delivery has settled: `Ok(None)` when it
/// does not exist (404), `Err` when it never settles or breaks a rule.
async fn settled(
    server: &Server,
    user: &str,
    deadline: Instant,
) -> Result<Option<serde_json::Value>, String> {
    loop {
        let (code, v) = subscriber(server, user).await;
        match code {
            404 => return Ok(None),
            200 if v["subscriber"]["status"] != "provisioning" => {
                check_complete(user, &v)?;
                return Ok(Some(v));
            }
            200 => {}
            _ => return Err(format!("{user}: read-back answered {code}: {v}")),
        }
        if Instant::now() > deadline {
            return Err(format!("{user}: still provisioning at the deadline: {v}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Provisioned, exactly one `ProvisionSubscriber` command (delivered), and
/// every license granted once, by that command, and held.
pub(crate) fn check_complete(user: &str, v: &serde_json::Value) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{user}: {what}: {v}"));
    if v["subscriber"]["status"] != "provisioned" {
        return fail("final status is not provisioned");
    }
    if v["subscriber"]["orgId"].as_str().is_none() {
        return fail("no organization");
    }
    let commands = v["commands"].as_array().cloned().unwrap_or_default();
    if commands.len() != 1
        || commands[0]["type"] != "ProvisionSubscriber"
        || commands[0]["state"] != "delivered"
    {
        return fail("not exactly one delivered ProvisionSubscriber");
    }
    let key = commands[0]["idempotencyKey"].as_str().unwrap_or("?");
    let events = v["licenseEvents"].as_array().cloned().unwrap_or_default();
    let mut granted: Vec<&str> = Vec::new();
    for e in &events {
        if e["action"] != "grant" || e["idempotencyKey"] != key {
            return fail("a license event other than this command's grants");
        }
        granted.push(e["license"].as_str().unwrap_or("?"));
    }
    granted.sort_unstable();
    let unique: BTreeSet<&str> = granted.iter().copied().collect();
    if unique.len() != granted.len() {
        return fail("a license granted twice");
    }
    let held: BTreeSet<&str> = v["licenses"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str()).collect())
        .unwrap_or_default();
    if held.is_empty() || held != unique {
        return fail("licenses held differ from those granted");
    }
    Ok(())
}

/// Settles many users concurrently (8 read-backs at a time): user → its
/// read-back, or None when absent.
pub(crate) async fn settle_all(
    server: &Arc<Server>,
    users: Vec<String>,
    deadline: Instant,
) -> (BTreeMap<String, Option<serde_json::Value>>, Vec<String>) {
    let mut found = BTreeMap::new();
    let mut failures = Vec::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    for user in users {
        let server = server.clone();
        let permit = sem.clone().acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let r = settled(&server, &user, deadline).await;
            drop(permit);
            (user, r)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (user, r) = joined.expect("settle task");
        match r {
            Ok(v) => {
                found.insert(user, v);
            }
            Err(e) => failures.push(e),
        }
    }
    (found, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_duplicates_nothing() {
    sigkill_under_load(None).await;
}

/// The same on PostgreSQL: a node killed while its transactions are in
/// flight on the database server (which keeps running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_on_postgres_loses_and_duplicates_nothing() {
    let url = tokio::task::spawn_blocking(|| crate::pg_cluster::PgCluster::shared().fresh_url())
        .await
        .expect("cluster");
    sigkill_under_load(Some(&url)).await;
}

/// One integer from the database behind a test server: its SQLite file,
/// or the PostgreSQL schema `pg_url` names.
fn count(server: &Server, pg_url: Option<&str>, sql: &str) -> i64 {
    match pg_url {
        None => {
            let db = rusqlite::Connection::open_with_flags(
                server.path("data/bwgate.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open database");
            db.query_row(sql, [], |r| r.get(0)).expect(sql)
        }
        Some(url) => {
            let schema = url
                .split("search_path=")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .expect("schema in url");
            crate::pg_cluster::PgCluster::shared()
                .psql(&format!("SET search_path TO {schema}; {sql}"))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .parse()
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    }
}

/// `pg_url`: run on that PostgreSQL schema instead of the SQLite default.
async fn sigkill_under_load(pg_url: Option<&str>) {
    let started = Instant::now();
    let seed: u64 = std::env::var("BWGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed {seed} (repeat with BWGATE_CRASH_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let ctx = format!("[seed {seed}]");

    let mut envs = vec![("BWGATE__LIMITS__RATE_PER_SEC", "0")];
    if let Some(url) = pg_url {
        envs.extend([
            ("BWGATE__STORE__BACKEND", "postgres"),
            ("BWGATE__STORE__URL", url),
        ]);
    }
    let mut server = Server::start_with_env(None, &[], &envs);
    let d = Arc::new(demo(&server));
    let next = Arc::new(AtomicUsize::new(0));
    let mut all = Outcome::default();
    let mut killed_in_flight = 0;

    for cycle in 0..KILLS {
        let killing = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let before = next.load(Ordering::SeqCst);
        let mut workers = tokio::task::JoinSet::new();
        for w in 0..WORKERS {
            workers.spawn(worker(
                server.https,
                server.dev_tls(w % 2 == 0),
                d.clone(),
                next.clone(),
                killing.clone(),
                in_flight.clone(),
            ));
        }
        let after_ms = rng.random_range(KILL_AFTER_MS);
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        // Workers start no new request from here on; those in flight are
        // cut by the kill.
        killing.store(true, Ordering::SeqCst);
        let cut = in_flight.load(Ordering::SeqCst);
        server
            .child
            .as_mut()
            .expect("server running")
            .kill()
            .expect("SIGKILL");
        let status = server.wait_exit(Duration::from_secs(10));
        assert!(!status.success(), "{ctx} killed, yet exited with {status}");
        killed_in_flight += cut;
        let mut cycle_acks = 0;
        while let Some(joined) = workers.join_next().await {
            let o = joined.expect("worker task");
            cycle_acks += o.acknowledged.len();
            all.acknowledged.extend(o.acknowledged);
            all.unanswered.extend(o.unanswered);
            all.unexpected.extend(o.unexpected);
        }
        println!(
            "cycle {cycle}: killed after {after_ms} ms, {} documents sent, {cycle_acks} users acknowledged, {cut} requests in flight",
            next.load(Ordering::SeqCst) - before
        );
        assert!(
            all.unexpected.is_empty(),
            "{ctx} cycle {cycle}: {:#?}\n{}",
            all.unexpected,
            server.logs()
        );
        server.spawn();
    }
    assert!(
        !all.acknowledged.is_empty() && killed_in_flight > 0,
        "{ctx} the kills must land under load: {} acknowledged, {killed_in_flight} cut",
        all.acknowledged.len()
    );
    let server = Arc::new(server);
    let deadline = Instant::now() + Duration::from_secs(30);

    // 1. Every acknowledged operation survived and completed exactly once.
    let (found, mut failures) = settle_all(&server, all.acknowledged.clone(), deadline).await;
    for (user, v) in &found {
        if v.is_none() {
            failures.push(format!("{user}: acknowledged, then lost"));
        }
    }

    // 2. Unanswered documents: all of their users stored, or none; stored
    // ones consistent.
    let unanswered_users: Vec<String> = all
        .unanswered
        .iter()
        .flat_map(|doc| doc.users.iter().cloned())
        .collect();
    let (cut, cut_failures) = settle_all(&server, unanswered_users, deadline).await;
    failures.extend(cut_failures);
    let mut stored_unanswered = 0;
    for doc in &all.unanswered {
        let present = doc
            .users
            .iter()
            .filter(|u| matches!(cut.get(*u), Some(Some(_))));
        match present.count() {
            0 => {}
            n if n == doc.users.len() => stored_unanswered += 1,
            n => failures.push(format!(
                "half-recorded document: {n} of {:?} stored",
                doc.users
            )),
        }
    }
    assert!(failures.is_empty(), "{ctx} {failures:#?}");

    // 3. The AS retries what got no answer: a stored document is not
    // applied twice, a lost one is applied now.
    for doc in &all.unanswered {
        let resp = post(
            &server,
            &d.path,
            Some(&d.auth),
            doc.body.clone(),
            "application/xml",
        )
        .await;
        assert!(
            resp.status == 200
                && accepted_all(&resp.text(), &doc.users, &["provisioning", "provisioned"]),
            "{ctx} retry of {:?}: {} {}",
            doc.users,
            resp.status,
            resp.text()
        );
    }
    let retried: Vec<String> = all
        .unanswered
        .iter()
        .flat_map(|doc| doc.users.iter().cloned())
        .collect();
    let (after_retry, mut failures) = settle_all(&server, retried.clone(), deadline).await;
    for (user, v) in &after_retry {
        if v.is_none() {
            failures.push(format!("{user}: retried, yet absent"));
        }
    }

    // One organization per enterprise, shared by all its subscribers.
    let mut orgs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (user, v) in found.iter().chain(after_retry.iter()) {
        if let Some(v) = v {
            let domain = user.split('@').nth(1).unwrap_or_default().to_string();
            orgs.entry(domain)
                .or_default()
                .insert(v["subscriber"]["orgId"].as_str().unwrap_or("?").to_string());
        }
    }
    for (enterprise, ids) in &orgs {
        if ids.len() != 1 {
            failures.push(format!("{enterprise}: several organizations {ids:?}"));
        }
    }
    assert!(failures.is_empty(), "{ctx} {failures:#?}");

    // 4. The database as a whole: intact, nothing besides what was sent,
    // nothing left undelivered, no license granted twice anywhere.
    let expected_subscribers = all.acknowledged.len() + retried.len();
    let one = |sql: &str| count(&server, pg_url, sql);
    if pg_url.is_none() {
        let db = rusqlite::Connection::open_with_flags(
            server.path("data/bwgate.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open database");
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{ctx}");
    }
    assert_eq!(
        one("SELECT COUNT(*) FROM subscribers") as usize,
        expected_subscribers,
        "{ctx} subscribers stored vs. users sent"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM outbox WHERE kind = 'ProvisionSubscriber'") as usize,
        expected_subscribers,
        "{ctx} one ProvisionSubscriber per subscriber"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM outbox WHERE state <> 'delivered'"),
        0,
        "{ctx} undelivered commands"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM organizations") as usize,
        orgs.len(),
        "{ctx} one organization per enterprise"
    );
    assert_eq!(
        one("SELECT COUNT(*) FROM outbox WHERE kind = 'EnsureOrganization'") as usize,
        orgs.len(),
        "{ctx} one EnsureOrganization per organization"
    );
    assert_eq!(
        one(
            "SELECT COUNT(*) FROM (SELECT 1 FROM license_events WHERE action = 'grant'
             GROUP BY subscriber_id, license HAVING COUNT(*) > 1) AS doubled"
        ),
        0,
        "{ctx} a license granted twice"
    );
    println!(
        "{} users acknowledged; {} documents cut by the kills ({stored_unanswered} had been stored); \
         {expected_subscribers} subscribers verified in {:.1} s",
        all.acknowledged.len(),
        all.unanswered.len(),
        started.elapsed().as_secs_f64()
    );
}
