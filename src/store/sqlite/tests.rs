//! SqliteStore tests: real database files on disk (tempfile).

#[cfg(unix)]
use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::migrations::{latest_version, MIGRATIONS};
use super::{SqliteStore, WriteConn};
use crate::config::{SqliteSync, StoreConfig};
use crate::store::suite::basics::{cluster, full_template as template, partner};
use crate::store::{Store, StoreError};

const TIMEOUT: Duration = Duration::from_secs(20);

fn db_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    // A missing parent directory is created by `open`.
    dir.path().join("data").join("bwgate.db")
}

async fn open_with(dir: &tempfile::TempDir, cfg: &StoreConfig) -> Arc<SqliteStore> {
    Arc::new(
        SqliteStore::open(&db_path(dir), cfg)
            .await
            .expect("open store"),
    )
}

async fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    open_with(dir, &StoreConfig::default()).await
}

async fn count(store: &SqliteStore, table: &'static str) -> i64 {
    store
        .read(move |c| Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?))
        .await
        .expect("count")
}

/// Blocks the writer thread inside a write (so inside an open
/// transaction) until released: writes queued meanwhile form one batch.
struct Gate {
    release: std::sync::mpsc::Sender<()>,
    task: JoinHandle<Result<(), StoreError>>,
}

async fn hold_writer(store: &Arc<SqliteStore>) -> Gate {
    let (started, has_started) = oneshot::channel();
    let mut started = Some(started);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let s = Arc::clone(store);
    let task = tokio::spawn(async move {
        s.write(move |conn| {
            // Uncommitted change: readers must not see it while held.
            conn.execute(
                "INSERT OR REPLACE INTO partners (id, name, created_at, updated_at) VALUES ('gate', 'g', 0, 0)",
                [],
            )?;
            if let Some(started) = started.take() {
                let _ = started.send(());
            }
            let _ = released.recv_timeout(TIMEOUT);
            Ok(())
        })
        .await
    });
    has_started.await.expect("writer took the gate");
    Gate { release, task }
}

impl Gate {
    async fn open(self) {
        let _ = self.release.send(());
        let result = tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("gate write finished");
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    }
}

