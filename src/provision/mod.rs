//! Provisioning: templates and credentials for the flow-through face, the
//! translation of parsed documents into one durable acceptance, and the
//! background delivery of outbox commands to the license core.

pub mod credentials;
pub mod verify_queue;
pub mod worker;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::activation::ActivationLinks;
use crate::domain::lifecycle::Rejection;
use crate::domain::subscriber::NewSubscriber;
use crate::domain::CustomerTemplate;
use crate::flowthrough::ParsedRequest;
use crate::orgs::ApprovalLinks;
use crate::store::{AcceptBatch, AcceptOutcome, OperationResult, SharedStore, StoreError};

pub use credentials::CredentialCache;

pub use crate::domain::now_millis;

/// Shared provisioning state: hot template index, verified credentials,
/// and a wake-up for the delivery worker.
pub struct Provisioning {
    store: SharedStore,
    templates: DashMap<String, Arc<CustomerTemplate>>,
    pub credentials: CredentialCache,
    /// Signalled after each acceptance that wrote commands.
    pub outbox_ready: Arc<Notify>,
    /// Org-attach approval links (None: 2017 without a notification).
    approvals: Option<Arc<ApprovalLinks>>,
    /// Activation and consent links (None: pending users get no email).
    activations: Option<Arc<ActivationLinks>>,
    /// The mailer's wake-up, signalled after an acceptance wrote emails.
    mail_wake: Option<Arc<Notify>>,
}

impl Provisioning {
    pub fn new(store: SharedStore) -> Arc<Provisioning> {
        Self::with_links(store, None, None, None)
    }

    /// With org-attach approval requests (`approvals`) and activation
    /// emails (`activations`), and the mailer woken through `mail_wake`
    /// after an acceptance wrote emails.
    pub fn with_links(
        store: SharedStore,
        approvals: Option<Arc<ApprovalLinks>>,
        activations: Option<Arc<ActivationLinks>>,
        mail_wake: Option<Arc<Notify>>,
    ) -> Arc<Provisioning> {
        Arc::new(Provisioning {
            store,
            templates: DashMap::new(),
            credentials: CredentialCache::new(),
            outbox_ready: Arc::new(Notify::new()),
            approvals,
            activations,
            mail_wake,
        })
    }

    /// The loaded templates of a partner (for pages naming its admin).
    pub fn templates_of_partner(&self, partner_id: &str) -> Vec<Arc<CustomerTemplate>> {
        let mut out: Vec<Arc<CustomerTemplate>> = self
            .templates
            .iter()
            .filter(|t| t.partner_id == partner_id)
            .map(|t| t.value().clone())
            .collect();
        out.sort_by(|a, b| a.provisioning_id.cmp(&b.provisioning_id));
        out
    }

    /// The approval links (the portal verifies tokens with its signer).
    pub fn approvals(&self) -> Option<&Arc<ApprovalLinks>> {
        self.approvals.as_ref()
    }

    /// The activation links (the portal verifies tokens with them).
    pub fn activations(&self) -> Option<&Arc<ActivationLinks>> {
        self.activations.as_ref()
    }

    /// Wakes the workers after a write outside `accept` (portal, admin).
    pub fn wake(&self, commands_written: usize, emails_enqueued: usize) {
        if commands_written > 0 {
            self.outbox_ready.notify_one();
        }
        if emails_enqueued > 0 {
            if let Some(wake) = &self.mail_wake {
                wake.notify_one();
            }
        }
    }

    /// Records a self-activation: one AddUser built from the user's
    /// BroadWorks profile (no email: the user enters and verifies one on
    /// the portal), committed like a flow-through document.
    pub async fn self_activate(
        &self,
        template: &CustomerTemplate,
        subscriber: crate::domain::subscriber::NewSubscriber,
        tracking_id: &str,
    ) -> Result<AcceptOutcome, StoreError> {
        let sent = Some(subscriber.user_id.as_str().to_string());
        let outcome = self
            .store
            .accept(AcceptBatch {
                template: template.clone(),
                tracking_id: tracking_id.to_string(),
                request_id: None,
                now: now_millis(),
                operations: vec![(
                    0,
                    crate::domain::subscriber::Operation::AddUser(NewSubscriber {
                        email: None,
                        ..subscriber
                    }),
                )],
                invalid: Vec::new(),
                sent_user_ids: vec![sent],
                approvals: None,
                activations: self.activations.clone(),
                self_activation: true,
            })
            .await?;
        self.wake(outcome.commands_written, outcome.emails_enqueued);
        Ok(outcome)
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
        // The AS correlates answers by the userId it sent; the store works
        // with the canonical form (domain lower-cased).
        let sent_ids: Vec<Option<String>> = parsed
            .operations
            .iter()
            .map(|op| op.user_id.clone())
            .collect();
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
                sent_user_ids: sent_ids,
                approvals: self.approvals.clone(),
                activations: self.activations.clone(),
                self_activation: false,
            })
            .await?;
        self.wake(outcome.commands_written, outcome.emails_enqueued);
        Ok(outcome)
    }
}
