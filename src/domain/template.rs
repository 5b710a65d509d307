//! Partners, BroadWorks clusters and customer templates: the tenancy a
//! flow-through request is resolved against (by its `provisioningId`).

use serde::{Deserialize, Serialize};

/// A service provider partner (the owner of templates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub id: String,
    pub name: String,
    /// Partner admin who is delegated admin rights in customer organizations.
    pub admin_email: Option<String>,
}

/// A BroadWorks cluster (AS/XSP farm) a partner has registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub partner_id: String,
    pub name: String,
    /// Base URL of the cluster's XSP (for XSI calls back into BroadWorks).
    pub xsp_url: Option<String>,
}

/// Subscriber packages, in ascending order of capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Package {
    Softphone,
    Basic,
    Standard,
    Premium,
}

impl Package {
    pub const ALL: [Package; 4] = [
        Package::Softphone,
        Package::Basic,
        Package::Standard,
        Package::Premium,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Package::Softphone => "softphone",
            Package::Basic => "basic",
            Package::Standard => "standard",
            Package::Premium => "premium",
        }
    }

    pub fn parse(s: &str) -> Option<Package> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Behaviour switches of a customer template (Partner Hub's onboarding
/// template). Defaults follow Cisco's recommended flow-through settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateSettings {
    /// true: `spEnterpriseId` = serviceProviderId (BroadWorks enterprise);
    /// false: `serviceProviderId+groupId` (service provider with groups).
    pub enterprise_mode: bool,
    pub default_package: Package,
    /// Emails from BroadWorks are used at once (trusted flow).
    pub trusted_emails: bool,
    pub provision_admin_first: bool,
    pub allow_self_activation: bool,
    /// Attach to existing organizations that match a subscriber's email.
    pub provision_existing_orgs: bool,
    /// Create a new organization when nothing matches.
    pub create_new_orgs: bool,
    pub partner_admin_email: Option<String>,
    pub partner_admin_name: Option<String>,
    /// Language of emails sent to users, `{ISO-639-1}` or `{ISO-639-1}_{ISO-3166}`.
    pub email_language: String,
    /// Wholesale customer templates are rejected by the flow-through face.
    pub wholesale: bool,
}

impl Default for TemplateSettings {
    fn default() -> Self {
        TemplateSettings {
            enterprise_mode: true,
            default_package: Package::Basic,
            trusted_emails: true,
            provision_admin_first: true,
            allow_self_activation: false,
            provision_existing_orgs: true,
            create_new_orgs: true,
            partner_admin_email: None,
            partner_admin_name: None,
            email_language: "en_US".to_string(),
            wholesale: false,
        }
    }
}

/// A customer template as stored. The provisioning account's password is
/// only ever kept as an argon2 PHC hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTemplate {
    pub provisioning_id: String,
    pub partner_id: String,
    pub cluster_id: Option<String>,
    pub name: String,
    pub settings: TemplateSettings,
    pub provisioning_username: String,
    pub provisioning_password_hash: String,
    /// Where the template was declared: `config`, `demo`, or `api`.
    pub source: TemplateSource,
    /// When the template was disabled (a `config` template no longer in
    /// the configuration file), `None` while it is enabled. A disabled
    /// template accepts no provisioning and no self-activation; its
    /// subscribers and organizations stay and can be read back.
    #[serde(default)]
    pub disabled_at: Option<i64>,
}

impl CustomerTemplate {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateSource {
    Config,
    Demo,
    Api,
}

impl TemplateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateSource::Config => "config",
            TemplateSource::Demo => "demo",
            TemplateSource::Api => "api",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateSource> {
        match s {
            "config" => Some(TemplateSource::Config),
            "demo" => Some(TemplateSource::Demo),
            "api" => Some(TemplateSource::Api),
            _ => None,
        }
    }
}

/// BroadWorks' own limits on the provisioning account (OCI-P
/// `provisioningUserId` 1..80, `provisioningPassword` 1..20 characters).
pub const PROVISIONING_USERNAME_MAX: usize = 80;
pub const PROVISIONING_PASSWORD_MAX: usize = 20;

/// Allowed characters in a provisioningId: it is a URL path segment.
pub fn is_valid_provisioning_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_parse_is_case_insensitive_and_strict() {
        assert_eq!(Package::parse("Premium"), Some(Package::Premium));
        assert_eq!(Package::parse(" basic "), Some(Package::Basic));
        assert_eq!(Package::parse("gold"), None);
    }

    #[test]
    fn provisioning_id_is_a_safe_path_segment() {
        assert!(is_valid_provisioning_id("demo-1.a_b"));
        assert!(!is_valid_provisioning_id(""));
        assert!(!is_valid_provisioning_id("a/b"));
        assert!(!is_valid_provisioning_id("a b"));
        assert!(!is_valid_provisioning_id(&"x".repeat(65)));
    }
}
