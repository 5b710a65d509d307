//! Response normalization and matching on stable fields only.
//!
//! Both sides are parsed with quick-xml by local name (any namespace or
//! prefix, or none) into a [`Document`]:
//! - `ProvisioningResponse`: the `requestId` attribute and, per `result`
//!   in order, `operation`, `userId`, `status` and the `errorCode` of a
//!   nested `error`;
//! - `ErrorInfo`: `errorCode`.
//!
//! Error texts, `trackingId`s and anything else are ignored. An expected
//! `status` may list alternatives, `provisioning|provisioned`, where the
//! answer depends on how far background provisioning got.

use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Root of a flow-through answer.
pub const PROVISIONING_RESPONSE: &str = "ProvisioningResponse";
/// Root of a whole-document error.
pub const ERROR_INFO: &str = "ErrorInfo";

/// The stable content of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Provisioning {
        request_id: Option<String>,
        results: Vec<ResultLine>,
    },
    ErrorInfo {
        error_code: Option<String>,
    },
}

impl Document {
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Provisioning { .. } => PROVISIONING_RESPONSE,
            Document::ErrorInfo { .. } => ERROR_INFO,
        }
    }

    /// The root name plus its key fact, for a message.
    fn describe(&self) -> String {
        match self {
            Document::Provisioning { results, .. } => {
                format!("{PROVISIONING_RESPONSE} with {} result(s)", results.len())
            }
            Document::ErrorInfo { error_code } => {
                format!("{ERROR_INFO} (errorCode {})", shown(error_code))
            }
        }
    }
}

/// One `<result>` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultLine {
    pub operation: Option<String>,
    pub user_id: Option<String>,
    /// On the expected side, alternatives separated by `|`.
    pub status: Option<String>,
    /// `errorCode` of the nested `<error>`.
    pub error_code: Option<String>,
}

impl fmt::Display for ResultLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<result")?;
        for (name, value) in [
            ("operation", &self.operation),
            ("userId", &self.user_id),
            ("status", &self.status),
        ] {
            if let Some(v) = value {
                write!(f, " {name}=\"{v}\"")?;
            }
        }
        match &self.error_code {
            Some(code) => write!(f, "><error errorCode=\"{code}\"/></result>"),
            None => f.write_str("/>"),
        }
    }
}

/// What a step expects: the HTTP status and the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub status: u16,
    pub document: Document,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not UTF-8 (byte {0})")]
    NotUtf8(usize),
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("the root element is <{0}>, expected <ProvisioningResponse> or <ErrorInfo>")]
    UnknownRoot(String),
}

