//! The activation portal's use cases: starting an activation for a new
//! pending subscriber (inside `accept`), the user's steps (email, code,
//! consent) and an admin's renewal. The decisions are
//! `domain::activation`'s; each step commits together with the emails and
//! commands it causes.

use std::sync::Arc;

use crate::activation::ActivationLinks;
use crate::domain::activation::{self as rules, Activation, ActivationPurpose, CodeCheck};
use crate::domain::email::EmailMessage;
use crate::domain::lifecycle::{Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::{CustomerTemplate, ErrorCode, TemplateSettings};
use crate::links::Reveal;
use crate::orgs::ApprovalLinks;
use crate::store::tx::Tx;
use crate::store::{ActivationView, StoreError};

use super::change::incomplete;
use super::emit::Emitter;
use super::placement::{self, Refused};
use super::{accounts, admin};

/// What the user did on the portal, with the link's claim.
#[derive(Debug, Clone)]
pub struct ActivationStep {
    pub links: Arc<ActivationLinks>,
    pub claim: crate::activation::ActivationClaim,
    pub action: ActivationAction,
    /// The portal request's TrackingID (commands' idempotency keys).
    pub tracking_id: String,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActivationAction {
    /// An email entered (already syntax-checked): a code is emailed to it
    /// (made with the server key, see `ActivationLinks::code_secret`), its
    /// keyed hash stored.
    SubmitEmail { email: String },
    /// A code typed in (or from the emailed link).
    VerifyCode { code: String },
    /// Consent to move the email from the other account.
    Consent,
}

fn new_nonce() -> String {
    crate::links::random_token(16)
}

/// Starts the activation of a subscriber that `accept` just created in a
/// pending status, with its first email when there is an address to send
/// it to. Returns the number of emails written.
pub(crate) fn start(
    tx: &dyn Tx,
    record: &SubscriberRecord,
    links: Option<&ActivationLinks>,
    self_activation: bool,
    from: &TemplateSettings,
    now: i64,
) -> Result<usize, StoreError> {
    let purpose = match record.status {
        SubscriberStatus::PendingEmailInput if self_activation => ActivationPurpose::SelfActivation,
        SubscriberStatus::PendingEmailInput => ActivationPurpose::EmailInput,
        SubscriberStatus::PendingUserMigration => ActivationPurpose::ConsentMigration,
        _ => return Ok(0),
    };
    let to = record.email.as_deref();
    Ok(begin(tx, record, purpose, None, to, links, from, now)?.1)
}

/// A new activation of `purpose` for the subscriber (a new nonce: older
/// links stop working), carrying `pending` when it is about a new
/// address, with its link mailed to `to` when there are links to make.
#[allow(clippy::too_many_arguments)]
fn begin(
    tx: &dyn Tx,
    record: &SubscriberRecord,
    purpose: ActivationPurpose,
    pending: Option<&str>,
    to: Option<&str>,
    links: Option<&ActivationLinks>,
    from: &TemplateSettings,
    now: i64,
) -> Result<(Activation, usize), StoreError> {
    let policy = links.map(|l| l.policy).unwrap_or_default();
    let activation = Activation {
        pending_email: pending.map(str::to_string),
        ..Activation::new(&record.id, purpose, new_nonce(), now, &policy)
    };
    tx.put_activation(&activation, now)?;
    let emails = match (links, to) {
        (Some(links), Some(to)) => send_link(tx, links, record, &activation, to, from, now)?,
        _ => 0,
    };
    Ok((activation, emails))
}

/// Whether the gateway may email the subscriber on its own (activation
/// and consent links): not when its organization, an existing one, has
/// email suppression on (its admins onboard their users themselves; an
/// admin's "retry activation" still hands them the link).
fn may_email(tx: &dyn Tx, record: &SubscriberRecord) -> Result<bool, StoreError> {
    match &record.org_id {
        Some(org_id) => Ok(!tx.org_email_suppressed(org_id)?),
        None => Ok(true),
    }
}

/// The subscriber's email turned out to belong to another account: its
/// activation becomes a consent (new link, older links stop working), with
/// the consent email. Returns the number of emails written.
pub(crate) fn restart_as_consent(
    tx: &dyn Tx,
    record: &SubscriberRecord,
    links: Option<&ActivationLinks>,
    from: &TemplateSettings,
    now: i64,
) -> Result<usize, StoreError> {
    let purpose = ActivationPurpose::ConsentMigration;
    let to = record.email.as_deref();
    Ok(begin(tx, record, purpose, None, to, links, from, now)?.1)
}

/// The flow ended another way (the AS sent a trusted email): the link is
/// used up.
pub(crate) fn complete(tx: &dyn Tx, subscriber_id: &str, now: i64) -> Result<(), StoreError> {
    if let Some(mut a) = tx.activation(subscriber_id)? {
        if a.completed_at.is_none() {
            a.completed_at = Some(now);
            a.code_hash = None;
            tx.put_activation(&a, now)?;
        }
    }
    Ok(())
}

/// The activation or consent email for the activation's current link.
fn send_link(
    tx: &dyn Tx,
    links: &ActivationLinks,
    s: &SubscriberRecord,
    a: &Activation,
    to: &str,
    from: &TemplateSettings,
    now: i64,
) -> Result<usize, StoreError> {
    if !may_email(tx, s)? {
        tracing::info!(subscriber_id = %s.id, "no activation email: the organization suppresses emails");
        return Ok(0);
    }
    let msg = links.link_email(to, s, a, from);
    Ok(usize::from(tx.enqueue_email(&msg, now)?.is_some()))
}

fn template_disabled() -> Rejection {
    Rejection::new(
        ErrorCode::TemplateDisabled,
        "your service provider no longer activates Webex through this service; ask them for help",
    )
}

fn link_gone() -> Rejection {
    Rejection::new(
        ErrorCode::ActivationLinkInvalid,
        "this link does not belong to a pending activation",
    )
}

pub(crate) fn step(
    tx: &dyn Tx,
    step: &ActivationStep,
    approvals: Option<&ApprovalLinks>,
) -> Result<Result<ActivationView, Rejection>, StoreError> {
    let id = step.claim.subscriber_id.as_str();
    let (Some(subscriber), Some(activation)) = (tx.subscriber_by_id(id)?, tx.activation(id)?)
    else {
        return Ok(Err(link_gone()));
    };
    if let Err(r) = rules::check_link(
        &activation,
        step.claim.purpose,
        &step.claim.nonce,
        subscriber.status,
        step.now,
    ) {
        return Ok(Err(r));
    }
    // A template removed from the configuration provisions nobody, also
    // not the users it left waiting (they stay, and work again when the
    // template comes back).
    if tx
        .template(&subscriber.provisioning_id)?
        .is_some_and(|t| t.is_disabled())
    {
        return Ok(Err(template_disabled()));
    }
    let mut run = Run {
        tx,
        step,
        approvals,
        emails: 0,
        out: Emitter::new(tx, &step.tracking_id, "activation", step.now),
    };
    let outcome = match &step.action {
        ActivationAction::SubmitEmail { email } => {
            run.submit_email(subscriber, activation, email)?
        }
        ActivationAction::VerifyCode { code } => run.verify(subscriber, activation, code)?,
        ActivationAction::Consent => run.consent(subscriber, activation)?,
    };
    Ok(outcome.map(|(subscriber, activation)| ActivationView {
        subscriber,
        activation,
        emails_enqueued: run.emails,
        commands_written: run.out.written,
    }))
}

type StepResult = Result<Result<(SubscriberRecord, Activation), Rejection>, StoreError>;

struct Run<'a> {
    tx: &'a dyn Tx,
    step: &'a ActivationStep,
    /// How to ask an existing organization's admins to approve an attach
    /// decided on the verified email.
    approvals: Option<&'a ApprovalLinks>,
    emails: usize,
    /// The step's commands (`{trackingId}:activation:{n}`).
    out: Emitter<'a>,
}

impl Run<'_> {
    fn submit_email(&mut self, mut s: SubscriberRecord, a: Activation, email: &str) -> StepResult {
        let (tx, links, now) = (self.tx, &self.step.links, self.step.now);
        if matches!(
            a.purpose,
            ActivationPurpose::ConsentMigration | ActivationPurpose::EmailChange
        ) {
            return Ok(Err(wrong_page()));
        }
        // An address another account holds is not refused: once the user
        // proves it, the move is offered (see `onboard`); telling here
        // would also say which addresses have accounts.
        // The code is made from the link's nonce and its number under it
        // (so it is new for every send) with the server key; only its keyed
        // hash is stored, and the email holds how to make it again.
        let code = links.code_secret(&s.id, &a.nonce, a.codes_sent.saturating_add(1));
        let code_hash = links.code_hash(&s.id, &code.reveal(&links.signer));
        let next = match rules::submit_email(&a, email, code_hash, now, &links.policy) {
            Ok(next) => next,
            Err(r) => return Ok(Err(r)),
        };
        tx.put_activation(&next, now)?;
        if s.status != SubscriberStatus::PendingEmailValidation {
            let from = s.status;
            s.status = SubscriberStatus::PendingEmailValidation;
            s.last_status_change = now;
            tx.update_subscriber(&s, now)?;
            super::events::subscriber_changed(tx, Some(from), None, &s, now)?;
        }
        let from = template_settings(tx, &s)?;
        let msg = links.code_email(email, &s, &next, code, &from);
        if tx.enqueue_email(&msg, now)?.is_some() {
            self.emails += 1;
        }
        Ok(Ok((s, next)))
    }

    fn verify(&mut self, mut s: SubscriberRecord, a: Activation, code: &str) -> StepResult {
        let (tx, links, now) = (self.tx, &self.step.links, self.step.now);
        if a.purpose == ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        let matches = a.code_hash.as_deref() == Some(links.code_hash(&s.id, code).as_str());
        let email = match rules::check_code(&a, matches, now, &links.policy) {
            Err(r) => return Ok(Err(r)),
            Ok(CodeCheck::Wrong {
                activation,
                rejection,
            }) => {
                // The attempt counts even though the step is refused.
                tx.put_activation(&activation, now)?;
                return Ok(Err(rejection));
            }
            Ok(CodeCheck::Verified { email }) => email,
        };
        if a.purpose == ActivationPurpose::EmailChange {
            return self.confirm_change(s, a, &email);
        }
        let template =
            tx.template(&s.provisioning_id)?
                .ok_or_else(|| StoreError::MissingReference {
                    entity: "template",
                    id: s.provisioning_id.clone(),
                })?;
        let admin = match &s.org_id {
            Some(org_id) => tx.org_admin(org_id)?,
            None => None,
        };
        if let Err(r) = rules::admin_first_gate(
            template.settings.provision_admin_first,
            &s.id,
            admin.as_ref().map(|(id, st)| (id.as_str(), *st)),
        ) {
            return Ok(Err(r));
        }
        if a.purpose == ActivationPurpose::SelfActivation {
            s.self_activated = true;
        }
        let links = self.step.links.clone();
        let onboarded = onboard(
            tx,
            s,
            &email,
            &template,
            self.approvals,
            Some(&links),
            &mut self.out,
            now,
        )?;
        let s = match onboarded {
            Ok(Onboarded::Provisioning(s)) => s,
            Ok(Onboarded::AwaitingConsent { subscriber, emails }) => {
                // The address is the user's, but another account holds it:
                // the activation became a consent (its email went out).
                self.emails += emails;
                let a = tx.activation(&subscriber.id)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("consent of '{}' not stored", subscriber.id))
                })?;
                return Ok(Ok((subscriber, a)));
            }
            Err(refused) => return self.refuse(refused),
        };
        self.complete_activation(s, a)
    }

    /// The placement refused (2017, 9007, the template creates no
    /// organization) before anything was written: the approval request
    /// goes out all the same, and the verified code stays usable, so the
    /// user can try again once the admins approved.
    fn refuse(&mut self, refused: Refused) -> StepResult {
        queue_notification(self.tx, refused.notify, self.step.now, &mut self.emails)?;
        Ok(Err(refused.rejection))
    }

    /// An active subscriber proved its new address: it takes it, unless
    /// another account holds it, whose user is asked to consent there.
    fn confirm_change(&mut self, s: SubscriberRecord, a: Activation, email: &str) -> StepResult {
        let (tx, now) = (self.tx, self.step.now);
        if accounts::held_elsewhere(tx, email, Some(&s.id), s.org_id.as_deref())? {
            let from = template_settings(tx, &s)?;
            let (consent, emails) =
                consent_to_change(tx, &s, email, Some(&self.step.links), &from, now)?;
            self.emails += emails;
            return Ok(Ok((s, consent)));
        }
        let s = match apply_email(tx, &s, email, &mut self.out, now)? {
            Ok(next) => next,
            Err(r) => return Ok(Err(r)),
        };
        self.complete_activation(s, a)
    }

    /// The user consents: every other account holding the email moves to
    /// this subscriber, which is provisioned with it (or, for an active
    /// subscriber changing its address, takes it).
    fn consent(&mut self, s: SubscriberRecord, a: Activation) -> StepResult {
        let (tx, now) = (self.tx, self.step.now);
        if a.purpose != ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        // Touches the address's guard row first (PostgreSQL): a unit of
        // work taking the same address on another node conflicts with
        // this one instead of both committing.
        let address = match (a.changes_email(), &a.pending_email, &s.email) {
            (true, Some(e), _) | (false, _, Some(e)) => e.clone(),
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "subscriber '{}' waits for consent without an email",
                    s.id
                )))
            }
        };
        tx.email_taken(&address, Some(&s.id))?;
        if let (true, Some(email)) = (a.changes_email(), a.pending_email.clone()) {
            accounts::move_to(tx, &email, &s, &mut self.out, now)?;
            let s = match apply_email(tx, &s, &email, &mut self.out, now)? {
                Ok(next) => next,
                Err(r) => return Ok(Err(r)),
            };
            return self.complete_activation(s, a);
        }
        let Some(email) = s.email.clone() else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' waits for consent without an email",
                s.id
            )));
        };
        accounts::move_to(tx, &email, &s, &mut self.out, now)?;
        let s = provision_now(tx, s, &mut self.out, now)?;
        self.complete_activation(s, a)
    }

    /// The link is used up.
    fn complete_activation(&mut self, s: SubscriberRecord, mut a: Activation) -> StepResult {
        let (tx, now) = (self.tx, self.step.now);
        a.completed_at = Some(now);
        a.code_hash = None;
        tx.put_activation(&a, now)?;
        Ok(Ok((s, a)))
    }
}

