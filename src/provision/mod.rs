//! Provisioning: templates and credentials for the flow-through face, the
//! translation of parsed documents into one durable acceptance, and the
//! background delivery of outbox commands to the license core.

pub mod credentials;
pub mod worker;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::domain::lifecycle::Rejection;
use crate::domain::CustomerTemplate;
use crate::flowthrough::ParsedRequest;
use crate::store::{AcceptBatch, AcceptOutcome, OperationResult, SharedStore, StoreError};

pub use credentials::CredentialCache;

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Shared provisioning state: hot template index, verified credentials,
/// and a wake-up for the delivery worker.
pub struct Provisioning {
    store: SharedStore,
    templates: DashMap<String, Arc<CustomerTemplate>>,
    pub credentials: CredentialCache,
    /// Signalled after each acceptance that wrote commands.
    pub outbox_ready: Arc<Notify>,
}

impl Provisioning {
    pub fn new(store: SharedStore) -> Arc<Provisioning> {
        Arc::new(Provisioning {
            store,
            templates: DashMap::new(),
            credentials: CredentialCache::new(),
            outbox_ready: Arc::new(Notify::new()),
        })
    }

    /// Loads every template into the index (at start).
    pub async fn load_templates(&self) -> Result<usize, StoreError> {
        let all = self.store.templates().await?;
        let n = all.len();
        for t in all {
            self.templates
                .insert(t.provisioning_id.clone(), Arc::new(t));
        }
        Ok(n)
    }

    /// The template for a provisioningId: from the index, else the store.
    pub async fn template(&self, id: &str) -> Result<Option<Arc<CustomerTemplate>>, StoreError> {
        if let Some(t) = self.templates.get(id) {
            return Ok(Some(t.clone()));
        }
        if !crate::domain::template::is_valid_provisioning_id(id) {
            return Ok(None);
        }
        let found = self.store.template(id).await?.map(Arc::new);
        if let Some(t) = &found {
            self.templates.insert(id.to_string(), t.clone());
        }
        Ok(found)
    }

    /// Records a parsed document: every valid operation in one transaction
    /// with its outbox commands; invalid ones answered with their error.
    /// Returns after the commit.
    pub async fn accept(
        &self,
        template: &CustomerTemplate,
        parsed: ParsedRequest,
        tracking_id: &str,
    ) -> Result<AcceptOutcome, StoreError> {
        let mut operations = Vec::with_capacity(parsed.operations.len());
        let mut invalid = Vec::new();
        for (index, op) in parsed.operations.into_iter().enumerate() {
            match op.result {
                Ok(operation) => operations.push((index, operation)),
                Err(field_error) => invalid.push(OperationResult::rejected(
                    index,
                    op.kind,
                    op.user_id,
                    &Rejection::new(field_error.code, field_error.to_string()),
                )),
            }
        }
        let outcome = self
            .store
            .accept(AcceptBatch {
                template: template.clone(),
                tracking_id: tracking_id.to_string(),
                request_id: parsed.request_id,
                now: now_millis(),
                operations,
                invalid,
            })
            .await?;
        if outcome.commands_written > 0 {
            self.outbox_ready.notify_one();
        }
        Ok(outcome)
    }
}
