//! One email to send: why ([`EmailKind`]), to whom, and what to say
//! ([`EmailIntent`]).

use serde::{Deserialize, Serialize};

use super::address::normalize_email;
use super::intent::{EmailIntent, PlainMessage};

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
    /// A device's (Webex Go's) activation code.
    DeviceActivationCode,
}

impl EmailKind {
    pub const ALL: [EmailKind; 7] = [
        EmailKind::ActivationLink,
        EmailKind::VerificationCode,
        EmailKind::ConsentMigration,
        EmailKind::OrgAttachApproval,
        EmailKind::Welcome,
        EmailKind::Test,
        EmailKind::DeviceActivationCode,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EmailKind::ActivationLink => "activation_link",
            EmailKind::VerificationCode => "verification_code",
            EmailKind::ConsentMigration => "consent_migration",
            EmailKind::OrgAttachApproval => "org_attach_approval",
            EmailKind::Welcome => "welcome",
            EmailKind::Test => "test",
            EmailKind::DeviceActivationCode => "device_activation_code",
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
        if self
            .intent
            .subject_input()
            .is_some_and(|words| words.contains(['\r', '\n']))
        {
            return Err(InvalidMessage::MultiLineSubject);
        }
        Ok(())
    }
}
