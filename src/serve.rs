//! `bwgate serve`: start-up (data dir, certificates, store, tenancy,
//! listeners), the run, and graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::config::LicenseMode;
use crate::config::{resolve_under, Config, StoreBackend, TemplateConfig};
use crate::demo::{self, DemoStart};
use crate::domain::credentials::{hash_password, CredentialError};
use crate::domain::template::{Cluster, CustomerTemplate, Partner, TemplateSource};
use crate::http::{admin::serve_admin, admin_auth::OperatorAuth, serve_https, Face};
use crate::license::remote::RemoteLicenseCore;
use crate::license::{LicenseCore, LocalLicenseCore};
use crate::notify::{self, DeliveryPolicy, Mailer};
use crate::provision::{worker, Provisioning};
use crate::store::postgres::{PgOptions, PgStore};
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, Store, StoreError};
use crate::tls::{self, TlsError, TlsReloader};

/// Written once the listeners are bound, for scripts and tests that start
/// the server on ephemeral ports.
pub const LISTEN_FILE: &str = "listen.json";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("demo template: {0}")]
    Demo(#[from] demo::DemoError),
    #[error("email: {0}")]
    Mail(String),
    #[error("XSI tokens: {0}")]
    Tokens(String),
    #[error("{0}")]
    LicenseCore(#[from] crate::license::remote::RemoteCoreError),
    #[error(
        "{}: this secret differs from the one the other nodes on this database sign links \
         with; copy the same secret file to every node (server.secret_file)",
        path.display()
    )]
    SecretMismatch { path: PathBuf },
    #[error("template {provisioning_id}: {source}")]
    Credentials {
        provisioning_id: String,
        source: CredentialError,
    },
}

/// The back-end `store.backend` names.
async fn open_store(config: &Config, data_dir: &Path) -> Result<SharedStore, ServeError> {
    Ok(match config.store.backend {
        StoreBackend::Sqlite => {
            let db_path = resolve_under(data_dir, &config.store.sqlite_path);
            Arc::new(SqliteStore::open(&db_path, &config.store).await?)
        }
        StoreBackend::Postgres => {
            let tls = tls::client::service_client_config(config.store.postgres_ca_file.as_deref())?;
            let options = PgOptions {
                url: config.store.url.clone(),
                pool_size: config.store.postgres_pool_size,
                writers: config.store.postgres_writers,
                max_batch: config.store.group_commit_max,
            };
            Arc::new(PgStore::open(&options, Some(tls)).await?)
        }
    })
}

/// Builds the runtime and runs the server until a shutdown signal.
pub fn run(config: Config) -> Result<(), ServeError> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if config.server.worker_threads > 0 {
        rt.worker_threads(config.server.worker_threads);
    }
    let rt = rt.build().map_err(|source| ServeError::Io {
        what: "starting runtime",
        path: PathBuf::new(),
        source,
    })?;
    rt.block_on(run_async(config))
}

