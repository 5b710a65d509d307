//! Accepting a flow-through document: every valid operation in one unit of
//! work with its outbox commands and emails; a refused operation is undone
//! alone (a `Tx` part) and answered with its code. The decisions are
//! `domain::lifecycle`'s and `domain::organization`'s; this file loads what
//! they need, stores what they decide and emits the resulting commands.

use std::sync::Arc;

use crate::commands::Command;
use crate::domain::email::EmailMessage;
use crate::domain::ids::EnterpriseKey;
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{
    self, AddContext, AddDecision, OperationResult, OrganizationRef, Rejection, SubscriberRecord,
    SubscriberStatus, TrunkFlags,
};
use crate::domain::subscriber::{
    ActivationCodeRequest, NewSubscriber, Operation, OperationKind, SubscriberChanges,
    SubscriberRef,
};
use crate::domain::{CustomerTemplate, ErrorCode};
use crate::store::tx::{OrgOrigin, Tx};
use crate::store::{transact, Store, StoreError};

use super::activation;
use super::change::{incomplete, store_change, store_partial_delete};
use super::emit::Emitter;
use super::new_id;
use super::{accounts, admin, placement};

/// One flow-through document's valid operations, applied in one
/// transaction (each operation in its own part: one failing operation
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

/// Applies `batch` as one unit of work on `store`; returns after the
/// commit of the state changes with their commands and emails. A replayed
/// `request_id` changes nothing and returns the stored lines.
pub async fn run<S: Store + ?Sized>(
    store: &S,
    batch: AcceptBatch,
) -> Result<AcceptOutcome, StoreError> {
    transact(store, move |tx| apply(tx, &batch)).await
}

/// Runs inside one unit of work. An operation refused after it changed
/// rows is undone alone (its part); see [`Tx::undo_part`].
pub fn apply(tx: &dyn Tx, batch: &AcceptBatch) -> Result<AcceptOutcome, StoreError> {
    let provisioning_id = batch.template.provisioning_id.as_str();
    // A replay repeats the first answer, except the lines refused on what
    // the store held then (e.g. 2017 before the admins approved): those
    // operations are decided again, and the merged answer is stored.
    let mut first_answer = None;
    if let Some(request_id) = &batch.request_id {
        if let Some((tracking_id, stored)) = tx.accepted_request(provisioning_id, request_id)? {
            let again: Vec<usize> = stored
                .iter()
                .filter(|r| {
                    r.error_code
                        .and_then(ErrorCode::from_code)
                        .is_some_and(ErrorCode::decided_on_stored_state)
                })
                .map(|r| r.index)
                .collect();
            if again.is_empty() {
                return Ok(AcceptOutcome {
                    results: stored,
                    replay_of: Some(tracking_id),
                    commands_written: 0,
                    emails_enqueued: 0,
                });
            }
            first_answer = Some((tracking_id, stored, again));
        }
    }

    let mut results = Vec::with_capacity(batch.operations.len() + batch.invalid.len());
    let operations: Vec<&(usize, Operation)> = match &first_answer {
        Some((_, stored, again)) => {
            results.extend(stored.iter().filter(|r| !again.contains(&r.index)).cloned());
            batch
                .operations
                .iter()
                .filter(|(index, _)| again.contains(index))
                .collect()
        }
        None => {
            results.extend(batch.invalid.iter().cloned());
            batch.operations.iter().collect()
        }
    };
    let mut commands_written = 0;
    let mut emails_enqueued = 0;
    for (index, operation) in operations {
        let mut op = OpContext {
            tx,
            batch,
            index: *index,
            out: Emitter::new(tx, &batch.tracking_id, index, batch.now),
            deferred_emails: Vec::new(),
            emails: 0,
        };
        let part = tx.begin_part()?;
        let outcome = op.apply(operation);
        if tx.aborted() {
            // The database rolled the whole transaction back (disk full, I/O
            // error): nothing of this document stands; the store reports it.
            return Err(match outcome {
                Err(OpError::Store(e)) => e,
                _ => StoreError::Database("transaction aborted by the database".into()),
            });
        }
        if let Err(OpError::Store(e @ StoreError::Conflict(_))) = outcome {
            // Another transaction changed what this one read (a shared
            // database): the back-end runs the whole unit again.
            return Err(e);
        }
        match outcome {
            Ok(result) => {
                tx.keep_part(part)?;
                commands_written += op.out.written;
                emails_enqueued += op.emails;
                results.push(result);
            }
            Err(err) => {
                tx.undo_part(part)?;
                // Emails that go out although the operation is refused
                // (org attach approval requests), in the batch transaction.
                for msg in std::mem::take(&mut op.deferred_emails) {
                    if tx.enqueue_email(&msg, batch.now)?.is_some() {
                        emails_enqueued += 1;
                    }
                }
                let rejection = match err {
                    OpError::Rejected(rejection) => rejection,
                    OpError::Store(e) => {
                        tracing::error!(
                            error = %e,
                            tracking_id = %batch.tracking_id,
                            index,
                            operation = %operation.kind(),
                            "operation failed in the store; rolled back alone"
                        );
                        Rejection::new(
                            ErrorCode::Internal,
                            "internal error while recording the operation; it was not applied",
                        )
                    }
                };
                results.push(OperationResult::rejected(
                    *index,
                    operation.kind(),
                    Some(operation.user_id().as_str().to_string()),
                    &rejection,
                ));
            }
        }
    }
    // Stable: equal indexes (never sent by `provision`) keep their order.
    results.sort_by_key(|r| r.index);
    // Answer with the userId as the AS sent it (stored so replays match).
    for r in &mut results {
        if let Some(Some(sent)) = batch.sent_user_ids.get(r.index) {
            r.user_id = Some(sent.clone());
        }
    }

    // The first tracking id stays the document's (replays report it).
    let replay_of = first_answer.map(|(tracking_id, _, _)| tracking_id);
    if let Some(request_id) = &batch.request_id {
        tx.record_accepted_request(
            provisioning_id,
            request_id,
            replay_of.as_deref().unwrap_or(&batch.tracking_id),
            &results,
            batch.now,
        )?;
    }
    Ok(AcceptOutcome {
        results,
        replay_of,
        commands_written,
        emails_enqueued,
    })
}

