//! The unit of work: `Store::transact` runs a use case's closure inside
//! one transaction and hands it a [`Tx`], which offers typed row
//! operations and nothing else. Every business decision (what to insert,
//! which command follows, which email goes out) is the caller's, in
//! `provision`; a back-end only maps rows.
//!
//! Methods take `&self`: a use case passes the one `&dyn Tx` down its
//! helpers without threading a mutable borrow through closures (a back-end
//! whose client needs `&mut` keeps it in a `RefCell`; a `Tx` never leaves
//! its thread).
//!
//! A closure may run more than once (a back-end may undo a batch and run
//! it again, see the SQLite writer, or retry a serialization failure), so
//! it must have no effect outside the `Tx`; its result reaches the caller
//! only after commit.

use std::any::Any;

use crate::commands::CommandEnvelope;
use crate::domain::activation::Activation;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::event::ProvisioningEvent;
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{
    OperationResult, OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus,
    TrunkFlags,
};
use crate::domain::organization::{ExistingOrganization, PartnerRole};
use crate::domain::CustomerTemplate;

use super::calling_rows::CallingRows;
use super::license_rows::LicenseRows;
use super::workspace_rows::WorkspaceRows;
use super::{OutboxEntry, OutboxState, StoreError};

/// How an organization came to be linked to its enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgOrigin {
    /// Created here for the enterprise's first subscriber.
    Created,
    /// An existing organization (same id) linked to the enterprise.
    Attached,
    /// Created here for a first subscriber whose email is not trusted, and
    /// not announced to the license core yet: the first email a user of
    /// the enterprise verifies decides whether the enterprise attaches to
    /// an existing organization instead (an unverified address must not).
    Pending,
}

impl OrgOrigin {
    pub const fn as_str(self) -> &'static str {
        match self {
            OrgOrigin::Created => "created",
            OrgOrigin::Attached => "attached",
            OrgOrigin::Pending => "pending",
        }
    }

    /// As stored: the `origin` column and the `pending` flag (a pending
    /// organization is a created one not yet announced).
    pub const fn columns(self) -> (&'static str, bool) {
        match self {
            OrgOrigin::Created => ("created", false),
            OrgOrigin::Attached => ("attached", false),
            OrgOrigin::Pending => ("created", true),
        }
    }

    /// From the stored columns (see [`OrgOrigin::columns`]).
    pub fn from_columns(origin: &str, pending: bool) -> Option<OrgOrigin> {
        match (origin, pending) {
            ("created", false) => Some(OrgOrigin::Created),
            ("created", true) => Some(OrgOrigin::Pending),
            ("attached", false) => Some(OrgOrigin::Attached),
            _ => None,
        }
    }
}

/// A part of a unit of work that can be undone alone (one operation of a
/// flow-through document). Opaque: only the back-end that made it reads it.
#[derive(Debug)]
pub struct Part(pub(crate) u64);

/// The row operations a use case may run inside one transaction (the
/// license core's are in [`LicenseRows`] and [`CallingRows`]).
pub trait Tx: LicenseRows + CallingRows + WorkspaceRows {
    // ---- parts

    /// Starts a part that [`Tx::undo_part`] can undo without touching what
    /// came before it. Parts do not nest.
    fn begin_part(&self) -> Result<Part, StoreError>;
    /// The part stands (its changes commit with the transaction).
    fn keep_part(&self, part: Part) -> Result<(), StoreError>;
    /// Undoes the part's changes. A back-end that cannot undo cheaply may
    /// instead fail the whole closure (it is then run again in a mode where
    /// it can): the caller passes the error on.
    fn undo_part(&self, part: Part) -> Result<(), StoreError>;
    /// The database abandoned the transaction (I/O error, disk full):
    /// nothing of this unit of work will stand.
    fn aborted(&self) -> bool;

    // ---- templates

    fn template(&self, provisioning_id: &str) -> Result<Option<CustomerTemplate>, StoreError>;

