//! The core's unit of work: a run of one enterprise's commands applied in
//! order, in one transaction. For each command that moves licenses: a key
//! seen before gets its first answer again; otherwise the subscriber's
//! licenses become what its package grants, taken from its organization's
//! subscriptions (oldest first, all or nothing, see `subscriptions.rs`),
//! each grant and revocation written to the ledger with its time and
//! subscription.

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::{Command, CommandEnvelope};
use crate::domain::ids::UserId;
use crate::domain::license_ledger::LicenseEvent;
use crate::domain::phone::DirectoryNumber;
use crate::domain::template::Package;
use crate::domain::{ErrorCode, Refusal};
use crate::store::license_rows::KeyOutcome;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::calling::{self, is_calling, Decision};
use super::devices::{self, DeviceRequest};
use super::package_licenses;
use super::subscriptions::{Held, Pool};
use super::templates::OrgTemplates;
use crate::domain::device::IssuedDevice;
use crate::domain::license::{GrantSource, Holding, StoredRefusal};
use crate::store::license_rows::HolderIds;

/// How the core meters an organization's licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LicensePolicy {
    /// An organization without any subscription gets no license (every
    /// subscriber is short); when false, it is unmetered: licenses are
    /// granted without counting until its first subscription exists.
    pub require_subscription: bool,
}

impl LicensePolicy {
    pub fn from_config(c: &crate::config::LicenseConfig) -> LicensePolicy {
        LicensePolicy {
            require_subscription: c.require_subscription,
        }
    }
}

/// What a command asks of the ledger.
struct Change<'a> {
    /// Whose licenses (user id and group when the command names them).
    who: Who<'a>,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// A new user: its package, its templates, Calling decided.
    Provision {
        package: Package,
        number: Option<&'a DirectoryNumber>,
    },
    /// Another package; Calling decided for a user it was withheld from.
    /// `number`: `None` in a command written before it carried one.
    Package {
        package: Package,
        number: Option<Option<&'a DirectoryNumber>>,
    },
    /// A profile change: a group move (its group templates), and a user
    /// Calling was withheld from decided again (with its new number); an
    /// entitled user keeps Calling as it is.
    Update {
        number: Option<&'a DirectoryNumber>,
        group_id: Option<&'a str>,
    },
    /// Every license removed, the number freed.
    Remove,
    /// A device activation code (licenses unchanged).
    Device(DeviceRequest<'a>),
    /// A workspace as it is now (provisioned or changed): the workspace
    /// license only (`super::workspaces`), under its current user id.
    Workspace,
}

fn change_of(command: &Command) -> Option<Change<'_>> {
    match command {
        Command::ProvisionSubscriber {
            subscriber_id,
            org_id,
            user_id,
            package,
            group_id,
            phone_number,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id,
                org_id,
                user_id: Some(user_id.as_str()),
                group_id: group_id.as_deref(),
            },
            kind: Kind::Provision {
                package: *package,
                number: phone_number.as_ref(),
            },
        }),
        Command::ChangePackage {
            subscriber_id,
            org_id,
            package,
            user_id,
            group_id,
            phone_number,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id,
                org_id,
                user_id: user_id.as_ref().map(UserId::as_str),
                group_id: group_id.as_deref(),
            },
            kind: Kind::Package {
                package: *package,
                number: phone_number.as_ref().map(Option::as_ref),
            },
        }),
        Command::UpdateSubscriber {
            subscriber_id,
            org_id,
            phone_number,
            group_id,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id,
                org_id,
                user_id: None,
                group_id: group_id.as_deref(),
            },
            kind: Kind::Update {
                number: phone_number.as_ref(),
                group_id: group_id.as_deref(),
            },
        }),
        Command::RemoveSubscriber {
            subscriber_id,
            org_id,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id,
                org_id,
                user_id: None,
                group_id: None,
            },
            kind: Kind::Remove,
        }),
        Command::IssueActivationCode {
            subscriber_id,
            org_id,
            user_id,
            device_type,
            mac_address,
        } => Some(Change {
            who: Who {
                subscriber_id,
                // A subscriber without an organization holds nothing.
                org_id: org_id.as_deref().unwrap_or(""),
                user_id: Some(user_id.as_str()),
                group_id: None,
            },
            kind: Kind::Device(DeviceRequest {
                device_type: device_type.as_deref(),
                mac_address: mac_address.as_deref(),
            }),
        }),
        Command::ProvisionWorkspace {
            workspace_id,
            org_id,
            user_id,
            ..
        }
        | Command::UpdateWorkspace {
            workspace_id,
            org_id,
            user_id,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id: workspace_id,
                org_id,
                user_id: Some(user_id.as_str()),
                group_id: None,
            },
            kind: Kind::Workspace,
        }),
        Command::RemoveWorkspace {
            workspace_id,
            org_id,
            ..
        } => Some(Change {
            who: Who {
                subscriber_id: workspace_id,
                org_id,
                user_id: None,
                group_id: None,
            },
            kind: Kind::Remove,
        }),
        Command::EnsureOrganization { .. }
        | Command::AttachOrganization { .. }
        | Command::DetachOrganization { .. }
        | Command::DiscardPendingSubscriber { .. }
        | Command::MoveAccount { .. }
        | Command::SetOrganizationAdmin { .. } => None,
    }
}