/// Why one operation was not applied.
enum OpError {
    /// The rules refused it (answered with its code).
    Rejected(Rejection),
    /// The database failed (answered as an internal error).
    Store(StoreError),
}

impl From<Rejection> for OpError {
    fn from(r: Rejection) -> Self {
        OpError::Rejected(r)
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        OpError::Store(e)
    }
}

/// One operation being applied.
struct OpContext<'a> {
    tx: &'a dyn Tx,
    batch: &'a AcceptBatch,
    index: usize,
    /// The operation's commands (`{trackingId}:{index}:{n}`).
    out: Emitter<'a>,
    /// Emails to enqueue after the operation is rolled back (it is refused
    /// but the notification must go out).
    deferred_emails: Vec<EmailMessage>,
    /// Emails the operation wrote (they stand or fall with it).
    emails: usize,
}

fn not_here(user_id: &UserId) -> Rejection {
    Rejection::new(
        ErrorCode::NotFound,
        format!("userId {user_id} is not provisioned here"),
    )
}

impl OpContext<'_> {
    fn apply(&mut self, operation: &Operation) -> Result<OperationResult, OpError> {
        match operation {
            Operation::AddUser(op) => self.add_user(op),
            Operation::ModifyUser(changes) => self.modify_user(changes),
            Operation::DeleteUser(r) => self.delete_user(r),
            Operation::RequestActivationCode(req) => self.activation_code(req),
        }
    }

    fn accepted(
        &self,
        kind: OperationKind,
        user_id: &UserId,
        status: SubscriberStatus,
    ) -> OperationResult {
        OperationResult::accepted(self.index, kind, user_id, status)
    }

    fn add_user(&mut self, op: &NewSubscriber) -> Result<OperationResult, OpError> {
        let template = &self.batch.template;
        let settings = &template.settings;
        let now = self.batch.now;
        let key = EnterpriseKey::derive(
            &op.service_provider_id,
            &op.group_id,
            settings.enterprise_mode,
        );
        let existing = self.tx.subscriber_by_user_id(op.user_id.as_str())?;
        // A workspace's user id is not a new user's (`provision::workspaces`
        // checks the other way).
        if existing.is_none()
            && self
                .tx
                .live_workspace_by_user_id(op.user_id.as_str())?
                .is_some()
        {
            return Err(Rejection::new(
                ErrorCode::UserIdAlreadyAssociated,
                format!("userId {} is a workspace's", op.user_id),
            )
            .into());
        }
        let current_org = self.tx.organization_by_key(&template.partner_id, &key)?;
        let pending_org = match &current_org {
            Some((org, OrgOrigin::Pending)) => Some(org.id.clone()),
            _ => None,
        };
        // A trusted email is one the gateway may rely on at once: for a new
        // subscriber of an enterprise whose organization is not settled it
        // decides the organization (an existing one listing it: attach).
        // An untrusted one decides nothing until the user verifies it.
        let trusted_email = op.email.as_deref().filter(|_| settings.trusted_emails);
        let opens_org = existing.is_none()
            && trusted_email.is_some()
            && matches!(current_org, None | Some((_, OrgOrigin::Pending)));
        let attach = match trusted_email {
            Some(email) if opens_org => {
                match placement::attach_candidate(
                    self.tx,
                    template,
                    email,
                    self.batch.approvals.as_deref(),
                    now,
                )? {
                    Ok(found) => found,
                    Err(refused) => {
                        // Goes out although the operation is refused.
                        self.deferred_emails.extend(refused.notify);
                        return Err(refused.rejection.into());
                    }
                }
            }
            _ => None,
        };
        let organization = match &attach {
            Some(a) => Some(OrganizationRef {
                id: a.org.id.clone(),
                enterprise_key: key.clone(),
                name: a.org.name.clone(),
            }),
            None => current_org.as_ref().map(|(org, _)| org.clone()),
        };
        // The first user of an organization created here takes an email
        // another account holds at once; anyone else waits for consent.
        let first_of_new_org = opens_org && attach.is_none();
        let email_held_elsewhere = match trusted_email {
            Some(email) if existing.is_none() => accounts::held_elsewhere(
                self.tx,
                email,
                None,
                organization.as_ref().map(|o| o.id.as_str()),
            )?,
            _ => false,
        };
        let decision = lifecycle::decide_add(
            op,
            &AddContext {
                template,
                enterprise_key: &key,
                existing: existing.as_ref(),
                organization: organization.as_ref(),
                email_held_elsewhere,
                first_of_new_org,
                now,
            },
            new_id,
        )?;
        let AddDecision::Create {
            mut record,
            create_org,
        } = decision
        else {
            return match decision {
                AddDecision::Update { changes } => {
                    let current = existing.ok_or_else(|| {
                        StoreError::Database("decide_add chose Update without a subscriber".into())
                    })?;
                    self.change(OperationKind::AddUser, &op.user_id, &current, &changes)
                }
                AddDecision::Unchanged { record } | AddDecision::Create { record, .. } => {
                    Ok(self.accepted(OperationKind::AddUser, &op.user_id, record.status))
                }
            };
        };
        let tx = self.tx;
        if let Some(a) = &attach {
            placement::attach(
                tx,
                template,
                &key,
                a,
                pending_org.as_deref(),
                &mut self.out,
                now,
            )?;
        } else if create_org {
            // A trusted first user's organization is announced now; an
            // untrusted one's waits (pending) for the first verified email,
            // which may attach the enterprise elsewhere instead.
            // The enterprise's (or group's) name from BroadWorks, else
            // the key.
            let name = op.new_org_name(settings.enterprise_mode);
            let org = placement::create(
                tx,
                template,
                &key,
                name,
                first_of_new_org,
                &mut self.out,
                now,
            )?;
            record.org_id = Some(org.id);
        } else if let (Some((org, _)), true) = (&current_org, first_of_new_org) {
            // The enterprise's pending organization, settled by this
            // trusted first user.
            tx.settle_pending_organization(&org.id)?;
            placement::announce(template, org, &mut self.out)?;
        }
        tx.insert_subscriber(&record, now)?;
        super::events::subscriber_changed(tx, None, None, &record, now)?;
        if op.is_trunk_user || op.has_route_list {
            // Both at once were refused at parse time (9006).
            tx.set_trunk_flags(
                &record.id,
                TrunkFlags {
                    is_trunk_user: op.is_trunk_user,
                    has_route_list: op.has_route_list,
                },
            )?;
        }
        let new_org = create_org || (pending_org.is_some() && attach.is_none());
        if new_org && settings.provision_admin_first && !first_of_new_org {
            // "Provision admin first": the first user given the service
            // is the admin-to-be; the others wait for it to activate.
            if let Some(org_id) = &record.org_id {
                tx.set_org_admin_if_unset(org_id, &record.id)?;
            }
        }
        if record.status == SubscriberStatus::Provisioning {
            if let (true, Some(email)) = (email_held_elsewhere, trusted_email) {
                // Only the first user of a new organization gets here with
                // an email another account holds (others wait for consent).
                accounts::move_to(tx, email, &record, &mut self.out, now)?;
            }
            admin::announce_provisioning(tx, &record, &mut self.out)?;
            return Ok(self.accepted(OperationKind::AddUser, &op.user_id, record.status));
        }
        // PendingEmailInput / PendingUserMigration: provisioned once the
        // user acts on the portal.
        self.emails += activation::start(
            tx,
            &record,
            self.batch.activations.as_deref(),
            self.batch.self_activation,
            settings,
            now,
        )?;
        Ok(self.accepted(OperationKind::AddUser, &op.user_id, record.status))
    }

    /// The subscriber holding `user_id`, if this template provisioned it.
    fn own_subscriber(&self, user_id: &UserId) -> Result<Option<SubscriberRecord>, OpError> {
        let found = self.tx.subscriber_by_user_id(user_id.as_str())?;
        match found {
            Some(r) if r.provisioning_id != self.batch.template.provisioning_id => {
                Err(not_here(user_id).into())
            }
            other => Ok(other),
        }
    }

    fn modify_user(&mut self, changes: &SubscriberChanges) -> Result<OperationResult, OpError> {
        let current = self
            .own_subscriber(&changes.user_id)?
            .ok_or_else(|| not_here(&changes.user_id))?;
        self.change(
            OperationKind::ModifyUser,
            &changes.user_id,
            &current,
            changes,
        )
    }

    /// A modify (or an AddUser with new data for a known user).
    fn change(
        &mut self,
        kind: OperationKind,
        user_id: &UserId,
        current: &SubscriberRecord,
        changes: &SubscriberChanges,
    ) -> Result<OperationResult, OpError> {
        let now = self.batch.now;
        // The flags this change leaves, checked against the stored ones.
        let flags = lifecycle::trunk_flags_after(self.tx.trunk_flags(&current.id)?, changes)?;
        let tx = self.tx;
        // A new address for an active subscriber is confirmed (untrusted
        // template: a code to it) or consented to (another account holds
        // it) before it is taken; the rest of the change applies now.
        let mut held_email = None;
        let new_email = changes
            .email
            .as_deref()
            .filter(|e| current.email.as_deref() != Some(*e));
        let trusted = self.batch.template.settings.trusted_emails;
        if let (Some(_), SubscriberStatus::PendingUserMigration, false) =
            (new_email, current.status, trusted)
        {
            // The address waiting for consent is one the user verified:
            // an untrusted address from the AS does not replace it.
            held_email = Some(SubscriberChanges {
                email: None,
                ..changes.clone()
            });
        }
        if let Some(new) = new_email.filter(|_| {
            !current.status.is_pending_user() && current.status != SubscriberStatus::Removed
        }) {
            // The same change again (an AS sending the whole record): the
            // code or consent already sent stands.
            let waiting = tx.activation(&current.id)?.is_some_and(|a| {
                a.completed_at.is_none()
                    && a.changes_email()
                    && a.pending_email.as_deref() == Some(new)
            });
            let (held, emails) = if waiting {
                (true, 0)
            } else {
                activation::hold_email_change(
                    tx,
                    current,
                    new,
                    &self.batch.template,
                    self.batch.activations.as_deref(),
                    now,
                )?
            };
            self.emails += emails;
            if held {
                held_email = Some(SubscriberChanges {
                    email: None,
                    ..changes.clone()
                });
            }
        }
        let changes = held_email.as_ref().unwrap_or(changes);
        let (next, package_change) = lifecycle::apply_changes(current, changes, now)?;
        tx.set_trunk_flags(&current.id, flags)?;
        // A trusted template's AS sends the email it lacked at the add:
        // it is used at once, as if it had come with the AddUser.
        // So does a new address for one waiting for consent: the decision
        // is made again on it (the old consent link stops working).
        let waiting_for_email = matches!(
            current.status,
            SubscriberStatus::PendingEmailInput | SubscriberStatus::PendingEmailValidation
        ) || (current.status == SubscriberStatus::PendingUserMigration
            && new_email.is_some());
        if let (true, true, Some(email)) = (
            self.batch.template.settings.trusted_emails,
            waiting_for_email,
            changes.email.as_deref(),
        ) {
            let onboarded = activation::onboard(
                tx,
                next,
                email,
                &self.batch.template,
                self.batch.approvals.as_deref(),
                self.batch.activations.as_deref(),
                &mut self.out,
                now,
            )?;
            let status = match onboarded {
                Ok(activation::Onboarded::Provisioning(s)) => {
                    activation::complete(tx, &s.id, now)?;
                    s.status
                }
                Ok(activation::Onboarded::AwaitingConsent { subscriber, emails }) => {
                    self.emails += emails;
                    subscriber.status
                }
                Err(refused) => {
                    self.deferred_emails.extend(refused.notify);
                    return Err(refused.rejection.into());
                }
            };
            return Ok(self.accepted(kind, user_id, status));
        }
        store_change(tx, current, &next, package_change, now, &mut self.out)?;
        Ok(self.accepted(kind, user_id, next.status))
    }

    fn delete_user(&mut self, r: &SubscriberRef) -> Result<OperationResult, OpError> {
        let Some(current) = self.own_subscriber(&r.user_id)? else {
            // Deleting an unknown (or already deleted) user succeeds.
            return Ok(self.accepted(
                OperationKind::DeleteUser,
                &r.user_id,
                SubscriberStatus::Removed,
            ));
        };
        let now = self.batch.now;
        store_partial_delete(self.tx, &current, now, &mut self.out)?;
        Ok(self.accepted(
            OperationKind::DeleteUser,
            &r.user_id,
            SubscriberStatus::Removed,
        ))
    }

    fn activation_code(&mut self, req: &ActivationCodeRequest) -> Result<OperationResult, OpError> {
        let current = self
            .own_subscriber(&req.user_id)?
            .filter(|r| r.status != SubscriberStatus::Removed)
            .ok_or_else(|| not_here(&req.user_id))?;
        // A device needs the user's Webex Calling license: one still
        // waiting (for its email, its consent) holds none yet.
        if !super::change::sent_to_core(current.status) {
            return Err(Rejection::new(
                ErrorCode::WrongState,
                format!(
                    "userId {} is {}: a device activation code needs a provisioned user",
                    req.user_id,
                    current.status.as_str()
                ),
            )
            .into());
        }
        let key = current
            .enterprise_key
            .clone()
            .ok_or_else(|| incomplete(&current, "enterprise key"))?;
        self.out.emit(
            &key,
            Command::IssueActivationCode {
                subscriber_id: current.id.clone(),
                org_id: current.org_id.clone(),
                user_id: req.user_id.clone(),
                device_type: req.device_type.clone(),
                mac_address: req.mac_address.clone(),
            },
        )?;
        Ok(self.accepted(
            OperationKind::RequestActivationCode,
            &req.user_id,
            current.status,
        ))
    }
}
