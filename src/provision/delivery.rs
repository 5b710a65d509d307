//! What a delivery attempt's outcome does: to the outbox row (delivered,
//! failed, retry later) and to the subscriber the command is about
//! (`provisioned` once its latest change is delivered; `error` with
//! `errors[]` when a command about its current version is rejected).

use crate::commands::Command;
use crate::domain::device::IssuedDevice;
use crate::domain::lifecycle::{SubscriberError, SubscriberRecord, SubscriberStatus};
use crate::store::tx::Tx;
use crate::store::{transact, OutboxState, Store, StoreError};

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Applied; `notice`: what the core could not give (Webex Calling
    /// withheld), kept in the subscriber's `errors[]`; `device`: a device
    /// activation allowed (its code is emailed).
    Delivered {
        notice: Option<SubscriberError>,
        device: Option<IssuedDevice>,
    },
    /// Permanent: the command failed; the subscriber goes to `error`.
    Rejected {
        error_code: u32,
        description: String,
    },
    /// Try again at `retry_at` (unix ms).
    Retry { error: String, retry_at: i64 },
}

impl DeliveryOutcome {
    /// Applied, with no notice and no device.
    pub fn delivered() -> DeliveryOutcome {
        DeliveryOutcome::Delivered {
            notice: None,
            device: None,
        }
    }
}

/// The kinds of command whose delivery settles the subscriber's status
/// ([`status_target`]): only these, still in flight, keep it
/// `provisioning` / `updating` (a device activation code or a removal in
/// flight does not).
const SETTLING: &[&str] = &["ProvisionSubscriber", "UpdateSubscriber", "ChangePackage"];

/// The subscriber whose status a delivery outcome decides, and the record
/// version the command was issued for.
fn status_target(command: &Command) -> Option<(&str, i64)> {
    match command {
        Command::ProvisionSubscriber {
            subscriber_id,
            subscriber_version,
            ..
        }
        | Command::UpdateSubscriber {
            subscriber_id,
            subscriber_version,
            ..
        }
        | Command::ChangePackage {
            subscriber_id,
            subscriber_version,
            ..
        } => Some((subscriber_id, *subscriber_version)),
        Command::RemoveSubscriber { .. }
        | Command::DiscardPendingSubscriber { .. }
        | Command::EnsureOrganization { .. }
        | Command::AttachOrganization { .. }
        | Command::DetachOrganization { .. }
        | Command::IssueActivationCode { .. }
        | Command::MoveAccount { .. }
        | Command::SetOrganizationAdmin { .. }
        | Command::ProvisionWorkspace { .. }
        | Command::UpdateWorkspace { .. }
        | Command::RemoveWorkspace { .. } => None,
    }
}

/// One delivery attempt's outcome, with the command the worker delivered
/// (as claimed: a stored command never changes).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub seq: i64,
    pub command: Command,
    pub outcome: DeliveryOutcome,
}

/// Records several commands' outcomes in one unit of work (all or
/// nothing): a delivery pass settles a run of one enterprise's commands
/// with one commit instead of one each.
pub async fn record<S: Store + ?Sized>(
    store: &S,
    attempts: std::sync::Arc<[Attempt]>,
    now: i64,
) -> Result<(), StoreError> {
    transact(store, move |tx| {
        attempts
            .iter()
            .try_for_each(|a| complete_command(tx, a.seq, &a.command, &a.outcome, now))
    })
    .await
}

/// Records one attempt's outcome for the command `seq` (`command` is its
/// content, so the unit of work reads only its state). A settled command
/// (delivered or failed) is left as it is: a repeated completion
/// (at-least-once) changes nothing. An unknown seq is `MissingReference`.
pub fn complete_command(
    tx: &dyn Tx,
    seq: i64,
    command: &Command,
    outcome: &DeliveryOutcome,
    now: i64,
) -> Result<(), StoreError> {
    let Some(state) = tx.command_state(seq)? else {
        return Err(StoreError::MissingReference {
            entity: "outbox entry",
            id: seq.to_string(),
        });
    };
    if state != OutboxState::Pending {
        tracing::debug!(seq, ?state, "outbox entry already settled");
        return Ok(());
    }
    match outcome {
        DeliveryOutcome::Delivered { notice, device } => {
            tx.mark_delivered(seq, now)?;
            if let (Some(device), Command::IssueActivationCode { subscriber_id, .. }) =
                (device, command)
            {
                super::device_codes::email_code(tx, seq, subscriber_id, device, now)?;
            }
            if let Some((workspace_id, version)) = command.workspace_target() {
                super::workspaces::delivered(tx, workspace_id, version, now)?;
            }
            if let Some((subscriber_id, version)) = status_target(command) {
                // Only the latest change settles the status: a newer
                // version, or another command of this version, still in
                // flight keeps `provisioning` / `updating`.
                if !tx.has_pending_commands(subscriber_id, SETTLING)? {
                    let settled = tx.set_status_if(
                        subscriber_id,
                        version,
                        &[SubscriberStatus::Provisioning, SubscriberStatus::Updating],
                        SubscriberStatus::Provisioned,
                        notice.as_slice(),
                        now,
                    )?;
                    if settled {
                        super::events::subscriber_provisioned(tx, subscriber_id, now)?;
                    }
                }
            }
        }
        DeliveryOutcome::Rejected {
            error_code,
            description,
        } => {
            tx.mark_failed(seq, &format!("{error_code}: {description}"))?;
            let error = SubscriberError {
                error_code: *error_code,
                description: description.clone(),
            };
            if let Some((workspace_id, version)) = command.workspace_target() {
                super::workspaces::failed(tx, workspace_id, version, error, now)?;
            } else if let Some(subscriber_id) = command.subscriber_id() {
                record_failure(
                    tx,
                    subscriber_id,
                    status_target(command).map(|(_, v)| v),
                    error,
                    now,
                )?;
            }
        }
        DeliveryOutcome::Retry { error, retry_at } => {
            tx.schedule_retry(seq, *retry_at, error)?;
        }
    }
    Ok(())
}

/// Appends `error` to the subscriber's `errors[]`; moves it to `error` when
/// the failed command was about its current version (`status_version`).
fn record_failure(
    tx: &dyn Tx,
    subscriber_id: &str,
    status_version: Option<i64>,
    error: SubscriberError,
    now: i64,
) -> Result<(), StoreError> {
    let Some(s) = tx.subscriber_by_id(subscriber_id)? else {
        tracing::warn!(subscriber_id, "failed command for an unknown subscriber");
        return Ok(());
    };
    let s_status = s.status;
    let mut errors = s.errors;
    errors.push(error);
    let to_error = status_version == Some(s.version)
        && !matches!(
            s.status,
            SubscriberStatus::Removed | SubscriberStatus::Error
        );
    tx.set_errors(
        subscriber_id,
        &errors,
        to_error.then_some(SubscriberStatus::Error),
        now,
    )?;
    if to_error {
        let failed = SubscriberRecord {
            status: SubscriberStatus::Error,
            errors,
            ..s
        };
        super::events::subscriber_changed(tx, Some(s_status), None, &failed, now)?;
    }
    Ok(())
}
