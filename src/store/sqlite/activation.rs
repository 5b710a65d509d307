//! The activation portal's transactions: starting an activation for a new
//! pending subscriber (inside `accept`), the user's steps (email, code,
//! consent) and an admin's renewal. The decisions are
//! `domain::activation`'s; each step commits together with the emails and
//! commands it causes.

use rusqlite::{params, Connection, OptionalExtension};

use super::email;
use super::provisioning::{sent_to_core, write_command};
use super::subscribers;
use super::tenancy;
use crate::activation::ActivationLinks;
use crate::commands::{Command, CommandEnvelope, COMMAND_VERSION};
use crate::domain::activation::{self as rules, Activation, ActivationPurpose, CodeCheck};
use crate::domain::lifecycle::{self, Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::{ErrorCode, TemplateSettings};
use crate::links::Reveal;
use crate::store::{ActivationAction, ActivationStep, ActivationView, StoreError};

const COLUMNS: &str = "subscriber_id, purpose, nonce, link_expires_at, pending_email, code_hash,
     code_expires_at, code_attempts, codes_sent, locked_until, completed_at, created_at";

pub(super) fn get(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Option<Activation>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM activations WHERE subscriber_id = ?1"
        ))?
        .query_row([subscriber_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, u32>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<i64>>(10)?,
                r.get::<_, i64>(11)?,
            ))
        })
        .optional()?;
    let Some((id, purpose, nonce, link_exp, pending, hash, code_exp, tries, sent, lock, done, at)) =
        row
    else {
        return Ok(None);
    };
    let purpose = ActivationPurpose::parse(&purpose).ok_or_else(|| {
        StoreError::Corrupt(format!("activation of '{id}' has purpose '{purpose}'"))
    })?;
    Ok(Some(Activation {
        subscriber_id: id,
        purpose,
        nonce,
        link_expires_at: link_exp,
        pending_email: pending,
        code_hash: hash,
        code_expires_at: code_exp,
        code_attempts: tries,
        codes_sent: sent,
        locked_until: lock,
        completed_at: done,
        created_at: at,
    }))
}

fn put(conn: &Connection, a: &Activation, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO activations (subscriber_id, purpose, nonce, link_expires_at, pending_email,
                                  code_hash, code_expires_at, code_attempts, codes_sent,
                                  locked_until, completed_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (subscriber_id) DO UPDATE SET
             purpose = ?2, nonce = ?3, link_expires_at = ?4, pending_email = ?5,
             code_hash = ?6, code_expires_at = ?7, code_attempts = ?8, codes_sent = ?9,
             locked_until = ?10, completed_at = ?11, updated_at = ?13",
    )?
    .execute(params![
        a.subscriber_id,
        a.purpose.as_str(),
        a.nonce,
        a.link_expires_at,
        a.pending_email,
        a.code_hash,
        a.code_expires_at,
        a.code_attempts,
        a.codes_sent,
        a.locked_until,
        a.completed_at,
        a.created_at,
        now
    ])?;
    Ok(())
}

fn new_nonce() -> String {
    crate::links::random_token(16)
}

/// Starts the activation of a subscriber that `accept` just created in a
/// pending status, with its first email when there is an address to send
/// it to. Returns the number of emails written.
pub(super) fn start(
    conn: &Connection,
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
    put(conn, &activation, now)?;
    match (links, &record.email) {
        (Some(links), Some(to)) => send_link(conn, links, record, &activation, to, from, now),
        _ => Ok(0),
    }
}

/// The subscriber's email turned out to belong to another account: its
/// activation becomes a consent (new link, older links stop working), with
/// the consent email. Returns the number of emails written.
pub(super) fn restart_as_consent(
    conn: &Connection,
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
    put(conn, &activation, now)?;
    match (links, &record.email) {
        (Some(links), Some(to)) => send_link(conn, links, record, &activation, to, from, now),
        _ => Ok(0),
    }
}

