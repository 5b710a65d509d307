//! What operators and partner admins do with licenses: add or change an
//! organization's subscriptions, see who holds what and why, and read the
//! ledger as a billing feed. Faces call these; the rules live here.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::commands::CommandEnvelope;

use crate::domain::license_ledger::LicenseEvent;
use crate::domain::{ErrorCode, Refusal};
use crate::store::{HolderCursor, HolderRow, SharedStore, StoreError, SubscriptionUsage};

use std::collections::BTreeSet;

use super::apply::{settle, write_difference, Orgs, Wanted, Who};
use super::calling::is_calling;
use super::subscriptions::LicenseSubscription;
use super::templates::{
    apply_to_existing, ApplyToExisting, AutoLicenseTemplate, OrgTemplates, UserLicensing,
};
use super::{Granted, LicenseCore, LicenseError, LicensePolicy, LocalLicenseCore};
use crate::domain::license::GrantSource;
use crate::domain::workspace::is_workspace;
use crate::store::license_rows::HolderState;

/// How long a gap in the ledger's ids is taken for a transaction still
/// committing (PostgreSQL hands out ids before the commit; a rolled-back
/// one leaves a gap for good).
const GAP_WAIT_MS: i64 = 5_000;
/// Longest id and license name accepted.
const MAX_NAME: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum LicenseAdminError {
    #[error("{}", .0.summary())]
    Refused(Refusal),
    /// The store failed (faces answer it as they answer `DataError`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The remote core did not answer (try again later).
    #[error("{0}")]
    Remote(String),
}

impl From<LicenseError> for LicenseAdminError {
    fn from(e: LicenseError) -> Self {
        match e {
            LicenseError::Rejected(r) => LicenseAdminError::Refused(r),
            LicenseError::Unavailable(why) => LicenseAdminError::Remote(why),
        }
    }
}

pub(super) fn refused(code: ErrorCode, detail: impl Into<String>) -> LicenseAdminError {
    LicenseAdminError::Refused(Refusal::new(code, detail))
}

/// A page of the holders report: up to `limit` rows after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderPage {
    pub after: Option<HolderCursor>,
    pub limit: usize,
}

/// A subscription was added, or an existing one changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutSubscription {
    pub created: bool,
    pub usage: SubscriptionUsage,
}

pub struct LicenseAdmin {
    store: SharedStore,
    policy: LicensePolicy,
    /// The rules on this process's store: what a remote core's face runs.
    core: Arc<LocalLicenseCore>,
    /// Where the licenses are kept.
    place: Place,
    /// The remote core, to relay admin requests to (remote mode).
    remote: Option<Arc<super::remote::RemoteLicenseCore>>,
}

/// Where this process's licenses are kept, which decides what its admin
/// routes may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Here, beside the gateway's organizations (organization ids are
    /// checked against them).
    Gateway,
    /// Here, in a remote core's own store: it knows no organization
    /// except through the commands and the operator's word.
    Core,
    /// In a remote core at this URL: nothing to read here.
    Remote(String),
}

impl Place {
    pub fn from_config(c: &crate::config::LicenseConfig) -> Place {
        use crate::config::LicenseMode;
        match (c.mode, c.serve_core) {
            (LicenseMode::Remote, _) => Place::Remote(c.remote.url.clone().unwrap_or_default()),
            (LicenseMode::Local, true) => Place::Core,
            (LicenseMode::Local, false) => Place::Gateway,
        }
    }
}

impl LicenseAdmin {
    pub fn new(store: SharedStore, policy: LicensePolicy, place: Place) -> LicenseAdmin {
        LicenseAdmin {
            core: LocalLicenseCore::new(store.clone(), policy),
            store,
            policy,
            place,
            remote: None,
        }
    }

    /// Admin requests are relayed to this remote core (remote mode).
    pub fn with_remote_core(mut self, core: Arc<super::remote::RemoteLicenseCore>) -> Self {
        self.remote = Some(core);
        self
    }

    /// A run of commands sent to this process as a remote license core.
    pub async fn apply_commands(
        &self,
        envelopes: &[CommandEnvelope],
    ) -> Vec<Result<Granted, LicenseError>> {
        self.core.apply_in_order(envelopes).await
    }