/// A command the core applied, and what it could not give.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Granted {
    /// Webex Calling withheld (code 9043, with the reason).
    pub notice: Option<Refusal>,
    /// A device activation allowed: the gateway emails its code.
    pub device: Option<IssuedDevice>,
}

/// One command's answer: applied, or refused for good.
pub type Applied = Result<Granted, Refusal>;

/// Applies `envelopes` in order. A command that fails on a store error is
/// undone alone and ends the run (`Err` as its entry's place: the later
/// ones wait for it); the ones before it stand.
pub fn apply_run(
    tx: &dyn Tx,
    envelopes: &[CommandEnvelope],
    policy: LicensePolicy,
    now: i64,
) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
    let mut orgs = Orgs::new(now);
    let mut out = Vec::with_capacity(envelopes.len());
    for env in envelopes {
        let Some(change) = change_of(&env.command) else {
            out.push(Ok(Ok(Granted::default())));
            continue;
        };
        let part = tx.begin_part()?;
        match apply_one(tx, env, &change, policy, &mut orgs, now) {
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

/// What the run has read of each organization: its pool (with the
/// assignments made earlier in the run; subscriptions that have started
/// by `now` only) and its auto-license templates.
pub(super) struct Orgs {
    now: i64,
    read: BTreeMap<String, OrgState>,
}

pub(super) struct OrgState {
    pub pool: Pool,
    pub templates: OrgTemplates,
    /// Whether it keeps a Calling inventory here (read when first needed).
    calling_managed: Option<bool>,
}

impl OrgState {
    fn calling_managed(&mut self, tx: &dyn Tx, org_id: &str) -> Result<bool, StoreError> {
        if let Some(managed) = self.calling_managed {
            return Ok(managed);
        }
        let managed = tx.calling_managed(org_id)?;
        self.calling_managed = Some(managed);
        Ok(managed)
    }
}

impl Orgs {
    pub(super) fn new(now: i64) -> Orgs {
        Orgs {
            now,
            read: BTreeMap::new(),
        }
    }

    pub(super) fn of(&mut self, tx: &dyn Tx, org_id: &str) -> Result<&mut OrgState, StoreError> {
        if !self.read.contains_key(org_id) {
            let subscriptions = tx.org_subscriptions(org_id)?;
            // Nothing to count without a subscription (unmetered).
            let usage = if subscriptions.is_empty() {
                Vec::new()
            } else {
                tx.org_license_usage(org_id)?
            };
            let pool = Pool::with_usage(subscriptions, usage).started_by(self.now);
            let templates = OrgTemplates::from_rows(tx.license_templates(org_id)?);
            self.read.insert(
                org_id.to_string(),
                OrgState {
                    pool,
                    templates,
                    calling_managed: None,
                },
            );
        }
        self.read
            .get_mut(org_id)
            .ok_or_else(|| StoreError::Database("license organization vanished".into()))
    }
}

/// The licenses a subscriber should hold, each with why (for a new grant).
pub(super) type Wanted = BTreeMap<String, (GrantSource, String)>;

/// Who the licenses are for.
pub(super) struct Who<'a> {
    pub subscriber_id: &'a str,
    pub org_id: &'a str,
    pub user_id: Option<&'a str>,
    pub group_id: Option<&'a str>,
}

impl<'a> Who<'a> {
    /// A subscriber of `org_id` as the organization's holders list it.
    pub(super) fn holder(
        org_id: &'a str,
        h: &'a crate::store::license_rows::HolderState,
    ) -> Who<'a> {
        Who {
            subscriber_id: &h.subscriber_id,
            org_id,
            user_id: Some(&h.user_id),
            group_id: h.group_id.as_deref(),
        }
    }
}

