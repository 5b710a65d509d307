//! The license core's rows inside a unit of work (a part of [`super::Tx`]):
//! subscriptions, who holds what, the ledger and the outcome of each
//! command key. The rules (which subscription a license comes from, what a
//! package grants) are the core's, in `license::apply`; a back-end only
//! maps rows.

use crate::domain::license_ledger::LicenseEvent;
use crate::license::holding::{Holding, StoredRefusal};
use crate::license::subscriptions::LicenseSubscription;

use super::StoreError;

/// What the core answered a command key before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOutcome {
    Applied,
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
    /// The subscriber stops holding `revoked` (license names), starts
    /// holding `granted` (in organization `org_id`, user `user_id`: when
    /// `None`, the one its other licenses name), and `ledger` is appended
    /// (its ids given on insert), in that order.
    #[allow(clippy::too_many_arguments)]
    fn change_holdings(
        &self,
        subscriber_id: &str,
        org_id: &str,
        user_id: Option<&str>,
        revoked: &[String],
        granted: &[Holding],
        ledger: &[LicenseEvent],
    ) -> Result<(), StoreError>;
}
