//! The org-attach approval request (to at most five admins of the
//! organization), composed when the mailer sends it.

use super::{ApprovalIntent, Draft};
use crate::html::escape as esc;
use crate::notify::secrets::placeholder;

/// The approval request to the organization's admins.
pub(super) fn draft(intent: &ApprovalIntent) -> Draft {
    let link = format!(
        "{}/orgs/approve?token={}",
        intent.portal_base,
        placeholder(0)
    );
    let who = match (&intent.partner_admin_name, &intent.partner_admin_email) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (None, Some(e)) => e.to_string(),
        (Some(n), None) => format!("{n} (partner {})", intent.partner_id),
        (None, None) => format!("the administrator of partner {}", intent.partner_id),
    };
    let subject = format!(
        "Approval needed: add an external full admin to {}",
        intent.org_name
    );
    let text = format!(
        "Hello,\n\nA service provider asks to provision users in your Webex organization \
\"{org}\" and to manage it.\n\nPlease approve {who} as an external full administrator of \
\"{org}\". Until you approve, provisioning fails with error 2017 (unable to provision \
subscriber in existing Webex organization).\n\nReview and approve: {link}\n\n\
If you do not recognize this request, ignore this message.\n",
        org = intent.org_name,
    );
    let html = format!(
        "<p>Hello,</p><p>A service provider asks to provision users in your Webex organization \
<strong>{org}</strong> and to manage it.</p><p>Please approve <strong>{who}</strong> as an \
external full administrator of <strong>{org}</strong>.</p><p><a href=\"{link}\">Review and \
approve the request</a></p><p>If you do not recognize this request, ignore this message.</p>",
        org = esc(&intent.org_name),
        who = esc(&who),
        link = esc(&link),
    );
    Draft {
        subject,
        text_body: text,
        html_body: Some(html),
        secrets: vec![intent.token.clone()],
    }
}
