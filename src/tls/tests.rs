//! Real handshakes over in-memory pipes between the configs this module
//! builds, plus dev-certificate, reload and expiry checks.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, HandshakeKind, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use super::devcerts::write_file;
use super::*;
use crate::config::{ClientAuth, TlsConfig, TlsMinVersion};
use crate::testing::eventually;

// ---------------------------------------------------------------- helpers

struct Env {
    _dir: tempfile::TempDir,
    cfg: TlsConfig,
    dev: DevCertPaths,
}

fn env(client_auth: ClientAuth) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let dev = init_dev_certs(&certs, false).unwrap();
    let cfg = TlsConfig {
        certs_dir: certs,
        client_auth,
        ..TlsConfig::default()
    };
    Env {
        _dir: dir,
        cfg,
        dev,
    }
}

impl Env {
    fn reloader(&self) -> Arc<TlsReloader> {
        TlsReloader::new(self.cfg.clone(), resolve_paths(&self.cfg)).unwrap()
    }

    fn client_with_cert(&self) -> Arc<ClientConfig> {
        Arc::new(
            client_config(
                &self.dev.ca_cert,
                Some(&self.dev.client_cert),
                Some(&self.dev.client_key),
                true,
            )
            .unwrap(),
        )
    }

    fn anonymous_client(&self) -> Arc<ClientConfig> {
        Arc::new(client_config(&self.dev.ca_cert, None, None, true).unwrap())
    }

    fn ca(&self) -> GeneratedCa {
        GeneratedCa::load(&self.dev.ca_cert, &self.dev.ca_key).unwrap()
    }
}

#[derive(Debug)]
struct ClientSide {
    kind: HandshakeKind,
    server_serial: String,
    alpn: Option<Vec<u8>>,
    version: rustls::ProtocolVersion,
}

#[derive(Debug)]
struct Outcome {
    client: Result<ClientSide, String>,
    server: Result<Option<PeerIdentity>, String>,
}

/// One connection: the server answers "ok" after its handshake; the client
/// counts as connected only once it has read that, because in TLS 1.3 a
/// client finishes its side before the server has judged its certificate.
async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let server_task = tokio::spawn(async move {
        let mut tls = TlsAcceptor::from(server)
            .accept(s)
            .await
            .map_err(|e| e.to_string())?;
        let identity = peer_identity(tls.get_ref().1);
        tls.write_all(b"ok").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1];
        let _ = tls.read(&mut buf).await;
        Ok(identity)
    });
    let client_result = async {
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = TlsConnector::from(client)
            .connect(name, c)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 2];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ok");
        let conn = tls.get_ref().1;
        let side = ClientSide {
            kind: conn.handshake_kind().unwrap(),
            server_serial: identity_from_der(&conn.peer_certificates().unwrap()[0])
                .unwrap()
                .serial_hex,
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version: conn.protocol_version().unwrap(),
        };
        let _ = tls.shutdown().await;
        Ok::<_, String>(side)
    };
    let client = tokio::time::timeout(Duration::from_secs(10), client_result)
        .await
        .expect("client handshake hung");
    let server = tokio::time::timeout(Duration::from_secs(10), server_task)
        .await
        .expect("server handshake hung")
        .unwrap();
    Outcome { client, server }
}

fn serial_of_pem(cert_pem: &str) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    identity_from_der(&der).unwrap().serial_hex
}

fn serial_of_file(path: &Path) -> String {
    serial_of_pem(&std::fs::read_to_string(path).unwrap())
}

