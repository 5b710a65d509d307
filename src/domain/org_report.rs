//! What is known about an existing organization (org attach): its link to
//! an enterprise, partner roles, approval emails and commands. Data only:
//! the store assembles it; the admin API and the approval page show it.

use super::email::EmailRecord;
use super::organization::{ExistingOrganization, PartnerRole};

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
    /// `attach` | `approval` | `detach` (role `none`).
    pub source: String,
    pub updated_at: i64,
}

/// An existing organization with its link, the partner roles in it, the
/// approval emails sent about it and the commands naming it.
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
