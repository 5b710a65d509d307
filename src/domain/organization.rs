//! Existing customer organizations (from the identity system, not yet
//! linked to a BroadWorks enterprise) and the rules for attaching an
//! enterprise to one. Pure: the store applies them in its transaction.

use serde::{Deserialize, Serialize};

/// Organizations this large need their administrators' approval.
pub const APPROVAL_USER_THRESHOLD: u32 = 100;
/// At most this many of the organization's admins are asked to approve.
pub const MAX_NOTIFIED_ADMINS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseState {
    Active,
    Suspended,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgLicense {
    pub name: String,
    pub state: LicenseState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgUser {
    pub email: String,
    #[serde(default)]
    pub is_admin: bool,
}

/// Rights the partner holds in a customer organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerRole {
    None,
    /// May provision users (what auto-attach grants to a licensed org).
    ProvisioningAdmin,
    /// External full admin (granted by the org's admins, or by auto-attach
    /// to an org without active licenses).
    FullAdmin,
}

/// An organization as the identity system describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistingOrganization {
    pub id: String,
    pub name: String,
    /// Total users, which may exceed the `users` listed here.
    pub user_count: u32,
    #[serde(default)]
    pub users: Vec<OrgUser>,
    #[serde(default)]
    pub verified_domains: Vec<String>,
    #[serde(default)]
    pub claimed_domains: Vec<String>,
    #[serde(default)]
    pub licenses: Vec<OrgLicense>,
    /// Opaque to the gateway; kept unchanged through an attach.
    #[serde(default)]
    pub auth_settings: serde_json::Value,
    #[serde(default)]
    pub email_suppression: bool,
    #[serde(default)]
    pub branding: Option<serde_json::Value>,
}

/// Why an attach needs approval (each alone is enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalReason {
    ManyUsers,
    VerifiedDomain,
    ClaimedDomain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachDecision {
    /// Fail with 2017; ask these admins (at most five) to approve the
    /// partner admin as external full admin.
    NeedsApproval {
        reasons: Vec<ApprovalReason>,
        notify: Vec<String>,
    },
    /// Link the enterprise now, granting the partner this role.
    Attach { partner_role: PartnerRole },
}

impl ExistingOrganization {
    pub fn approval_reasons(&self) -> Vec<ApprovalReason> {
        let mut reasons = Vec::new();
        if self.user_count >= APPROVAL_USER_THRESHOLD {
            reasons.push(ApprovalReason::ManyUsers);
        }
        if !self.verified_domains.is_empty() {
            reasons.push(ApprovalReason::VerifiedDomain);
        }
        if !self.claimed_domains.is_empty() {
            reasons.push(ApprovalReason::ClaimedDomain);
        }
        reasons
    }

    /// No licenses at all, or only suspended/cancelled ones.
    pub fn has_no_active_license(&self) -> bool {
        self.licenses
            .iter()
            .all(|l| l.state != LicenseState::Active)
    }

    /// The admins asked for approval: the first five, in listed order,
    /// without duplicates (case-insensitive).
    pub fn admins_to_notify(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for u in self.users.iter().filter(|u| u.is_admin) {
            if !out.iter().any(|e| e.eq_ignore_ascii_case(&u.email)) {
                out.push(u.email.clone());
            }
            if out.len() == MAX_NOTIFIED_ADMINS {
                break;
            }
        }
        out
    }

    pub fn has_user_email(&self, email: &str) -> bool {
        self.users
            .iter()
            .any(|u| u.email.eq_ignore_ascii_case(email))
    }
}

/// `granted`: the role the org's admins already gave this partner (an
/// approval makes it `FullAdmin`, after which the retry attaches).
pub fn decide_attach(org: &ExistingOrganization, granted: PartnerRole) -> AttachDecision {
    let reasons = org.approval_reasons();
    if !reasons.is_empty() && granted < PartnerRole::FullAdmin {
        return AttachDecision::NeedsApproval {
            reasons,
            notify: org.admins_to_notify(),
        };
    }
    let auto_role = if org.has_no_active_license() {
        PartnerRole::FullAdmin
    } else {
        PartnerRole::ProvisioningAdmin
    };
    AttachDecision::Attach {
        partner_role: auto_role.max(granted),
    }
}

/// The name of an organization created for an enterprise, from the names
/// BroadWorks sent with its first subscriber (`serviceProviderName`,
/// `groupName`; blank ones count as absent):
///
/// * enterprise mode (the enterprise is the service provider): its name,
///   else the enterprise key (the `serviceProviderId`);
/// * group mode (each group is a customer): `"{serviceProviderName} — {groupName}"`
///   when both are sent, else the group's name alone, else the enterprise
///   key (`serviceProviderId+groupId`). The service provider's name alone
///   does not name a group's organization (every group of the provider
///   would get the same name), so it falls back to the key.
pub fn new_org_name(
    enterprise_mode: bool,
    service_provider_name: Option<&str>,
    group_name: Option<&str>,
    key: &super::ids::EnterpriseKey,
) -> String {
    fn present(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|s| !s.is_empty())
    }
    let (sp, group) = (present(service_provider_name), present(group_name));
    match (enterprise_mode, sp, group) {
        (true, Some(sp), _) => sp.to_string(),
        (false, Some(sp), Some(group)) => format!("{sp} — {group}"),
        (false, None, Some(group)) => group.to_string(),
        _ => key.as_str().to_string(),
    }
}

/// Prefix of the dedupe keys of every org-attach approval email about
/// `org_id` (any partner). Ids are escaped (`%` → `%25`, `:` → `%3A`) so
/// one (org, partner) pair never reads as another.
pub fn approval_email_key_prefix(org_id: &str) -> String {
    format!("org-approval:{}:", key_part(org_id))
}

