//! Normalized commands: what the gateway asks of the license core. Each is
//! JSON-serializable and versioned, written to the durable outbox in the
//! same transaction as the state change it follows from, and delivered at
//! least once, in order per enterprise. The idempotency key
//! (`{trackingId}:{operationIndex}:{n}`) lets the receiver drop repeats.

pub mod outbox;

use serde::{Deserialize, Serialize};

use crate::domain::ids::{EnterpriseKey, UserId};
use crate::domain::lifecycle::SubscriberRecord;
use crate::domain::organization::PartnerRole;
use crate::domain::phone::DirectoryNumber;
use crate::domain::template::Package;
use crate::domain::workspace::WorkspaceRecord;

/// Wire version of the command JSON; bump on incompatible changes.
pub const COMMAND_VERSION: u32 = 1;

/// One command as stored in the outbox and sent to the license core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandEnvelope {
    pub version: u32,
    pub idempotency_key: String,
    pub enterprise_key: EnterpriseKey,
    pub tracking_id: String,
    /// Unix milliseconds when the command was accepted.
    pub issued_at: i64,
    pub command: Command,
}

/// A field that is there, even as `null` (`Some(None)`), as opposed to
/// absent (`None`, the field's default).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum Command {
    #[serde(rename_all = "camelCase")]
    EnsureOrganization {
        org_id: String,
        enterprise_key: EnterpriseKey,
        partner_id: String,
        provisioning_id: String,
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    ProvisionSubscriber {
        subscriber_id: String,
        org_id: String,
        user_id: UserId,
        email: Option<String>,
        first_name: String,
        last_name: String,
        phone_number: Option<DirectoryNumber>,
        extension: Option<String>,
        mobile_phone_number: Option<DirectoryNumber>,
        language: Option<String>,
        time_zone: Option<String>,
        package: Package,
        subscriber_version: i64,
        /// The subscriber is its organization's administrator (the first
        /// user of an organization created here, or the one who replaced
        /// a removed admin). Absent in commands stored before it existed:
        /// `false`.
        #[serde(default)]
        org_admin: bool,
        /// The BroadWorks group the user is a direct member of (the core's
        /// group auto-license templates). Absent in commands stored before
        /// it existed.
        #[serde(default)]
        group_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    UpdateSubscriber {
        subscriber_id: String,
        org_id: String,
        email: Option<String>,
        first_name: String,
        last_name: String,
        phone_number: Option<DirectoryNumber>,
        extension: Option<String>,
        mobile_phone_number: Option<DirectoryNumber>,
        language: Option<String>,
        time_zone: Option<String>,
        subscriber_version: i64,
        /// The BroadWorks group it is a direct member of: another than
        /// before is a group move (the core's group templates). Absent in
        /// commands stored before it existed.
        #[serde(default)]
        group_id: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ChangePackage {
        subscriber_id: String,
        org_id: String,
        package: Package,
        subscriber_version: i64,
        /// The BroadWorks user id and group (a remote core records them
        /// with the licenses). Absent in commands stored before they
        /// existed.
        #[serde(default)]
        user_id: Option<UserId>,
        #[serde(default)]
        group_id: Option<String>,
        /// The subscriber's number (`Some(None)`: it has none): the core
        /// decides Webex Calling again for a user it was withheld from.
        /// `None`: absent, in commands stored before it existed (the core
        /// uses the number it last saw).
        #[serde(
            default,
            deserialize_with = "present",
            skip_serializing_if = "Option::is_none"
        )]
        phone_number: Option<Option<DirectoryNumber>>,
    },
    #[serde(rename_all = "camelCase")]
    RemoveSubscriber {
        subscriber_id: String,
        org_id: String,
        subscriber_version: i64,
    },
    /// A user that was still waiting (`pending_*`: no email yet, email to
    /// validate, migration to consent) was removed by a detach. The core
    /// was never told about it (no `ProvisionSubscriber` went out), so it
    /// holds no license; the command lets it forget anything it keyed on
    /// the subscriber id.
    #[serde(rename_all = "camelCase")]
    DiscardPendingSubscriber {
        subscriber_id: String,
        org_id: String,
        subscriber_version: i64,
    },
    #[serde(rename_all = "camelCase")]
    IssueActivationCode {
        subscriber_id: String,
        org_id: Option<String>,
        user_id: UserId,
        device_type: Option<String>,
        mac_address: Option<String>,
    },
    /// The enterprise's first subscriber matched a user of an existing
    /// organization, which is now the enterprise's organization.
    #[serde(rename_all = "camelCase")]
    AttachOrganization {
        /// The existing organization's id (kept).
        org_id: String,
        enterprise_key: EnterpriseKey,
        partner_id: String,
        /// Rights the partner holds in the organization after the attach.
        partner_role: PartnerRole,
        /// The organization keeps its name (always true).
        keep_name: bool,
        /// Its authentication settings are left unchanged (always true).
        keep_auth_settings: bool,
        /// Its email-suppression flag is left unchanged (always true).
        keep_email_suppression: bool,
        /// The first provisioned user is not made an admin (always false).
        first_user_admin: bool,
        /// "Restricted by partner" stays off (always false).
        restricted_by_partner: bool,
    },
    /// An account of an existing organization (not one of the gateway's
    /// subscribers) holding `email` moves to subscriber `subscriber_id`:
    /// it leaves `from_org_id` (it was the first user of a new
    /// organization, or consented); the `ProvisionSubscriber` or
    /// `UpdateSubscriber` that follows gives the subscriber the email.
    #[serde(rename_all = "camelCase")]
    MoveAccount {
        subscriber_id: String,
        email: String,
        from_org_id: String,
    },
    /// A partner admin named `subscriber_id` (provisioned) the
    /// organization's administrator; `replaces` loses the role. (The first
    /// admin is named by its `ProvisionSubscriber`'s `orgAdmin`.)
    #[serde(rename_all = "camelCase")]
    SetOrganizationAdmin {
        org_id: String,
        subscriber_id: String,
        replaces: Option<String>,
    },
    /// The enterprise was detached: its subscribers were removed before
    /// (their `RemoveSubscriber` precede this; a full deletion, their
    /// names, email, language and time zone are gone from the gateway),
    /// the link is gone and the organization is on its own again. The
    /// core must drop the partner's admin role in the organization (the
    /// gateway records it as `none`); a later attach grants it afresh.
    #[serde(rename_all = "camelCase")]
    DetachOrganization {
        org_id: String,
        enterprise_key: EnterpriseKey,
        partner_id: String,
    },
    /// A workspace was provisioned through the partner API: the core gives
    /// it the workspace license from the organization's subscriptions.
    #[serde(rename_all = "camelCase")]
    ProvisionWorkspace {
        workspace_id: String,
        org_id: String,
        user_id: UserId,
        display_name: String,
        phone_number: Option<DirectoryNumber>,
        extension: Option<String>,
        workspace_version: i64,
    },
    /// Its BroadWorks user id, number or extension changed (its license
    /// stays).
    #[serde(rename_all = "camelCase")]
    UpdateWorkspace {
        workspace_id: String,
        org_id: String,
        user_id: UserId,
        display_name: String,
        phone_number: Option<DirectoryNumber>,
        extension: Option<String>,
        workspace_version: i64,
    },
    /// Removed: its license goes back to its subscription.
    #[serde(rename_all = "camelCase")]
    RemoveWorkspace {
        workspace_id: String,
        org_id: String,
        workspace_version: i64,
    },
}