    /// Adds or replaces subscription `subscription.id` of `org_id`. Its
    /// quantities may not go below what it has assigned (9042); an id of
    /// another organization's subscription is refused (9017).
    pub async fn put_subscription(
        &self,
        org_id: &str,
        subscription: LicenseSubscription,
        now: i64,
    ) -> Result<PutSubscription, LicenseAdminError> {
        check_name("subscription id", &subscription.id)?;
        for license in subscription.quantities.keys() {
            check_name("license", license)?;
        }
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        let outcome = crate::store::transact(self.store.as_ref(), move |tx| {
            put_in(tx, &org, &subscription, now)
        })
        .await?;
        outcome.map_err(LicenseAdminError::Refused)
    }

    /// Sets the organization's auto-license template (`group`: `None`) or
    /// one of its groups'. It applies to users provisioned from now on;
    /// [`LicenseAdmin::apply_templates`] brings existing users in line.
    pub async fn put_template(
        &self,
        org_id: &str,
        group: Option<&str>,
        template: AutoLicenseTemplate,
        now: i64,
    ) -> Result<(), LicenseAdminError> {
        if let Some(g) = group {
            check_name("group id", g)?;
        }
        for license in &template.licenses {
            check_name("license", license)?;
        }
        self.known_org(org_id).await?;
        let (org, group) = (org_id.to_string(), group.unwrap_or("").to_string());
        crate::store::transact(self.store.as_ref(), move |tx| {
            let mut template = template.clone();
            // The organization's group-move setting stays as it was when
            // a PUT of its licenses does not name it.
            if group.is_empty() && template.preserve_on_group_move.is_none() {
                template.preserve_on_group_move = tx
                    .license_templates(&org)?
                    .into_iter()
                    .find(|(g, _)| g.is_empty())
                    .and_then(|(_, t)| t.preserve_on_group_move);
            }
            tx.put_license_template(&org, &group, &template, now)
        })
        .await?;
        Ok(())
    }

    /// The organization's templates: its own and its groups'.
    pub async fn templates(&self, org_id: &str) -> Result<OrgTemplates, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        let rows =
            crate::store::transact(self.store.as_ref(), move |tx| tx.license_templates(&org))
                .await?;
        Ok(OrgTemplates::from_rows(rows))
    }

    /// Applies the templates to every user of the organization that holds
    /// licenses. `preserve` (the default): a license the templates no
    /// longer give stays; off, the user keeps only what the templates give
    /// and what its package grants (licenses an admin or an older
    /// template gave go). Each user is all or nothing: one short of a
    /// license is left as it was and named in the report.
    /// `calling_loss_acknowledged`: a user would lose a Webex Calling
    /// license (and with it voicemail, PIN, numbers and settings) only when
    /// the admin said so; otherwise it is left as it was and named.
    pub async fn apply_templates(
        &self,
        org_id: &str,
        how: TemplateApplication,
        now: i64,
    ) -> Result<TemplateReport, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        let policy = self.policy;
        Ok(crate::store::transact(self.store.as_ref(), move |tx| {
            apply_templates_in(tx, &org, how, policy, now)
        })
        .await?)
    }

    /// Moves users' licenses from subscription `from` to other
    /// subscriptions of the same organization, keeping why they were
    /// granted (a move is a removal and a grant in the ledger, with one
    /// key). Each user is all or nothing: one whose target lacks room for
    /// any of its licenses stays where it was and is named.
    pub async fn move_subscription(
        &self,
        org_id: &str,
        from: &str,
        moves: SubscriptionMoves,
        now: i64,
    ) -> Result<MoveReport, LicenseAdminError> {
        self.known_org(org_id).await?;
        let (org, from) = (org_id.to_string(), from.to_string());
        let outcome = crate::store::transact(self.store.as_ref(), move |tx| {
            move_in(tx, &org, &from, &moves, now)
        })
        .await?;
        outcome.map_err(LicenseAdminError::Refused)
    }

    /// The organization's subscriptions and what each has assigned.
    pub async fn subscriptions(
        &self,
        org_id: &str,
    ) -> Result<Vec<SubscriptionUsage>, LicenseAdminError> {
        self.known_org(org_id).await?;
        Ok(self.store.license_subscriptions(org_id).await?)
    }

    /// Every license held in the organization, with why.
    pub async fn holders(&self, org_id: &str) -> Result<Vec<HolderRow>, LicenseAdminError> {
        self.known_org(org_id).await?;
        Ok(self.store.license_holders(org_id).await?)
    }

    /// A page of [`LicenseAdmin::holders`] (keyset: never a row twice or
    /// skipped between pages).
    pub async fn holders_page(
        &self,
        org_id: &str,
        page: HolderPage,
    ) -> Result<Vec<HolderRow>, LicenseAdminError> {
        self.known_org(org_id).await?;
        Ok(self
            .store
            .license_holders_page(org_id, page.after, page.limit)
            .await?)
    }

    /// Whether `org_id` is one of the partner's organizations (linked to
    /// one of its enterprises); another partner's answers like an unknown
    /// one. Partner admins reach an organization's licenses through it.
    pub async fn check_partner_org(
        &self,
        partner_id: &str,
        org_id: &str,
    ) -> Result<(), LicenseAdminError> {
        // The organization is this gateway's (its partner's) even when its
        // licenses are the remote core's.
        match self.store.organization_partner(org_id).await? {
            Some(p) if p == partner_id => Ok(()),
            _ => Err(refused(
                ErrorCode::NotFound,
                format!("no organization '{org_id}'"),
            )),
        }
    }

    /// Up to `limit` ledger entries after `after`, oldest first, stopping
    /// before a gap that may still fill (see [`settled`]).
    pub async fn feed(
        &self,
        after: i64,
        limit: usize,
        now: i64,
    ) -> Result<Vec<LicenseEvent>, LicenseAdminError> {
        self.here()?;
        let events = self.store.license_feed(after, limit).await?;
        Ok(settled(after, events, now))
    }

    pub(super) async fn known_org(&self, org_id: &str) -> Result<(), LicenseAdminError> {
        self.here()?;
        if self.place == Place::Core {
            return Ok(());
        }
        self.gateway_org(org_id).await
    }

    /// Whether this gateway knows `org_id` (an enterprise's, or an
    /// existing one it was told of): checked before an operator's request
    /// is relayed to a remote core, which knows organizations only by id.
    pub async fn gateway_org(&self, org_id: &str) -> Result<(), LicenseAdminError> {
        if self.store.organization(org_id).await?.is_some()
            || self.store.existing_org(org_id).await?.is_some()
        {
            return Ok(());
        }
        Err(refused(
            ErrorCode::NotFound,
            format!("no organization '{org_id}'"),
        ))
    }
}