fn parse_pem_file(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------- dev certs

#[test]
fn init_writes_six_files_keys_private_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let paths = init_dev_certs(&certs, false).unwrap();
    let names: Vec<PathBuf> = [
        "ca.crt",
        "ca.key",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
    ]
    .iter()
    .map(|n| certs.join(n))
    .collect();
    for p in &names {
        assert!(p.is_file(), "{} missing", p.display());
    }
    assert_eq!(paths, DevCertPaths::in_dir(&certs));
    #[cfg(unix)]
    {
        for key in [&paths.ca_key, &paths.server_key, &paths.client_key] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        assert_eq!(mode(&paths.server_cert), 0o644);
    }
    // No temp files left behind.
    assert_eq!(std::fs::read_dir(&certs).unwrap().count(), 6);

    let ca_before = std::fs::read(&paths.ca_cert).unwrap();
    let err = init_dev_certs(&certs, false).unwrap_err();
    assert!(matches!(err, TlsError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), ca_before);

    // A widened mode on an existing key is narrowed again by a forced init.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&paths.server_key, std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    init_dev_certs(&certs, true).unwrap();
    assert_ne!(std::fs::read(&paths.ca_cert).unwrap(), ca_before);
    #[cfg(unix)]
    assert_eq!(mode(&paths.server_key), 0o600);
}

#[test]
fn refuses_when_any_single_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client.key"), "mine").unwrap();
    let err = init_dev_certs(dir.path(), false).unwrap_err();
    assert!(err.to_string().contains("client.key"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("client.key")).unwrap(),
        "mine"
    );
    assert!(!dir.path().join("ca.crt").exists());
}

#[test]
fn dev_certificates_have_expected_validity_names_and_usages() {
    let e = env(ClientAuth::Require);
    let server_der = parse_pem_file(&e.dev.server_cert);
    let (_, server) = X509Certificate::from_der(&server_der).unwrap();
    let v = server.validity();
    let span_days = (v.not_after.timestamp() - v.not_before.timestamp()) as f64 / 86_400.0;
    assert!((365.0..365.1).contains(&span_days), "span {span_days}");
    let left = days_until_expiry(&server_der).unwrap();
    assert!((364.99..=365.0).contains(&left), "days left {left}");

    let mut sans = Vec::new();
    let mut eku_server = false;
    for ext in server.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                sans = san
                    .general_names
                    .iter()
                    .map(|g| match g {
                        GeneralName::DNSName(d) => d.to_string(),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()).to_string(),
                            16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()).to_string(),
                            _ => format!("{b:?}"),
                        },
                        other => other.to_string(),
                    })
                    .collect()
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                eku_server = eku.server_auth && !eku.client_auth
            }
            _ => {}
        }
    }
    assert_eq!(sans, ["localhost", "127.0.0.1", "::1"]);
    assert!(eku_server);
    assert!(!server.is_ca());

    let ca_der = parse_pem_file(&e.dev.ca_cert);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    assert!(ca.is_ca());
    assert_eq!(
        ca.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "bwgate dev CA"
    );
    let ca_days = days_until_expiry(&ca_der).unwrap();
    assert!((3649.9..=3650.0).contains(&ca_days), "{ca_days}");
    assert_eq!(server.issuer(), ca.subject());

    let client_der = parse_pem_file(&e.dev.client_cert);
    let (_, client) = X509Certificate::from_der(&client_der).unwrap();
    let id = identity_from_der(&client_der).unwrap();
    assert_eq!(id.subject_cn.as_deref(), Some("bwgate-dev-as"));
    assert!(!id.serial_hex.is_empty() && id.serial_hex.chars().all(|c| c.is_ascii_hexdigit()));
    let eku = client.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!((364.99..=365.0).contains(&days_until_expiry(&client_der).unwrap()));
}

#[test]
fn days_until_expiry_negative_for_expired_and_error_for_garbage() {
    let ca = generate_ca("expired CA", -3).unwrap();
    let days = days_until_expiry(ca.cert_der()).unwrap();
    assert!((-3.01..=-2.99).contains(&days), "{days}");
    assert!(matches!(
        days_until_expiry(b"not a certificate"),
        Err(TlsError::X509(_))
    ));
    assert!(identity_from_der(b"\x30\x03\x02\x01\x00").is_none());
}

