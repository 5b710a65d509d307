//! The license core's data, as the store keeps it and the faces show it:
//! subscriptions, holdings and why they were granted, templates, a
//! refusal kept per command key. The rules that use them are in `license`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One subscription of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSubscription {
    pub id: String,
    /// When it starts (unix ms): older subscriptions are used up first.
    pub starts_at: i64,
    /// Licenses bought, by license name.
    pub quantities: BTreeMap<String, u32>,
}

/// A subscription and how many of each license it has assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionUsage {
    #[serde(flatten)]
    pub subscription: LicenseSubscription,
    pub assigned: BTreeMap<String, u32>,
}

/// An organization's or a group's template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AutoLicenseTemplate {
    pub licenses: BTreeSet<String>,
    /// The organization's template only: whether a user moving to another
    /// group keeps the licenses its old group's template gave (`None`:
    /// yes, "preserve licenses" being on by default).
    #[serde(
        default,
        rename = "preserveOnGroupMove",
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_on_group_move: Option<bool>,
}

/// Why a license was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantSource {
    /// The subscriber's package (`source_ref` names it).
    Package,
    /// An auto-license template (`source_ref` is the template's id).
    Template,
    /// An administrator (`source_ref` says who).
    Admin,
}

impl GrantSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantSource::Package => "package",
            GrantSource::Template => "template",
            GrantSource::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<GrantSource> {
        match s {
            "package" => Some(GrantSource::Package),
            "template" => Some(GrantSource::Template),
            "admin" => Some(GrantSource::Admin),
            _ => None,
        }
    }
}

/// One license a subscriber holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    pub license: String,
    /// The subscription it is counted against; `None` for a license
    /// granted while its organization had no subscription (unmetered).
    pub subscription_id: Option<String>,
    pub source: GrantSource,
    /// The package, template or admin behind `source`.
    pub source_ref: String,
    /// The idempotency key of the command that granted it.
    pub command_key: String,
    pub granted_at: i64,
}

/// A license holding as the organization report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolderRow {
    pub subscriber_id: String,
    pub user_id: String,
    #[serde(flatten)]
    pub holding: Holding,
}

/// Where a page of the holders report ends (its last row): the next page
/// starts after it (user id, subscriber id, license: the report's order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderCursor {
    pub user_id: String,
    pub subscriber_id: String,
    pub license: String,
}

impl HolderCursor {
    pub fn after(row: &HolderRow) -> HolderCursor {
        HolderCursor {
            user_id: row.user_id.clone(),
            subscriber_id: row.subscriber_id.clone(),
            license: row.holding.license.clone(),
        }
    }
}

/// A command the core refused, kept with its key so that a repeat of the
/// key gets the same answer (the core is idempotent by command key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefusal {
    pub code: u32,
    pub detail: String,
}
