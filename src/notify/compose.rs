//! Turns a stored email into an RFC 5322 message with lettre's builder:
//! `From` (configured name and address), `To`, `Subject`, `Date` (when it
//! was enqueued), a `Message-ID` fixed at enqueue (every attempt and any
//! at-least-once duplicate carries the same one, so mail clients fold
//! duplicates), `Auto-Submitted: auto-generated` (RFC 3834: no vacation
//! replies) and `X-Bwgate-Kind`. Text only is `text/plain`; text and HTML
//! is `multipart/alternative`.

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::{Draft, ToDraft};
use crate::store::EmailRecord;

const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");
const KIND_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Bwgate-Kind");

/// The configured sender.
#[derive(Debug, Clone)]
pub struct Sender {
    mailbox: Mailbox,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid sender address '{0}': {1}")]
    BadSender(String, String),
    #[error("invalid recipient address '{0}': {1}")]
    BadRecipient(String, String),
    #[error("message has no recipients")]
    NoRecipients,
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("the message carries links or codes but the mailer has no key to make them")]
    NoSigner,
}

impl Sender {
    /// `name` may be empty (then `From` is the bare address).
    pub fn new(address: &str, name: &str) -> Result<Sender, ComposeError> {
        let addr: Address =
            address
                .trim()
                .parse()
                .map_err(|e: lettre::address::AddressError| {
                    ComposeError::BadSender(address.to_string(), e.to_string())
                })?;
        let name = name.trim();
        let name = (!name.is_empty()).then(|| name.to_string());
        Ok(Sender {
            mailbox: Mailbox::new(name, addr),
        })
    }

    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// `<{token}@{sender domain}>`.
    pub fn message_id(&self, token: &str) -> String {
        format!("<{token}@{}>", self.mailbox.email.domain())
    }
}

/// The message for one stored email and its `Message-ID`, with its words
/// as drafted (secrets still placeholders: see [`compose_draft`]). Fails
/// (for good: the worker marks the email failed) when an address does not
/// parse.
pub fn compose(sender: &Sender, email: &EmailRecord) -> Result<(Message, String), ComposeError> {
    compose_draft(sender, email, &email.message.draft())
}

/// The message for `email` with the words of `draft` (the mailer's, with
/// its secrets made).
pub fn compose_draft(
    sender: &Sender,
    email: &EmailRecord,
    draft: &Draft,
) -> Result<(Message, String), ComposeError> {
    let msg = &email.message;
    if msg.to.is_empty() {
        return Err(ComposeError::NoRecipients);
    }
    let message_id = sender.message_id(&email.message_token);
    let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(email.created_at).unwrap_or(0));
    let mut builder = Message::builder()
        .from(sender.mailbox.clone())
        .subject(draft.subject.replace(['\r', '\n'], " "))
        .date(date)
        .message_id(Some(message_id.clone()));
    for to in &msg.to {
        let addr: Address = to
            .trim()
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                ComposeError::BadRecipient(to.clone(), e.to_string())
            })?;
        builder = builder.to(Mailbox::new(None, addr));
    }
    let built = match &draft.html_body {
        None => builder.singlepart(SinglePart::plain(draft.text_body.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            draft.text_body.clone(),
            html.clone(),
        )),
    };
    let mut message = built.map_err(|e| ComposeError::Build(e.to_string()))?;
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
    headers.insert_raw(HeaderValue::new(KIND_HEADER, msg.kind.as_str().into()));
    Ok((message, message_id))
}