/// Parses a response (or expected) body into its stable fields.
pub fn normalize(body: &[u8]) -> Result<Document, NormalizeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(NormalizeError::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|e| NormalizeError::NotUtf8(e.valid_up_to()))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut doc: Option<Document> = None;
    // Inside <ErrorInfo><errorCode>: its text so far.
    let mut error_code_text: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            NormalizeError::Xml(format!("at byte {}: {e}", reader.error_position()))
        })?;
        match event {
            Event::Start(e) => {
                depth += 1;
                open(&e, depth, &mut doc, &mut error_code_text)?;
            }
            Event::Empty(e) => {
                open(&e, depth + 1, &mut doc, &mut error_code_text)?;
                if error_code_text.is_some() && depth + 1 == 2 {
                    finish_error_code(&mut doc, &mut error_code_text);
                }
            }
            Event::End(_) => {
                if depth == 2 {
                    finish_error_code(&mut doc, &mut error_code_text);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                if let Some(buf) = error_code_text.as_mut() {
                    let piece = t
                        .xml10_content()
                        .map_err(|e| NormalizeError::Xml(e.to_string()))?;
                    buf.push_str(&piece);
                }
            }
            Event::CData(c) => {
                if let Some(buf) = error_code_text.as_mut() {
                    let piece = c.decode().map_err(|e| NormalizeError::Xml(e.to_string()))?;
                    buf.push_str(&piece);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(buf) = error_code_text.as_mut() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        buf.push(c);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(NormalizeError::Xml(
            "the document ends inside an element".into(),
        ));
    }
    doc.ok_or_else(|| NormalizeError::Xml("no root element".into()))
}

fn open(
    e: &BytesStart<'_>,
    depth: usize,
    doc: &mut Option<Document>,
    error_code_text: &mut Option<String>,
) -> Result<(), NormalizeError> {
    let local = e.local_name();
    let name = local.as_ref();
    match (depth, doc.as_mut()) {
        (1, _) => {
            *doc = Some(match name {
                b"ProvisioningResponse" => Document::Provisioning {
                    request_id: attribute(e, b"requestId")?,
                    results: Vec::new(),
                },
                b"ErrorInfo" => Document::ErrorInfo { error_code: None },
                other => {
                    return Err(NormalizeError::UnknownRoot(
                        String::from_utf8_lossy(other).chars().take(60).collect(),
                    ))
                }
            });
        }
        (2, Some(Document::Provisioning { results, .. })) if name == b"result" => {
            results.push(ResultLine {
                operation: attribute(e, b"operation")?,
                user_id: attribute(e, b"userId")?,
                status: attribute(e, b"status")?,
                error_code: None,
            });
        }
        (3, Some(Document::Provisioning { results, .. })) if name == b"error" => {
            if let Some(last) = results.last_mut() {
                last.error_code = attribute(e, b"errorCode")?.map(|c| c.trim().to_string());
            }
        }
        (2, Some(Document::ErrorInfo { .. })) if name == b"errorCode" => {
            *error_code_text = Some(String::new());
        }
        _ => {}
    }
    Ok(())
}

fn finish_error_code(doc: &mut Option<Document>, text: &mut Option<String>) {
    if let (Some(t), Some(Document::ErrorInfo { error_code })) = (text.take(), doc.as_mut()) {
        *error_code = Some(t.trim().to_string());
    }
}

/// An attribute by local name (any prefix), unescaped.
fn attribute(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, NormalizeError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| NormalizeError::Xml(format!("bad attribute: {err}")))?;
        if attr.key.as_ref() == b"xmlns" || attr.key.as_ref().starts_with(b"xmlns:") {
            continue;
        }
        if attr.key.local_name().as_ref() == name {
            let value = attr
                .unescape_value()
                .map_err(|err| NormalizeError::Xml(format!("bad attribute value: {err}")))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// One difference between what was expected and what came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    HttpStatus {
        expected: u16,
        actual: u16,
    },
    /// The body is not a ProvisioningResponse / ErrorInfo at all.
    Unreadable {
        expected: String,
        reason: String,
    },
    /// ProvisioningResponse where an ErrorInfo was expected or vice versa.
    DocumentKind {
        expected: String,
        actual: String,
    },
    RequestId {
        expected: Option<String>,
        actual: Option<String>,
    },
    /// One field of one result line.
    ResultField {
        index: usize,
        /// `AddUser alice@…` from the expected line.
        line: String,
        field: &'static str,
        expected: Option<String>,
        actual: Option<String>,
    },
    MissingResult {
        index: usize,
        expected: ResultLine,
    },
    ExtraResult {
        index: usize,
        actual: ResultLine,
    },
    ErrorCode {
        expected: Option<String>,
        actual: Option<String>,
    },
}

impl Mismatch {
    /// What differs (without the values).
    pub fn what(&self) -> String {
        match self {
            Mismatch::HttpStatus { .. } => "HTTP status".into(),
            Mismatch::Unreadable { .. } => "response body".into(),
            Mismatch::DocumentKind { .. } => "document".into(),
            Mismatch::RequestId { .. } => "requestId".into(),
            Mismatch::ResultField {
                index, line, field, ..
            } => format!("result[{index}] ({line}) {field}"),
            Mismatch::MissingResult { index, .. } => format!("result[{index}] missing"),
            Mismatch::ExtraResult { index, .. } => format!("result[{index}] unexpected"),
            Mismatch::ErrorCode { .. } => "ErrorInfo errorCode".into(),
        }
    }

    /// The expected side, as shown in a report.
    pub fn expected(&self) -> String {
        match self {
            Mismatch::HttpStatus { expected, .. } => expected.to_string(),
            Mismatch::Unreadable { expected, .. } | Mismatch::DocumentKind { expected, .. } => {
                expected.clone()
            }
            Mismatch::RequestId { expected, .. }
            | Mismatch::ResultField { expected, .. }
            | Mismatch::ErrorCode { expected, .. } => shown(expected),
            Mismatch::MissingResult { expected, .. } => expected.to_string(),
            Mismatch::ExtraResult { .. } => "(no line)".into(),
        }
    }

    /// The actual side, as shown in a report.
    pub fn actual(&self) -> String {
        match self {
            Mismatch::HttpStatus { actual, .. } => actual.to_string(),
            Mismatch::Unreadable { reason, .. } => reason.clone(),
            Mismatch::DocumentKind { actual, .. } => actual.clone(),
            Mismatch::RequestId { actual, .. }
            | Mismatch::ResultField { actual, .. }
            | Mismatch::ErrorCode { actual, .. } => shown(actual),
            Mismatch::MissingResult { .. } => "(no line)".into(),
            Mismatch::ExtraResult { actual, .. } => actual.to_string(),
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.what(),
            self.expected(),
            self.actual()
        )
    }
}

fn shown(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("\"{s}\""),
        None => "(absent)".into(),
    }
}