async fn wait_queued(store: &SqliteStore, n: usize) {
    tokio::time::timeout(TIMEOUT, async {
        while store.queued_jobs() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("jobs queued in time");
}

#[tokio::test]
async fn open_sets_pragmas_and_creates_parent_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (sync, expected) in [(SqliteSync::Full, 2), (SqliteSync::Normal, 1)] {
        let cfg = StoreConfig {
            sqlite_synchronous: sync,
            ..StoreConfig::default()
        };
        let store = open_with(&dir, &cfg).await;
        assert!(db_path(&dir).is_file());
        let (mode, synchronous, fk): (String, i64, i64) = store
            .write(|c| {
                Ok((
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                    c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                ))
            })
            .await
            .expect("pragmas");
        assert_eq!(mode, "wal");
        assert_eq!(synchronous, expected, "{sync:?}");
        assert_eq!(fk, 1);
        store.ping().await.expect("ping");
        assert_eq!(store.backend_name(), "sqlite");
        store.close().await.expect("close");
    }
}

#[tokio::test]
async fn timestamps_are_unix_millis_and_updated_at_never_goes_back() {
    use super::tenancy;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let stamps = |now: i64| {
        let p = partner("p");
        let c = cluster("c", "p");
        let t = template("t", "p", Some("c"));
        move |conn: &WriteConn<'_>| {
            tenancy::upsert_partner(conn, &p, now)?;
            tenancy::upsert_cluster(conn, &c, now)?;
            tenancy::upsert_template(conn, &t, now)?;
            let mut out = Vec::new();
            for table in ["partners", "clusters", "templates"] {
                out.push(conn.query_row(
                    &format!("SELECT created_at, updated_at FROM {table}"),
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )?);
            }
            Ok(out)
        }
    };
    let first = store.write(stamps(1_000)).await.expect("first");
    assert_eq!(first, vec![(1_000, 1_000); 3]);
    let second = store.write(stamps(2_000)).await.expect("second");
    assert_eq!(
        second,
        vec![(1_000, 2_000); 3],
        "created kept, updated moved"
    );
    // A wall clock stepping back does not move updated_at back.
    let third = store.write(stamps(1_500)).await.expect("third");
    assert_eq!(third, vec![(1_000, 2_000); 3]);
    let now = super::now_millis();
    assert!(now > 1_600_000_000_000 && now < 10_000_000_000_000, "{now}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_writes_are_group_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.upsert_partner(&partner(&format!("p{i:03}"))).await })
        })
        .collect();
    for task in tasks {
        let result = tokio::time::timeout(TIMEOUT, task)
            .await
            .expect("write answered");
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    }
    let stats = store.stats();
    eprintln!("group commit, 500 concurrent writes: {stats:?}");
    assert_eq!(stats.writes_committed, 500);
    assert_eq!(stats.writes_failed, 0);
    assert!(
        stats.transactions_committed < stats.writes_committed,
        "{stats:?}"
    );
    assert!(stats.largest_batch > 1, "{stats:?}");
    assert_eq!(count(&store, "partners").await, 500);
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_write_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let gate = hold_writer(&store).await;

    let mut good = Vec::new();
    for i in 0..5 {
        let s = Arc::clone(&store);
        good.push(tokio::spawn(async move {
            s.upsert_partner(&partner(&format!("good{i}"))).await
        }));
    }
    wait_queued(&store, 5).await;
    let s = Arc::clone(&store);
    let bad = tokio::spawn(async move { s.upsert_template(&template("t", "ghost", None)).await });
    wait_queued(&store, 6).await;
    let s = Arc::clone(&store);
    let panicking = tokio::spawn(async move {
        s.write(|conn| -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO partners (id, name, created_at, updated_at) VALUES ('half', 'h', 0, 0)",
                [],
            )?;
            panic!("boom in a write");
        })
        .await
    });
    wait_queued(&store, 7).await;
    for i in 5..10 {
        let s = Arc::clone(&store);
        good.push(tokio::spawn(async move {
            s.upsert_partner(&partner(&format!("good{i}"))).await
        }));
    }
    wait_queued(&store, 12).await;
    gate.open().await;

    for task in good {
        let result = task.await;
        assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    }
    let bad = bad.await.expect("join");
    assert!(
        matches!(
            bad,
            Err(StoreError::MissingReference {
                entity: "partner",
                ..
            })
        ),
        "{bad:?}"
    );
    let panicked = panicking.await.expect("join");
    assert!(
        matches!(&panicked, Err(StoreError::Database(m)) if m.contains("boom in a write")),
        "{panicked:?}"
    );

    let stats = store.stats();
    assert_eq!(
        stats.transactions_committed, 2,
        "gate + one batch: {stats:?}"
    );
    assert_eq!(stats.largest_batch, 12, "{stats:?}");
    assert_eq!(stats.writes_committed, 11, "gate + 10 good: {stats:?}");
    assert_eq!(stats.writes_failed, 2, "{stats:?}");
    // The template write failed before changing a row; the panicking one
    // after: the batch was undone and run again, each write isolated.
    assert_eq!(stats.isolated_reruns, 1, "{stats:?}");
    // 10 good + gate committed; the panicking write's half insert is gone.
    assert_eq!(count(&store, "partners").await, 11);
    assert_eq!(store.partner("half").await.expect("get"), None);
    assert_eq!(count(&store, "templates").await, 0);
    // The writer survived the panic.
    store
        .upsert_partner(&partner("after"))
        .await
        .expect("after panic");
    store.close().await.expect("close");
}

