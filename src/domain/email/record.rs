//! An email as the outbox holds it: the message, its delivery state and
//! attempts ([`EmailRecord`]), and which records a listing returns
//! ([`EmailFilter`]). Data only: the store maps rows to these.

use super::message::{EmailKind, EmailMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailState {
    Pending,
    Sent,
    Failed,
}

impl EmailState {
    pub const fn as_str(self) -> &'static str {
        match self {
            EmailState::Pending => "pending",
            EmailState::Sent => "sent",
            EmailState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<EmailState> {
        [EmailState::Pending, EmailState::Sent, EmailState::Failed]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One email outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub id: i64,
    pub message: EmailMessage,
    pub state: EmailState,
    /// Delivery attempts made so far.
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// Random, fixed at enqueue: the left part of the Message-ID.
    pub message_token: String,
    /// The Message-ID header as sent.
    pub message_id: Option<String>,
}

/// Which emails a listing of the outbox returns (unset fields match everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailFilter {
    pub subscriber_id: Option<String>,
    pub kind: Option<EmailKind>,
    pub state: Option<EmailState>,
}
