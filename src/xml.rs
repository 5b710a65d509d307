//! XML 1.0 lexical rules shared by bwgate's XML readers (the flow-through
//! parser and the XSI reader): which characters and spaces XML allows, the
//! five predefined entities, DTD markup (always refused), how names and
//! parser messages from a document are shown in an error, and how an
//! element's attributes are read within the attribute and
//! namespace-declaration limits, in time linear in their number.

use std::collections::HashSet;

use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::BytesStart;

/// XML 1.0 `Char`.
pub fn is_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first character of `text` that XML 1.0 cannot carry (C0 controls
/// other than tab, LF and CR, U+FFFE, U+FFFF; a `str` holds no
/// surrogates), with its byte offset. One pass over the bytes: it runs on
/// every document before parsing.
pub fn first_invalid_char(text: &str) -> Option<(usize, char)> {
    let bytes = text.as_bytes();
    let at = bytes.iter().enumerate().position(|(i, &b)| match b {
        b'\t' | b'\n' | b'\r' => false,
        0..=0x1F => true,
        // U+FFFE and U+FFFF are EF BF BE and EF BF BF; 0xEF only ever
        // starts a character.
        0xEF => bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)),
        _ => false,
    })?;
    text[at..].chars().next().map(|c| (at, c))
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

/// Limits on attributes, as both readers apply them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeLimits {
    /// Attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Namespace declarations in the whole document.
    pub max_namespace_declarations: usize,
}

/// Why an element's attributes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeError {
    /// More than this many attributes on one element.
    TooMany(usize),
    /// More than this many namespace declarations in the document.
    TooManyNamespaceDeclarations(usize),
    /// The same attribute name twice on one element (the name, shown).
    Duplicate(String),
    /// Not an attribute (quick-xml's message, bounded).
    Syntax(String),
}

/// `xmlns` or `xmlns:p`.
pub fn is_namespace_declaration(key: &[u8]) -> bool {
    key == b"xmlns" || key.starts_with(b"xmlns:")
}

/// Reads the attributes of a document's elements: counts the namespace
/// declarations of the whole document, and hands out one
/// [`ElementAttributes`] per element.
#[derive(Debug)]
pub struct AttributeReader {
    limits: AttributeLimits,
    declarations: usize,
}

impl AttributeReader {
    pub fn new(limits: AttributeLimits) -> Self {
        AttributeReader {
            limits,
            declarations: 0,
        }
    }

    /// The attributes of `e`, in document order; the first error ends the
    /// iteration.
    pub fn element<'r, 'e>(&'r mut self, e: &'e BytesStart<'_>) -> ElementAttributes<'r, 'e> {
        let mut attributes = e.attributes();
        // quick-xml's duplicate check compares each name with every earlier
        // one (quadratic: 40,000 attributes took seconds); `KeySet` does it.
        attributes.with_checks(false);
        ElementAttributes {
            reader: self,
            attributes,
            keys: KeySet::default(),
            count: 0,
            done: false,
        }
    }
}

/// One element's attributes within the limits, each name at most once.
pub struct ElementAttributes<'r, 'e> {
    reader: &'r mut AttributeReader,
    attributes: Attributes<'e>,
    keys: KeySet<'e>,
    count: usize,
    done: bool,
}

impl<'e> Iterator for ElementAttributes<'_, 'e> {
    type Item = Result<Attribute<'e>, AttributeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.attributes.next()?;
        let result = self.check(next);
        self.done = result.is_err();
        Some(result)
    }
}

impl<'e> ElementAttributes<'_, 'e> {
    fn check(
        &mut self,
        attr: Result<Attribute<'e>, quick_xml::events::attributes::AttrError>,
    ) -> Result<Attribute<'e>, AttributeError> {
        let attr = attr.map_err(|e| AttributeError::Syntax(bounded(e.to_string())))?;
        let limits = self.reader.limits;
        let key = attr.key.into_inner();
        // Declarations first: a namespace bomb on one element is reported
        // as what it is.
        if is_namespace_declaration(key) {
            self.reader.declarations += 1;
            if self.reader.declarations > limits.max_namespace_declarations {
                return Err(AttributeError::TooManyNamespaceDeclarations(
                    limits.max_namespace_declarations,
                ));
            }
        }
        self.count += 1;
        if self.count > limits.max_attributes {
            return Err(AttributeError::TooMany(limits.max_attributes));
        }
        if !self.keys.insert(key) {
            return Err(AttributeError::Duplicate(shown(key)));
        }
        Ok(attr)
    }
}