#[test]
fn ensure_dev_certs_generates_once_and_reuses_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, generated) = ensure_dev_certs(dir.path()).unwrap();
    assert!(generated);
    let (_, again) = ensure_dev_certs(dir.path()).unwrap();
    assert!(!again);

    let ca_before = std::fs::read(&paths.ca_cert).unwrap();
    let client_before = std::fs::read(&paths.client_cert).unwrap();
    let server_serial_before = serial_of_file(&paths.server_cert);
    std::fs::remove_file(&paths.server_key).unwrap();
    let (_, regenerated) = ensure_dev_certs(dir.path()).unwrap();
    assert!(regenerated);
    assert_eq!(
        std::fs::read(&paths.ca_cert).unwrap(),
        ca_before,
        "CA must be reused"
    );
    assert_eq!(std::fs::read(&paths.client_cert).unwrap(), client_before);
    assert_ne!(serial_of_file(&paths.server_cert), server_serial_before);

    // The new server cert chains to the reused CA: a full build succeeds and
    // the existing client cert still verifies.
    let cfg = TlsConfig {
        certs_dir: dir.path().into(),
        ..TlsConfig::default()
    };
    let resumption = Resumption::new(&cfg).unwrap();
    build_server_config(&cfg, &resolve_paths(&cfg), &resumption).unwrap();
}

// ---------------------------------------------------------------- config errors

#[test]
fn config_errors_name_the_file() {
    let e = env(ClientAuth::Require);
    let resumption = Resumption::new(&e.cfg).unwrap();
    let good = resolve_paths(&e.cfg);
    assert_eq!(good.client_ca, vec![e.dev.ca_cert.clone()]);

    // Key file holding only a certificate.
    let paths = TlsPaths {
        key: e.dev.server_cert.clone(),
        ..good.clone()
    };
    let err = build_server_config(&e.cfg, &paths, &resumption).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: no private key found in PEM",
            e.dev.server_cert.display()
        )
    );

    // Empty trust-anchor file.
    let empty = e.cfg.certs_dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let paths = TlsPaths {
        client_ca: vec![empty.clone()],
        ..good.clone()
    };
    let err = build_server_config(&e.cfg, &paths, &resumption).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("client_ca {}: no certificates", empty.display())
    );

    // Missing trust-anchor file, and no trust anchors at all.
    let paths = TlsPaths {
        client_ca: vec![e.cfg.certs_dir.join("nope.pem")],
        ..good.clone()
    };
    let err = build_server_config(&e.cfg, &paths, &resumption).unwrap_err();
    assert!(matches!(err, TlsError::ClientCa { .. }), "{err}");
    assert!(err.to_string().contains("nope.pem"), "{err}");
    let paths = TlsPaths {
        client_ca: vec![],
        ..good.clone()
    };
    let err = build_server_config(&e.cfg, &paths, &resumption).unwrap_err();
    assert!(
        matches!(err, TlsError::NoClientCa { mode: "require" }),
        "{err}"
    );
    // ... which is fine when client certificates are off.
    let off = TlsConfig {
        client_auth: ClientAuth::Off,
        ..e.cfg.clone()
    };
    build_server_config(&off, &paths, &resumption).unwrap();

    // Garbage PEM in the certificate file.
    let bad = e.cfg.certs_dir.join("bad.crt");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let paths = TlsPaths {
        cert: bad.clone(),
        ..good.clone()
    };
    let err = build_server_config(&e.cfg, &paths, &resumption).unwrap_err();
    assert!(
        err.to_string().starts_with(&bad.display().to_string()),
        "{err}"
    );

    // Missing server certificate.
    let paths = TlsPaths {
        cert: e.cfg.certs_dir.join("missing.crt"),
        ..good.clone()
    };
    assert!(matches!(
        build_server_config(&e.cfg, &paths, &resumption),
        Err(TlsError::Io { .. })
    ));

    // Client cert without key.
    assert!(matches!(
        client_config(&e.dev.ca_cert, Some(&e.dev.client_cert), None, true),
        Err(TlsError::ClientCertWithoutKey)
    ));
    // Reloader refuses to start on a bad config.
    let broken = TlsConfig {
        cert: Some(bad.clone()),
        key: Some(e.dev.server_key.clone()),
        ..e.cfg.clone()
    };
    assert!(TlsReloader::new(broken.clone(), resolve_paths(&broken)).is_err());
}

