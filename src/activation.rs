//! Activation links and their emails: the signed link that opens the
//! activation portal (untrusted email) or the consent page (trusted email
//! already owned by another account), the keyed hash of verification
//! codes, and the email intents that carry them (the words are
//! `notify::intent`'s, composed when sent). The rules are
//! `domain::activation`'s; the store applies them in its transactions and
//! gets these links passed in (it knows no keys).

use std::sync::Arc;

use crate::domain::activation::{Activation, ActivationPolicy, ActivationPurpose};
use crate::domain::email::{
    CodeIntent, Contact, EmailIntent, EmailKind, EmailMessage, LinkIntent, MailSecret,
};
use crate::domain::lifecycle::SubscriberRecord;
use crate::domain::TemplateSettings;
use crate::links::{LinkError, LinkSigner, Reveal};

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
    /// How to make the token of an activation's current link (what an
    /// email stores instead of the token).
    pub fn token_secret(&self, a: &Activation) -> MailSecret {
        MailSecret::SignedToken {
            purpose: PURPOSE.to_string(),
            fields: vec![
                a.subscriber_id.clone(),
                a.nonce.clone(),
                a.purpose.as_str().to_string(),
            ],
            expires_at: a.link_expires_at,
        }
    }

    /// The token of an activation's current link.
    pub fn token(&self, a: &Activation) -> String {
        self.token_secret(a).reveal(&self.signer)
    }

    /// The page a link opens: consent has its own, the others the portal.
    pub fn url(&self, a: &Activation) -> String {
        self.url_with_token(a, &self.token(a))
    }

    fn url_with_token(&self, a: &Activation, token: &str) -> String {
        let page = match a.purpose {
            ActivationPurpose::ConsentMigration => "consent",
            ActivationPurpose::EmailInput
            | ActivationPurpose::SelfActivation
            | ActivationPurpose::EmailChange => "activate",
        };
        format!("{}/{page}?token={token}", self.portal_base)
    }

    /// How to make the `sequence`-th code sent under the link with
    /// `nonce`: only the key holder can, so the database keeps no code
    /// (just [`Self::code_hash`]), and a retried email carries the same one.
    pub fn code_secret(&self, subscriber_id: &str, nonce: &str, sequence: u32) -> MailSecret {
        MailSecret::DerivedCode {
            context: format!("activation:{subscriber_id}:{nonce}:{sequence}"),
            digits: CODE_DIGITS,
        }
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

    /// The email carrying the activation's current link: for the
    /// untrusted flow and self-activation the portal link, sent to the
    /// address the AS gave (which still has to be confirmed there); for a
    /// consent (trusted email in use by another account) the consent link.
    /// Recorded as an intent: the mailer composes it and makes the token.
    pub fn link_email(
        &self,
        to: &str,
        s: &SubscriberRecord,
        a: &Activation,
        from: &TemplateSettings,
    ) -> EmailMessage {
        let kind = match a.purpose {
            ActivationPurpose::ConsentMigration => EmailKind::ConsentMigration,
            ActivationPurpose::EmailInput
            | ActivationPurpose::SelfActivation
            | ActivationPurpose::EmailChange => EmailKind::ActivationLink,
        };
        let intent = EmailIntent::ActivationLink(LinkIntent {
            portal_base: self.portal_base.clone(),
            language: from.email_language.clone(),
            first_name: s.first_name.clone(),
            last_name: s.last_name.clone(),
            to: to.to_string(),
            purpose: a.purpose,
            link_expires_at: a.link_expires_at,
            contact: contact(from),
            token: self.token_secret(a),
        });
        self.message(kind, to, intent, s, a)
    }

    /// The code (`code`, from [`Self::code_secret`]) confirming that the
    /// user owns `to`, with a link that fills it in. Token and code are
    /// made by the mailer when it sends.
    pub fn code_email(
        &self,
        to: &str,
        s: &SubscriberRecord,
        a: &Activation,
        code: MailSecret,
        from: &TemplateSettings,
    ) -> EmailMessage {
        let intent = EmailIntent::VerificationCode(CodeIntent {
            portal_base: self.portal_base.clone(),
            language: from.email_language.clone(),
            to: to.to_string(),
            code_ttl_minutes: self.policy.code_ttl_ms / 60_000,
            contact: contact(from),
            token: self.token_secret(a),
            code,
        });
        let mut msg = self.message(EmailKind::VerificationCode, to, intent, s, a);
        // Every code is a new message (the nonce alone repeats per resend).
        msg.dedupe_key = None;
        msg
    }

    fn message(
        &self,
        kind: EmailKind,
        to: &str,
        intent: EmailIntent,
        s: &SubscriberRecord,
        a: &Activation,
    ) -> EmailMessage {
        EmailMessage {
            to: vec![to.to_string()],
            kind,
            subscriber_id: Some(s.id.clone()),
            // One email per link: a replay of the same add sends nothing.
            dedupe_key: Some(format!("{}:{}:{}", kind.as_str(), s.id, a.nonce)),
            intent,
        }
    }
}

