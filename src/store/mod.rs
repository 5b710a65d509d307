//! Durable storage. Only this module speaks SQL. Callers see the `Store`
//! trait: reads, claims of due work, and units of work
//! ([`transact`] with a [`tx::Tx`] of typed row operations). The use cases
//! that run in those units of work live in `provision`, so a back-end
//! (SQLite today, PostgreSQL next) only maps rows.

pub mod calling_rows;
pub mod license_rows;
pub mod postgres;
pub mod private_files;
pub(crate) mod rows;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod suite;
pub mod tx;
pub mod workspace_rows;

use async_trait::async_trait;
use std::any::Any;
use std::sync::Arc;

use crate::domain::email::EmailMessage;
use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::domain::lifecycle::{OrganizationRef, SubscriberRecord};
use crate::domain::organization::ExistingOrganization;
use crate::domain::{Cluster, CustomerTemplate, Partner};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed an operation.
    #[error("database error: {0}")]
    Database(String),
    /// A referenced row (partner, cluster) does not exist.
    #[error("{entity} '{id}' does not exist")]
    MissingReference { entity: &'static str, id: String },
    /// A stored row could not be decoded (corrupt or from a newer version).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Schema is newer than this binary understands.
    #[error("database schema version {found} is newer than supported {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A concurrent transaction (another node's, on a shared database)
    /// changed the same rows first: running the unit of work again sees
    /// its change. The back-end reruns it a few times before answering.
    #[error("conflicting concurrent change: {0}")]
    Conflict(String),
    /// The store is closed (shutdown in progress) or its writer died.
    #[error("store is closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_) | StoreError::Conflict(_) | StoreError::Closed
        )
    }
}

