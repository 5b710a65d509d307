//! A bounded, namespace-tolerant reader of XSI documents into an element
//! tree.
//!
//! One streaming pass over quick-xml's `NsReader`; the depth and element
//! limits are checked as elements open, the size limit before anything is
//! decoded, so an oversized document costs no more than the limit.
//!
//! What the tree keeps of a document: per element its local name, its
//! resolved namespace (none when the name has no namespace, or uses a
//! prefix nobody declared: tolerated, as XSI clients do), its attributes by
//! local name with their values unescaped and normalized (XML 1.0 §3.3.3),
//! whether it is `xsi:nil="true"` (`http://www.w3.org/2001/XMLSchema-instance`),
//! its text (every text, CDATA and reference directly inside it,
//! concatenated, line ends normalized, then trimmed of XML whitespace) and
//! its child elements in order. Comments, processing instructions, the XML
//! declaration, prefixes and the place of text between child elements are
//! not kept.
//!
//! Refused ([`XsiParseError`]): a DOCTYPE or other DTD markup (entities are
//! never expanded, nothing is fetched), references to entities other than
//! the five predefined ones, characters XML 1.0 cannot carry (C0 controls
//! other than tab, CR and LF, U+FFFE, U+FFFF), written or as character
//! references: they are refused rather than replaced, so every tree the
//! parser returns can be written back as XML 1.0 unchanged; anything not
//! well-formed (unclosed or mismatched elements, text or a second element
//! outside the root, invalid names, bad attributes, a misplaced
//! declaration); two attributes of one element with the same local name
//! (the tree keys attributes by local name); and documents over the
//! [`XsiLimits`] (depth, elements, size, attributes on one element,
//! namespace declarations in the document; attributes are read in time
//! linear in their number).

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, PrefixDeclaration, ResolveResult};
use quick_xml::NsReader;

use crate::config::LimitsConfig;
use crate::domain::{ErrorCode, Refusal};
use crate::flowthrough::charset;
use crate::flowthrough::response::escape_into;
use crate::xml;

/// Namespace of XSI documents.
pub const XSI_NAMESPACE: &str = "http://schema.broadsoft.com/xsi";
/// Namespace of `xsi:nil` (XML Schema instance; XSI documents usually
/// bind it to the prefix `xsi` or, when `xsi` names the XSI namespace,
/// `xsi1`).
pub const XSI_INSTANCE_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Structural limits of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsiLimits {
    /// Deepest element nesting (the root is depth 1). It also bounds the
    /// recursion of the tree's methods (and of its `Drop`).
    pub max_depth: usize,
    /// Most elements in the whole document (root included).
    pub max_elements: usize,
    /// Longest document in bytes: the body as received for [`parse`], the
    /// text for [`parse_str`].
    pub max_bytes: usize,
    /// Most attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// Most namespace declarations in the whole document. It also bounds
    /// the bindings quick-xml's resolver searches for each element name.
    pub max_namespace_declarations: usize,
}

impl From<&LimitsConfig> for XsiLimits {
    fn from(l: &LimitsConfig) -> Self {
        XsiLimits {
            max_depth: l.max_xml_depth,
            max_elements: l.max_xml_elements,
            max_bytes: l.max_body_bytes,
            max_attributes: l.max_xml_attributes,
            max_namespace_declarations: l.max_xml_namespace_declarations,
        }
    }
}

impl Default for XsiLimits {
    /// The `[limits]` defaults the flow-through face uses: depth 16,
    /// 50,000 elements, 4 MiB, 64 attributes on an element, 64 namespace
    /// declarations (an enterprise directory page of 1,000
    /// users is about 15,000 elements; XSI documents nest 5 deep).
    fn default() -> Self {
        XsiLimits::from(&LimitsConfig::default())
    }
}

