//! Activation links and their emails: the signed link that opens the
//! activation portal (untrusted email) or the consent page (trusted email
//! already owned by another account), the keyed hash of verification
//! codes, and the messages that carry them. The rules are
//! `domain::activation`'s; the store applies them in its transactions and
//! gets these links passed in (it knows no keys).

use std::sync::Arc;

use crate::domain::activation::{Activation, ActivationPolicy, ActivationPurpose};
use crate::domain::lifecycle::SubscriberRecord;
use crate::domain::TemplateSettings;
use crate::http::portal::esc;
use crate::links::{LinkError, LinkSigner};
use crate::notify::secrets::placeholder;
use crate::notify::{EmailKind, EmailMessage, MailSecret};

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
            ActivationPurpose::EmailInput | ActivationPurpose::SelfActivation => "activate",
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
    pub fn link_email(
        &self,
        to: &str,
        s: &SubscriberRecord,
        a: &Activation,
        from: &TemplateSettings,
    ) -> EmailMessage {
        let all = texts(&from.email_language);
        let (t, kind) = match a.purpose {
            ActivationPurpose::ConsentMigration => (all.consent, EmailKind::ConsentMigration),
            ActivationPurpose::EmailInput | ActivationPurpose::SelfActivation => {
                (all.activation, EmailKind::ActivationLink)
            }
        };
        let vars = [
            ("{who}", display_name(s, &from.email_language)),
            ("{to}", to.to_string()),
            ("{expires}", when(a.link_expires_at)),
        ];
        // The token is made by the mailer when it sends (`notify::secrets`).
        let link = self.url_with_token(a, &placeholder(0));
        let (text, html) = render(t, &vars, &link, from);
        let mut msg = self.message(kind, to, t.subject.to_string(), text, html, s, a);
        msg.secrets = vec![self.token_secret(a)];
        msg
    }

    /// The code (`code`, from [`Self::code_secret`]) confirming that the
    /// user owns `to`, with a link that fills it in. Token and code are
    /// placeholders until the mailer sends it.
    pub fn code_email(
        &self,
        to: &str,
        s: &SubscriberRecord,
        a: &Activation,
        code: MailSecret,
        from: &TemplateSettings,
    ) -> EmailMessage {
        let (token_at, code_at) = (placeholder(0), placeholder(1));
        let link = format!(
            "{}/activate/verify?token={token_at}&code={code_at}",
            self.portal_base
        );
        let t = texts(&from.email_language).code;
        let vars = [
            ("{code}", code_at.clone()),
            ("{to}", to.to_string()),
            ("{minutes}", (self.policy.code_ttl_ms / 60_000).to_string()),
        ];
        let (text, html) = render(t, &vars, &link, from);
        let subject = fill(t.subject, &vars);
        let mut msg = self.message(EmailKind::VerificationCode, to, subject, text, html, s, a);
        // Every code is a new message (the nonce alone repeats per resend).
        msg.dedupe_key = None;
        msg.secrets = vec![self.token_secret(a), code];
        msg
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        kind: EmailKind,
        to: &str,
        subject: String,
        text: String,
        html: String,
        s: &SubscriberRecord,
        a: &Activation,
    ) -> EmailMessage {
        EmailMessage {
            to: vec![to.to_string()],
            subject,
            text_body: text,
            html_body: Some(html),
            kind,
            subscriber_id: Some(s.id.clone()),
            // One email per link: a replay of the same add sends nothing.
            dedupe_key: Some(format!("{}:{}:{}", kind.as_str(), s.id, a.nonce)),
            secrets: Vec::new(),
        }
    }
}

fn display_name(s: &SubscriberRecord, lang: &str) -> String {
    let name = format!("{} {}", s.first_name, s.last_name);
    match name.trim() {
        "" => texts(lang).nobody.to_string(),
        name => name.to_string(),
    }
}

/// One email's words: paragraphs before the link, its label, paragraphs
/// after. `{name}` placeholders are filled (and escaped for HTML).
#[derive(Debug, Clone, Copy)]
struct MailText {
    subject: &'static str,
    before: &'static [&'static str],
    link_label: &'static str,
    after: &'static [&'static str],
}

/// The emails of one language.
struct Texts {
    /// Greeting name when the subscriber has none.
    nobody: &'static str,
    /// Closing line naming the partner admin (`{admin}`).
    contact: &'static str,
    activation: MailText,
    consent: MailText,
    code: MailText,
}

