//! The flow-through parser as the HTTP handler calls it:
//! `bwgate::flowthrough::parse_request(body, content_type, limits)`
//! (charset decoding, streaming parse, per-operation validation), then the
//! answers built from its result.
//!
//! Input: an optional first line `Content-Type: VALUE\n`, then the body.
//!
//! Invariants (a violation is a finding):
//! - no panic, whatever the bytes and the content type;
//! - a document accepted under tight limits is accepted, identically, under
//!   loose ones (limits only ever refuse);
//! - an accepted document has 1..=max_operations operations, a trimmed
//!   requestId of at most 128 characters without control characters, and
//!   each operation's validation error carries a known field-level code;
//! - a refused document carries a known document-level code with a 4xx
//!   status and a bounded message;
//! - the answer for either outcome (`<ProvisioningResponse>` or the
//!   `<ErrorInfo>` of the refusal) is well-formed XML 1.0 and echoes the
//!   requestId, userIds and messages intact.

#![no_main]

use libfuzzer_sys::fuzz_target;

use bwgate::domain::ErrorCode;
use bwgate::flowthrough::{
    parse_request, render_response, DocumentError, ParseLimits, ParsedRequest, ResultLine,
};
use bwgate::http::error::error_info_xml;
use bwgate_fuzz::{as_echoed, check_answer_xml, split_content_type};

const TIGHT: ParseLimits = ParseLimits {
    max_depth: 5,
    max_elements: 64,
    max_operations: 4,
    max_attributes: 8,
    max_namespace_declarations: 8,
};

/// Codes a whole document may be refused with.
const DOCUMENT_CODES: &[ErrorCode] = &[
    ErrorCode::MalformedXml,
    ErrorCode::ForbiddenXmlConstruct,
    ErrorCode::XmlTooComplex,
    ErrorCode::TooManyOperations,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::MissingParameter,
    ErrorCode::InvalidParameterValue,
    ErrorCode::InvalidParameterSize,
];

/// Codes one operation's fields may be refused with.
const FIELD_CODES: &[ErrorCode] = &[
    ErrorCode::MissingParameter,
    ErrorCode::InvalidParameterSize,
    ErrorCode::InvalidParameterValue,
    ErrorCode::InvalidEmail,
    ErrorCode::InvalidPhoneNumber,
    ErrorCode::TrunkUserWithRouteList,
];

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split_content_type(data);
    let loose = ParseLimits::default();
    let tight = parse_request(body, content_type, &TIGHT);
    let full = parse_request(body, content_type, &loose);
    if let Ok(t) = &tight {
        assert_eq!(
            Ok(t),
            full.as_ref(),
            "accepted under tight limits but not identically under loose ones"
        );
    }
    for (result, limits) in [(&tight, &TIGHT), (&full, &loose)] {
        match result {
            Ok(parsed) => check_accepted(parsed, limits),
            Err(e) => check_refused(e),
        }
    }
});

fn check_accepted(parsed: &ParsedRequest, limits: &ParseLimits) {
    let n = parsed.operations.len();
    assert!(n >= 1 && n <= limits.max_operations, "{n} operations");
    assert!(parsed.unknown_elements.len() < limits.max_elements);
    if let Some(id) = &parsed.request_id {
        assert!(!id.is_empty() && id.trim() == id, "requestId {id:?}");
        assert!(id.chars().count() <= 128, "requestId too long");
        assert!(!id.chars().any(char::is_control), "requestId {id:?}");
    }
    let mut lines = Vec::with_capacity(n);
    for op in &parsed.operations {
        if let Some(u) = &op.user_id {
            assert!(!u.is_empty() && u.trim() == u, "userId {u:?}");
        }
        let outcome = match &op.result {
            Ok(operation) => {
                assert_eq!(operation.kind(), op.kind);
                Ok("provisioning".to_string())
            }
            Err(e) => {
                assert!(
                    FIELD_CODES.contains(&e.code),
                    "field error with unexpected code {:?}: {e}",
                    e.code
                );
                Err((e.code, e.to_string()))
            }
        };
        lines.push(ResultLine {
            operation: op.kind,
            user_id: op.user_id.clone(),
            outcome,
        });
    }

    let xml = render_response(parsed.request_id.as_deref(), "BWG_fuzz", &lines);
    let elements = check_answer_xml(&xml);
    let root = &elements[0];
    assert_eq!(root.name, "ProvisioningResponse");
    assert_eq!(
        root.attr("requestId").map(str::to_owned),
        parsed.request_id.as_deref().map(as_echoed)
    );
    let results: Vec<_> = elements.iter().filter(|e| e.name == "result").collect();
    assert_eq!(results.len(), lines.len());
    for (el, line) in results.iter().zip(&lines) {
        assert_eq!(el.attr("operation"), Some(line.operation.as_str()));
        assert_eq!(
            el.attr("userId").map(str::to_owned),
            line.user_id.as_deref().map(as_echoed),
            "userId not echoed intact in:\n{xml}"
        );
    }
    let errors: Vec<_> = elements.iter().filter(|e| e.name == "error").collect();
    let expected: Vec<_> = lines
        .iter()
        .filter_map(|l| l.outcome.as_ref().err())
        .collect();
    assert_eq!(errors.len(), expected.len());
    for (el, (code, message)) in errors.iter().zip(expected) {
        assert_eq!(el.attr("errorCode"), Some(code.code().to_string().as_str()));
        assert_eq!(el.text, as_echoed(message), "message not intact in:\n{xml}");
    }
}

fn check_refused(e: &DocumentError) {
    assert!(
        DOCUMENT_CODES.contains(&e.code),
        "document refused with unexpected code {:?}: {e}",
        e.code
    );
    assert_eq!(ErrorCode::from_code(e.code.code()), Some(e.code));
    assert!((400..500).contains(&e.code.http_status()));
    assert!(!e.message().is_empty());
    // Quoted input is cut (60 characters of a name, 160 of a parser
    // message), but Debug-escaped control characters take up to 10 each.
    assert!(
        e.message().chars().count() <= 1000,
        "unbounded error message ({} characters)",
        e.message().chars().count()
    );

    // The answer the HTTP face sends for this refusal.
    let summary = e.summary();
    let xml = error_info_xml(e.code.code(), &summary, "BWG_fuzz");
    let elements = check_answer_xml(&xml);
    assert_eq!(elements[0].name, "ErrorInfo");
    let summary_el = elements
        .iter()
        .find(|el| el.name == "summary")
        .expect("summary element");
    // Line ends are normalized by XML parsers; everything else is intact.
    assert_eq!(
        summary_el.text.replace('\r', "\n"),
        as_echoed(&summary).replace('\r', "\n"),
        "summary not intact in:\n{xml}"
    );
}
