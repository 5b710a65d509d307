//! The one typed configuration: TOML file, then `BWGATE__SECTION__KEY`
//! environment overrides, then CLI flags; validated once at start.

mod load;
mod validate;

pub use load::{from_toml_str, load, load_from, ConfigError, ConfigProblem, Overrides, ENV_PREFIX};
pub use validate::{demo_creates_operator_token, is_valid_node_id, validate, warnings};

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::domain::template::TemplateSettings;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub limits: LimitsConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub demo: DemoConfig,
    pub smtp: SmtpConfig,
    pub orgs: OrgsConfig,
    pub license: LicenseConfig,
    pub activation: ActivationConfig,
    pub broadworks: BroadWorksConfig,
    pub xsi: XsiConfig,
    pub partners: Vec<PartnerConfig>,
    pub clusters: Vec<ClusterConfig>,
    pub templates: Vec<TemplateConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTPS listener for the BroadWorks-facing faces.
    pub listen: SocketAddr,
    /// Plain-HTTP ops listener: /healthz, /readyz, /metrics (open) and
    /// the operator API `/admin/...` (operator token required).
    pub admin_listen: SocketAddr,
    /// argon2id PHC hash of the operator token that every `/admin/...`
    /// request must present as `Authorization: Bearer`. Unset: the embedded
    /// demo generates one (its hash in `data/ops-token.hash`, the token in
    /// `data/demo-template.json`); otherwise the operator API is closed.
    pub operator_token_hash: Option<String>,
    /// HTTPS listener without client certificates, for people: the
    /// activation portal and the organization-approval pages.
    pub portal_listen: SocketAddr,
    /// Base URL of the portal in links sent by email; defaults to
    /// `https://{portal_listen}`.
    pub portal_public_url: Option<String>,
    /// Base URL advertised in Provisioning Adapter URLs; defaults to
    /// `https://{listen}`.
    pub public_url: Option<String>,
    /// Data directory (SQLite database, demo template, mail spool).
    pub data_dir: PathBuf,
    /// How long in-flight requests may run after SIGTERM/SIGINT.
    pub shutdown_grace_secs: u64,
    /// Worker threads for the async runtime; 0 = one per core.
    pub worker_threads: usize,
    /// This node's name in work leases (who claimed a due command or
    /// email). Unset: a random one per start. A fixed one lets a restarted
    /// node take back at once what it held (instead of after the lease).
    pub node_id: Option<String>,
    /// The HMAC key behind every link token and verification code.
    /// Relative paths are under `data_dir`; created (0600) when missing.
    /// Nodes sharing one database must use the same file.
    pub secret_file: PathBuf,
}

