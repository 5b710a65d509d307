//! Group commit on PostgreSQL: units of work queue to a few writer lanes;
//! each lane is a thread with its own connection that runs whatever units
//! are waiting in one REPEATABLE READ transaction and answers them after
//! one commit (as the SQLite writer does with its one connection).
//!
//! Why not SERIALIZABLE: its predicate locks are page-grained, so two
//! batches that look up absent keys (a new user id, a new requestId) and
//! insert near them always look like a cycle and one is aborted; with two
//! lanes most batches ran twice. What the use cases decide from reads that
//! another node could change at once is guarded by a row both touch
//! instead (unique keys, updates of the same row, `email_guards`), and
//! first-committer-wins turns that into a conflict.
//!
//! Why lanes and not a unit per pooled connection: a unit is a dozen
//! statements that each wait for an answer, and the enterprise lock that
//! keeps commands in commit order (`outbox.rs`) serializes the units of
//! one enterprise until they commit. In a batch the commit (and its WAL
//! flush), the lock and the command inserts are paid once for all units,
//! and units of one node never conflict with each other. The lane drives
//! its connection on its own single-threaded runtime, so waiting for a
//! statement costs no hop between threads.
//!
//! A batch commits whole or runs again:
//! * a conflict with another node's transaction (serialization failure,
//!   deadlock, a unique key just taken) rolls it back and runs every unit
//!   again, [`MAX_RUNS`] times at most, after a short random pause;
//! * a unit that fails after changing rows (or a statement the database
//!   refused outside a part) rolls it back once and runs it again with a
//!   savepoint per unit, so the failing unit is undone alone.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Transaction};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::IsolationLevel;

use super::tx::{Batch, PgTx};
use super::{Connector, Counters, MAX_RUNS};
use crate::store::tx::DynWork;
use crate::store::tx::Tx as _;
use crate::store::StoreError;

/// Lane threads are named `{LANE_THREAD}-{n}` (CPU accounting in
/// `bench-store` finds them by it).
pub const LANE_THREAD: &str = "bwgate-pglane";

/// What a unit of work answers.
type Answer = Result<Box<dyn Any + Send>, StoreError>;

type Reply = oneshot::Sender<Answer>;

/// One unit of work waiting for its lane.
struct Job {
    work: DynWork,
    reply: Reply,
}

/// The node's writer lanes (see the module documentation).
pub(super) struct Lanes {
    senders: Mutex<Vec<mpsc::UnboundedSender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    next: AtomicUsize,
}

impl Lanes {
    /// Starts `count` lanes, each connecting with `connector` when its
    /// first unit arrives (and again after the connection broke).
    pub(super) fn start(
        count: usize,
        max_batch: usize,
        connector: &Arc<Connector>,
        counters: &Arc<Counters>,
    ) -> Result<Lanes, StoreError> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for n in 0..count.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            let lane = Lane {
                rx,
                connector: Arc::clone(connector),
                counters: Arc::clone(counters),
                max_batch: max_batch.max(1),
            };
            let thread = std::thread::Builder::new()
                .name(format!("{LANE_THREAD}-{n}"))
                .spawn(move || lane.run())
                .map_err(|e| StoreError::Database(format!("cannot start a writer lane: {e}")))?;
            senders.push(tx);
            threads.push(thread);
        }
        Ok(Lanes {
            senders: Mutex::new(senders),
            threads: Mutex::new(threads),
            next: AtomicUsize::new(0),
        })
    }

    /// Queues `work` on the next lane and waits for its answer (after the
    /// commit of its batch).
    pub(super) async fn run(&self, work: DynWork) -> Answer {
        let (reply, answer) = oneshot::channel();
        {
            let senders = self.senders.lock().map_err(|_| StoreError::Closed)?;
            if senders.is_empty() {
                return Err(StoreError::Closed);
            }
            let n = self.next.fetch_add(1, Ordering::Relaxed) % senders.len();
            senders[n]
                .send(Job { work, reply })
                .map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| {
            StoreError::Database("the writer lane stopped before answering (see the log)".into())
        })?
    }

    /// Units queued before this call are still run; later ones get
    /// `Closed`. Returns when every lane has finished.
    pub(super) async fn close(&self) {
        if let Ok(mut senders) = self.senders.lock() {
            senders.clear();
        }
        let threads = match self.threads.lock() {
            Ok(mut threads) => std::mem::take(&mut *threads),
            Err(_) => return,
        };
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// One lane's thread state.
struct Lane {
    rx: mpsc::UnboundedReceiver<Job>,
    connector: Arc<Connector>,
    counters: Arc<Counters>,
    max_batch: usize,
}

/// How one run of a batch ended.
enum Run {
    /// Committed: each unit's result, in queue order.
    Committed(Vec<Answer>),
    /// Rolled back: run again with a savepoint per unit.
    Isolate,
    /// Rolled back because another transaction got there first.
    Conflict(String),
    /// Nothing of the batch stands (begin or commit failed, the
    /// connection broke, a lone unit failed).
    Failed(StoreError),
}

impl Lane {
    fn run(mut self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "writer lane cannot start its runtime");
                self.fail_all_queued(&format!("writer lane has no runtime: {e}"));
                return;
            }
        };
        let mut client: Option<ClientWrapper> = None;
        while let Some(first) = self.rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            if client.as_ref().is_none_or(|c| c.is_closed()) {
                client = None;
                match runtime.block_on(self.connector.connect()) {
                    Ok(c) => client = Some(c),
                    Err(e) => {
                        tracing::error!(error = %e, "writer lane cannot connect");
                        self.fail(jobs, &e);
                        continue;
                    }
                }
            }
            if let Some(client) = client.as_mut() {
                self.commit_batch(&runtime, client, jobs);
            }
        }
        tracing::debug!("writer lane closed");
    }

    /// Answers every unit with one error, counting them failed.
    fn fail(&self, jobs: Vec<Job>, error: &StoreError) {
        self.counters.failed_units(jobs.len());
        for job in jobs {
            let _ = job.reply.send(Err(copy_error(error)));
        }
    }

    fn fail_all_queued(&mut self, why: &str) {
        while let Some(job) = self.rx.blocking_recv() {
            let _ = job.reply.send(Err(StoreError::Database(why.to_string())));
        }
    }

    fn commit_batch(&self, runtime: &Runtime, client: &mut ClientWrapper, mut jobs: Vec<Job>) {
        let mut isolated = false;
        let mut run = 0;
        loop {
            run += 1;
            match run_batch(runtime, client, &mut jobs, isolated) {
                Run::Committed(results) => {
                    self.counters.committed_batch(&results);
                    for (job, result) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(result);
                    }
                    return;
                }
                Run::Isolate => {
                    self.counters
                        .isolated_reruns
                        .fetch_add(1, Ordering::Relaxed);
                    isolated = true;
                }
                Run::Conflict(why) if run < MAX_RUNS => {
                    self.counters
                        .conflict_reruns
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(run, units = jobs.len(), %why, "batch conflicted; running it again");
                    // Spread the reruns of batches that collided (up to
                    // 64 ms: PostgreSQL lets one of two colliding
                    // transactions through, so a rerun soon finds its way).
                    let jitter = rand::random::<u64>() % (1 << run.min(6));
                    std::thread::sleep(Duration::from_millis(jitter));
                }
                Run::Conflict(why) => {
                    self.fail(jobs, &StoreError::Conflict(why));
                    return;
                }
                Run::Failed(e) => {
                    tracing::error!(error = %e, units = jobs.len(), "writer lane batch failed");
                    self.fail(jobs, &e);
                    return;
                }
            }
        }
    }
}