#[test]
fn sec1_and_pkcs1_keys_load() {
    let dir = tempfile::tempdir().unwrap();
    let e = env(ClientAuth::Off);
    let resumption = Resumption::new(&e.cfg).unwrap();
    for (name, cert, key) in [
        (
            "sec1",
            include_str!("testdata/sec1.crt"),
            include_str!("testdata/sec1.key"),
        ),
        (
            "pkcs1",
            include_str!("testdata/pkcs1.crt"),
            include_str!("testdata/pkcs1.key"),
        ),
    ] {
        let cert_path = dir.path().join(format!("{name}.crt"));
        let key_path = dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let paths = TlsPaths {
            cert: cert_path,
            key: key_path,
            client_ca: vec![],
        };
        build_server_config(&e.cfg, &paths, &resumption)
            .unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    // And a SEC1 key against someone else's certificate is caught.
    let paths = TlsPaths {
        cert: dir.path().join("pkcs1.crt"),
        key: dir.path().join("sec1.key"),
        client_ca: vec![],
    };
    assert!(matches!(
        build_server_config(&e.cfg, &paths, &resumption),
        Err(TlsError::KeyMismatch { .. })
    ));
}

// ---------------------------------------------------------------- handshakes

#[tokio::test]
async fn require_accepts_dev_client_and_reports_identity() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();
    let out = handshake(r.current(), e.client_with_cert()).await;
    let client = out.client.unwrap();
    assert_eq!(client.kind, HandshakeKind::Full);
    assert_eq!(client.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(client.server_serial, serial_of_file(&e.dev.server_cert));
    let id = out.server.unwrap().expect("client identity");
    assert_eq!(id.subject_cn.as_deref(), Some("bwgate-dev-as"));
    assert_eq!(id.serial_hex, serial_of_file(&e.dev.client_cert));

    // http/1.1-only clients get http/1.1.
    let h1 = Arc::new(
        client_config(
            &e.dev.ca_cert,
            Some(&e.dev.client_cert),
            Some(&e.dev.client_key),
            false,
        )
        .unwrap(),
    );
    let out = handshake(r.current(), h1).await;
    assert_eq!(out.client.unwrap().alpn.as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn require_rejects_anonymous_and_foreign_ca_clients() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();

    let out = handshake(r.current(), e.anonymous_client()).await;
    assert!(out.client.is_err(), "{:?}", out.client);
    let err = out.server.unwrap_err();
    assert!(
        err.contains("NoCertificatesPresented") || err.contains("no certificates"),
        "{err}"
    );

    let other = generate_ca("some other CA", 30).unwrap();
    let (cert, key) = issue_client_cert(&other, "bwgate-dev-as", 30).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let foreign =
        Arc::new(client_config(&e.dev.ca_cert, Some(&cert_path), Some(&key_path), true).unwrap());
    let out = handshake(r.current(), foreign).await;
    assert!(out.client.is_err(), "{:?}", out.client);
    let err = out.server.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");

    // An expired client certificate from the right CA is refused too.
    let (cert, key) = issue_client_cert(&e.ca(), "old-as", -1).unwrap();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let expired =
        Arc::new(client_config(&e.dev.ca_cert, Some(&cert_path), Some(&key_path), true).unwrap());
    let out = handshake(r.current(), expired).await;
    assert!(out.client.is_err());
    let err = out.server.unwrap_err();
    assert!(err.contains("expired"), "{err}");
}

#[tokio::test]
async fn optional_allows_anonymous_clients_but_verifies_presented_certs() {
    let e = env(ClientAuth::Optional);
    let r = e.reloader();
    let out = handshake(r.current(), e.anonymous_client()).await;
    out.client.unwrap();
    assert_eq!(out.server.unwrap(), None);

    let out = handshake(r.current(), e.client_with_cert()).await;
    out.client.unwrap();
    assert_eq!(
        out.server.unwrap().unwrap().subject_cn.as_deref(),
        Some("bwgate-dev-as")
    );

    let other = generate_ca("some other CA", 30).unwrap();
    let (cert, key) = issue_client_cert(&other, "intruder", 30).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("c.crt"), dir.path().join("c.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let foreign =
        Arc::new(client_config(&e.dev.ca_cert, Some(&cert_path), Some(&key_path), true).unwrap());
    let out = handshake(r.current(), foreign).await;
    assert!(
        out.server.is_err(),
        "a presented but untrusted cert must fail"
    );
}

#[tokio::test]
async fn off_does_not_ask_for_client_certificates() {
    let e = env(ClientAuth::Off);
    let r = e.reloader();
    let out = handshake(r.current(), e.client_with_cert()).await;
    out.client.unwrap();
    assert_eq!(out.server.unwrap(), None);
}

#[tokio::test]
async fn min_version_13_refuses_tls12_clients() {
    let mut e = env(ClientAuth::Require);
    let tls12 = Arc::new(tls12_client(&e));
    let out = handshake(e.reloader().current(), tls12.clone()).await;
    assert_eq!(
        out.client.unwrap().version,
        rustls::ProtocolVersion::TLSv1_2
    );

    e.cfg.min_version = TlsMinVersion::Tls13;
    let r = e.reloader();
    let out = handshake(r.current(), tls12).await;
    assert!(out.client.is_err() && out.server.is_err());
    let out = handshake(r.current(), e.client_with_cert()).await;
    assert_eq!(
        out.client.unwrap().version,
        rustls::ProtocolVersion::TLSv1_3
    );
}

fn tls12_client(e: &Env) -> ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(parse_pem_file(&e.dev.ca_cert)).unwrap();
    let chain = vec![parse_pem_file(&e.dev.client_cert)];
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&e.dev.client_key).unwrap();
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap()
}

// ---------------------------------------------------------------- resumption

#[tokio::test]
async fn sessions_resume_and_keep_resuming_after_a_reload() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();
    for (label, client) in [
        ("tls13", e.client_with_cert()),
        ("tls12", Arc::new(tls12_client(&e))),
    ] {
        let first = handshake(r.current(), client.clone()).await;
        assert_eq!(first.client.unwrap().kind, HandshakeKind::Full, "{label}");
        let second = handshake(r.current(), client.clone()).await;
        assert_eq!(
            second.client.unwrap().kind,
            HandshakeKind::Resumed,
            "{label}"
        );
        // The resumed session still carries the client's identity.
        assert_eq!(
            second.server.unwrap().unwrap().subject_cn.as_deref(),
            Some("bwgate-dev-as"),
            "{label}"
        );

        assert!(r.reload(true).unwrap());
        let third = handshake(r.current(), client.clone()).await;
        assert_eq!(
            third.client.unwrap().kind,
            HandshakeKind::Resumed,
            "{label} after reload"
        );
    }

    // Without tickets the stateful cache alone still resumes (TLS 1.3 too).
    let mut e2 = env(ClientAuth::Require);
    e2.cfg.session_tickets = false;
    let r2 = e2.reloader();
    let client = e2.client_with_cert();
    handshake(r2.current(), client.clone())
        .await
        .client
        .unwrap();
    let again = handshake(r2.current(), client).await;
    assert_eq!(again.client.unwrap().kind, HandshakeKind::Resumed);
}