fn apply_one(
    tx: &dyn Tx,
    env: &CommandEnvelope,
    change: &Change<'_>,
    policy: LicensePolicy,
    orgs: &mut Orgs,
    now: i64,
) -> Result<Applied, StoreError> {
    let key = env.idempotency_key.as_str();
    match tx.license_outcome(key)? {
        Some(KeyOutcome::Applied { notice }) => {
            let device = match change.kind {
                Kind::Device(_) => tx.device_activation(key)?.as_ref().map(devices::issued),
                _ => None,
            };
            return Ok(Ok(Granted {
                notice: notice.as_ref().map(refusal_of),
                device,
            }));
        }
        Some(KeyOutcome::Refused(r)) => return Ok(Err(refusal_of(&r))),
        None => {}
    }
    let who = &change.who;
    let mut held = tx.holdings(who.subscriber_id)?;
    if let Kind::Update {
        group_id: Some(to), ..
    } = change.kind
    {
        if !held.is_empty() && group_move(tx, orgs, policy, who, &held, to, key, now)? {
            held = tx.holdings(who.subscriber_id)?;
        }
    }
    let holds_calling = held.iter().any(|h| is_calling(&h.license));
    let (package, provision, number) = match change.kind {
        Kind::Remove => return remove(tx, orgs, policy, who, &held, key, now),
        Kind::Device(ref request) => return device(tx, who, &held, request, key, now),
        // The core answers for the workspace's latest state: without its
        // license (a change that overtook a refused provisioning) it asks
        // for one; with it, the license follows the user id.
        Kind::Workspace if held.is_empty() => {
            let org = orgs.of(tx, who.org_id)?;
            return super::workspaces::provision(tx, &mut org.pool, policy, who, &held, key, now);
        }
        Kind::Workspace => {
            if let Some(user_id) = who.user_id {
                tx.set_holder_user(who.subscriber_id, user_id)?;
            }
            return answer(tx, key, Granted::default(), now);
        }
        Kind::Update { number, .. } => {
            // Only a user Calling was withheld from has anything to decide.
            let package = held
                .iter()
                .find(|h| h.source == GrantSource::Package)
                .and_then(|h| Package::parse(&h.source_ref));
            match package {
                Some(package)
                    if !holds_calling && tx.calling_withheld(who.subscriber_id)?.is_some() =>
                {
                    (package, false, Some(number))
                }
                _ => {
                    // Nothing (more) to decide; kept so a redelivery
                    // answers the same without deciding again.
                    return answer(tx, key, Granted::default(), now);
                }
            }
        }
        Kind::Provision { package, number } => (package, true, Some(number)),
        Kind::Package { package, number } => (package, false, number),
    };
    let org = orgs.of(tx, who.org_id)?;
    let mut wanted = wanted_licenses(package, provision, &held, who, org);
    let wants_calling = wanted.keys().any(|l| is_calling(l));
    // A withheld user holds its other licenses (a new one holds none): no
    // read for a first provisioning.
    let withheld_before = if wants_calling && !holds_calling && !held.is_empty() {
        tx.calling_withheld(who.subscriber_id)?
    } else {
        None
    };
    // A package change written before commands carried the number: the
    // one BroadWorks last sent. (Another command's `None` is no number.)
    let remembered = withheld_before
        .as_ref()
        .and_then(|w| w.directory_number.as_deref())
        .and_then(|n| DirectoryNumber::parse(n).ok());
    let number = match (&change.kind, number) {
        (Kind::Package { number: None, .. }, _) => remembered.as_ref(),
        (_, Some(sent)) => sent,
        (_, None) => None,
    };
    let decision = if wants_calling && !holds_calling {
        let managed = org.calling_managed(tx, who.org_id)?;
        calling::decide(tx, managed, who, number)?
    } else {
        Decision::Unchanged
    };
    if let Decision::Withhold { .. } = decision {
        wanted.retain(|license, _| !is_calling(license));
    }
    match settle(tx, &mut org.pool, policy, who, &held, &wanted, key, now)? {
        Ok(_) => {
            if holds_calling && !wanted.keys().any(|l| is_calling(l)) {
                calling::forget(tx, who.subscriber_id)?;
            }
            let notice =
                calling::record(tx, who, &decision, withheld_before.as_ref(), number, now)?;
            answer(
                tx,
                key,
                Granted {
                    notice,
                    device: None,
                },
                now,
            )
        }
        // A profile change is never refused: without licenses for Calling
        // the user stays as it was, withheld, with the shortage as why.
        Err(detail) if matches!(change.kind, Kind::Update { .. }) => {
            let withhold = Decision::Withhold { reason: detail };
            let notice =
                calling::record(tx, who, &withhold, withheld_before.as_ref(), number, now)?;
            answer(
                tx,
                key,
                Granted {
                    notice,
                    device: None,
                },
                now,
            )
        }
        Err(detail) => refuse(tx, key, ErrorCode::LicenseShortage, detail, now),
    }
}

