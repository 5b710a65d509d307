//! Existing organizations: approval tokens for org attach (signed links over
//! org id, partner id and expiry, see `links`), the approval email,
//! and the import formats of `/admin/v1/organizations` (JSON and CSV). The
//! attach rules themselves are `domain::organization`'s; the store applies
//! them inside the flow-through transaction.

pub mod import;

use std::sync::Arc;

use crate::domain::email::{ApprovalIntent, EmailIntent, EmailKind, EmailMessage, MailSecret};
use crate::domain::organization;
use crate::links::{LinkError, LinkSigner};

/// The purpose signed into approval tokens.
const PURPOSE: &str = "org-approval";

/// Signs and checks approval tokens (org id, partner id, expiry).
#[derive(Debug, Clone)]
pub struct ApprovalSigner {
    links: Arc<LinkSigner>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalClaim {
    pub org_id: String,
    pub partner_id: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// The token's MAC (base64url): identifies the token once used.
    pub signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this approval link is not valid (it was altered or was not issued by this service)")]
    Invalid,
    #[error(
        "this approval link has expired; ask the partner to provision a user again for a new one"
    )]
    Expired,
}

impl ApprovalSigner {
    pub fn new(links: Arc<LinkSigner>) -> ApprovalSigner {
        ApprovalSigner { links }
    }

    pub fn from_secret(secret: &[u8]) -> ApprovalSigner {
        Self::new(Arc::new(LinkSigner::from_secret(secret)))
    }

    pub fn issue(&self, org_id: &str, partner_id: &str, expires_at: i64) -> String {
        self.links.issue(PURPOSE, &[org_id, partner_id], expires_at)
    }

    /// How to make [`Self::issue`]'s token: what an email stores instead.
    pub fn token_secret(org_id: &str, partner_id: &str, expires_at: i64) -> MailSecret {
        MailSecret::SignedToken {
            purpose: PURPOSE.to_string(),
            fields: vec![org_id.to_string(), partner_id.to_string()],
            expires_at,
        }
    }

    /// Checks the MAC (constant time), the purpose and the expiry.
    pub fn verify(&self, token: &str, now: i64) -> Result<ApprovalClaim, TokenError> {
        let link = self
            .links
            .verify(PURPOSE, token, now)
            .map_err(|e| match e {
                LinkError::Invalid => TokenError::Invalid,
                LinkError::Expired => TokenError::Expired,
            })?;
        let [org_id, partner_id]: [String; 2] =
            link.fields.try_into().map_err(|_| TokenError::Invalid)?;
        Ok(ApprovalClaim {
            org_id,
            partner_id,
            expires_at: link.expires_at,
            signature: link.signature,
        })
    }
}

/// What the store needs to send an approval request during an attach:
/// passed in `AcceptBatch` (no HTTP knowledge in the store).
#[derive(Debug)]
pub struct ApprovalLinks {
    pub signer: ApprovalSigner,
    /// `server.portal_public_url` or `https://{portal addr}`, no trailing `/`.
    pub portal_base: String,
    /// `[orgs] approval_notify_window_secs` in milliseconds: at most one
    /// notification per (org, partner) per window.
    pub notify_window_ms: i64,
    pub token_ttl_ms: i64,
}

/// The partner admin named in the request.
#[derive(Debug, Clone)]
pub struct ApprovalRequest<'a> {
    pub org_id: &'a str,
    pub org_name: &'a str,
    pub partner_id: &'a str,
    pub partner_admin_email: Option<&'a str>,
    pub partner_admin_name: Option<&'a str>,
    /// The admins to ask (at most five, from `decide_attach`).
    pub to: &'a [String],
}

impl ApprovalLinks {
    /// The approval link for (org, partner), valid `token_ttl_ms` from `now`.
    pub fn link(&self, org_id: &str, partner_id: &str, now: i64) -> String {
        let token = self
            .signer
            .issue(org_id, partner_id, now.saturating_add(self.token_ttl_ms));
        format!("{}/orgs/approve?token={token}", self.portal_base)
    }

    /// Prefix of the dedupe keys of every approval email about `org_id`
    /// (any partner). Ids are escaped (`%` → `%25`, `:` → `%3A`) so one
    /// (org, partner) pair never reads as another.
    pub fn org_key_prefix(org_id: &str) -> String {
        organization::approval_email_key_prefix(org_id)
    }

    /// Prefix of the dedupe keys of the approval emails for (org, partner).
    pub fn key_prefix(org_id: &str, partner_id: &str) -> String {
        organization::approval_email_pair_prefix(org_id, partner_id)
    }

    /// The dedupe key of an approval email queued at `now`: the pair's
    /// prefix and the time. The window is not in the key: the store looks
    /// up when the pair's last email was queued ([`Self::may_notify`]).
    pub fn dedupe_key(&self, org_id: &str, partner_id: &str, now: i64) -> String {
        format!("{}{now}", Self::key_prefix(org_id, partner_id))
    }