/// Names seen on one element. The usual handful is compared directly
/// (no allocation for an element without attributes); past
/// [`KeySet::LINEAR`] they move to a hash set, so a check stays O(1).
#[derive(Debug, Default)]
pub struct KeySet<'a> {
    few: Vec<&'a [u8]>,
    many: HashSet<&'a [u8]>,
}

impl<'a> KeySet<'a> {
    const LINEAR: usize = 16;

    /// Adds `key`; false when it was already there.
    pub fn insert(&mut self, key: &'a [u8]) -> bool {
        if self.many.is_empty() {
            if self.few.contains(&key) {
                return false;
            }
            if self.few.len() < Self::LINEAR {
                self.few.push(key);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(key)
    }
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

    #[test]
    fn first_invalid_char_agrees_with_is_char() {
        let samples = [
            "plain <a b='c'>text</a>\t\r\n",
            "nul \0 here",
            "é\u{1}",
            "\u{FFFD}\u{FFFE}",
            "\u{EFBF}\u{FFFF}x",
            "\u{10348}\u{7F}\u{85}\u{1F}",
            "\u{FEFF}\u{FFEF}\u{EFFF}",
        ];
        for s in samples {
            let expected = s.char_indices().find(|(_, c)| !is_char(*c));
            assert_eq!(first_invalid_char(s), expected, "{s:?}");
        }
        assert_eq!(first_invalid_char("ab\0"), Some((2, '\0')));
        assert_eq!(first_invalid_char("é\u{FFFF}"), Some((2, '\u{FFFF}')));
    }

    fn attributes_of(tag: &str, limits: AttributeLimits) -> Result<Vec<String>, AttributeError> {
        let e = BytesStart::from_content(tag, tag.find(' ').unwrap_or(tag.len()));
        let mut reader = AttributeReader::new(limits);
        reader
            .element(&e)
            .map(|a| a.map(|a| String::from_utf8_lossy(a.key.as_ref()).into_owned()))
            .collect()
    }

    const LOOSE: AttributeLimits = AttributeLimits {
        max_attributes: 100_000,
        max_namespace_declarations: 100_000,
    };

    #[test]
    fn attributes_are_counted_and_unique() {
        assert_eq!(
            attributes_of("a x='1' xmlns='u' xmlns:p='v' p:x='2'", LOOSE),
            Ok(vec![
                "x".into(),
                "xmlns".into(),
                "xmlns:p".into(),
                "p:x".into()
            ])
        );
        let limits = AttributeLimits {
            max_attributes: 3,
            max_namespace_declarations: 1,
        };
        assert_eq!(
            attributes_of("a x='1' y='2' z='3' w='4'", limits),
            Err(AttributeError::TooMany(3))
        );
        assert_eq!(
            attributes_of("a xmlns='u' xmlns:p='v'", limits),
            Err(AttributeError::TooManyNamespaceDeclarations(1))
        );
        assert_eq!(
            attributes_of("a x='1' x='2'", limits),
            Err(AttributeError::Duplicate("x".into()))
        );
        assert!(matches!(
            attributes_of("a x=1", limits),
            Err(AttributeError::Syntax(_))
        ));
        // Past the linear set: a late duplicate of an early name.
        let many: String = (0..40).map(|i| format!(" k{i}=''")).collect();
        assert_eq!(
            attributes_of(&format!("a{many}"), LOOSE).map(|v| v.len()),
            Ok(40)
        );
        assert_eq!(
            attributes_of(&format!("a{many} k3=''"), LOOSE),
            Err(AttributeError::Duplicate("k3".into()))
        );
    }

    #[test]
    fn declarations_are_counted_across_elements() {
        let limits = AttributeLimits {
            max_attributes: 10,
            max_namespace_declarations: 2,
        };
        let mut reader = AttributeReader::new(limits);
        let first = BytesStart::from_content("a xmlns='u' xmlns:p='v'", 1);
        assert!(reader.element(&first).all(|a| a.is_ok()));
        let second = BytesStart::from_content("b xmlns='w'", 1);
        let errors: Vec<_> = reader.element(&second).filter_map(Result::err).collect();
        assert_eq!(
            errors,
            vec![AttributeError::TooManyNamespaceDeclarations(2)]
        );
    }
}
