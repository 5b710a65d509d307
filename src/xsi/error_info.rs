//! The `ErrorInfo` body of an XSI error:
//!
//! ```text
//! <ErrorInfo xmlns="http://schema.broadsoft.com/xsi">
//!   <summary>…</summary> <summaryEnglish>…</summaryEnglish>
//!   <errorCode>8251</errorCode>
//! </ErrorInfo>
//! ```
//!
//! BroadWorks sends `summary`, `summaryEnglish` and (usually) `errorCode`;
//! bwgate's own answers add `trackingId`
//! (`crate::http::error::error_info_xml`). Any other child element is kept
//! in [`ErrorInfo::details`].

use super::document::{self, Element, XsiLimits, XsiParseError};
use crate::domain::{ErrorCode, Refusal};

/// An XSI error as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// In the user's language.
    pub summary: String,
    pub summary_english: String,
    /// `None` when absent or not a number (the text is then in `details`).
    pub error_code: Option<u32>,
    /// bwgate's `trackingId`.
    pub tracking_id: Option<String>,
    /// Every other child element, as (local name, text), in order; also a
    /// repeated known element or a non-numeric `errorCode`.
    pub details: Vec<(String, String)>,
}

/// Why a body is not an `ErrorInfo`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorInfoError {
    #[error(transparent)]
    Document(#[from] XsiParseError),
    #[error("the root element is <{0}>, not <ErrorInfo>")]
    NotErrorInfo(String),
}

impl ErrorInfoError {
    /// The refusal for a request carrying this body: the document's code,
    /// or 9017 for a well-formed document that is not an `ErrorInfo`.
    pub fn to_refusal(&self) -> Refusal {
        match self {
            ErrorInfoError::Document(e) => e.to_refusal(),
            ErrorInfoError::NotErrorInfo(_) => {
                Refusal::new(ErrorCode::InvalidParameterValue, self.to_string())
            }
        }
    }
}

impl From<ErrorInfoError> for Refusal {
    fn from(e: ErrorInfoError) -> Self {
        e.to_refusal()
    }
}

impl ErrorInfo {
    /// Reads an `ErrorInfo` body (UTF-8 or ISO-8859-1, default
    /// [`XsiLimits`]).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<ErrorInfo, ErrorInfoError> {
        let root = document::parse(body, content_type, &XsiLimits::default())?;
        ErrorInfo::from_element(&root)
    }

    /// Reads a parsed document whose root is `ErrorInfo` (any namespace).
    pub fn from_element(root: &Element) -> Result<ErrorInfo, ErrorInfoError> {
        if root.name != "ErrorInfo" {
            let mut name: String = root.name.chars().take(60).collect();
            if root.name.chars().count() > 60 {
                name.push('…');
            }
            return Err(ErrorInfoError::NotErrorInfo(name));
        }
        let mut summary = None;
        let mut summary_english = None;
        let mut error_code = None;
        let mut tracking_id = None;
        let mut details = Vec::new();
        for child in &root.children {
            let text = &child.text;
            let taken = match child.name.as_str() {
                "summary" if summary.is_none() => {
                    summary = Some(text.clone());
                    true
                }
                "summaryEnglish" if summary_english.is_none() => {
                    summary_english = Some(text.clone());
                    true
                }
                "errorCode" if error_code.is_none() => {
                    error_code = text.parse::<u32>().ok();
                    error_code.is_some()
                }
                "trackingId" if tracking_id.is_none() => {
                    tracking_id = Some(text.clone());
                    true
                }
                _ => false,
            };
            if !taken {
                details.push((child.name.clone(), text.clone()));
            }
        }
        let info = ErrorInfo {
            summary: summary.unwrap_or_default(),
            summary_english: summary_english.unwrap_or_default(),
            error_code,
            tracking_id: tracking_id.filter(|t| !t.is_empty()),
            details,
        };
        Ok(info)
    }

    /// What to tell a person: `summaryEnglish`, else `summary` (as XSI
    /// clients read it).
    pub fn message(&self) -> &str {
        if self.summary_english.is_empty() {
            &self.summary
        } else {
            &self.summary_english
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_refusals_with_the_tables_codes() {
        let other = ErrorInfo::parse(b"<Profile/>", None).expect_err("not ErrorInfo");
        let r = Refusal::from(other);
        assert_eq!(
            (r.code, r.http_status()),
            (ErrorCode::InvalidParameterValue, 400)
        );
        assert!(r.message().contains("<Profile>"), "{r}");
        let broken = ErrorInfo::parse(b"<ErrorInfo>", None).expect_err("unclosed");
        assert_eq!(broken.to_refusal().code, ErrorCode::MalformedXml);
    }

    #[test]
    fn reads_the_real_8251_reply() {
        let doc = include_str!(
            "../../tests/support/xsi-samples/actions-errorinfo-8251-duplicate-number.real-comment.xml"
        );
        let info = ErrorInfo::parse(doc.as_bytes(), Some("text/xml;charset=ISO-8859-1")).unwrap();
        assert_eq!(info.error_code, Some(8251));
        assert_eq!(info.summary, "Phone Number already exists +1123456789.");
        assert_eq!(info.message(), info.summary);
        assert_eq!(info.tracking_id, None);
        assert!(info.details.is_empty());
    }

    #[test]
    fn reads_what_bwgate_writes() {
        let summary = "Request document is not well-formed XML: `</a>` & <b> \"quoted\"";
        let xml = crate::http::error::error_info_xml(9011, summary, "BWG_1f2e");
        let info = ErrorInfo::parse(xml.as_bytes(), Some("application/xml")).unwrap();
        assert_eq!(info.error_code, Some(9011));
        assert_eq!(info.summary, summary);
        assert_eq!(info.summary_english, summary);
        assert_eq!(info.tracking_id.as_deref(), Some("BWG_1f2e"));
        assert!(info.details.is_empty());
    }

    #[test]
    fn odd_error_infos() {
        let info = ErrorInfo::parse(
            b"<e:ErrorInfo xmlns:e=\"urn:other\"><summaryEnglish>Only English</summaryEnglish>\
<errorCode>-1</errorCode><errorCode>7</errorCode><details>more</details></e:ErrorInfo>",
            None,
        )
        .unwrap();
        assert_eq!(info.message(), "Only English");
        assert_eq!(info.error_code, Some(7));
        assert_eq!(
            info.details,
            vec![
                ("errorCode".to_string(), "-1".to_string()),
                ("details".to_string(), "more".to_string())
            ]
        );
        assert_eq!(
            ErrorInfo::parse(b"<Profile/>", None),
            Err(ErrorInfoError::NotErrorInfo("Profile".into()))
        );
        assert!(matches!(
            ErrorInfo::parse(b"<ErrorInfo>", None),
            Err(ErrorInfoError::Document(XsiParseError::Unclosed(_)))
        ));
    }
}
