//! The rustls `ServerConfig` for the BroadWorks-facing listener.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::{
    NoServerSessionStorage, ProducesTickets, ServerSessionMemoryCache, StoresServerSessions,
    WebPkiClientVerifier,
};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::devcerts::DevCertPaths;
use super::expiry::CertExpiry;
use super::{pem, provider, TlsError};
use crate::config::{ClientAuth, TlsConfig, TlsMinVersion};

/// Offered in this order: HTTP/2 first, since a keep-alive h2 connection is
/// the cheapest way for an AS to push many documents.
pub const ALPN_PROTOCOLS: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The files a server config is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Vec<PathBuf>,
}

/// Configured files, falling back to the dev set in `certs_dir` (see
/// [`super::ensure_dev_certs`], which the caller runs first when
/// `cfg.cert` is unset).
pub fn resolve_paths(cfg: &TlsConfig) -> TlsPaths {
    let dev = DevCertPaths::in_dir(&cfg.certs_dir);
    let (cert, key) = match (&cfg.cert, &cfg.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => (dev.server_cert, dev.server_key),
    };
    let client_ca = if cfg.client_ca.is_empty() {
        vec![dev.ca_cert]
    } else {
        cfg.client_ca.clone()
    };
    TlsPaths {
        cert,
        key,
        client_ca,
    }
}

/// Session-resumption state shared by every config a reloader builds, so
/// clients holding a session ID or ticket keep resuming across certificate
/// reloads instead of all doing full handshakes at once.
#[derive(Clone)]
pub struct Resumption {
    cache: Arc<dyn StoresServerSessions>,
    ticketer: Option<Arc<dyn ProducesTickets>>,
}

impl Resumption {
    /// A `session_cache_size`-entry cache, and a rotating ticket key (6 h)
    /// when `session_tickets` is on.
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsError> {
        let cache: Arc<dyn StoresServerSessions> = if cfg.session_cache_size == 0 {
            Arc::new(NoServerSessionStorage {})
        } else {
            ServerSessionMemoryCache::new(cfg.session_cache_size)
        };
        let ticketer = if cfg.session_tickets {
            Some(rustls::crypto::aws_lc_rs::Ticketer::new()?)
        } else {
            None
        };
        Ok(Resumption { cache, ticketer })
    }
}

impl std::fmt::Debug for Resumption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resumption")
            .field("cache", &self.cache)
            .field("tickets", &self.ticketer.is_some())
            .finish()
    }
}

/// Builds the server config from the files in `paths`.
///
/// Fails on anything an operator must fix: unreadable or empty PEM, a key that
/// does not match the certificate, `require`/`optional` without a usable
/// trust anchor.
pub fn build_server_config(
    cfg: &TlsConfig,
    paths: &TlsPaths,
    resumption: &Resumption,
) -> Result<ServerConfig, TlsError> {
    let snapshot = Snapshot::read(cfg, paths)?;
    Ok(build_from_snapshot(cfg, &snapshot, resumption)?.0)
}

/// The bytes of every file a config depends on, read once: the reloader
/// fingerprints exactly what it parses, so a file changing between "has it
/// changed?" and "load it" cannot be missed.
pub(crate) struct Snapshot {
    cert: (PathBuf, Vec<u8>),
    key: (PathBuf, Vec<u8>),
    client_ca: Vec<(PathBuf, Vec<u8>)>,
}

impl Snapshot {
    pub(crate) fn read(cfg: &TlsConfig, paths: &TlsPaths) -> Result<Self, TlsError> {
        let read = |p: &Path| pem::read(p).map(|b| (p.to_path_buf(), b));
        let client_ca = match cfg.client_auth {
            // Trust anchors are not used, so a missing dev CA file is no error.
            ClientAuth::Off => Vec::new(),
            ClientAuth::Require | ClientAuth::Optional => paths
                .client_ca
                .iter()
                .map(|p| {
                    pem::read(p)
                        .map(|b| (p.clone(), b))
                        .map_err(|e| TlsError::ClientCa {
                            path: p.clone(),
                            reason: match e {
                                TlsError::Io { source, .. } => source.to_string(),
                                other => other.to_string(),
                            },
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Snapshot {
            cert: read(&paths.cert)?,
            key: read(&paths.key)?,
            client_ca,
        })
    }

    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.cert.hash(&mut h);
        self.key.hash(&mut h);
        self.client_ca.hash(&mut h);
        h.finish()
    }

    /// Fingerprint of the trust anchors alone: when they change, sessions
    /// resumed from before would skip the new client-certificate check.
    pub(crate) fn trust_fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.client_ca.hash(&mut h);
        h.finish()
    }
}

/// Also returns the expiry of the server leaf and each trust anchor, for the
/// expiry gauge.
pub(crate) fn build_from_snapshot(
    cfg: &TlsConfig,
    snap: &Snapshot,
    resumption: &Resumption,
) -> Result<(ServerConfig, Vec<CertExpiry>), TlsError> {
    let provider = provider();
    let (cert_path, cert_bytes) = &snap.cert;
    let (key_path, key_bytes) = &snap.key;
    let chain = pem::certs_from_pem(cert_path, cert_bytes)?;
    let key = pem::key_from_pem(key_path, key_bytes)?;

    let mut expiry = Vec::new();
    expiry.push(CertExpiry::parse("server", &chain[0]).map_err(|reason| {
        TlsError::InvalidCertificate {
            path: cert_path.clone(),
            reason,
        }
    })?);

    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::InvalidKey {
            path: key_path.clone(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        // aws-lc-rs keys always expose their public key; Unknown would mean a
        // key type we cannot check, which rustls itself also accepts.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
            })
        }
        Err(e) => {
            return Err(TlsError::InvalidCertificate {
                path: cert_path.clone(),
                reason: e.to_string(),
            })
        }
    }

    let verifier = match cfg.client_auth {
        ClientAuth::Off => WebPkiClientVerifier::no_client_auth(),
        mode @ (ClientAuth::Require | ClientAuth::Optional) => {
            let mut roots = RootCertStore::empty();
            for (path, bytes) in &snap.client_ca {
                let certs = pem::certs_from_pem(path, bytes).map_err(|e| TlsError::ClientCa {
                    path: path.clone(),
                    reason: match e {
                        TlsError::NoCertificates { .. } => "no certificates".into(),
                        other => other.to_string(),
                    },
                })?;
                for cert in certs {
                    let exp = CertExpiry::parse("client_ca", &cert).map_err(|reason| {
                        TlsError::ClientCa {
                            path: path.clone(),
                            reason,
                        }
                    })?;
                    roots.add(cert).map_err(|e| TlsError::ClientCa {
                        path: path.clone(),
                        reason: format!("not a usable trust anchor: {e}"),
                    })?;
                    expiry.push(exp);
                }
            }
            let name = if mode == ClientAuth::Require {
                "require"
            } else {
                "optional"
            };
            if roots.is_empty() {
                return Err(TlsError::NoClientCa { mode: name });
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            if mode == ClientAuth::Optional {
                builder.allow_unauthenticated().build()?
            } else {
                builder.build()?
            }
        }
    };

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(protocol_versions(cfg.min_version))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    config.session_storage = resumption.cache.clone();
    if let Some(ticketer) = &resumption.ticketer {
        config.ticketer = ticketer.clone();
    }
    Ok((config, expiry))
}

static TLS12_AND_UP: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn protocol_versions(min: TlsMinVersion) -> &'static [&'static SupportedProtocolVersion] {
    match min {
        TlsMinVersion::Tls12 => TLS12_AND_UP,
        TlsMinVersion::Tls13 => TLS13_ONLY,
    }
}