impl LicenseAdmin {
    /// The remote core that keeps this gateway's licenses (`None`: they
    /// are kept here), to relay admin requests to.
    pub fn remote_core(
        &self,
    ) -> Result<Option<&super::remote::RemoteLicenseCore>, LicenseAdminError> {
        match (&self.place, &self.remote) {
            (Place::Remote(_), Some(remote)) => Ok(Some(remote)),
            // Its configuration did not load (logged at start); the core's
            // address is the operator's, not the partner's.
            (Place::Remote(_), None) => Err(LicenseAdminError::Remote(
                "the license core keeps the licenses; this gateway cannot reach it".into(),
            )),
            (Place::Gateway | Place::Core, _) => Ok(None),
        }
    }

    /// How this process's core meters licenses.
    pub(super) fn policy(&self) -> LicensePolicy {
        self.policy
    }

    /// A unit of work on this process's store.
    pub(super) async fn transact<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&dyn crate::store::tx::Tx) -> Result<T, StoreError> + Send + 'static,
    {
        crate::store::transact(self.store.as_ref(), work).await
    }

    /// Licenses kept by a remote core are read there.
    fn here(&self) -> Result<(), LicenseAdminError> {
        match &self.place {
            Place::Remote(url) => Err(refused(
                ErrorCode::NotFound,
                format!(
                    "licenses are kept by the remote license core ({url}); use its operator API"
                ),
            )),
            Place::Gateway | Place::Core => Ok(()),
        }
    }
}

pub(super) fn check_name(what: &str, name: &str) -> Result<(), LicenseAdminError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        return Ok(());
    }
    Err(refused(
        ErrorCode::InvalidParameterValue,
        format!(
            "{what} '{name}': 1 to {MAX_NAME} characters of letters, digits, '-', '_', '.', ':'"
        ),
    ))
}

