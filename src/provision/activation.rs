//! The activation portal's use cases: starting an activation for a new
//! pending subscriber (inside `accept`), the user's steps (email, code,
//! consent) and an admin's renewal. The decisions are
//! `domain::activation`'s; each step commits together with the emails and
//! commands it causes.

use std::sync::Arc;

use crate::activation::ActivationLinks;
use crate::commands::Command;
use crate::domain::activation::{self as rules, Activation, ActivationPurpose, CodeCheck};
use crate::domain::lifecycle::{self, Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::{ErrorCode, TemplateSettings};
use crate::links::Reveal;
use crate::store::tx::Tx;
use crate::store::{ActivationView, StoreError};

use super::change::sent_to_core;
use super::emit::Emitter;

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
    let policy = links.map(|l| l.policy).unwrap_or_default();
    let activation = Activation::new(&record.id, purpose, new_nonce(), now, &policy);
    tx.put_activation(&activation, now)?;
    match (links, &record.email) {
        (Some(links), Some(to)) => send_link(tx, links, record, &activation, to, from, now),
        _ => Ok(0),
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
    let policy = links.map(|l| l.policy).unwrap_or_default();
    let activation = Activation::new(
        &record.id,
        ActivationPurpose::ConsentMigration,
        new_nonce(),
        now,
        &policy,
    );
    tx.put_activation(&activation, now)?;
    match (links, &record.email) {
        (Some(links), Some(to)) => send_link(tx, links, record, &activation, to, from, now),
        _ => Ok(0),
    }
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

fn email_in_use() -> Rejection {
    Rejection::new(
        ErrorCode::InvalidEmail,
        "this email address already belongs to another account; use another address",
    )
}

pub(crate) fn step(
    tx: &dyn Tx,
    step: &ActivationStep,
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
    emails: usize,
    /// The step's commands (`{trackingId}:activation:{n}`).
    out: Emitter<'a>,
}

impl Run<'_> {
    fn submit_email(&mut self, mut s: SubscriberRecord, a: Activation, email: &str) -> StepResult {
        let (tx, links, now) = (self.tx, &self.step.links, self.step.now);
        if a.purpose == ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        if tx.email_taken(email, Some(&s.id))? {
            return Ok(Err(email_in_use()));
        }
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
            s.status = SubscriberStatus::PendingEmailValidation;
            s.last_status_change = now;
            tx.update_subscriber(&s, now)?;
        }
        let from = template_settings(tx, &s)?;
        let msg = links.code_email(email, &s, &next, code, &from);
        if tx.enqueue_email(&msg, now)?.is_some() {
            self.emails += 1;
        }
        Ok(Ok((s, next)))
    }

    fn verify(&mut self, s: SubscriberRecord, a: Activation, code: &str) -> StepResult {
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
        if tx.email_taken(&email, Some(&s.id))? {
            return Ok(Err(email_in_use()));
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
        self.finish(s, a, Some(email))
    }

    /// The user consents: every other account holding the email is removed
    /// and this subscriber is provisioned with it.
    fn consent(&mut self, s: SubscriberRecord, a: Activation) -> StepResult {
        let (tx, now) = (self.tx, self.step.now);
        if a.purpose != ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        let Some(email) = s.email.clone() else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' waits for consent without an email",
                s.id
            )));
        };
        for old in tx.subscribers_with_email(&email, &s.id)? {
            let removed = lifecycle::partial_delete(&old, now);
            tx.update_subscriber(&removed, now)?;
            // Every removal is a normalized command, in this transaction:
            // the core revokes what it granted, or forgets a subscriber it
            // never provisioned (one still waiting, like a detach's).
            let (Some(org_id), Some(key)) = (&old.org_id, &old.enterprise_key) else {
                // No organization: nothing the core could key a command on.
                tracing::warn!(subscriber_id = %old.id, "removed by a consent without an organization: no command");
                continue;
            };
            let (subscriber_id, org_id, subscriber_version) =
                (removed.id.clone(), org_id.clone(), removed.version);
            let command = if sent_to_core(old.status) {
                Command::RemoveSubscriber {
                    subscriber_id,
                    org_id,
                    subscriber_version,
                }
            } else {
                Command::DiscardPendingSubscriber {
                    subscriber_id,
                    org_id,
                    subscriber_version,
                }
            };
            self.out.emit(key, command)?;
        }
        self.finish(s, a, None)
    }

    /// Provisions the subscriber (with `email` when one was verified) and
    /// uses the link up.
    fn finish(
        &mut self,
        mut s: SubscriberRecord,
        mut a: Activation,
        email: Option<String>,
    ) -> StepResult {
        let (tx, now) = (self.tx, self.step.now);
        if let Some(email) = email {
            s.email = Some(email);
        }
        s.status = SubscriberStatus::Provisioning;
        s.errors.clear();
        s.version += 1;
        s.last_status_change = now;
        if a.purpose == ActivationPurpose::SelfActivation {
            s.self_activated = true;
        }
        tx.update_subscriber(&s, now)?;
        if let Some(org_id) = &s.org_id {
            claim_org_admin(tx, org_id, &s.id)?;
        }
        a.completed_at = Some(now);
        a.code_hash = None;
        tx.put_activation(&a, now)?;
        let (Some(command), Some(key)) = (Command::provision(&s), s.enterprise_key.clone()) else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' has no user id, enterprise or organization",
                s.id
            )));
        };
        self.out.emit(&key, command)?;
        Ok(Ok((s, a)))
    }
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

/// The subscriber becomes the organization's admin when it has none (a
/// created organization), or when its admin was removed: a deleted admin
/// must not leave the other users waiting for good (9028).
pub(crate) fn claim_org_admin(
    tx: &dyn Tx,
    org_id: &str,
    subscriber_id: &str,
) -> Result<(), StoreError> {
    match tx.org_admin(org_id)? {
        Some((admin, SubscriberStatus::Removed)) if admin != subscriber_id => {
            tx.replace_org_admin(org_id, &admin, subscriber_id)
        }
        _ => tx.set_org_admin_if_unset(org_id, subscriber_id),
    }
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
                "the subscriber is {} and does not wait for activation",
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
