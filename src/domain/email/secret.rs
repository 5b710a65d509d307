//! How to make a secret of an email (a link token, a verification code)
//! from non-secret inputs. Stored with the email instead of the secret;
//! `links` makes it with the server key when the mailer sends (see
//! `notify::secrets`).

use serde::{Deserialize, Serialize};

/// How to make one secret of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum MailSecret {
    /// `LinkSigner::issue(purpose, fields, expires_at)`.
    #[serde(rename_all = "camelCase")]
    SignedToken {
        purpose: String,
        fields: Vec<String>,
        expires_at: i64,
    },
    /// `LinkSigner::derived_code(context, digits)`.
    #[serde(rename_all = "camelCase")]
    DerivedCode { context: String, digits: u32 },
}