/// `path` as configured: absolute as it is, relative under `dir` (the
/// data directory, for `store.sqlite_path` and the mail spool).
pub fn resolve_under(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            operator_token_hash: None,
            portal_listen: SocketAddr::from(([127, 0, 0, 1], 8444)),
            portal_public_url: None,
            public_url: None,
            data_dir: PathBuf::from("data"),
            shutdown_grace_secs: 30,
            worker_threads: 0,
            node_id: None,
            secret_file: PathBuf::from("secret.key"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// Handshake fails without a certificate chaining to `client_ca`.
    Require,
    /// A certificate is verified if presented; anonymous clients are allowed.
    Optional,
    /// No client certificates are requested.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMinVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain (PEM). Unset: dev certificates in `certs_dir`,
    /// generated on first start.
    pub cert: Option<PathBuf>,
    /// Server private key (PEM, PKCS#8/SEC1/PKCS#1).
    pub key: Option<PathBuf>,
    /// Trust anchors for client certificates (PEM files). Unset with dev
    /// certificates: the dev CA.
    pub client_ca: Vec<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: TlsMinVersion,
    /// Where `bwgate certs init` and first start write dev certificates.
    pub certs_dir: PathBuf,
    /// How often certificate files are checked for changes (SIGHUP reloads at once).
    pub reload_interval_secs: u64,
    /// Warn this many days before a certificate expires.
    pub expiry_warn_days: u32,
    /// Server-side TLS session cache entries (stateful resumption).
    pub session_cache_size: usize,
    /// Also issue stateless session tickets.
    pub session_tickets: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert: None,
            key: None,
            client_ca: Vec::new(),
            client_auth: ClientAuth::Require,
            min_version: TlsMinVersion::Tls12,
            certs_dir: PathBuf::from("certs"),
            reload_interval_secs: 5,
            expiry_warn_days: 30,
            session_cache_size: 32_768,
            session_tickets: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest flow-through document (the provisioning listener's POST).
    pub max_body_bytes: usize,
    /// Largest body of every other route: portal forms and JSON actions,
    /// and bodies sent where none is expected (capped by `max_body_bytes`).
    pub max_form_body_bytes: usize,
    /// Request bodies buffered at once on one connection (HTTP/2 streams
    /// share it); at least `max_body_bytes`.
    pub max_connection_body_bytes: usize,
    /// Request bodies buffered at once by the whole process, every listener.
    pub max_buffered_body_bytes: usize,
    /// HTTP/1 read buffer (bounds the request head) and HTTP/2 header list size.
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub handshake_timeout_ms: u64,
    /// Time allowed for a request head to arrive. On HTTP/1 keep-alive
    /// connections it counts from the end of the previous response, so it
    /// also bounds HTTP/1 idleness; `idle_timeout_ms` bounds both protocols.
    pub header_read_timeout_ms: u64,
    /// Time allowed to receive a whole request body.
    pub body_read_timeout_ms: u64,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Concurrent HTTP/2 streams per portal connection (a page needs one).
    pub portal_max_concurrent_streams: u32,
    /// A connection with no request in progress for this long is closed
    /// (HTTP/2: GOAWAY; HTTP/1: closed between requests).
    pub idle_timeout_ms: u64,
    /// HTTP/2: the server PINGs a connection this often ...
    pub http2_keepalive_interval_ms: u64,
    /// ... and closes it when the PING is not answered within this.
    pub http2_keepalive_timeout_ms: u64,
    /// HTTP/2 PING and SETTINGS frames (not acknowledgements) a client may
    /// send per second; more closes the connection.
    pub http2_max_control_frames_per_sec: u32,
    pub max_xml_depth: usize,
    pub max_xml_elements: usize,
    /// Operations allowed in one flow-through document.
    pub max_operations: usize,
    /// Attributes on one element of an XML document (namespace
    /// declarations included).
    pub max_xml_attributes: usize,
    /// Namespace declarations (`xmlns`, `xmlns:p`) in one XML document.
    pub max_xml_namespace_declarations: usize,
    /// XML documents (flow-through bodies, XSP answers) parsed at once on
    /// blocking threads (those over 32 KiB; smaller ones parse on the
    /// async worker); 0 = half the cores, at least 1.
    pub max_parallel_xml_parses: usize,
    /// Flow-through requests per second per (provisioningId, client
    /// identity); 0 turns the limit off.
    pub rate_per_sec: u32,
    /// Token bucket size: requests allowed at once before the rate applies.
    pub rate_burst: u32,
    /// Wrong credentials per (realm, user id) within `auth_failure_window_secs`
    /// before that user id is locked (portal sign-in, provisioning Basic auth).
    pub auth_max_failures_per_user: u32,
    /// Wrong credentials per (realm, client address) within the window
    /// before that address is locked (also partner admin tokens).
    pub auth_max_failures_per_address: u32,
    /// Window in which failures are counted.
    pub auth_failure_window_secs: u64,
    /// First lock's length; each further lock of the same key doubles it.
    pub auth_lockout_secs: u64,
    /// Longest lock.
    pub auth_lockout_max_secs: u64,
    /// argon2 verifications running at once across every tenant.
    pub auth_verify_concurrency: usize,
    /// Verifications one tenant (provisioningId; a client address for
    /// partner tokens) may have waiting; more are shed with 503.
    pub auth_verify_queue_per_tenant: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 4 * 1024 * 1024,
            max_form_body_bytes: 16 * 1024,
            max_connection_body_bytes: 8 * 1024 * 1024,
            max_buffered_body_bytes: 256 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 30_000,
            max_concurrent_streams: 256,
            portal_max_concurrent_streams: 16,
            idle_timeout_ms: 60_000,
            http2_keepalive_interval_ms: 20_000,
            http2_keepalive_timeout_ms: 20_000,
            http2_max_control_frames_per_sec: 100,
            max_xml_depth: 16,
            max_xml_elements: 50_000,
            max_operations: 1000,
            max_xml_attributes: 64,
            max_xml_namespace_declarations: 64,
            max_parallel_xml_parses: 0,
            rate_per_sec: 1000,
            rate_burst: 2000,
            auth_max_failures_per_user: 10,
            auth_max_failures_per_address: 30,
            auth_failure_window_secs: 900,
            auth_lockout_secs: 30,
            auth_lockout_max_secs: 900,
            auth_verify_concurrency: 2,
            auth_verify_queue_per_tenant: 32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded, one node (the default).
    Sqlite,
    /// A PostgreSQL server `store.url` names; several nodes may share it.
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSync {
    /// fsync at every commit: acknowledged work survives power loss.
    Full,
    /// WAL without fsync per commit: survives process crashes, not power loss.
    Normal,
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// PostgreSQL connection string (`postgres://user:password@host/db`,
    /// `?sslmode=require` for TLS); only read when `backend = "postgres"`.
    pub url: String,
    /// PostgreSQL connections each node keeps open.
    pub postgres_pool_size: usize,
    /// PostgreSQL writer lanes per node: connections that run units of
    /// work in batches of up to `group_commit_max`.
    pub postgres_writers: usize,
    /// Extra trust anchors (PEM) for the PostgreSQL server's certificate,
    /// besides the system's.
    pub postgres_ca_file: Option<PathBuf>,
    /// SQLite database file; relative paths are under `server.data_dir`.
    pub sqlite_path: PathBuf,
    pub sqlite_synchronous: SqliteSync,
    /// Most writes folded into one group-commit transaction.
    pub group_commit_max: usize,
    /// Read-only connections for concurrent readers.
    pub read_connections: usize,
    /// How often (seconds) a node checks whether another node sharing the
    /// database changed partners, clusters or templates.
    pub tenancy_check_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Sqlite,
            url: String::new(),
            postgres_pool_size: 16,
            postgres_writers: 2,
            postgres_ca_file: None,
            sqlite_path: PathBuf::from("bwgate.db"),
            sqlite_synchronous: SqliteSync::Full,
            group_commit_max: 1024,
            read_connections: 4,
            tenancy_check_secs: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// tracing filter, e.g. `info` or `bwgate=debug,hyper=warn`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Create a demo partner and template on start when no templates are declared.
    pub enabled: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig { enabled: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS; refused if the relay does
    /// not offer it (default port 587).
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption (default port 25): only for a relay on loopback or a
    /// trusted network.
    None,
}

/// `[smtp]`: outgoing email. Without `host`, messages are written as
/// `.eml` files under `{data_dir}/mail/` instead of being sent.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name or IP address. Unset: the mail spool.
    pub host: Option<String>,
    /// Unset: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    /// AUTH user name (with `password`); sent over TLS only.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `From` address of every message.
    pub from_address: String,
    /// `From` display name (empty: the bare address).
    pub from_name: String,
    /// Limit for connecting and for each SMTP command.
    pub timeout_secs: u64,
    /// Extra trust anchor (PEM) for the relay's certificate, e.g. a private
    /// relay's CA; the system's roots are trusted too.
    pub ca_file: Option<PathBuf>,
    /// Name sent in EHLO. Unset: this machine's host name.
    pub hello_name: Option<String>,
    /// First retry delay after a transient failure; doubles per attempt.
    pub retry_initial_ms: u64,
    /// Longest delay between two attempts.
    pub retry_max_secs: u64,
    /// An email still failing transiently this long after it was enqueued
    /// is marked failed.
    pub give_up_after_secs: u64,
}

impl SmtpConfig {
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            from_address: "bwgate@localhost.localdomain".to_string(),
            from_name: "bwgate".to_string(),
            timeout_secs: 30,
            ca_file: None,
            hello_name: None,
            retry_initial_ms: 30_000,
            retry_max_secs: 1800,
            give_up_after_secs: 3 * 24 * 3600,
        }
    }
}

/// The database password (in `url`) never reaches logs.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("url", &redact_url_password(&self.url))
            .field("postgres_pool_size", &self.postgres_pool_size)
            .field("postgres_writers", &self.postgres_writers)
            .field("postgres_ca_file", &self.postgres_ca_file)
            .field("sqlite_path", &self.sqlite_path)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("group_commit_max", &self.group_commit_max)
            .field("read_connections", &self.read_connections)
            .field("tenancy_check_secs", &self.tenancy_check_secs)
            .finish()
    }
}

