//! The license core: applies normalized commands (packages → licenses).
//! In-process by default; a remote HTTP core can implement the same trait
//! with the same command JSON. Delivery is at least once, so every
//! implementation must treat a repeated idempotency key as done.

use std::sync::Arc;

use async_trait::async_trait;

use crate::commands::{Command, CommandEnvelope};
use crate::domain::template::Package;
use crate::domain::ErrorCode;
use crate::store::{SharedStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The command can never succeed (the subscriber goes to `error`).
    #[error("rejected ({code:?}): {description}")]
    Rejected {
        code: ErrorCode,
        description: String,
    },
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

#[async_trait]
impl LicenseCore for LocalLicenseCore {
    async fn apply(&self, env: &CommandEnvelope) -> Result<(), LicenseError> {
        let now = crate::provision::now_millis();
        match &env.command {
            Command::ProvisionSubscriber {
                subscriber_id,
                package,
                ..
            }
            | Command::ChangePackage {
                subscriber_id,
                package,
                ..
            } => {
                self.store
                    .apply_licenses(
                        &env.idempotency_key,
                        subscriber_id,
                        &package_licenses(*package),
                        now,
                    )
                    .await?;
            }
            Command::RemoveSubscriber { subscriber_id, .. } => {
                self.store
                    .apply_licenses(&env.idempotency_key, subscriber_id, &[], now)
                    .await?;
            }
            // Attaching or detaching an organization grants or revokes no
            // license (a detach's RemoveSubscriber commands revoke).
            Command::EnsureOrganization { .. }
            | Command::AttachOrganization { .. }
            | Command::DetachOrganization { .. }
            // A pending user never held a license.
            | Command::DiscardPendingSubscriber { .. }
            | Command::UpdateSubscriber { .. }
            | Command::IssueActivationCode { .. } => {}
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "local"
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