/// Writes run without savepoints first; a write failing without having
/// changed a row costs nothing more, one failing after a change makes the
/// writer undo the batch and run every write again, each isolated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_write_failing_after_a_change_reruns_its_batch() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    // Queues `good` writes (each counting its runs) and one failing write
    // (after an insert when `change_first`), all in one batch.
    async fn batch_with_failure(store: &Arc<SqliteStore>, tag: &str, change_first: bool) -> usize {
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = hold_writer(store).await;
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (s, runs, id) = (Arc::clone(store), Arc::clone(&runs), format!("{tag}{i}"));
            tasks.push(tokio::spawn(async move {
                s.write(move |c| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    c.execute(
                        "INSERT INTO partners (id, name, created_at, updated_at) VALUES (?1, 'n', 0, 0)",
                        [&id],
                    )?;
                    Ok(())
                })
                .await
            }));
            wait_queued(store, i + 1).await;
        }
        let s = Arc::clone(store);
        let id = format!("{tag}-failing");
        let failing = tokio::spawn(async move {
            s.write(move |c| -> Result<(), StoreError> {
                if change_first {
                    c.execute(
                        "INSERT INTO partners (id, name, created_at, updated_at) VALUES (?1, 'n', 0, 0)",
                        [&id],
                    )?;
                }
                // Fails inside SQLite: a statement that changes nothing.
                c.execute("INSERT INTO partners (id) VALUES (NULL)", [])?;
                Ok(())
            })
            .await
        });
        wait_queued(store, 4).await;
        gate.open().await;
        for t in tasks {
            let r = t.await.expect("join");
            assert!(r.is_ok(), "{r:?}");
        }
        let r = failing.await.expect("join");
        assert!(
            matches!(&r, Err(StoreError::Database(m)) if m.contains("NOT NULL")),
            "{r:?}"
        );
        runs.load(Ordering::SeqCst)
    }

    assert_eq!(
        batch_with_failure(&store, "a", false).await,
        3,
        "each ran once"
    );
    assert_eq!(store.stats().isolated_reruns, 0);
    assert_eq!(
        batch_with_failure(&store, "b", true).await,
        6,
        "each ran twice"
    );
    assert_eq!(store.stats().isolated_reruns, 1);
    // Good writes of both batches stand; the failing ones left nothing.
    assert_eq!(
        count(&store, "partners").await,
        1 + 6,
        "the gate and six good"
    );
    assert_eq!(store.partner("b-failing").await.expect("get"), None);
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_max_bounds_a_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        group_commit_max: 8,
        ..StoreConfig::default()
    };
    let store = open_with(&dir, &cfg).await;
    let gate = hold_writer(&store).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.upsert_partner(&partner(&format!("p{i}"))).await })
        })
        .collect();
    wait_queued(&store, 20).await;
    gate.open().await;
    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(()))));
    }
    let stats = store.stats();
    assert_eq!(stats.largest_batch, 8, "{stats:?}");
    assert_eq!(stats.transactions_committed, 1 + 3, "8 + 8 + 4: {stats:?}");
    assert_eq!(stats.writes_committed, 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_do_not_wait_for_the_writer_nor_see_uncommitted_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.upsert_partner(&partner("old")).await.expect("write");
    let gate = hold_writer(&store).await; // holds an open write transaction
    let seen = tokio::time::timeout(Duration::from_secs(2), count(&store, "partners"))
        .await
        .expect("read did not wait for the writer");
    assert_eq!(seen, 1, "the gate's uncommitted row is invisible");
    assert_eq!(store.partner("gate").await.expect("get"), None);
    gate.open().await;
    assert!(store.partner("gate").await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flush_resolves_after_queued_writes_are_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let gate = hold_writer(&store).await;
    let writes: Vec<_> = (0..50)
        .map(|i| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.upsert_partner(&partner(&format!("f{i}"))).await })
        })
        .collect();
    wait_queued(&store, 50).await;
    let s = Arc::clone(&store);
    let mut flush = tokio::spawn(async move { s.flush().await });
    wait_queued(&store, 51).await;
    // The barrier cannot resolve while the writes before it are pending.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut flush)
            .await
            .is_err(),
        "flush resolved before the queued writes committed"
    );
    gate.open().await;
    let flushed = tokio::time::timeout(TIMEOUT, flush).await.expect("flush");
    assert!(matches!(flushed, Ok(Ok(()))), "{flushed:?}");
    // Visible at once, without awaiting the writers' own answers.
    assert_eq!(count(&store, "partners").await, 51);
    for w in writes {
        assert!(matches!(w.await, Ok(Ok(()))));
    }
    store.close().await.expect("close");
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.upsert_partner(&partner("p")).await.expect("partner");
    let t = template("tpl", "p", None);
    store.upsert_template(&t).await.expect("template");
    store.close().await.expect("close");
    store.close().await.expect("close is idempotent");
    let wal = db_path(&dir).with_extension("db-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "checkpoint(TRUNCATE) emptied the WAL");
    drop(store);

    let store = open(&dir).await;
    assert_eq!(store.template("tpl").await.expect("get"), Some(t));
    assert_eq!(store.partner("p").await.expect("get"), Some(partner("p")));
    assert_eq!(store.stats().writes_committed, 0, "stats are per process");
    store.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { s.upsert_partner(&partner(&format!("d{i}"))).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(()))));
    }
    drop(store); // no close(), no flush()

    let store = open(&dir).await;
    assert_eq!(count(&store, "partners").await, 200);
    for i in [0, 99, 199] {
        assert!(store
            .partner(&format!("d{i}"))
            .await
            .expect("get")
            .is_some());
    }
}

