//! The unit of work on PostgreSQL: a `Tx` over one database transaction,
//! which a writer lane shares between the units of a batch (`lane.rs`).
//! `Tx` is synchronous (a use case is plain code), the driver is async: the
//! lane waits for each statement with its own runtime's `block_on`.
//!
//! Parts are savepoints: a refused operation rolls back to its savepoint,
//! which also clears PostgreSQL's "transaction aborted" state after a
//! failed statement. A statement failing outside a part aborts the unit
//! (`aborted()`). A `Conflict` anywhere (another node changed the same
//! rows first) makes the whole batch run again.
//!
//! Two things wait instead of costing a round trip each: savepoint
//! statements go out in one message with the next statement, and commands
//! are written once per batch, just before the commit, under their
//! enterprise locks (`Batch`).

use std::cell::{Cell, RefCell};
use std::future::Future;

use deadpool_postgres::{GenericClient, Transaction};
use tokio::runtime::Runtime;

use super::{email, events, licenses, orgs, outbox, records, subscribers, tenancy};
use crate::commands::CommandEnvelope;
use crate::domain::activation::Activation;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::event::ProvisioningEvent;
use crate::domain::ids::EnterpriseKey;
use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::Holding;
use crate::domain::license::LicenseSubscription;
use crate::domain::license_ledger::LicenseEvent;
use crate::domain::lifecycle::{
    OperationResult, OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus,
    TrunkFlags,
};
use crate::domain::organization::{ExistingOrganization, PartnerRole};
use crate::domain::CustomerTemplate;
use crate::store::license_rows::{HolderIds, HolderState, KeyOutcome, LicenseRows};
use crate::store::tx::{OrgOrigin, Part, Tx};
use crate::store::{OutboxEntry, OutboxState, StoreError};

/// What the units of one batch leave for later in their transaction.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Savepoint statements not sent yet (they go with the next one).
    simple: RefCell<String>,
    /// Whether `simple` undoes something (then it must run before commit;
    /// a pending release or savepoint alone changes nothing).
    simple_undoes: Cell<bool>,
    /// Rows written once, just before the commit.
    waiting: RefCell<Waiting>,
}

/// What the units of a batch wrote that goes to the database at its end,
/// in the order they wrote it.
#[derive(Debug, Default)]
struct Waiting {
    commands: Vec<CommandEnvelope>,
    events: Vec<ProvisioningEvent>,
}

/// How much was waiting at some point (an undo drops what came after).
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    commands: usize,
    events: usize,
}

impl Waiting {
    fn mark(&self) -> Mark {
        Mark {
            commands: self.commands.len(),
            events: self.events.len(),
        }
    }

    fn truncate(&mut self, mark: Mark) {
        self.commands.truncate(mark.commands);
        self.events.truncate(mark.events);
    }
}

impl Batch {
    /// Queues a savepoint statement (sent with the next statement).
    pub(super) fn queue(&self, sql: &str) {
        let mut simple = self.simple.borrow_mut();
        if !simple.is_empty() {
            simple.push_str("; ");
        }
        simple.push_str(sql);
        if sql.starts_with("ROLLBACK") {
            self.simple_undoes.set(true);
        }
    }

    fn take_simple(&self) -> String {
        self.simple_undoes.set(false);
        std::mem::take(&mut *self.simple.borrow_mut())
    }
}

pub(super) struct PgTx<'t, 'c> {
    pub(super) tx: &'t Transaction<'c>,
    runtime: &'t Runtime,
    batch: &'t Batch,
    /// A statement failed with a conflict: the batch must run again.
    conflict: Cell<bool>,
    /// A statement failed outside a part: PostgreSQL refuses every further
    /// statement of this transaction.
    aborted: Cell<bool>,
    /// This unit changed (or queued a change to) rows.
    wrote: Cell<bool>,
    /// Parts begun (savepoint names are per part, parts do not nest).
    parts: Cell<u64>,
    in_part: Cell<bool>,
    /// How many of the batch's waiting commands came before this unit and
    /// before its open part (an undo drops the ones after).
    unit_mark: Cell<Mark>,
    part_mark: Cell<Mark>,
    /// Dedupe-key prefixes this unit asked "when was the last email" of.
    asked_prefixes: RefCell<Vec<String>>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    pub(super) fn new(tx: &'t Transaction<'c>, runtime: &'t Runtime, batch: &'t Batch) -> Self {
        let waiting = batch.waiting.borrow().mark();
        PgTx {
            tx,
            runtime,
            batch,
            conflict: Cell::new(false),
            aborted: Cell::new(false),
            wrote: Cell::new(false),
            parts: Cell::new(0),
            in_part: Cell::new(false),
            unit_mark: Cell::new(waiting),
            part_mark: Cell::new(waiting),
            asked_prefixes: RefCell::new(Vec::new()),
        }
    }

