//! What a step sends (and expects): placeholder substitution, repeats and
//! padding, all on bytes so a Latin-1 document stays Latin-1.
//!
//! Order: the root's content is repeated (`{{i}}` = 0..N-1 in each copy),
//! then `{{run}}` is substituted everywhere, then padding is appended.

use std::time::{SystemTime, UNIX_EPOCH};

/// Replaced by the run token everywhere.
pub const RUN_PLACEHOLDER: &str = "{{run}}";
/// Replaced by the copy's index inside a repeat.
pub const INDEX_PLACEHOLDER: &str = "{{i}}";
/// Longest run token (it ends up in 30-character OCI ids).
pub const RUN_TOKEN_MAX: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown placeholder {{{{{0}}}}} (known: {{{{run}}}}, {{{{i}}}})")]
    UnknownPlaceholder(String),
    #[error("'{{{{' without a closing '}}}}' at byte {0}")]
    Unterminated(usize),
    #[error("{{{{i}}}} is only meaningful with repeat > 0")]
    IndexOutsideRepeat,
    #[error("repeat needs a root element with content (found {0})")]
    NoRootContent(&'static str),
}

/// A fresh run token: lower-case hex of the time (seconds) and 24 random
/// bits, 14 characters.
pub fn new_run_token() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let random: u32 = rand::random::<u32>() & 0x00ff_ffff;
    format!("{:08x}{:06x}", secs as u32, random)
}