/// The unit of work of [`LicenseAdmin::put_subscription`].
fn put_in(
    tx: &dyn crate::store::tx::Tx,
    org_id: &str,
    subscription: &LicenseSubscription,
    now: i64,
) -> Result<Result<PutSubscription, Refusal>, StoreError> {
    let existing = tx.license_subscription(&subscription.id)?;
    if let Some((owner, _)) = &existing {
        if owner != org_id {
            return Ok(Err(Refusal::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "subscription '{}' belongs to another organization",
                    subscription.id
                ),
            )));
        }
    }
    // Marks the organization's subscriptions: a grant committed beside
    // this one makes one of the two run again.
    tx.org_subscriptions(org_id)?;
    let assigned: BTreeMap<String, u32> = tx
        .org_license_usage(org_id)?
        .into_iter()
        .filter(|(s, _, _)| *s == subscription.id)
        .map(|(_, license, n)| (license, n))
        .collect();
    for (license, used) in &assigned {
        let bought = subscription.quantities.get(license).copied().unwrap_or(0);
        if bought < *used {
            return Ok(Err(Refusal::new(
                ErrorCode::SubscriptionBelowAssigned,
                format!("'{license}': {used} assigned from this subscription, {bought} asked"),
            )));
        }
    }
    tx.put_license_subscription(org_id, subscription, now)?;
    Ok(Ok(PutSubscription {
        created: existing.is_none(),
        usage: SubscriptionUsage {
            subscription: subscription.clone(),
            assigned,
        },
    }))
}

/// How templates are applied to existing users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateApplication {
    /// Keep licenses the templates no longer give (the default).
    pub preserve: bool,
    /// A user may lose a Webex Calling license.
    pub calling_loss_acknowledged: bool,
}

impl Default for TemplateApplication {
    fn default() -> Self {
        TemplateApplication {
            preserve: true,
            calling_loss_acknowledged: false,
        }
    }
}

/// Which users move, and where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionMoves {
    /// Every user holding licenses from the source.
    All { to: String },
    /// These users (by user id), each to its target.
    Users(Vec<(String, String)>),
    /// The users an auto-license template applies to (`org`: every
    /// user; `group:{id}`: the group's direct members) holding licenses
    /// from the source.
    Template { template: String, to: String },
}

/// What a subscription move did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MoveReport {
    /// Users whose licenses moved, with how many.
    pub moved: Vec<(String, usize)>,
    /// Users left as they were: `(user id, reason)`.
    pub short: Vec<(String, String)>,
}

