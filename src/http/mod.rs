//! HTTP: the HTTPS listener (TLS accept loop, hyper connections, routing,
//! limits, error mapping) and the plain ops listener. Only this module
//! knows hyper; handlers translate to domain calls.

pub mod activation;
pub mod admin;
pub mod admin_activation;
pub mod admin_auth;
mod admin_guard;
pub mod admin_orgs;
pub mod body;
pub mod body_budget;
pub mod error;
pub mod flowthrough;
pub mod handler;
pub mod host_header;
pub mod lockout;
pub mod metrics;
pub mod org_approval;
pub mod partner;
pub mod portal;
pub mod ratelimit;
pub mod router;
pub mod server;
pub mod signin;
pub mod tracking;

/// Which listener a connection came in on; each has its own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// mTLS (per `tls.client_auth`): BroadWorks AS and API clients.
    Provisioning,
    /// No client certificates: end users and customer admins.
    Portal,
}

/// Response body type of every route.
pub type ResponseBody = http_body_util::Full<bytes::Bytes>;

pub use error::{ErrorFormat, WireError};
pub use server::{serve_https, ConnInfo};
