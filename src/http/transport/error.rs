//! The one place where errors become wire responses. Each face picks a
//! body format; the code, status and summary always come from the error
//! table (`domain::ErrorCode`).

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::domain::{ErrorCode, Refusal};
use crate::flowthrough::response::escape_into;
use crate::http::ResponseBody;

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store error");
        if e.is_retryable() {
            Refusal::bare(ErrorCode::StorageUnavailable).retry_after(1)
        } else {
            Refusal::bare(ErrorCode::Internal)
        }
    }
}

/// The table's HTTP status for a refusal: the only place a code becomes
/// a status.
pub fn status_of(refusal: &Refusal) -> StatusCode {
    StatusCode::from_u16(refusal.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Body format of the face that answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// BroadWorks `ErrorInfo` in the XSI namespace (flow-through, XSI).
    XsiXml,
    /// `{"message","errors":[{"errorCode","description"}],"trackingId"}`
    /// (partner JSON API, admin API).
    Json,
    /// A small accessible page (portal).
    Html,
}

pub fn error_response(
    err: &Refusal,
    format: ErrorFormat,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let summary = err.summary();
    let (content_type, body) = match format {
        ErrorFormat::XsiXml => (
            "application/xml; charset=UTF-8",
            error_info_xml(err.code.code(), &summary, tracking_id),
        ),
        ErrorFormat::Json => (
            "application/json",
            serde_json::json!({
                "message": summary,
                "errors": [{"errorCode": err.code.code(), "description": summary}],
                "trackingId": tracking_id,
            })
            .to_string(),
        ),
        ErrorFormat::Html => (
            "text/html; charset=utf-8",
            crate::http::portal::error_page(err.code.code(), &summary, tracking_id),
        ),
    };
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
    *resp.status_mut() = status_of(err);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(secs) = err.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_escapes_and_carries_code() {
        let xml = error_info_xml(9011, "bad <doc> & more", "T1");
        assert!(xml.contains("<errorCode>9011</errorCode>"));
        assert!(xml.contains("bad &lt;doc&gt; &amp; more"));
        assert!(xml.contains("xmlns=\"http://schema.broadsoft.com/xsi\""));
    }

    /// Found by the `flowthrough_parse` fuzz target: a 9011 summary quotes
    /// the mismatched end tag, control characters included, and the
    /// ErrorInfo answer was then not XML at all.
    #[test]
    fn error_info_stays_well_formed_with_control_characters() {
        let xml = error_info_xml(
            9011,
            "expected `</userId>`, but `</u\0\u{2}serId>` was found\r",
            "T1\u{1b}",
        );
        assert!(!xml
            .chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')));
        assert!(xml.contains("`&lt;/u\u{FFFD}\u{FFFD}serId&gt;` was found&#13;"));
        assert!(xml.contains("<trackingId>T1\u{FFFD}</trackingId>"));
        let mut reader = quick_xml::Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}: {xml}"),
            }
        }
    }

    #[test]
    fn status_and_retry_after_come_from_the_table() {
        let err = Refusal::bare(ErrorCode::RateLimited).retry_after(3);
        let resp = error_response(&err, ErrorFormat::Json, "T2");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "3");
    }
}
