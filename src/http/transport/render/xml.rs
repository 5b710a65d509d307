//! XSI `ErrorInfo`: the whole-request refusal of the flow-through and XSI
//! faces.

use crate::flowthrough::response::escape_into;

/// `<ErrorInfo>` as BroadWorks XSPs send it, plus our `trackingId`. The
/// summary can quote the request (a parser error names the offending
/// tag), so it is escaped like every echoed value: characters XML 1.0
/// cannot carry become U+FFFD and the answer stays well-formed.
pub fn error_info_xml(code: u32, summary: &str, tracking_id: &str) -> String {
    let text = |s: &str| {
        let mut out = String::with_capacity(s.len());
        escape_into(&mut out, s, false);
        out
    };
    let summary = text(summary);
    let tracking_id = text(tracking_id);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\"><summary>{summary}</summary><summaryEnglish>{summary}</summaryEnglish><errorCode>{code}</errorCode><trackingId>{tracking_id}</trackingId></ErrorInfo>"
    )
}
