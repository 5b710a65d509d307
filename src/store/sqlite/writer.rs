//! The single writer thread and its group commit.
//!
//! The writer owns the only read-write [`Connection`]. It blocks for the
//! first queued job, then takes every job already queued (up to
//! `group_commit_max` writes) and runs them in ONE `BEGIN IMMEDIATE`
//! transaction. After `COMMIT` succeeds every caller is answered; a write
//! is never acknowledged before its transaction is durable. If `COMMIT`
//! fails (or SQLite aborts the transaction), no write of the batch is
//! acknowledged: each gets the error.
//!
//! A failing write is rolled back alone. Savepoints would do that, but a
//! savepoint copies every page a write touches into the statement journal
//! first (about 18 pages, a fifth of the writer's CPU per AddUser), for the
//! rare write that fails after changing rows. So a batch first runs
//! without them ("optimistic"): a write that fails without having changed
//! a row (`total_changes` unchanged; a failed statement is undone by SQLite
//! itself) needs no undo. Only when a write fails after changing rows is
//! the whole transaction rolled back and the batch run again "isolated",
//! each write in its own savepoint (the old way). Writes are therefore
//! `FnMut` and may run twice; they must have no effect outside the
//! connection (their outcome reaches the caller only after commit).

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::leases::LeaseBook;
use super::WriteConn;

use crate::store::{StoreError, StoreStats};

/// Savepoint wrapped around each write of an isolated rerun. Unusual name
/// so a write's own nested savepoints do not collide with it.
/// Run as cached prepared statements: they execute once per write.
const SAVEPOINT: &str = "SAVEPOINT bwgate_w";
const RELEASE: &str = "RELEASE bwgate_w";
const ROLLBACK_TO: &str = "ROLLBACK TO bwgate_w";

/// What the writer thread is asked to do.
pub(super) enum Job {
    Write(Box<dyn WriteJob>),
    /// Answered once every job queued before it is committed (`flush`).
    Barrier(oneshot::Sender<()>),
    /// Commit what is queued before it, refuse the rest, checkpoint, exit.
    Shutdown(oneshot::Sender<Result<(), StoreError>>),
}

/// A type-erased write: the work and the channel to its caller.
pub(super) trait WriteJob: Send {
    /// Runs the work and keeps its outcome (replacing an earlier run's).
    /// A panic is caught and becomes this write's error.
    fn run(&mut self, conn: &WriteConn<'_>);
    /// Whether the stored outcome is a success (false before `run`).
    fn succeeded(&self) -> bool;
    /// The write will not be committed: replace a success (or a write
    /// that never ran) by `err`. A write that already failed keeps its own,
    /// more precise error.
    fn fail(&mut self, err: StoreError);
    /// Answers the caller with the stored outcome.
    fn complete(self: Box<Self>);
}

pub(super) fn job<T, F>(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Box<dyn WriteJob>
where
    T: Send + 'static,
    F: FnMut(&WriteConn<'_>) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(TypedJob {
        work,
        outcome: None,
        reply,
    })
}

struct TypedJob<T, F> {
    work: F,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnMut(&WriteConn<'_>) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &WriteConn<'_>) {
        let work = &mut self.work;
        let outcome = match catch_unwind(AssertUnwindSafe(|| work(conn))) {
            Ok(outcome) => outcome,
            Err(payload) => {
                let msg = panic_message(payload.as_ref());
                tracing::error!(panic = %msg, "store write panicked; rolled back");
                Err(StoreError::Database(format!(
                    "write operation panicked: {msg}"
                )))
            }
        };
        self.outcome = Some(outcome);
    }

