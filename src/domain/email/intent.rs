//! Email intents: what a flow records when something is to be mailed (the
//! kind's parameters and how to make each link or code, never the words nor
//! a secret), in the same transaction as the state change it follows from.
//! `notify` composes the message from it when it sends. Stored as
//! [`StoredIntent`] JSON (versioned) in `emails.intent_json`.

use serde::{Deserialize, Serialize};

use super::secret::MailSecret;
use crate::domain::activation::ActivationPurpose;

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
    /// `device_activation_code`.
    DeviceCode(DeviceCodeIntent),
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

impl EmailIntent {
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

    /// The words given by the flow that the composed Subject header
    /// carries; the composers (`notify::intent`) put only fixed texts and
    /// placeholders around them, so these alone can make it more than one
    /// line (a test there holds the composers to this).
    pub fn subject_input(&self) -> Option<&str> {
        match self {
            EmailIntent::Plain(p) => Some(&p.subject),
            EmailIntent::OrgAttachApproval(a) => Some(&a.org_name),
            EmailIntent::ActivationLink(_)
            | EmailIntent::VerificationCode(_)
            | EmailIntent::DeviceCode(_) => None,
        }
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

/// An activation or consent link email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkIntent {
    /// `server.portal_public_url` (or the portal address) when queued.
    pub portal_base: String,
    /// The template's `email_language`.
    pub language: String,
    pub first_name: String,
    pub last_name: String,
    /// The address the message goes to (named in the consent text).
    pub to: String,
    pub purpose: ActivationPurpose,
    /// When the link stops working (unix ms), for the text.
    pub link_expires_at: i64,
    pub contact: Contact,
    /// How to make the link's token.
    pub token: MailSecret,
}

/// A verification code email, with a link that fills the code in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeIntent {
    pub portal_base: String,
    pub language: String,
    pub to: String,
    /// How long the code works, for the text.
    pub code_ttl_minutes: i64,
    pub contact: Contact,
    /// How to make the activation link's token and the code.
    pub token: MailSecret,
    pub code: MailSecret,
}

/// The org-attach approval request (to at most five admins of the
/// organization).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalIntent {
    /// `server.portal_public_url` (or the portal address) when queued.
    pub portal_base: String,
    pub org_name: String,
    pub partner_id: String,
    /// The template's partner admin, named as the admin to approve.
    pub partner_admin_name: Option<String>,
    pub partner_admin_email: Option<String>,
    /// How to make the approval link's token.
    pub token: MailSecret,
}

/// A device's activation code (Webex Go, or a phone registering to Webex
/// Calling).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCodeIntent {
    /// The template's `email_language`.
    pub language: String,
    pub first_name: String,
    pub last_name: String,
    pub to: String,
    /// BroadWorks' `deviceType`, as sent.
    pub device_type: Option<String>,
    /// When the code stops working (unix ms), for the text.
    pub expires_at: i64,
    pub contact: Contact,
    /// How to make the code.
    pub code: MailSecret,
}
