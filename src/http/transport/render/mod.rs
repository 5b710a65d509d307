//! The one place where refusals become wire responses: one renderer per
//! format (XSI `ErrorInfo` in `xml`, JSON in `json`, HTML in `html`; the
//! flow-through result line is `flowthrough::response`). The code, the
//! HTTP status and the summary always come from the error table
//! (`domain::ErrorCode`), through `status_of`.

pub mod html;
pub mod json;
pub mod xml;

pub use xml::error_info_xml;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::domain::{ErrorCode, Refusal};
use crate::http::ResponseBody;

/// A data-layer failure on the wire: 9021 with Retry-After when a retry
/// may help, else the internal error; the cause goes to the log only.
impl From<crate::provision::DataError> for Refusal {
    fn from(e: crate::provision::DataError) -> Self {
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
            xml::error_info_xml(err.code.code(), &summary, tracking_id),
        ),
        ErrorFormat::Json => ("application/json", json::api_body(err, tracking_id)),
        ErrorFormat::Html => (
            "text/html; charset=utf-8",
            html::error_page(err.code.code(), &summary, tracking_id),
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

    /// A store failure reaches the wire as the table's code, never its text.
    #[test]
    fn a_data_error_becomes_unavailable_or_internal_without_its_text() {
        use crate::provision::DataError;
        use crate::store::StoreError;
        let busy = Refusal::from(DataError::from(StoreError::Database("disk I/O".into())));
        assert_eq!(busy.code, ErrorCode::StorageUnavailable);
        assert_eq!(busy.retry_after, Some(1));
        assert!(!busy.summary().contains("disk I/O"), "{}", busy.summary());
        let corrupt = Refusal::from(DataError::from(StoreError::Corrupt("row 7".into())));
        assert_eq!(corrupt.code, ErrorCode::Internal);
        assert_eq!(corrupt.retry_after, None);
        assert!(
            !corrupt.summary().contains("row 7"),
            "{}",
            corrupt.summary()
        );
        let resp = error_response(&busy, ErrorFormat::Json, "T3");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn status_and_retry_after_come_from_the_table() {
        let err = Refusal::bare(ErrorCode::RateLimited).retry_after(3);
        let resp = error_response(&err, ErrorFormat::Json, "T2");
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "3");
    }
}
