//! The gateway's workspaces inside a unit of work (a part of
//! [`super::Tx`]). Which workspace may exist, and what follows a change,
//! is `provision::workspaces`'s; a back-end only maps rows.

use crate::domain::workspace::WorkspaceRecord;

use super::StoreError;

pub trait WorkspaceRows {
    /// Inserts a new workspace. Two live workspaces never share a user id
    /// (a unique index: the loser of a race conflicts and runs again).
    fn insert_workspace(&self, workspace: &WorkspaceRecord) -> Result<(), StoreError>;
    fn workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StoreError>;
    /// The live (not removed) workspace with this BroadWorks user id.
    fn live_workspace_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError>;
    /// The organization's live workspaces, by id.
    fn live_workspaces_of_org(&self, org_id: &str) -> Result<Vec<WorkspaceRecord>, StoreError>;
    /// Writes every column of an existing workspace (by id).
    fn update_workspace(&self, workspace: &WorkspaceRecord) -> Result<(), StoreError>;
}
