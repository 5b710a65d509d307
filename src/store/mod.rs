//! Durable storage. Only this module speaks SQL. Callers see the `Store`
//! trait with domain-level operations, so a PostgreSQL back-end can be
//! added beside SQLite without changing them.

pub mod private_files;
pub mod sqlite;

use async_trait::async_trait;
use std::sync::Arc;

use crate::commands::CommandEnvelope;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::organization::{ExistingOrganization, PartnerRole};
use crate::domain::subscriber::{Operation, OperationKind};
use crate::domain::{Cluster, CustomerTemplate, Package, Partner};
use crate::orgs::ApprovalClaim;

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
    /// Batches undone and run again with a savepoint per write because a
    /// write failed after changing rows (rare: see the SQLite writer).
    pub isolated_reruns: u64,
}

/// One flow-through document's valid operations, applied in one
/// transaction (each operation in its own savepoint: one failing operation
/// never undoes another).
#[derive(Debug, Clone)]
pub struct AcceptBatch {
    pub template: CustomerTemplate,
    pub tracking_id: String,
    /// The AS's `requestId`: a second document with the same id for the same
    /// template is a replay and gets the first answer back.
    pub request_id: Option<String>,
    /// Unix milliseconds.
    pub now: i64,
    /// Valid operations with their index in the document.
    pub operations: Vec<(usize, Operation)>,
    /// Lines for operations that failed validation, stored with the rest so
    /// a replay answers exactly as the first time.
    pub invalid: Vec<OperationResult>,
    /// Every operation's userId as the AS sent it, by index: answers echo
    /// it (the AS correlates on it) while the store keys the canonical form.
    pub sent_user_ids: Vec<Option<String>>,
    /// How to write org-attach approval requests (link base, token signer,
    /// notification window). `None`: a 2017 sends no notification.
    pub approvals: Option<Arc<crate::orgs::ApprovalLinks>>,
    /// How to write activation and consent links for new pending
    /// subscribers. `None`: the activation starts without an email.
    pub activations: Option<Arc<crate::activation::ActivationLinks>>,
    /// The document comes from the portal's self-activation (one AddUser
    /// from the user's BroadWorks profile, without an email): the new
    /// subscriber's activation is a self-activation.
    pub self_activation: bool,
}

/// The answer for one operation of a document, as stored for replays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    pub index: usize,
    pub operation: OperationKind,
    pub user_id: Option<String>,
    /// Status on success (`provisioning`, `pending_email_input`, …).
    pub status: Option<SubscriberStatus>,
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
}

impl OperationResult {
    pub fn accepted(
        index: usize,
        operation: OperationKind,
        user_id: &UserId,
        status: SubscriberStatus,
    ) -> Self {
        OperationResult {
            index,
            operation,
            user_id: Some(user_id.as_str().to_string()),
            status: Some(status),
            error_code: None,
            error_message: None,
        }
    }

    pub fn rejected(
        index: usize,
        operation: OperationKind,
        user_id: Option<String>,
        rejection: &Rejection,
    ) -> Self {
        OperationResult {
            index,
            operation,
            user_id,
            status: None,
            error_code: Some(rejection.code.code()),
            error_message: Some(rejection.message().to_string()),
        }
    }
}

/// What `accept` did with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptOutcome {
    /// Every operation's line, ordered by index.
    pub results: Vec<OperationResult>,
    /// The tracking id of the first acceptance when this was a replay.
    pub replay_of: Option<String>,
    /// Commands written to the outbox by this call.
    pub commands_written: usize,
    /// Emails written to the email outbox by this call (wake the mailer).
    pub emails_enqueued: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    Pending,
    Delivered,
    Failed,
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub seq: i64,
    pub envelope: CommandEnvelope,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// One change of the in-process license core's ledger: the subscriber's
/// licenses become exactly `licenses`, once per idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseChange {
    pub idempotency_key: String,
    pub subscriber_id: String,
    pub licenses: Vec<String>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Permanent: the command failed; the subscriber goes to `error`.
    Rejected {
        error_code: u32,
        description: String,
    },
    /// Try again at `retry_at` (unix ms).
    Retry {
        error: String,
        retry_at: i64,
    },
}

