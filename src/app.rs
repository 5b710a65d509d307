//! Process-wide state shared by every face: configuration, the use cases
//! (writes through `provisioning`, reads through `queries`), and
//! lifecycle flags. Faces receive `Arc<App>` (the HTTPS faces inside
//! `http::State`, which adds the transport's own guards).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::notify::Mailer;
use crate::provision::{Provisioning, Queries};
use crate::store::SharedStore;

pub struct App {
    pub config: Arc<Config>,
    /// What the faces read (they never reach the store itself).
    pub queries: Queries,
    pub metrics: PrometheusHandle,
    pub provisioning: Arc<Provisioning>,
    /// Subscriptions, holdings and the license ledger (operator and
    /// partner admin APIs).
    pub licenses: crate::license::admin::LicenseAdmin,
    /// Outgoing email: `mailer.send(msg)` enqueues durably and wakes the worker.
    pub mailer: Arc<Mailer>,
    pub started_at: Instant,
    /// Fair, bounded admission to argon2 verification for every tenant.
    pub verify_queue: crate::provision::verify_queue::VerifyQueue,
    /// Checks BroadWorks credentials at a cluster's XSP (`None`: its TLS
    /// trust could not be set up; sign-in is then unavailable).
    pub xsp: Option<crate::xsp::XspClient>,
    /// Blocking threads for parsing large XML documents
    /// (`limits.max_parallel_xml_parses`).
    pub xml_parses: crate::flowthrough::ParsePool,
    draining: AtomicBool,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        store: SharedStore,
        metrics: PrometheusHandle,
        provisioning: Arc<Provisioning>,
        mailer: Arc<Mailer>,
    ) -> Arc<App> {
        let verify_queue = crate::provision::verify_queue::VerifyQueue::new(
            config.limits.auth_verify_concurrency,
            config.limits.auth_verify_queue_per_tenant,
        );
        let xml_parses = crate::flowthrough::ParsePool::new(&config.limits);
        let bw = &config.broadworks;
        let xsp = match crate::tls::client::service_client_config(bw.xsp_ca_file.as_deref()) {
            Ok(tls) => Some(crate::xsp::XspClient::new(
                tls,
                std::time::Duration::from_secs(bw.xsp_timeout_secs),
                xml_parses.clone(),
            )),
            Err(e) => {
                tracing::error!(error = %e, "XSP client unavailable: BroadWorks sign-in is off");
                None
            }
        };
        let place = crate::license::admin::Place::from_config(&config.license);
        let remote = matches!(place, crate::license::admin::Place::Remote(_));
        let mut licenses = crate::license::admin::LicenseAdmin::new(
            store.clone(),
            crate::license::LicensePolicy::from_config(&config.license),
            place,
        );
        if remote {
            // Its own connection: admin requests never wait behind runs.
            match crate::license::remote::RemoteLicenseCore::from_config(
                &config.license.remote,
                &config.tls.certs_dir,
            ) {
                Ok(core) => licenses = licenses.with_remote_core(core),
                Err(e) => {
                    tracing::error!(error = %e, "remote license core unreachable for admin requests");
                }
            }
        }
        Arc::new(App {
            config,
            verify_queue,
            xsp,
            xml_parses,
            licenses,
            queries: Queries::following(store, provisioning.tenancy_generation()),
            metrics,
            provisioning,
            mailer,
            started_at: Instant::now(),
            draining: AtomicBool::new(false),
        })
    }

    /// Marks the node as leaving: /readyz fails so load balancers move away.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