#[tokio::test]
async fn changed_trust_anchors_end_resumption_of_older_sessions() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();
    for (label, client) in [
        ("tls13", e.client_with_cert()),
        ("tls12", Arc::new(tls12_client(&e))),
    ] {
        handshake(r.current(), client.clone()).await.client.unwrap();
        assert_eq!(
            handshake(r.current(), client.clone())
                .await
                .client
                .unwrap()
                .kind,
            HandshakeKind::Resumed,
            "{label}"
        );
        // Add a second trust anchor: the bundle changes, the dev CA stays.
        let other = generate_ca(&format!("other CA {label}"), 30).unwrap();
        let mut bundle = std::fs::read_to_string(&e.dev.ca_cert).unwrap();
        bundle.push_str(other.cert_pem());
        std::fs::write(&e.dev.ca_cert, bundle).unwrap();
        assert!(r.reload(false).unwrap());
        let after = handshake(r.current(), client.clone()).await;
        assert_eq!(
            after.client.unwrap().kind,
            HandshakeKind::Full,
            "{label}: a session from before the change must be verified again"
        );
        // A server-certificate-only reload keeps the new sessions resumable.
        assert!(r.reload(true).unwrap());
        assert_eq!(
            handshake(r.current(), client).await.client.unwrap().kind,
            HandshakeKind::Resumed,
            "{label}"
        );
    }
}

