//! Email intents: what a flow records when something is to be mailed (the
//! kind's parameters and how to make each link or code, never the words nor
//! a secret), in the same transaction as the state change it follows from.
//! The mailer composes the message from it when it sends ([`Draft`], then
//! `secrets::fill` with the server key). Stored as [`StoredIntent`] JSON
//! (versioned) in `emails.intent_json`.

mod activation;
mod approval;

use serde::{Deserialize, Serialize};

pub use activation::{CodeIntent, LinkIntent};
pub use approval::ApprovalIntent;

use super::MailSecret;

/// Version of the stored intent JSON; a row with another is refused.
pub const INTENT_VERSION: u32 = 1;

/// What to send, one variant per composer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EmailIntent {
    /// Activation portal or consent link (`activation_link`,
    /// `consent_migration`).
    ActivationLink(LinkIntent),
    /// `verification_code`.
    VerificationCode(CodeIntent),
    /// `org_attach_approval`.
    OrgAttachApproval(ApprovalIntent),
    /// Words given as they are: an operator's test message, and every row
    /// queued before intents (migration 0010), which keeps its stored
    /// wording with placeholders and `secrets_json`.
    Plain(PlainMessage),
}

/// A message whose words are fixed when queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlainMessage {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    /// Secrets whose placeholders the words hold (rows from before 0010).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<MailSecret>,
}

/// The stored form: the intent and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIntent {
    pub v: u32,
    #[serde(flatten)]
    pub intent: EmailIntent,
}

/// A composed message before its secrets are made: subject and bodies hold
/// a placeholder for each of `secrets` (`secrets::placeholder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub secrets: Vec<MailSecret>,
}

impl EmailIntent {
    /// The words, with placeholders for the secrets. Safe to show (the
    /// admin read-back shows the subject): no secret is made here.
    pub fn draft(&self) -> Draft {
        match self {
            EmailIntent::ActivationLink(i) => i.draft(),
            EmailIntent::VerificationCode(i) => i.draft(),
            EmailIntent::OrgAttachApproval(i) => i.draft(),
            EmailIntent::Plain(p) => Draft {
                subject: p.subject.clone(),
                text_body: p.text_body.clone(),
                html_body: p.html_body.clone(),
                secrets: p.secrets.clone(),
            },
        }
    }

    /// The JSON stored in `emails.intent_json`.
    pub fn to_stored_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(&StoredIntent {
            v: INTENT_VERSION,
            intent: self.clone(),
        })
    }

    /// Reads `emails.intent_json`; refuses another version.
    pub fn from_stored_json(json: &str) -> Result<EmailIntent, String> {
        let stored: StoredIntent = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if stored.v != INTENT_VERSION {
            return Err(format!(
                "intent version {} (this build reads {INTENT_VERSION})",
                stored.v
            ));
        }
        Ok(stored.intent)
    }
}

/// The partner admin a flow's email names as the contact (from the
/// template).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub partner_admin_name: Option<String>,
    pub partner_admin_email: Option<String>,
}

#[cfg(test)]
mod tests;