/// Whether an actual status is one of the expected alternatives.
pub fn status_matches(expected: &str, actual: &str) -> bool {
    expected.split('|').any(|alt| alt.trim() == actual)
}

/// Every stable difference between `expected` and the actual answer
/// (empty: the step passed).
pub fn compare(expected: &Expected, actual_status: u16, actual_body: &[u8]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if expected.status != actual_status {
        out.push(Mismatch::HttpStatus {
            expected: expected.status,
            actual: actual_status,
        });
    }
    let actual = match normalize(actual_body) {
        Ok(doc) => doc,
        Err(e) => {
            out.push(Mismatch::Unreadable {
                expected: expected.document.describe(),
                reason: e.to_string(),
            });
            return out;
        }
    };
    match (&expected.document, &actual) {
        (
            Document::Provisioning {
                request_id: want_id,
                results: want,
            },
            Document::Provisioning {
                request_id: got_id,
                results: got,
            },
        ) => {
            if want_id != got_id {
                out.push(Mismatch::RequestId {
                    expected: want_id.clone(),
                    actual: got_id.clone(),
                });
            }
            compare_results(want, got, &mut out);
        }
        (Document::ErrorInfo { error_code: want }, Document::ErrorInfo { error_code: got }) => {
            if want != got {
                out.push(Mismatch::ErrorCode {
                    expected: want.clone(),
                    actual: got.clone(),
                });
            }
        }
        (want, got) => out.push(Mismatch::DocumentKind {
            expected: want.describe(),
            actual: got.describe(),
        }),
    }
    out
}

