//! `accept`: one flow-through document's operations in one write (so one
//! transaction of the group-commit writer); a refused operation is rolled
//! back alone (see `accept`). The decisions
//! are `domain::lifecycle`'s; this file only loads what they need, stores
//! what they decide and writes the resulting commands to the outbox.

use rusqlite::{params, Connection, OptionalExtension};

use super::activation;
use super::orgs;
use super::subscribers::{self, OrgOrigin};
use super::trunk;
use super::WriteConn;
use crate::commands::{Command, CommandEnvelope, COMMAND_VERSION};
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::ids::{EnterpriseKey, UserId};
use crate::domain::lifecycle::{
    self, AddContext, AddDecision, OrganizationRef, Rejection, SubscriberRecord, SubscriberStatus,
    TrunkFlags,
};
use crate::domain::organization::{self as organization, AttachDecision, PartnerRole};
use crate::domain::subscriber::{
    ActivationCodeRequest, NewSubscriber, Operation, OperationKind, SubscriberChanges,
    SubscriberRef,
};
use crate::domain::{ErrorCode, Package};
use crate::store::{AcceptBatch, AcceptOutcome, OperationResult, StoreError};

/// Per operation when the write runs isolated, nested inside the writer's
/// `bwgate_w` savepoint; run as cached statements.
const SAVEPOINT: &str = "SAVEPOINT bwgate_op";
const RELEASE: &str = "RELEASE bwgate_op";
const ROLLBACK_TO: &str = "ROLLBACK TO bwgate_op";

