//! `<ProvisioningResponse>`: one `<result>` per operation, in order.

use crate::domain::subscriber::OperationKind;
use crate::domain::ErrorCode;

use super::NAMESPACE;

/// What happened to one operation of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    pub operation: OperationKind,
    /// As sent (may be invalid or absent).
    pub user_id: Option<String>,
    /// `Ok(status)` (e.g. `provisioning`, `pending_email_input`) or the
    /// error code with a one-line summary.
    pub outcome: Result<String, (ErrorCode, String)>,
}

/// Renders the response document (UTF-8).
pub fn render_response(
    request_id: Option<&str>,
    tracking_id: &str,
    results: &[ResultLine],
) -> String {
    let mut out = String::with_capacity(160 + results.len() * 96);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ProvisioningResponse xmlns=\"");
    out.push_str(NAMESPACE);
    out.push('"');
    if let Some(id) = request_id {
        attr(&mut out, "requestId", id);
    }
    attr(&mut out, "trackingId", tracking_id);
    out.push('>');
    for r in results {
        out.push_str("<result");
        attr(&mut out, "operation", r.operation.as_str());
        if let Some(user_id) = &r.user_id {
            attr(&mut out, "userId", user_id);
        }
        match &r.outcome {
            Ok(status) => {
                attr(&mut out, "status", status);
                out.push_str("/>");
            }
            Err((code, summary)) => {
                out.push_str("><error");
                attr(&mut out, "errorCode", &code.code().to_string());
                out.push('>');
                escape_into(&mut out, summary, false);
                out.push_str("</error></result>");
            }
        }
    }
    out.push_str("</ProvisioningResponse>");
    out
}

fn attr(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value, true);
    out.push('"');
}

/// XML escaping for text and double-quoted attribute values. Beyond the
/// usual `< > & " '`, tab/CR/LF in attributes become character references
/// (so they survive attribute-value normalization), CR in text too, and
/// characters XML 1.0 cannot carry at all (other C0 controls, U+FFFE,
/// U+FFFF) become U+FFFD: user input echoed back can never make the
/// response ill-formed. Every XML answer of the gateway escapes with this.
pub(crate) fn escape_into(out: &mut String, s: &str, attribute: bool) {
    let needs = |c: char| {
        matches!(c, '<' | '>' | '&' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}') || (c as u32) < 0x20
    };
    if !s.chars().any(needs) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}
