//! The license core's rows inside a unit of work (a part of [`super::Tx`]):
//! subscriptions, who holds what, the ledger and the outcome of each
//! command key. The rules (which subscription a license comes from, what a
//! package grants) are the core's, in `license::apply`; a back-end only
//! maps rows.

use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::LicenseSubscription;
use crate::domain::license::{Holding, StoredRefusal};
use crate::domain::license_ledger::LicenseEvent;

use super::StoreError;

/// Who a change of holdings is for.
#[derive(Debug, Clone, Copy)]
pub struct HolderIds<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub group_id: Option<&'a str>,
}

/// One subscriber of an organization and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderState {
    pub subscriber_id: String,
    pub user_id: String,
    pub group_id: Option<String>,
    pub holdings: Vec<Holding>,
}

/// What the core answered a command key before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    /// Applied, with what it could not give (Webex Calling withheld).
    Applied {
        notice: Option<StoredRefusal>,
    },
    Refused(StoredRefusal),
}

pub trait LicenseRows {
    /// The stored outcome of `key`, if it was applied or refused before.
    fn license_outcome(&self, key: &str) -> Result<Option<KeyOutcome>, StoreError>;
    fn record_license_outcome(
        &self,
        key: &str,
        outcome: &KeyOutcome,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The organization's subscriptions (any order). A back-end with
    /// concurrent writers marks them written, so that of two units of
    /// work assigning from one organization's subscriptions at once only
    /// the first to commit stands (the other runs again).
    fn org_subscriptions(&self, org_id: &str) -> Result<Vec<LicenseSubscription>, StoreError>;
    /// How many of each license the organization's subscriptions have
    /// assigned: `(subscription id, license, count)`.
    fn org_license_usage(&self, org_id: &str) -> Result<Vec<(String, String, u32)>, StoreError>;
    /// One subscription and the organization it belongs to.
    fn license_subscription(
        &self,
        id: &str,
    ) -> Result<Option<(String, LicenseSubscription)>, StoreError>;
    /// Inserts or replaces a subscription of `org_id`.
    fn put_license_subscription(
        &self,
        org_id: &str,
        subscription: &LicenseSubscription,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The subscriber's licenses, by license name.
    fn holdings(&self, subscriber_id: &str) -> Result<Vec<Holding>, StoreError>;
    /// The user and group ids its licenses were granted for, if it holds
    /// any.
    fn holder_ids(
        &self,
        subscriber_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError>;
    /// Every subscriber of the organization holding licenses, by
    /// subscriber id.
    fn org_holders(&self, org_id: &str) -> Result<Vec<HolderState>, StoreError>;
    /// The organization's auto-license templates: `(group id, template)`,
    /// group `""` for the organization's own.
    fn license_templates(
        &self,
        org_id: &str,
    ) -> Result<Vec<(String, AutoLicenseTemplate)>, StoreError>;
    /// Inserts or replaces a template (group `""`: the organization's).
    fn put_license_template(
        &self,
        org_id: &str,
        group_id: &str,
        template: &AutoLicenseTemplate,
        now: i64,
    ) -> Result<(), StoreError>;

    /// The subscriber's licenses are now its group `group_id`'s (a group
    /// move).
    fn set_holder_group(&self, subscriber_id: &str, group_id: &str) -> Result<(), StoreError>;
    /// The holder's licenses are now user `user_id`'s (a workspace's
    /// BroadWorks user id changed).
    fn set_holder_user(&self, subscriber_id: &str, user_id: &str) -> Result<(), StoreError>;

    /// The subscriber stops holding `revoked` (license names), starts
    /// holding `granted` (for `ids`), and `ledger` is appended (its ids
    /// given on insert), in that order.
    fn change_holdings(
        &self,
        subscriber_id: &str,
        ids: &HolderIds<'_>,
        revoked: &[String],
        granted: &[Holding],
        ledger: &[LicenseEvent],
    ) -> Result<(), StoreError>;
}
