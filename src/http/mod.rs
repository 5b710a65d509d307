//! HTTP, in two halves. `transport`: the HTTPS listener (TLS accept loop,
//! hyper connections), routing, bodies and limits, and the one renderer
//! per format for refusals. `faces`: flow-through, portal pages, partner
//! admin, and the operator API on the plain ops listener. Only this module
//! knows hyper; faces translate to domain calls.

pub mod faces;
pub mod transport;

// The old flat paths (`http::body`, `http::portal`, ...) stay valid for
// the rest of the crate, the tests and the fuzz targets.
pub use faces::admin::{self, activation as admin_activation, auth as admin_auth};
pub use faces::portal::{self, activation, org_approval, signin};
pub use faces::{broadworks_credentials, flowthrough, license_core, partner, xsi};
pub use transport::render as error;
pub use transport::{
    body, body_budget, handler, host_header, lockout, metrics, ratelimit, router, server, tracking,
};

/// Which listener a connection came in on; each has its own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// mTLS (per `tls.client_auth`): BroadWorks AS and API clients.
    Provisioning,
    /// No client certificates: end users and customer admins.
    Portal,
    /// mTLS, in a `bwgate license-core serve` process: gateways sending
    /// commands to the remote license core.
    LicenseCore,
}

/// Response body type of every route: whole, or streamed (Xsi-Events).
pub use transport::response_body::ResponseBody;

pub use error::ErrorFormat;
pub use server::{serve_https, ConnInfo};
pub use transport::state::State;