/// One element of a parsed document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (without prefix).
    pub name: String,
    /// The namespace the name resolves to; `None` without one, or when its
    /// prefix was never declared.
    pub namespace: Option<String>,
    /// Attributes by local name, unescaped and normalized, in document
    /// order; namespace declarations and `xsi:nil` are not among them.
    pub attributes: Vec<(String, String)>,
    /// `xsi:nil="true"` (or `"1"`).
    pub nil: bool,
    /// The text directly inside the element (text, CDATA, references),
    /// concatenated, unescaped, trimmed of XML whitespace.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// An element without namespace, attributes, text or children.
    pub fn new(name: impl Into<String>) -> Element {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// The value of the attribute with this local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children with this local name, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child with this local name, unless that child
    /// is nil or empty.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name)
            .filter(|c| !c.nil && !c.text.is_empty())
            .map(|c| c.text.as_str())
    }

    /// In the XSI namespace.
    pub fn is_xsi(&self) -> bool {
        self.namespace.as_deref() == Some(XSI_NAMESPACE)
    }

    /// Nesting depth of this subtree (a leaf is 1).
    pub fn depth(&self) -> usize {
        1 + self.children.iter().map(Element::depth).max().unwrap_or(0)
    }

    /// Elements in this subtree, this one included.
    pub fn element_count(&self) -> usize {
        1 + self
            .children
            .iter()
            .map(Element::element_count)
            .sum::<usize>()
    }

    /// The subtree as an XML element (no declaration; UTF-8 text).
    ///
    /// Names are written without prefixes, each element declaring its
    /// namespace (`xmlns="…"`, `xmlns=""` for none) where it differs from
    /// its parent's; a nil element gets `xsi:nil="true"` with its own
    /// `xmlns:xsi` declaration. Text and values are escaped so that they
    /// read back the same (CR in text, tab/CR/LF in attributes as
    /// character references). For a tree [`parse`] returned, parsing the
    /// result gives the same tree (within the same depth and element
    /// limits; the text may be longer than the original document, and
    /// declare more namespaces: one per nil element and per change of
    /// namespace, which adds attributes too). In a
    /// tree built by hand, characters XML 1.0 cannot carry become U+FFFD,
    /// and names are written as they are.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, None);
        out
    }

    fn write_xml(&self, out: &mut String, parent_namespace: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        let namespace = self.namespace.as_deref();
        if namespace != parent_namespace {
            out.push_str(" xmlns=\"");
            escape_into(out, namespace.unwrap_or(""), true);
            out.push('"');
        }
        if self.nil {
            out.push_str(" xmlns:xsi=\"");
            out.push_str(XSI_INSTANCE_NAMESPACE);
            out.push_str("\" xsi:nil=\"true\"");
        }
        for (name, value) in &self.attributes {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(out, value, true);
            out.push('"');
        }
        if self.text.is_empty() && self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        escape_into(out, &self.text, false);
        for child in &self.children {
            child.write_xml(out, namespace);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XsiParseError {
    #[error("the document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("unsupported content type or charset: {0}")]
    UnsupportedEncoding(String),
    #[error("the body cannot be decoded: {0}")]
    Undecodable(String),
    #[error("the document has no root element")]
    NoRoot,
    #[error("DTD markup (DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION) is not allowed")]
    Dtd,
    #[error("reference to entity &{0};: only &lt; &gt; &amp; &apos; &quot; and character references are allowed")]
    UndeclaredEntity(String),
    #[error(
        "character U+{code:04X} at byte {offset} of the decoded text is not allowed in XML 1.0"
    )]
    InvalidCharacter { offset: usize, code: u32 },
    #[error("bad character reference: {0}")]
    InvalidCharacterReference(String),
    #[error("`<{expected}>` is closed by `</{found}>`")]
    MismatchedEndTag { expected: String, found: String },
    #[error("`</{0}>` closes no open element")]
    UnmatchedEndTag(String),
    #[error("the document ends inside `<{0}>`")]
    Unclosed(String),
    #[error("text outside the root element")]
    TextOutsideRoot,
    #[error("a second root element `<{0}>` (only one is allowed)")]
    MultipleRoots(String),
    #[error("the XML declaration must be at the very start of the document")]
    MisplacedDeclaration,
    #[error("`{0}` is not a valid element or attribute name")]
    InvalidName(String),
    #[error("attribute `{0}` is given more than once (attributes are read by local name)")]
    DuplicateAttribute(String),
    #[error("bad attribute: {0}")]
    BadAttribute(String),
    #[error("bad namespace declaration or prefix: {0}")]
    Namespace(String),
    #[error("not well-formed XML at byte {position}: {message}")]
    Syntax { position: u64, message: String },
    #[error("elements nested deeper than {0}")]
    TooDeep(usize),
    #[error("more than {0} elements")]
    TooManyElements(usize),
    #[error("element `<{element}>` has more than {limit} attributes (limit max_xml_attributes)")]
    TooManyAttributes { element: String, limit: usize },
    #[error("more than {0} namespace declarations in the document (limit max_xml_namespace_declarations)")]
    TooManyNamespaceDeclarations(usize),
}

