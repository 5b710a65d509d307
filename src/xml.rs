//! XML 1.0 lexical rules shared by bwgate's XML readers (the flow-through
//! parser and the XSI reader): which characters and spaces XML allows, the
//! five predefined entities, DTD markup (always refused), and how names and
//! parser messages from a document are shown in an error.

/// XML 1.0 `Char`.
pub fn is_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML 1.0 `S` (one byte of it).
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The text of a predefined entity (`lt`, `gt`, `amp`, `apos`, `quot`);
/// no other entity is ever declared or expanded.
pub fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

/// Whether the document holds DTD markup anywhere (`<!DOCTYPE`,
/// `<!ENTITY`, …, any case). Outside a DOCTYPE quick-xml reports such
/// markup as a syntax error; what it attempts is the forbidden construct.
pub fn has_dtd_markup(xml: &[u8]) -> bool {
    const DTD_MARKUP: [&[u8]; 5] = [
        b"<!ENTITY",
        b"<!DOCTYPE",
        b"<!ELEMENT",
        b"<!ATTLIST",
        b"<!NOTATION",
    ];
    DTD_MARKUP
        .iter()
        .any(|m| xml.windows(m.len()).any(|w| w.eq_ignore_ascii_case(m)))
}

/// A name from the document, for a message: at most 60 characters, no
/// control characters.
pub fn shown(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// A parser message for an error: at most 160 characters, no control
/// characters (it may quote the document).
pub fn bounded(message: String) -> String {
    if message.chars().count() <= 160 && !message.chars().any(char::is_control) {
        return message;
    }
    let mut out: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(160)
        .collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        assert!(is_char('\t') && is_char('é') && is_char('\u{10348}'));
        assert!(!is_char('\u{1}') && !is_char('\u{FFFE}') && !is_char('\u{FFFF}'));
        assert!(is_space(b'\r') && !is_space(0x0c));
        assert_eq!(predefined_entity("apos"), Some("'"));
        assert_eq!(predefined_entity("xxe"), None);
        assert!(has_dtd_markup(
            b"<?xml version='1.0'?><!doctype a [<!entity x 'y'>]><a/>"
        ));
        assert!(!has_dtd_markup(b"<a>&lt;!DOCTYPE</a>"));
        assert_eq!(shown(b"a\x07b"), "ab");
        assert_eq!(shown("x".repeat(70).as_bytes()).chars().count(), 61);
        assert_eq!(bounded("ok".into()), "ok");
        let long = bounded("y\u{1}".repeat(200));
        assert_eq!(long.chars().count(), 161);
        assert!(!long.contains('\u{1}'));
    }
}
