//! The in-process license core's audit ledger as data: one grant or
//! revocation per row. The store maps rows to it; operators read it back.

/// One license change made by the in-process license core (audit ledger).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseEvent {
    pub idempotency_key: String,
    pub subscriber_id: String,
    pub license: String,
    /// `grant` or `revoke`.
    pub action: String,
    pub at: i64,
}