    pub(super) fn conflicted(&self) -> bool {
        self.conflict.get()
    }

    pub(super) fn wrote(&self) -> bool {
        self.wrote.get()
    }

    /// The unit is undone (its savepoint rolled back): its waiting
    /// commands and events go too.
    pub(super) fn forget_unit_writes(&self) {
        self.batch
            .waiting
            .borrow_mut()
            .truncate(self.unit_mark.get());
    }

    /// Writes the batch's waiting commands (under their enterprise locks)
    /// and events, and sends an undo still waiting: the transaction can
    /// commit.
    pub(super) fn finish(&self) -> Result<(), StoreError> {
        let Waiting { commands, events } = std::mem::take(&mut *self.batch.waiting.borrow_mut());
        self.unit_mark.set(Mark::default());
        self.part_mark.set(Mark::default());
        if !commands.is_empty() || !events.is_empty() {
            // Each `run` sends what `simple` still holds first.
            if !commands.is_empty() {
                self.run(outbox::insert_all(self.tx, &commands))?;
            }
            if !events.is_empty() {
                self.run(events::insert_all(self.tx, &events))?;
            }
            return Ok(());
        }
        if self.batch.simple_undoes.get() {
            let simple = self.batch.take_simple();
            return self.run_plain(self.tx.batch_execute(&simple));
        }
        // Releases alone change nothing: the commit ends them.
        self.batch.take_simple();
        Ok(())
    }

    /// Waits for one statement (after the savepoint statements queued
    /// before it, sent in the same flight) and notes what its failure
    /// means.
    pub(super) fn run<T>(
        &self,
        statement: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let simple = self.batch.take_simple();
        let result = if simple.is_empty() {
            self.runtime.block_on(statement)
        } else {
            self.runtime.block_on(async {
                let (queued, result) =
                    futures_util::future::join(self.tx.batch_execute(&simple), statement).await;
                queued.map_err(StoreError::from)?;
                result
            })
        };
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

    fn run_plain(
        &self,
        statement: impl Future<Output = Result<(), tokio_postgres::Error>>,
    ) -> Result<(), StoreError> {
        self.run(async { statement.await.map_err(StoreError::from) })
    }

    /// A statement that changes rows.
    pub(super) fn write<T>(
        &self,
        statement: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.wrote.set(true);
        self.run(statement)
    }
}

impl LicenseRows for PgTx<'_, '_> {
    fn license_outcome(&self, key: &str) -> Result<Option<KeyOutcome>, StoreError> {
        self.run(licenses::outcome(self.tx, key))
    }

    fn record_license_outcome(
        &self,
        key: &str,
        outcome: &KeyOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(licenses::record_outcome(self.tx, key, outcome, now))
    }

    fn org_subscriptions(&self, org_id: &str) -> Result<Vec<LicenseSubscription>, StoreError> {
        self.write(licenses::subscriptions(self.tx, org_id, true))
    }

    fn org_license_usage(&self, org_id: &str) -> Result<Vec<(String, String, u32)>, StoreError> {
        self.run(licenses::usage(self.tx, org_id))
    }

    fn license_subscription(
        &self,
        id: &str,
    ) -> Result<Option<(String, LicenseSubscription)>, StoreError> {
        self.run(licenses::subscription_by_id(self.tx, id))
    }

    fn put_license_subscription(
        &self,
        org_id: &str,
        subscription: &LicenseSubscription,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(licenses::put_subscription(
            self.tx,
            org_id,
            subscription,
            now,
        ))
    }

    fn holdings(&self, subscriber_id: &str) -> Result<Vec<Holding>, StoreError> {
        self.run(licenses::holdings(self.tx, subscriber_id))
    }

    fn holder_ids(
        &self,
        subscriber_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.run(licenses::holder_ids(self.tx, subscriber_id))
    }

