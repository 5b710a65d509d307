//! The core's unit of work: a run of one enterprise's commands applied in
//! order, in one transaction. For each command that moves licenses: a key
//! seen before gets its first answer again; otherwise the subscriber's
//! licenses become what its package grants, taken from its organization's
//! subscriptions (oldest first, all or nothing, see `subscriptions.rs`),
//! each grant and revocation written to the ledger with its time and
//! subscription.

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::{Command, CommandEnvelope};
use crate::domain::license_ledger::LicenseEvent;
use crate::domain::template::Package;
use crate::domain::{ErrorCode, Refusal};
use crate::store::license_rows::KeyOutcome;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::holding::{GrantSource, Holding, StoredRefusal};
use super::package_licenses;
use super::subscriptions::{Held, Pool};

/// How the core meters an organization's licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LicensePolicy {
    /// An organization without any subscription gets no license (every
    /// subscriber is short); when false, it is unmetered: licenses are
    /// granted without counting until its first subscription exists.
    pub require_subscription: bool,
}

/// What a command asks of the ledger.
struct Change<'a> {
    subscriber_id: &'a str,
    org_id: &'a str,
    /// The BroadWorks user id, when the command names it.
    user_id: Option<&'a str>,
    /// `None`: remove every license.
    package: Option<Package>,
}

fn change_of(command: &Command) -> Option<Change<'_>> {
    match command {
        Command::ProvisionSubscriber {
            subscriber_id,
            org_id,
            user_id,
            package,
            ..
        } => Some(Change {
            subscriber_id,
            org_id,
            user_id: Some(user_id.as_str()),
            package: Some(*package),
        }),
        Command::ChangePackage {
            subscriber_id,
            org_id,
            package,
            ..
        } => Some(Change {
            subscriber_id,
            org_id,
            user_id: None,
            package: Some(*package),
        }),
        Command::RemoveSubscriber {
            subscriber_id,
            org_id,
            ..
        } => Some(Change {
            subscriber_id,
            org_id,
            user_id: None,
            package: None,
        }),
        Command::EnsureOrganization { .. }
        | Command::AttachOrganization { .. }
        | Command::DetachOrganization { .. }
        | Command::DiscardPendingSubscriber { .. }
        | Command::UpdateSubscriber { .. }
        | Command::IssueActivationCode { .. }
        | Command::MoveAccount { .. }
        | Command::SetOrganizationAdmin { .. } => None,
    }
}

/// One command's answer: applied, or refused for good.
pub type Applied = Result<(), Refusal>;

/// Applies `envelopes` in order. A command that fails on a store error is
/// undone alone and ends the run (`Err` as its entry's place: the later
/// ones wait for it); the ones before it stand.
pub fn apply_run(
    tx: &dyn Tx,
    envelopes: &[CommandEnvelope],
    policy: LicensePolicy,
    now: i64,
) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
    let mut pools = Pools::default();
    let mut out = Vec::with_capacity(envelopes.len());
    for env in envelopes {
        let Some(change) = change_of(&env.command) else {
            out.push(Ok(Ok(())));
            continue;
        };
        let part = tx.begin_part()?;
        match apply_one(tx, env, &change, policy, &mut pools, now) {
            Ok(answer) => {
                tx.keep_part(part)?;
                out.push(Ok(answer));
            }
            Err(e) => {
                if tx.aborted() {
                    return Err(e);
                }
                tx.undo_part(part)?;
                out.push(Err(e));
                break;
            }
        }
    }
    Ok(out)
}

/// The organizations' pools read so far in this run (assignments made
/// earlier in the run are in them).
#[derive(Default)]
struct Pools(BTreeMap<String, Pool>);

impl Pools {
    fn of(&mut self, tx: &dyn Tx, org_id: &str) -> Result<&mut Pool, StoreError> {
        if !self.0.contains_key(org_id) {
            let pool =
                Pool::with_usage(tx.org_subscriptions(org_id)?, tx.org_license_usage(org_id)?);
            self.0.insert(org_id.to_string(), pool);
        }
        self.0
            .get_mut(org_id)
            .ok_or_else(|| StoreError::Database("license pool vanished".into()))
    }
}

