//! Where composed messages go: an SMTP relay (lettre, rustls) or, with no
//! relay configured, `.eml` files in a spool directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, SmtpConfig, SmtpSecurity};

/// Spool directory under `server.data_dir` when no relay is configured.
pub const SPOOL_DIR: &str = "mail";

/// How a send failed, which decides what happens to the email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The relay refused this message for good (SMTP 5xx): not retried.
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later: 4xx, connection, TLS, timeout, I/O.
    #[error("{0}")]
    Transient(String),
}

/// A transport could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("smtp.ca_file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("smtp: {0}")]
    Smtp(String),
}

#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    /// `smtp` or `spool` (logs).
    fn name(&self) -> &'static str;
    /// Delivers one message (`email_id` names spool files and log lines).
    async fn send(&self, email_id: i64, message: &Message) -> Result<(), SendError>;
}

/// The transport `[smtp]` describes: a relay when `smtp.host` is set, else
/// the spool under `{data_dir}/mail/`.
pub fn transport_from_config(config: &Config) -> Result<Arc<dyn MailTransport>, TransportError> {
    match &config.smtp.host {
        Some(_) => {
            let smtp = SmtpTransport::new(&config.smtp)?;
            tracing::info!(
                relay = smtp.relay(),
                security = ?config.smtp.security,
                "email goes to an SMTP relay"
            );
            Ok(Arc::new(smtp))
        }
        None => {
            let dir = crate::config::resolve_under(&config.server.data_dir, Path::new(SPOOL_DIR));
            tracing::info!(
                spool = %dir.display(),
                "no smtp.host configured: email is written as .eml files, not sent"
            );
            Ok(Arc::new(SpoolTransport::new(dir)))
        }
    }
}

/// SMTP through a relay: STARTTLS (required, never a silent fallback to
/// plain text), implicit TLS, or none; optional AUTH; trust anchors from the
/// system store plus `smtp.ca_file`. One connection per message.
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    relay: String,
}

impl SmtpTransport {
    pub fn new(cfg: &SmtpConfig) -> Result<SmtpTransport, TransportError> {
        let host = cfg
            .host
            .clone()
            .ok_or_else(|| TransportError::Smtp("smtp.host is not set".into()))?;
        let port = cfg.effective_port();
        let tls = match cfg.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(&host, cfg)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&host, cfg)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(cfg.timeout_secs)));
        if let Some(name) = &cfg.hello_name {
            builder = builder.hello_name(client_id(name));
        }
        if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpTransport {
            inner: builder.build(),
            relay: format!("{host}:{port}"),
        })
    }

    pub fn relay(&self) -> &str {
        &self.relay
    }
}

fn tls_parameters(host: &str, cfg: &SmtpConfig) -> Result<TlsParameters, TransportError> {
    let mut params = TlsParameters::builder(host.to_string());
    if let Some(path) = &cfg.ca_file {
        let pem = std::fs::read(path).map_err(|source| TransportError::CaFile {
            path: path.clone(),
            source,
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| TransportError::CaFile {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        })?;
        params = params.add_root_certificate(cert);
    }
    params
        .build_rustls()
        .map_err(|e| TransportError::Smtp(format!("TLS set-up for {host}: {e}")))
}

fn client_id(name: &str) -> ClientId {
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => ClientId::Ipv4(v4),
        Ok(std::net::IpAddr::V6(v6)) => ClientId::Ipv6(v6),
        Err(_) => ClientId::Domain(name.to_string()),
    }
}

/// SMTP replies that are permanent (5xx) but say something about the relay
/// set-up (authentication, STARTTLS), not about the message: retried, so
/// fixing the configuration delivers the backlog instead of losing it.
const RELAY_SETUP_CODES: &[&str] = &["530", "534", "535", "538"];

/// Permanent only for a 5xx reply about the message itself.
pub(super) fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        if RELAY_SETUP_CODES.contains(&code.as_str()) {
            return SendError::Transient(format!("relay refused the session: {text}"));
        }
        return SendError::Permanent(text);
    }
    SendError::Transient(text)
}

#[async_trait]
impl MailTransport for SmtpTransport {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, email_id: i64, message: &Message) -> Result<(), SendError> {
        match self.inner.send(message.clone()).await {
            Ok(response) => {
                tracing::debug!(
                    email_id,
                    relay = %self.relay,
                    code = %response.code(),
                    reply = %response.message().collect::<Vec<_>>().join(" "),
                    "relay accepted email"
                );
                Ok(())
            }
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Writes each message as `email-{id}.eml` (RFC 5322, CRLF line ends) into
/// a directory: temp file, fsync, rename, so a file that exists is whole.
/// The name is the email id, so a redelivery replaces the same file.
pub struct SpoolTransport {
    dir: PathBuf,
}

impl SpoolTransport {
    pub fn new(dir: PathBuf) -> SpoolTransport {
        SpoolTransport { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_name(email_id: i64) -> String {
        format!("email-{email_id:08}.eml")
    }
}

#[async_trait]
impl MailTransport for SpoolTransport {
    fn name(&self) -> &'static str {
        "spool"
    }

    async fn send(&self, email_id: i64, message: &Message) -> Result<(), SendError> {
        let dir = self.dir.clone();
        let bytes = message.formatted();
        tokio::task::spawn_blocking(move || write_atomically(&dir, email_id, &bytes))
            .await
            .map_err(|e| SendError::Transient(format!("spool task failed: {e}")))?
            .map_err(|e| SendError::Transient(format!("spool {}: {e}", self.dir.display())))
    }
}

fn write_atomically(dir: &Path, email_id: i64, bytes: &[u8]) -> std::io::Result<()> {
    // Spooled messages carry live links and codes: the directory and every
    // file are owner-only whatever the umask.
    crate::store::private_files::ensure_dir(dir)?;
    let name = SpoolTransport::file_name(email_id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    // A temp file left by a crash keeps its old mode when reopened.
    let _ = std::fs::remove_file(&tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // Messages carry activation links and codes: owner only.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    // Make the rename itself durable.
    std::fs::File::open(dir)?.sync_all()
}
