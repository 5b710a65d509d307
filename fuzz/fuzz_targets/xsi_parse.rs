//! The XSI document reader: `bwgate::xsi::parse(body, content_type,
//! limits)` (charset decoding, the bounded namespace-aware parse into an
//! element tree), the tree written back with `Element::to_xml`, and the
//! typed readers built on the tree (`Profile`, `ErrorInfo`).
//!
//! Input: an optional first line `Content-Type: VALUE\n`, then the body.
//!
//! Invariants (a violation is a finding):
//! - no panic, whatever the bytes and the content type;
//! - an accepted document respects the limits it was read under: nesting
//!   depth and element count of the tree at most `max_depth` and
//!   `max_elements`;
//! - a document accepted under tight limits is accepted, identically (the
//!   same tree), under the default ones (limits only ever refuse);
//! - a refusal carries a document-level error code (9010, 9011, 9012,
//!   9013, 9014) and a bounded message without control characters;
//! - `to_xml` of an accepted tree is well-formed XML 1.0 made of XML
//!   characters, with the tree's elements in document order, and parses
//!   back to an equal tree (under the same depth and element limits);
//! - `Profile::from_element` and `ErrorInfo::from_element` never panic on
//!   an accepted tree; a `Profile` they return has a non-empty user id, an
//!   `ErrorInfo` comes from an `<ErrorInfo>` root.

#![no_main]

use libfuzzer_sys::fuzz_target;

use bwgate::domain::ErrorCode;
use bwgate::xsi::{parse, parse_str, Element, ErrorInfo, Profile, XsiLimits, XsiParseError};
use bwgate_fuzz::{check_answer_xml, split_content_type};

const TIGHT: XsiLimits = XsiLimits {
    max_depth: 6,
    max_elements: 64,
    max_bytes: 4096,
    max_attributes: 8,
    max_namespace_declarations: 8,
};

/// Codes a whole document may be refused with.
const DOCUMENT_CODES: &[ErrorCode] = &[
    ErrorCode::DocumentTooLarge,
    ErrorCode::MalformedXml,
    ErrorCode::ForbiddenXmlConstruct,
    ErrorCode::XmlTooComplex,
    ErrorCode::UnsupportedMediaType,
];

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split_content_type(data);
    let default = XsiLimits::default();
    let tight = parse(body, content_type, &TIGHT);
    let full = parse(body, content_type, &default);
    if let Ok(t) = &tight {
        assert_eq!(
            Ok(t),
            full.as_ref(),
            "accepted under tight limits but not identically under the default ones"
        );
    }
    for (result, limits) in [(&tight, &TIGHT), (&full, &default)] {
        match result {
            Ok(tree) => check_accepted(tree, limits),
            Err(e) => check_refused(e),
        }
    }
    if let Ok(tree) = &full {
        check_readers(tree);
    }
});

fn check_accepted(tree: &Element, limits: &XsiLimits) {
    let depth = tree.depth();
    let count = tree.element_count();
    assert!(depth <= limits.max_depth, "depth {depth} over {limits:?}");
    assert!(
        count <= limits.max_elements,
        "{count} elements over {limits:?}"
    );

    let xml = tree.to_xml();
    let written = check_answer_xml(&xml);
    let mut names = Vec::with_capacity(count);
    preorder_names(tree, &mut names);
    let written_names: Vec<&str> = written.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        written_names, names,
        "to_xml lost or reordered elements:\n{xml}"
    );

    // The written form may be longer than the input (escapes) and declare
    // more namespaces (one per nil element and per change of namespace,
    // which adds attributes too): only the depth and element limits stay.
    let again = parse_str(
        &xml,
        &XsiLimits {
            max_bytes: usize::MAX,
            max_attributes: usize::MAX,
            max_namespace_declarations: usize::MAX,
            ..*limits
        },
    );
    assert_eq!(
        again.as_ref(),
        Ok(tree),
        "to_xml does not read back as the same tree:\n{xml}"
    );
}

fn preorder_names<'a>(el: &'a Element, out: &mut Vec<&'a str>) {
    out.push(&el.name);
    for child in &el.children {
        preorder_names(child, out);
    }
}

fn check_refused(e: &XsiParseError) {
    let code = e.code();
    assert!(
        DOCUMENT_CODES.contains(&code),
        "refused with unexpected code {code:?}: {e}"
    );
    assert!((400..500).contains(&code.http_status()));
    let message = e.to_string();
    assert!(!message.is_empty());
    assert!(
        message.chars().count() <= 400,
        "unbounded error message ({} characters): {message}",
        message.chars().count()
    );
    assert!(
        !message.chars().any(char::is_control),
        "control character in the message: {message:?}"
    );
}

fn check_readers(tree: &Element) {
    if let Ok(profile) = Profile::from_element(tree) {
        assert!(!profile.user_id.is_empty(), "profile without user id");
        assert_eq!(profile.user_id.trim(), profile.user_id);
        let _ = profile.e164_number();
    }
    if let Ok(info) = ErrorInfo::from_element(tree) {
        assert_eq!(tree.name, "ErrorInfo");
        let _ = info.message();
    }
}