/// A copy of `e` for each unit of a failed batch (I/O errors are not
/// `Clone`; their text is what callers log).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(why) => StoreError::Conflict(why.clone()),
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Database(other.to_string()),
    }
}

/// Runs the batch once in one transaction; see [`Run`].
fn run_batch(
    runtime: &Runtime,
    client: &mut ClientWrapper,
    jobs: &mut [Job],
    isolated: bool,
) -> Run {
    let tx = match runtime.block_on(
        client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start(),
    ) {
        Ok(tx) => tx,
        Err(e) => return failed(StoreError::from(e)),
    };
    match run_units(runtime, &tx, jobs, isolated) {
        Ok(results) => match runtime.block_on(tx.commit()) {
            Ok(()) => Run::Committed(results),
            Err(e) => failed(StoreError::from(e)),
        },
        Err(run) => {
            let _ = runtime.block_on(tx.rollback());
            run
        }
    }
}

/// The units' results when the transaction may commit, or what to do
/// after rolling it back.
fn run_units(
    runtime: &Runtime,
    tx: &Transaction<'_>,
    jobs: &mut [Job],
    isolated: bool,
) -> Result<Vec<Answer>, Run> {
    let batch = Batch::default();
    let alone = jobs.len() == 1;
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        if isolated {
            batch.queue("SAVEPOINT bwgate_unit");
        }
        let unit = PgTx::new(tx, runtime, &batch);
        let result = (job.work)(&unit);
        if unit.conflicted() || matches!(result, Err(StoreError::Conflict(_))) {
            return Err(Run::Conflict(match result {
                Err(StoreError::Conflict(why)) => why,
                _ => "a statement conflicted with another transaction".into(),
            }));
        }
        if alone && result.is_err() {
            // Nothing else rides on this transaction: undo it all.
            return Err(Run::Committed(vec![result]));
        }
        if isolated {
            if result.is_ok() {
                // Commands go in before the savepoint is released: a later
                // unit's undo must not take them with it.
                unit.finish().map_err(failed)?;
                batch.queue("RELEASE SAVEPOINT bwgate_unit");
            } else {
                unit.forget_unit_writes();
                batch.queue("ROLLBACK TO SAVEPOINT bwgate_unit; RELEASE SAVEPOINT bwgate_unit");
            }
        } else if unit.aborted() || (result.is_err() && unit.wrote()) {
            // Its failure cannot be undone alone without savepoints.
            return Err(Run::Isolate);
        }
        results.push(result);
    }
    // The enterprise locks and the commands, then the commit.
    PgTx::new(tx, runtime, &batch).finish().map_err(failed)?;
    Ok(results)
}

fn failed(e: StoreError) -> Run {
    match e {
        StoreError::Conflict(why) => Run::Conflict(why),
        other => Run::Failed(other),
    }
}
