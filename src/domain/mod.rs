//! Domain types shared by every face: the error-code table, partners,
//! clusters and customer templates. Wire formats translate into these.

pub mod credentials;
pub mod email;
pub mod error_code;
pub mod ids;
pub mod lifecycle;
pub mod organization;
pub mod phone;
pub mod subscriber;
pub mod template;

pub use error_code::ErrorCode;
pub use template::{Cluster, CustomerTemplate, Package, Partner, TemplateSettings};