pub async fn run_async(config: Config) -> Result<(), ServeError> {
    // First: anything recorded before the recorder exists is lost.
    let metrics = crate::telemetry::metrics_handle();
    let mut signals = ShutdownSignals::install()?;
    let config = Arc::new(config);
    let data_dir = config.server.data_dir.clone();
    // Owner only: it holds the database, the link-signing key and spooled mail.
    crate::store::private_files::ensure_dir(&data_dir).map_err(|source| ServeError::Io {
        what: "creating data directory",
        path: data_dir.clone(),
        source,
    })?;

    if config.tls.cert.is_none() {
        let (paths, generated) = tls::ensure_dev_certs(&config.tls.certs_dir)?;
        if generated {
            println!(
                "generated dev certificates in {} (CA, server valid 1 year, client)",
                config.tls.certs_dir.display()
            );
        }
        tracing::info!(server_cert = %paths.server_cert.display(), generated, "using dev certificates");
    }
    let tls = TlsReloader::new(config.tls.clone(), tls::resolve_paths(&config.tls))?;

    let store = open_store(&config, &data_dir).await?;
    // Nodes sharing a database must sign links with one secret: checked
    // before anything listens.
    let secret_path = resolve_under(&data_dir, &config.server.secret_file);
    let link_signer = Arc::new(
        crate::links::LinkSigner::load_or_create_file(&secret_path).map_err(|source| {
            ServeError::Io {
                what: "loading the server secret",
                path: secret_path.clone(),
                source,
            }
        })?,
    );
    let recorded = store
        .link_secret_fingerprint(&link_signer.fingerprint())
        .await?;
    if recorded != link_signer.fingerprint() {
        return Err(ServeError::SecretMismatch { path: secret_path });
    }
    sync_tenancy(&config, store.as_ref()).await?;
    // Workers claim due work as this node. The id is stable across
    // restarts (configured, or kept in the data directory), so a node that
    // crashed takes back at once what it held instead of waiting for its
    // leases to expire.
    let node_id = worker::init_node_id(Some(&stable_node_id(
        &data_dir,
        config.server.node_id.as_deref(),
    )?));
    let released = store.release_leases(node_id).await?;
    tracing::info!(node_id, released, "work leases of this node released");
    let mail_transport =
        notify::transport_from_config(&config).map_err(|e| ServeError::Mail(e.to_string()))?;
    let mail_policy = DeliveryPolicy::from_config(&config.smtp, node_id)
        .map_err(|e| ServeError::Mail(e.to_string()))?;
    let mailer = Mailer::new(store.clone(), Arc::new(Notify::new()));

    let https = bind(config.server.listen).await?;
    let admin = bind(config.server.admin_listen).await?;
    let portal = bind(config.server.portal_listen).await?;
    let https_addr = local_addr(&https, config.server.listen);
    let admin_addr = local_addr(&admin, config.server.admin_listen);
    let portal_addr = local_addr(&portal, config.server.portal_listen);
    // People reach the portal without client certificates; same server
    // certificate, its own reloader.
    let portal_tls = TlsReloader::new(
        crate::config::TlsConfig {
            client_auth: crate::config::ClientAuth::Off,
            ..config.tls.clone()
        },
        tls::resolve_paths(&config.tls),
    )?;
    let base_url = config
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("https://{https_addr}"));

    let demo = if config.demo.enabled && config.templates.is_empty() {
        let ops_token = crate::config::demo_creates_operator_token(&config);
        Some(demo::ensure_demo(store.as_ref(), &data_dir, &base_url, ops_token).await?)
    } else {
        None
    };
    let operator_hashes: Vec<String> = config
        .server
        .operator_token_hash
        .iter()
        .chain(demo.as_ref().and_then(|d| d.ops_token_hash.as_ref()))
        .cloned()
        .collect();
    let operator = Arc::new(OperatorAuth::new(operator_hashes));
    for warning in crate::config::warnings(&config) {
        tracing::warn!(key = %warning.key, "{}", warning.message);
        println!("warning: {}: {}", warning.key, warning.message);
    }
    write_listen_file(&data_dir, https_addr, admin_addr, portal_addr)?;
    print_banner(&config, https_addr, admin_addr, portal_addr, demo.as_ref());

    let signer = crate::orgs::ApprovalSigner::new(link_signer.clone());
    let portal_base = config
        .server
        .portal_public_url
        .clone()
        .unwrap_or_else(|| format!("https://{portal_addr}"))
        .trim_end_matches('/')
        .to_string();
    let activations = Arc::new(crate::activation::ActivationLinks {
        signer: link_signer.clone(),
        portal_base: portal_base.clone(),
        policy: config.activation.policy(),
    });
    let approvals = Arc::new(crate::orgs::ApprovalLinks {
        signer,
        portal_base,
        notify_window_ms: (config.orgs.approval_notify_window_secs as i64).saturating_mul(1000),
        token_ttl_ms: (config.orgs.approval_token_ttl_secs as i64).saturating_mul(1000),
    });
    let provisioning = Provisioning::with_links(
        store.clone(),
        Some(approvals),
        Some(activations),
        Some(mailer.wake_handle()),
    );
    let templates = provisioning.load_templates().await?;
    tracing::info!(templates, "customer templates loaded");
    let license_core: Arc<dyn LicenseCore> = match config.license.mode {
        LicenseMode::Local => LocalLicenseCore::new(
            store.clone(),
            crate::license::LicensePolicy::from_config(&config.license),
        ),
        LicenseMode::Remote => {
            RemoteLicenseCore::from_config(&config.license.remote, &config.tls.certs_dir)?
        }
    };
    tracing::info!(core = license_core.name(), "license core");
    // A license core process serves its command route on the mTLS
    // listener and no portal.
    let core_role = config.license.serve_core;
    let app = App::new(
        config.clone(),
        store.clone(),
        metrics.clone(),
        provisioning.clone(),
        mailer.clone(),
    );
    // One for both HTTPS listeners: rate limits, lockouts and the body
    // budget count across them.
    let tokens = crate::tokens::TokenIssuer::load_or_create(
        &data_dir,
        crate::tokens::TokenSettings {
            issuer: config.xsi.token_issuer.clone(),
            bearer_lifetime_secs: i64::try_from(config.xsi.token_lifetime_hours)
                .unwrap_or(720)
                .saturating_mul(3600),
        },
    )
    .map_err(|e| ServeError::Tokens(e.to_string()))?;
    tracing::info!(kid = tokens.key_id(), "XSI token key loaded");
    // Xsi-Events: HTTP contacts are called with the system's trust store.
    let contact_tls = Arc::new(tls::client::service_client_config(None)?);
    let event_hub = crate::events::EventHub::new(
        config.xsi.events.clone(),
        node_id.to_string(),
        store.clone(),
        provisioning.events_ready.clone(),
        contact_tls,
    );
    let https_state =
        crate::http::State::with_xsi(app.clone(), Some(Arc::new(tokens)), Some(event_hub.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Ends every channel's stream at the stop signal, so the drain below
    // is not held by them.
    let events_task = tokio::spawn(event_hub.run(stop_rx.clone()));
    let (admin_stop_tx, admin_stop_rx) = watch::channel(false);
    let tracker = TaskTracker::new();
    let watcher = tls.spawn_watcher(stop_rx.clone());
    let portal_watcher = portal_tls.spawn_watcher(stop_rx.clone());
    let upkeep = crate::telemetry::spawn_metrics_upkeep(metrics);
    let https_task = tokio::spawn(serve_https(
        if core_role {
            Face::LicenseCore
        } else {
            Face::Provisioning
        },
        https_state.clone(),
        tls.clone(),
        https,
        stop_rx.clone(),
        tracker.clone(),
    ));
    let portal_task = if core_role {
        drop(portal);
        tokio::spawn(async {})
    } else {
        tokio::spawn(serve_https(
            Face::Portal,
            https_state.clone(),
            portal_tls.clone(),
            portal,
            stop_rx.clone(),
            tracker.clone(),
        ))
    };
    let admin_task = tokio::spawn(serve_admin(app.clone(), operator, admin, admin_stop_rx));
    let delivery = worker::spawn_delivery(
        store.clone(),
        license_core,
        provisioning.outbox_ready.clone(),
        stop_rx.clone(),
    );
    let tenancy_watch = crate::provision::tenancy::spawn_watch(
        store.clone(),
        provisioning.clone(),
        Duration::from_secs(config.store.tenancy_check_secs),
        stop_rx.clone(),
    );
    let mail = notify::spawn_mailer(
        store.clone(),
        mail_transport,
        DeliveryPolicy {
            signer: Some(link_signer.clone()),
            ..mail_policy
        },
        mailer.wake_handle(),
        stop_rx.clone(),
    );
    tracing::info!(%https_addr, %admin_addr, %portal_addr, store = store.backend_name(), node_id, "bwgate started");

    let signal = signals.recv().await;
    tracing::info!(signal, "shutdown requested: draining");
    app.start_draining();
    let _ = stop_tx.send(true);
    let _ = https_task.await;
    let _ = portal_task.await;
    tracker.close();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    // A second signal during the drain ends the process at once; every
    // acknowledged write is already committed, so nothing is lost.
    tokio::select! {
        drained = tokio::time::timeout(grace, tracker.wait()) => if drained.is_err() {
            tracing::warn!(open = tracker.len(), grace_secs = grace.as_secs(), "grace period over; closing remaining connections");
        },
        sig = signals.recv() => {
            tracing::warn!(signal = sig, "second signal: stopping without waiting");
        }
    }
    // Deliveries in flight finish; what is left stays in the outbox for the next start.
    let _ = delivery.await;
    // Emails being sent may finish within smtp.timeout_secs; any still in
    // flight then, and the rest, stay pending for the next start.
    let mut mail = mail;
    let mail_grace = Duration::from_secs(config.smtp.timeout_secs);
    if tokio::time::timeout(mail_grace, &mut mail).await.is_err() {
        tracing::warn!(
            grace_secs = mail_grace.as_secs(),
            "email sends still in flight; stopping them (they stay pending)"
        );
        mail.abort();
        let _ = mail.await;
    }
    let _ = tenancy_watch.await;
    // Cursors are written back before the store closes.
    let _ = events_task.await;
    store.close().await?;
    let _ = admin_stop_tx.send(true);
    let _ = admin_task.await;
    let _ = watcher.await;
    let _ = portal_watcher.await;
    upkeep.abort();
    tracing::info!("bwgate stopped");
    Ok(())
}

/// Declared partners, clusters and templates are upserted at every start:
/// the config file is their source of truth (a `config` template it no
/// longer declares is disabled).
async fn sync_tenancy(config: &Config, store: &dyn Store) -> Result<(), ServeError> {
    for p in &config.partners {
        store
            .upsert_partner(&Partner {
                id: p.id.clone(),
                name: p.name.clone(),
                admin_email: p.admin_email.clone(),
            })
            .await?;
        store
            .set_partner_admin_token(&p.id, p.admin_token_hash.as_deref())
            .await?;
    }
    for c in &config.clusters {
        store
            .upsert_cluster(&Cluster {
                id: c.id.clone(),
                partner_id: c.partner.clone(),
                name: c.name.clone(),
                xsp_url: c.xsp_url.clone(),
            })
            .await?;
    }
    for t in &config.templates {
        let mut template = template_from_config(t)?;
        if let (None, Some(plain)) = (&t.provisioning_password_hash, &t.provisioning_password) {
            // Every start hashes a plain password with a new salt; keep the
            // stored hash when it is of the same password, so nodes sharing
            // a database with one file do not rewrite it at each start (and
            // every node's verified-credential cache stays valid).
            if let Some(stored) = store.template(&t.provisioning_id).await? {
                let same = crate::domain::credentials::verify_password(
                    plain,
                    &stored.provisioning_password_hash,
                )
                .unwrap_or(false);
                if same {
                    template.provisioning_password_hash = stored.provisioning_password_hash;
                }
            }
        }
        store.upsert_template(&template).await?;
    }
    // A template the file no longer declares is disabled, not deleted (its
    // subscribers and organizations stay); one declared again is enabled.
    let declared: Vec<String> = config
        .templates
        .iter()
        .map(|t| t.provisioning_id.clone())
        .collect();
    let disabled = store
        .sync_config_templates(&declared, crate::domain::now_millis())
        .await?;
    for id in &disabled {
        tracing::warn!(
            provisioning_id = %id,
            "template removed from the configuration: disabled (it accepts no provisioning; its subscribers stay)"
        );
    }
    Ok(())
}

fn template_from_config(t: &TemplateConfig) -> Result<CustomerTemplate, ServeError> {
    let hash = match (&t.provisioning_password_hash, &t.provisioning_password) {
        (Some(hash), _) => hash.clone(),
        (None, Some(plain)) => hash_password(plain).map_err(|source| ServeError::Credentials {
            provisioning_id: t.provisioning_id.clone(),
            source,
        })?,
        // validate() rejects this; keep the error typed rather than panic.
        (None, None) => {
            return Err(ServeError::Credentials {
                provisioning_id: t.provisioning_id.clone(),
                source: CredentialError::BadHash("no password configured".into()),
            })
        }
    };
    Ok(CustomerTemplate {
        provisioning_id: t.provisioning_id.clone(),
        partner_id: t.partner.clone(),
        cluster_id: t.cluster.clone(),
        name: t.name.clone(),
        settings: t.settings.clone(),
        provisioning_username: t.provisioning_username.clone(),
        provisioning_password_hash: hash,
        source: TemplateSource::Config,
        disabled_at: None,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, configured: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(configured)
}

fn write_listen_file(
    data_dir: &Path,
    https: SocketAddr,
    admin: SocketAddr,
    portal: SocketAddr,
) -> Result<(), ServeError> {
    let path = data_dir.join(LISTEN_FILE);
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::json!({
        "https": https.to_string(),
        "admin": admin.to_string(),
        "portal": portal.to_string(),
        "pid": std::process::id(),
    });
    let io = |source| ServeError::Io {
        what: "writing",
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, body.to_string()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

fn print_banner(
    config: &Config,
    https: SocketAddr,
    admin: SocketAddr,
    portal: SocketAddr,
    demo: Option<&DemoStart>,
) {
    println!(
        "bwgate {} listening: https://{https} (portal https://{portal}, admin http://{admin})",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(start) = demo {
        let d = &start.template;
        let file = config.server.data_dir.join(demo::DEMO_FILE);
        println!(
            "demo template: provisioningId={} url={} username={}",
            d.provisioning_id, d.provisioning_url, d.username
        );
        // Secrets are printed by the start that creates them, never again:
        // logs and terminals outlive them.
        let secrets = [
            ("provisioning password", &d.password, start.new_password),
            (
                "demo partner admin token",
                &d.admin_token,
                start.new_admin_token,
            ),
            (
                "operator token (ops listener /admin/...)",
                &d.ops_token,
                start.new_ops_token,
            ),
        ];
        let mut kept = Vec::new();
        for (name, value, new) in secrets {
            if value.is_empty() {
                continue;
            }
            if new {
                println!(
                    "new {name}: {value} (shown once; kept in {})",
                    file.display()
                );
            } else {
                kept.push(name);
            }
        }
        if !kept.is_empty() {
            println!("{}: in {}", kept.join(", "), file.display());
        }
        println!("subscriber status for the demo partner: https://{portal}/partner/status");
    }
    if config.tls.cert.is_none() {
        let dir = config.tls.certs_dir.display();
        println!(
            "try: curl --cacert {dir}/ca.crt --cert {dir}/client.crt --key {dir}/client.key https://localhost:{}/",
            https.port()
        );
    }
}

/// Resolves with the name of the first SIGTERM or SIGINT.
/// SIGTERM and SIGINT, listened for from the start: installed before the
/// listen file announces readiness, so an early signal still drains instead
/// of killing the process with the default action.
struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self, ServeError> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |source| ServeError::Io {
            what: "installing signal handlers",
            path: PathBuf::new(),
            source,
        };
        Ok(ShutdownSignals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    /// Resolves with the name of the next SIGTERM or SIGINT.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// The file that keeps a node's id when `server.node_id` is not set.
pub const NODE_ID_FILE: &str = "node-id";

/// `configured`, else the id kept in `data_dir/node-id`, else a new random
/// one written there. A kept id that is not a valid node id (edited by
/// hand) is an error, not silently replaced: another node may hold leases
/// under the old one.
fn stable_node_id(data_dir: &Path, configured: Option<&str>) -> Result<String, ServeError> {
    if let Some(id) = configured {
        return Ok(id.to_string());
    }
    let path = data_dir.join(NODE_ID_FILE);
    let io = |what: &'static str| {
        let path = path.clone();
        move |source| ServeError::Io { what, path, source }
    };
    match std::fs::read_to_string(&path) {
        Ok(kept) => {
            let kept = kept.trim();
            if crate::config::is_valid_node_id(kept) {
                Ok(kept.to_string())
            } else {
                Err(io("reading")(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a node id (1-64 of A-Z a-z 0-9 . _ -); fix or delete the file",
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("node-{}", uuid::Uuid::new_v4().simple());
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, format!("{id}\n")).map_err(io("writing"))?;
            std::fs::rename(&tmp, &path).map_err(io("writing"))?;
            Ok(id)
        }
        Err(e) => Err(io("reading")(e)),
    }
}