/// The flow ended another way (the AS sent a trusted email): the link is
/// used up.
pub(super) fn complete(conn: &Connection, subscriber_id: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE activations SET completed_at = ?2, code_hash = NULL, updated_at = ?2
         WHERE subscriber_id = ?1 AND completed_at IS NULL",
    )?
    .execute(params![subscriber_id, now])?;
    Ok(())
}

/// The activation or consent email for the activation's current link.
fn send_link(
    conn: &Connection,
    links: &ActivationLinks,
    s: &SubscriberRecord,
    a: &Activation,
    to: &str,
    from: &TemplateSettings,
    now: i64,
) -> Result<usize, StoreError> {
    let msg = links.link_email(to, s, a, from);
    Ok(usize::from(
        email::enqueue_email(conn, &msg, now)?.is_some(),
    ))
}

pub(super) fn view(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Option<ActivationView>, StoreError> {
    let Some(subscriber) = subscribers::subscriber_by_id(conn, subscriber_id)? else {
        return Ok(None);
    };
    Ok(get(conn, subscriber_id)?.map(|activation| ActivationView {
        subscriber,
        activation,
        emails_enqueued: 0,
        commands_written: 0,
    }))
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

pub(super) fn step(
    conn: &Connection,
    step: &ActivationStep,
) -> Result<Result<ActivationView, Rejection>, StoreError> {
    let id = step.claim.subscriber_id.as_str();
    let (Some(subscriber), Some(activation)) =
        (subscribers::subscriber_by_id(conn, id)?, get(conn, id)?)
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
    let mut run = Run {
        conn,
        step,
        emails: 0,
        commands: 0,
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
        commands_written: run.commands,
    }))
}

type StepResult = Result<Result<(SubscriberRecord, Activation), Rejection>, StoreError>;

struct Run<'a> {
    conn: &'a Connection,
    step: &'a ActivationStep,
    emails: usize,
    commands: usize,
}

impl Run<'_> {
    fn submit_email(&mut self, mut s: SubscriberRecord, a: Activation, email: &str) -> StepResult {
        let (conn, links, now) = (self.conn, &self.step.links, self.step.now);
        if a.purpose == ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        if subscribers::email_taken(conn, email, Some(&s.id))? {
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
        put(conn, &next, now)?;
        if s.status != SubscriberStatus::PendingEmailValidation {
            s.status = SubscriberStatus::PendingEmailValidation;
            s.last_status_change = now;
            subscribers::update_subscriber(conn, &s, now)?;
        }
        let from = template_settings(conn, &s)?;
        let msg = links.code_email(email, &s, &next, code, &from);
        if email::enqueue_email(conn, &msg, now)?.is_some() {
            self.emails += 1;
        }
        Ok(Ok((s, next)))
    }

    fn verify(&mut self, s: SubscriberRecord, a: Activation, code: &str) -> StepResult {
        let (conn, links, now) = (self.conn, &self.step.links, self.step.now);
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
                put(conn, &activation, now)?;
                return Ok(Err(rejection));
            }
            Ok(CodeCheck::Verified { email }) => email,
        };
        if subscribers::email_taken(conn, &email, Some(&s.id))? {
            return Ok(Err(email_in_use()));
        }
        let template = tenancy::template(conn, &s.provisioning_id)?.ok_or_else(|| {
            StoreError::MissingReference {
                entity: "template",
                id: s.provisioning_id.clone(),
            }
        })?;
        let admin = match &s.org_id {
            Some(org_id) => org_admin(conn, org_id)?,
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
        let (conn, now) = (self.conn, self.step.now);
        if a.purpose != ActivationPurpose::ConsentMigration {
            return Ok(Err(wrong_page()));
        }
        let Some(email) = s.email.clone() else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' waits for consent without an email",
                s.id
            )));
        };
        for old in others_with_email(conn, &email, &s.id)? {
            let removed = lifecycle::partial_delete(&old, now);
            subscribers::update_subscriber(conn, &removed, now)?;
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
            self.emit(key, command)?;
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
        let (conn, now) = (self.conn, self.step.now);
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
        subscribers::update_subscriber(conn, &s, now)?;
        if let Some(org_id) = &s.org_id {
            claim_org_admin(conn, org_id, &s.id)?;
        }
        a.completed_at = Some(now);
        a.code_hash = None;
        put(conn, &a, now)?;
        let (Some(command), Some(key)) = (Command::provision(&s), s.enterprise_key.clone()) else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' has no user id, enterprise or organization",
                s.id
            )));
        };
        self.emit(&key, command)?;
        Ok(Ok((s, a)))
    }

    fn emit(
        &mut self,
        key: &crate::domain::ids::EnterpriseKey,
        command: Command,
    ) -> Result<(), StoreError> {
        let step = self.step;
        let envelope = CommandEnvelope {
            version: COMMAND_VERSION,
            idempotency_key: format!("{}:activation:{}", step.tracking_id, self.commands),
            enterprise_key: key.clone(),
            tracking_id: step.tracking_id.clone(),
            issued_at: step.now,
            command,
        };
        write_command(self.conn, &envelope)?;
        self.commands += 1;
        Ok(())
    }
}