/// The licenses a subscriber of `package` should hold: the package's,
/// what templates and admins gave it before, and for a new user its
/// templates' (best effort).
fn wanted_licenses(
    package: Package,
    provision: bool,
    held: &[Holding],
    who: &Who<'_>,
    org: &OrgState,
) -> Wanted {
    let mut wanted: Wanted = package_licenses(package)
        .into_iter()
        .map(|l| (l, (GrantSource::Package, package.as_str().to_string())))
        .collect();
    // What templates and admins granted outlives a package change.
    for h in held.iter().filter(|h| h.source != GrantSource::Package) {
        wanted
            .entry(h.license.clone())
            .or_insert((h.source, h.source_ref.clone()));
    }
    // A new user gets its templates' licenses, best effort: one its
    // subscriptions lack is left out (the package still goes through). A
    // license both give is the template's: it outlives a change to a
    // package without it.
    if provision {
        let names: BTreeSet<String> = held.iter().map(|h| h.license.clone()).collect();
        let given = org.templates.licenses_for(&names, who.group_id, &org.pool);
        for (license, why) in given {
            let free =
                org.pool.is_empty() || names.contains(&license) || org.pool.available(&license) > 0;
            if free {
                wanted.insert(license, why);
            }
        }
    }
    wanted
}

/// The user moved to group `to`: the templates give what they give a
/// member of `to` (best effort, like at provisioning); what its old
/// group's template gave goes unless the organization preserves it (its
/// template's `preserveOnGroupMove`, on by default). Whether licenses
/// changed. A move to the group it is in already changes nothing.
#[allow(clippy::too_many_arguments)]
fn group_move(
    tx: &dyn Tx,
    orgs: &mut Orgs,
    policy: LicensePolicy,
    who: &Who<'_>,
    held: &[Holding],
    to: &str,
    key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let Some((_, from)) = tx.holder_ids(who.subscriber_id)? else {
        return Ok(false);
    };
    if from.as_deref() == Some(to) {
        return Ok(false);
    }
    let org = orgs.of(tx, who.org_id)?;
    let preserve = org
        .templates
        .org
        .as_ref()
        .and_then(|t| t.preserve_on_group_move)
        .unwrap_or(true);
    let old_group = from.map(|g| format!("group:{g}"));
    // A license both the package and the old group give is recorded as
    // the template's: the package still gives it.
    let package: BTreeSet<String> = held
        .iter()
        .find(|h| h.source == GrantSource::Package)
        .and_then(|h| Package::parse(&h.source_ref))
        .map(|p| package_licenses(p).into_iter().collect())
        .unwrap_or_default();
    let mut wanted: Wanted = held
        .iter()
        .filter(|h| {
            preserve
                || h.source != GrantSource::Template
                || Some(&h.source_ref) != old_group.as_ref()
                || package.contains(&h.license)
        })
        .map(|h| (h.license.clone(), (h.source, h.source_ref.clone())))
        .collect();
    let names: BTreeSet<String> = held.iter().map(|h| h.license.clone()).collect();
    // Calling needs a number, decided at provisioning: no template gives it.
    let holds_calling = held.iter().any(|h| is_calling(&h.license));
    for (license, why) in org.templates.licenses_for(&names, Some(to), &org.pool) {
        let free =
            org.pool.is_empty() || names.contains(&license) || org.pool.available(&license) > 0;
        if free && (holds_calling || !is_calling(&license)) {
            wanted.entry(license).or_insert(why);
        }
    }
    let moved = Who {
        subscriber_id: who.subscriber_id,
        org_id: who.org_id,
        user_id: who.user_id,
        group_id: Some(to),
    };
    let changed = match settle(tx, &mut org.pool, policy, &moved, held, &wanted, key, now)? {
        Ok(changed) => changed,
        Err(shortage) => {
            // Best effort: the move stands with what it takes away; what
            // the new group gives waits for room.
            tracing::info!(subscriber_id = who.subscriber_id, %shortage, "group move: templates' licenses left out");
            wanted.retain(|license, _| names.contains(license));
            settle(tx, &mut org.pool, policy, &moved, held, &wanted, key, now)?.unwrap_or(false)
        }
    };
    if holds_calling && !wanted.keys().any(|l| is_calling(l)) {
        calling::forget(tx, who.subscriber_id)?;
    }
    tx.set_holder_group(who.subscriber_id, to)?;
    Ok(changed)
}

