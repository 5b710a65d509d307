//! The license core: applies normalized commands (packages → licenses).
//! In-process by default; a remote HTTP core can implement the same trait
//! with the same command JSON. Delivery is at least once, so every
//! implementation must treat a repeated idempotency key as done.

pub mod admin;
pub mod admin_grants;
pub mod apply;
pub mod calling;
pub mod calling_admin;
pub mod devices;
pub mod remote;
pub mod subscriptions;
pub mod templates;
pub mod wire;
pub mod workspaces;

use std::sync::Arc;

use async_trait::async_trait;

use crate::commands::CommandEnvelope;
use crate::domain::template::Package;
use crate::domain::Refusal;
use crate::store::{SharedStore, StoreError};

pub use apply::{apply_run, Granted, LicensePolicy};

#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The command can never succeed (the subscriber goes to `error`
    /// with the refusal's code and reason).
    #[error("rejected: {0}")]
    Rejected(Refusal),
    /// Try again later.
    #[error("license core unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for LicenseError {
    fn from(e: StoreError) -> Self {
        LicenseError::Unavailable(e.to_string())
    }
}

#[async_trait]
pub trait LicenseCore: Send + Sync + 'static {
    async fn apply(&self, envelope: &CommandEnvelope) -> Result<Granted, LicenseError>;
    fn name(&self) -> &'static str;

    /// Applies consecutive commands of one enterprise, in order, and
    /// returns one result per command attempted: it stops after the first
    /// `Unavailable` (the later ones must wait for it). A core that can
    /// take a run at once overrides this; the default applies one by one.
    async fn apply_in_order(
        &self,
        envelopes: &[CommandEnvelope],
    ) -> Vec<Result<Granted, LicenseError>> {
        apply_each(self, envelopes).await
    }
}

/// One `apply` per command, stopping after the first `Unavailable`.
pub async fn apply_each<C: LicenseCore + ?Sized>(
    core: &C,
    envelopes: &[CommandEnvelope],
) -> Vec<Result<Granted, LicenseError>> {
    let mut out = Vec::with_capacity(envelopes.len());
    for env in envelopes {
        let result = core.apply(env).await;
        let stop = matches!(result, Err(LicenseError::Unavailable(_)));
        out.push(result);
        if stop {
            break;
        }
    }
    out
}

/// Licenses a package grants (docs/licenses.md has the table); they are
/// taken from the organization's subscriptions (`apply.rs`).
pub fn package_licenses(package: Package) -> Vec<String> {
    let names: &[&str] = match package {
        Package::Softphone => &["webex-calling-softphone", "webex-messaging"],
        Package::Basic => &["webex-calling-basic", "webex-messaging"],
        Package::Standard => &[
            "webex-calling-standard",
            "webex-messaging",
            "webex-meetings-basic",
        ],
        Package::Premium => &[
            "webex-calling-premium",
            "webex-messaging",
            "webex-meetings-premium",
        ],
    };
    names.iter().map(|s| s.to_string()).collect()
}

/// The in-process core: runs the license rules (`apply.rs`) in the
/// store's units of work.
pub struct LocalLicenseCore {
    store: SharedStore,
    policy: LicensePolicy,
}

impl LocalLicenseCore {
    pub fn new(store: SharedStore, policy: LicensePolicy) -> Arc<Self> {
        Arc::new(LocalLicenseCore { store, policy })
    }
}

#[async_trait]
impl LicenseCore for LocalLicenseCore {
    async fn apply(&self, env: &CommandEnvelope) -> Result<Granted, LicenseError> {
        let mut results = self.apply_in_order(std::slice::from_ref(env)).await;
        results
            .pop()
            .unwrap_or_else(|| Err(LicenseError::Unavailable("no answer".into())))
    }

    fn name(&self) -> &'static str {
        "local"
    }

    /// The whole run in one unit of work; a command the store fails on is
    /// undone alone and the run stops there (the rest waits for it).
    async fn apply_in_order(
        &self,
        envelopes: &[CommandEnvelope],
    ) -> Vec<Result<Granted, LicenseError>> {
        let run = envelopes.to_vec();
        let policy = self.policy;
        let done = crate::store::transact(self.store.as_ref(), move |tx| {
            apply_run(tx, &run, policy, crate::domain::now_millis())
        })
        .await;
        match done {
            Ok(results) => results
                .into_iter()
                .map(|r| match r {
                    Ok(Ok(granted)) => Ok(granted),
                    Ok(Err(refusal)) => Err(LicenseError::Rejected(refusal)),
                    Err(e) => Err(LicenseError::from(e)),
                })
                .collect(),
            Err(e) => vec![Err(LicenseError::from(e))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_packages_include_messaging_and_grant_no_duplicates() {
        for p in Package::ALL {
            let l = package_licenses(p);
            assert!(l.contains(&"webex-messaging".to_string()));
            let mut dedup = l.clone();
            dedup.sort();
            dedup.dedup();
            assert_eq!(dedup.len(), l.len(), "{p:?}");
        }
        assert!(package_licenses(Package::Premium).contains(&"webex-meetings-premium".to_string()));
        assert!(!package_licenses(Package::Basic)
            .iter()
            .any(|l| l.contains("meetings")));
    }
}