/// The template's `email_language` (`fr`, `fr_CA`, `de-DE`, …) picks the
/// texts; languages without a translation get English.
fn texts(lang: &str) -> &'static Texts {
    let primary = lang
        .split(['_', '-'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match primary.as_str() {
        "fr" => &FR,
        "de" => &DE,
        "es" => &ES,
        _ => &EN,
    }
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter()
        .fold(template.to_string(), |acc, (k, v)| acc.replace(k, v))
}

/// Plain text and HTML bodies of `t` with `link`, closing with the
/// template's partner admin as the contact when one is set.
fn render(
    t: MailText,
    vars: &[(&str, String)],
    link: &str,
    from: &TemplateSettings,
) -> (String, String) {
    let escaped: Vec<(&str, String)> = vars.iter().map(|(k, v)| (*k, esc(v))).collect();
    let mut text = String::new();
    let mut html = String::new();
    for p in t.before {
        text.push_str(&fill(p, vars));
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", fill(&esc(p), &escaped)));
    }
    text.push_str(&format!("{}: {link}\n\n", fill(t.link_label, vars)));
    html.push_str(&format!(
        "<p><a href=\"{}\">{}</a></p>",
        esc(link),
        fill(&esc(t.link_label), &escaped)
    ));
    for p in t.after {
        text.push_str(&fill(p, vars));
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", fill(&esc(p), &escaped)));
    }
    let admin = match (&from.partner_admin_name, &from.partner_admin_email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    };
    if let Some(admin) = admin {
        let contact = texts(&from.email_language).contact;
        text.push_str(&contact.replace("{admin}", &admin));
        html.push_str(&format!(
            "<p>{}</p>",
            esc(contact).replace("{admin}", &esc(&admin))
        ));
    }
    (text.trim_end().to_string() + "\n", html)
}

const EN: Texts = Texts {
    nobody: "there",
    contact: "Questions? Contact {admin}.",
    activation: MailText {
        subject: "Activate your Webex account",
        before: &[
            "Hello {who},",
            "Your service provider set up Webex for you. To activate it, open the activation page, enter your email address and confirm it with the code we send you.",
        ],
        link_label: "Activate your account",
        after: &[
            "The link works until {expires} and only once.",
            "If you did not expect this message, ignore it.",
        ],
    },
    consent: MailText {
        subject: "Consent needed: move your account to Webex",
        before: &[
            "Hello {who},",
            "Your service provider is moving you to its Webex service. The address {to} already belongs to an existing account. To move it, open the page below and choose \"Activate account\": your old account is then removed and your new one uses the same address.",
        ],
        link_label: "Review and activate your account",
        after: &[
            "The link works until {expires} and only once.",
            "If you did not expect this message, ignore it: nothing changes without your consent.",
        ],
    },
    code: MailText {
        subject: "Your Webex verification code: {code}",
        before: &[
            "Your Webex verification code is {code}",
            "Enter it on the activation page, or confirm {to} with this link.",
        ],
        link_label: "Confirm {to}",
        after: &["The code works for {minutes} minutes. If you did not ask for it, ignore this message."],
    },
};

const FR: Texts = Texts {
    nobody: "à vous",
    contact: "Des questions ? Contactez {admin}.",
    activation: MailText {
        subject: "Activez votre compte Webex",
        before: &[
            "Bonjour {who},",
            "Votre fournisseur de services a préparé Webex pour vous. Pour l'activer, ouvrez la page d'activation, saisissez votre adresse e-mail et confirmez-la avec le code que nous vous envoyons.",
        ],
        link_label: "Activer votre compte",
        after: &[
            "Le lien est valable jusqu'au {expires}, une seule fois.",
            "Si vous n'attendiez pas ce message, ignorez-le.",
        ],
    },
    consent: MailText {
        subject: "Consentement requis : transférer votre compte vers Webex",
        before: &[
            "Bonjour {who},",
            "Votre fournisseur de services vous transfère vers son service Webex. L'adresse {to} appartient déjà à un compte existant. Pour la transférer, ouvrez la page ci-dessous et choisissez « Activer le compte » : votre ancien compte est alors supprimé et le nouveau utilise la même adresse.",
        ],
        link_label: "Vérifier et activer votre compte",
        after: &[
            "Le lien est valable jusqu'au {expires}, une seule fois.",
            "Si vous n'attendiez pas ce message, ignorez-le : rien ne change sans votre consentement.",
        ],
    },
    code: MailText {
        subject: "Votre code de vérification Webex : {code}",
        before: &[
            "Votre code de vérification Webex est {code}",
            "Saisissez-le sur la page d'activation, ou confirmez {to} avec ce lien.",
        ],
        link_label: "Confirmer {to}",
        after: &["Le code est valable {minutes} minutes. Si vous ne l'avez pas demandé, ignorez ce message."],
    },
};

const DE: Texts = Texts {
    nobody: "und willkommen",
    contact: "Fragen? Wenden Sie sich an {admin}.",
    activation: MailText {
        subject: "Aktivieren Sie Ihr Webex-Konto",
        before: &[
            "Hallo {who},",
            "Ihr Dienstanbieter hat Webex für Sie eingerichtet. Öffnen Sie zum Aktivieren die Aktivierungsseite, geben Sie Ihre E-Mail-Adresse ein und bestätigen Sie sie mit dem Code, den wir Ihnen senden.",
        ],
        link_label: "Konto aktivieren",
        after: &[
            "Der Link gilt bis {expires} und nur einmal.",
            "Wenn Sie diese Nachricht nicht erwartet haben, ignorieren Sie sie.",
        ],
    },
    consent: MailText {
        subject: "Zustimmung erforderlich: Ihr Konto zu Webex umziehen",
        before: &[
            "Hallo {who},",
            "Ihr Dienstanbieter zieht Sie zu seinem Webex-Dienst um. Die Adresse {to} gehört bereits zu einem bestehenden Konto. Um sie umzuziehen, öffnen Sie die folgende Seite und wählen Sie „Konto aktivieren“: Ihr altes Konto wird dann entfernt und Ihr neues verwendet dieselbe Adresse.",
        ],
        link_label: "Prüfen und Konto aktivieren",
        after: &[
            "Der Link gilt bis {expires} und nur einmal.",
            "Wenn Sie diese Nachricht nicht erwartet haben, ignorieren Sie sie: ohne Ihre Zustimmung ändert sich nichts.",
        ],
    },
    code: MailText {
        subject: "Ihr Webex-Bestätigungscode: {code}",
        before: &[
            "Ihr Webex-Bestätigungscode lautet {code}",
            "Geben Sie ihn auf der Aktivierungsseite ein oder bestätigen Sie {to} mit diesem Link.",
        ],
        link_label: "{to} bestätigen",
        after: &["Der Code gilt {minutes} Minuten. Wenn Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht."],
    },
};

const ES: Texts = Texts {
    nobody: "y bienvenido",
    contact: "¿Preguntas? Contacte con {admin}.",
    activation: MailText {
        subject: "Active su cuenta de Webex",
        before: &[
            "Hola {who}:",
            "Su proveedor de servicios ha preparado Webex para usted. Para activarlo, abra la página de activación, escriba su dirección de correo electrónico y confírmela con el código que le enviaremos.",
        ],
        link_label: "Activar su cuenta",
        after: &[
            "El enlace es válido hasta el {expires} y una sola vez.",
            "Si no esperaba este mensaje, ignórelo.",
        ],
    },
    consent: MailText {
        subject: "Se necesita su consentimiento: trasladar su cuenta a Webex",
        before: &[
            "Hola {who}:",
            "Su proveedor de servicios le traslada a su servicio Webex. La dirección {to} ya pertenece a una cuenta existente. Para trasladarla, abra la página siguiente y elija «Activar cuenta»: su cuenta anterior se elimina y la nueva usa la misma dirección.",
        ],
        link_label: "Revisar y activar su cuenta",
        after: &[
            "El enlace es válido hasta el {expires} y una sola vez.",
            "Si no esperaba este mensaje, ignórelo: nada cambia sin su consentimiento.",
        ],
    },
    code: MailText {
        subject: "Su código de verificación de Webex: {code}",
        before: &[
            "Su código de verificación de Webex es {code}",
            "Escríbalo en la página de activación o confirme {to} con este enlace.",
        ],
        link_label: "Confirmar {to}",
        after: &["El código es válido durante {minutes} minutos. Si no lo ha solicitado, ignore este mensaje."],
    },
};

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
        let en = l.link_email("a@x.example", &s, &a, &lang("en_US"));
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
        let fr = l.link_email("a@x.example", &s, &a, &lang("fr_CA"));
        assert_eq!(fr.subject, "Activez votre compte Webex");
        let de = l.code_email(
            "a@x.example",
            &s,
            &a,
            l.code_secret("sub-1", "n", 1),
            &lang("de-DE"),
        );
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
        assert!(es.subject.starts_with("Se necesita su consentimiento"));
        assert!(es.text_body.contains("a@x.example"));
        // Unknown languages fall back to English.
        assert_eq!(
            l.link_email("a@x.example", &s, &a, &lang("ja_JP")).subject,
            en.subject
        );
        assert!(!en.text_body.contains("Questions?"), "no partner admin set");
        let with_admin = TemplateSettings {
            partner_admin_name: Some("Pat <SP>".into()),
            partner_admin_email: Some("pat@sp.example".into()),
            ..lang("en")
        };
        let m = l.link_email("a@x.example", &s, &a, &with_admin);
        assert!(m
            .text_body
            .contains("Questions? Contact Pat <SP> <pat@sp.example>."));
        assert!(m
            .html_body
            .unwrap()
            .contains("Contact Pat &lt;SP&gt; &lt;pat@sp.example&gt;."));
    }
}
