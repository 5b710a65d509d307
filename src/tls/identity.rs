//! Who is on the other end of an mTLS connection, for logs and per-AS limits.

use rustls::ServerConnection;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The verified client certificate's leaf, reduced to what is useful to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// First subject CN, if it has one that is a string.
    pub subject_cn: Option<String>,
    /// Upper-case hex without separators or sign byte, as `openssl x509
    /// -serial` prints it, so operators can match it against their inventory.
    pub serial_hex: String,
}

/// `None` when the client sent no certificate (`optional`/`off`), or the
/// handshake is not finished.
pub fn peer_identity(conn: &ServerConnection) -> Option<PeerIdentity> {
    let leaf = conn.peer_certificates()?.first()?;
    identity_from_der(leaf.as_ref())
}

/// `None` if the DER does not parse (never panics on odd certificates).
pub fn identity_from_der(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let raw = cert.raw_serial();
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    let serial_hex = raw[start..].iter().map(|b| format!("{b:02X}")).collect();
    Some(PeerIdentity {
        subject_cn,
        serial_hex,
    })
}