/// `scheme://user:password@host…` with the password replaced; other
/// forms (key=value strings) are shown as `<set>` when they hold one.
pub fn redact_url_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:<redacted>@{host}");
            }
        }
        return url.to_string();
    }
    if url.contains("password") {
        "<set, holds a password>".to_string()
    } else {
        url.to_string()
    }
}

/// The password never reaches logs.
impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .field("hello_name", &self.hello_name)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("retry_max_secs", &self.retry_max_secs)
            .field("give_up_after_secs", &self.give_up_after_secs)
            .finish()
    }
}

/// `[orgs]`: attaching enterprises to existing organizations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgsConfig {
    /// At most one approval request per (organization, partner) per window
    /// of this many seconds; retries inside it send nothing.
    pub approval_notify_window_secs: u64,
    /// How long an approval link stays valid.
    pub approval_token_ttl_secs: u64,
}

impl Default for OrgsConfig {
    fn default() -> Self {
        OrgsConfig {
            approval_notify_window_secs: 86_400,
            approval_token_ttl_secs: 14 * 86_400,
        }
    }
}

/// `[license]`: the license core (docs/licenses.md): in this process
/// (`mode = "local"`, the default) or a remote `bwgate license-core serve`
/// reached over mTLS (`mode = "remote"`, `[license.remote]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LicenseConfig {
    pub mode: LicenseMode,
    /// An organization without any license subscription grants nothing
    /// (its subscribers go to `error`, 9041). Off (the default), such an
    /// organization is unmetered until its first subscription is added.
    /// Read by the process that runs the core (local mode, or the core).
    pub require_subscription: bool,
    pub remote: RemoteCoreConfig,
    /// This process is a remote license core: its HTTPS listener serves
    /// only `POST /license-core/v1/commands` (set by `bwgate license-core
    /// serve`).
    #[serde(skip)]
    pub serve_core: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseMode {
    #[default]
    Local,
    Remote,
}

