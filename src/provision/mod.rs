//! The use cases. Every write a face makes goes through [`Provisioning`]:
//! each method runs one use case as one unit of work
//! ([`crate::store::transact`]) and then wakes the workers for the
//! commands and emails it wrote. The use cases themselves are plain
//! functions of a [`Tx`](crate::store::tx::Tx), one file each: `accept`
//! (flow-through documents, with the org attach), `activation` (the
//! portal's steps, consent, renewal), `orgs` (approve, detach), `partner`
//! (partner admins' actions), `delivery` (what a delivery outcome does);
//! `change` and `emit` are shared by them. Also here: templates and
//! credentials for the flow-through face and the delivery worker.

pub mod accept;
mod accounts;
pub mod activation;
mod admin;
mod change;
pub mod credentials;
pub mod delivery;
mod device_codes;
pub mod devices;
mod emit;
mod error;
pub(crate) mod events;
pub mod orgs;
pub mod partner;
mod placement;
pub mod queries;
pub mod tenancy;
#[cfg(test)]
pub(crate) mod testing;
pub mod verify_queue;
pub mod worker;
pub mod workspaces;

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::Notify;

use crate::activation::ActivationLinks;
use crate::domain::lifecycle::{OperationResult, Rejection};
use crate::domain::organization::ExistingOrganization;
use crate::domain::subscriber::NewSubscriber;
use crate::domain::workspace::WorkspaceRecord;
use crate::domain::{CustomerTemplate, ErrorCode, Package};
use crate::flowthrough::ParsedRequest;
use crate::orgs::{ApprovalClaim, ApprovalLinks};
use crate::store::{transact, ActivationView, SharedStore, StoreError};

pub use accept::{AcceptBatch, AcceptOutcome};
pub use activation::{ActivationAction, ActivationStep, Retry};
pub use delivery::DeliveryOutcome;
pub use error::DataError;
pub use orgs::{ApproveOutcome, DetachOutcome, DetachReport};
pub use partner::AdminChange;
pub use queries::Queries;

pub use credentials::CredentialCache;

pub use crate::domain::now_millis;

