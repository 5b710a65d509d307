//! A device's activation code (Webex Go, or a phone registering to Webex
//! Calling), composed when the mailer sends it. English only: the texts
//! of the activation emails are not translated for devices yet.

use super::{DeviceCodeIntent, Draft};
use crate::domain::device::{DeviceKind, DEVICE_CODE_DIGITS};
use crate::html::escape as esc;
use crate::notify::secrets::placeholder;

/// The code, in groups of four digits for reading it off a phone.
pub(super) fn draft(intent: &DeviceCodeIntent) -> Draft {
    let code = placeholder(0);
    // What the subject and the text call it.
    let named = intent
        .device_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let (title, device) = match (DeviceKind::of(named), named) {
        (DeviceKind::WebexGo, _) => ("Webex Go".to_string(), "Webex Go".to_string()),
        (DeviceKind::Other, Some(t)) => (t.to_string(), t.to_string()),
        (DeviceKind::Other, None) => ("device".to_string(), "your device".to_string()),
    };
    // The day, not the instant: "valid until 2027-03-07".
    let until = crate::domain::timestamp::iso_millis(intent.expires_at);
    let until = until.get(..10).unwrap_or(&until).to_string();
    let name = format!("{} {}", intent.first_name, intent.last_name);
    let name = match name.trim() {
        "" => "Hello".to_string(),
        n => format!("Hello {n}"),
    };
    let contact = match (
        &intent.contact.partner_admin_name,
        &intent.contact.partner_admin_email,
    ) {
        (Some(n), Some(e)) => format!("\n\nQuestions? Contact {n} <{e}>."),
        (None, Some(e)) => format!("\n\nQuestions? Contact {e}."),
        (Some(n), None) => format!("\n\nQuestions? Contact {n}."),
        (None, None) => String::new(),
    };
    let subject = format!("Your {title} activation code");
    let text = format!(
        "{name},\n\nYour activation code for {device} is:\n\n    {code}\n\n\
It has {DEVICE_CODE_DIGITS} digits and works until {until} (UTC). Enter it when {device} \
asks for an activation code.{contact}\n\n\
If you did not ask for this code, ignore this message.\n"
    );
    let html = format!(
        "<p>{name},</p><p>Your activation code for {device} is:</p>\
<p style=\"font-size:1.4em;letter-spacing:0.1em\"><strong>{code}</strong></p>\
<p>It has {DEVICE_CODE_DIGITS} digits and works until {until} (UTC). Enter it when {device} \
asks for an activation code.</p>{contact}<p>If you did not ask for this code, ignore this \
message.</p>",
        name = esc(&name),
        device = esc(&device),
        contact = if contact.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", esc(contact.trim()))
        },
    );
    Draft {
        subject,
        text_body: text,
        html_body: Some(html),
        secrets: vec![intent.code.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::email::{Contact, MailSecret};

    fn intent(device_type: Option<&str>) -> DeviceCodeIntent {
        DeviceCodeIntent {
            language: "en".into(),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            to: "ann@acme.example".into(),
            device_type: device_type.map(str::to_string),
            expires_at: 1_804_377_600_000, // 2027-03-07T00:00:00Z
            contact: Contact {
                partner_admin_name: Some("Pat <ops>".into()),
                partner_admin_email: None,
            },
            code: MailSecret::DerivedCode {
                context: "device:k".into(),
                digits: DEVICE_CODE_DIGITS,
            },
        }
    }

    #[test]
    fn the_code_is_a_placeholder_with_its_expiry_day_and_escaped_names() {
        let d = draft(&intent(Some("webex-go")));
        assert_eq!(d.subject, "Your Webex Go activation code");
        assert!(d.text_body.contains(&placeholder(0)));
        assert!(
            d.text_body.contains("works until 2027-03-07 (UTC)"),
            "{}",
            d.text_body
        );
        assert!(d.text_body.starts_with("Hello Ann Lee,"));
        let html = d.html_body.expect("html");
        assert!(html.contains("Pat &lt;ops&gt;"), "{html}");
        assert_eq!(d.secrets.len(), 1);
        let other = draft(&intent(None));
        assert_eq!(other.subject, "Your device activation code");
        assert!(other
            .text_body
            .contains("activation code for your device is"));
        assert_eq!(
            draft(&intent(Some("Cisco 8845"))).subject,
            "Your Cisco 8845 activation code"
        );
    }
}