/// Every license removed, the number freed, the subscriber forgotten.
fn remove(
    tx: &dyn Tx,
    orgs: &mut Orgs,
    policy: LicensePolicy,
    who: &Who<'_>,
    held: &[Holding],
    key: &str,
    now: i64,
) -> Result<Applied, StoreError> {
    let org = orgs.of(tx, who.org_id)?;
    // Removing everything cannot be short.
    let _ = settle(
        tx,
        &mut org.pool,
        policy,
        who,
        held,
        &Wanted::new(),
        key,
        now,
    )?;
    calling::forget(tx, who.subscriber_id)?;
    answer(tx, key, Granted::default(), now)
}

/// A device activation: allowed and recorded, or refused (9044) for good.
fn device(
    tx: &dyn Tx,
    who: &Who<'_>,
    held: &[Holding],
    request: &DeviceRequest<'_>,
    key: &str,
    now: i64,
) -> Result<Applied, StoreError> {
    match devices::issue(tx, who, held, request, key, now)? {
        Ok(issued) => {
            let granted = Granted {
                notice: None,
                device: Some(issued),
            };
            answer(tx, key, granted, now)
        }
        Err(detail) => refuse(tx, key, ErrorCode::DeviceNotAllowed, detail, now),
    }
}

/// Applied: the answer (with its notice) is kept under `key`, so a
/// redelivery gets it again.
pub(super) fn answer(
    tx: &dyn Tx,
    key: &str,
    granted: Granted,
    now: i64,
) -> Result<Applied, StoreError> {
    let notice = granted.notice.as_ref().map(|r| StoredRefusal {
        code: r.code.code(),
        detail: r.message().to_string(),
    });
    tx.record_license_outcome(key, &KeyOutcome::Applied { notice }, now)?;
    Ok(Ok(granted))
}

/// Refused for good, and kept so under `key`.
pub(super) fn refuse(
    tx: &dyn Tx,
    key: &str,
    code: ErrorCode,
    detail: String,
    now: i64,
) -> Result<Applied, StoreError> {
    let refused = StoredRefusal {
        code: code.code(),
        detail,
    };
    tx.record_license_outcome(key, &KeyOutcome::Refused(refused.clone()), now)?;
    Ok(Err(refusal_of(&refused)))
}

