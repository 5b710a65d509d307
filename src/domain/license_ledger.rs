//! The license core's ledger as data: one grant or revocation per row,
//! timestamped, with the subscription it counted against. Operators read
//! it back per subscriber; billing reads it as a feed (by `id`) to
//! pro-rate.

/// One license change made by the license core.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseEvent {
    /// Position in the ledger (given on insert; the feed's cursor).
    #[serde(default)]
    pub id: i64,
    pub idempotency_key: String,
    pub subscriber_id: String,
    /// The subscriber's organization when the change was made.
    #[serde(default)]
    pub org_id: Option<String>,
    pub license: String,
    /// `grant` or `revoke`.
    pub action: String,
    /// The subscription the license counts (or counted) against; `None`
    /// for an unmetered grant.
    #[serde(default)]
    pub subscription_id: Option<String>,
    /// Why: `package`, `template` or `admin` (see `license::GrantSource`).
    #[serde(default)]
    pub source: String,
    /// The package, template or admin behind `source`.
    #[serde(default)]
    pub source_ref: String,
    pub at: i64,
}
