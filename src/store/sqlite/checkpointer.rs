//! WAL checkpoints off the writer thread.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses the
//! WAL size threshold, on the writer thread: it copies thousands of pages
//! into the database file and syncs it while every caller waits (about
//! 18 ms per checkpoint under AddUser load here, three a second: that was
//! the p99 latency). This thread, with its own connection, runs PASSIVE
//! checkpoints whenever something was committed: they copy committed
//! frames concurrently with the writer (no lock the writer waits for) and
//! repeat while the writer appended more meanwhile, so the WAL is usually
//! fully copied and SQLite restarts it at the next write. The writer keeps
//! an automatic checkpoint at a higher threshold as a safety net.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::writer::Stats;
use super::BUSY_TIMEOUT;
use crate::config::SqliteSync;
use crate::store::StoreError;

/// How often the thread looks for new commits.
const INTERVAL: Duration = Duration::from_millis(50);
/// Rounds per wake-up: each copies what the writer appended during the
/// previous one, far less than the round before.
const MAX_ROUNDS: usize = 4;
/// Frames left uncopied that are not worth another round.
const SMALL_TAIL: i64 = 64;

/// The running thread; dropping the handle's sender also stops it.
pub(super) struct Checkpointer {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    pub(super) fn start(
        path: &Path,
        sync: SqliteSync,
        stats: Arc<Stats>,
    ) -> Result<Checkpointer, StoreError> {
        let conn = open(path, sync)?;
        let (stop, stopped) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bwgate-sqlite-ckpt".into())
            .spawn(move || run(&conn, &stats, &stopped))?;
        Ok(Checkpointer { stop, thread })
    }

    /// Stops the thread (after the round in progress) and waits for it.
    pub(super) fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::error!("store checkpoint thread panicked");
        }
    }
}

fn open(path: &Path, sync: SqliteSync) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Syncs the database file at the end of each checkpoint like the writer
    // would (both settings sync it; FULL also syncs the WAL header).
    let sync = match sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    // Never checkpoints by itself (it never writes), but be explicit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

fn run(conn: &Connection, stats: &Stats, stopped: &Receiver<()>) {
    let mut seen = stats.commits();
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let commits = stats.commits();
        if commits == seen {
            continue;
        }
        seen = commits;
        for _ in 0..MAX_ROUNDS {
            match checkpoint_round(conn, stats) {
                Ok(left) if left > SMALL_TAIL => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "background WAL checkpoint failed");
                    break;
                }
            }
        }
    }
}

/// One PASSIVE checkpoint; returns the frames it left uncopied (appended
/// meanwhile, or still needed by a reader).
fn checkpoint_round(conn: &Connection, stats: &Stats) -> Result<i64, StoreError> {
    let started = Instant::now();
    let (_busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    stats.background_checkpoints.fetch_add(1, Ordering::Relaxed);
    metrics::histogram!("bwgate_store_checkpoint_seconds").record(started.elapsed().as_secs_f64());
    // -1 when the database is not in WAL mode (never here).
    Ok((log - copied).max(0))
}