/// Prefix of the dedupe keys of the approval emails for (org, partner).
pub fn approval_email_pair_prefix(org_id: &str, partner_id: &str) -> String {
    format!(
        "{}{}:",
        approval_email_key_prefix(org_id),
        key_part(partner_id)
    )
}

/// One id inside a dedupe key: `%` and `:` escaped.
fn key_part(id: &str) -> String {
    id.replace('%', "%25").replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_orgs_are_named_after_the_enterprise_or_group_else_the_key() {
        use crate::domain::ids::EnterpriseKey;
        let ent = EnterpriseKey::derive("acme-sp", "hq", true);
        let grp = EnterpriseKey::derive("acme-sp", "hq", false);
        // Enterprise mode: the service provider's name, else the key.
        assert_eq!(
            new_org_name(true, Some("Acme Inc"), Some("HQ"), &ent),
            "Acme Inc"
        );
        assert_eq!(new_org_name(true, None, Some("HQ"), &ent), ent.as_str());
        assert_eq!(new_org_name(true, Some("  "), None, &ent), ent.as_str());
        assert_eq!(new_org_name(true, None, None, &ent), "acme-sp");
        // Group mode: both names, else the group's, else the key.
        assert_eq!(
            new_org_name(false, Some("Acme Inc"), Some("HQ"), &grp),
            "Acme Inc — HQ"
        );
        assert_eq!(new_org_name(false, None, Some("HQ"), &grp), "HQ");
        assert_eq!(
            new_org_name(false, Some("Acme Inc"), None, &grp),
            grp.as_str()
        );
        assert_eq!(
            new_org_name(false, Some("Acme Inc"), Some(""), &grp),
            grp.as_str()
        );
        assert_eq!(new_org_name(false, None, None, &grp), grp.as_str());
        assert_ne!(grp.as_str(), ent.as_str());
    }

    fn org(user_count: u32) -> ExistingOrganization {
        ExistingOrganization {
            id: "org-1".into(),
            name: "Existing Co".into(),
            user_count,
            users: vec![OrgUser {
                email: "boss@existing.example".into(),
                is_admin: true,
            }],
            verified_domains: vec![],
            claimed_domains: vec![],
            licenses: vec![OrgLicense {
                name: "webex-meetings".into(),
                state: LicenseState::Active,
            }],
            auth_settings: serde_json::Value::Null,
            email_suppression: false,
            branding: None,
        }
    }

    #[test]
    fn ninety_nine_users_attach_and_one_hundred_need_approval() {
        assert_eq!(
            decide_attach(&org(99), PartnerRole::None),
            AttachDecision::Attach {
                partner_role: PartnerRole::ProvisioningAdmin
            }
        );
        assert!(matches!(
            decide_attach(&org(100), PartnerRole::None),
            AttachDecision::NeedsApproval { ref reasons, .. } if reasons == &[ApprovalReason::ManyUsers]
        ));
    }

    #[test]
    fn each_domain_criterion_alone_needs_approval() {
        let mut verified = org(3);
        verified.verified_domains.push("existing.example".into());
        assert!(matches!(
            decide_attach(&verified, PartnerRole::None),
            AttachDecision::NeedsApproval { ref reasons, .. } if reasons == &[ApprovalReason::VerifiedDomain]
        ));
        let mut claimed = org(3);
        claimed.claimed_domains.push("existing.example".into());
        assert!(matches!(
            decide_attach(&claimed, PartnerRole::None),
            AttachDecision::NeedsApproval { ref reasons, .. } if reasons == &[ApprovalReason::ClaimedDomain]
        ));
    }

    #[test]
    fn approval_lets_the_retry_attach_with_full_admin() {
        let mut big = org(500);
        big.verified_domains.push("existing.example".into());
        assert_eq!(
            decide_attach(&big, PartnerRole::FullAdmin),
            AttachDecision::Attach {
                partner_role: PartnerRole::FullAdmin
            }
        );
        // Provisioning-admin rights are not an approval.
        assert!(matches!(
            decide_attach(&big, PartnerRole::ProvisioningAdmin),
            AttachDecision::NeedsApproval { .. }
        ));
    }

    #[test]
    fn unlicensed_or_only_suspended_orgs_give_full_admin() {
        let mut none = org(5);
        none.licenses.clear();
        assert_eq!(
            decide_attach(&none, PartnerRole::None),
            AttachDecision::Attach {
                partner_role: PartnerRole::FullAdmin
            }
        );
        let mut suspended = org(5);
        suspended.licenses = vec![
            OrgLicense {
                name: "a".into(),
                state: LicenseState::Suspended,
            },
            OrgLicense {
                name: "b".into(),
                state: LicenseState::Cancelled,
            },
        ];
        assert_eq!(
            decide_attach(&suspended, PartnerRole::None),
            AttachDecision::Attach {
                partner_role: PartnerRole::FullAdmin
            }
        );
    }

    #[test]
    fn at_most_five_distinct_admins_are_notified() {
        let mut big = org(150);
        big.users = (0..8)
            .map(|i| OrgUser {
                email: format!("admin{i}@existing.example"),
                is_admin: i != 2,
            })
            .collect();
        big.users.insert(
            1,
            OrgUser {
                email: "ADMIN0@existing.example".into(),
                is_admin: true,
            },
        );
        let AttachDecision::NeedsApproval { notify, .. } = decide_attach(&big, PartnerRole::None)
        else {
            panic!("needs approval")
        };
        assert_eq!(
            notify,
            vec![
                "admin0@existing.example",
                "admin1@existing.example",
                "admin3@existing.example",
                "admin4@existing.example",
                "admin5@existing.example"
            ]
        );
    }
}
