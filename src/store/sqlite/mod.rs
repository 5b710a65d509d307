//! Embedded SQLite back-end (see DESIGN.md, "Storage").
//!
//! * One writer thread owns the only read-write connection and
//!   group-commits: every write queued while a transaction runs goes into
//!   the next one (`writer.rs`). A write is answered only after its
//!   transaction committed, so an acknowledged write survives a crash
//!   (`synchronous=FULL` also survives power loss).
//! * Reads use a small pool of read-only connections on tokio's blocking
//!   pool (`reader.rs`); in WAL mode they never wait for the writer.
//! * The schema is versioned with `PRAGMA user_version`, one embedded SQL
//!   file per migration (`migrations.rs`).
//!
//! Other store code adds operations as closures: `write(|conn| ...)` runs
//! on the writer inside the batch transaction (rolled back alone if it
//! fails, see `writer.rs`; it must not BEGIN/COMMIT itself),
//! `read(|conn| ...)` on a reader.
//!
//! Units of work (`Store::transact_dyn`) run as one write each; `tx.rs`
//! is the `Tx` they see: row operations only, the SQL in the entity files
//! (`subscribers.rs` organization and subscriber rows, `outbox.rs` commands
//! and claims, `orgs.rs` existing organizations and partner roles,
//! `activation.rs`, `email.rs`, `trunk.rs`). The use cases are
//! `provision`'s. `licenses.rs` is the in-process license core's ledger;
//! `partner_admin.rs` the partner admins' tokens and subscriber list.
//!
//! Email outbox (schema `0003_email.sql`): `email.rs`; its
//! `enqueue_email(&Connection, ..)` also runs inside other writes, so an
//! email can commit together with the state change it follows from.

mod activation;
mod calling;
mod email;
mod events;
mod leases;
mod licenses;
mod migrations;
mod orgs;
mod outbox;
mod partner_admin;
mod reader;
mod subscribers;
mod tenancy;
mod trunk;
mod tx;
mod workspaces;
mod writer;

#[cfg(test)]
mod query_plan_tests;
#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::config::{SqliteSync, StoreConfig};
use crate::domain::email::EmailMessage;
use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::domain::lifecycle::{OrganizationRef, SubscriberRecord};
use crate::domain::organization::ExistingOrganization;
use crate::domain::{Cluster, CustomerTemplate, Partner};
use crate::store::private_files;
use crate::store::tx::OrgOrigin;
use crate::store::{
    ActivationView, EmailFilter, EmailOutcome, EmailRecord, ExistingOrgReport, HolderCursor,
    HolderRow, Lease, LicenseEvent, OutboxEntry, OutboxState, Store, StoreError, StoreStats,
    SubscriberQuery, SubscriptionUsage,
};

use reader::ReadPool;
use writer::{Job, Stats, Writer};

use crate::store::rows::EmailRow;