/// The unit of work of [`LicenseAdmin::move_subscription`].
fn move_in(
    tx: &dyn crate::store::tx::Tx,
    org_id: &str,
    from: &str,
    moves: &SubscriptionMoves,
    now: i64,
) -> Result<Result<MoveReport, Refusal>, StoreError> {
    let targets: BTreeSet<&str> = match moves {
        SubscriptionMoves::All { to } | SubscriptionMoves::Template { to, .. } => {
            std::iter::once(to.as_str()).collect()
        }
        SubscriptionMoves::Users(pairs) => pairs.iter().map(|(_, to)| to.as_str()).collect(),
    };
    // `org`, or `group:{id}` (the group's direct members).
    let member = |template: &str, group: Option<&str>| match template.strip_prefix("group:") {
        Some(g) => group == Some(g),
        None => true,
    };
    if let SubscriptionMoves::Template { template, .. } = moves {
        let known = template == "org"
            || template
                .strip_prefix("group:")
                .is_some_and(|g| !g.is_empty());
        if !known {
            return Ok(Err(Refusal::new(
                ErrorCode::InvalidParameterValue,
                format!("template '{template}': org or group:{{groupId}}"),
            )));
        }
    }
    for id in std::iter::once(from).chain(targets.iter().copied()) {
        match tx.license_subscription(id)? {
            Some((owner, _)) if owner == org_id => {}
            _ => {
                return Ok(Err(Refusal::new(
                    ErrorCode::NotFound,
                    format!("organization '{org_id}' has no subscription '{id}'"),
                )))
            }
        }
    }
    if targets.contains(from) {
        return Ok(Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("licenses move from '{from}' to another subscription"),
        )));
    }
    let holders = tx.org_holders(org_id)?;
    let mut orgs = Orgs::new(now);
    let org = orgs.of(tx, org_id)?;
    let holds_from = |h: &crate::store::license_rows::HolderState| {
        h.holdings
            .iter()
            .any(|l| l.subscription_id.as_deref() == Some(from))
    };
    let wanted: Vec<(&str, &str)> = match moves {
        SubscriptionMoves::All { to } => holders
            .iter()
            .filter(|h| holds_from(h))
            .map(|h| (h.user_id.as_str(), to.as_str()))
            .collect(),
        SubscriptionMoves::Template { template, to } => holders
            .iter()
            // Templates are users' (a workspace holds its own license).
            .filter(|h| holds_from(h) && !is_workspace(&h.subscriber_id))
            .filter(|h| member(template, h.group_id.as_deref()))
            .map(|h| (h.user_id.as_str(), to.as_str()))
            .collect(),
        SubscriptionMoves::Users(pairs) => pairs
            .iter()
            .map(|(u, to)| (u.as_str(), to.as_str()))
            .collect(),
    };
    let mut report = MoveReport::default();
    for (user, to) in wanted {
        let Some(holder) = holders.iter().find(|h| h.user_id == user) else {
            report.short.push((
                user.to_string(),
                "holds no license in this organization".into(),
            ));
            continue;
        };
        let mut trial = org.pool.clone();
        let mut next: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut moved = 0;
        let mut shortage = None;
        for h in &holder.holdings {
            let target = match &h.subscription_id {
                Some(s) if s == from => {
                    let held = super::subscriptions::Held {
                        license: h.license.clone(),
                        subscription_id: s.clone(),
                    };
                    match trial.move_to(&held, to) {
                        Ok(now_held) => {
                            moved += 1;
                            Some(now_held.subscription_id)
                        }
                        Err(e) => {
                            shortage = Some(format!("'{to}': {e}"));
                            break;
                        }
                    }
                }
                other => other.clone(),
            };
            next.insert(h.license.clone(), target);
        }
        if let Some(reason) = shortage {
            report.short.push((user.to_string(), reason));
            continue;
        }
        if moved == 0 {
            report
                .short
                .push((user.to_string(), format!("holds nothing from '{from}'")));
            continue;
        }
        org.pool = trial;
        let who = Who::holder(org_id, holder);
        let key = format!("move:{now}:{}", holder.subscriber_id);
        write_difference(tx, &who, &holder.holdings, &next, &Wanted::new(), &key, now)?;
        report.moved.push((user.to_string(), moved));
    }
    Ok(Ok(report))
}

/// What applying the templates to existing users did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateReport {
    /// Users holding licenses in the organization.
    pub users: usize,
    /// Users whose licenses changed.
    pub changed: usize,
    /// Users left as they were: `(user id, reason)`.
    pub short: Vec<(String, String)>,
}

/// The unit of work of [`LicenseAdmin::apply_templates`].
fn apply_templates_in(
    tx: &dyn crate::store::tx::Tx,
    org_id: &str,
    how: TemplateApplication,
    policy: LicensePolicy,
    now: i64,
) -> Result<TemplateReport, StoreError> {
    let preserve = how.preserve;
    // Templates license users; a workspace holds its workspace license only.
    let holders: Vec<_> = tx
        .org_holders(org_id)?
        .into_iter()
        .filter(|h| !is_workspace(&h.subscriber_id))
        .collect();
    let mut orgs = Orgs::new(now);
    let org = orgs.of(tx, org_id)?;
    let mut report = TemplateReport {
        users: holders.len(),
        ..TemplateReport::default()
    };
    for holder in &holders {
        let held: BTreeSet<String> = holder.holdings.iter().map(|h| h.license.clone()).collect();
        let given = org
            .templates
            .licenses_for(&held, holder.group_id.as_deref(), &org.pool);
        let given_names: BTreeSet<String> = given.iter().map(|(l, _)| l.clone()).collect();
        let user = UserLicensing {
            held: held.clone(),
            explicit: false,
        };
        let keep = apply_to_existing(&user, &given_names, ApplyToExisting { preserve });
        // The package's licenses are the provisioning's: templates add to
        // them, never take them away.
        let mut wanted: Wanted = holder
            .holdings
            .iter()
            .filter(|h| h.source == GrantSource::Package || keep.contains(&h.license))
            .map(|h| (h.license.clone(), (h.source, h.source_ref.clone())))
            .collect();
        // Webex Calling needs a number, decided at provisioning: a
        // template does not give it to a user it was withheld from.
        let holds_calling = held.iter().any(|l| is_calling(l));
        for (license, why) in given {
            if keep.contains(&license) && (holds_calling || !is_calling(&license)) {
                wanted.entry(license).or_insert(why);
            }
        }
        let loses_calling = holder
            .holdings
            .iter()
            .any(|h| is_calling(&h.license) && !wanted.contains_key(&h.license));
        if loses_calling && !how.calling_loss_acknowledged {
            report.short.push((
                holder.user_id.clone(),
                "would lose Webex Calling (voicemail, PIN, numbers and settings go with it): \
                 move it to another subscription, or acknowledge the loss"
                    .into(),
            ));
            continue;
        }
        let key = format!("templates:{now}:{}", holder.subscriber_id);
        match settle_holder(
            tx,
            &mut org.pool,
            policy,
            org_id,
            holder,
            &wanted,
            &key,
            now,
        )? {
            Ok(true) => report.changed += 1,
            Ok(false) => {}
            Err(reason) => report.short.push((holder.user_id.clone(), reason)),
        }
    }
    Ok(report)
}