/// `[license.remote]`: how the gateway reaches a remote license core.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteCoreConfig {
    /// `https://host:port` of the core's listener.
    pub url: Option<String>,
    /// Trust anchors for the core's certificate (PEM). Unset: `ca.crt`
    /// in `tls.certs_dir` (the dev CA).
    pub ca_file: Option<PathBuf>,
    /// The client certificate and key the gateway presents. Unset:
    /// `client.crt` / `client.key` in `tls.certs_dir`.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// One request's deadline (connect, send, answer).
    pub timeout_ms: u64,
    /// Tries per run before the outbox's own backoff takes over.
    pub attempts: u32,
}

impl Default for RemoteCoreConfig {
    fn default() -> Self {
        RemoteCoreConfig {
            url: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            timeout_ms: 10_000,
            attempts: 3,
        }
    }
}

/// `[activation]`: the activation portal's links and verification codes
/// (untrusted email, consent to move an account, self-activation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActivationConfig {
    /// How long an activation or consent link works.
    pub link_ttl_secs: u64,
    /// How long an emailed verification code works.
    pub code_ttl_secs: u64,
    /// Wrong codes before the activation locks.
    pub max_code_attempts: u32,
    /// How long a locked activation refuses codes and new emails.
    pub lockout_secs: u64,
    /// Verification codes one activation link may send.
    pub max_codes_per_link: u32,
}

impl Default for ActivationConfig {
    fn default() -> Self {
        ActivationConfig {
            link_ttl_secs: 14 * 86_400,
            code_ttl_secs: 1_800,
            max_code_attempts: 5,
            lockout_secs: 900,
            max_codes_per_link: 10,
        }
    }
}

impl ActivationConfig {
    pub fn policy(&self) -> crate::domain::activation::ActivationPolicy {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        crate::domain::activation::ActivationPolicy {
            link_ttl_ms: ms(self.link_ttl_secs),
            code_ttl_ms: ms(self.code_ttl_secs),
            max_code_attempts: self.max_code_attempts,
            lockout_ms: ms(self.lockout_secs),
            max_codes: self.max_codes_per_link,
        }
    }
}

/// `[broadworks]`: calls into BroadWorks (the cluster's XSP), used by the
/// portal to check BroadWorks credentials (sign-in, self-activation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BroadWorksConfig {
    /// Extra trust anchors (PEM) for XSP certificates, besides the system's.
    pub xsp_ca_file: Option<PathBuf>,
    /// How long an XSP call may take.
    pub xsp_timeout_secs: u64,
}

impl Default for BroadWorksConfig {
    fn default() -> Self {
        BroadWorksConfig {
            xsp_ca_file: None,
            xsp_timeout_secs: 10,
        }
    }
}