/// 1-20 lower-case ASCII letters or digits.
pub fn is_valid_run_token(token: &str) -> bool {
    (1..=RUN_TOKEN_MAX).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Every `needle` in `haystack` replaced by `with`.
pub fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// The placeholder names used in `bytes` (`{{name}}`), in order; an
/// unknown name or an unterminated `{{` is an error.
pub fn placeholders(bytes: &[u8]) -> Result<Vec<String>, RenderError> {
    let mut names = Vec::new();
    let mut pos = 0;
    while let Some(at) = find(&bytes[pos..], b"{{") {
        let start = pos + at;
        let Some(len) = find(&bytes[start + 2..], b"}}") else {
            return Err(RenderError::Unterminated(start));
        };
        let name = String::from_utf8_lossy(&bytes[start + 2..start + 2 + len]).into_owned();
        if name != "run" && name != "i" {
            let shown: String = name.chars().take(40).collect();
            return Err(RenderError::UnknownPlaceholder(shown));
        }
        names.push(name);
        pos = start + 2 + len + 2;
    }
    Ok(names)
}

/// Renders a step document: checks its placeholders, repeats the root's
/// content `repeat` times when `repeat > 0`, substitutes `{{run}}`, then
/// appends `pad_bytes` spaces.
pub fn render_document(
    template: &[u8],
    run: &str,
    repeat: usize,
    pad_bytes: usize,
) -> Result<Vec<u8>, RenderError> {
    let names = placeholders(template)?;
    if repeat == 0 && names.iter().any(|n| n == "i") {
        return Err(RenderError::IndexOutsideRepeat);
    }
    let repeated = if repeat > 0 {
        repeat_root_content(template, repeat)?
    } else {
        template.to_vec()
    };
    let mut out = replace_all(&repeated, RUN_PLACEHOLDER.as_bytes(), run.as_bytes());
    out.resize(out.len() + pad_bytes, b' ');
    Ok(out)
}

/// The document with everything between the root's start and end tags
/// written `n` times, `{{i}}` replaced by 0..n-1 in each copy.
pub fn repeat_root_content(doc: &[u8], n: usize) -> Result<Vec<u8>, RenderError> {
    let root = find_root(doc).ok_or(RenderError::NoRootContent("no root element"))?;
    if root.empty {
        return Err(RenderError::NoRootContent("an empty root element"));
    }
    let end = rfind(doc, b"</")
        .filter(|e| *e >= root.content_start)
        .ok_or(RenderError::NoRootContent("no end tag of the root"))?;
    let inner = &doc[root.content_start..end];
    let mut out = Vec::with_capacity(doc.len() + inner.len() * n);
    out.extend_from_slice(&doc[..root.content_start]);
    for i in 0..n {
        out.extend(replace_all(
            inner,
            INDEX_PLACEHOLDER.as_bytes(),
            i.to_string().as_bytes(),
        ));
    }
    out.extend_from_slice(&doc[end..]);
    Ok(out)
}

/// The local name of the root element (after any prefix), if one is found.
pub fn root_local_name(doc: &[u8]) -> Option<&[u8]> {
    let root = find_root(doc)?;
    let name = &doc[root.name_start..root.name_end];
    Some(match name.iter().position(|b| *b == b':') {
        Some(colon) => &name[colon + 1..],
        None => name,
    })
}

struct RootTag {
    name_start: usize,
    name_end: usize,
    /// Just after the start tag's `>`.
    content_start: usize,
    /// `<root/>`.
    empty: bool,
}

/// Finds the root start tag, skipping a BOM, the XML declaration,
/// processing instructions, comments and a DOCTYPE (with an internal
/// subset). Attribute values may contain `>`.
fn find_root(doc: &[u8]) -> Option<RootTag> {
    let mut pos = if doc.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    loop {
        pos += doc[pos..].iter().position(|b| *b == b'<')?;
        let rest = &doc[pos..];
        if rest.starts_with(b"<?") {
            pos += find(rest, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            pos += find(rest, b"-->")? + 3;
        } else if rest.starts_with(b"<!") {
            pos += skip_doctype(rest)?;
        } else {
            break;
        }
    }
    let name_start = pos + 1;
    let name_len = doc[name_start..]
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')?;
    if name_len == 0 {
        return None;
    }
    let mut quote: Option<u8> = None;
    let mut i = name_start + name_len;
    while let Some(&b) = doc.get(i) {
        match (quote, b) {
            (Some(q), b) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => {
                return Some(RootTag {
                    name_start,
                    name_end: name_start + name_len,
                    content_start: i + 1,
                    empty: doc.get(i.wrapping_sub(1)) == Some(&b'/'),
                })
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Length of a `<!DOCTYPE …>` declaration, internal subset included.
fn skip_doctype(rest: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in rest.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'>' if depth == 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_tokens_are_fresh_valid_hex() {
        let a = new_run_token();
        let b = new_run_token();
        assert_eq!(a.len(), 14);
        assert!(is_valid_run_token(&a), "{a}");
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b, "24 random bits per token");
        assert!(!is_valid_run_token(""));
        assert!(!is_valid_run_token("ABC"));
        assert!(!is_valid_run_token("a-b"));
        assert!(!is_valid_run_token(&"a".repeat(21)));
    }

    #[test]
    fn run_placeholder_is_substituted_on_bytes() {
        // Latin-1 bytes (0xFC = ü) are not valid UTF-8 and must survive.
        let doc = b"<r a=\"{{run}}\">J\xFCrgen-{{run}}</r>";
        let out = render_document(doc, "abc123", 0, 0).unwrap();
        assert_eq!(out, b"<r a=\"abc123\">J\xFCrgen-abc123</r>".to_vec());
        // Nothing to substitute: unchanged.
        assert_eq!(render_document(b"<r/>", "x", 0, 0).unwrap(), b"<r/>");
    }

    #[test]
    fn placeholders_are_checked() {
        assert_eq!(
            placeholders(b"{{run}} {{i}}").unwrap(),
            vec!["run".to_string(), "i".to_string()]
        );
        assert_eq!(
            render_document(b"<r>{{rnu}}</r>", "x", 0, 0),
            Err(RenderError::UnknownPlaceholder("rnu".into()))
        );
        assert_eq!(
            render_document(b"<r>{{run</r>", "x", 0, 0),
            Err(RenderError::Unterminated(3))
        );
        assert_eq!(
            render_document(b"<r><a>{{i}}</a></r>", "x", 0, 0),
            Err(RenderError::IndexOutsideRepeat)
        );
        // A lone brace is fine.
        assert!(render_document(b"<r>{x}</r>", "x", 0, 0).is_ok());
    }

    #[test]
    fn repeat_copies_the_root_content_with_indexes() {
        let doc = b"<?xml version=\"1.0\"?>\n<!-- c <x> -->\n<p:Req xmlns:p=\"u\" id=\"a>b\"><Op n=\"{{i}}\">{{run}}</Op></p:Req>\n";
        let out = render_document(doc, "tok", 3, 0).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "<?xml version=\"1.0\"?>\n<!-- c <x> -->\n<p:Req xmlns:p=\"u\" id=\"a>b\"><Op n=\"0\">tok</Op><Op n=\"1\">tok</Op><Op n=\"2\">tok</Op></p:Req>\n"
        );
        assert_eq!(root_local_name(doc), Some(&b"Req"[..]));
    }

    #[test]
    fn repeat_skips_bom_and_doctype() {
        let doc = b"\xEF\xBB\xBF<!DOCTYPE r [<!ENTITY e \"x\">]><r><a/></r>";
        let out = repeat_root_content(doc, 2).unwrap();
        assert_eq!(
            out,
            b"\xEF\xBB\xBF<!DOCTYPE r [<!ENTITY e \"x\">]><r><a/><a/></r>".to_vec()
        );
    }

    #[test]
    fn repeat_needs_root_content() {
        assert_eq!(
            repeat_root_content(b"<r/>", 2),
            Err(RenderError::NoRootContent("an empty root element"))
        );
        assert_eq!(
            repeat_root_content(b"no xml", 2),
            Err(RenderError::NoRootContent("no root element"))
        );
        assert_eq!(
            repeat_root_content(b"<r><a>", 2),
            Err(RenderError::NoRootContent("no end tag of the root"))
        );
    }

    #[test]
    fn padding_appends_spaces_after_the_root() {
        let out = render_document(b"<r/>\n", "x", 0, 5).unwrap();
        assert_eq!(out, b"<r/>\n     ".to_vec());
        let out = render_document(b"<r><a/></r>", "x", 2, 3).unwrap();
        assert_eq!(out, b"<r><a/><a/></r>   ".to_vec());
    }

    #[test]
    fn replace_all_edge_cases() {
        assert_eq!(replace_all(b"aaa", b"a", b"bb"), b"bbbbbb".to_vec());
        assert_eq!(replace_all(b"abc", b"", b"x"), b"abc".to_vec());
        assert_eq!(replace_all(b"ab", b"abc", b"x"), b"ab".to_vec());
    }
}