/// A new row id. Time-ordered (UUIDv7): new rows land at the right edge of
/// the primary-key and foreign-key B-trees instead of on a random page
/// each, which is most of the writer's page writes under load.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Shared provisioning state: hot template index, verified credentials,
/// and a wake-up for the delivery worker.
pub struct Provisioning {
    store: SharedStore,
    templates: DashMap<String, Arc<CustomerTemplate>>,
    pub credentials: CredentialCache,
    /// Signalled after each acceptance that wrote commands.
    pub outbox_ready: Arc<Notify>,
    /// Signalled after every write a face reports (it may have appended
    /// provisioning events): the Xsi-Events reader looks at once.
    pub events_ready: Arc<Notify>,
    /// Org-attach approval links (None: 2017 without a notification).
    approvals: Option<Arc<ApprovalLinks>>,
    /// Activation and consent links (None: pending users get no email).
    activations: Option<Arc<ActivationLinks>>,
    /// The mailer's wake-up, signalled after an acceptance wrote emails.
    mail_wake: Option<Arc<Notify>>,
    /// Bumped when another node changed partners or templates.
    tenancy: Arc<tenancy::TenancyGeneration>,
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
            tenancy: Arc::default(),
            credentials: CredentialCache::new(),
            outbox_ready: Arc::new(Notify::new()),
            events_ready: Arc::new(Notify::new()),
            approvals,
            activations,
            mail_wake,
        })
    }

    /// `provisioning_id` is one of the partner's templates, or 9003.
    pub fn partner_template(
        &self,
        partner_id: &str,
        provisioning_id: &str,
    ) -> Result<(), Rejection> {
        let own = self
            .templates
            .get(provisioning_id)
            .is_some_and(|t| t.partner_id == partner_id);
        if own {
            return Ok(());
        }
        Err(Rejection::new(
            ErrorCode::UnknownProvisioningId,
            format!(
                "provisioningId '{}' is not one of your templates",
                provisioning_id.chars().take(64).collect::<String>()
            ),
        ))
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

    /// Uses up a single-use key (an XSI login token's id) until
    /// `expires_at` (unix seconds): true the first time, false after,
    /// whichever node is asked (the store keeps it).
    pub async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, DataError> {
        Ok(self
            .store
            .use_once(key, expires_at, now_millis() / 1000)
            .await?)
    }

    /// Wakes the workers after a write outside `accept` (portal, admin).
    pub fn wake(&self, commands_written: usize, emails_enqueued: usize) {
        self.events_ready.notify_one();
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
    ) -> Result<AcceptOutcome, DataError> {
        let operation = crate::domain::subscriber::Operation::AddUser(NewSubscriber {
            email: None,
            ..subscriber
        });
        self.accept_one(template, operation, tracking_id, true)
            .await
    }

    /// One operation for a subscriber of `template` from another face (XSI
    /// assigning or removing the service), committed like a flow-through
    /// document of one operation.
    pub async fn one_operation(
        &self,
        template: &CustomerTemplate,
        operation: crate::domain::subscriber::Operation,
        tracking_id: &str,
    ) -> Result<AcceptOutcome, DataError> {
        self.accept_one(template, operation, tracking_id, false)
            .await
    }

    /// A document of one operation (a self-activation's carries no approval
    /// links: its AddUser has no email to attach on).
    async fn accept_one(
        &self,
        template: &CustomerTemplate,
        operation: crate::domain::subscriber::Operation,
        tracking_id: &str,
        self_activation: bool,
    ) -> Result<AcceptOutcome, DataError> {
        let sent = Some(operation.user_id().as_str().to_string());
        let outcome = accept::run(
            &*self.store,
            AcceptBatch {
                template: template.clone(),
                tracking_id: tracking_id.to_string(),
                request_id: None,
                now: now_millis(),
                operations: vec![(0, operation)],
                invalid: Vec::new(),
                sent_user_ids: vec![sent],
                approvals: if self_activation {
                    None
                } else {
                    self.approvals.clone()
                },
                activations: self.activations.clone(),
                self_activation,
            },
        )
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
    pub async fn template(&self, id: &str) -> Result<Option<Arc<CustomerTemplate>>, DataError> {
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

    /// The template for a provisioningId if it accepts provisioning: a
    /// disabled one (removed from the configuration) is `None`, like an
    /// unknown one. Reads and activation settings use [`Self::template`].
    pub async fn active_template(
        &self,
        id: &str,
    ) -> Result<Option<Arc<CustomerTemplate>>, DataError> {
        Ok(self.template(id).await?.filter(|t| !t.is_disabled()))
    }

    /// Records a parsed document: every valid operation in one transaction
    /// with its outbox commands; invalid ones answered with their error.
    /// Returns after the commit.
    pub async fn accept(
        &self,
        template: &CustomerTemplate,
        parsed: ParsedRequest,
        tracking_id: &str,
    ) -> Result<AcceptOutcome, DataError> {
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
        let outcome = accept::run(
            &*self.store,
            AcceptBatch {
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
            },
        )
        .await?;
        self.wake(outcome.commands_written, outcome.emails_enqueued);
        Ok(outcome)
    }

    /// One step of a user on the portal, with the emails and commands it
    /// causes. `Ok(Err(_))` is a refusal; a wrong code is still counted
    /// (committed) when it is refused.
    pub async fn activation_step(
        &self,
        step: ActivationStep,
    ) -> Result<Result<ActivationView, Rejection>, DataError> {
        let approvals = self.approvals.clone();
        let view = transact(&*self.store, move |tx| {
            activation::step(tx, &step, approvals.as_deref())
        })
        .await?;
        if let Ok(v) = &view {
            self.wake(v.commands_written, v.emails_enqueued);
        }
        Ok(view)
    }

    /// "Retry activation" (see [`activation::retry`]): a new link for a
    /// waiting user (older ones stop working), sent to `email` (or the
    /// address on record; for a consent, the consent email again); a user
    /// in `error` starts again.
    pub async fn retry_activation(
        &self,
        links: Arc<ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        send_email: bool,
        now: i64,
    ) -> Result<Result<Retry, Rejection>, DataError> {
        let id = subscriber_id.to_string();
        let retry = transact(&*self.store, move |tx| {
            activation::retry(tx, &links, &id, email.clone(), send_email, now)
        })
        .await?;
        if let Ok(r) = &retry {
            self.wake(r.commands_written, r.emails_enqueued);
        }
        Ok(retry)
    }

    /// An organization's admin approves the partner (the emailed link).
    pub async fn approve_org(
        &self,
        claim: &ApprovalClaim,
        now: i64,
    ) -> Result<ApproveOutcome, DataError> {
        let claim = claim.clone();
        Ok(transact(&*self.store, move |tx| orgs::approve(tx, &claim, now)).await?)
    }

    /// The operator imports (inserts or replaces) existing organizations,
    /// all or nothing; their links and partner roles are kept.
    pub async fn upsert_existing_orgs(
        &self,
        orgs: Vec<ExistingOrganization>,
    ) -> Result<(), DataError> {
        Ok(self.store.upsert_existing_orgs(orgs).await?)
    }

    /// The operator detaches an enterprise from its attached organization.
    pub async fn detach_enterprise(
        &self,
        partner_id: &str,
        enterprise_key: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<DetachOutcome, DataError> {
        let (p, k, t) = (
            partner_id.to_string(),
            enterprise_key.to_string(),
            tracking_id.to_string(),
        );
        let outcome = transact(&*self.store, move |tx| orgs::detach(tx, &p, &k, &t, now)).await?;
        if let DetachOutcome::Detached(report) = &outcome {
            self.wake(report.commands.len(), 0);
        }
        Ok(outcome)
    }

    /// The operator asks for device activation codes for users of
    /// `org_id` (all or nothing); `Ok(Ok(n))`: `n` commands sent to the
    /// license core.
    pub async fn request_device_codes(
        &self,
        org_id: &str,
        requests: Vec<devices::DeviceCodeRequest>,
        now: i64,
    ) -> Result<Result<usize, crate::domain::Refusal>, DataError> {
        let org = org_id.to_string();
        let tracking_id = format!("BWG_DEVICES_{}", new_id());
        let outcome = transact(&*self.store, move |tx| {
            devices::request(tx, &org, &requests, &tracking_id, now)
        })
        .await?;
        if let Ok(n) = &outcome {
            self.wake(*n, 0);
        }
        Ok(outcome)
    }

    /// A partner admin deletes a subscriber (`DeleteUser`'s partial deletion).
    pub async fn partner_delete_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, DataError> {
        self.partner_action(
            partner_id,
            subscriber_id,
            tracking_id,
            move |tx, p, id, t| partner::delete(tx, p, id, t, now),
        )
        .await
    }

    /// A partner admin changes a subscriber's package.
    pub async fn partner_change_package(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        package: Package,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, DataError> {
        self.partner_action(
            partner_id,
            subscriber_id,
            tracking_id,
            move |tx, p, id, t| partner::change_package(tx, p, id, package, t, now),
        )
        .await
    }

    /// A partner admin makes a subscriber its organization's admin.
    pub async fn partner_make_admin(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, DataError> {
        self.partner_action(
            partner_id,
            subscriber_id,
            tracking_id,
            move |tx, p, id, t| partner::make_admin(tx, p, id, t, now),
        )
        .await
    }

    /// A partner provisions a workspace (`new.provisioning_id` must be one
    /// of its templates, else 9003).
    pub async fn partner_create_workspace(
        &self,
        partner_id: &str,
        new: workspaces::NewWorkspace,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<WorkspaceRecord, Rejection>, DataError> {
        if let Err(r) = self.partner_template(partner_id, &new.provisioning_id) {
            return Ok(Err(r));
        }
        let (p, t) = (partner_id.to_string(), tracking_id.to_string());
        self.workspace_change(move |tx| workspaces::create(tx, &p, &new, &t, now))
            .await
    }

    /// A partner changes its workspace `id`'s user id, number or extension.
    pub async fn partner_update_workspace(
        &self,
        partner_id: &str,
        id: &str,
        change: workspaces::WorkspaceChange,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<WorkspaceRecord, Rejection>, DataError> {
        let (p, i, t) = (
            partner_id.to_string(),
            id.to_string(),
            tracking_id.to_string(),
        );
        self.workspace_change(move |tx| workspaces::update(tx, &p, &i, &change, &t, now))
            .await
    }

    /// A partner removes its workspace `id`.
    pub async fn partner_remove_workspace(
        &self,
        partner_id: &str,
        id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<WorkspaceRecord, Rejection>, DataError> {
        let (p, i, t) = (
            partner_id.to_string(),
            id.to_string(),
            tracking_id.to_string(),
        );
        self.workspace_change(move |tx| workspaces::remove(tx, &p, &i, &t, now))
            .await
    }

    /// The partner's workspace `id` (removed ones too).
    pub async fn partner_workspace(
        &self,
        partner_id: &str,
        id: &str,
    ) -> Result<Option<WorkspaceRecord>, DataError> {
        let id = id.to_string();
        let found = transact(&*self.store, move |tx| tx.workspace(&id)).await?;
        Ok(found.filter(|w| w.partner_id == partner_id))
    }

    async fn workspace_change<F>(
        &self,
        change: F,
    ) -> Result<Result<WorkspaceRecord, Rejection>, DataError>
    where
        F: FnMut(
                &dyn crate::store::tx::Tx,
            ) -> Result<Result<WorkspaceRecord, Rejection>, StoreError>
            + Send
            + 'static,
    {
        let before = transact(&*self.store, change).await?;
        if before.is_ok() {
            self.wake(1, 0);
        }
        Ok(before)
    }

    /// One partner admin action as a unit of work (partner, subscriber,
    /// tracking id), waking the delivery worker for what it wrote.
    async fn partner_action<F>(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        action: F,
    ) -> Result<Result<AdminChange, Rejection>, DataError>
    where
        F: Fn(
                &dyn crate::store::tx::Tx,
                &str,
                &str,
                &str,
            ) -> Result<Result<AdminChange, Rejection>, StoreError>
            + Send
            + 'static,
    {
        let (p, id, t) = (
            partner_id.to_string(),
            subscriber_id.to_string(),
            tracking_id.to_string(),
        );
        let change = transact(&*self.store, move |tx| action(tx, &p, &id, &t)).await?;
        if let Ok(c) = &change {
            self.wake(c.commands_written, 0);
        }
        Ok(change)
    }
}