impl XsiParseError {
    /// The gateway error code an XML face answers this refusal with.
    pub fn code(&self) -> ErrorCode {
        use XsiParseError::*;
        match self {
            TooLarge { .. } => ErrorCode::DocumentTooLarge,
            UnsupportedEncoding(_) => ErrorCode::UnsupportedMediaType,
            Dtd | UndeclaredEntity(_) => ErrorCode::ForbiddenXmlConstruct,
            TooDeep(_)
            | TooManyElements(_)
            | TooManyAttributes { .. }
            | TooManyNamespaceDeclarations(_) => ErrorCode::XmlTooComplex,
            _ => ErrorCode::MalformedXml,
        }
    }

    /// The refusal an XML face answers with (`ErrorInfo`): the code above
    /// and this error's sentence as the detail.
    pub fn to_refusal(&self) -> Refusal {
        Refusal::new(self.code(), self.to_string())
    }
}

impl From<XsiParseError> for Refusal {
    fn from(e: XsiParseError) -> Self {
        e.to_refusal()
    }
}

/// Decodes (UTF-8 with or without BOM, ISO-8859-1, US-ASCII: see
/// [`charset::decode_body`]) and parses a body. `max_bytes` applies to the
/// body as received.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    limits: &XsiLimits,
) -> Result<Element, XsiParseError> {
    if body.len() > limits.max_bytes {
        return Err(XsiParseError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(XsiParseError::NoRoot);
    }
    let text = charset::decode_body(body, content_type).map_err(|e| {
        // The message quotes the media type or charset, Debug-escaped.
        if e.code == ErrorCode::UnsupportedMediaType {
            XsiParseError::UnsupportedEncoding(xml::bounded(e.message().to_string()))
        } else {
            XsiParseError::Undecodable(xml::bounded(e.message().to_string()))
        }
    })?;
    parse_decoded(&text, limits)
}

/// Parses an already decoded document (its declared encoding is not
/// looked at). `max_bytes` applies to the text.
pub fn parse_str(xml: &str, limits: &XsiLimits) -> Result<Element, XsiParseError> {
    if xml.len() > limits.max_bytes {
        return Err(XsiParseError::TooLarge {
            size: xml.len(),
            limit: limits.max_bytes,
        });
    }
    parse_decoded(xml, limits)
}

fn parse_decoded(xml: &str, limits: &XsiLimits) -> Result<Element, XsiParseError> {
    if let Some((offset, c)) = xml::first_invalid_char(xml) {
        return Err(XsiParseError::InvalidCharacter {
            offset,
            code: c as u32,
        });
    }
    let mut reader = NsReader::from_str(xml);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.allow_unmatched_ends = false;
        cfg.allow_dangling_amp = false;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }
    let mut tree = Tree {
        limits,
        open: Vec::new(),
        root: None,
        elements: 0,
        attributes: xml::AttributeReader::new(xml::AttributeLimits {
            max_attributes: limits.max_attributes,
            max_namespace_declarations: limits.max_namespace_declarations,
        }),
    };
    let mut seen_event = false;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(xml_error(xml, e, reader.error_position())),
        };
        match event {
            Event::Start(e) => {
                let el = tree.open(&reader, &e)?;
                tree.open.push(el);
            }
            Event::Empty(e) => {
                let el = tree.open(&reader, &e)?;
                tree.close(el);
            }
            Event::End(e) => match tree.open.pop() {
                Some(el) => tree.close(el),
                // quick-xml refuses it first (allow_unmatched_ends = false).
                None => {
                    return Err(XsiParseError::UnmatchedEndTag(xml::shown(
                        e.name().as_ref(),
                    )));
                }
            },
            Event::Text(t) => match tree.open.last_mut() {
                Some(el) => {
                    let text = t
                        .xml10_content()
                        .map_err(|e| syntax(reader.buffer_position(), e.to_string()))?;
                    el.text.push_str(&text);
                }
                None => {
                    if !t.iter().all(|b| xml::is_space(*b)) {
                        return Err(XsiParseError::TextOutsideRoot);
                    }
                }
            },
            Event::CData(c) => match tree.open.last_mut() {
                Some(el) => {
                    let text = c
                        .xml10_content()
                        .map_err(|e| syntax(reader.buffer_position(), e.to_string()))?;
                    el.text.push_str(&text);
                }
                None => return Err(XsiParseError::TextOutsideRoot),
            },
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r)?;
                match tree.open.last_mut() {
                    Some(el) => el.text.push(c),
                    None => return Err(XsiParseError::TextOutsideRoot),
                }
            }
            Event::Decl(_) => {
                if seen_event {
                    return Err(XsiParseError::MisplacedDeclaration);
                }
            }
            Event::DocType(_) => return Err(XsiParseError::Dtd),
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        seen_event = true;
    }
    if let Some(el) = tree.open.last() {
        return Err(XsiParseError::Unclosed(xml::shown(el.name.as_bytes())));
    }
    tree.root.ok_or(XsiParseError::NoRoot)
}