    // ---- subscribers

    fn subscriber_by_id(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError>;
    fn subscriber_by_user_id(&self, user_id: &str) -> Result<Option<SubscriberRecord>, StoreError>;
    /// Subscribers other than `except_id` holding `email` (compared
    /// without case) as an account does: not removed, and not still
    /// waiting to enter or verify it (an address from an untrusted
    /// template is nobody's until verified).
    fn subscribers_with_email(
        &self,
        email: &str,
        except_id: &str,
    ) -> Result<Vec<SubscriberRecord>, StoreError>;
    /// Whether a subscriber other than `except_id` holds `email` (without
    /// case) as [`Tx::subscribers_with_email`] counts it.
    fn email_taken(&self, email: &str, except_id: Option<&str>) -> Result<bool, StoreError>;
    /// Every subscriber of an organization (any status), in id order.
    fn subscribers_of_org(&self, org_id: &str) -> Result<Vec<SubscriberRecord>, StoreError>;
    fn insert_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError>;
    /// Replaces the stored row of `record.id` with `record`.
    fn update_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError>;
    /// Sets `status` (and `errors`) when the row is at `version` and in one
    /// of `from`; returns whether it was (compare-and-set: a newer change
    /// in between wins).
    fn set_status_if(
        &self,
        id: &str,
        version: i64,
        from: &[SubscriberStatus],
        to: SubscriberStatus,
        errors: &[SubscriberError],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Sets `errors` (and the status when `status` is given).
    fn set_errors(
        &self,
        id: &str,
        errors: &[SubscriberError],
        status: Option<SubscriberStatus>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Both off for a subscriber without stored flags.
    fn trunk_flags(&self, id: &str) -> Result<TrunkFlags, StoreError>;
    fn set_trunk_flags(&self, id: &str, flags: TrunkFlags) -> Result<(), StoreError>;

    // ---- enterprises' organizations

    /// The organization linked to a partner's enterprise, with its origin.
    fn organization_by_key(
        &self,
        partner_id: &str,
        key: &EnterpriseKey,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError>;
    /// Fails (unique constraint) when the enterprise has one already.
    fn insert_organization(
        &self,
        org: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        origin: OrgOrigin,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The organization's admin subscriber and its status, if it has one.
    fn org_admin(&self, org_id: &str) -> Result<Option<(String, SubscriberStatus)>, StoreError>;
    /// Makes `subscriber_id` the admin of a created organization that has
    /// none yet (compare-and-set: the first one wins; attached
    /// organizations never get one). Returns whether it did.
    fn set_org_admin_if_unset(&self, org_id: &str, subscriber_id: &str)
        -> Result<bool, StoreError>;
    /// Makes `to` the admin of the organization whose admin is `from`
    /// (compare-and-set: a change in between wins). Returns whether it did.
    fn replace_org_admin(&self, org_id: &str, from: &str, to: &str) -> Result<bool, StoreError>;
    /// The pending organization (see [`OrgOrigin::Pending`]) is announced:
    /// it is the enterprise's created organization from now on.
    fn settle_pending_organization(&self, org_id: &str) -> Result<(), StoreError>;
    /// The pending organization `from` gives way to `to` (an attached
    /// existing organization): its subscribers move to `to`, its row goes.
    fn replace_pending_organization(
        &self,
        from: &str,
        to: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The organization stops being its enterprise's: subscriber rows let
    /// go of it, then the link row goes.
    fn unlink_organization(&self, org_id: &str) -> Result<(), StoreError>;

    // ---- existing organizations (org attach)

    /// Existing organizations with a user holding `email`, each with
    /// whether it is linked to an enterprise already.
    fn orgs_with_user_email(&self, email: &str) -> Result<Vec<(String, bool)>, StoreError>;
    fn existing_org(&self, id: &str) -> Result<Option<ExistingOrganization>, StoreError>;
    /// Whether the organization (an existing one, attached or not) asks
    /// that its users get no emails; `false` for organizations created here.
    fn org_email_suppressed(&self, org_id: &str) -> Result<bool, StoreError>;
    /// The account holding `email` left the existing organization (moved
    /// to a subscriber elsewhere): its user row goes and the count drops.
    /// Returns whether the organization listed it.
    fn remove_existing_org_user(&self, org_id: &str, email: &str) -> Result<bool, StoreError>;
    /// The partner's role in the organization (`None` role when none).
    fn partner_role(&self, org_id: &str, partner_id: &str) -> Result<PartnerRole, StoreError>;
    fn grant_role(
        &self,
        org_id: &str,
        partner_id: &str,
        role: PartnerRole,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The partner holds no role in the organization any more: its row
    /// becomes `none` with `source` (a detach), whatever it was.
    fn revoke_role(
        &self,
        org_id: &str,
        partner_id: &str,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Whether an approval with this token MAC was recorded.
    fn approval_used(&self, signature: &str) -> Result<bool, StoreError>;
    fn record_approval(
        &self,
        signature: &str,
        org_id: &str,
        partner_id: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    // ---- activations

    fn activation(&self, subscriber_id: &str) -> Result<Option<Activation>, StoreError>;
    /// Inserts or replaces the subscriber's activation.
    fn put_activation(&self, activation: &Activation, now: i64) -> Result<(), StoreError>;

    // ---- outbox

    /// Inserts one command as pending, due at its `issued_at`.
    fn insert_command(&self, envelope: &CommandEnvelope) -> Result<(), StoreError>;

    // ---- provisioning events (Xsi-Events)

    /// Appends `event` to the event log (its `seq` is given on insert);
    /// it commits, or not, with the change it reports.
    fn append_event(&self, event: &ProvisioningEvent) -> Result<(), StoreError>;
    /// Whether any subscription exists (an event appended now could reach
    /// someone). A back-end for which the check costs more than the append
    /// answers true.
    fn events_wanted(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn command(&self, seq: i64) -> Result<Option<OutboxEntry>, StoreError>;
    /// A command's state alone (nothing decoded).
    fn command_state(&self, seq: i64) -> Result<Option<OutboxState>, StoreError>;
    /// Whether a command about the subscriber, of one of `kinds`
    /// (`Command::kind` names), is still pending.
    fn has_pending_commands(&self, subscriber_id: &str, kinds: &[&str])
        -> Result<bool, StoreError>;
    fn mark_delivered(&self, seq: i64, now: i64) -> Result<(), StoreError>;
    fn mark_failed(&self, seq: i64, error: &str) -> Result<(), StoreError>;
    /// Counts an attempt, sets when to try again and releases the lease.
    fn schedule_retry(&self, seq: i64, retry_at: i64, error: &str) -> Result<(), StoreError>;

    // ---- emails

    /// Writes an email as pending, due at `now`. `None` (nothing written)
    /// when one with the same dedupe key exists, whatever its state.
    fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError>;
    /// When the newest email of `kind` whose dedupe key starts with
    /// `prefix` was queued.
    fn last_email_with_key_prefix(
        &self,
        kind: EmailKind,
        prefix: &str,
    ) -> Result<Option<i64>, StoreError>;

    // ---- replays

    /// The stored answer of a document: (its tracking id, its lines).
    fn accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
    ) -> Result<Option<(String, Vec<OperationResult>)>, StoreError>;
    /// Stores a document's answer, or replaces the lines of the one stored
    /// under the same `request_id` (a replay that decided some operations
    /// again; the first tracking id stays).
    fn record_accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
        tracking_id: &str,
        results: &[OperationResult],
        now: i64,
    ) -> Result<(), StoreError>;
}

/// A unit of work as the `Store` trait carries it (type-erased so the
/// trait stays object-safe); see [`super::transact`].
pub type DynWork =
    Box<dyn FnMut(&dyn Tx) -> Result<Box<dyn Any + Send>, StoreError> + Send + 'static>;
