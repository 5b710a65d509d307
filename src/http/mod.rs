//! HTTP: the HTTPS listener (TLS accept loop, hyper connections, routing,
//! limits, error mapping) and the plain ops listener. Only this module
//! knows hyper; handlers translate to domain calls.

pub mod admin;
pub mod body;
pub mod error;
pub mod flowthrough;
pub mod handler;
pub mod metrics;
pub mod router;
pub mod server;
pub mod tracking;

/// Response body type of every route.
pub type ResponseBody = http_body_util::Full<bytes::Bytes>;

pub use error::{ErrorFormat, WireError};
pub use server::{serve_https, ConnInfo};
