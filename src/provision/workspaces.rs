//! Workspaces (Cisco's `/broadworks/workspaces`): a partner provisions a
//! BroadWorks user id standing for a place into one of its enterprises'
//! organizations, changes its user id, number or extension, or removes
//! it. Each change is stored with its command to the license core in one
//! unit of work (the core gives or takes the workspace license); the
//! core's answer settles the workspace's status (`delivered`, `failed`).

use crate::commands::Command;
use crate::domain::ids::{EnterpriseKey, UserId};
use crate::domain::lifecycle::SubscriberError;
use crate::domain::phone::DirectoryNumber;
use crate::domain::workspace::{WorkspaceRecord, WorkspaceStatus, WORKSPACE_ID_PREFIX};
use crate::domain::{ErrorCode, Refusal};
use crate::store::tx::{OrgOrigin, Tx};
use crate::store::StoreError;

use super::emit::Emitter;

/// A new workspace as the partner API sends it (checked by the face).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorkspace {
    pub provisioning_id: String,
    pub user_id: UserId,
    /// The partner's `spEnterpriseId`: the enterprise key.
    pub sp_enterprise_id: String,
    pub display_name: String,
    pub phone_number: Option<DirectoryNumber>,
    pub extension: Option<String>,
}

/// A change to a workspace: each field given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceChange {
    pub user_id: Option<UserId>,
    pub phone_number: Option<DirectoryNumber>,
    pub extension: Option<String>,
}

fn refused<T>(
    code: ErrorCode,
    detail: impl Into<String>,
) -> Result<Result<T, Refusal>, StoreError> {
    Ok(Err(Refusal::new(code, detail)))
}

fn not_found<T>() -> Result<Result<T, Refusal>, StoreError> {
    refused(ErrorCode::NotFound, "no such workspace")
}

/// Whether `user_id` is free for a workspace: no subscriber and no other
/// live workspace has it.
fn user_id_taken(tx: &dyn Tx, user_id: &UserId, except: Option<&str>) -> Result<bool, StoreError> {
    if tx.subscriber_by_user_id(user_id.as_str())?.is_some() {
        return Ok(true);
    }
    Ok(tx
        .live_workspace_by_user_id(user_id.as_str())?
        .is_some_and(|w| Some(w.id.as_str()) != except))
}