impl Command {
    /// `ProvisionWorkspace` (`update`: `UpdateWorkspace`) for a record.
    pub fn workspace(w: &WorkspaceRecord, update: bool) -> Command {
        let (workspace_id, org_id, user_id, display_name) = (
            w.id.clone(),
            w.org_id.clone(),
            w.user_id.clone(),
            w.display_name.clone(),
        );
        let (phone_number, extension, workspace_version) =
            (w.phone_number.clone(), w.extension.clone(), w.version);
        if update {
            Command::UpdateWorkspace {
                workspace_id,
                org_id,
                user_id,
                display_name,
                phone_number,
                extension,
                workspace_version,
            }
        } else {
            Command::ProvisionWorkspace {
                workspace_id,
                org_id,
                user_id,
                display_name,
                phone_number,
                extension,
                workspace_version,
            }
        }
    }

    /// The workspace a command is about, and the version it was issued for.
    pub fn workspace_target(&self) -> Option<(&str, i64)> {
        match self {
            Command::ProvisionWorkspace {
                workspace_id,
                workspace_version,
                ..
            }
            | Command::UpdateWorkspace {
                workspace_id,
                workspace_version,
                ..
            }
            | Command::RemoveWorkspace {
                workspace_id,
                workspace_version,
                ..
            } => Some((workspace_id, *workspace_version)),
            _ => None,
        }
    }