fn apply_one(
    tx: &dyn Tx,
    env: &CommandEnvelope,
    change: &Change<'_>,
    policy: LicensePolicy,
    pools: &mut Pools,
    now: i64,
) -> Result<Applied, StoreError> {
    let key = env.idempotency_key.as_str();
    match tx.license_outcome(key)? {
        Some(KeyOutcome::Applied) => return Ok(Ok(())),
        Some(KeyOutcome::Refused(r)) => return Ok(Err(refusal_of(&r))),
        None => {}
    }
    let held = tx.holdings(change.subscriber_id)?;
    let wanted: BTreeSet<String> = change
        .package
        .map(|p| package_licenses(p).into_iter().collect())
        .unwrap_or_default();
    let pool = pools.of(tx, change.org_id)?;
    let next = if pool.is_empty() {
        if policy.require_subscription && !wanted.is_empty() {
            let refused = StoredRefusal {
                code: ErrorCode::LicenseShortage.code(),
                detail: format!(
                    "organization '{}' has no license subscription",
                    change.org_id
                ),
            };
            tx.record_license_outcome(key, &KeyOutcome::Refused(refused.clone()), now)?;
            return Ok(Err(refusal_of(&refused)));
        }
        // Unmetered: what it holds stays as it is, the rest is granted
        // without a subscription.
        let mut next: BTreeMap<String, Option<String>> = held
            .iter()
            .filter(|h| wanted.contains(&h.license))
            .map(|h| (h.license.clone(), h.subscription_id.clone()))
            .collect();
        for license in &wanted {
            next.entry(license.clone()).or_insert(None);
        }
        next
    } else {
        // Metered: a license held without a subscription (granted while
        // the organization had none) is taken from one now.
        let counted: Vec<Held> = held
            .iter()
            .filter_map(|h| {
                h.subscription_id.as_ref().map(|s| Held {
                    license: h.license.clone(),
                    subscription_id: s.clone(),
                })
            })
            .collect();
        match pool.assign(&counted, &wanted) {
            Ok(assigned) => assigned
                .into_iter()
                .map(|h| (h.license, Some(h.subscription_id)))
                .collect(),
            Err(shortage) => {
                let refused = StoredRefusal {
                    code: ErrorCode::LicenseShortage.code(),
                    detail: shortage.to_string(),
                };
                tx.record_license_outcome(key, &KeyOutcome::Refused(refused.clone()), now)?;
                return Ok(Err(refusal_of(&refused)));
            }
        }
    };
    write_difference(tx, env, change, &held, &next, now)?;
    tx.record_license_outcome(key, &KeyOutcome::Applied, now)?;
    Ok(Ok(()))
}

/// Revokes what `held` has that `next` does not (by license and
/// subscription), grants the rest, and writes both to the ledger.
fn write_difference(
    tx: &dyn Tx,
    env: &CommandEnvelope,
    change: &Change<'_>,
    held: &[Holding],
    next: &BTreeMap<String, Option<String>>,
    now: i64,
) -> Result<(), StoreError> {
    let stays = |h: &Holding| next.get(&h.license) == Some(&h.subscription_id);
    let revoked: Vec<&Holding> = held.iter().filter(|h| !stays(h)).collect();
    let source_ref = change.package.map(Package::as_str).unwrap_or_default();
    let granted: Vec<Holding> = next
        .iter()
        .filter(|(license, subscription)| {
            !held
                .iter()
                .any(|h| &h.license == *license && &h.subscription_id == *subscription)
        })
        .map(|(license, subscription)| Holding {
            license: license.clone(),
            subscription_id: subscription.clone(),
            source: GrantSource::Package,
            source_ref: source_ref.to_string(),
            command_key: env.idempotency_key.clone(),
            granted_at: now,
        })
        .collect();
    if revoked.is_empty() && granted.is_empty() {
        return Ok(());
    }
    let entry = |h: &Holding, action: &str| LicenseEvent {
        id: 0,
        idempotency_key: env.idempotency_key.clone(),
        subscriber_id: change.subscriber_id.to_string(),
        org_id: Some(change.org_id.to_string()),
        license: h.license.clone(),
        action: action.to_string(),
        subscription_id: h.subscription_id.clone(),
        source: h.source.as_str().to_string(),
        source_ref: h.source_ref.clone(),
        at: now,
    };
    let ledger: Vec<LicenseEvent> = revoked
        .iter()
        .map(|h| entry(h, "revoke"))
        .chain(granted.iter().map(|h| entry(h, "grant")))
        .collect();
    let revoked: Vec<String> = revoked.iter().map(|h| h.license.clone()).collect();
    tx.change_holdings(
        change.subscriber_id,
        change.org_id,
        change.user_id,
        &revoked,
        &granted,
        &ledger,
    )
}

fn refusal_of(r: &StoredRefusal) -> Refusal {
    Refusal::new(
        ErrorCode::from_code(r.code).unwrap_or(ErrorCode::LicenseShortage),
        r.detail.clone(),
    )
}