/// One license change made by the in-process license core (audit ledger).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseEvent {
    pub idempotency_key: String,
    pub subscriber_id: String,
    pub license: String,
    /// `grant` or `revoke`.
    pub action: String,
    pub at: i64,
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
    // ---- flow-through provisioning

    /// Applies a document's operations (see `AcceptBatch`). A replayed
    /// `request_id` changes nothing and returns the stored lines. Returns
    /// only after the transaction with the state changes and their outbox
    /// commands has committed.
    async fn accept(&self, batch: AcceptBatch) -> Result<AcceptOutcome, StoreError>;
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
    /// Records a delivery attempt's outcome and its effect on the
    /// subscriber (provisioned / error with errors[]), in one transaction.
    async fn complete_command(
        &self,
        seq: i64,
        outcome: DeliveryOutcome,
        now: i64,
    ) -> Result<(), StoreError>;
    /// `complete_command` for several commands in one transaction (all or
    /// nothing): a delivery pass settles a run of one enterprise's
    /// commands with one commit instead of one each.
    async fn complete_commands(
        &self,
        outcomes: Vec<(i64, DeliveryOutcome)>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Counts of outbox rows by state.
    async fn outbox_counts(&self) -> Result<Vec<(OutboxState, u64)>, StoreError>;

    // ---- in-process license core ledger

    /// Applies a license change at most once per idempotency key: the
    /// subscriber's licenses become exactly `licenses` (empty = revoke all).
    /// Returns false when the key was applied before (nothing changed).
    async fn apply_licenses(
        &self,
        idempotency_key: &str,
        subscriber_id: &str,
        licenses: &[String],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// `apply_licenses` for several changes, in order, in one transaction
    /// (all or nothing).
    async fn apply_license_changes(
        &self,
        changes: Vec<LicenseChange>,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn licenses(&self, subscriber_id: &str) -> Result<Vec<String>, StoreError>;
    async fn license_events(&self, subscriber_id: &str) -> Result<Vec<LicenseEvent>, StoreError>;

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
    /// Grants the claim's partner `FullAdmin` on the claim's organization,
    /// once per token (by its MAC).
    async fn approve_org(
        &self,
        claim: &ApprovalClaim,
        now: i64,
    ) -> Result<ApproveOutcome, StoreError>;
    /// Detaches an enterprise from its attached organization in one
    /// transaction: removes its subscribers and pending users (with
    /// `RemoveSubscriber` for those the core knows and
    /// `DiscardPendingSubscriber` for pending ones), then the link, then
    /// emits `DetachOrganization`.
    async fn detach_enterprise(
        &self,
        partner_id: &str,
        enterprise_key: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<DetachOutcome, StoreError>;

    // ---- activation portal (untrusted email, consent, self-activation)

    /// A subscriber with its activation, if it has one.
    async fn activation(&self, subscriber_id: &str) -> Result<Option<ActivationView>, StoreError>;
    /// One step of a user on the portal, in one transaction with the
    /// emails and commands it causes. `Ok(Err(_))` is a refusal; a wrong
    /// code is still counted (committed) when it is refused.
    async fn activation_step(
        &self,
        step: ActivationStep,
    ) -> Result<Result<ActivationView, Rejection>, StoreError>;
    /// An admin's "retry activation": a new link (older ones stop working),
    /// sent to `email` (or the address on record); for a consent, the
    /// consent email again.
    async fn renew_activation(
        &self,
        links: Arc<crate::activation::ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        now: i64,
    ) -> Result<Result<ActivationView, Rejection>, StoreError>;

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
    /// A partner admin deletes a subscriber: the partial deletion of
    /// `DeleteUser`, with `RemoveSubscriber` when the license core knew it,
    /// in one transaction.
    async fn partner_delete_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError>;
    /// A partner admin changes a subscriber's package, like a `ModifyUser`
    /// package change (`ChangePackage`; a provisioned subscriber goes to
    /// `updating`), in one transaction.
    async fn partner_change_package(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        package: Package,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError>;
}

/// Which subscribers `Store::partner_subscribers` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberQuery {
    pub partner_id: String,
    /// Only these statuses; empty: every status but `removed`.
    pub statuses: Vec<SubscriberStatus>,
    /// Leave out `provisioned` subscribers.
    pub exclude_provisioned: bool,
    /// Only this template's subscribers.
    pub provisioning_id: Option<String>,
    /// Keyset cursor: only subscribers whose id sorts after this one.
    pub after: Option<String>,
    pub limit: usize,
}

/// What a partner admin's change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    pub subscriber: SubscriberRecord,
    /// Commands written to the outbox (wake the delivery worker).
    pub commands_written: usize,
}

/// A subscriber and its activation, after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationView {
    pub subscriber: SubscriberRecord,
    pub activation: crate::domain::activation::Activation,
    /// Emails and commands the step wrote (to wake their workers).
    pub emails_enqueued: usize,
    pub commands_written: usize,
}

/// What the user did on the portal, with the link's claim.
#[derive(Debug, Clone)]
pub struct ActivationStep {
    pub links: Arc<crate::activation::ActivationLinks>,
    pub claim: crate::activation::ActivationClaim,
    pub action: ActivationAction,
    /// The portal request's TrackingID (commands' idempotency keys).
    pub tracking_id: String,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationAction {
    /// An email entered (already syntax-checked): a code is emailed to it
    /// (made with the server key, see `ActivationLinks::code_secret`), its
    /// keyed hash stored.
    SubmitEmail { email: String },
    /// A code typed in (or from the emailed link).
    VerifyCode { code: String },
    /// Consent to move the email from the other account.
    Consent,
}

/// The link of an existing organization to an enterprise.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgLink {
    pub partner_id: String,
    pub enterprise_key: String,
    pub provisioning_id: String,
    pub linked_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerRoleEntry {
    pub partner_id: String,
    pub role: PartnerRole,
    /// `attach` | `approval`.
    pub source: String,
    pub updated_at: i64,
}

/// `Store::existing_org`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingOrgReport {
    pub organization: ExistingOrganization,
    pub link: Option<OrgLink>,
    pub partner_roles: Vec<PartnerRoleEntry>,
    /// `OrgAttachApproval` emails about this organization, newest first.
    pub approval_emails: Vec<EmailRecord>,
    /// Outbox commands naming this organization, oldest first.
    pub commands: Vec<OrgCommand>,
}

/// An outbox command about an organization (`GET /admin/v1/organizations/{id}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgCommand {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub envelope: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    /// The partner is now full admin of the organization.
    Approved { org_name: String },
    /// This token was used before; nothing changed.
    AlreadyUsed,
    /// The organization is gone; nothing changed.
    UnknownOrg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachOutcome {
    /// The enterprise has no organization.
    NoOrganization,
    /// Its organization was created here, not attached: nothing to detach.
    NotAttached {
        org_id: String,
    },
    /// The partner holds no admin role in the organization.
    NotAdmin {
        org_id: String,
    },
    Detached(DetachReport),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetachReport {
    pub org_id: String,
    /// Workspaces removed (the gateway has none yet: always 0).
    pub workspaces_removed: usize,
    /// Subscribers (provisioning, provisioned, updating, error) removed.
    pub subscribers_removed: usize,
    /// Pending users (pending_*) removed.
    pub pending_users_removed: usize,
    /// Commands written, in order (`RemoveSubscriber` /
    /// `DiscardPendingSubscriber`…, `DetachOrganization`).
    pub commands: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    Pending,
    Sent,
    Failed,
}

impl EmailState {
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailState::Pending => "pending",
            EmailState::Sent => "sent",
            EmailState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<EmailState> {
        [EmailState::Pending, EmailState::Sent, EmailState::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One email outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub id: i64,
    pub message: EmailMessage,
    pub state: EmailState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// Random, fixed at enqueue: the left part of the Message-ID.
    pub message_token: String,
    /// The Message-ID header as sent.
    pub message_id: Option<String>,
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

/// Which emails `Store::emails` returns (unset fields match everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailFilter {
    pub subscriber_id: Option<String>,
    pub kind: Option<EmailKind>,
    pub state: Option<EmailState>,
}

pub type SharedStore = Arc<dyn Store>;