    /// `ProvisionSubscriber` with everything the core needs from a record;
    /// `None` while the record lacks a user id or an organization.
    pub fn provision(record: &SubscriberRecord, org_admin: bool) -> Option<Command> {
        Some(Command::ProvisionSubscriber {
            subscriber_id: record.id.clone(),
            org_id: record.org_id.clone()?,
            user_id: record.user_id.clone()?,
            email: record.email.clone(),
            first_name: record.first_name.clone(),
            last_name: record.last_name.clone(),
            phone_number: record.phone_number.clone(),
            extension: record.extension.clone(),
            mobile_phone_number: record.mobile_phone_number.clone(),
            language: record.language.clone(),
            time_zone: record.time_zone.clone(),
            package: record.package,
            subscriber_version: record.version,
            org_admin,
            group_id: record.group_id.clone(),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Command::EnsureOrganization { .. } => "EnsureOrganization",
            Command::ProvisionSubscriber { .. } => "ProvisionSubscriber",
            Command::UpdateSubscriber { .. } => "UpdateSubscriber",
            Command::ChangePackage { .. } => "ChangePackage",
            Command::RemoveSubscriber { .. } => "RemoveSubscriber",
            Command::DiscardPendingSubscriber { .. } => "DiscardPendingSubscriber",
            Command::IssueActivationCode { .. } => "IssueActivationCode",
            Command::AttachOrganization { .. } => "AttachOrganization",
            Command::DetachOrganization { .. } => "DetachOrganization",
            Command::MoveAccount { .. } => "MoveAccount",
            Command::SetOrganizationAdmin { .. } => "SetOrganizationAdmin",
            Command::ProvisionWorkspace { .. } => "ProvisionWorkspace",
            Command::UpdateWorkspace { .. } => "UpdateWorkspace",
            Command::RemoveWorkspace { .. } => "RemoveWorkspace",
        }
    }

    /// The organization the command names (`orgId`), if any.
    pub fn org_id(&self) -> Option<&str> {
        match self {
            Command::EnsureOrganization { org_id, .. }
            | Command::ProvisionSubscriber { org_id, .. }
            | Command::UpdateSubscriber { org_id, .. }
            | Command::ChangePackage { org_id, .. }
            | Command::RemoveSubscriber { org_id, .. }
            | Command::DiscardPendingSubscriber { org_id, .. }
            | Command::AttachOrganization { org_id, .. }
            | Command::DetachOrganization { org_id, .. }
            | Command::SetOrganizationAdmin { org_id, .. }
            | Command::ProvisionWorkspace { org_id, .. }
            | Command::UpdateWorkspace { org_id, .. }
            | Command::RemoveWorkspace { org_id, .. } => Some(org_id),
            Command::MoveAccount { from_org_id, .. } => Some(from_org_id),
            Command::IssueActivationCode { org_id, .. } => org_id.as_deref(),
        }
    }

    /// The subscriber whose status follows this command's outcome.
    pub fn subscriber_id(&self) -> Option<&str> {
        match self {
            Command::ProvisionSubscriber { subscriber_id, .. }
            | Command::UpdateSubscriber { subscriber_id, .. }
            | Command::ChangePackage { subscriber_id, .. }
            | Command::RemoveSubscriber { subscriber_id, .. }
            | Command::DiscardPendingSubscriber { subscriber_id, .. }
            | Command::IssueActivationCode { subscriber_id, .. }
            | Command::MoveAccount { subscriber_id, .. }
            | Command::SetOrganizationAdmin { subscriber_id, .. } => Some(subscriber_id),
            // The outbox's subscriber column keys a workspace's commands
            // by its id (`ws-…`: never a subscriber's).
            Command::ProvisionWorkspace { workspace_id, .. }
            | Command::UpdateWorkspace { workspace_id, .. }
            | Command::RemoveWorkspace { workspace_id, .. } => Some(workspace_id),
            Command::EnsureOrganization { .. }
            | Command::AttachOrganization { .. }
            | Command::DetachOrganization { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(command: Command) -> CommandEnvelope {
        CommandEnvelope {
            version: COMMAND_VERSION,
            idempotency_key: "BWG_1_2:0:1".into(),
            enterprise_key: EnterpriseKey::derive("acme", "hq", true),
            tracking_id: "BWG_1_2".into(),
            issued_at: 1_795_575_585_388,
            command,
        }
    }

    /// docs/flowthrough.md documents this exact shape; a change here is a wire
    /// change for remote license cores and must bump COMMAND_VERSION.
    #[test]
    fn provision_command_json_is_the_documented_shape() {
        let env = envelope(Command::ProvisionSubscriber {
            subscriber_id: "s-1".into(),
            org_id: "o-1".into(),
            user_id: UserId::parse("alice@acme.example").unwrap(),
            email: Some("alice@acme.example".into()),
            first_name: "Alice".into(),
            last_name: "Ng".into(),
            phone_number: Some(DirectoryNumber::parse("+1-240-555-0100").unwrap()),
            extension: None,
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            package: Package::Standard,
            subscriber_version: 1,
            org_admin: true,
            group_id: Some("hq".into()),
        });
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "idempotencyKey": "BWG_1_2:0:1",
                "enterpriseKey": "acme",
                "trackingId": "BWG_1_2",
                "issuedAt": 1_795_575_585_388i64,
                "command": {
                    "type": "ProvisionSubscriber",
                    "subscriberId": "s-1",
                    "orgId": "o-1",
                    "userId": "alice@acme.example",
                    "email": "alice@acme.example",
                    "firstName": "Alice",
                    "lastName": "Ng",
                    "phoneNumber": "+12405550100",
                    "extension": null,
                    "mobilePhoneNumber": null,
                    "language": null,
                    "timeZone": null,
                    "package": "standard",
                    "subscriberVersion": 1,
                    "orgAdmin": true,
                    "groupId": "hq"
                }
            })
        );
        let back: CommandEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn every_command_round_trips_and_names_its_type() {
        let commands = vec![
            Command::EnsureOrganization {
                org_id: "o".into(),
                enterprise_key: EnterpriseKey::derive("sp", "g", false),
                partner_id: "p".into(),
                provisioning_id: "t".into(),
                name: "sp+g".into(),
            },
            Command::UpdateSubscriber {
                subscriber_id: "s".into(),
                org_id: "o".into(),
                email: None,
                first_name: "A".into(),
                last_name: "B".into(),
                phone_number: None,
                extension: Some("1234".into()),
                mobile_phone_number: None,
                language: None,
                time_zone: None,
                subscriber_version: 2,
                group_id: Some("g2".into()),
            },
            Command::ChangePackage {
                subscriber_id: "s".into(),
                org_id: "o".into(),
                package: Package::Premium,
                subscriber_version: 3,
                user_id: Some(UserId::parse("ann@acme.example").unwrap()),
                group_id: Some("g".into()),
                phone_number: Some(DirectoryNumber::parse("2405550100").ok()),
            },
            Command::RemoveSubscriber {
                subscriber_id: "s".into(),
                org_id: "o".into(),
                subscriber_version: 4,
            },
            Command::DiscardPendingSubscriber {
                subscriber_id: "s".into(),
                org_id: "o".into(),
                subscriber_version: 2,
            },
            Command::IssueActivationCode {
                subscriber_id: "s".into(),
                org_id: None,
                user_id: UserId::parse("a@b.example").unwrap(),
                device_type: Some("Cisco 8851".into()),
                mac_address: Some("0011AABBCCDD".into()),
            },
            Command::MoveAccount {
                subscriber_id: "s".into(),
                email: "a@b.example".into(),
                from_org_id: "old".into(),
            },
            Command::SetOrganizationAdmin {
                org_id: "o".into(),
                subscriber_id: "s".into(),
                replaces: Some("s0".into()),
            },
            Command::ProvisionWorkspace {
                workspace_id: "ws-1".into(),
                org_id: "o".into(),
                user_id: UserId::parse("room@b.example").unwrap(),
                display_name: "Room".into(),
                phone_number: Some(DirectoryNumber::parse("+12025550100").unwrap()),
                extension: Some("100".into()),
                workspace_version: 1,
            },
            Command::UpdateWorkspace {
                workspace_id: "ws-1".into(),
                org_id: "o".into(),
                user_id: UserId::parse("room@b.example").unwrap(),
                display_name: "Room".into(),
                phone_number: None,
                extension: None,
                workspace_version: 2,
            },
            Command::RemoveWorkspace {
                workspace_id: "ws-1".into(),
                org_id: "o".into(),
                workspace_version: 3,
            },
        ];
        for c in commands {
            let env = envelope(c);
            let json = serde_json::to_value(&env).unwrap();
            assert_eq!(json["command"]["type"], env.command.kind());
            let back: CommandEnvelope = serde_json::from_value(json).unwrap();
            assert_eq!(back, env);
            // A workspace's commands are keyed by its id in the outbox.
            if let Some((id, _)) = env.command.workspace_target() {
                assert_eq!(env.command.subscriber_id(), Some(id));
            }
        }
    }
}
