//! Durable storage. Only this module speaks SQL. Callers see the `Store`
//! trait with domain-level operations, so a PostgreSQL back-end can be
//! added beside SQLite without changing them.

pub mod sqlite;

use async_trait::async_trait;
use std::sync::Arc;

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
    /// The store is closed (shutdown in progress) or its writer died.
    #[error("store is closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(_) | StoreError::Closed)
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
    async fn partner(&self, id: &str) -> Result<Option<Partner>, StoreError>;
    /// Cheap round trip through reader and writer paths, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Wait until every write queued so far is committed.
    async fn flush(&self) -> Result<(), StoreError>;
    /// Flush, stop accepting writes and release the database.
    async fn close(&self) -> Result<(), StoreError>;
    fn stats(&self) -> StoreStats;
    /// Short name for logs and metrics (`sqlite`, `postgres`).
    fn backend_name(&self) -> &'static str;
}

pub type SharedStore = Arc<dyn Store>;
