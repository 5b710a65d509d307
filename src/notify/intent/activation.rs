//! The activation flows' emails: the link to the activation portal
//! (untrusted email, self-activation), the consent link (trusted email
//! owned by another account) and the verification code, in the template's
//! language. What a flow records (`LinkIntent`, `CodeIntent`) holds the
//! parameters; the words are made here when the mailer sends, with a
//! placeholder for each secret (`secrets.rs`).

use super::{CodeIntent, Contact, Draft, LinkIntent};
use crate::domain::activation::ActivationPurpose;
use crate::html::escape as esc;
use crate::notify::secrets::placeholder;

/// The activation or consent link email.
pub(super) fn link_draft(intent: &LinkIntent) -> Draft {
    let all = texts(&intent.language);
    let t = match intent.purpose {
        ActivationPurpose::ConsentMigration => all.consent,
        ActivationPurpose::EmailInput
        | ActivationPurpose::SelfActivation
        | ActivationPurpose::EmailChange => all.activation,
    };
    let vars = [
        (
            "{who}",
            display_name(&intent.first_name, &intent.last_name, &intent.language),
        ),
        ("{to}", intent.to.clone()),
        ("{expires}", when(intent.link_expires_at)),
    ];
    let page = match intent.purpose {
        ActivationPurpose::ConsentMigration => "consent",
        ActivationPurpose::EmailInput
        | ActivationPurpose::SelfActivation
        | ActivationPurpose::EmailChange => "activate",
    };
    let link = format!("{}/{page}?token={}", intent.portal_base, placeholder(0));
    let (text, html) = render(t, &vars, &link, &intent.language, &intent.contact);
    Draft {
        subject: t.subject.to_string(),
        text_body: text,
        html_body: Some(html),
        secrets: vec![intent.token.clone()],
    }
}

/// The verification code email.
pub(super) fn code_draft(intent: &CodeIntent) -> Draft {
    let (token_at, code_at) = (placeholder(0), placeholder(1));
    let link = format!(
        "{}/activate/verify?token={token_at}&code={code_at}",
        intent.portal_base
    );
    let t = texts(&intent.language).code;
    let vars = [
        ("{code}", code_at.clone()),
        ("{to}", intent.to.clone()),
        ("{minutes}", intent.code_ttl_minutes.to_string()),
    ];
    let (text, html) = render(t, &vars, &link, &intent.language, &intent.contact);
    Draft {
        subject: fill(t.subject, &vars),
        text_body: text,
        html_body: Some(html),
        secrets: vec![intent.token.clone(), intent.code.clone()],
    }
}

fn display_name(first_name: &str, last_name: &str, lang: &str) -> String {
    let name = format!("{first_name} {last_name}");
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
    language: &str,
    contact: &Contact,
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
    let admin = match (&contact.partner_admin_name, &contact.partner_admin_email) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (None, None) => None,
    };
    if let Some(admin) = admin {
        let line = texts(language).contact;
        text.push_str(&line.replace("{admin}", &admin));
        html.push_str(&format!(
            "<p>{}</p>",
            esc(line).replace("{admin}", &esc(&admin))
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
pub(crate) fn when(millis: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| millis.to_string())
}
