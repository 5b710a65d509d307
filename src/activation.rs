//! Activation links and their emails: the signed link that opens the
//! activation portal (untrusted email) or the consent page (trusted email
//! already owned by another account), the keyed hash of verification
//! codes, and the messages that carry them. The rules are
//! `domain::activation`'s; the store applies them in its transactions and
//! gets these links passed in (it knows no keys).

use std::sync::Arc;

use crate::domain::activation::{Activation, ActivationPolicy, ActivationPurpose};
use crate::domain::lifecycle::SubscriberRecord;
use crate::http::portal::esc;
use crate::links::{LinkError, LinkSigner};
use crate::notify::{EmailKind, EmailMessage};

/// The purpose signed into activation tokens.
const PURPOSE: &str = "activation";

/// Digits of an emailed verification code.
pub const CODE_DIGITS: u32 = 6;

/// Issues and checks activation links; composes the flows' emails.
#[derive(Debug, Clone)]
pub struct ActivationLinks {
    pub signer: Arc<LinkSigner>,
    /// `server.portal_public_url` or `https://{portal addr}`, no trailing `/`.
    pub portal_base: String,
    pub policy: ActivationPolicy,
}

/// What a valid activation token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationClaim {
    pub subscriber_id: String,
    pub nonce: String,
    pub purpose: ActivationPurpose,
}

impl ActivationLinks {
    /// The token of an activation's current link.
    pub fn token(&self, a: &Activation) -> String {
        self.signer.issue(
            PURPOSE,
            &[&a.subscriber_id, &a.nonce, a.purpose.as_str()],
            a.link_expires_at,
        )
    }

    /// The page a link opens: consent has its own, the others the portal.
    pub fn url(&self, a: &Activation) -> String {
        let page = match a.purpose {
            ActivationPurpose::ConsentMigration => "consent",
            ActivationPurpose::EmailInput | ActivationPurpose::SelfActivation => "activate",
        };
        format!("{}/{page}?token={}", self.portal_base, self.token(a))
    }

    pub fn verify(&self, token: &str, now: i64) -> Result<ActivationClaim, LinkError> {
        let link = self.signer.verify(PURPOSE, token, now)?;
        let [subscriber_id, nonce, purpose]: [String; 3] =
            link.fields.try_into().map_err(|_| LinkError::Invalid)?;
        let purpose = ActivationPurpose::parse(&purpose).ok_or(LinkError::Invalid)?;
        Ok(ActivationClaim {
            subscriber_id,
            nonce,
            purpose,
        })
    }

    /// The stored form of a code sent for `subscriber_id`.
    pub fn code_hash(&self, subscriber_id: &str, code: &str) -> String {
        self.signer.keyed_hash(subscriber_id, code.trim())
    }

    /// Untrusted flow: the link to the portal, sent to the address the AS
    /// gave (which still has to be confirmed there).
    pub fn activation_email(&self, to: &str, s: &SubscriberRecord, a: &Activation) -> EmailMessage {
        let link = self.url(a);
        let who = display_name(s);
        let text = format!(
            "Hello {who},\n\nYour service provider set up Webex for you. To activate it, open \
this link, enter your email address and confirm it with the code we send you:\n\n{link}\n\n\
The link works until {expires} and only once.\n\nIf you did not expect this message, ignore it.\n",
            expires = when(a.link_expires_at),
        );
        let html = format!(
            "<p>Hello {who},</p><p>Your service provider set up Webex for you. To activate it, \
open the activation page, enter your email address and confirm it with the code we send you.</p>\
<p><a href=\"{link}\">Activate your account</a></p><p>The link works until {expires} and only \
once.</p><p>If you did not expect this message, ignore it.</p>",
            who = esc(&who),
            link = esc(&link),
            expires = esc(&when(a.link_expires_at)),
        );
        self.message(
            EmailKind::ActivationLink,
            to,
            "Activate your Webex account",
            text,
            html,
            s,
            a,
        )
    }