/// The subscriber holding `held` comes to hold `wanted`, taken from the
/// organization's subscriptions (all or nothing): the difference is written
/// with its ledger entries under `key`; `Ok(whether anything changed)`.
/// `Err(reason)`: a shortage, nothing changed.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle(
    tx: &dyn Tx,
    pool: &mut Pool,
    policy: LicensePolicy,
    who: &Who<'_>,
    held: &[Holding],
    wanted: &Wanted,
    key: &str,
    now: i64,
) -> Result<Result<bool, String>, StoreError> {
    let names: BTreeSet<String> = wanted.keys().cloned().collect();
    let next: BTreeMap<String, Option<String>> = if pool.is_empty() {
        if policy.require_subscription && !names.is_empty() {
            return Ok(Err(format!(
                "organization '{}' has no license subscription",
                who.org_id
            )));
        }
        // Unmetered: what it holds stays as it is, the rest is granted
        // without a subscription.
        let mut next: BTreeMap<String, Option<String>> = held
            .iter()
            .filter(|h| names.contains(&h.license))
            .map(|h| (h.license.clone(), h.subscription_id.clone()))
            .collect();
        for license in &names {
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
        match pool.assign(&counted, &names) {
            Ok(assigned) => assigned
                .into_iter()
                .map(|h| (h.license, Some(h.subscription_id)))
                .collect(),
            Err(shortage) => return Ok(Err(shortage.to_string())),
        }
    };
    Ok(Ok(write_difference(
        tx, who, held, &next, wanted, key, now,
    )?))
}

/// Revokes what `held` has that `next` does not (by license and
/// subscription), grants the rest (with why, from `wanted`), and writes
/// both to the ledger; whether there was anything to write.
pub(super) fn write_difference(
    tx: &dyn Tx,
    who: &Who<'_>,
    held: &[Holding],
    next: &BTreeMap<String, Option<String>>,
    wanted: &Wanted,
    key: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let stays = |h: &Holding| next.get(&h.license) == Some(&h.subscription_id);
    let revoked: Vec<&Holding> = held.iter().filter(|h| !stays(h)).collect();
    let granted: Vec<Holding> = next
        .iter()
        .filter(|(license, subscription)| {
            !held
                .iter()
                .any(|h| &h.license == *license && &h.subscription_id == *subscription)
        })
        .map(|(license, subscription)| {
            // A license moving to a subscription keeps its reason.
            let (source, source_ref) = held
                .iter()
                .find(|h| &h.license == license)
                .map(|h| (h.source, h.source_ref.clone()))
                .or_else(|| wanted.get(license).cloned())
                .unwrap_or((GrantSource::Package, String::new()));
            Holding {
                license: license.clone(),
                subscription_id: subscription.clone(),
                source,
                source_ref,
                command_key: key.to_string(),
                granted_at: now,
            }
        })
        .collect();
    if revoked.is_empty() && granted.is_empty() {
        return Ok(false);
    }
    let entry = |h: &Holding, action: &str| LicenseEvent {
        id: 0,
        idempotency_key: key.to_string(),
        subscriber_id: who.subscriber_id.to_string(),
        org_id: Some(who.org_id.to_string()),
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
    // What the command does not name, the subscriber's other licenses say.
    let known = match (who.user_id, who.group_id) {
        (Some(_), Some(_)) => None,
        _ => tx.holder_ids(who.subscriber_id)?,
    };
    let (known_user, known_group) = known.unwrap_or_default();
    tx.change_holdings(
        who.subscriber_id,
        &HolderIds {
            org_id: who.org_id,
            user_id: who.user_id.unwrap_or(&known_user),
            group_id: who.group_id.or(known_group.as_deref()),
        },
        &revoked,
        &granted,
        &ledger,
    )?;
    Ok(true)
}

pub(super) fn refusal_of(r: &StoredRefusal) -> Refusal {
    Refusal::new(
        ErrorCode::from_code(r.code).unwrap_or(ErrorCode::LicenseShortage),
        r.detail.clone(),
    )
}