fn compare_results(want: &[ResultLine], got: &[ResultLine], out: &mut Vec<Mismatch>) {
    for (index, (w, g)) in want.iter().zip(got).enumerate() {
        let line = format!(
            "{} {}",
            w.operation.as_deref().unwrap_or("?"),
            w.user_id.as_deref().unwrap_or("(no userId)")
        );
        let status_ok = match (&w.status, &g.status) {
            (Some(w), Some(g)) => status_matches(w, g),
            (w, g) => w == g,
        };
        let checks: [(&'static str, bool, &Option<String>, &Option<String>); 4] = [
            (
                "operation",
                w.operation == g.operation,
                &w.operation,
                &g.operation,
            ),
            ("userId", w.user_id == g.user_id, &w.user_id, &g.user_id),
            ("status", status_ok, &w.status, &g.status),
            (
                "errorCode",
                w.error_code == g.error_code,
                &w.error_code,
                &g.error_code,
            ),
        ];
        for (field, ok, expected, actual) in checks {
            if !ok {
                out.push(Mismatch::ResultField {
                    index,
                    line: line.clone(),
                    field,
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
    }
    for (index, w) in want.iter().enumerate().skip(got.len()) {
        out.push(Mismatch::MissingResult {
            index,
            expected: w.clone(),
        });
    }
    for (index, g) in got.iter().enumerate().skip(want.len()) {
        out.push(Mismatch::ExtraResult {
            index,
            actual: g.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "urn:bwgate:flowthrough:1";

    fn response(request_id: Option<&str>, lines: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ProvisioningResponse xmlns=\"{NS}\"{} trackingId=\"BWG_1\">{lines}</ProvisioningResponse>",
            request_id
                .map(|r| format!(" requestId=\"{r}\""))
                .unwrap_or_default()
        )
    }

    fn error_info(code: u32) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\"><summary>text {code}</summary><summaryEnglish>x</summaryEnglish><errorCode>{code}</errorCode><trackingId>T</trackingId></ErrorInfo>")
    }

    fn expected(status: u16, xml: &str) -> Expected {
        Expected {
            status,
            document: normalize(xml.as_bytes()).expect("expected side parses"),
        }
    }

    const OK_LINE: &str =
        r#"<result operation="AddUser" userId="a@x.example" status="provisioning"/>"#;
    const ERR_LINE: &str = r#"<result operation="AddUser" userId="b@x.example"><error errorCode="9001">Invalid email address. emailAddress: …</error></result>"#;

    #[test]
    fn normalizes_both_document_kinds_namespace_tolerantly() {
        let doc = normalize(response(Some("r&amp;1"), &format!("{OK_LINE}{ERR_LINE}")).as_bytes())
            .unwrap();
        assert_eq!(
            doc,
            Document::Provisioning {
                request_id: Some("r&1".into()),
                results: vec![
                    ResultLine {
                        operation: Some("AddUser".into()),
                        user_id: Some("a@x.example".into()),
                        status: Some("provisioning".into()),
                        error_code: None,
                    },
                    ResultLine {
                        operation: Some("AddUser".into()),
                        user_id: Some("b@x.example".into()),
                        status: None,
                        error_code: Some("9001".into()),
                    },
                ],
            }
        );
        // Prefixed and un-namespaced forms give the same stable content.
        let prefixed = format!(
            "<ft:ProvisioningResponse xmlns:ft=\"{NS}\" trackingId=\"x\"><ft:result operation=\"AddUser\" userId=\"a@x.example\" status=\"provisioning\"/></ft:ProvisioningResponse>"
        );
        let plain = "<ProvisioningResponse><result operation=\"AddUser\" userId=\"a@x.example\" status=\"provisioning\"/></ProvisioningResponse>";
        assert_eq!(
            normalize(prefixed.as_bytes()).unwrap(),
            normalize(plain.as_bytes()).unwrap()
        );
        assert_eq!(
            normalize(error_info(9011).as_bytes()).unwrap(),
            Document::ErrorInfo {
                error_code: Some("9011".into())
            }
        );
        let spaced = "<x:ErrorInfo xmlns:x=\"http://schema.broadsoft.com/xsi\"><x:errorCode> 9004 </x:errorCode></x:ErrorInfo>";
        assert_eq!(
            normalize(spaced.as_bytes()).unwrap(),
            Document::ErrorInfo {
                error_code: Some("9004".into())
            }
        );
    }

    #[test]
    fn unreadable_bodies_are_errors() {
        assert_eq!(normalize(b"  "), Err(NormalizeError::Empty));
        assert!(matches!(
            normalize(b"{\"message\":1}"),
            Err(NormalizeError::Xml(_))
        ));
        assert_eq!(
            normalize(b"<html/>"),
            Err(NormalizeError::UnknownRoot("html".into()))
        );
        assert!(matches!(
            normalize(b"<ErrorInfo><errorCode>1</ErrorInfo>"),
            Err(NormalizeError::Xml(_))
        ));
        assert_eq!(normalize(b"<r>\xFF</r>"), Err(NormalizeError::NotUtf8(3)));
    }

    #[test]
    fn equal_responses_match_ignoring_texts_and_tracking_ids() {
        let want = expected(200, &response(Some("r1"), &format!("{OK_LINE}{ERR_LINE}")));
        let got = response(Some("r1"), &format!("{OK_LINE}{ERR_LINE}"))
            .replace("BWG_1", "BWG_other")
            .replace("Invalid email address.", "Some other text.");
        assert_eq!(compare(&want, 200, got.as_bytes()), vec![]);
        let want = expected(401, &error_info(9004));
        let got = error_info(9004).replace("text 9004", "different summary");
        assert_eq!(compare(&want, 401, got.as_bytes()), vec![]);
    }

    #[test]
    fn different_http_status_is_reported() {
        let want = expected(200, &response(None, OK_LINE));
        let m = compare(&want, 500, response(None, OK_LINE).as_bytes());
        assert_eq!(
            m,
            vec![Mismatch::HttpStatus {
                expected: 200,
                actual: 500
            }]
        );
        assert_eq!(m[0].to_string(), "HTTP status: expected 200, got 500");
    }

    #[test]
    fn different_error_codes_are_reported() {
        let want = expected(400, &error_info(9011));
        let m = compare(&want, 400, error_info(9012).as_bytes());
        assert_eq!(
            m,
            vec![Mismatch::ErrorCode {
                expected: Some("9011".into()),
                actual: Some("9012".into())
            }]
        );
        assert_eq!(
            m[0].to_string(),
            "ErrorInfo errorCode: expected \"9011\", got \"9012\""
        );
        // Per result line.
        let want = expected(200, &response(None, ERR_LINE));
        let got = response(None, &ERR_LINE.replace("9001", "9017"));
        let m = compare(&want, 200, got.as_bytes());
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            m[0].to_string(),
            "result[0] (AddUser b@x.example) errorCode: expected \"9001\", got \"9017\""
        );
    }

    #[test]
    fn status_alternatives() {
        assert!(status_matches("provisioning|provisioned", "provisioned"));
        assert!(status_matches("provisioning | provisioned", "provisioning"));
        assert!(!status_matches("provisioning|provisioned", "error"));
        assert!(!status_matches(
            "provisioning|provisioned",
            "provisioning|provisioned|x"
        ));
        let want = expected(
            200,
            &response(
                None,
                &OK_LINE.replace("provisioning", "provisioning|provisioned"),
            ),
        );
        for got in ["provisioning", "provisioned"] {
            let body = response(None, &OK_LINE.replace("provisioning", got));
            assert_eq!(compare(&want, 200, body.as_bytes()), vec![], "{got}");
        }
        let body = response(None, &OK_LINE.replace("provisioning", "updating"));
        let m = compare(&want, 200, body.as_bytes());
        assert_eq!(
            m,
            vec![Mismatch::ResultField {
                index: 0,
                line: "AddUser a@x.example".into(),
                field: "status",
                expected: Some("provisioning|provisioned".into()),
                actual: Some("updating".into()),
            }]
        );
    }

    #[test]
    fn status_instead_of_error_reports_both_fields() {
        let want = expected(200, &response(None, ERR_LINE));
        let got = response(
            None,
            r#"<result operation="AddUser" userId="b@x.example" status="provisioning"/>"#,
        );
        let fields: Vec<&str> = compare(&want, 200, got.as_bytes())
            .iter()
            .map(|m| match m {
                Mismatch::ResultField { field, .. } => *field,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fields, vec!["status", "errorCode"]);
    }

    #[test]
    fn missing_and_extra_result_lines() {
        let want = expected(200, &response(None, &format!("{OK_LINE}{ERR_LINE}")));
        let m = compare(&want, 200, response(None, OK_LINE).as_bytes());
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(matches!(&m[0], Mismatch::MissingResult { index: 1, .. }));
        assert_eq!(
            m[0].to_string(),
            "result[1] missing: expected <result operation=\"AddUser\" userId=\"b@x.example\"><error errorCode=\"9001\"/></result>, got (no line)"
        );

        let want = expected(200, &response(None, OK_LINE));
        let got = response(None, &format!("{OK_LINE}{ERR_LINE}"));
        let m = compare(&want, 200, got.as_bytes());
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(matches!(&m[0], Mismatch::ExtraResult { index: 1, .. }));
        assert!(m[0].actual().contains("errorCode=\"9001\""));
    }

    #[test]
    fn request_id_and_user_id_differences() {
        let want = expected(200, &response(Some("r1"), OK_LINE));
        let got = response(None, &OK_LINE.replace("a@x.example", "A@x.example"));
        let m = compare(&want, 200, got.as_bytes());
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].to_string(), "requestId: expected \"r1\", got (absent)");
        assert_eq!(
            m[1].to_string(),
            "result[0] (AddUser a@x.example) userId: expected \"a@x.example\", got \"A@x.example\""
        );
    }

    #[test]
    fn error_info_versus_provisioning_response() {
        let want = expected(200, &response(None, OK_LINE));
        let m = compare(&want, 400, error_info(9011).as_bytes());
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m[0].what(), "HTTP status");
        assert_eq!(
            m[1].to_string(),
            "document: expected ProvisioningResponse with 1 result(s), got ErrorInfo (errorCode \"9011\")"
        );

        let want = expected(401, &error_info(9004));
        let m = compare(&want, 200, response(None, OK_LINE).as_bytes());
        assert!(matches!(m[1], Mismatch::DocumentKind { .. }), "{m:?}");

        let m = compare(&want, 404, b"{\"message\":\"nope\"}");
        assert!(
            matches!(&m[1], Mismatch::Unreadable { reason, .. } if reason.contains("not well-formed")),
            "{m:?}"
        );
    }
}