/// `holder` comes to hold `wanted` under `key`, from the organization's
/// subscriptions (all or nothing); one left without Webex Calling frees
/// its number. Whether anything changed, or the shortage.
#[allow(clippy::too_many_arguments)]
pub(super) fn settle_holder(
    tx: &dyn crate::store::tx::Tx,
    pool: &mut super::subscriptions::Pool,
    policy: LicensePolicy,
    org_id: &str,
    holder: &HolderState,
    wanted: &Wanted,
    key: &str,
    now: i64,
) -> Result<Result<bool, String>, StoreError> {
    let who = Who::holder(org_id, holder);
    let held_calling = holder.holdings.iter().any(|h| is_calling(&h.license));
    let settled = settle(tx, pool, policy, &who, &holder.holdings, wanted, key, now)?;
    if matches!(settled, Ok(true)) && held_calling && !wanted.keys().any(|l| is_calling(l)) {
        super::calling::forget(tx, &holder.subscriber_id)?;
    }
    Ok(settled)
}

/// The entries a reader may move its cursor past: up to the first gap in
/// the ids that is younger than [`GAP_WAIT_MS`] (an id handed out to a
/// transaction not committed yet would otherwise be skipped for good).
pub fn settled(after: i64, events: Vec<LicenseEvent>, now: i64) -> Vec<LicenseEvent> {
    let mut expected = after + 1;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if e.id != expected && now - e.at < GAP_WAIT_MS {
            break;
        }
        expected = e.id + 1;
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, at: i64) -> LicenseEvent {
        LicenseEvent {
            id,
            idempotency_key: format!("k{id}"),
            subscriber_id: "s".into(),
            org_id: None,
            license: "l".into(),
            action: "grant".into(),
            subscription_id: None,
            source: "package".into(),
            source_ref: "basic".into(),
            at,
        }
    }

    fn ids(events: &[LicenseEvent]) -> Vec<i64> {
        events.iter().map(|e| e.id).collect()
    }

    #[test]
    fn the_feed_stops_before_a_young_gap_and_passes_an_old_one() {
        let now = 100_000;
        // 3 is missing and 4 is a second old: 3 may still commit.
        let young = settled(0, vec![ev(1, 1), ev(2, 1), ev(4, now - 1_000)], now);
        assert_eq!(ids(&young), [1, 2]);
        // The same gap a minute on: 3 was rolled back, read past it.
        let old = settled(0, vec![ev(1, 1), ev(2, 1), ev(4, now - 60_000)], now);
        assert_eq!(ids(&old), [1, 2, 4]);
        // A gap right after the cursor counts too.
        assert!(settled(5, vec![ev(7, now)], now).is_empty());
        assert_eq!(ids(&settled(6, vec![ev(7, now)], now)), [7]);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("license", "webex-calling-basic").is_ok());
        assert!(check_name("license", "meetings-host:acme.webex.com").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(129)] {
            let err = check_name("license", bad).unwrap_err();
            assert!(
                matches!(&err, LicenseAdminError::Refused(r) if r.code == ErrorCode::InvalidParameterValue),
                "{bad}: {err:?}"
            );
        }
    }
}
