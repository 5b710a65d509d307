//! A small pool of read-only connections. In WAL mode readers see the last
//! committed state and run concurrently with the writer; each read runs on
//! tokio's blocking pool so SQLite never blocks an async worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::writer::panic_message;
use super::{BUSY_TIMEOUT, STATEMENT_CACHE};
use crate::store::StoreError;

pub(super) struct ReadPool {
    path: PathBuf,
    /// Connections not in use. At most `size` exist at any time: a read
    /// holds a permit while it holds a connection.
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

impl ReadPool {
    /// Opens `size` (at least one) read-only connections to an existing,
    /// migrated database.
    pub(super) fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let size = size.max(1);
        let idle = (0..size)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadPool {
            path: path.to_path_buf(),
            idle: Mutex::new(idle),
            permits: Arc::new(Semaphore::new(size)),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `f` on a pooled read-only connection. Each statement sees a
    /// committed snapshot; for several statements from one snapshot, `f`
    /// can use `conn.unchecked_transaction()`.
    pub(super) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let result = pool.run(f);
            drop(permit);
            result
        });
        match task.await {
            Ok(result) => result,
            // Panics are caught in `run`; this is runtime shutdown.
            Err(_) => Err(StoreError::Closed),
        }
    }

    fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError>,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let popped = self.lock_idle().pop();
        let conn = match popped {
            Some(conn) => conn,
            // A connection was discarded earlier: replace it.
            None => open_reader(&self.path)?,
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(&conn)));
        let mut reusable = result.is_ok();
        if reusable && !conn.is_autocommit() {
            // `f` left a read transaction open; end it so the snapshot does
            // not pin the WAL.
            reusable = conn.execute_batch("ROLLBACK").is_ok();
        }
        if reusable && !self.closed.load(Ordering::Acquire) {
            self.lock_idle().push(conn);
        }
        match result {
            Ok(result) => result,
            Err(payload) => {
                let msg = panic_message(payload.as_ref());
                tracing::error!(panic = %msg, "store read panicked");
                Err(StoreError::Database(format!(
                    "read operation panicked: {msg}"
                )))
            }
        }
    }

    /// Refuses further reads and releases idle connections (reads in
    /// flight finish and drop theirs).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.lock_idle().clear();
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Nothing panics while holding this lock; recover if it ever did.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}
