//! A BroadWorks workspace (a room or shared device) provisioned into Webex
//! through the partner JSON API (Cisco's `/broadworks/workspaces`): a
//! BroadWorks user id standing for the place, in an enterprise's
//! organization. It holds one license, [`WORKSPACE_LICENSE`], from the
//! organization's subscriptions, so subscription moves take workspaces
//! like users.

use serde::{Deserialize, Serialize};

use super::ids::{EnterpriseKey, UserId};
use super::lifecycle::SubscriberError;
use super::phone::DirectoryNumber;

/// The license a workspace holds (its "package").
pub const WORKSPACE_LICENSE: &str = "webex-workspace";
/// Workspace ids start with it: a license holder whose id does is a
/// workspace (subscriber ids are bare UUIDs), wherever the holdings are
/// kept, a remote core included.
pub const WORKSPACE_ID_PREFIX: &str = "ws-";
/// Longest display name accepted (Cisco's limit for a place's name).
pub const DISPLAY_NAME_MAX: usize = 256;

/// Whether a license holder id names a workspace.
pub fn is_workspace(holder_id: &str) -> bool {
    holder_id.starts_with(WORKSPACE_ID_PREFIX)
}

/// Where a workspace's provisioning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceStatus {
    /// Accepted; the license core has not answered yet.
    Provisioning,
    Provisioned,
    /// The core refused it (no workspace license left: 9041).
    Error,
    Removed,
}

impl WorkspaceStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            WorkspaceStatus::Provisioning => "provisioning",
            WorkspaceStatus::Provisioned => "provisioned",
            WorkspaceStatus::Error => "error",
            WorkspaceStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<WorkspaceStatus> {
        [
            WorkspaceStatus::Provisioning,
            WorkspaceStatus::Provisioned,
            WorkspaceStatus::Error,
            WorkspaceStatus::Removed,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// A workspace as stored by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRecord {
    /// `ws-{uuid}`: the id the partner API answers with.
    pub id: String,
    pub provisioning_id: String,
    pub partner_id: String,
    /// The partner's `spEnterpriseId` as sent.
    pub sp_enterprise_id: String,
    pub enterprise_key: EnterpriseKey,
    pub org_id: String,
    pub user_id: UserId,
    pub display_name: String,
    pub phone_number: Option<DirectoryNumber>,
    pub extension: Option<String>,
    pub status: WorkspaceStatus,
    pub errors: Vec<SubscriberError>,
    /// Bumped by each change: a core answer settles the status only for
    /// the version it was asked about.
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_holders_are_told_apart_from_subscribers_by_their_id() {
        assert!(is_workspace("ws-0195f3a0-0000-7000-8000-000000000000"));
        assert!(!is_workspace("0195f3a0-0000-7000-8000-000000000000"));
        for s in [
            WorkspaceStatus::Provisioning,
            WorkspaceStatus::Provisioned,
            WorkspaceStatus::Error,
            WorkspaceStatus::Removed,
        ] {
            assert_eq!(WorkspaceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(WorkspaceStatus::parse("pending"), None);
    }
}
