//! Email: a durable outbox and its delivery (DESIGN.md, "Domain rules":
//! activation links, verification codes, consent-migration mails and org
//! attach approval notifications all go through here).
//!
//! * Flows build an [`EmailMessage`] holding an [`EmailIntent`] (what to
//!   send: the kind's parameters, `intent/`) and hand it to [`Mailer::send`], which
//!   writes it to the store's email outbox (`Store::enqueue_email`) and wakes
//!   the delivery worker. Code that must send "if and only if" a state change
//!   commits writes the row in the same transaction instead (the SQLite
//!   helper `store::sqlite::email::enqueue_email` takes a `&Connection`) and
//!   then calls [`Mailer::wake`].
//! * The worker ([`spawn_mailer`], `worker.rs`) delivers every due message at
//!   least once: a permanent SMTP refusal (5xx) fails it, a transient one
//!   (4xx, connection or TLS trouble, timeouts) retries with capped
//!   exponential backoff until `smtp.give_up_after_secs`.
//! * The store keeps the intent and never composes: the worker composes
//!   subject and bodies when it sends ([`EmailIntent::draft`]), with a
//!   placeholder for each link token and code and how to make them
//!   (`secrets.rs`), then makes them with the server key. Nothing secret
//!   is stored.
//! * Messages are built with lettre's builder (`compose.rs`); a
//!   [`MailTransport`] (`transport.rs`) sends them: SMTP through a relay
//!   (`[smtp] host`), or, when no relay is configured, a spool of `.eml`
//!   files under `{data_dir}/mail/`.

pub mod admin;
mod compose;
pub mod intent;
pub mod secrets;
mod transport;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::domain::email::normalize_email;
use crate::store::{SharedStore, StoreError};

pub use crate::store::{EmailFilter, EmailOutcome, EmailRecord, EmailState};
pub use compose::{compose, ComposeError, Sender};
pub use intent::{
    ApprovalIntent, CodeIntent, Contact, Draft, EmailIntent, LinkIntent, PlainMessage,
};
pub use secrets::MailSecret;
pub use transport::{
    transport_from_config, MailTransport, SendError, SmtpTransport, SpoolTransport, TransportError,
    SPOOL_DIR,
};
pub use worker::{deliver_due, spawn_mailer, DeliveryPolicy};

/// Why a message is sent. Stored as [`EmailKind::as_str`]; also the `kind`
/// label of the email metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// Untrusted-email flow: the link to the activation portal.
    ActivationLink,
    /// A code (or link) confirming that the user owns an email address.
    VerificationCode,
    /// Trusted-email flow: the email already belongs to another account;
    /// asks the user to consent to moving it.
    ConsentMigration,
    /// Org attach needs approval: to at most five admins of the organization.
    OrgAttachApproval,
    /// The subscriber was provisioned (welcome).
    Welcome,
    /// An operator's relay check (`POST /admin/v1/emails/test`).
    Test,
}

impl EmailKind {
    pub const ALL: [EmailKind; 6] = [
        EmailKind::ActivationLink,
        EmailKind::VerificationCode,
        EmailKind::ConsentMigration,
        EmailKind::OrgAttachApproval,
        EmailKind::Welcome,
        EmailKind::Test,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EmailKind::ActivationLink => "activation_link",
            EmailKind::VerificationCode => "verification_code",
            EmailKind::ConsentMigration => "consent_migration",
            EmailKind::OrgAttachApproval => "org_attach_approval",
            EmailKind::Welcome => "welcome",
            EmailKind::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EmailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One email to send. The From address and name come from `[smtp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailMessage {
    /// Recipients (`To`), at least one.
    pub to: Vec<String>,
    pub kind: EmailKind,
    /// The subscriber the message is about (read-back by subscriber).
    pub subscriber_id: Option<String>,
    /// A second message with the same key is not enqueued: `enqueue_email`
    /// returns `None` for it (e.g. `activation:{subscriberId}:{version}`).
    pub dedupe_key: Option<String>,
    /// What to say: composed by the mailer when it sends.
    pub intent: EmailIntent,
}

/// Why [`EmailMessage::validate`] refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    #[error("a message needs at least one recipient")]
    NoRecipients,
    #[error("recipient '{address}': {reason}")]
    BadRecipient { address: String, reason: String },
    #[error("the subject must be one line")]
    MultiLineSubject,
}

impl EmailMessage {
    /// A plain-text message without subscriber or dedupe key.
    pub fn new(
        kind: EmailKind,
        to: impl IntoIterator<Item = impl Into<String>>,
        subject: impl Into<String>,
        text_body: impl Into<String>,
    ) -> EmailMessage {
        EmailMessage {
            to: to.into_iter().map(Into::into).collect(),
            kind,
            subscriber_id: None,
            dedupe_key: None,
            intent: EmailIntent::Plain(PlainMessage {
                subject: subject.into(),
                text_body: text_body.into(),
                html_body: None,
                secrets: Vec::new(),
            }),
        }
    }

    /// The words with placeholders for the secrets ([`EmailIntent::draft`]).
    pub fn draft(&self) -> Draft {
        self.intent.draft()
    }

    /// Checks what the worker would otherwise refuse at delivery (a
    /// message that cannot be composed fails permanently there). Callers
    /// taking addresses from users check first and answer with an error.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        if self.to.is_empty() {
            return Err(InvalidMessage::NoRecipients);
        }
        for address in &self.to {
            if let Err(e) = normalize_email(address) {
                return Err(InvalidMessage::BadRecipient {
                    address: address.clone(),
                    reason: e.to_string(),
                });
            }
        }
        if self.draft().subject.contains(['\r', '\n']) {
            return Err(InvalidMessage::MultiLineSubject);
        }
        Ok(())
    }
}

/// The handle flows call: enqueue durably, then wake the delivery worker.
pub struct Mailer {
    store: SharedStore,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(store: SharedStore, wake: Arc<Notify>) -> Arc<Mailer> {
        Arc::new(Mailer { store, wake })
    }

    /// Writes `msg` to the email outbox and wakes the worker. Returns the
    /// email id once it is committed (so it will be delivered, even across a
    /// crash), or `None` when a message with the same `dedupe_key` was
    /// enqueued before (nothing is written). The message is not checked
    /// here: see [`EmailMessage::validate`].
    pub async fn send(&self, msg: EmailMessage) -> Result<Option<i64>, StoreError> {
        let id = self
            .store
            .enqueue_email(&msg, crate::domain::now_millis())
            .await?;
        if id.is_some() {
            self.wake.notify_one();
        }
        Ok(id)
    }

    /// Wakes the worker after messages were enqueued another way (in the
    /// same transaction as a state change).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The worker's wake-up, for `spawn_mailer`.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }
}
