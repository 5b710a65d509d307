//! PostgreSQL back-end: several bwgate nodes share one database.
//!
//! * Units of work (`Store::transact_dyn`) queue to the node's writer
//!   lanes (`lane.rs`), which run the waiting units in one REPEATABLE READ
//!   transaction each (group commit): what the SQLite writer gives by
//!   running one write at a time, PostgreSQL gives by aborting the later of
//!   two transactions that touched the same row. A batch that hits a conflict (a
//!   serialization failure, a deadlock, or a unique key another node just
//!   inserted, such as the organization of an enterprise whose first
//!   AddUsers reached two nodes at once) is rolled back and run again,
//!   [`MAX_RUNS`] times at most (with a short random pause); units may run
//!   more than once by contract.
//! * Reads and the workers' claims run on pooled connections (deadpool).
//! * Due commands are claimed under an advisory lock (per-enterprise order
//!   across nodes, `outbox.rs`); due emails with `FOR UPDATE SKIP LOCKED`.
//! * The schema is versioned in `bwgate_schema` (`migrations.rs`).
//!
//! The SQL lives in one file per group of tables; rows decode through the
//! shared `store::rows`, as SQLite's do.

mod calling;
mod email;
mod events;
mod lane;
mod licenses;
pub use lane::LANE_THREAD;
mod migrations;
mod orgs;
mod outbox;
mod records;
mod sql;
mod subscribers;
mod tenancy;
mod tx;
mod workspaces;

#[cfg(test)]
#[path = "../../../tests/support/pg_cluster.rs"]
pub(crate) mod pg_cluster;
#[cfg(test)]
pub(crate) mod suite;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::domain::email::EmailMessage;
use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::domain::lifecycle::{OrganizationRef, SubscriberRecord};
use crate::domain::now_millis;
use crate::domain::organization::ExistingOrganization;
use crate::domain::{Cluster, CustomerTemplate, Partner};
use crate::store::tx::DynWork;
use crate::store::tx::OrgOrigin;
use crate::store::{
    ActivationView, EmailFilter, EmailOutcome, EmailRecord, ExistingOrgReport, HolderCursor,
    HolderRow, Lease, LicenseEvent, OutboxEntry, OutboxState, Store, StoreError, StoreStats,
    SubscriberQuery, SubscriptionUsage,
};

