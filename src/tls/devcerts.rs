//! Development certificates: a private CA, a server certificate and one client
//! certificate (the "AS" side of mTLS), all ECDSA P-256 because those keys make
//! the cheapest handshakes.
//!
//! The building blocks ([`generate_ca`], [`issue_server_cert`],
//! [`issue_client_cert`]) are public so tests can mint unusual certificates
//! (foreign CAs, expired or short-lived certificates, other SANs).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::pem;
use super::TlsError;

/// CN of the CA `bwgate certs init` creates.
pub const DEV_CA_CN: &str = "bwgate dev CA";
/// CN of the dev client certificate; shows up as the peer identity in logs.
pub const DEV_CLIENT_CN: &str = "bwgate-dev-as";
/// Names a local client can reach the dev server by.
pub const DEV_SERVER_SANS: &[&str] = &["localhost", "127.0.0.1", "::1"];
const DEV_CA_DAYS: i64 = 3650;
/// One year, like the self-signed certificate a BroadWorks XSP creates.
const DEV_LEAF_DAYS: i64 = 365;
/// Allows for a little clock skew between the machine that issues and the
/// machine that verifies.
const BACKDATE: Duration = Duration::minutes(5);

/// Where the dev certificate set lives inside a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCertPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl DevCertPaths {
    pub fn in_dir(dir: &Path) -> Self {
        DevCertPaths {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        }
    }

    fn all(&self) -> [&Path; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }
}

