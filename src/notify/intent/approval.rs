//! The org-attach approval request (to at most five admins of the
//! organization), composed when the mailer sends it.

use serde::{Deserialize, Serialize};

use super::Draft;
use crate::html::escape as esc;
use crate::notify::secrets::placeholder;
use crate::notify::MailSecret;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalIntent {
    /// `server.portal_public_url` (or the portal address) when queued.
    pub portal_base: String,
    pub org_name: String,
    pub partner_id: String,
    /// The template's partner admin, named as the admin to approve.
    pub partner_admin_name: Option<String>,
    pub partner_admin_email: Option<String>,
    /// How to make the approval link's token.
    pub token: MailSecret,
}

impl ApprovalIntent {
    pub(super) fn draft(&self) -> Draft {
        let link = format!("{}/orgs/approve?token={}", self.portal_base, placeholder(0));
        let who = match (&self.partner_admin_name, &self.partner_admin_email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => format!("{n} (partner {})", self.partner_id),
            (None, None) => format!("the administrator of partner {}", self.partner_id),
        };
        let subject = format!(
            "Approval needed: add an external full admin to {}",
            self.org_name
        );
        let text = format!(
            "Hello,\n\nA service provider asks to provision users in your Webex organization \
\"{org}\" and to manage it.\n\nPlease approve {who} as an external full administrator of \
\"{org}\". Until you approve, provisioning fails with error 2017 (unable to provision \
subscriber in existing Webex organization).\n\nReview and approve: {link}\n\n\
If you do not recognize this request, ignore this message.\n",
            org = self.org_name,
        );
        let html = format!(
            "<p>Hello,</p><p>A service provider asks to provision users in your Webex organization \
<strong>{org}</strong> and to manage it.</p><p>Please approve <strong>{who}</strong> as an \
external full administrator of <strong>{org}</strong>.</p><p><a href=\"{link}\">Review and \
approve the request</a></p><p>If you do not recognize this request, ignore this message.</p>",
            org = esc(&self.org_name),
            who = esc(&who),
            link = esc(&link),
        );
        Draft {
            subject,
            text_body: text,
            html_body: Some(html),
            secrets: vec![self.token.clone()],
        }
    }
}
