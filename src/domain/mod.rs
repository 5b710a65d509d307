//! Domain types shared by every face: the error-code table, partners,
//! clusters and customer templates. Wire formats translate into these.

pub mod activation;
pub mod calling;
pub mod credentials;
pub mod device;
pub mod directory;
pub mod email;
pub mod error_code;
pub mod event;
pub mod ids;
pub mod license;
pub mod license_ledger;
pub mod lifecycle;
pub mod org_report;
pub mod organization;
pub mod phone;
pub mod refusal;
pub mod subscriber;
pub mod subscriber_query;
pub mod template;
pub mod timestamp;
pub mod workspace;

pub use directory::{DirectoryEntry, DirectoryPage, DirectoryQuery, SearchPattern, SortColumn};
pub use error_code::ErrorCode;
pub use refusal::Refusal;

/// Now as unix milliseconds: the unit of every stored and sent timestamp.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
pub use template::{Cluster, CustomerTemplate, Package, Partner, TemplateSettings};