/// Runs only as a child of `acknowledged_writes_survive_kill_9`: writes
/// forever from 8 tasks, printing each acknowledged id, until killed.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
async fn crash_child() {
    let Ok(path) = std::env::var("BWGATE_TEST_CRASH_DB") else {
        return;
    };
    let store = Arc::new(
        SqliteStore::open(std::path::Path::new(&path), &StoreConfig::default())
            .await
            .expect("child open"),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0.. {
                    if tokio::time::Instant::now() > deadline {
                        break;
                    }
                    let id = format!("k{t}-{i}");
                    store
                        .upsert_partner(&partner(&id))
                        .await
                        .expect("child write");
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ACK {id}");
                    let _ = out.flush();
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "store::sqlite::tests::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BWGATE_TEST_CRASH_DB", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_string());
        }
        if !killed && acked.len() >= 400 {
            child.kill().expect("SIGKILL"); // mid-stream, writes in flight
            killed = true;
        }
    }
    let status = child.wait().expect("wait");
    assert!(killed, "child stopped after only {} acks", acked.len());
    assert_eq!(status.code(), None, "child died by signal: {status:?}");

    let store = open(&dir).await;
    let ids = acked.clone();
    let missing: Vec<String> = store
        .read(move |c| {
            let mut stmt = c.prepare("SELECT 1 FROM partners WHERE id = ?1")?;
            let mut missing = Vec::new();
            for id in ids {
                if !stmt.exists([&id])? {
                    missing.push(id);
                }
            }
            Ok(missing)
        })
        .await
        .expect("check");
    eprintln!(
        "kill -9: {} acknowledged, {} rows after restart",
        acked.len(),
        count(&store, "partners").await
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
}

#[tokio::test]
async fn reopening_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    store.upsert_partner(&partner("p")).await.expect("write");
    store.close().await.expect("close");
    for _ in 0..2 {
        // 0001 uses plain CREATE TABLE: re-running it would fail the open.
        let store = open(&dir).await;
        assert_eq!(store.partner("p").await.expect("get"), Some(partner("p")));
        let version: i64 = store
            .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
            .await
            .expect("version");
        assert_eq!(version, latest_version(MIGRATIONS));
        store.close().await.expect("close");
    }
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    open(&dir).await.close().await.expect("close");
    let conn = Connection::open(db_path(&dir)).expect("raw open");
    conn.pragma_update(None, "user_version", 99).expect("set");
    drop(conn);
    let err = SqliteStore::open(&db_path(&dir), &StoreConfig::default())
        .await
        .expect_err("too new");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, supported } if supported == latest_version(MIGRATIONS)),
        "{err:?}"
    );
}

#[tokio::test]
async fn sqlite_errors_keep_their_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
    let err = store
        .write(|c| {
            c.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        })
        .await
        .expect_err("bad sql");
    assert!(
        matches!(&err, StoreError::Database(m) if m.contains("no such table: no_such_table")),
        "{err:?}"
    );
    assert!(err.is_retryable());
    // The writer goes on.
    store.ping().await.expect("ping");
}
