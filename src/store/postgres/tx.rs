//! The unit of work on PostgreSQL: a `Tx` over one database transaction.
//! `Tx` is synchronous (a use case is plain code), the driver is async: the
//! unit runs on a blocking thread and waits for each statement with the
//! runtime's `block_on` (one round trip each, as SQLite's calls are one
//! library call each).
//!
//! Parts are savepoints: a refused operation rolls back to its savepoint,
//! which also clears PostgreSQL's "transaction aborted" state after a
//! failed statement. A statement failing outside a part aborts the unit
//! (`aborted()`). A `Conflict` anywhere (another node changed the same
//! rows first) makes the whole unit run again, see `mod.rs`.

use std::cell::Cell;
use std::future::Future;

use deadpool_postgres::Transaction;
use tokio::runtime::Handle;

use super::{email, orgs, outbox, records, subscribers, tenancy};
use crate::commands::CommandEnvelope;
use crate::domain::activation::Activation;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{
    OperationResult, OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus,
    TrunkFlags,
};
use crate::domain::organization::{ExistingOrganization, PartnerRole};
use crate::domain::CustomerTemplate;
use crate::store::tx::{OrgOrigin, Part, Tx};
use crate::store::{OutboxEntry, StoreError};

pub(super) struct PgTx<'t, 'c> {
    pub(super) tx: &'t Transaction<'c>,
    pub(super) runtime: &'t Handle,
    /// A statement failed with a conflict: the unit must run again.
    pub(super) conflict: Cell<bool>,
    /// A statement failed outside a part: PostgreSQL refuses every further
    /// statement of this transaction.
    pub(super) aborted: Cell<bool>,
    /// Parts begun (savepoint names are per part, parts do not nest).
    parts: Cell<u64>,
    in_part: Cell<bool>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    pub(super) fn new(tx: &'t Transaction<'c>, runtime: &'t Handle) -> Self {
        PgTx {
            tx,
            runtime,
            conflict: Cell::new(false),
            aborted: Cell::new(false),
            parts: Cell::new(0),
            in_part: Cell::new(false),
        }
    }

    /// Waits for one statement and notes what its failure means.
    fn run<T>(
        &self,
        statement: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = self.runtime.block_on(statement);
        if let Err(e) = &result {
            if matches!(e, StoreError::Conflict(_)) {
                self.conflict.set(true);
            }
            if !self.in_part.get() {
                self.aborted.set(true);
            }
        }
        result
    }

    fn savepoint(&self, verb: &str, part: &Part) -> Result<(), StoreError> {
        let sql = format!("{verb} bwgate_part_{}", part.0);
        self.runtime
            .block_on(self.tx.batch_execute(&sql))
            .map_err(StoreError::from)
    }
}

impl Tx for PgTx<'_, '_> {
    fn begin_part(&self) -> Result<Part, StoreError> {
        let n = self.parts.get() + 1;
        self.parts.set(n);
        let part = Part(n);
        self.savepoint("SAVEPOINT", &part)?;
        self.in_part.set(true);
        Ok(part)
    }

    fn keep_part(&self, part: Part) -> Result<(), StoreError> {
        self.in_part.set(false);
        self.savepoint("RELEASE SAVEPOINT", &part)
    }

    fn undo_part(&self, part: Part) -> Result<(), StoreError> {
        self.in_part.set(false);
        self.savepoint("ROLLBACK TO SAVEPOINT", &part)?;
        self.savepoint("RELEASE SAVEPOINT", &part)
    }

    fn aborted(&self) -> bool {
        self.aborted.get()
    }

    fn template(&self, provisioning_id: &str) -> Result<Option<CustomerTemplate>, StoreError> {
        self.run(tenancy::template(self.tx, provisioning_id))
    }

    fn subscriber_by_id(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        self.run(subscribers::by_id(self.tx, id))
    }

    fn subscriber_by_user_id(&self, user_id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        self.run(subscribers::by_user_id(self.tx, user_id))
    }

    fn subscribers_with_email(
        &self,
        email: &str,
        except_id: &str,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.run(subscribers::with_email(self.tx, email, except_id))
    }

    fn email_taken(&self, email: &str, except_id: Option<&str>) -> Result<bool, StoreError> {
        self.run(subscribers::email_taken(self.tx, email, except_id))
    }

    fn subscribers_of_org(&self, org_id: &str) -> Result<Vec<SubscriberRecord>, StoreError> {
        self.run(subscribers::of_org(self.tx, org_id))
    }

    fn insert_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError> {
        self.run(subscribers::insert(self.tx, record, now))
    }

    fn update_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError> {
        self.run(subscribers::update(self.tx, record, now))
    }

    fn set_status_if(
        &self,
        id: &str,
        version: i64,
        from: &[SubscriberStatus],
        to: SubscriberStatus,
        errors: &[SubscriberError],
        now: i64,
    ) -> Result<bool, StoreError> {
        self.run(subscribers::set_status_if(
            self.tx, id, version, from, to, errors, now,
        ))
    }