    /// Sliding window: a new notification for (org, partner) may go out
    /// when none was queued before, or the last one was queued at least
    /// `notify_window_ms` ago (a clock that went back counts as inside).
    pub fn may_notify(&self, last_queued_at: Option<i64>, now: i64) -> bool {
        match last_queued_at {
            None => true,
            Some(last) => now.saturating_sub(last) >= self.notify_window_ms,
        }
    }

    /// The `OrgAttachApproval` email (`None` without recipients), as an
    /// intent: the mailer composes it and makes the link's token.
    pub fn message(&self, req: &ApprovalRequest<'_>, now: i64) -> Option<EmailMessage> {
        if req.to.is_empty() {
            return None;
        }
        let token = ApprovalSigner::token_secret(
            req.org_id,
            req.partner_id,
            now.saturating_add(self.token_ttl_ms),
        );
        Some(EmailMessage {
            to: req.to.to_vec(),
            kind: EmailKind::OrgAttachApproval,
            subscriber_id: None,
            dedupe_key: Some(self.dedupe_key(req.org_id, req.partner_id, now)),
            intent: EmailIntent::OrgAttachApproval(ApprovalIntent {
                portal_base: self.portal_base.clone(),
                org_name: req.org_name.to_string(),
                partner_id: req.partner_id.to_string(),
                partner_admin_name: req.partner_admin_name.map(str::to_string),
                partner_admin_email: req.partner_admin_email.map(str::to_string),
                token,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::ToDraft;

    #[test]
    fn tokens_round_trip_and_reject_forgery_and_expiry() {
        let s = ApprovalSigner::from_secret(&[7u8; 32]);
        let t = s.issue("org-1", "p-1", 1_000);
        let c = s.verify(&t, 999).expect("valid");
        assert_eq!((c.org_id.as_str(), c.partner_id.as_str()), ("org-1", "p-1"));
        assert_eq!(s.verify(&t, 1_000), Err(TokenError::Expired));
        let other = ApprovalSigner::from_secret(&[8u8; 32]);
        assert_eq!(other.verify(&t, 0), Err(TokenError::Invalid));
        // A token of the same key for another purpose is not an approval.
        let activation = LinkSigner::from_secret(&[7u8; 32]).issue("activation", &["o", "p"], 9);
        assert_eq!(s.verify(&activation, 0), Err(TokenError::Invalid));
    }

    #[test]
    fn notification_window_dedupes() {
        let links = ApprovalLinks {
            signer: ApprovalSigner::from_secret(&[1u8; 32]),
            portal_base: "https://portal.example".into(),
            notify_window_ms: 1000,
            token_ttl_ms: 10_000,
        };
        // A sliding window from the last notification, not fixed buckets:
        // 999 and 1000 lie in different buckets of 1000 but one second
        // apart, so the second is inside the window.
        assert!(links.may_notify(None, 999));
        assert!(!links.may_notify(Some(999), 1000));
        assert!(!links.may_notify(Some(999), 999 + 999));
        assert!(links.may_notify(Some(999), 999 + 1000));
        assert!(links.may_notify(Some(999), 999 + 1001));
        assert!(!links.may_notify(Some(5_000), 10), "a clock that went back");
        // Each queued email has its own key under the pair's prefix.
        let (k1, k2) = (
            links.dedupe_key("o", "p", 999),
            links.dedupe_key("o", "p", 2000),
        );
        assert_ne!(k1, k2);
        let prefix = ApprovalLinks::key_prefix("o", "p");
        assert!(k1.starts_with(&prefix) && k2.starts_with(&prefix));
        assert!(prefix.starts_with(&ApprovalLinks::org_key_prefix("o")));
        // Ids with ':' cannot make one pair look like another.
        assert_ne!(
            ApprovalLinks::key_prefix("a:b", "c"),
            ApprovalLinks::key_prefix("a", "b:c")
        );
        assert!(!ApprovalLinks::key_prefix("a", "b:c")
            .starts_with(&ApprovalLinks::org_key_prefix("a:b")));
        let to = vec!["a@x.example".to_string()];
        let m = links
            .message(
                &ApprovalRequest {
                    org_id: "o",
                    org_name: "Big <Co>",
                    partner_id: "p",
                    partner_admin_email: Some("pa@sp.example"),
                    partner_admin_name: Some("Pat"),
                    to: &to,
                },
                5,
            )
            .unwrap()
            .draft();
        assert!(m.text_body.contains("pa@sp.example"));
        assert!(m
            .text_body
            .contains("https://portal.example/orgs/approve?token="));
        // The token is made when the email is sent, never stored.
        let token = links.signer.issue("o", "p", 5 + 10_000);
        assert!(!m.text_body.contains(&token));
        let signer = LinkSigner::from_secret(&[1u8; 32]);
        let sent = crate::notify::secrets::fill(&m.text_body, &m.secrets, &signer);
        assert!(sent.contains(&format!(
            "https://portal.example/orgs/approve?token={token}"
        )));
        assert_eq!(links.signer.verify(&token, 6).unwrap().org_id, "o");
        assert!(m.html_body.unwrap().contains("Big &lt;Co&gt;"));
    }
}
