//! Which subscribers a partner's listing returns (filters and keyset
//! pagination). Data only: the store turns it into its query.

use super::ids::EnterpriseKey;
use super::lifecycle::SubscriberStatus;

/// Which subscribers a partner's subscriber listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberQuery {
    pub partner_id: String,
    /// Only these statuses; empty: every status but `removed`.
    pub statuses: Vec<SubscriberStatus>,
    /// Leave out `provisioned` subscribers.
    pub exclude_provisioned: bool,
    /// Only this template's subscribers.
    pub provisioning_id: Option<String>,
    /// Only this enterprise's subscribers (the XSI enterprise directory).
    pub enterprise_key: Option<EnterpriseKey>,
    /// Keyset cursor: only subscribers whose id sorts after this one.
    pub after: Option<String>,
    pub limit: usize,
}
