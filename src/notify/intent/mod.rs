//! Composing email intents: what a flow records (the data types are
//! `domain::email`'s: the kind's parameters and how to make each link or
//! code, never the words nor a secret) becomes words here when the mailer
//! sends ([`Draft`], then `secrets::fill` with the server key).

mod activation;
mod approval;
mod device;

pub use crate::domain::email::{
    ApprovalIntent, CodeIntent, Contact, DeviceCodeIntent, EmailIntent, LinkIntent, PlainMessage,
    StoredIntent, INTENT_VERSION,
};

use super::{EmailMessage, MailSecret};

/// A composed message before its secrets are made: subject and bodies hold
/// a placeholder for each of `secrets` (`secrets::placeholder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub secrets: Vec<MailSecret>,
}

/// The words of an intent, with placeholders for the secrets. Safe to
/// show (the admin read-back shows the subject): no secret is made here.
/// A trait because the intents are `domain`'s data and composing is this
/// module's: code that drafts names `notify`.
pub trait ToDraft {
    fn draft(&self) -> Draft;
}

impl ToDraft for EmailIntent {
    fn draft(&self) -> Draft {
        match self {
            EmailIntent::ActivationLink(i) => activation::link_draft(i),
            EmailIntent::VerificationCode(i) => activation::code_draft(i),
            EmailIntent::OrgAttachApproval(i) => approval::draft(i),
            EmailIntent::DeviceCode(i) => device::draft(i),
            EmailIntent::Plain(p) => Draft {
                subject: p.subject.clone(),
                text_body: p.text_body.clone(),
                html_body: p.html_body.clone(),
                secrets: p.secrets.clone(),
            },
        }
    }
}

impl ToDraft for EmailMessage {
    fn draft(&self) -> Draft {
        self.intent.draft()
    }
}

#[cfg(test)]
mod tests;
