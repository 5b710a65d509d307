//! Email as data: address syntax, and what a flow records when something
//! is to be mailed ([`EmailMessage`]: kind, recipients, an [`EmailIntent`]
//! with the kind's parameters, and for each link token or code a
//! [`MailSecret`] saying how to make it). The store writes and reads these;
//! `notify` composes the words from them and `links` makes the secrets when
//! the mailer sends, so nothing here composes or signs.

mod address;
mod intent;
mod message;
mod record;
mod secret;

pub use address::{is_valid_domain, normalize_email, EmailError, EMAIL_MAX_LEN};
pub use intent::{
    ApprovalIntent, CodeIntent, Contact, DeviceCodeIntent, EmailIntent, LinkIntent, PlainMessage,
    StoredIntent, INTENT_VERSION,
};
pub use message::{EmailKind, EmailMessage, InvalidMessage};
pub use record::{EmailFilter, EmailRecord, EmailState};
pub use secret::MailSecret;