    /// Trusted flow, email in use by another account: asks for consent.
    pub fn consent_email(&self, to: &str, s: &SubscriberRecord, a: &Activation) -> EmailMessage {
        let link = self.url(a);
        let who = display_name(s);
        let text = format!(
            "Hello {who},\n\nYour service provider is moving you to its Webex service. The address \
{to} already belongs to an existing account. To move it, open this link and choose \"Activate \
account\"; your old account is then removed and your new one uses the same address:\n\n{link}\n\n\
The link works until {expires} and only once.\n\nIf you did not expect this message, ignore it: \
nothing changes without your consent.\n",
            expires = when(a.link_expires_at),
        );
        let html = format!(
            "<p>Hello {who},</p><p>Your service provider is moving you to its Webex service. The \
address <strong>{to}</strong> already belongs to an existing account.</p><p><a href=\"{link}\">\
Review and activate your account</a></p><p>Your old account is removed once you consent, and your \
new one uses the same address. The link works until {expires} and only once.</p>\
<p>If you did not expect this message, ignore it: nothing changes without your consent.</p>",
            who = esc(&who),
            to = esc(to),
            link = esc(&link),
            expires = esc(&when(a.link_expires_at)),
        );
        self.message(
            EmailKind::ConsentMigration,
            to,
            "Consent needed: move your account to Webex",
            text,
            html,
            s,
            a,
        )
    }

    /// The code confirming that the user owns `to`, with a link that fills
    /// it in.
    pub fn code_email(
        &self,
        to: &str,
        s: &SubscriberRecord,
        a: &Activation,
        code: &str,
    ) -> EmailMessage {
        let link = format!(
            "{}/activate/verify?token={}&code={code}",
            self.portal_base,
            self.token(a)
        );
        let minutes = self.policy.code_ttl_ms / 60_000;
        let text = format!(
            "Your Webex verification code is {code}\n\nEnter it on the activation page, or open \
this link to confirm {to}:\n\n{link}\n\nThe code works for {minutes} minutes. If you did not \
ask for it, ignore this message.\n"
        );
        let html = format!(
            "<p>Your Webex verification code is</p><p style=\"font-size:1.5rem\"><strong>{code}\
</strong></p><p>Enter it on the activation page, or <a href=\"{link}\">confirm {to}</a>.</p>\
<p>The code works for {minutes} minutes. If you did not ask for it, ignore this message.</p>",
            link = esc(&link),
            to = esc(to),
        );
        let mut msg = self.message(
            EmailKind::VerificationCode,
            to,
            &format!("Your Webex verification code: {code}"),
            text,
            html,
            s,
            a,
        );
        // Every code is a new message (the nonce alone repeats per resend).
        msg.dedupe_key = None;
        msg
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        kind: EmailKind,
        to: &str,
        subject: &str,
        text: String,
        html: String,
        s: &SubscriberRecord,
        a: &Activation,
    ) -> EmailMessage {
        EmailMessage {
            to: vec![to.to_string()],
            subject: subject.to_string(),
            text_body: text,
            html_body: Some(html),
            kind,
            subscriber_id: Some(s.id.clone()),
            // One email per link: a replay of the same add sends nothing.
            dedupe_key: Some(format!("{}:{}:{}", kind.as_str(), s.id, a.nonce)),
        }
    }
}

fn display_name(s: &SubscriberRecord) -> String {
    let name = format!("{} {}", s.first_name, s.last_name);
    let name = name.trim();
    if name.is_empty() {
        "there".to_string()
    } else {
        name.to_string()
    }
}

/// A timestamp for people: `2026-12-13 20:47 UTC`.
fn when(millis: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| millis.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::activation::ActivationPolicy;

    fn links() -> ActivationLinks {
        ActivationLinks {
            signer: Arc::new(LinkSigner::from_secret(&[5u8; 32])),
            portal_base: "https://portal.example".into(),
            policy: ActivationPolicy::default(),
        }
    }

    #[test]
    fn links_name_their_page_and_round_trip() {
        let l = links();
        let a = Activation::new(
            "sub-1",
            ActivationPurpose::ConsentMigration,
            "nonce-1".into(),
            0,
            &l.policy,
        );
        let url = l.url(&a);
        assert!(
            url.starts_with("https://portal.example/consent?token="),
            "{url}"
        );
        let token = url.split_once("token=").unwrap().1;
        assert_eq!(
            l.verify(token, 1).unwrap(),
            ActivationClaim {
                subscriber_id: "sub-1".into(),
                nonce: "nonce-1".into(),
                purpose: ActivationPurpose::ConsentMigration,
            }
        );
        assert_eq!(l.verify(token, a.link_expires_at), Err(LinkError::Expired));
        // An org-approval token of the same key is not an activation link.
        let other = l.signer.issue(
            "org-approval",
            &["sub-1", "nonce-1", "consent_migration"],
            9,
        );
        assert_eq!(l.verify(&other, 0), Err(LinkError::Invalid));
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
