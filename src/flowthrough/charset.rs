//! Body decoding: UTF-8 (with or without BOM), ISO-8859-1 and US-ASCII.
//!
//! The charset comes from the XML declaration's `encoding`, else the
//! Content-Type `charset` parameter, else UTF-8. When both are given and
//! differ, the declaration wins: it is written by the serializer that
//! produced the bytes, while the header is often a constant of the HTTP
//! client. A UTF-8 byte order mark overrides both (and contradicting it in
//! the declaration is an error).

use std::borrow::Cow;

use super::DocumentError;
use crate::domain::ErrorCode;
use crate::xml;

/// The charsets a flow-through body may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    Latin1,
    Ascii,
}

impl Charset {
    /// An IANA charset label (case-insensitive) → charset.
    pub fn from_label(label: &str) -> Option<Charset> {
        const UTF8: &[&str] = &["utf-8", "utf8"];
        const LATIN1: &[&str] = &[
            "iso-8859-1",
            "iso8859-1",
            "iso_8859-1",
            "iso_8859-1:1987",
            "latin1",
            "latin-1",
            "l1",
            "cp819",
            "ibm819",
            "iso-ir-100",
            "csisolatin1",
        ];
        const ASCII: &[&str] = &["us-ascii", "ascii", "iso646-us", "ansi_x3.4-1968"];
        let label = label.trim();
        let is = |set: &[&str]| set.iter().any(|l| l.eq_ignore_ascii_case(label));
        if is(UTF8) {
            Some(Charset::Utf8)
        } else if is(LATIN1) {
            Some(Charset::Latin1)
        } else if is(ASCII) {
            Some(Charset::Ascii)
        } else {
            None
        }
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes a request body to UTF-8 text (borrowed whenever the bytes
/// already are valid UTF-8 text in the chosen charset).
pub fn decode_body<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
) -> Result<Cow<'a, str>, DocumentError> {
    let header_charset = match content_type {
        Some(ct) => content_type_charset(ct)?,
        None => None,
    };
    let (bom, bytes) = match body.strip_prefix(UTF8_BOM) {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(DocumentError::new(
            ErrorCode::UnsupportedMediaType,
            "UTF-16 bodies are not supported; send UTF-8 or ISO-8859-1",
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DocumentError::new(
            ErrorCode::MalformedXml,
            "the body is empty",
        ));
    }
    let declared = declared_encoding(bytes);
    let charset = match (declared, header_charset) {
        (Some(label), _) => label_to_charset(label, "XML declaration")?,
        (None, Some(label)) => label_to_charset(label, "Content-Type charset")?,
        (None, None) => Charset::Utf8,
    };
    if bom && charset == Charset::Latin1 && declared.is_some() {
        return Err(DocumentError::new(
            ErrorCode::MalformedXml,
            "a UTF-8 byte order mark contradicts the declared encoding",
        ));
    }
    let charset = if bom { Charset::Utf8 } else { charset };
    match charset {
        Charset::Utf8 => std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            DocumentError::new(
                ErrorCode::MalformedXml,
                format!(
                    "invalid UTF-8 at byte {} (declare encoding=\"ISO-8859-1\" for Latin-1 text)",
                    e.valid_up_to() + if bom { 3 } else { 0 }
                ),
            )
        }),
        Charset::Ascii => match bytes.iter().position(|b| !b.is_ascii()) {
            // ASCII is valid UTF-8.
            None => Ok(Cow::Borrowed(
                std::str::from_utf8(bytes).unwrap_or_default(),
            )),
            Some(at) => Err(DocumentError::new(
                ErrorCode::MalformedXml,
                format!(
                    "byte 0x{:02X} at {} is not US-ASCII",
                    bytes[at],
                    at + if bom { 3 } else { 0 }
                ),
            )),
        },
        Charset::Latin1 => Ok(latin1_to_utf8(bytes)),
    }
}

/// ISO-8859-1: every byte is the code point of the same value.
pub fn latin1_to_utf8(bytes: &[u8]) -> Cow<'_, str> {
    let Some(first) = bytes.iter().position(|b| !b.is_ascii()) else {
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    };
    let high = bytes[first..].iter().filter(|b| !b.is_ascii()).count();
    let mut s = String::with_capacity(bytes.len() + high);
    // The ASCII prefix is valid UTF-8 as is.
    s.push_str(std::str::from_utf8(&bytes[..first]).unwrap_or_default());
    s.extend(bytes[first..].iter().map(|&b| b as char));
    Cow::Owned(s)
}

fn label_to_charset(label: &str, source: &str) -> Result<Charset, DocumentError> {
    Charset::from_label(label).ok_or_else(|| {
        DocumentError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "unsupported charset {:?} in the {source}; use UTF-8 or ISO-8859-1",
                truncate(label, 40)
            ),
        )
    })
}

/// Checks the media type (XML or none) and returns the `charset`
/// parameter, if any.
pub fn content_type_charset(content_type: &str) -> Result<Option<&str>, DocumentError> {
    let mut parts = content_type.split(';');
    let mime = parts.next().unwrap_or("").trim();
    let is_xml = mime.is_empty()
        || mime.eq_ignore_ascii_case("application/xml")
        || mime.eq_ignore_ascii_case("text/xml")
        || (mime.starts_with("application/")
            && mime.len() >= 4
            && mime.as_bytes()[mime.len() - 4..].eq_ignore_ascii_case(b"+xml"));
    if !is_xml {
        return Err(DocumentError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "unsupported content type {:?}; send application/xml or text/xml",
                truncate(mime, 60)
            ),
        ));
    }
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("charset") {
                let v = value.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start
/// of `bytes` (ASCII in every supported charset), if any.
pub fn declared_encoding(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(|b| xml::is_space(*b)) {
        return None; // `<?xml-stylesheet …?>` and the like
    }
    let end = rest.windows(2).take(512).position(|w| w == b"?>")?;
    let decl = &rest[..end];
    let at = find(decl, b"encoding")?;
    let mut i = at + b"encoding".len();
    while decl.get(i).is_some_and(|b| xml::is_space(*b)) {
        i += 1;
    }
    if decl.get(i) != Some(&b'=') {
        return None;
    }
    i += 1;
    while decl.get(i).is_some_and(|b| xml::is_space(*b)) {
        i += 1;
    }
    let quote = *decl.get(i)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &decl[i + 1..];
    let close = value.iter().position(|b| *b == quote)?;
    std::str::from_utf8(&value[..close]).ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `flowthrough_parse` fuzz target: the `+xml` suffix
    /// test sliced the media type by bytes and panicked when the last four
    /// bytes split a multi-byte character.
    #[test]
    fn non_ascii_media_types_are_refused_not_a_panic() {
        for ct in [
            "application/s\u{feff}d",
            "application/xé",
            "application/é",
            "application/\u{10348}",
        ] {
            let err = content_type_charset(ct).unwrap_err();
            assert_eq!(err.code, ErrorCode::UnsupportedMediaType, "{ct}");
        }
        assert_eq!(
            content_type_charset("application/soap+XML; charset=latin1").unwrap(),
            Some("latin1")
        );
        let err = decode_body(b"<a/>", Some("application/s\0\x01oavid\u{feff}d>")).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedMediaType);
    }
}