    fn succeeded(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    fn fail(&mut self, err: StoreError) {
        if !matches!(self.outcome, Some(Err(_))) {
            self.outcome = Some(Err(err));
        }
    }

    fn complete(self: Box<Self>) {
        let outcome = self
            .outcome
            .unwrap_or_else(|| Err(StoreError::Database("write was not executed".into())));
        // The caller may have gone away (cancelled); the write still stands.
        let _ = self.reply.send(outcome);
    }
}

pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Counters shared by the writer thread and `SqliteStore::stats`.
#[derive(Debug, Default)]
pub(super) struct Stats {
    writes_committed: AtomicU64,
    transactions_committed: AtomicU64,
    writes_failed: AtomicU64,
    largest_batch: AtomicU64,
    isolated_reruns: AtomicU64,
}

impl Stats {
    pub(super) fn snapshot(&self) -> StoreStats {
        StoreStats {
            writes_committed: self.writes_committed.load(Ordering::Relaxed),
            transactions_committed: self.transactions_committed.load(Ordering::Relaxed),
            writes_failed: self.writes_failed.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            isolated_reruns: self.isolated_reruns.load(Ordering::Relaxed),
            conflict_reruns: 0,
        }
    }
}

pub(super) struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    max_batch: usize,
    stats: Arc<Stats>,
    leases: Arc<LeaseBook>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        rx: mpsc::Receiver<Job>,
        max_batch: usize,
        stats: Arc<Stats>,
        leases: Arc<LeaseBook>,
    ) -> Writer {
        Writer {
            conn,
            rx,
            max_batch: max_batch.max(1),
            stats,
            leases,
        }
    }

    /// The thread body. Returns when the store shuts down or is dropped
    /// (queue closed). Jobs in flight when it returns are answered or
    /// dropped; dropped reply channels read as `StoreError::Closed`.
    pub(super) fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut writes: Vec<Box<dyn WriteJob>> = Vec::new();
            let mut barriers = Vec::new();
            let mut shutdown = None;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Write(w) => writes.push(w),
                    Job::Barrier(b) => barriers.push(b),
                    Job::Shutdown(ack) => {
                        shutdown = Some(ack);
                        break;
                    }
                }
                if writes.len() >= self.max_batch {
                    break;
                }
                next = self.rx.try_recv().ok();
            }
            if !writes.is_empty() {
                self.commit_batch(writes);
            }
            for barrier in barriers {
                let _ = barrier.send(());
            }
            if let Some(ack) = shutdown {
                self.shutdown(ack);
                return;
            }
        }
        tracing::debug!("store queue closed without shutdown; writer exiting");
    }

    /// Runs `jobs` in as few transactions as possible (one, unless a write
    /// must be isolated or SQLite aborts a transaction midway) and answers
    /// each caller after commit.
    fn commit_batch(&mut self, jobs: Vec<Box<dyn WriteJob>>) {
        let mut pending: VecDeque<Box<dyn WriteJob>> = jobs.into();
        let mut isolated = false;
        while !pending.is_empty() {
            let started = Instant::now();
            if let Err(e) = self.exec("BEGIN IMMEDIATE") {
                let msg = format!("could not begin transaction: {}", StoreError::from(e));
                tracing::error!(error = %msg, "store batch failed");
                let mut done: Vec<_> = pending.drain(..).collect();
                fail_all(&mut done, &msg);
                self.finish(done, None);
                return;
            }
            let settled = RefCell::new(Vec::new());
            let conn = WriteConn {
                conn: &self.conn,
                isolated,
                settled: &settled,
            };
            let mut done = Vec::with_capacity(pending.len());
            let mut aborted = false;
            let mut needs_isolation = false;
            while let Some(mut job) = pending.pop_front() {
                if isolated {
                    self.run_in_savepoint(&conn, job.as_mut());
                } else {
                    let before = self.conn.total_changes();
                    job.run(&conn);
                    needs_isolation = !job.succeeded() && self.conn.total_changes() != before;
                }
                done.push(job);
                // SQLite rolls the whole transaction back by itself on some
                // errors (disk full, I/O error, ...).
                if self.conn.is_autocommit() {
                    aborted = true;
                    break;
                }
                if needs_isolation {
                    break;
                }
            }
            if aborted {
                let msg = "transaction was rolled back by SQLite (see the log); not committed";
                tracing::error!(writes = done.len(), "{msg}");
                fail_all(&mut done, msg);
                self.finish(done, None);
                continue; // the rest of the batch gets a fresh transaction
            }
            if needs_isolation {
                // A write failed after changing rows: undo everything and
                // run the batch again, each write in its own savepoint.
                if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "rollback before an isolated rerun failed");
                }
                self.stats.isolated_reruns.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("bwgate_store_isolated_reruns_total").increment(1);
                for job in done.into_iter().rev() {
                    pending.push_front(job);
                }
                isolated = true;
                continue;
            }
            match self.exec("COMMIT") {
                Ok(()) => {
                    // Before anyone hears of the commit.
                    self.leases.settled(&settled.into_inner());
                    self.finish(done, Some(started));
                }
                Err(e) => {
                    let msg = format!("commit failed: {}", StoreError::from(e));
                    tracing::error!(error = %msg, writes = done.len(), "store batch failed");
                    if !self.conn.is_autocommit() {
                        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                            tracing::error!(error = %e, "rollback after failed commit failed");
                        }
                    }
                    fail_all(&mut done, &msg);
                    self.finish(done, None);
                }
            }
        }
    }

    fn run_in_savepoint(&self, conn: &WriteConn<'_>, job: &mut dyn WriteJob) {
        if let Err(e) = self.exec(SAVEPOINT) {
            job.fail(e.into());
            return;
        }
        let settled_before = conn.settled.borrow().len();
        job.run(conn);
        if self.conn.is_autocommit() {
            return; // whole transaction gone; the caller handles it
        }
        if job.succeeded() {
            if let Err(e) = self.exec(RELEASE) {
                job.fail(e.into());
                self.rollback_savepoint();
                conn.settled.borrow_mut().truncate(settled_before);
            }
        } else {
            self.rollback_savepoint();
            conn.settled.borrow_mut().truncate(settled_before);
        }
    }

    fn exec(&self, sql: &'static str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(|_| ())
    }

    fn rollback_savepoint(&self) {
        // ROLLBACK TO keeps the savepoint open: release it too.
        if let Err(e) = self.exec(ROLLBACK_TO).and_then(|()| self.exec(RELEASE)) {
            // The transaction is in an unknown state: abandon all of it.
            tracing::error!(error = %e, "rollback to savepoint failed; aborting transaction");
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rollback failed");
            }
        }
    }

    /// Records stats and metrics, then answers every caller. `committed`
    /// holds the transaction start when the batch committed.
    fn finish(&self, done: Vec<Box<dyn WriteJob>>, committed: Option<Instant>) {
        let size = done.len() as u64;
        let ok = done.iter().filter(|j| j.succeeded()).count() as u64;
        let failed = size - ok;
        // Stats first: a caller that sees its answer also sees the counts.
        if let Some(started) = committed {
            let stats = &self.stats;
            stats.transactions_committed.fetch_add(1, Ordering::Relaxed);
            stats.writes_committed.fetch_add(ok, Ordering::Relaxed);
            stats.largest_batch.fetch_max(size, Ordering::Relaxed);
            metrics::counter!("bwgate_store_commits_total").increment(1);
            metrics::histogram!("bwgate_store_batch_size").record(size as f64);
            metrics::histogram!("bwgate_store_commit_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        self.stats
            .writes_failed
            .fetch_add(failed, Ordering::Relaxed);
        if ok > 0 {
            metrics::counter!("bwgate_store_writes_total", "result" => "ok").increment(ok);
        }
        if failed > 0 {
            metrics::counter!("bwgate_store_writes_total", "result" => "error").increment(failed);
        }
        for job in done {
            job.complete();
        }
    }

    fn shutdown(mut self, ack: oneshot::Sender<Result<(), StoreError>>) {
        // Refuse new jobs; answer those that raced in after the shutdown.
        self.rx.close();
        while let Some(job) = self.rx.blocking_recv() {
            match job {
                Job::Write(mut w) => {
                    w.fail(StoreError::Closed);
                    w.complete();
                }
                Job::Barrier(b) => drop(b), // flush() reads this as Closed
                Job::Shutdown(other) => {
                    let _ = other.send(Ok(()));
                }
            }
        }
        let result = checkpoint(&self.conn);
        drop(self.conn);
        tracing::debug!("store writer stopped");
        let _ = ack.send(result);
    }
}

fn fail_all(done: &mut [Box<dyn WriteJob>], msg: &str) {
    for job in done {
        job.fail(StoreError::Database(msg.to_string()));
    }
}

/// Moves the whole WAL into the database file and truncates the WAL.
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    let (busy, log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(
            wal_frames = log,
            checkpointed = done,
            "WAL checkpoint at close was incomplete (a reader was active)"
        );
    }
    Ok(())
}