    fn org_holders(&self, org_id: &str) -> Result<Vec<HolderState>, StoreError> {
        self.run(licenses::org_holders(self.tx, org_id))
    }

    fn license_templates(
        &self,
        org_id: &str,
    ) -> Result<Vec<(String, AutoLicenseTemplate)>, StoreError> {
        self.run(licenses::templates(self.tx, org_id))
    }

    fn put_license_template(
        &self,
        org_id: &str,
        group_id: &str,
        template: &AutoLicenseTemplate,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(licenses::put_template(
            self.tx, org_id, group_id, template, now,
        ))
    }

    fn set_holder_group(&self, subscriber_id: &str, group_id: &str) -> Result<(), StoreError> {
        self.write(async {
            super::sql::exec(
                self.tx,
                "UPDATE licenses SET group_id = $2 WHERE subscriber_id = $1",
                &[&subscriber_id, &group_id],
            )
            .await?;
            Ok(())
        })
    }

    fn set_holder_user(&self, subscriber_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.write(async {
            super::sql::exec(
                self.tx,
                "UPDATE licenses SET user_id = $2 WHERE subscriber_id = $1",
                &[&subscriber_id, &user_id],
            )
            .await?;
            Ok(())
        })
    }

    fn change_holdings(
        &self,
        subscriber_id: &str,
        ids: &HolderIds<'_>,
        revoked: &[String],
        granted: &[Holding],
        ledger: &[LicenseEvent],
    ) -> Result<(), StoreError> {
        self.write(licenses::change_holdings(
            self.tx,
            subscriber_id,
            ids,
            revoked,
            granted,
            ledger,
        ))
    }
}

impl Tx for PgTx<'_, '_> {
    fn begin_part(&self) -> Result<Part, StoreError> {
        let n = self.parts.get() + 1;
        self.parts.set(n);
        self.batch.queue(&format!("SAVEPOINT bwgate_part_{n}"));
        self.part_mark.set(self.batch.waiting.borrow().mark());
        self.in_part.set(true);
        Ok(Part(n))
    }

    fn keep_part(&self, part: Part) -> Result<(), StoreError> {
        self.in_part.set(false);
        self.batch
            .queue(&format!("RELEASE SAVEPOINT bwgate_part_{}", part.0));
        Ok(())
    }

    fn undo_part(&self, part: Part) -> Result<(), StoreError> {
        self.in_part.set(false);
        self.batch.queue(&format!(
            "ROLLBACK TO SAVEPOINT bwgate_part_{n}; RELEASE SAVEPOINT bwgate_part_{n}",
            n = part.0
        ));
        self.batch
            .waiting
            .borrow_mut()
            .truncate(self.part_mark.get());
        Ok(())
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
        self.write(subscribers::insert(self.tx, record, now))
    }