// ---------------------------------------------------------------- reload

#[tokio::test]
async fn reload_picks_up_a_new_certificate_from_the_same_ca() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();
    let old_serial = serial_of_file(&e.dev.server_cert);
    assert!(!r.reload(false).unwrap(), "nothing changed yet");

    let (cert, key) =
        issue_server_cert(&e.ca(), &["localhost", "reloaded.bwgate.test"], 30).unwrap();
    let new_serial = serial_of_pem(&cert);
    assert_ne!(new_serial, old_serial);
    write_file(&e.dev.server_key, key.as_bytes(), 0o600).unwrap();
    write_file(&e.dev.server_cert, cert.as_bytes(), 0o644).unwrap();

    assert!(r.reload(false).unwrap());
    let out = handshake(r.current(), e.client_with_cert()).await;
    assert_eq!(out.client.unwrap().server_serial, new_serial);
    assert!(!r.reload(false).unwrap(), "already loaded");
}

#[tokio::test]
async fn half_written_pair_is_rejected_and_old_config_keeps_serving() {
    let e = env(ClientAuth::Require);
    let r = e.reloader();
    let old_serial = serial_of_file(&e.dev.server_cert);

    // Step one of a two-step replacement: new cert, old key still on disk.
    let (cert, key) = issue_server_cert(&e.ca(), &["localhost"], 30).unwrap();
    write_file(&e.dev.server_cert, cert.as_bytes(), 0o644).unwrap();
    let err = r.reload(false).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("server.key"), "{err}");
    // The same broken files are not retried until something changes.
    assert!(!r.reload(false).unwrap());

    let out = handshake(r.current(), e.client_with_cert()).await;
    assert_eq!(out.client.unwrap().server_serial, old_serial);

    // Step two lands: the next poll swaps it in.
    write_file(&e.dev.server_key, key.as_bytes(), 0o600).unwrap();
    assert!(r.reload(false).unwrap());
    let out = handshake(r.current(), e.client_with_cert()).await;
    assert_eq!(out.client.unwrap().server_serial, serial_of_pem(&cert));

    // A deleted key file is an error too, and still does not stop service.
    std::fs::remove_file(&e.dev.server_key).unwrap();
    assert!(matches!(r.reload(false), Err(TlsError::Io { .. })));
    assert!(handshake(r.current(), e.client_with_cert())
        .await
        .client
        .is_ok());
}

#[tokio::test]
async fn watcher_polls_and_stops_on_shutdown() {
    let mut e = env(ClientAuth::Require);
    e.cfg.reload_interval_secs = 1;
    let r = e.reloader();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle = r.spawn_watcher(rx);

    let (cert, key) = issue_server_cert(&e.ca(), &["localhost", "polled.bwgate.test"], 30).unwrap();
    write_file(&e.dev.server_key, key.as_bytes(), 0o600).unwrap();
    write_file(&e.dev.server_cert, cert.as_bytes(), 0o644).unwrap();
    let want = serial_of_pem(&cert);
    // 50 looks 100 ms apart before.
    eventually(
        "the poller to pick up the new certificate",
        Duration::from_secs(5),
        || async {
            let out = handshake(r.current(), e.client_with_cert()).await;
            match out.client.unwrap().server_serial {
                serial if serial == want => Ok(()),
                serial => Err(serial),
            }
        },
    )
    .await;

    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("watcher did not stop")
        .unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_forces_a_reload() {
    let mut e = env(ClientAuth::Require);
    e.cfg.reload_interval_secs = 3600;
    let r = e.reloader();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handle = r.spawn_watcher(rx);
    let before = r.current();

    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // 50 looks 50 ms apart before.
    eventually(
        "SIGHUP to force a reload",
        Duration::from_millis(2500),
        || async {
            if Arc::ptr_eq(&r.current(), &before) {
                Err("the same configuration")
            } else {
                Ok(())
            }
        },
    )
    .await;
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("watcher did not stop when the shutdown sender was dropped")
        .unwrap();
}