/// The XSI-style face (`/com.broadsoft.xsi-actions/v2.0/…`, the auth
/// service `/authService/…`) on the mTLS listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XsiConfig {
    /// `iss` of the tokens the auth service issues (BroadWorks' own
    /// AuthService default is `BroadWorks`).
    pub token_issuer: String,
    /// Lifetime of a bearer token (BroadWorks' `tokenDurationInHours`).
    pub token_lifetime_hours: u64,
    /// How long a Basic password the XSP accepted is trusted without
    /// asking the XSP again (0: ask every time).
    pub basic_cache_secs: u64,
    /// `results` of `directories/Enterprise` when the request gives none,
    /// and the most one page holds.
    pub directory_max_results: u32,
    /// `[xsi.events]`: Xsi-Events channels, subscriptions and delivery.
    pub events: XsiEventsConfig,
}

/// Xsi-Events (`/com.broadsoft.xsi-events/v2.0/…`): limits and timing of
/// channels, subscriptions and event delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XsiEventsConfig {
    /// A channel without a heartbeat for this long is closed (XSI's
    /// `eventTimeout`; clients beat every half of it).
    pub heartbeat_timeout_secs: u64,
    /// The most `expires` a channel gets (a larger request is cut to it).
    pub channel_max_expires_secs: u64,
    /// The most `expires` a subscription gets.
    pub subscription_max_expires_secs: u64,
    /// Open channels one user (or partner admin) may hold on this node.
    pub max_channels_per_owner: usize,
    /// Open channels on this node, all owners.
    pub max_channels: usize,
    /// Subscriptions bound to one channel set (or one owner's HTTP
    /// contacts).
    pub max_subscriptions_per_channel_set: usize,
    /// Chunks waiting to be written to one channel; a client reading
    /// slower than events come is closed when it is full (bounded memory).
    pub channel_queue_len: usize,
    /// Events matched but not yet sent, per subscription, held in memory;
    /// beyond it they are read again from the log when there is room.
    pub subscription_backlog: usize,
    /// An event not acknowledged (`eventresponse`) within this is sent
    /// again, with the same `eventID`.
    pub ack_timeout_secs: u64,
    /// Sends of one event before it is given up (logged and counted).
    pub max_delivery_attempts: u32,
    /// Events older than this are pruned once every subscription is past
    /// them.
    pub retention_hours: u64,
    /// How often the event log is read for new events (the use cases on
    /// this node also wake the reader at once).
    pub poll_interval_ms: u64,
    /// Timeout of one POST to an HTTP contact.
    pub contact_timeout_ms: u64,
}

impl Default for XsiEventsConfig {
    fn default() -> Self {
        XsiEventsConfig {
            heartbeat_timeout_secs: 60,
            channel_max_expires_secs: 86_400,
            subscription_max_expires_secs: 86_400,
            max_channels_per_owner: 10,
            max_channels: 10_000,
            max_subscriptions_per_channel_set: 100,
            channel_queue_len: 1_000,
            subscription_backlog: 1_000,
            ack_timeout_secs: 30,
            max_delivery_attempts: 10,
            retention_hours: 72,
            poll_interval_ms: 200,
            contact_timeout_ms: 5_000,
        }
    }
}

impl Default for XsiConfig {
    fn default() -> Self {
        XsiConfig {
            token_issuer: "BroadWorks".into(),
            token_lifetime_hours: 720,
            basic_cache_secs: 300,
            directory_max_results: 100,
            events: XsiEventsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub admin_email: Option<String>,
    /// argon2 PHC string of the partner admin token (status page and
    /// `/partner/v1` API; `bwgate hash-password` makes one). Unset: no
    /// admin access for this partner.
    #[serde(default)]
    pub admin_token_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub id: String,
    pub partner: String,
    pub name: String,
    #[serde(default)]
    pub xsp_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    pub provisioning_id: String,
    pub partner: String,
    #[serde(default)]
    pub cluster: Option<String>,
    pub name: String,
    /// BroadWorks `provisioningUserId` (1..80 characters).
    pub provisioning_username: String,
    /// Plain password (1..20 characters, BroadWorks' limit); prefer the hash.
    #[serde(default)]
    pub provisioning_password: Option<String>,
    /// argon2 PHC string (`bwgate hash-password` makes one).
    #[serde(default)]
    pub provisioning_password_hash: Option<String>,
    /// `[templates.settings]`: behaviour switches (see `TemplateSettings`).
    #[serde(default)]
    pub settings: TemplateSettings,
}

#[cfg(test)]
mod tests;