/// Queues a refused placement's approval request.
pub(crate) fn queue_notification(
    tx: &dyn Tx,
    msg: Option<EmailMessage>,
    now: i64,
    emails: &mut usize,
) -> Result<(), StoreError> {
    if let Some(msg) = msg {
        if tx.enqueue_email(&msg, now)?.is_some() {
            *emails += 1;
        }
    }
    Ok(())
}

/// A ModifyUser changes an active subscriber's email to `new`. Returns
/// whether the change must wait (the account keeps its old address
/// meanwhile) and the emails written: with an untrusted template a code
/// goes to the new address first (an [`ActivationPurpose::EmailChange`]);
/// when another account holds it, its user's consent is asked there (a
/// consent carrying the new address). No two live subscribers ever hold
/// one address.
pub(crate) fn hold_email_change(
    tx: &dyn Tx,
    s: &SubscriberRecord,
    new: &str,
    template: &CustomerTemplate,
    links: Option<&ActivationLinks>,
    now: i64,
) -> Result<(bool, usize), StoreError> {
    let policy = links.map(|l| l.policy).unwrap_or_default();
    if template.settings.trusted_emails {
        if !accounts::held_elsewhere(tx, new, Some(&s.id), s.org_id.as_deref())? {
            return Ok((false, 0));
        }
        let (_, emails) = consent_to_change(tx, s, new, links, &template.settings, now)?;
        return Ok((true, emails));
    }
    let a = Activation::new(
        &s.id,
        ActivationPurpose::EmailChange,
        new_nonce(),
        now,
        &policy,
    );
    let Some(links) = links else {
        // No portal to confirm on: the change waits, visible to operators.
        tx.put_activation(
            &Activation {
                pending_email: Some(new.to_string()),
                ..a
            },
            now,
        )?;
        return Ok((true, 0));
    };
    let code = links.code_secret(&s.id, &a.nonce, 1);
    let code_hash = links.code_hash(&s.id, &code.reveal(&links.signer));
    let a = rules::submit_email(&a, new, code_hash, now, &links.policy)
        .map_err(|r| StoreError::Corrupt(format!("a new activation refused a code: {r}")))?;
    tx.put_activation(&a, now)?;
    let msg = links.code_email(new, s, &a, code, &template.settings);
    Ok((true, usize::from(tx.enqueue_email(&msg, now)?.is_some())))
}