/// The tree being built: the open elements (innermost last) and the root
/// once it closed.
struct Tree<'l> {
    limits: &'l XsiLimits,
    open: Vec<Element>,
    root: Option<Element>,
    elements: usize,
    /// Attribute and namespace-declaration limits, across the document.
    attributes: xml::AttributeReader,
}

impl Tree<'_> {
    /// A new element for a start (or empty) tag, limits checked.
    fn open(
        &mut self,
        reader: &NsReader<&[u8]>,
        e: &BytesStart<'_>,
    ) -> Result<Element, XsiParseError> {
        if self.open.is_empty() && self.root.is_some() {
            return Err(XsiParseError::MultipleRoots(xml::shown(e.name().as_ref())));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(XsiParseError::TooManyElements(self.limits.max_elements));
        }
        if self.open.len() + 1 > self.limits.max_depth {
            return Err(XsiParseError::TooDeep(self.limits.max_depth));
        }
        let qname = e.name();
        check_qname(qname.as_ref())?;
        let mut el = Element::default();
        read_attributes(&mut self.attributes, reader, e, &mut el)?;
        let (namespace, local) = reader.resolver().resolve_element(qname);
        el.name = utf8(local.as_ref())?.to_owned();
        el.namespace = match namespace {
            ResolveResult::Bound(Namespace(b"http://www.w3.org/2000/xmlns/")) => {
                return Err(XsiParseError::Namespace(format!(
                    "element `{}` uses the reserved prefix xmlns",
                    xml::shown(qname.as_ref())
                )))
            }
            ResolveResult::Bound(Namespace(ns)) => Some(namespace_name(ns)?),
            // No namespace, or a prefix nobody declared (tolerated).
            ResolveResult::Unbound | ResolveResult::Unknown(_) => None,
        };
        Ok(el)
    }

    /// An element is complete: its text trimmed, it joins its parent (or
    /// becomes the root).
    fn close(&mut self, mut el: Element) {
        let trimmed = el.text.trim_matches(is_xml_space_char);
        if trimmed.len() != el.text.len() {
            el.text = trimmed.to_owned();
        }
        match self.open.last_mut() {
            Some(parent) => parent.children.push(el),
            None => self.root = Some(el),
        }
    }
}

