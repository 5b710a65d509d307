//! TLS for the BroadWorks-facing listener and for bwgate's own clients.
//!
//! - [`devcerts`]: rcgen dev CA + server + client certificates (`bwgate certs init`,
//!   first start without configured certificates).
//! - [`server`]: the rustls `ServerConfig` (mTLS per `client_auth`, TLS 1.2+,
//!   ALPN h2/http1.1, session resumption that survives reloads).
//! - [`reload`]: [`TlsReloader`], swapping in new certificates without a restart.
//! - [`expiry`]: the `bwgate_tls_certificate_expiry_days` gauge and warnings.
//! - [`identity`]: who is on the other end of an mTLS connection.
//! - [`client`]: `ClientConfig` for tests, `bwgate replay` and `bwgate load`.
//!
//! Everything uses the aws-lc-rs provider explicitly, so nothing depends on a
//! process-wide default provider having been installed.

pub mod client;
pub mod devcerts;
pub mod expiry;
pub mod identity;
mod pem;
pub mod reload;
pub mod server;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use client::client_config;
pub use devcerts::{
    ensure_dev_certs, generate_ca, init_dev_certs, issue_client_cert, issue_server_cert,
    DevCertPaths, GeneratedCa,
};
pub use expiry::days_until_expiry;
pub use identity::{identity_from_der, peer_identity, PeerIdentity};
pub use reload::TlsReloader;
pub use server::{build_server_config, resolve_paths, Resumption, TlsPaths, ALPN_PROTOCOLS};

/// Errors name the file and what was wrong with it, because these surface in
/// start-up failures and reload warnings that an operator has to act on.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: invalid PEM: {source}", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{}: no certificates found in PEM", path.display())]
    NoCertificates { path: PathBuf },
    #[error("{}: no private key found in PEM", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("{}: invalid certificate: {reason}", path.display())]
    InvalidCertificate { path: PathBuf, reason: String },
    #[error("{}: unusable private key: {source}", path.display())]
    InvalidKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    /// Typically a pair caught half-way through being replaced.
    #[error(
        "{} does not match the certificate in {} (key/cert pair being replaced?)",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("client_ca {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
    #[error("tls.client_auth = \"{mode}\" needs at least one trust anchor in tls.client_ca")]
    NoClientCa { mode: &'static str },
    #[error("client certificate and key must be given together")]
    ClientCertWithoutKey,
    #[error("{} already exists (use --force to overwrite)", path.display())]
    AlreadyExists { path: PathBuf },
    #[error("invalid X.509 certificate: {0}")]
    X509(String),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

impl TlsError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TlsError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The provider every config here is built with; explicit so two parts of the
/// process can never disagree about which crypto backend is in use.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