/// Runs on the writer thread inside the batch transaction.
///
/// An operation refused after it changed rows must be undone alone. When
/// the writer runs this write isolated, each operation gets a savepoint;
/// otherwise there is none (a savepoint copies every page an operation
/// touches, see `writer.rs`) and such a refusal fails the whole write,
/// which makes the writer undo the batch and run it again isolated.
pub(super) fn accept(
    conn: &WriteConn<'_>,
    batch: &AcceptBatch,
) -> Result<AcceptOutcome, StoreError> {
    let savepoints = conn.isolated();
    let provisioning_id = batch.template.provisioning_id.as_str();
    if let Some(request_id) = &batch.request_id {
        if let Some(outcome) = replay(conn, provisioning_id, request_id)? {
            return Ok(outcome);
        }
    }

    let mut results = Vec::with_capacity(batch.operations.len() + batch.invalid.len());
    results.extend(batch.invalid.iter().cloned());
    let mut commands_written = 0;
    let mut emails_enqueued = 0;
    for (index, operation) in &batch.operations {
        let mut op = OpContext {
            conn,
            batch,
            index: *index,
            emitted: 0,
            deferred_emails: Vec::new(),
            emails: 0,
        };
        if savepoints {
            exec(conn, SAVEPOINT)?;
        }
        let changes_before = conn.total_changes();
        let outcome = op.apply(operation);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (disk full, I/O
            // error): nothing of this document stands; the writer reports it.
            return Err(match outcome {
                Err(OpError::Store(e)) => e,
                _ => StoreError::Database("transaction aborted by SQLite".into()),
            });
        }
        match outcome {
            Ok(result) => {
                if savepoints {
                    exec(conn, RELEASE)?;
                }
                commands_written += op.emitted;
                emails_enqueued += op.emails;
                results.push(result);
            }
            Err(err) => {
                if savepoints {
                    exec(conn, ROLLBACK_TO)?;
                    exec(conn, RELEASE)?;
                } else if conn.total_changes() != changes_before {
                    return Err(StoreError::Database(format!(
                        "operation {index} was refused after changing rows; \
                         the write is run again with a savepoint per operation"
                    )));
                }
                // Emails that go out although the operation is refused
                // (org attach approval requests), in the batch transaction.
                for msg in std::mem::take(&mut op.deferred_emails) {
                    if super::email::enqueue_email(conn, &msg, batch.now)?.is_some() {
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

    if let Some(request_id) = &batch.request_id {
        let json = serde_json::to_string(&results)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode results: {e}")))?;
        conn.prepare_cached(
            "INSERT INTO accepted_requests (provisioning_id, request_id, tracking_id,
                                            results_json, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            provisioning_id,
            request_id,
            batch.tracking_id,
            json,
            batch.now
        ])?;
    }
    Ok(AcceptOutcome {
        results,
        replay_of: None,
        commands_written,
        emails_enqueued,
    })
}

/// The stored answer of an earlier document with the same requestId.
fn replay(
    conn: &Connection,
    provisioning_id: &str,
    request_id: &str,
) -> Result<Option<AcceptOutcome>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT tracking_id, results_json FROM accepted_requests
             WHERE provisioning_id = ?1 AND request_id = ?2",
        )?
        .query_row([provisioning_id, request_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let Some((tracking_id, json)) = row else {
        return Ok(None);
    };
    let results: Vec<OperationResult> = serde_json::from_str(&json).map_err(|e| {
        StoreError::Corrupt(format!(
            "accepted request '{request_id}' of '{provisioning_id}': results_json: {e}"
        ))
    })?;
    Ok(Some(AcceptOutcome {
        results,
        replay_of: Some(tracking_id),
        commands_written: 0,
        emails_enqueued: 0,
    }))
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
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

impl From<rusqlite::Error> for OpError {
    fn from(e: rusqlite::Error) -> Self {
        OpError::Store(e.into())
    }
}

/// One operation being applied.
struct OpContext<'a> {
    conn: &'a Connection,
    batch: &'a AcceptBatch,
    index: usize,
    /// Commands written so far (the `n` of the idempotency key).
    emitted: usize,
    /// Emails to enqueue after the operation is rolled back (it is refused
    /// but the notification must go out).
    deferred_emails: Vec<EmailMessage>,
    /// Emails the operation wrote (they stand or fall with it).
    emails: usize,
}

/// An existing organization the enterprise's first subscriber attaches to.
struct Attach {
    org: organization::ExistingOrganization,
    partner_role: PartnerRole,
}

/// Time-ordered (UUIDv7): new rows land at the right edge of the primary-key
/// and foreign-key B-trees instead of on a random page each, which is most of
/// the writer's page writes under load.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether the license core has been told about the subscriber (so later
/// changes must follow it there).
pub(super) fn sent_to_core(status: SubscriberStatus) -> bool {
    matches!(
        status,
        SubscriberStatus::Provisioning
            | SubscriberStatus::Provisioned
            | SubscriberStatus::Updating
            | SubscriberStatus::Error
    )
}

/// Whether anything but the package (and bookkeeping) changed.
fn profile_changed(a: &SubscriberRecord, b: &SubscriberRecord) -> bool {
    a.first_name != b.first_name
        || a.last_name != b.last_name
        || a.email != b.email
        || a.phone_number != b.phone_number
        || a.extension != b.extension
        || a.mobile_phone_number != b.mobile_phone_number
        || a.language != b.language
        || a.time_zone != b.time_zone
}

fn not_here(user_id: &UserId) -> Rejection {
    Rejection::new(
        ErrorCode::NotFound,
        format!("userId {user_id} is not provisioned here"),
    )
}

/// A stored record lacks a value every active subscriber has.
fn incomplete(record: &SubscriberRecord, what: &str) -> StoreError {
    StoreError::Corrupt(format!("subscriber '{}' has no {what}", record.id))
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
        let now = self.batch.now;
        let key = EnterpriseKey::derive(
            &op.service_provider_id,
            &op.group_id,
            template.settings.enterprise_mode,
        );
        let existing = subscribers::subscriber_by_user_id(self.conn, op.user_id.as_str())?;
        let organization = subscribers::organization_by_key(self.conn, &template.partner_id, &key)?;
        let email_taken = match &op.email {
            Some(email) => subscribers::email_taken(
                self.conn,
                email,
                existing.as_ref().map(|r| r.id.as_str()),
            )?,
            None => false,
        };
        let settings = &template.settings;
        let attach = match &op.email {
            Some(email)
                if organization.is_none()
                    && existing.is_none()
                    && !settings.wholesale
                    && settings.provision_existing_orgs =>
            {
                self.attach_candidate(email)?
            }
            _ => None,
        };
        let attached_ref = attach.as_ref().map(|a| OrganizationRef {
            id: a.org.id.clone(),
            enterprise_key: key.clone(),
            name: a.org.name.clone(),
        });
        let decision = lifecycle::decide_add(
            op,
            &AddContext {
                template,
                enterprise_key: &key,
                existing: existing.as_ref(),
                organization: organization.as_ref().or(attached_ref.as_ref()),
                email_taken,
                now,
            },
            new_id,
        )?;
        if let (Some(a), Some(org), AddDecision::Create { .. }) =
            (&attach, &attached_ref, &decision)
        {
            subscribers::insert_organization(
                self.conn,
                org,
                &template.partner_id,
                &template.provisioning_id,
                OrgOrigin::Attached,
                now,
            )?;
            orgs::grant_role(
                self.conn,
                &org.id,
                &template.partner_id,
                a.partner_role,
                "attach",
                now,
            )?;
            self.emit(
                &key,
                Command::AttachOrganization {
                    org_id: org.id.clone(),
                    enterprise_key: key.clone(),
                    partner_id: template.partner_id.clone(),
                    partner_role: a.partner_role,
                    keep_name: true,
                    keep_auth_settings: true,
                    keep_email_suppression: true,
                    first_user_admin: false,
                    restricted_by_partner: false,
                },
            )?;
        }
        match decision {
            AddDecision::Create {
                mut record,
                create_org,
            } => {
                if create_org {
                    let org = OrganizationRef {
                        id: new_id(),
                        enterprise_key: key.clone(),
                        // Until the org-naming rules land: the enterprise key.
                        name: key.as_str().to_string(),
                    };
                    subscribers::insert_organization(
                        self.conn,
                        &org,
                        &template.partner_id,
                        &template.provisioning_id,
                        OrgOrigin::Created,
                        now,
                    )?;
                    record.org_id = Some(org.id.clone());
                    self.emit(
                        &key,
                        Command::EnsureOrganization {
                            org_id: org.id,
                            enterprise_key: key.clone(),
                            partner_id: template.partner_id.clone(),
                            provisioning_id: template.provisioning_id.clone(),
                            name: org.name,
                        },
                    )?;
                }
                subscribers::insert_subscriber(self.conn, &record, now)?;
                if op.is_trunk_user || op.has_route_list {
                    // Both at once were refused at parse time (9006).
                    trunk::set_flags(
                        self.conn,
                        &record.id,
                        TrunkFlags {
                            is_trunk_user: op.is_trunk_user,
                            has_route_list: op.has_route_list,
                        },
                    )?;
                }
                if create_org
                    && (settings.provision_admin_first
                        || record.status == SubscriberStatus::Provisioning)
                {
                    // The first user of a new organization is its admin
                    // (with "provision admin first" off: whoever activates
                    // first, see `activation::claim_org_admin`).
                    if let Some(org_id) = &record.org_id {
                        activation::claim_org_admin(self.conn, org_id, &record.id)?;
                    }
                }
                if record.status == SubscriberStatus::Provisioning {
                    let command = Command::provision(&record)
                        .ok_or_else(|| incomplete(&record, "organization"))?;
                    self.emit(&key, command)?;
                } else {
                    // PendingEmailInput / PendingUserMigration: provisioned
                    // once the user acts on the portal.
                    self.emails += activation::start(
                        self.conn,
                        &record,
                        self.batch.activations.as_deref(),
                        self.batch.self_activation,
                        settings,
                        now,
                    )?;
                }
                Ok(self.accepted(OperationKind::AddUser, &op.user_id, record.status))
            }
            AddDecision::Unchanged { record } => {
                Ok(self.accepted(OperationKind::AddUser, &op.user_id, record.status))
            }
            AddDecision::Update { changes } => {
                let current = existing.ok_or_else(|| {
                    StoreError::Database("decide_add chose Update without a subscriber".into())
                })?;
                self.change(OperationKind::AddUser, &op.user_id, &current, &changes)
            }
        }
    }

    /// The enterprise has no organization yet and its first subscriber's
    /// email matches a user of an existing organization: attach to it
    /// (`Some`), or refuse with 9007 (linked to another enterprise) or 2017
    /// (its admins must approve; the approval request is queued to go out
    /// even though the operation is refused). `None`: no match.
    fn attach_candidate(&mut self, email: &str) -> Result<Option<Attach>, OpError> {
        let template = &self.batch.template;
        let candidates = orgs::orgs_with_user_email(self.conn, email)?;
        let Some((org_id, linked)) = candidates.into_iter().next() else {
            return Ok(None);
        };
        if linked {
            return Err(Rejection::new(
                ErrorCode::EnterpriseLinkedElsewhere,
                format!(
                    "the existing organization of {email} is already linked to another enterprise"
                ),
            )
            .into());
        }
        let org = orgs::existing_org(self.conn, &org_id)?
            .ok_or_else(|| StoreError::Corrupt(format!("existing org '{org_id}' vanished")))?;
        let granted = orgs::role(self.conn, &org.id, &template.partner_id)?;
        match organization::decide_attach(&org, granted) {
            AttachDecision::Attach { partner_role } => Ok(Some(Attach { org, partner_role })),
            AttachDecision::NeedsApproval { notify, .. } => {
                let settings = &template.settings;
                if let Some(links) = &self.batch.approvals {
                    // At most one notification per (org, partner) per
                    // window, counted from the last one queued.
                    let prefix =
                        crate::orgs::ApprovalLinks::key_prefix(&org.id, &template.partner_id);
                    let last = super::email::last_enqueued_with_key_prefix(
                        self.conn,
                        EmailKind::OrgAttachApproval,
                        &prefix,
                    )?;
                    let msg = links.may_notify(last, self.batch.now).then(|| {
                        links.message(
                            &crate::orgs::ApprovalRequest {
                                org_id: &org.id,
                                org_name: &org.name,
                                partner_id: &template.partner_id,
                                partner_admin_email: settings.partner_admin_email.as_deref(),
                                partner_admin_name: settings.partner_admin_name.as_deref(),
                                to: &notify,
                            },
                            self.batch.now,
                        )
                    });
                    self.deferred_emails.extend(msg.flatten());
                }
                let admin = settings
                    .partner_admin_email
                    .as_deref()
                    .unwrap_or("the partner administrator");
                Err(Rejection::new(
                    ErrorCode::ExistingOrgNeedsApproval,
                    format!(
                        "unable to provision subscriber in existing Webex organization '{}': \
                         its administrators must approve {admin} as external full admin \
                         (approval requested)",
                        org.name
                    ),
                )
                .into())
            }
        }
    }

    /// The subscriber holding `user_id`, if this template provisioned it.
    fn own_subscriber(&self, user_id: &UserId) -> Result<Option<SubscriberRecord>, OpError> {
        let found = subscribers::subscriber_by_user_id(self.conn, user_id.as_str())?;
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
        let flags = lifecycle::trunk_flags_after(trunk::flags(self.conn, &current.id)?, changes)?;
        let (mut next, package_change) = lifecycle::apply_changes(current, changes, now)?;
        let conn = self.conn;
        trunk::set_flags(conn, &current.id, flags)?;
        // A trusted template's AS sends the email it lacked at the add:
        // it is used at once, as if it had come with the AddUser.
        let waiting_for_email = matches!(
            current.status,
            SubscriberStatus::PendingEmailInput | SubscriberStatus::PendingEmailValidation
        );
        if let (true, true, Some(email)) = (
            self.batch.template.settings.trusted_emails,
            waiting_for_email,
            changes.email.as_deref(),
        ) {
            let taken = subscribers::email_taken(conn, email, Some(&current.id))?;
            next.status = if taken {
                SubscriberStatus::PendingUserMigration
            } else {
                SubscriberStatus::Provisioning
            };
            next.last_status_change = now;
            subscribers::update_subscriber(conn, &next, now)?;
            if taken {
                self.emails += activation::restart_as_consent(
                    conn,
                    &next,
                    self.batch.activations.as_deref(),
                    &self.batch.template.settings,
                    now,
                )?;
            } else {
                activation::complete(conn, &next.id, now)?;
                if let Some(org_id) = &next.org_id {
                    activation::claim_org_admin(conn, org_id, &next.id)?;
                }
                let key = next
                    .enterprise_key
                    .clone()
                    .ok_or_else(|| incomplete(&next, "enterprise key"))?;
                let command =
                    Command::provision(&next).ok_or_else(|| incomplete(&next, "organization"))?;
                self.emit(&key, command)?;
            }
            return Ok(self.accepted(kind, user_id, next.status));
        }
        store_change(
            conn,
            current,
            &next,
            package_change,
            now,
            &mut |key, command| self.emit(key, command),
        )?;
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
        let conn = self.conn;
        store_partial_delete(conn, &current, now, &mut |key, command| {
            self.emit(key, command)
        })?;
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
        let key = current
            .enterprise_key
            .clone()
            .ok_or_else(|| incomplete(&current, "enterprise key"))?;
        self.emit(
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

    /// Writes `command` to the outbox as the operation's next command.
    fn emit(&mut self, key: &EnterpriseKey, command: Command) -> Result<(), StoreError> {
        let batch = self.batch;
        let envelope = CommandEnvelope {
            version: COMMAND_VERSION,
            idempotency_key: format!("{}:{}:{}", batch.tracking_id, self.index, self.emitted),
            enterprise_key: key.clone(),
            tracking_id: batch.tracking_id.clone(),
            issued_at: batch.now,
            command,
        };
        write_command(self.conn, &envelope)?;
        self.emitted += 1;
        Ok(())
    }
}

/// Writes one command of a change to the outbox (the caller's envelope and
/// idempotency key).
pub(super) type Emit<'e> = dyn FnMut(&EnterpriseKey, Command) -> Result<(), StoreError> + 'e;

/// Stores a change decided by `lifecycle::apply_changes` (`current` →
/// `next`) and emits the commands the license core needs: a retry
/// (`ProvisionSubscriber`) for a failed subscriber, else `UpdateSubscriber`
/// and/or `ChangePackage` when the core knows the subscriber. Nothing when
/// nothing changed. Shared by flow-through modifies and partner admins.
pub(super) fn store_change(
    conn: &Connection,
    current: &SubscriberRecord,
    next: &SubscriberRecord,
    package_change: Option<Package>,
    now: i64,
    emit: &mut Emit<'_>,
) -> Result<(), StoreError> {
    if next == current {
        return Ok(());
    }
    subscribers::update_subscriber(conn, next, now)?;
    if current.status == SubscriberStatus::Error {
        // A change to a failed subscriber is a retry: provision the
        // whole current record again (the core applies by key).
        let key = next
            .enterprise_key
            .clone()
            .ok_or_else(|| incomplete(next, "enterprise key"))?;
        let command = Command::provision(next).ok_or_else(|| incomplete(next, "organization"))?;
        emit(&key, command)?;
    } else if sent_to_core(current.status) {
        let key = next
            .enterprise_key
            .clone()
            .ok_or_else(|| incomplete(next, "enterprise key"))?;
        let org_id = next
            .org_id
            .clone()
            .ok_or_else(|| incomplete(next, "organization"))?;
        if profile_changed(current, next) {
            emit(
                &key,
                Command::UpdateSubscriber {
                    subscriber_id: next.id.clone(),
                    org_id: org_id.clone(),
                    email: next.email.clone(),
                    first_name: next.first_name.clone(),
                    last_name: next.last_name.clone(),
                    phone_number: next.phone_number.clone(),
                    extension: next.extension.clone(),
                    mobile_phone_number: next.mobile_phone_number.clone(),
                    language: next.language.clone(),
                    time_zone: next.time_zone.clone(),
                    subscriber_version: next.version,
                },
            )?;
        }
        if let Some(package) = package_change {
            emit(
                &key,
                Command::ChangePackage {
                    subscriber_id: next.id.clone(),
                    org_id,
                    package,
                    subscriber_version: next.version,
                },
            )?;
        }
    }
    Ok(())
}

/// Partial deletion (`lifecycle::partial_delete`) of `current`, with
/// `RemoveSubscriber` when the license core knew the subscriber. Returns
/// the stored record. Shared by `DeleteUser` and partner admins.
pub(super) fn store_partial_delete(
    conn: &Connection,
    current: &SubscriberRecord,
    now: i64,
    emit: &mut Emit<'_>,
) -> Result<SubscriberRecord, StoreError> {
    let next = lifecycle::partial_delete(current, now);
    subscribers::update_subscriber(conn, &next, now)?;
    if sent_to_core(current.status) {
        if let Some(org_id) = current.org_id.clone() {
            let key = current
                .enterprise_key
                .clone()
                .ok_or_else(|| incomplete(current, "enterprise key"))?;
            emit(
                &key,
                Command::RemoveSubscriber {
                    subscriber_id: next.id.clone(),
                    org_id,
                    subscriber_version: next.version,
                },
            )?;
        }
    }
    Ok(next)
}

/// Inserts one command into the outbox as pending, due at its `issued_at`.
pub(super) fn write_command(
    conn: &Connection,
    envelope: &CommandEnvelope,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(envelope)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode command: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO outbox (idempotency_key, enterprise_key, subscriber_id, kind,
                             envelope_json, state, attempts, next_attempt_at,
                             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?6)",
    )?
    .execute(params![
        envelope.idempotency_key,
        envelope.enterprise_key.as_str(),
        envelope.command.subscriber_id(),
        envelope.command.kind(),
        json,
        envelope.issued_at
    ])?;
    Ok(())
}