/// Counters a store keeps about its own work (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write operations acknowledged after commit.
    pub writes_committed: u64,
    /// Transactions committed (each holds one or more writes).
    pub transactions_committed: u64,
    /// Write operations whose own work failed (rolled back alone).
    pub writes_failed: u64,
    /// Largest number of writes folded into one transaction.
    pub largest_batch: u64,
    /// Batches undone and run again with a savepoint per write because a
    /// write failed after changing rows (rare: see the SQLite writer).
    pub isolated_reruns: u64,
    /// Units of work rolled back and run again because another
    /// transaction changed the same rows first (shared databases only).
    pub conflict_reruns: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Insert or replace a partner.
    async fn upsert_partner(&self, partner: &Partner) -> Result<(), StoreError>;
    /// Insert or replace a cluster; its partner must exist.
    async fn upsert_cluster(&self, cluster: &Cluster) -> Result<(), StoreError>;
    /// Insert or replace a template; its partner (and cluster) must exist.
    async fn upsert_template(&self, template: &CustomerTemplate) -> Result<(), StoreError>;
    async fn template(&self, provisioning_id: &str)
        -> Result<Option<CustomerTemplate>, StoreError>;
    async fn templates(&self) -> Result<Vec<CustomerTemplate>, StoreError>;
    /// The configuration file declares exactly the `config` templates in
    /// `keep`: the others of source `config` are disabled (kept, with
    /// their subscribers and organizations), those in `keep` enabled.
    /// Returns the ids this call disabled. `demo` and `api` templates are
    /// not touched.
    async fn sync_config_templates(
        &self,
        keep: &[String],
        now: i64,
    ) -> Result<Vec<String>, StoreError>;
    async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError>;

    /// Changes whenever a partner, cluster or template is written, by any
    /// node sharing this store: nodes compare it to drop cached templates
    /// and partner tokens another node changed.
    async fn tenancy_revision(&self) -> Result<i64, StoreError>;
    /// Records `fingerprint` (of this node's link secret) when none is
    /// recorded yet and returns the recorded one: nodes sharing a database
    /// must sign links with one secret. A store only one node uses keeps
    /// nothing and returns `fingerprint`.
    async fn link_secret_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        Ok(fingerprint.to_string())
    }

    // ---- units of work

    /// Runs `work` in one transaction and returns its result after the
    /// commit (callers use [`transact`]). If `work` fails (or panics),
    /// none of its changes stand. `work` may run more than once (see
    /// [`tx`]); it must have no effect outside its `Tx`.
    async fn transact_dyn(&self, work: tx::DynWork) -> Result<Box<dyn Any + Send>, StoreError>;

    // ---- flow-through provisioning (reads)

    async fn subscriber_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError>;
    async fn subscriber(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError>;
    /// Every outbox entry about a subscriber (by subscriber id), oldest first.
    async fn subscriber_commands(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    // ---- outbox delivery

    /// Pending commands due at `now`, oldest first, at most `limit`, such
    /// that for every enterprise only a prefix of its pending commands is
    /// returned and none whose predecessor is still pending is skipped
    /// over (per-enterprise order).
    /// Leased commands are not due (see [`Lease`]).
    async fn due_commands(&self, now: i64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Takes what `due_commands(lease.now, limit)` returns, in one
    /// statement: each row gets `lease.owner` until `lease.until`, so no
    /// other claim takes it, nor any later command of its enterprise, until
    /// it settles, retries (which releases it) or the lease expires.
    async fn claim_commands(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Ends `owner`'s leases on pending commands and emails (a node that
    /// restarts under the same `server.node_id` takes its work back at
    /// once instead of waiting for them to expire). Returns how many.
    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError>;
    /// Counts of outbox rows by state.
    async fn outbox_counts(&self) -> Result<Vec<(OutboxState, u64)>, StoreError>;

    // ---- license core reads (its writes are units of work: `LicenseRows`)

    async fn licenses(&self, subscriber_id: &str) -> Result<Vec<String>, StoreError>;
    async fn license_events(&self, subscriber_id: &str) -> Result<Vec<LicenseEvent>, StoreError>;
    /// The organization's subscriptions with what each has assigned,
    /// oldest first.
    async fn license_subscriptions(
        &self,
        org_id: &str,
    ) -> Result<Vec<SubscriptionUsage>, StoreError>;
    /// Every license held by a subscriber of the organization, by user
    /// then license: the whole report is one page.
    async fn license_holders(&self, org_id: &str) -> Result<Vec<HolderRow>, StoreError> {
        self.license_holders_page(org_id, None, usize::MAX).await
    }
    /// Up to `limit` of them, after `after` (keyset: a page never repeats
    /// or skips a row, whatever changes in between elsewhere).
    async fn license_holders_page(
        &self,
        org_id: &str,
        after: Option<HolderCursor>,
        limit: usize,
    ) -> Result<Vec<HolderRow>, StoreError>;
    /// The partner whose enterprise the organization is linked to.
    async fn organization_partner(&self, org_id: &str) -> Result<Option<String>, StoreError>;
    /// The ledger after `after` (an event id), oldest first: the billing
    /// feed.
    async fn license_feed(&self, after: i64, limit: usize)
        -> Result<Vec<LicenseEvent>, StoreError>;

    /// Cheap round trip through reader and writer paths, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Wait until every write queued so far is committed.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Flush, stop accepting writes and release the database.
    async fn close(&self) -> Result<(), StoreError>;
    fn stats(&self) -> StoreStats;
    /// Short name for logs and metrics (`sqlite`, `postgres`).
    fn backend_name(&self) -> &'static str;

    // ---- email outbox (notify)

    /// Writes an email to the outbox as `pending`, due at `now`. Returns its
    /// id after commit, or `None` (nothing written) when an email with the
    /// same `dedupe_key` was enqueued before, whatever its state.
    async fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError>;
    /// Pending emails due at `now` (`next_attempt_at <= now`), earliest due
    /// first (then oldest), at most `limit`.
    /// Leased emails are not due (see [`Lease`]).
    async fn due_emails(&self, now: i64, limit: usize) -> Result<Vec<EmailRecord>, StoreError>;
    /// Takes what `due_emails(lease.now, limit)` returns, in one
    /// statement, leasing each to `lease.owner` until `lease.until`.
    async fn claim_emails(
        &self,
        lease: &Lease,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError>;
    /// Records a delivery attempt. A settled email (sent or failed) is left
    /// as it is (a repeated completion changes nothing); an unknown id is
    /// `MissingReference`.
    async fn complete_email(
        &self,
        id: i64,
        outcome: EmailOutcome,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Emails matching `filter`, newest first, at most `limit`.
    async fn emails(
        &self,
        filter: &EmailFilter,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, StoreError>;
    async fn email(&self, id: i64) -> Result<Option<EmailRecord>, StoreError>;

    // ---- existing organizations (org attach)

    /// Inserts or replaces existing organizations (users, domains, licenses,
    /// settings), all in one transaction: all or nothing. Links and partner
    /// roles are kept.
    async fn upsert_existing_orgs(&self, orgs: Vec<ExistingOrganization>)
        -> Result<(), StoreError>;
    /// An existing organization with its link, partner roles and the
    /// approval emails sent about it.
    async fn existing_org(&self, id: &str) -> Result<Option<ExistingOrgReport>, StoreError>;
    /// An enterprise's organization (created or attached) by its id.
    async fn organization(
        &self,
        id: &str,
    ) -> Result<Option<(OrganizationRef, tx::OrgOrigin)>, StoreError>;

    // ---- activation portal (untrusted email, consent, self-activation)

    /// A subscriber with its activation, if it has one.
    async fn activation(&self, subscriber_id: &str) -> Result<Option<ActivationView>, StoreError>;

    // ---- partner admins (subscriber status page and JSON API)

    /// Sets a partner's admin token hash (argon2 PHC), or clears it.
    async fn set_partner_admin_token(
        &self,
        partner_id: &str,
        token_hash: Option<&str>,
    ) -> Result<(), StoreError>;
    /// `(partner id, PHC hash)` of every partner with an admin token.
    async fn partner_admin_tokens(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// The partner's subscribers matching `query`, in id order.
    async fn partner_subscribers(
        &self,
        query: &SubscriberQuery,
    ) -> Result<Vec<SubscriberRecord>, StoreError>;
    /// One subscriber (any status) of one of the partner's templates;
    /// `None` for another partner's.
    async fn partner_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
    ) -> Result<Option<SubscriberRecord>, StoreError>;

    // ---- provisioning events (Xsi-Events)

    /// Events with `seq > after`, in `seq` order, at most `limit`.
    async fn events_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ProvisioningEvent>, StoreError>;
    /// The highest `seq` written so far (0: none).
    async fn last_event_seq(&self) -> Result<i64, StoreError>;
    /// Deletes events older than `before_at` (unix ms) whose `seq` is at
    /// most `up_to_seq`; returns how many.
    async fn prune_events(&self, before_at: i64, up_to_seq: i64) -> Result<u64, StoreError>;
    /// Inserts or replaces a subscription (its cursor never moves back).
    async fn put_event_subscription(&self, s: &EventSubscription) -> Result<(), StoreError>;
    /// Whether a subscription with this id was there.
    async fn delete_event_subscription(&self, id: &str) -> Result<bool, StoreError>;
    /// Every subscription, oldest first.
    async fn event_subscriptions(&self) -> Result<Vec<EventSubscription>, StoreError>;
    /// Moves a subscription's `acked_seq` forward (never back).
    async fn advance_event_cursor(&self, id: &str, acked_seq: i64) -> Result<(), StoreError>;

    // ---- single-use keys (XSI login tokens)

    /// Records `key` as used until `expires_at` (unix seconds): true the
    /// first time, false while it is recorded (whichever node asks).
    /// Keys expired at `now` are forgotten.
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError>;
}

/// A claim on due work: `owner` (a node id, `server.node_id`) holds the
/// rows it takes from `now` until `until` (unix ms). A worker that dies
/// leaves them leased until then; another worker takes them after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub now: i64,
    pub until: i64,
}

/// How an email delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Accepted by the relay (or written to the spool) with this Message-ID.
    Sent { message_id: String },
    /// Try again at `retry_at` (unix ms).
    Retry { error: String, retry_at: i64 },
    /// Permanent: not tried again.
    Failed { error: String },
}

// Data the store reads and writes, defined in `domain` (they are not
// SQL); re-exported so back-end code names them here.
pub use crate::commands::outbox::{OutboxEntry, OutboxState};
pub use crate::domain::activation::ActivationView;
pub use crate::domain::email::{EmailFilter, EmailRecord, EmailState};
pub use crate::domain::license::SubscriptionUsage;
pub use crate::domain::license::{HolderCursor, HolderRow};
pub use crate::domain::license_ledger::LicenseEvent;
pub use crate::domain::org_report::{ExistingOrgReport, OrgCommand, OrgLink, PartnerRoleEntry};
pub use crate::domain::subscriber_query::SubscriberQuery;

pub type SharedStore = Arc<dyn Store>;

/// Runs `work` as one unit of work on `store` (see [`Store::transact_dyn`])
/// and returns its typed result after the commit.
pub async fn transact<S, T, F>(store: &S, mut work: F) -> Result<T, StoreError>
where
    S: Store + ?Sized,
    T: Send + 'static,
    F: FnMut(&dyn tx::Tx) -> Result<T, StoreError> + Send + 'static,
{
    let done = store
        .transact_dyn(Box::new(move |tx| {
            work(tx).map(|t| Box::new(t) as Box<dyn Any + Send>)
        }))
        .await?;
    done.downcast::<T>()
        .map(|t| *t)
        .map_err(|_| StoreError::Database("a unit of work returned another type".into()))
}