/// Reads the attributes of `e` into `el` (local name → value), and checks
/// the namespace declarations among them.
fn read_attributes(
    attributes: &mut xml::AttributeReader,
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
    el: &mut Element,
) -> Result<(), XsiParseError> {
    check_separation(e.attributes_raw())?;
    // Local names already in `el.attributes` (searching the list would be
    // quadratic in the number of attributes).
    let mut local_names = xml::KeySet::default();
    for attr in attributes.element(e) {
        let attr = attr.map_err(|err| match err {
            xml::AttributeError::TooMany(limit) => XsiParseError::TooManyAttributes {
                element: xml::shown(e.name().as_ref()),
                limit,
            },
            xml::AttributeError::TooManyNamespaceDeclarations(limit) => {
                XsiParseError::TooManyNamespaceDeclarations(limit)
            }
            xml::AttributeError::Duplicate(name) => {
                XsiParseError::BadAttribute(format!("`{name}` is given more than once"))
            }
            xml::AttributeError::Syntax(message) => XsiParseError::BadAttribute(message),
        })?;
        let value = attribute_value(&attr.value)?;
        let key = attr.key;
        if let Some(declaration) = key.as_namespace_binding() {
            if let PrefixDeclaration::Named(prefix) = declaration {
                check_ncname(prefix, key.as_ref())?;
            }
            continue;
        }
        check_qname(key.as_ref())?;
        let local_bytes = key.local_name().into_inner();
        let local = utf8(local_bytes)?;
        if local == "xmlns" {
            return Err(XsiParseError::InvalidName(xml::shown(key.as_ref())));
        }
        // Only `nil` needs its namespace: resolving searches every binding
        // in scope, so it is not done for each attribute.
        if local == "nil" && key.prefix().is_some() {
            let (namespace, _) = reader.resolver().resolve_attribute(key);
            let instance = matches!(
                namespace,
                ResolveResult::Bound(Namespace(ns)) if ns == XSI_INSTANCE_NAMESPACE.as_bytes()
            );
            if instance {
                el.nil = matches!(value.trim_matches(is_xml_space_char), "true" | "1");
                continue;
            }
        }
        if !local_names.insert(local_bytes) {
            return Err(XsiParseError::DuplicateAttribute(xml::shown(local_bytes)));
        }
        el.attributes.push((local.to_owned(), value.into_owned()));
    }
    Ok(())
}

/// Attributes are separated by whitespace (quick-xml reads `a='1'b='2'`,
/// which XML does not allow).
fn check_separation(raw: &[u8]) -> Result<(), XsiParseError> {
    let mut quote = None;
    for (i, &b) in raw.iter().enumerate() {
        match quote {
            Some(q) if b == q => {
                quote = None;
                if raw.get(i + 1).is_some_and(|n| !xml::is_space(*n)) {
                    return Err(XsiParseError::BadAttribute(
                        "attributes must be separated by whitespace".into(),
                    ));
                }
            }
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None => {}
        }
    }
    Ok(())
}

/// A namespace name as declared (the raw attribute value), unescaped and
/// normalized like any attribute value.
fn namespace_name(raw: &[u8]) -> Result<String, XsiParseError> {
    Ok(attribute_value(raw)?.into_owned())
}

/// An attribute value: whitespace normalized (XML 1.0 §3.3.3: each literal
/// tab, CR, LF or CR LF becomes a space), then the predefined entities and
/// character references resolved.
fn attribute_value(raw: &[u8]) -> Result<Cow<'_, str>, XsiParseError> {
    if raw.contains(&b'<') {
        return Err(XsiParseError::BadAttribute(
            "'<' in an attribute value".into(),
        ));
    }
    let s = utf8(raw)?;
    let normalized: Cow<'_, str> = if s.contains(['\t', '\n', '\r']) {
        Cow::Owned(s.replace("\r\n", " ").replace(['\t', '\n', '\r'], " "))
    } else {
        Cow::Borrowed(s)
    };
    if !normalized.contains('&') {
        return Ok(normalized);
    }
    let unescaped = quick_xml::escape::unescape_with(&normalized, xml::predefined_entity)
        .map_err(|e| match e {
            quick_xml::escape::EscapeError::UnrecognizedEntity(_, name) => {
                XsiParseError::UndeclaredEntity(xml::shown(name.as_bytes()))
            }
            quick_xml::escape::EscapeError::InvalidCharRef(e) => {
                XsiParseError::InvalidCharacterReference(xml::bounded(e.to_string()))
            }
            other => XsiParseError::BadAttribute(xml::bounded(other.to_string())),
        })?
        .into_owned();
    if let Some(c) = unescaped.chars().find(|c| !xml::is_char(*c)) {
        return Err(XsiParseError::InvalidCharacterReference(format!(
            "U+{:04X} is not allowed in XML 1.0",
            c as u32
        )));
    }
    Ok(Cow::Owned(unescaped))
}