/// Runs of one batch of units of work before a conflict is answered as an
/// error (`Conflict`, retryable: the caller's client may send it again).
pub const MAX_RUNS: u32 = 30;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=…` (or the
    /// key=value form).
    pub url: String,
    /// Connections kept open for reads and the workers' claims.
    pub pool_size: usize,
    /// Writer lanes: connections that run units of work, in batches.
    pub writers: usize,
    /// Most units of work one lane folds into one transaction.
    pub max_batch: usize,
}

/// The PostgreSQL store: see the module documentation.
pub struct PgStore {
    pool: Pool,
    lanes: lane::Lanes,
    stats: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    writes_committed: AtomicU64,
    transactions_committed: AtomicU64,
    writes_failed: AtomicU64,
    largest_batch: AtomicU64,
    isolated_reruns: AtomicU64,
    conflict_reruns: AtomicU64,
}

impl Counters {
    /// Counts a committed batch and each unit's outcome.
    fn committed_batch<T>(&self, results: &[Result<T, StoreError>]) {
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        self.writes_committed.fetch_add(ok, Ordering::Relaxed);
        self.writes_failed
            .fetch_add(results.len() as u64 - ok, Ordering::Relaxed);
        self.transactions_committed.fetch_add(1, Ordering::Relaxed);
        self.largest_batch
            .fetch_max(results.len() as u64, Ordering::Relaxed);
        metrics::histogram!("bwgate_store_batch_size").record(results.len() as f64);
    }

    fn failed_units(&self, n: usize) {
        self.writes_failed.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a write (a unit of work or a single write) by its outcome.
    fn count<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => {
                self.transactions_committed.fetch_add(1, Ordering::Relaxed);
                self.writes_committed.fetch_add(1, Ordering::Relaxed)
            }
            Err(_) => self.writes_failed.fetch_add(1, Ordering::Relaxed),
        };
        result
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (TLS with `tls` when the server offers or the URL's
    /// `sslmode` asks for it; without, plain TCP or a Unix socket) and
    /// brings the schema up to date.
    pub async fn open(
        options: &PgOptions,
        tls: Option<rustls::ClientConfig>,
    ) -> Result<PgStore, StoreError> {
        let mut pg = tokio_postgres::Config::from_str(&options.url)
            .map_err(|e| StoreError::Database(format!("store.url is not usable: {e}")))?;
        if pg.get_application_name().is_none() {
            pg.application_name("bwgate");
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = tls.map(|mut config| {
            // PostgreSQL negotiates TLS itself: no ALPN of ours.
            config.alpn_protocols.clear();
            tokio_postgres_rustls::MakeRustlsConnect::new(config)
        });
        let connector = Arc::new(Connector {
            config: pg.clone(),
            tls: tls.clone(),
        });
        let manager = match tls {
            Some(tls) => Manager::from_config(pg, tls, manager_config),
            None => Manager::from_config(pg, tokio_postgres::NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build the connection pool: {e}")))?;
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let applied = migrations::migrate(&tx, now_millis()).await?;
        tx.commit().await?;
        drop(client);
        let stats = Arc::new(Counters::default());
        let lanes = lane::Lanes::start(options.writers, options.max_batch, &connector, &stats)?;
        tracing::info!(
            schema_version = migrations::latest_version(),
            migrations_applied = applied,
            pool_size = options.pool_size.max(1),
            writers = options.writers.max(1),
            "postgres store open"
        );
        Ok(PgStore { pool, lanes, stats })
    }

    /// Runs one write outside a unit of work, counting its outcome.
    async fn counted<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.stats.count(write.await)
    }

    /// A pooled connection (the suite's probes look underneath the trait).
    #[cfg(test)]
    pub(crate) async fn test_client(&self) -> deadpool_postgres::Object {
        self.pool.get().await.expect("a pooled connection")
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(self.pool.get().await?)
    }
}

/// How a writer lane opens its own connection (outside the pool: the
/// lane drives it on its own runtime).
struct Connector {
    config: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Connector {
    /// Connects and spawns the connection's task on the current runtime.
    async fn connect(&self) -> Result<ClientWrapper, StoreError> {
        let (client, task) = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, tokio::spawn(drive(connection)))
            }
            None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                (client, tokio::spawn(drive(connection)))
            }
        };
        Ok(ClientWrapper::new(client, task))
    }
}

/// A connection's task: ends when the client is dropped or the server
/// goes away (the lane then connects again).
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "writer lane's database connection ended");
    }
}

#[async_trait]
impl Store for PgStore {
    async fn upsert_partner(&self, partner: &Partner) -> Result<(), StoreError> {
        self.counted(async {
            tenancy::upsert_partner(&self.client().await?, partner, now_millis()).await
        })
        .await
    }

    async fn upsert_cluster(&self, cluster: &Cluster) -> Result<(), StoreError> {
        self.counted(async {
            tenancy::upsert_cluster(&self.client().await?, cluster, now_millis()).await
        })
        .await
    }

    async fn upsert_template(&self, template: &CustomerTemplate) -> Result<(), StoreError> {
        self.counted(async {
            tenancy::upsert_template(&self.client().await?, template, now_millis()).await
        })
        .await
    }

    async fn template(
        &self,
        provisioning_id: &str,
    ) -> Result<Option<CustomerTemplate>, StoreError> {
        tenancy::template(&self.client().await?, provisioning_id).await
    }

    async fn sync_config_templates(
        &self,
        keep: &[String],
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.counted(async {
            tenancy::sync_config_templates(&self.client().await?, keep, now).await
        })
        .await
    }

    async fn templates(&self) -> Result<Vec<CustomerTemplate>, StoreError> {
        tenancy::templates(&self.client().await?).await
    }

    async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError> {
        tenancy::partner(&self.client().await?, id).await
    }

    async fn tenancy_revision(&self) -> Result<i64, StoreError> {
        tenancy::revision(&self.client().await?).await
    }

    async fn link_secret_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        tenancy::link_secret_fingerprint(&self.client().await?, fingerprint).await
    }

    async fn transact_dyn(&self, work: DynWork) -> Result<Box<dyn Any + Send>, StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        self.lanes.run(work).await
    }

    async fn subscriber_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        subscribers::by_user_id(&self.client().await?, user_id).await
    }

    async fn subscriber(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        subscribers::by_id(&self.client().await?, id).await
    }

    async fn subscriber_commands(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        outbox::of_subscriber(&self.client().await?, subscriber_id).await
    }

    async fn due_commands(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        outbox::due(&self.client().await?, now, limit).await
    }

    async fn claim_commands(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let claimed = outbox::claim(&tx, &lease.owner, lease.now, lease.until, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let n = outbox::release_leases(&client, owner).await?
            + email::release_leases(&client, owner).await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn outbox_counts(&self) -> Result<Vec<(OutboxState, u64)>, StoreError> {
        outbox::counts(&self.client().await?).await
    }

    async fn licenses(&self, subscriber_id: &str) -> Result<Vec<String>, StoreError> {
        licenses::licenses(&self.client().await?, subscriber_id).await
    }

    async fn license_events(&self, subscriber_id: &str) -> Result<Vec<LicenseEvent>, StoreError> {
        licenses::license_events(&self.client().await?, subscriber_id).await
    }

    async fn license_subscriptions(
        &self,
        org_id: &str,
    ) -> Result<Vec<SubscriptionUsage>, StoreError> {
        licenses::subscription_usage(&self.client().await?, org_id).await
    }

    async fn license_holders_page(
        &self,
        org_id: &str,
        after: Option<HolderCursor>,
        limit: usize,
    ) -> Result<Vec<HolderRow>, StoreError> {
        licenses::holders_page(&self.client().await?, org_id, after.as_ref(), limit).await
    }

    async fn organization_partner(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        licenses::organization_partner(&self.client().await?, org_id).await
    }

    async fn license_feed(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<LicenseEvent>, StoreError> {
        licenses::feed(&self.client().await?, after, limit).await
    }

    async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ProvisioningEvent>, StoreError> {
        events::after(&self.client().await?, after, limit).await
    }

    async fn last_event_seq(&self) -> Result<i64, StoreError> {
        events::last_seq(&self.client().await?).await
    }

    async fn prune_events(&self, before_at: i64, up_to_seq: i64) -> Result<u64, StoreError> {
        events::prune(&self.client().await?, before_at, up_to_seq).await
    }

    async fn put_event_subscription(&self, s: &EventSubscription) -> Result<(), StoreError> {
        events::put_subscription(&self.client().await?, s).await
    }

    async fn delete_event_subscription(&self, id: &str) -> Result<bool, StoreError> {
        events::delete_subscription(&self.client().await?, id).await
    }

    async fn event_subscriptions(&self) -> Result<Vec<EventSubscription>, StoreError> {
        events::subscriptions(&self.client().await?).await
    }

    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        sql::exec(
            &client,
            "DELETE FROM used_once WHERE expires_at <= $1",
            &[&now],
        )
        .await?;
        let inserted = sql::exec(
            &client,
            "INSERT INTO used_once (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &expires_at],
        )
        .await?;
        Ok(inserted == 1)
    }

    async fn advance_event_cursor(&self, id: &str, acked_seq: i64) -> Result<(), StoreError> {
        events::advance_cursor(&self.client().await?, id, acked_seq).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.batch_execute("SELECT 1").await?;
        Ok(())
    }

    /// Every write is committed before it is answered: nothing to wait for.
    async fn flush(&self) -> Result<(), StoreError> {
        if self.pool.is_closed() {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.pool.close();
        self.lanes.close().await;
        tracing::info!("postgres store closed");
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        StoreStats {
            writes_committed: load(&self.stats.writes_committed),
            transactions_committed: load(&self.stats.transactions_committed),
            writes_failed: load(&self.stats.writes_failed),
            largest_batch: load(&self.stats.largest_batch),
            isolated_reruns: load(&self.stats.isolated_reruns),
            conflict_reruns: load(&self.stats.conflict_reruns),
        }
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    async fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError> {
        self.counted(async { email::enqueue(&self.client().await?, msg, now).await })
            .await
    }

    async fn due_emails(&self, now: i64, limit: usize) -> Result<Vec<EmailRecord>, StoreError> {
        email::due(&self.client().await?, now, limit).await
    }

    async fn claim_emails(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        email::claim(
            &self.client().await?,
            &lease.owner,
            lease.now,
            lease.until,
            limit,
        )
        .await
    }

    async fn complete_email(
        &self,
        id: i64,
        outcome: EmailOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        email::complete(&tx, id, &outcome, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn emails(
        &self,
        filter: &EmailFilter,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError> {
        email::list(&self.client().await?, filter, limit).await
    }

    async fn email(&self, id: i64) -> Result<Option<EmailRecord>, StoreError> {
        email::one(&self.client().await?, id).await
    }

    async fn upsert_existing_orgs(
        &self,
        orgs: Vec<ExistingOrganization>,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        orgs::upsert(&tx, &orgs, now_millis()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn existing_org(&self, id: &str) -> Result<Option<ExistingOrgReport>, StoreError> {
        orgs::report(&self.client().await?, id).await
    }

    async fn organization(
        &self,
        id: &str,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
        subscribers::organization_by_id(&self.client().await?, id).await
    }

    async fn activation(&self, subscriber_id: &str) -> Result<Option<ActivationView>, StoreError> {
        let client = self.client().await?;
        let Some(subscriber) = subscribers::by_id(&client, subscriber_id).await? else {
            return Ok(None);
        };
        Ok(records::activation(&client, subscriber_id)
            .await?
            .map(|activation| ActivationView {
                subscriber,
                activation,
                emails_enqueued: 0,
                commands_written: 0,
            }))
    }

    async fn set_partner_admin_token(
        &self,
        partner_id: &str,
        token_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        self.counted(async {
            tenancy::set_admin_token(&self.client().await?, partner_id, token_hash, now_millis())
                .await
        })
        .await
    }

    async fn partner_admin_tokens(&self) -> Result<Vec<(String, String)>, StoreError> {
        tenancy::admin_tokens(&self.client().await?).await
    }

    async fn partner_subscribers(
        &self,
        query: &SubscriberQuery,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        tenancy::partner_subscribers(&self.client().await?, query).await
    }

    async fn partner_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError> {
        tenancy::partner_subscriber(&self.client().await?, partner_id, subscriber_id).await
    }
}