    fn set_errors(
        &self,
        id: &str,
        errors: &[SubscriberError],
        status: Option<SubscriberStatus>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(subscribers::set_errors(self.tx, id, errors, status, now))
    }

    fn trunk_flags(&self, id: &str) -> Result<TrunkFlags, StoreError> {
        self.run(subscribers::trunk_flags(self.tx, id))
    }

    fn set_trunk_flags(&self, id: &str, flags: TrunkFlags) -> Result<(), StoreError> {
        self.run(subscribers::set_trunk_flags(self.tx, id, flags))
    }

    fn organization_by_key(
        &self,
        partner_id: &str,
        key: &EnterpriseKey,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
        self.run(subscribers::organization_by_key(self.tx, partner_id, key))
    }

    fn insert_organization(
        &self,
        org: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        origin: OrgOrigin,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(subscribers::insert_organization(
            self.tx,
            org,
            partner_id,
            provisioning_id,
            origin,
            now,
        ))
    }

    fn org_admin(&self, org_id: &str) -> Result<Option<(String, SubscriberStatus)>, StoreError> {
        self.run(subscribers::org_admin(self.tx, org_id))
    }

    fn set_org_admin_if_unset(&self, org_id: &str, subscriber_id: &str) -> Result<(), StoreError> {
        self.run(subscribers::set_org_admin_if_unset(
            self.tx,
            org_id,
            subscriber_id,
        ))
    }

    fn unlink_organization(&self, org_id: &str) -> Result<(), StoreError> {
        self.run(subscribers::unlink_organization(self.tx, org_id))
    }

    fn orgs_with_user_email(&self, email: &str) -> Result<Vec<(String, bool)>, StoreError> {
        self.run(orgs::with_user_email(self.tx, email))
    }

    fn existing_org(&self, id: &str) -> Result<Option<ExistingOrganization>, StoreError> {
        self.run(orgs::existing(self.tx, id))
    }

    fn partner_role(&self, org_id: &str, partner_id: &str) -> Result<PartnerRole, StoreError> {
        self.run(orgs::role(self.tx, org_id, partner_id))
    }

    fn grant_role(
        &self,
        org_id: &str,
        partner_id: &str,
        role: PartnerRole,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(orgs::grant_role(
            self.tx, org_id, partner_id, role, source, now,
        ))
    }

    fn approval_used(&self, signature: &str) -> Result<bool, StoreError> {
        self.run(orgs::approval_used(self.tx, signature))
    }

    fn record_approval(
        &self,
        signature: &str,
        org_id: &str,
        partner_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(orgs::record_approval(
            self.tx, signature, org_id, partner_id, now,
        ))
    }

    fn activation(&self, subscriber_id: &str) -> Result<Option<Activation>, StoreError> {
        self.run(records::activation(self.tx, subscriber_id))
    }

    fn put_activation(&self, activation: &Activation, now: i64) -> Result<(), StoreError> {
        self.run(records::put_activation(self.tx, activation, now))
    }

    fn insert_command(&self, envelope: &CommandEnvelope) -> Result<(), StoreError> {
        self.run(outbox::insert(self.tx, envelope))
    }

    fn command(&self, seq: i64) -> Result<Option<OutboxEntry>, StoreError> {
        self.run(outbox::entry(self.tx, seq))
    }

    fn has_pending_commands(&self, subscriber_id: &str) -> Result<bool, StoreError> {
        self.run(outbox::has_pending(self.tx, subscriber_id))
    }

    fn mark_delivered(&self, seq: i64, now: i64) -> Result<(), StoreError> {
        self.run(outbox::mark_delivered(self.tx, seq, now))
    }

    fn mark_failed(&self, seq: i64, error: &str) -> Result<(), StoreError> {
        self.run(outbox::mark_failed(self.tx, seq, error))
    }

    fn schedule_retry(&self, seq: i64, retry_at: i64, error: &str) -> Result<(), StoreError> {
        self.run(outbox::schedule_retry(self.tx, seq, retry_at, error))
    }

    fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError> {
        self.run(email::enqueue(self.tx, msg, now))
    }

    fn last_email_with_key_prefix(
        &self,
        kind: EmailKind,
        prefix: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.run(email::last_with_key_prefix(self.tx, kind, prefix))
    }

    fn accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
    ) -> Result<Option<(String, Vec<OperationResult>)>, StoreError> {
        self.run(records::accepted_request(
            self.tx,
            provisioning_id,
            request_id,
        ))
    }

    fn record_accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
        tracking_id: &str,
        results: &[OperationResult],
        now: i64,
    ) -> Result<(), StoreError> {
        self.run(records::record_accepted_request(
            self.tx,
            provisioning_id,
            request_id,
            tracking_id,
            results,
            now,
        ))
    }
}