/// How long a connection waits for a lock held by another connection
/// (another process, or a checkpoint) before failing with SQLITE_BUSY.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection.
pub(super) const STATEMENT_CACHE: usize = 64;
/// Pages in the WAL before an automatic (passive) checkpoint: SQLite's
/// default, about 4 MiB with 4 KiB pages.
/// Checkpoint less often: pages rewritten many times between checkpoints
/// are copied back once (SQLite's default is 1000 pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 8000;
const WRITER_CACHE_KIB: i64 = -65536;
/// WAL file size kept after a checkpoint (bounds disk use after a burst).
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Name of the writer thread (Linux shows its first 15 bytes as the
/// thread's `comm`: `bwgate-sqlite-w`).
pub const WRITER_THREAD: &str = "bwgate-sqlite-writer";

/// SQLite store: see the module documentation.
pub struct SqliteStore {
    path: PathBuf,
    queue: mpsc::Sender<Job>,
    readers: Arc<ReadPool>,
    stats: Arc<Stats>,
    /// Who holds which due command (`leases.rs`).
    leases: Arc<leases::LeaseBook>,
    /// The writer thread until `close` joined it.
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directory) and migrates
    /// the database at `path`, then starts the writer thread.
    pub async fn open(path: &Path, cfg: &StoreConfig) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(path, &cfg))
            .await
            .map_err(|e| StoreError::Database(format!("opening the database failed: {e}")))?
    }

    fn open_blocking(path: PathBuf, cfg: &StoreConfig) -> Result<SqliteStore, StoreError> {
        create_private_files(&path)?;
        let conn = open_writer(&path, cfg.sqlite_synchronous)?;
        let applied = migrations::migrate(&conn, migrations::MIGRATIONS)?;
        if applied > 0 {
            // A migration may have redacted rows (0008): move the redacted
            // pages into the main file now and empty the WAL, so the old
            // words survive in neither.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        let readers = Arc::new(ReadPool::open(&path, cfg.read_connections)?);

        let max_batch = cfg.group_commit_max.max(1);
        let capacity = max_batch.saturating_mul(4).clamp(256, 65_536);
        let (queue, rx) = mpsc::channel(capacity);
        let stats = Arc::new(Stats::default());
        let leases = Arc::new(leases::LeaseBook::default());
        let writer = Writer::new(conn, rx, max_batch, Arc::clone(&stats), Arc::clone(&leases));
        let handle = std::thread::Builder::new()
            .name(WRITER_THREAD.into())
            .spawn(move || {
                // Jobs catch their own panics; this only guards the writer's
                // own code. Either way the queue closes and callers get
                // `Closed` instead of hanging.
                if let Err(payload) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| writer.run()))
                {
                    tracing::error!(
                        panic = %writer::panic_message(payload.as_ref()),
                        "store writer thread died; further writes fail"
                    );
                }
            })?;
        tracing::info!(
            path = %path.display(),
            schema_version = migrations::latest_version(migrations::MIGRATIONS),
            migrations_applied = applied,
            synchronous = ?cfg.sqlite_synchronous,
            group_commit_max = max_batch,
            read_connections = cfg.read_connections.max(1),
            "sqlite store open"
        );
        Ok(SqliteStore {
            path,
            queue,
            readers,
            stats,
            leases,
            writer: tokio::sync::Mutex::new(Some(handle)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `f` for the writer thread and waits until the transaction
    /// holding it has committed. If `f` returns an error (or panics) only
    /// its changes are rolled back. `f` may run more than once (see
    /// `writer.rs`), must have no effect outside the connection, and must
    /// not open or end transactions itself.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnMut(&WriteConn<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job::Write(writer::job(f, reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection (on tokio's blocking pool). It
    /// sees every write acknowledged before the call.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.read(f).await
    }

    /// Jobs waiting in the writer's queue (tests use it to build batches).
    #[cfg(test)]
    fn queued_jobs(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// The writer's connection as a write sees it (derefs to the
/// [`Connection`]).
pub(crate) struct WriteConn<'a> {
    conn: &'a Connection,
    /// The write runs in its own savepoint, so it may undo part of its work
    /// with nested savepoints; when false, a write that fails after
    /// changing rows makes the writer rerun the batch isolated.
    isolated: bool,
    /// Commands this transaction settled: their leases end once it
    /// commits (`leases.rs`).
    settled: &'a std::cell::RefCell<Vec<i64>>,
}

impl WriteConn<'_> {
    /// Whether this run of the write has its own savepoint.
    pub(crate) fn isolated(&self) -> bool {
        self.isolated
    }

    /// The command `seq` is settled (delivered, failed or retried later)
    /// by this transaction.
    pub(crate) fn settled(&self, seq: i64) {
        self.settled.borrow_mut().push(seq);
    }
}

impl std::ops::Deref for WriteConn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// The database's directory (when missing) and the file itself, owner
/// only, before SQLite opens it: SQLite gives the `-wal` and `-shm` files
/// the main file's mode, so they follow. Files an older start left
/// readable by others are tightened, with a warning.
fn create_private_files(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent() {
        // An existing directory may be shared (the database placed
        // elsewhere than the data directory): only a new one is ours.
        if !parent.as_os_str().is_empty() && !parent.exists() {
            private_files::ensure_dir(parent)?;
        }
    }
    private_files::ensure_file(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        private_files::tighten_logged(Path::new(&companion), private_files::FILE_MODE);
    }
    Ok(())
}

fn open_writer(path: &Path, sync: SqliteSync) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Refuse a newer schema before changing anything in the file.
    migrations::check_not_too_new(&conn, migrations::MIGRATIONS)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database(format!(
            "cannot enable WAL journal mode (got '{mode}'); is the file system local?"
        )));
    }
    let sync = match sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Space freed inside a page (a redacted email body) is zeroed, at no
    // extra I/O: the page is written anyway.
    conn.pragma_update(None, "secure_delete", "FAST")?;
    // Savepoints (an isolated rerun's, SQLite's own per statement) keep
    // their statement journal in memory instead of spilling it to a
    // temporary file past 64 KiB (an open, writes and a close each time).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
    // Negative = KiB: the writer keeps the hot index pages in memory.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    // Returns the new value as a row, so not via pragma_update.
    let _: i64 = conn.query_row(
        &format!("PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}"),
        [],
        |row| row.get(0),
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

pub(crate) use crate::domain::now_millis;

/// rusqlite errors keep SQLite's message. Values that cannot be decoded
/// from a column are `Corrupt`, everything else `Database`.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        use rusqlite::Error as E;
        match &e {
            E::FromSqlConversionFailure(..)
            | E::InvalidColumnType(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..) => StoreError::Corrupt(e.to_string()),
            E::SqliteFailure(err, _) => {
                StoreError::Database(format!("{e} (sqlite error {})", err.extended_code))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        let partner = partner.clone();
        self.write(move |conn| tenancy::upsert_partner(conn, &partner, now_millis()))
            .await
    }

    async fn upsert_cluster(&self, cluster: &Cluster) -> Result<(), StoreError> {
        let cluster = cluster.clone();
        self.write(move |conn| tenancy::upsert_cluster(conn, &cluster, now_millis()))
            .await
    }

    async fn upsert_template(&self, template: &CustomerTemplate) -> Result<(), StoreError> {
        let template = template.clone();
        self.write(move |conn| tenancy::upsert_template(conn, &template, now_millis()))
            .await
    }

    async fn template(
        &self,
        provisioning_id: &str,
    ) -> Result<Option<CustomerTemplate>, StoreError> {
        let id = provisioning_id.to_string();
        self.read(move |conn| tenancy::template(conn, &id)).await
    }

    async fn sync_config_templates(
        &self,
        keep: &[String],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let keep_json = serde_json::to_string(keep)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode template ids: {e}")))?;
        self.write(move |conn| tenancy::sync_config_templates(conn, &keep_json, now))
            .await
    }

    async fn templates(&self) -> Result<Vec<CustomerTemplate>, StoreError> {
        self.read(tenancy::templates).await
    }

    async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| tenancy::partner(conn, &id)).await
    }

    async fn tenancy_revision(&self) -> Result<i64, StoreError> {
        self.read(tenancy::revision).await
    }

    async fn transact_dyn(
        &self,
        mut work: crate::store::tx::DynWork,
    ) -> Result<Box<dyn std::any::Any + Send>, StoreError> {
        self.write(move |conn| work(&tx::SqliteTx { conn })).await
    }

    async fn subscriber_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let user_id = user_id.to_string();
        self.read(move |conn| subscribers::subscriber_by_user_id(conn, &user_id))
            .await
    }

    async fn subscriber(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| subscribers::subscriber_by_id(conn, &id))
            .await
    }

    async fn subscriber_commands(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let id = subscriber_id.to_string();
        self.read(move |conn| outbox::subscriber_commands(conn, &id))
            .await
    }

    async fn due_commands(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let running = self.leases.running_json(now);
        let rows = self
            .read(move |conn| outbox::due_rows(conn, now, limit, &running))
            .await?;
        rows.into_iter().map(|(row, _)| row.decode()).collect()
    }

    /// On a reader, not the writer: the leases are in memory
    /// (`leases.rs`), so a claim writes nothing.
    async fn claim_commands(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let _turn = self.leases.claim.lock().await;
        let (now, running) = (lease.now, self.leases.running_json(lease.now));
        let rows = self
            .read(move |conn| outbox::due_rows(conn, now, limit, &running))
            .await?;
        let taken: Vec<(i64, String)> = rows.iter().map(|(r, key)| (r.seq, key.clone())).collect();
        self.leases
            .hold(&lease.owner, lease.now, lease.until, &taken);
        rows.into_iter().map(|(row, _)| row.decode()).collect()
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let commands = self.leases.release_owner(owner);
        let owner = owner.to_string();
        // Rows leased by a version that wrote command leases down are
        // released too (nothing reads those any more).
        let emails = self
            .write(move |conn| {
                outbox::release_command_leases(conn, &owner)?;
                email::release_email_leases(conn, &owner)
            })
            .await?;
        Ok(commands + emails)
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxState, u64)>, StoreError> {
        self.read(outbox::outbox_counts).await
    }

    async fn licenses(&self, subscriber_id: &str) -> Result<Vec<String>, StoreError> {
        let id = subscriber_id.to_string();
        self.read(move |conn| licenses::licenses(conn, &id)).await
    }

    async fn license_events(&self, subscriber_id: &str) -> Result<Vec<LicenseEvent>, StoreError> {
        let id = subscriber_id.to_string();
        self.read(move |conn| licenses::license_events(conn, &id))
            .await
    }

    async fn license_subscriptions(
        &self,
        org_id: &str,
    ) -> Result<Vec<SubscriptionUsage>, StoreError> {
        let id = org_id.to_string();
        self.read(move |conn| licenses::subscription_usage(conn, &id))
            .await
    }

    async fn license_holders_page(
        &self,
        org_id: &str,
        after: Option<HolderCursor>,
        limit: usize,
    ) -> Result<Vec<HolderRow>, StoreError> {
        let id = org_id.to_string();
        self.read(move |conn| licenses::holders_page(conn, &id, after.as_ref(), limit))
            .await
    }

    async fn organization_partner(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        let id = org_id.to_string();
        self.read(move |conn| licenses::organization_partner(conn, &id))
            .await
    }

    async fn license_feed(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LicenseEvent>, StoreError> {
        self.read(move |conn| licenses::feed(conn, after, limit))
            .await
    }

    async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ProvisioningEvent>, StoreError> {
        self.read(move |conn| events::after(conn, after, limit))
            .await
    }

    async fn last_event_seq(&self) -> Result<i64, StoreError> {
        self.read(events::last_seq).await
    }

    async fn prune_events(&self, before_at: i64, up_to_seq: i64) -> Result<u64, StoreError> {
        self.write(move |conn| events::prune(conn, before_at, up_to_seq))
            .await
    }

    async fn put_event_subscription(&self, s: &EventSubscription) -> Result<(), StoreError> {
        let s = s.clone();
        self.write(move |conn| events::put_subscription(conn, &s))
            .await
    }

    async fn delete_event_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.write(move |conn| events::delete_subscription(conn, &id))
            .await
    }

    async fn event_subscriptions(&self) -> Result<Vec<EventSubscription>, StoreError> {
        self.read(events::subscriptions).await
    }

    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM used_once WHERE expires_at <= ?1")?
                .execute([now])?;
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO used_once (key, expires_at) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                )?
                .execute(rusqlite::params![key, expires_at])?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn advance_event_cursor(&self, id: &str, acked_seq: i64) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| events::advance_cursor(conn, &id, acked_seq))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .await?;
        self.write(|_| Ok(())).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Job::Barrier(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)
    }

    async fn close(&self) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().await;
        let Some(handle) = writer.take() else {
            return Ok(()); // already closed
        };
        let (ack, acked) = oneshot::channel();
        // Jobs queued before this one are committed first (FIFO queue).
        let result = match self.queue.send(Job::Shutdown(ack)).await {
            Ok(()) => acked.await.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed), // the writer died earlier
        };
        let joined = tokio::task::spawn_blocking(move || handle.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("store writer thread did not stop cleanly");
        }
        self.readers.close();
        tracing::info!(path = %self.path.display(), "sqlite store closed");
        result
    }

    fn stats(&self) -> StoreStats {
        self.stats.snapshot()
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError> {
        let msg = msg.clone();
        self.write(move |conn| email::enqueue_email(conn, &msg, now))
            .await
    }

    async fn due_emails(&self, now: i64, limit: usize) -> Result<Vec<EmailRecord>, StoreError> {
        self.read(move |conn| email::due_emails(conn, now, limit))
            .await
    }

    async fn claim_emails(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        let lease = lease.clone();
        // Decoded off the writer thread, as claimed commands.
        let rows = self
            .write(move |conn| {
                email::claim_emails(conn, &lease.owner, lease.now, lease.until, limit)
            })
            .await?;
        rows.into_iter().map(EmailRow::decode).collect()
    }

    async fn complete_email(
        &self,
        id: i64,
        outcome: EmailOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| email::complete_email(conn, id, &outcome, now))
            .await
    }

    async fn emails(
        &self,
        filter: &EmailFilter,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| email::emails(conn, &filter, limit))
            .await
    }

    async fn email(&self, id: i64) -> Result<Option<EmailRecord>, StoreError> {
        self.read(move |conn| email::email(conn, id)).await
    }

    async fn upsert_existing_orgs(
        &self,
        orgs: Vec<ExistingOrganization>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| orgs::upsert_existing_orgs(conn, &orgs, now_millis()))
            .await
    }

    async fn existing_org(&self, id: &str) -> Result<Option<ExistingOrgReport>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| orgs::report(conn, &id)).await
    }

    async fn organization(
        &self,
        id: &str,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| subscribers::organization_by_id(conn, &id))
            .await
    }

    async fn activation(&self, subscriber_id: &str) -> Result<Option<ActivationView>, StoreError> {
        let id = subscriber_id.to_string();
        self.read(move |conn| activation::view(conn, &id)).await
    }

    async fn set_partner_admin_token(
        &self,
        partner_id: &str,
        token_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = partner_id.to_string();
        let hash = token_hash.map(str::to_string);
        self.write(move |conn| {
            partner_admin::set_admin_token(conn, &id, hash.as_deref(), now_millis())
        })
        .await
    }

    async fn partner_admin_tokens(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(partner_admin::admin_tokens).await
    }

    async fn partner_subscribers(
        &self,
        query: &SubscriberQuery,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let query = query.clone();
        self.read(move |conn| partner_admin::list(conn, &query))
            .await
    }

    async fn partner_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        let (p, id) = (partner_id.to_string(), subscriber_id.to_string());
        self.read(move |conn| partner_admin::owned(conn, &p, &id))
            .await
    }
}