/// The template's partner admin, named as the contact in the emails.
fn contact(from: &TemplateSettings) -> Contact {
    Contact {
        partner_admin_name: from.partner_admin_name.clone(),
        partner_admin_email: from.partner_admin_email.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::activation::ActivationPolicy;
    use crate::notify::ToDraft;

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
    }

    #[test]
    fn emails_follow_the_template_language_and_escape_html() {
        let l = links();
        let a = Activation::new(
            "sub-1",
            ActivationPurpose::EmailInput,
            "n".into(),
            0,
            &l.policy,
        );
        let s = SubscriberRecord {
            id: "sub-1".into(),
            provisioning_id: "p".into(),
            user_id: None,
            enterprise_key: None,
            org_id: None,
            service_provider_id: None,
            group_id: None,
            first_name: "<Ann>".into(),
            last_name: "Lee".into(),
            email: None,
            phone_number: None,
            extension: None,
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            package: crate::domain::Package::Basic,
            status: crate::domain::lifecycle::SubscriberStatus::PendingEmailInput,
            errors: Vec::new(),
            self_activated: false,
            version: 1,
            created_at: 0,
            last_status_change: 0,
        };
        let lang = |l: &str| TemplateSettings {
            email_language: l.to_string(),
            ..TemplateSettings::default()
        };
        let en = l.link_email("a@x.example", &s, &a, &lang("en_US")).draft();
        assert_eq!(en.subject, "Activate your Webex account");
        assert!(
            en.text_body.starts_with("Hello <Ann> Lee,"),
            "{}",
            en.text_body
        );
        assert!(en
            .text_body
            .contains("Activate your account: https://portal.example/activate?token="));
        let html = en.html_body.unwrap();
        assert!(
            html.contains("Hello &lt;Ann&gt; Lee,") && !html.contains("<Ann>"),
            "{html}"
        );
        let fr = l.link_email("a@x.example", &s, &a, &lang("fr_CA")).draft();
        assert_eq!(fr.subject, "Activez votre compte Webex");
        let de = l
            .code_email(
                "a@x.example",
                &s,
                &a,
                l.code_secret("sub-1", "n", 1),
                &lang("de-DE"),
            )
            .draft();
        // Stored: placeholders only; sent: the token and code the key makes.
        let code = l.signer.derived_code("activation:sub-1:n:1", CODE_DIGITS);
        let token = l.token(&a);
        for stored in [&de.subject, &de.text_body, de.html_body.as_ref().unwrap()] {
            assert!(
                !stored.contains(&code) && !stored.contains(&token),
                "{stored}"
            );
        }
        let fill = |t: &str| crate::notify::secrets::fill(t, &de.secrets, &l.signer);
        assert_eq!(
            fill(&de.subject),
            format!("Ihr Webex-Bestätigungscode: {code}")
        );
        assert!(fill(&de.text_body).contains(&format!(
            "https://portal.example/activate/verify?token={token}&code={code}"
        )));
        assert!(de.text_body.contains("30 Minuten"), "{}", de.text_body);
        assert!(!en.text_body.contains(&token), "{}", en.text_body);
        assert!(
            crate::notify::secrets::fill(&en.text_body, &en.secrets, &l.signer)
                .contains(&format!("https://portal.example/activate?token={token}"))
        );
        let consent = Activation {
            purpose: ActivationPurpose::ConsentMigration,
            ..a.clone()
        };
        let es = l.link_email("a@x.example", &s, &consent, &lang("es"));
        assert_eq!(es.kind, EmailKind::ConsentMigration);
        let es = es.draft();
        assert!(es.subject.starts_with("Se necesita su consentimiento"));
        assert!(es.text_body.contains("a@x.example"));
        // Unknown languages fall back to English.
        assert_eq!(
            l.link_email("a@x.example", &s, &a, &lang("ja_JP"))
                .draft()
                .subject,
            en.subject
        );
        assert!(!en.text_body.contains("Questions?"), "no partner admin set");
        let with_admin = TemplateSettings {
            partner_admin_name: Some("Pat <SP>".into()),
            partner_admin_email: Some("pat@sp.example".into()),
            ..lang("en")
        };
        let m = l.link_email("a@x.example", &s, &a, &with_admin).draft();
        assert!(m
            .text_body
            .contains("Questions? Contact Pat <SP> <pat@sp.example>."));
        assert!(m
            .html_body
            .unwrap()
            .contains("Contact Pat &lt;SP&gt; &lt;pat@sp.example&gt;."));
    }
}