    fn update_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError> {
        self.write(subscribers::update(self.tx, record, now))
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
        self.write(subscribers::set_status_if(
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
        self.write(subscribers::set_errors(self.tx, id, errors, status, now))
    }

    fn trunk_flags(&self, id: &str) -> Result<TrunkFlags, StoreError> {
        self.run(subscribers::trunk_flags(self.tx, id))
    }

    fn set_trunk_flags(&self, id: &str, flags: TrunkFlags) -> Result<(), StoreError> {
        self.write(subscribers::set_trunk_flags(self.tx, id, flags))
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
        self.write(subscribers::insert_organization(
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

    fn set_org_admin_if_unset(
        &self,
        org_id: &str,
        subscriber_id: &str,
    ) -> Result<bool, StoreError> {
        self.write(subscribers::set_org_admin_if_unset(
            self.tx,
            org_id,
            subscriber_id,
        ))
    }

    fn replace_org_admin(&self, org_id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        self.write(subscribers::replace_org_admin(self.tx, org_id, from, to))
    }

    fn settle_pending_organization(&self, org_id: &str) -> Result<(), StoreError> {
        self.write(subscribers::settle_pending_organization(self.tx, org_id))
    }

    fn replace_pending_organization(
        &self,
        from: &str,
        to: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(subscribers::replace_pending_organization(
            self.tx,
            from,
            to,
            partner_id,
            provisioning_id,
            now,
        ))
    }

    fn unlink_organization(&self, org_id: &str) -> Result<(), StoreError> {
        self.write(subscribers::unlink_organization(self.tx, org_id))
    }

    fn orgs_with_user_email(&self, email: &str) -> Result<Vec<(String, bool)>, StoreError> {
        self.run(orgs::with_user_email(self.tx, email))
    }

    fn existing_org(&self, id: &str) -> Result<Option<ExistingOrganization>, StoreError> {
        self.run(orgs::existing(self.tx, id))
    }

    fn org_email_suppressed(&self, org_id: &str) -> Result<bool, StoreError> {
        self.run(orgs::email_suppressed(self.tx, org_id))
    }

    fn remove_existing_org_user(&self, org_id: &str, email: &str) -> Result<bool, StoreError> {
        self.write(orgs::remove_user(self.tx, org_id, email))
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
        self.write(orgs::grant_role(
            self.tx, org_id, partner_id, role, source, now,
        ))
    }

    fn revoke_role(
        &self,
        org_id: &str,
        partner_id: &str,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(orgs::revoke_role(self.tx, org_id, partner_id, source, now))
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
        self.write(orgs::record_approval(
            self.tx, signature, org_id, partner_id, now,
        ))
    }

    fn activation(&self, subscriber_id: &str) -> Result<Option<Activation>, StoreError> {
        self.run(records::activation(self.tx, subscriber_id))
    }

    fn put_activation(&self, activation: &Activation, now: i64) -> Result<(), StoreError> {
        self.write(records::put_activation(self.tx, activation, now))
    }

    /// Waits for the batch's end (see `finish`).
    fn insert_command(&self, envelope: &CommandEnvelope) -> Result<(), StoreError> {
        self.wrote.set(true);
        self.batch
            .waiting
            .borrow_mut()
            .commands
            .push(envelope.clone());
        Ok(())
    }

    /// Waits for the batch's end (see `finish`).
    fn append_event(&self, event: &ProvisioningEvent) -> Result<(), StoreError> {
        self.wrote.set(true);
        self.batch.waiting.borrow_mut().events.push(event.clone());
        Ok(())
    }

    fn command_state(&self, seq: i64) -> Result<Option<OutboxState>, StoreError> {
        self.run(outbox::state(self.tx, seq))
    }

    fn command(&self, seq: i64) -> Result<Option<OutboxEntry>, StoreError> {
        self.run(outbox::entry(self.tx, seq))
    }

    fn has_pending_commands(
        &self,
        subscriber_id: &str,
        kinds: &[&str],
    ) -> Result<bool, StoreError> {
        let waiting = self.batch.waiting.borrow().commands.iter().any(|c| {
            c.command.subscriber_id() == Some(subscriber_id) && kinds.contains(&c.command.kind())
        });
        if waiting {
            return Ok(true);
        }
        self.run(outbox::has_pending(self.tx, subscriber_id, kinds))
    }

    fn mark_delivered(&self, seq: i64, now: i64) -> Result<(), StoreError> {
        self.write(outbox::mark_delivered(self.tx, seq, now))
    }

    fn mark_failed(&self, seq: i64, error: &str) -> Result<(), StoreError> {
        self.write(outbox::mark_failed(self.tx, seq, error))
    }

    fn schedule_retry(&self, seq: i64, retry_at: i64, error: &str) -> Result<(), StoreError> {
        self.write(outbox::schedule_retry(self.tx, seq, retry_at, error))
    }

    /// An email under a key prefix this unit asked about first touches
    /// the prefix's guard row: two nodes that both found the window open
    /// cannot both commit their email.
    fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError> {
        let asked = msg.dedupe_key.as_deref().and_then(|key| {
            self.asked_prefixes
                .borrow()
                .iter()
                .find(|prefix| key.starts_with(prefix.as_str()))
                .cloned()
        });
        self.write(async {
            if let Some(prefix) = &asked {
                email::guard_key_prefix(self.tx, prefix).await?;
            }
            email::enqueue(self.tx, msg, now).await
        })
    }

    fn last_email_with_key_prefix(
        &self,
        kind: EmailKind,
        prefix: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.asked_prefixes.borrow_mut().push(prefix.to_string());
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
        self.write(records::record_accepted_request(
            self.tx,
            provisioning_id,
            request_id,
            tracking_id,
            results,
            now,
        ))
    }
}