/// Provisions `new` for `partner_id` (whose template `provisioning_id`
/// is, checked by the caller).
pub fn create(
    tx: &dyn Tx,
    partner_id: &str,
    new: &NewWorkspace,
    tracking_id: &str,
    now: i64,
) -> Result<Result<WorkspaceRecord, Refusal>, StoreError> {
    let key = EnterpriseKey::from_stored(new.sp_enterprise_id.clone());
    let org = match tx.organization_by_key(partner_id, &key)? {
        Some((org, OrgOrigin::Created | OrgOrigin::Attached)) => org,
        // No customer yet, or one whose first user has not verified its
        // email (not announced to the core).
        _ => {
            return refused(
                ErrorCode::NotFound,
                format!(
                "spEnterpriseId '{}': no customer organization of yours (provision a user first)",
                new.sp_enterprise_id
            ),
            )
        }
    };
    if user_id_taken(tx, &new.user_id, None)? {
        return refused(
            ErrorCode::UserIdAlreadyAssociated,
            format!("userId '{}' is already a user or a workspace", new.user_id),
        );
    }
    let workspace = WorkspaceRecord {
        id: format!("{WORKSPACE_ID_PREFIX}{}", super::new_id()),
        provisioning_id: new.provisioning_id.clone(),
        partner_id: partner_id.to_string(),
        sp_enterprise_id: new.sp_enterprise_id.clone(),
        enterprise_key: key,
        org_id: org.id,
        user_id: new.user_id.clone(),
        display_name: new.display_name.clone(),
        phone_number: new.phone_number.clone(),
        extension: new.extension.clone(),
        status: WorkspaceStatus::Provisioning,
        errors: Vec::new(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    tx.insert_workspace(&workspace)?;
    Emitter::new(tx, tracking_id, "workspace", now).emit(
        &workspace.enterprise_key,
        Command::workspace(&workspace, false),
    )?;
    Ok(Ok(workspace))
}

/// The partner's live workspace `id`.
fn partners(
    tx: &dyn Tx,
    partner_id: &str,
    id: &str,
) -> Result<Option<WorkspaceRecord>, StoreError> {
    Ok(tx
        .workspace(id)?
        .filter(|w| w.partner_id == partner_id && w.status != WorkspaceStatus::Removed))
}

/// Applies `change` to the partner's workspace `id`.
pub fn update(
    tx: &dyn Tx,
    partner_id: &str,
    id: &str,
    change: &WorkspaceChange,
    tracking_id: &str,
    now: i64,
) -> Result<Result<WorkspaceRecord, Refusal>, StoreError> {
    let Some(mut w) = partners(tx, partner_id, id)? else {
        return not_found();
    };
    if let Some(user_id) = &change.user_id {
        if user_id_taken(tx, user_id, Some(&w.id))? {
            return refused(
                ErrorCode::UserIdAlreadyAssociated,
                format!("userId '{user_id}' is already a user or a workspace"),
            );
        }
    }
    let before = w.clone();
    if let Some(u) = &change.user_id {
        w.user_id = u.clone();
    }
    if let Some(n) = &change.phone_number {
        w.phone_number = Some(n.clone());
    }
    if let Some(e) = &change.extension {
        w.extension = Some(e.clone());
    }
    if w == before {
        // Nothing new: no command, the same answer.
        return Ok(Ok(w));
    }
    w.version += 1;
    w.updated_at = now;
    // A workspace the core refused is asked again; a provisioned one is
    // told of the change (its license stays).
    let again = w.status == WorkspaceStatus::Error;
    if again {
        w.status = WorkspaceStatus::Provisioning;
    }
    tx.update_workspace(&w)?;
    Emitter::new(tx, tracking_id, "workspace", now)
        .emit(&w.enterprise_key, Command::workspace(&w, !again))?;
    Ok(Ok(w))
}

/// Removes the partner's workspace `id`: its license goes back.
pub fn remove(
    tx: &dyn Tx,
    partner_id: &str,
    id: &str,
    tracking_id: &str,
    now: i64,
) -> Result<Result<WorkspaceRecord, Refusal>, StoreError> {
    let Some(w) = partners(tx, partner_id, id)? else {
        return not_found();
    };
    let mut out = Emitter::new(tx, tracking_id, "workspace", now);
    Ok(Ok(removed(&mut out, w)?))
}

/// Marks `w` removed and tells the core (its license goes back): a
/// partner's removal, or its enterprise's detach.
pub(super) fn removed(
    out: &mut Emitter<'_>,
    mut w: WorkspaceRecord,
) -> Result<WorkspaceRecord, StoreError> {
    w.status = WorkspaceStatus::Removed;
    w.version += 1;
    w.updated_at = out.now();
    out.tx().update_workspace(&w)?;
    let command = Command::RemoveWorkspace {
        workspace_id: w.id.clone(),
        org_id: w.org_id.clone(),
        workspace_version: w.version,
    };
    out.emit(&w.enterprise_key, command)?;
    Ok(w)
}

/// The core applied a command about workspace `id` at `version`: the
/// latest change is provisioned.
pub(super) fn delivered(tx: &dyn Tx, id: &str, version: i64, now: i64) -> Result<(), StoreError> {
    let Some(mut w) = tx.workspace(id)? else {
        return Ok(());
    };
    if w.version == version && w.status == WorkspaceStatus::Provisioning {
        w.status = WorkspaceStatus::Provisioned;
        w.updated_at = now;
        tx.update_workspace(&w)?;
    }
    Ok(())
}

/// The core refused a command about workspace `id` at `version`: the error
/// is kept, and the workspace is in `error` when it was about its latest
/// change.
pub(super) fn failed(
    tx: &dyn Tx,
    id: &str,
    version: i64,
    error: SubscriberError,
    now: i64,
) -> Result<(), StoreError> {
    let Some(mut w) = tx.workspace(id)? else {
        tracing::warn!(workspace_id = id, "failed command for an unknown workspace");
        return Ok(());
    };
    w.errors.push(error);
    if w.version == version && w.status != WorkspaceStatus::Removed {
        w.status = WorkspaceStatus::Error;
    }
    w.updated_at = now;
    tx.update_workspace(&w)
}
