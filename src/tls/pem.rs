//! PEM loading via `rustls_pki_types::pem::PemObject` (rustls-pemfile is
//! unmaintained). Parsing works on bytes already read so a reload can parse
//! exactly the bytes it fingerprinted.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::io(path, e))
}

/// All certificates in a PEM file, in order (leaf first for a chain).
pub(crate) fn certs_from_pem(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error(path, source))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates { path: path.into() });
    }
    Ok(certs)
}

/// First private key in the file: PKCS#8, SEC1 ("EC PRIVATE KEY") or PKCS#1
/// ("RSA PRIVATE KEY").
pub(crate) fn key_from_pem(path: &Path, bytes: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey { path: path.into() },
        other => pem_error(path, other),
    })
}

pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(path, &read(path)?)
}

pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    key_from_pem(path, &read(path)?)
}

fn pem_error(path: &Path, source: pem::Error) -> TlsError {
    match source {
        pem::Error::Io(e) => TlsError::io(path, e),
        source => TlsError::Pem {
            path: path.into(),
            source,
        },
    }
}
