//! Partners, clusters and templates another node changed. Each node keeps
//! templates (and the partner pages keep admin token hashes) in memory;
//! on a shared database another node may rewrite them (a node started
//! with a new configuration file). Every `store.tenancy_check_secs` this
//! node reads the store's tenancy revision, one small query, and when it
//! moved, reloads its templates and bumps the generation that the token
//! cache compares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Provisioning;
use crate::store::SharedStore;

/// How many times this node saw the tenancy change: caches built under
/// another generation are stale.
#[derive(Debug, Default)]
pub struct TenancyGeneration(AtomicU64);

impl TenancyGeneration {
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Compares the store's tenancy revision every `every` until `stop`.
pub fn spawn_watch(
    store: SharedStore,
    provisioning: Arc<Provisioning>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = store.tenancy_revision().await.ok();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            match store.tenancy_revision().await {
                Ok(now) if Some(now) != seen => {
                    if let Err(e) = provisioning.reload_tenancy().await {
                        tracing::warn!(error = %e, "reloading templates failed; next check retries");
                        continue;
                    }
                    tracing::info!(
                        revision = now,
                        "partners or templates changed; caches reloaded"
                    );
                    seen = Some(now);
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "tenancy revision unavailable"),
            }
        }
    })
}

impl Provisioning {
    /// Replaces the cached templates with the store's (one dropped from the
    /// store goes too) and marks every tenancy cache stale.
    pub async fn reload_tenancy(&self) -> Result<(), crate::store::StoreError> {
        let fresh = self.store.templates().await?;
        let ids: std::collections::HashSet<&str> =
            fresh.iter().map(|t| t.provisioning_id.as_str()).collect();
        self.templates.retain(|id, _| ids.contains(id.as_str()));
        for t in fresh {
            self.templates
                .insert(t.provisioning_id.clone(), Arc::new(t));
        }
        self.tenancy.bump();
        Ok(())
    }

    /// The generation tenancy caches compare (see [`TenancyGeneration`]).
    pub fn tenancy_generation(&self) -> Arc<TenancyGeneration> {
        Arc::clone(&self.tenancy)
    }
}
