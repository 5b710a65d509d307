//! Client side, for bwgate's own HTTPS client (tests, `bwgate replay`,
//! `bwgate load`), which talks to a bwgate or bare rustls server.

use std::path::Path;

use rustls::{ClientConfig, RootCertStore};

use super::{pem, provider, TlsError};

/// Trusts only the CA(s) in `ca_pem`, presents `client_cert`/`client_key`
/// when given (both or neither), and keeps rustls' default in-memory session
/// store so repeated connections resume. ALPN offers h2 + http/1.1, or only
/// http/1.1 when `alpn_h2` is false.
pub fn client_config(
    ca_pem: &Path,
    client_cert: Option<&Path>,
    client_key: Option<&Path>,
    alpn_h2: bool,
) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in pem::load_certs(ca_pem)? {
        roots.add(cert).map_err(|e| TlsError::InvalidCertificate {
            path: ca_pem.into(),
            reason: format!("not a usable trust anchor: {e}"),
        })?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (client_cert, client_key) {
        (Some(cert_path), Some(key_path)) => {
            let chain = pem::load_certs(cert_path)?;
            let key = pem::load_key(key_path)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                        cert: cert_path.into(),
                        key: key_path.into(),
                    },
                    source => TlsError::InvalidKey {
                        path: key_path.into(),
                        source,
                    },
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::ClientCertWithoutKey),
    };
    config.alpn_protocols = if alpn_h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// For calls to other services (a BroadWorks XSP): the system's trust
/// store plus the CA(s) in `extra_ca` (a private PKI), HTTP/1.1, no client
/// certificate.
pub fn service_client_config(extra_ca: Option<&Path>) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: `extra_ca` may be all
    // that is needed, and a missing anchor shows as a handshake error.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        for cert in pem::load_certs(path)? {
            roots.add(cert).map_err(|e| TlsError::InvalidCertificate {
                path: path.into(),
                reason: format!("not a usable trust anchor: {e}"),
            })?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
