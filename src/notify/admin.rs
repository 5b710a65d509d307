//! What the admin listener's email endpoints mean, without HTTP:
//! `POST /admin/v1/emails/test` (an operator's relay check) and
//! `GET /admin/v1/emails?subscriber=…&kind=…&state=…&limit=…` (read-back).

use serde::Deserialize;

use super::{EmailKind, EmailMessage, ToDraft};
use crate::store::{EmailFilter, EmailRecord, EmailState};

/// Read-back returns at most this many emails (and this many by default).
pub const LIST_MAX: usize = 500;
pub const LIST_DEFAULT: usize = 100;

/// Body of `POST /admin/v1/emails/test`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    to: String,
    #[serde(default)]
    subject: Option<String>,
}

/// The test message for a `POST /admin/v1/emails/test` body, or what is
/// wrong with the body (for a 400).
pub fn test_message(body: &[u8]) -> Result<EmailMessage, String> {
    let req: TestRequest = serde_json::from_slice(body)
        .map_err(|e| format!("expected {{\"to\": \"…\", \"subject\": \"…\"}}: {e}"))?;
    let subject = req
        .subject
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "bwgate test message".to_string());
    let msg = EmailMessage::new(
        EmailKind::Test,
        [req.to.trim().to_string()],
        subject,
        format!(
            "This is a test message from bwgate {}.\r\n\r\n\
             An operator asked for it on the admin listener \
             (POST /admin/v1/emails/test) to check outgoing email.\r\n",
            env!("CARGO_PKG_VERSION")
        ),
    );
    msg.validate().map_err(|e| e.to_string())?;
    Ok(msg)
}

/// Filter and limit from the query string of `GET /admin/v1/emails`.
pub fn list_query(query: Option<&str>) -> Result<(EmailFilter, usize), String> {
    let mut filter = EmailFilter::default();
    let mut limit = LIST_DEFAULT;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| format!("bad encoding in '{key}'"))?;
        match key {
            "subscriber" => filter.subscriber_id = Some(value),
            "kind" => {
                filter.kind = Some(EmailKind::parse(&value).ok_or_else(|| {
                    let kinds: Vec<_> = EmailKind::ALL.iter().map(|k| k.as_str()).collect();
                    format!("unknown kind '{value}' (one of {})", kinds.join(", "))
                })?)
            }
            "state" => {
                filter.state = Some(EmailState::parse(&value).ok_or_else(|| {
                    format!("unknown state '{value}' (one of pending, sent, failed)")
                })?)
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=LIST_MAX).contains(n))
                    .ok_or_else(|| format!("limit must be between 1 and {LIST_MAX}"))?
            }
            other => return Err(format!("unknown parameter '{other}'")),
        }
    }
    Ok((filter, limit))
}

/// An email as the admin API shows it. Bodies are left out: they carry
/// activation links and codes. The subject is composed for display from
/// the intent, its secrets left as placeholders.
pub fn email_json(e: &EmailRecord) -> serde_json::Value {
    let draft = e.message.draft();
    serde_json::json!({
        "id": e.id,
        "kind": e.message.kind,
        "to": e.message.to,
        "subject": draft.subject,
        "subscriberId": e.message.subscriber_id,
        "dedupeKey": e.message.dedupe_key,
        "hasHtml": draft.html_body.is_some(),
        "state": e.state,
        "attempts": e.attempts,
        "nextAttemptAt": e.next_attempt_at,
        "lastError": e.last_error,
        "createdAt": e.created_at,
        "sentAt": e.sent_at,
        "messageId": e.message_id,
    })
}

/// `application/x-www-form-urlencoded` value decoding (`+` is a space).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