/// Another account holds `new`, an active subscriber's new address: a
/// consent carrying it (older links stop working), asked at that address.
fn consent_to_change(
    tx: &dyn Tx,
    s: &SubscriberRecord,
    new: &str,
    links: Option<&ActivationLinks>,
    from: &TemplateSettings,
    now: i64,
) -> Result<(Activation, usize), StoreError> {
    let purpose = ActivationPurpose::ConsentMigration;
    begin(tx, s, purpose, Some(new), Some(new), links, from, now)
}

/// The subscriber takes `email` (a confirmed change): `UpdateSubscriber`
/// as for any modify.
fn apply_email(
    tx: &dyn Tx,
    s: &SubscriberRecord,
    email: &str,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<Result<SubscriberRecord, Rejection>, StoreError> {
    let user_id = s.user_id.clone().ok_or_else(|| incomplete(s, "user id"))?;
    let mut changes = crate::domain::subscriber::SubscriberChanges::only_ids(
        user_id,
        s.service_provider_id.clone().unwrap_or_default(),
        s.group_id.clone().unwrap_or_default(),
    );
    changes.email = Some(email.to_string());
    let (next, _) = match crate::domain::lifecycle::apply_changes(s, &changes, now) {
        Ok(done) => done,
        Err(r) => return Ok(Err(r)),
    };
    super::change::store_change(tx, s, &next, None, now, out)?;
    Ok(Ok(next))
}

/// What [`onboard`] did.
pub(crate) enum Onboarded {
    /// Provisioning (its command is written).
    Provisioning(SubscriberRecord),
    /// Another account holds the email: the subscriber waits for its
    /// user's consent (`emails` consent emails written).
    AwaitingConsent {
        subscriber: SubscriberRecord,
        emails: usize,
    },
}

/// The subscriber's email is one the gateway may rely on (trusted from
/// BroadWorks, or just verified): the enterprise's organization is settled
/// on it when still open (attach to an existing organization listing the
/// email, else the pending one is announced), then the subscriber is
/// provisioned with it, or waits for consent when another account holds
/// the email and it is not the first user of a new organization (who
/// takes it at once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn onboard(
    tx: &dyn Tx,
    mut s: SubscriberRecord,
    email: &str,
    template: &CustomerTemplate,
    approvals: Option<&ApprovalLinks>,
    links: Option<&ActivationLinks>,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<Result<Onboarded, Refused>, StoreError> {
    let key = s
        .enterprise_key
        .clone()
        .ok_or_else(|| incomplete(&s, "enterprise key"))?;
    let (org, first) =
        match placement::settle_first(tx, template, &key, email, approvals, out, now)? {
            Ok(placed) => placed,
            Err(refused) => return Ok(Err(refused)),
        };
    s.org_id = Some(org.id.clone());
    s.email = Some(email.to_string());
    let held = accounts::held_elsewhere(tx, email, Some(&s.id), Some(&org.id))?;
    if held && !first {
        let from = s.status;
        s.status = SubscriberStatus::PendingUserMigration;
        s.last_status_change = now;
        tx.update_subscriber(&s, now)?;
        super::events::subscriber_changed(tx, Some(from), None, &s, now)?;
        let emails = restart_as_consent(tx, &s, links, &template.settings, now)?;
        return Ok(Ok(Onboarded::AwaitingConsent {
            subscriber: s,
            emails,
        }));
    }
    if held {
        // The first user of a new organization takes the address at once.
        accounts::move_to(tx, email, &s, out, now)?;
    }
    Ok(Ok(Onboarded::Provisioning(provision_now(tx, s, out, now)?)))
}

/// The subscriber goes to `provisioning` (new version, errors cleared)
/// and its command is written (see [`admin::announce_provisioning`]).
pub(crate) fn provision_now(
    tx: &dyn Tx,
    mut s: SubscriberRecord,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<SubscriberRecord, StoreError> {
    let from = s.status;
    s.status = SubscriberStatus::Provisioning;
    s.errors.clear();
    s.version += 1;
    s.last_status_change = now;
    tx.update_subscriber(&s, now)?;
    super::events::subscriber_changed(tx, Some(from), None, &s, now)?;
    admin::announce_provisioning(tx, &s, out)?;
    Ok(s)
}

/// The settings of the subscriber's template (language, partner admin).
fn template_settings(tx: &dyn Tx, s: &SubscriberRecord) -> Result<TemplateSettings, StoreError> {
    Ok(tx
        .template(&s.provisioning_id)?
        .map(|t| t.settings)
        .unwrap_or_default())
}

fn wrong_page() -> Rejection {
    Rejection::new(
        ErrorCode::ActivationLinkInvalid,
        "this link is for another step of the activation",
    )
}

/// What an admin's (or the user's) "retry activation" did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub subscriber: SubscriberRecord,
    /// The new link's activation; `None` when the subscriber was
    /// provisioned again at once (a trusted email, see [`retry`]).
    pub activation: Option<Activation>,
    pub emails_enqueued: usize,
    pub commands_written: usize,
}

/// "Retry activation" (Partner Hub's action, the operators' route, and a
/// user in `error` signing in on the portal): for a user still waiting,
/// a new link ([`renew`]); for a user in `error`, the activation starts
/// again — with trusted emails the subscriber is provisioned again with
/// `email` (or the address on record; another account holding it means
/// consent), else a new activation link goes to that address and the
/// user verifies an address again. `send_email` off: the caller shows the
/// link itself (the user is on the portal).
pub(crate) fn retry(
    tx: &dyn Tx,
    links: &ActivationLinks,
    subscriber_id: &str,
    email: Option<String>,
    send_email: bool,
    now: i64,
) -> Result<Result<Retry, Rejection>, StoreError> {
    let Some(mut s) = tx.subscriber_by_id(subscriber_id)? else {
        return Ok(Err(Rejection::new(
            ErrorCode::NotFound,
            "no such subscriber",
        )));
    };
    if tx
        .template(&s.provisioning_id)?
        .is_some_and(|t| t.is_disabled())
    {
        return Ok(Err(template_disabled()));
    }
    if s.status != SubscriberStatus::Error {
        return Ok(renew(tx, links, subscriber_id, email, now)?.map(|v| Retry {
            subscriber: v.subscriber,
            activation: Some(v.activation),
            emails_enqueued: v.emails_enqueued,
            commands_written: v.commands_written,
        }));
    }
    let template =
        tx.template(&s.provisioning_id)?
            .ok_or_else(|| StoreError::MissingReference {
                entity: "template",
                id: s.provisioning_id.clone(),
            })?;
    let tracking_id = format!("BWG_RETRY_{}", super::new_id());
    let mut out = Emitter::new(tx, &tracking_id, "retry", now);
    // The license core knows a failed subscriber (it was sent to it):
    // it is provisioned again, never sent back to a pending status (that
    // would lose track of what the core holds). A new address is taken at
    // once when it may be (trusted, held by nobody else), else it waits
    // like a ModifyUser's email change (a code, or the holder's consent).
    if s.email.is_none() && email.is_none() {
        return Ok(Err(Rejection::new(
            ErrorCode::MissingParameter,
            "no address on record: give the address to provision with (field: email)",
        )));
    }
    let new_address = email.filter(|e| s.email.as_deref() != Some(e.as_str()));
    let mut hold = None;
    if let Some(new) = new_address {
        let free = template.settings.trusted_emails
            && !accounts::held_elsewhere(tx, &new, Some(&s.id), s.org_id.as_deref())?;
        if free || s.email.is_none() {
            s.email = Some(new);
        } else {
            hold = Some(new);
        }
    }
    let s = provision_now(tx, s, &mut out, now)?;
    let mut emails = 0;
    if let Some(new) = hold {
        let links = send_email.then_some(links);
        let (held, sent) = hold_email_change(tx, &s, &new, &template, links, now)?;
        emails += sent;
        debug_assert!(held, "a held address is held");
    }
    let activation = tx
        .activation(&s.id)?
        .filter(|a| a.completed_at.is_none() && a.changes_email());
    Ok(Ok(Retry {
        subscriber: s,
        activation,
        emails_enqueued: emails,
        commands_written: out.written,
    }))
}

pub(crate) fn renew(
    tx: &dyn Tx,
    links: &ActivationLinks,
    subscriber_id: &str,
    email: Option<String>,
    now: i64,
) -> Result<Result<ActivationView, Rejection>, StoreError> {
    let Some(mut s) = tx.subscriber_by_id(subscriber_id)? else {
        return Ok(Err(Rejection::new(
            ErrorCode::NotFound,
            "no such subscriber",
        )));
    };
    if !s.status.is_pending_user() {
        return Ok(Err(Rejection::new(
            ErrorCode::WrongState,
            format!(
                "the subscriber is {} and does not wait for activation (only waiting or failed users can be retried)",
                s.status.as_str()
            ),
        )));
    }
    let consent = s.status == SubscriberStatus::PendingUserMigration;
    if consent && email.is_some() {
        return Ok(Err(Rejection::new(
            ErrorCode::WrongState,
            "a consent goes to the address on record; resend it without an email",
        )));
    }
    let a = match tx.activation(&s.id)? {
        Some(old) => old.renewed(new_nonce(), now, &links.policy),
        None => {
            let purpose = if consent {
                ActivationPurpose::ConsentMigration
            } else {
                ActivationPurpose::EmailInput
            };
            Activation::new(&s.id, purpose, new_nonce(), now, &links.policy)
        }
    };
    let a = Activation {
        pending_email: email.clone(),
        ..a
    };
    tx.put_activation(&a, now)?;
    if s.status == SubscriberStatus::PendingEmailValidation {
        // The old code died with the old link: the user starts again.
        s.status = SubscriberStatus::PendingEmailInput;
        s.last_status_change = now;
        tx.update_subscriber(&s, now)?;
        super::events::subscriber_changed(
            tx,
            Some(SubscriberStatus::PendingEmailValidation),
            None,
            &s,
            now,
        )?;
    }
    let emails = match email.as_ref().or(s.email.as_ref()) {
        Some(to) => send_link(tx, links, &s, &a, to, &template_settings(tx, &s)?, now)?,
        None => 0,
    };
    Ok(Ok(ActivationView {
        subscriber: s,
        activation: a,
        emails_enqueued: emails,
        commands_written: 0,
    }))
}
