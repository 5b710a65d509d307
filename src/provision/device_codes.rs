//! A device activation the license core allowed becomes an email to the
//! subscriber with the code, which the mailer derives from the outbox
//! entry with the server key (nothing secret is stored).

use crate::domain::device::{IssuedDevice, DEVICE_CODE_DIGITS};
use crate::domain::email::MailSecret;
use crate::domain::email::{Contact, DeviceCodeIntent, EmailIntent, EmailKind, EmailMessage};
use crate::store::tx::Tx;
use crate::store::StoreError;

/// What the code is derived from: one outbox entry, one code (the same
/// on every send).
pub(crate) fn code_context(seq: i64) -> String {
    format!("device:{seq}")
}

/// Queues the code's email to the subscriber (once per entry). A
/// subscriber without an email address, or of an organization that
/// suppresses emails, gets none (logged).
pub(crate) fn email_code(
    tx: &dyn Tx,
    seq: i64,
    subscriber_id: &str,
    device: &IssuedDevice,
    now: i64,
) -> Result<(), StoreError> {
    let Some(s) = tx.subscriber_by_id(subscriber_id)? else {
        tracing::warn!(subscriber_id, "device code for an unknown subscriber");
        return Ok(());
    };
    let Some(to) = s.email.clone() else {
        tracing::warn!(
            subscriber_id,
            "no email address to send the device activation code to"
        );
        return Ok(());
    };
    if let Some(org_id) = &s.org_id {
        if tx.org_email_suppressed(org_id)? {
            tracing::info!(
                subscriber_id,
                "no device code email: the organization suppresses emails"
            );
            return Ok(());
        }
    }
    let settings = tx.template(&s.provisioning_id)?.map(|t| t.settings);
    let (language, contact) = match &settings {
        Some(t) => (
            t.email_language.clone(),
            Contact {
                partner_admin_name: t.partner_admin_name.clone(),
                partner_admin_email: t.partner_admin_email.clone(),
            },
        ),
        None => ("en".to_string(), Contact::default()),
    };
    let msg = EmailMessage {
        to: vec![to.clone()],
        kind: EmailKind::DeviceActivationCode,
        subscriber_id: Some(s.id.clone()),
        dedupe_key: Some(code_context(seq)),
        intent: EmailIntent::DeviceCode(DeviceCodeIntent {
            language,
            first_name: s.first_name.clone(),
            last_name: s.last_name.clone(),
            to,
            device_type: device.device_type.clone(),
            expires_at: device.expires_at,
            contact,
            code: MailSecret::DerivedCode {
                context: code_context(seq),
                digits: DEVICE_CODE_DIGITS,
            },
        }),
    };
    tx.enqueue_email(&msg, now)?;
    Ok(())
}
