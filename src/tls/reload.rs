//! Certificate reload without restart: poll the files, reload at once on
//! SIGHUP, and keep serving the last good config whenever a new one fails.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::expiry::{self, CertExpiry};
use super::server::{build_from_snapshot, Resumption, Snapshot, TlsPaths};
use super::TlsError;
use crate::config::TlsConfig;

pub const RELOADS_COUNTER: &str = "bwgate_tls_reloads_total";
/// The expiry gauge is refreshed every poll, but a warning only this often.
const WARN_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Holds the live `ServerConfig`; the listener asks for [`current`](Self::current)
/// per accepted connection, so a swap affects new handshakes only.
pub struct TlsReloader {
    cfg: TlsConfig,
    paths: TlsPaths,
    current: RwLock<Arc<ServerConfig>>,
    state: Mutex<State>,
}

struct State {
    /// Fingerprint of the files behind `current`.
    loaded: u64,
    /// Fingerprint of the trust anchors behind `current`.
    trust: u64,
    /// Session cache and ticket key, kept across certificate reloads so
    /// clients keep resuming; replaced when the trust anchors change, since
    /// a resumed session is not re-verified against them.
    resumption: Resumption,
    /// Fingerprint (or error text hash) of the last failed attempt: the same
    /// broken files are not re-parsed, re-logged and re-counted every poll.
    failed: Option<u64>,
    expiry: Vec<CertExpiry>,
    last_warn: Instant,
}

impl TlsReloader {
    /// Builds the initial config; an error here should stop the server.
    pub fn new(cfg: TlsConfig, paths: TlsPaths) -> Result<Arc<Self>, TlsError> {
        let resumption = Resumption::new(&cfg)?;
        let snapshot = Snapshot::read(&cfg, &paths)?;
        let (config, expiry) = build_from_snapshot(&cfg, &snapshot, &resumption)?;
        expiry::publish(&expiry, cfg.expiry_warn_days, true);
        tracing::info!(
            cert = %paths.cert.display(),
            client_auth = ?cfg.client_auth,
            "TLS configuration loaded"
        );
        Ok(Arc::new(TlsReloader {
            current: RwLock::new(Arc::new(config)),
            state: Mutex::new(State {
                loaded: snapshot.fingerprint(),
                trust: snapshot.trust_fingerprint(),
                resumption,
                failed: None,
                expiry,
                last_warn: Instant::now(),
            }),
            cfg,
            paths,
        }))
    }

    /// The config for the next handshake (an `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A `TlsAcceptor` over [`current`](Self::current).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current())
    }

    pub fn paths(&self) -> &TlsPaths {
        &self.paths
    }

    /// Re-reads the files and swaps in a new config if their contents changed
    /// (or always with `force`). `Ok(true)`: swapped; `Ok(false)`: nothing new
    /// (unchanged since the last success, or since the last failure); `Err`:
    /// the new files were rejected and the old config keeps serving.
    ///
    /// Blocking file I/O: call from `spawn_blocking` in async code.
    pub fn reload(&self, force: bool) -> Result<bool, TlsError> {
        // One reload at a time; `current()` readers are never blocked by this.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let snapshot = match Snapshot::read(&self.cfg, &self.paths) {
            Ok(s) => s,
            Err(e) => return self.failed(&mut state, force, error_key(&e), e),
        };
        let fingerprint = snapshot.fingerprint();
        if !force && (fingerprint == state.loaded || state.failed == Some(fingerprint)) {
            return Ok(false);
        }
        let trust = snapshot.trust_fingerprint();
        let fresh_resumption = if trust != state.trust {
            match Resumption::new(&self.cfg) {
                Ok(r) => Some(r),
                Err(e) => return self.failed(&mut state, force, fingerprint, e),
            }
        } else {
            None
        };
        let resumption = fresh_resumption.as_ref().unwrap_or(&state.resumption);
        match build_from_snapshot(&self.cfg, &snapshot, resumption) {
            Ok((config, expiry)) => {
                if let Some(r) = fresh_resumption {
                    tracing::info!(
                        "trust anchors changed: TLS sessions from before will not resume"
                    );
                    state.resumption = r;
                    state.trust = trust;
                }
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
                state.loaded = fingerprint;
                state.failed = None;
                expiry::publish(&expiry, self.cfg.expiry_warn_days, true);
                state.expiry = expiry;
                state.last_warn = Instant::now();
                metrics::counter!(RELOADS_COUNTER, "result" => "ok").increment(1);
                tracing::info!(cert = %self.paths.cert.display(), forced = force, "TLS certificates reloaded");
                Ok(true)
            }
            Err(e) => self.failed(&mut state, force, fingerprint, e),
        }
    }

    fn failed(
        &self,
        state: &mut State,
        force: bool,
        key: u64,
        e: TlsError,
    ) -> Result<bool, TlsError> {
        if !force && state.failed == Some(key) {
            return Ok(false);
        }
        state.failed = Some(key);
        metrics::counter!(RELOADS_COUNTER, "result" => "error").increment(1);
        tracing::warn!(error = %e, "TLS reload failed; still serving the previous certificates");
        Err(e)
    }

    /// Re-publishes the expiry gauge (days left shrink even when no file
    /// changes) and repeats the expiry warning once a day.
    pub fn refresh_expiry(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let warn = state.last_warn.elapsed() >= WARN_EVERY;
        if warn {
            state.last_warn = Instant::now();
        }
        expiry::publish(&state.expiry, self.cfg.expiry_warn_days, warn);
    }

    /// Polls every `reload_interval_secs` and reloads at once (forced) on
    /// SIGHUP; ends when `shutdown` becomes true or its sender is dropped.
    pub fn spawn_watcher(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        let period = Duration::from_secs(this.cfg.reload_interval_secs.max(1));
        // Registered before returning, so a SIGHUP sent right after this call
        // is not lost.
        let mut hup = Hangup::new();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if *shutdown.borrow_and_update() {
                    break;
                }
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    _ = hup.recv() => {
                        tracing::info!("SIGHUP: reloading TLS certificates");
                        true
                    }
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                let me = Arc::clone(&this);
                // Errors are logged and counted inside `reload`.
                let _ = tokio::task::spawn_blocking(move || {
                    let _ = me.reload(force);
                    me.refresh_expiry();
                })
                .await;
            }
            tracing::debug!("TLS reload watcher stopped");
        })
    }
}

fn error_key(e: &TlsError) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    e.to_string().hash(&mut h);
    h.finish()
}

/// SIGHUP where there is such a thing; elsewhere a future that never fires.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let signal = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS reload by polling only");
                    None
                }
            };
            Hangup { signal }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
            // The signal stream ended; fall through to never firing again.
            self.signal = None;
        }
        std::future::pending::<()>().await
    }
}