/// A CA able to sign, with its certificate and key as PEM for writing out.
pub struct GeneratedCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl GeneratedCa {
    /// Signs with a CA already on disk (e.g. the dev CA after the server
    /// certificate was deleted to get a fresh one).
    pub fn load(cert_pem_path: &Path, key_pem_path: &Path) -> Result<Self, TlsError> {
        let cert_pem = String::from_utf8_lossy(&pem::read(cert_pem_path)?).into_owned();
        let key_pem = String::from_utf8_lossy(&pem::read(key_pem_path)?).into_owned();
        let cert_der = pem::certs_from_pem(cert_pem_path, cert_pem.as_bytes())?.remove(0);
        let key_der = pem::key_from_pem(key_pem_path, key_pem.as_bytes())?;
        let key = KeyPair::try_from(&key_der).map_err(|e| TlsError::InvalidCertificate {
            path: key_pem_path.into(),
            reason: format!("cannot use as a CA signing key: {e}"),
        })?;
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| TlsError::InvalidCertificate {
                path: cert_pem_path.into(),
                reason: format!("cannot use as an issuing CA: {e}"),
            })?;
        Ok(GeneratedCa {
            issuer,
            cert_der,
            cert_pem,
            key_pem,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }
}

impl fmt::Debug for GeneratedCa {
    // Never print the CA key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCa")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A self-signed CA valid for `days` (negative: already expired) that may
/// sign end-entity certificates only.
pub fn generate_ca(common_name: &str, days: i64) -> Result<GeneratedCa, TlsError> {
    let mut params = base_params(days);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "bwgate");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok(GeneratedCa {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem,
        issuer: Issuer::new(params, key),
    })
}

/// A server (serverAuth) certificate for `sans` (DNS names or IP literals),
/// signed by `ca`. Returns `(cert_pem, key_pem)`; the key is PKCS#8.
pub fn issue_server_cert(
    ca: &GeneratedCa,
    sans: &[&str],
    days: i64,
) -> Result<(String, String), TlsError> {
    let mut params = base_params(days);
    params.subject_alt_names =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?
            .subject_alt_names;
    params.distinguished_name.push(
        DnType::CommonName,
        sans.first().copied().unwrap_or("bwgate server"),
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sign_leaf(ca, &params)
}

/// A client (clientAuth) certificate with subject CN `common_name`, signed by
/// `ca`. Returns `(cert_pem, key_pem)`.
pub fn issue_client_cert(
    ca: &GeneratedCa,
    common_name: &str,
    days: i64,
) -> Result<(String, String), TlsError> {
    let mut params = base_params(days);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    sign_leaf(ca, &params)
}

fn sign_leaf(ca: &GeneratedCa, params: &CertificateParams) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Validity window and a random serial. rcgen's default serial is a hash of
/// the public key, which would repeat when a certificate is re-issued for the
/// same key; a random one keeps serials unique per issuance.
fn base_params(days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let now = OffsetDateTime::now_utc();
    let not_after = now + Duration::days(days);
    // An already-expired certificate (days <= 0) still needs not_before < not_after.
    params.not_before = (now - BACKDATE).min(not_after - Duration::days(1));
    params.not_after = not_after;
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f; // positive INTEGER
    serial[0] |= 0x01; // and no leading zero byte to strip
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.use_authority_key_identifier_extension = true;
    params
}

/// Writes a fresh dev CA, server certificate and client certificate into
/// `dir`. Without `force`, refuses if any of the six files already exists, so
/// a CA that clients already trust is never replaced by accident.
pub fn init_dev_certs(dir: &Path, force: bool) -> Result<DevCertPaths, TlsError> {
    let paths = DevCertPaths::in_dir(dir);
    if !force {
        if let Some(existing) = paths.all().into_iter().find(|p| p.exists()) {
            return Err(TlsError::AlreadyExists {
                path: existing.into(),
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
    let ca = generate_ca(DEV_CA_CN, DEV_CA_DAYS)?;
    write_ca(&paths, &ca)?;
    write_server(&paths, &ca)?;
    write_client(&paths, &ca)?;
    tracing::info!(dir = %dir.display(), "wrote dev CA, server and client certificates");
    Ok(paths)
}

/// First-start helper: makes sure `dir` holds a usable server certificate and
/// key. Returns whether anything was generated. An existing dev CA
/// (`ca.crt` + `ca.key`) is reused, so clients that already trust it keep
/// working; otherwise a whole new set is written.
pub fn ensure_dev_certs(dir: &Path) -> Result<(DevCertPaths, bool), TlsError> {
    let paths = DevCertPaths::in_dir(dir);
    if paths.server_cert.exists() && paths.server_key.exists() {
        return Ok((paths, false));
    }
    std::fs::create_dir_all(dir).map_err(|e| TlsError::io(dir, e))?;
    if paths.ca_cert.exists() && paths.ca_key.exists() {
        let ca = GeneratedCa::load(&paths.ca_cert, &paths.ca_key)?;
        write_server(&paths, &ca)?;
        if !(paths.client_cert.exists() && paths.client_key.exists()) {
            write_client(&paths, &ca)?;
        }
        tracing::info!(dir = %dir.display(), "issued dev server certificate from the existing dev CA");
    } else {
        for p in paths.all().into_iter().filter(|p| p.exists()) {
            tracing::warn!(file = %p.display(), "replacing file of an incomplete dev certificate set");
        }
        let ca = generate_ca(DEV_CA_CN, DEV_CA_DAYS)?;
        write_ca(&paths, &ca)?;
        write_server(&paths, &ca)?;
        write_client(&paths, &ca)?;
        tracing::info!(dir = %dir.display(), "generated dev CA, server and client certificates");
    }
    Ok((paths, true))
}

fn write_ca(paths: &DevCertPaths, ca: &GeneratedCa) -> Result<(), TlsError> {
    write_file(&paths.ca_key, ca.key_pem.as_bytes(), 0o600)?;
    write_file(&paths.ca_cert, ca.cert_pem.as_bytes(), 0o644)
}

fn write_server(paths: &DevCertPaths, ca: &GeneratedCa) -> Result<(), TlsError> {
    let (cert, key) = issue_server_cert(ca, DEV_SERVER_SANS, DEV_LEAF_DAYS)?;
    write_file(&paths.server_key, key.as_bytes(), 0o600)?;
    write_file(&paths.server_cert, cert.as_bytes(), 0o644)
}

fn write_client(paths: &DevCertPaths, ca: &GeneratedCa) -> Result<(), TlsError> {
    let (cert, key) = issue_client_cert(ca, DEV_CLIENT_CN, DEV_LEAF_DAYS)?;
    write_file(&paths.client_key, key.as_bytes(), 0o600)?;
    write_file(&paths.client_cert, cert.as_bytes(), 0o644)
}

/// Write-then-rename, so a running server polling the directory never reads a
/// truncated file, and a key file is never visible with a wider mode than
/// `mode`, even for a moment.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        let mut file = options.open(&tmp)?;
        // `mode` on open only applies to a newly created file (and under the umask).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = mode;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TlsError::io(path, e)
    })
}