/// The settings of the subscriber's template (language, partner admin).
fn template_settings(
    conn: &Connection,
    s: &SubscriberRecord,
) -> Result<TemplateSettings, StoreError> {
    Ok(tenancy::template(conn, &s.provisioning_id)?
        .map(|t| t.settings)
        .unwrap_or_default())
}

fn wrong_page() -> Rejection {
    Rejection::new(
        ErrorCode::ActivationLinkInvalid,
        "this link is for another step of the activation",
    )
}

fn others_with_email(
    conn: &Connection,
    email: &str,
    except_id: &str,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM subscribers
             WHERE email = ?1 COLLATE NOCASE AND status <> 'removed' AND id <> ?2",
        )?
        .query_map(params![email, except_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = subscribers::subscriber_by_id(conn, &id)? {
            out.push(s);
        }
    }
    Ok(out)
}

/// The organization's admin subscriber and its status, if it has one.
fn org_admin(
    conn: &Connection,
    org_id: &str,
) -> Result<Option<(String, SubscriberStatus)>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT s.id, s.status FROM organizations o
             JOIN subscribers s ON s.id = o.admin_subscriber_id
             WHERE o.id = ?1",
        )?
        .query_row([org_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(id, status)| {
        SubscriberStatus::parse(&status)
            .map(|st| (id.clone(), st))
            .ok_or_else(|| StoreError::Corrupt(format!("subscriber '{id}' has status '{status}'")))
    })
    .transpose()
}

/// Makes `subscriber_id` the admin of a created organization that has none
/// yet. Attached organizations never get one: their first user is not made
/// admin.
pub(super) fn claim_org_admin(
    conn: &Connection,
    org_id: &str,
    subscriber_id: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE organizations SET admin_subscriber_id = ?2
         WHERE id = ?1 AND origin = 'created' AND admin_subscriber_id IS NULL",
    )?
    .execute([org_id, subscriber_id])?;
    Ok(())
}

pub(super) fn renew(
    conn: &Connection,
    links: &ActivationLinks,
    subscriber_id: &str,
    email: Option<String>,
    now: i64,
) -> Result<Result<ActivationView, Rejection>, StoreError> {
    let Some(mut s) = subscribers::subscriber_by_id(conn, subscriber_id)? else {
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
    let a = match get(conn, &s.id)? {
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
    put(conn, &a, now)?;
    if s.status == SubscriberStatus::PendingEmailValidation {
        // The old code died with the old link: the user starts again.
        s.status = SubscriberStatus::PendingEmailInput;
        s.last_status_change = now;
        subscribers::update_subscriber(conn, &s, now)?;
    }
    let emails = match email.as_ref().or(s.email.as_ref()) {
        Some(to) => send_link(conn, links, &s, &a, to, &template_settings(conn, &s)?, now)?,
        None => 0,
    };
    Ok(Ok(ActivationView {
        subscriber: s,
        activation: a,
        emails_enqueued: emails,
        commands_written: 0,
    }))
}
