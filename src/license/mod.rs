//! The license core: applies normalized commands (packages → licenses).
//! In-process by default; a remote HTTP core can implement the same trait
//! with the same command JSON. Delivery is at least once, so every
//! implementation must treat a repeated idempotency key as done.

pub mod subscriptions;
pub mod templates;

use std::sync::Arc;

use async_trait::async_trait;

use crate::commands::{Command, CommandEnvelope};
use crate::domain::template::Package;
use crate::domain::Refusal;
use crate::store::{LicenseChange, SharedStore, StoreError};

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
    async fn apply(&self, envelope: &CommandEnvelope) -> Result<(), LicenseError>;
    fn name(&self) -> &'static str;

    /// Applies consecutive commands of one enterprise, in order, and
    /// returns one result per command attempted: it stops after the first
    /// `Unavailable` (the later ones must wait for it). A core that can
    /// take a run at once overrides this; the default applies one by one.
    async fn apply_in_order(&self, envelopes: &[CommandEnvelope]) -> Vec<Result<(), LicenseError>> {
        apply_each(self, envelopes).await
    }
}

/// One `apply` per command, stopping after the first `Unavailable`.
pub async fn apply_each<C: LicenseCore + ?Sized>(
    core: &C,
    envelopes: &[CommandEnvelope],
) -> Vec<Result<(), LicenseError>> {
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

/// Licenses a package grants. The full rules (subscriptions consumed
/// oldest first, auto-license templates, Webex Calling locations and
/// numbers) come with the license-core issue.
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

/// The in-process core: keeps which licenses each subscriber holds in the
/// store's license ledger, once per idempotency key.
pub struct LocalLicenseCore {
    store: SharedStore,
}

impl LocalLicenseCore {
    pub fn new(store: SharedStore) -> Arc<Self> {
        Arc::new(LocalLicenseCore { store })
    }
}

/// The ledger change a command asks for (`None`: it moves no license).
fn license_change(env: &CommandEnvelope) -> Option<LicenseChange> {
    let (subscriber_id, licenses) = match &env.command {
        Command::ProvisionSubscriber {
            subscriber_id,
            package,
            ..
        }
        | Command::ChangePackage {
            subscriber_id,
            package,
            ..
        } => (subscriber_id, package_licenses(*package)),
        Command::RemoveSubscriber { subscriber_id, .. } => (subscriber_id, Vec::new()),
        Command::EnsureOrganization { .. }
        | Command::AttachOrganization { .. }
        | Command::DetachOrganization { .. }
        | Command::DiscardPendingSubscriber { .. }
        | Command::UpdateSubscriber { .. }
        | Command::IssueActivationCode { .. }
        | Command::MoveAccount { .. }
        | Command::SetOrganizationAdmin { .. } => return None,
    };
    Some(LicenseChange {
        idempotency_key: env.idempotency_key.clone(),
        subscriber_id: subscriber_id.clone(),
        licenses,
    })
}

#[async_trait]
impl LicenseCore for LocalLicenseCore {
    async fn apply(&self, env: &CommandEnvelope) -> Result<(), LicenseError> {
        if let Some(change) = license_change(env) {
            self.store
                .apply_license_changes(vec![change], crate::domain::now_millis())
                .await?;
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "local"
    }

    /// The whole run in one ledger transaction; if that fails, one by one,
    /// so that one bad command cannot hold back the others.
    async fn apply_in_order(&self, envelopes: &[CommandEnvelope]) -> Vec<Result<(), LicenseError>> {
        let changes: Vec<LicenseChange> = envelopes.iter().filter_map(license_change).collect();
        let batch = if changes.is_empty() {
            Ok(())
        } else {
            self.store
                .apply_license_changes(changes, crate::domain::now_millis())
                .await
        };
        match batch {
            Ok(()) => envelopes.iter().map(|_| Ok(())).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "license batch failed; applying one by one");
                apply_each(self, envelopes).await
            }
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