/// `&name;` or `&#N;` in text → the character.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, XsiParseError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if xml::is_char(c) => Ok(c),
            Ok(Some(c)) => Err(XsiParseError::InvalidCharacterReference(format!(
                "U+{:04X} is not allowed in XML 1.0",
                c as u32
            ))),
            Ok(None) => Err(XsiParseError::InvalidCharacterReference(
                "not a character reference".into(),
            )),
            Err(e) => Err(XsiParseError::InvalidCharacterReference(xml::bounded(
                e.to_string(),
            ))),
        };
    }
    let name: &[u8] = r;
    std::str::from_utf8(name)
        .ok()
        .and_then(xml::predefined_entity)
        .and_then(|s| s.chars().next())
        .ok_or_else(|| XsiParseError::UndeclaredEntity(xml::shown(name)))
}

/// A quick-xml error → the refusal. DTD markup outside a DOCTYPE is a
/// syntax error to quick-xml, but what it attempts is the forbidden
/// construct.
fn xml_error(xml: &str, e: quick_xml::Error, position: u64) -> XsiParseError {
    use quick_xml::errors::IllFormedError;
    if xml::has_dtd_markup(xml.as_bytes()) {
        return XsiParseError::Dtd;
    }
    match e {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            XsiParseError::MismatchedEndTag {
                expected: xml::shown(expected.as_bytes()),
                found: xml::shown(found.as_bytes()),
            }
        }
        quick_xml::Error::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            XsiParseError::UnmatchedEndTag(xml::shown(name.as_bytes()))
        }
        quick_xml::Error::IllFormed(IllFormedError::MissingEndTag(name)) => {
            XsiParseError::Unclosed(xml::shown(name.as_bytes()))
        }
        quick_xml::Error::Namespace(e) => XsiParseError::Namespace(xml::bounded(e.to_string())),
        quick_xml::Error::InvalidAttr(e) => {
            XsiParseError::BadAttribute(xml::bounded(e.to_string()))
        }
        other => syntax(position, other.to_string()),
    }
}

fn syntax(position: u64, message: String) -> XsiParseError {
    XsiParseError::Syntax {
        position,
        message: xml::bounded(message),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, XsiParseError> {
    // The input is a `&str` and quick-xml splits it at ASCII bytes only.
    std::str::from_utf8(bytes).map_err(|_| syntax(0, "a name or value is not UTF-8".into()))
}

/// `NCName` or `NCName:NCName` (Namespaces in XML 1.0, §3).
fn check_qname(qname: &[u8]) -> Result<(), XsiParseError> {
    let mut parts = qname.splitn(2, |b| *b == b':');
    let first = parts.next().unwrap_or_default();
    check_ncname(first, qname)?;
    if let Some(local) = parts.next() {
        check_ncname(local, qname)?;
    }
    Ok(())
}

/// An XML 1.0 `Name` without colons; `whole` is quoted in the error.
fn check_ncname(name: &[u8], whole: &[u8]) -> Result<(), XsiParseError> {
    let bad = || XsiParseError::InvalidName(xml::shown(whole));
    let name = std::str::from_utf8(name).map_err(|_| bad())?;
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if is_name_start_char(c) => {}
        _ => return Err(bad()),
    }
    if chars.all(|c| is_name_start_char(c) || is_name_char_only(c)) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// XML 1.0 `NameStartChar`, without ':'.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// The characters XML 1.0 `NameChar` adds to `NameStartChar`.
fn is_name_char_only(c: char) -> bool {
    matches!(c,
        '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

fn is_xml_space_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}
