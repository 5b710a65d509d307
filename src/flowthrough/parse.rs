//! Streaming parser for flow-through documents.
//!
//! One pass over quick-xml events, no tree: the depth, element and
//! operation limits are checked as elements open, so an oversized document
//! is refused as soon as it crosses a limit. Elements are matched by local
//! name (any namespace or prefix, or none); unknown elements are skipped
//! with their whole subtree and reported. Field text is borrowed from the
//! decoded body wherever it is a single text node.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::charset;
use crate::config::LimitsConfig;
use crate::domain::subscriber::{FieldError, Operation, OperationKind, RawFields};
use crate::domain::ErrorCode;
use crate::xml;

/// The root element's local name.
pub const ROOT_ELEMENT: &str = "ProvisioningRequest";
/// Longest `requestId` attribute echoed back.
pub const REQUEST_ID_MAX_CHARS: usize = 128;

/// Structural limits of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most elements in the whole document (root included).
    pub max_elements: usize,
    /// Most operations (AddUser, …) in one document.
    pub max_operations: usize,
    /// Most attributes on one element (namespace declarations included).
    pub max_attributes: usize,
    /// Most namespace declarations in the whole document.
    pub max_namespace_declarations: usize,
}

impl From<&LimitsConfig> for ParseLimits {
    fn from(l: &LimitsConfig) -> Self {
        ParseLimits {
            max_depth: l.max_xml_depth,
            max_elements: l.max_xml_elements,
            max_operations: l.max_operations,
            max_attributes: l.max_xml_attributes,
            max_namespace_declarations: l.max_xml_namespace_declarations,
        }
    }
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits::from(&LimitsConfig::default())
    }
}

/// A document that cannot be taken at all: the one refusal value.
pub type DocumentError = crate::domain::Refusal;

/// A well-formed document within the limits. Each operation carries its
/// own validation result: one bad operation does not fail the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub request_id: Option<String>,
    pub operations: Vec<ParsedOperation>,
    /// Local names of ignored elements (the top of each ignored subtree),
    /// in document order.
    pub unknown_elements: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedOperation {
    pub kind: OperationKind,
    /// The trimmed `userId` text as sent (for the response, even when it
    /// is invalid); `None` when absent or empty.
    pub user_id: Option<String>,
    pub result: Result<Operation, FieldError>,
}

/// Decodes (see [`charset`]) and parses a request body.
pub fn parse_request(
    body: &[u8],
    content_type: Option<&str>,
    limits: &ParseLimits,
) -> Result<ParsedRequest, DocumentError> {
    let text = charset::decode_body(body, content_type)?;
    parse_str(&text, limits)
}

/// Parses an already decoded document (the XML declaration's `encoding`
/// is not looked at).
pub fn parse_str(xml: &str, limits: &ParseLimits) -> Result<ParsedRequest, DocumentError> {
    // Checked once here rather than per piece of text: a raw NUL (or any
    // character XML cannot carry) anywhere refuses the whole document, even
    // where it would only have failed one operation's field.
    if let Some((offset, c)) = xml::first_invalid_char(xml) {
        return Err(malformed(format!(
            "character U+{:04X} at byte {offset} of the decoded text is not allowed in XML 1.0",
            c as u32
        )));
    }
    let mut reader = Reader::from_str(xml);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.allow_unmatched_ends = false;
        cfg.allow_dangling_amp = false;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
    }
    let mut p = Parser {
        limits,
        depth: 0,
        elements: 0,
        seen_event: false,
        seen_root: false,
        root_closed: false,
        skip_from: None,
        op: None,
        field: None,
        text: Cow::Borrowed(""),
        request_id: None,
        operations: Vec::new(),
        unknown: Vec::new(),
        attributes: xml::AttributeReader::new(xml::AttributeLimits {
            max_attributes: limits.max_attributes,
            max_namespace_declarations: limits.max_namespace_declarations,
        }),
    };
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(xml_error(xml, &e, reader.error_position())),
        };
        match event {
            Event::Start(e) => p.open(&e)?,
            Event::Empty(e) => {
                p.open(&e)?;
                p.close();
            }
            Event::End(_) => p.close(),
            Event::Text(t) => {
                if p.depth == 0 {
                    if !t.iter().all(|b| xml::is_space(*b)) {
                        return Err(malformed(if p.root_closed {
                            "text after the root element"
                        } else {
                            "text before the root element"
                        }));
                    }
                } else if p.collecting() {
                    let piece = t
                        .xml10_content()
                        .map_err(|e| malformed(format!("undecodable text: {e}")))?;
                    p.append(piece);
                }
            }
            Event::CData(c) => {
                if p.depth == 0 {
                    return Err(malformed("CDATA section outside the root element"));
                }
                if p.collecting() {
                    let piece = c
                        .decode()
                        .map_err(|e| malformed(format!("undecodable CDATA: {e}")))?;
                    p.append(piece);
                }
            }
            Event::GeneralRef(r) => {
                let ch = resolve_reference(&r)?;
                if p.depth == 0 {
                    return Err(malformed("reference outside the root element"));
                }
                if p.collecting() {
                    p.text.to_mut().push(ch);
                }
            }
            Event::Decl(_) => {
                if p.seen_event {
                    return Err(malformed(
                        "the XML declaration must be at the very start of the document",
                    ));
                }
            }
            Event::DocType(_) => {
                return Err(DocumentError::new(
                    ErrorCode::ForbiddenXmlConstruct,
                    "a DOCTYPE (DTD) is not allowed; entities are never expanded",
                ))
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        p.seen_event = true;
    }
    if !p.seen_root {
        return Err(malformed("no root element"));
    }
    if p.depth != 0 {
        return Err(malformed("the document ends inside an element"));
    }
    if p.operations.is_empty() {
        return Err(DocumentError::new(
            ErrorCode::MissingParameter,
            "operation: the document holds no AddUser, ModifyUser, DeleteUser or RequestActivationCode",
        ));
    }
    Ok(ParsedRequest {
        request_id: p.request_id,
        operations: p.operations,
        unknown_elements: p.unknown,
    })
}

struct OpState<'a> {
    kind: OperationKind,
    raw: RawFields<'a>,
    duplicate: Option<&'static str>,
}

struct Parser<'a, 'l> {
    limits: &'l ParseLimits,
    /// Depth of the innermost open element (root = 1).
    depth: usize,
    elements: usize,
    seen_event: bool,
    seen_root: bool,
    root_closed: bool,
    /// Depth of the unknown element whose subtree is being skipped.
    skip_from: Option<usize>,
    op: Option<OpState<'a>>,
    /// The field element open at depth 3, if known.
    field: Option<Field>,
    text: Cow<'a, str>,
    request_id: Option<String>,
    operations: Vec<ParsedOperation>,
    unknown: Vec<String>,
    /// Attribute and namespace-declaration limits, across the document.
    attributes: xml::AttributeReader,
}

impl<'a> Parser<'a, '_> {
    fn collecting(&self) -> bool {
        self.depth == 3 && self.field.is_some() && self.skip_from.is_none()
    }

    fn append(&mut self, piece: Cow<'a, str>) {
        if self.text.is_empty() {
            self.text = piece;
        } else {
            self.text.to_mut().push_str(&piece);
        }
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), DocumentError> {
        if self.root_closed {
            return Err(malformed(
                "content after the root element (only one root is allowed)",
            ));
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(DocumentError::new(
                ErrorCode::XmlTooComplex,
                format!("more than {} elements", self.limits.max_elements),
            ));
        }
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(DocumentError::new(
                ErrorCode::XmlTooComplex,
                format!("elements nested deeper than {}", self.limits.max_depth),
            ));
        }
        let name = e.local_name();
        let name = name.as_ref();
        if self.depth == 1 {
            if name != ROOT_ELEMENT.as_bytes() {
                return Err(malformed(format!(
                    "the root element is <{}>, expected <{ROOT_ELEMENT}>",
                    xml::shown(e.name().as_ref())
                )));
            }
            self.seen_root = true;
            self.request_id = root_attributes(&mut self.attributes, e)?;
            return Ok(());
        }
        check_attributes(&mut self.attributes, e)?;
        if self.skip_from.is_some() {
            return Ok(());
        }
        match self.depth {
            2 => match OperationKind::from_name(name) {
                Some(kind) => {
                    if self.operations.len() >= self.limits.max_operations {
                        return Err(DocumentError::new(
                            ErrorCode::TooManyOperations,
                            format!(
                                "more than {} operations in one document",
                                self.limits.max_operations
                            ),
                        ));
                    }
                    self.op = Some(OpState {
                        kind,
                        raw: RawFields::default(),
                        duplicate: None,
                    });
                }
                None => self.skip(name),
            },
            3 => {
                let kind = self.op.as_ref().map(|o| o.kind);
                match kind.and_then(|k| Field::lookup(k, name)) {
                    Some(f) => {
                        self.field = Some(f);
                        self.text = Cow::Borrowed("");
                    }
                    None => self.skip(name),
                }
            }
            _ => self.skip(name),
        }
        Ok(())
    }

    fn skip(&mut self, name: &[u8]) {
        self.skip_from = Some(self.depth);
        self.unknown
            .push(String::from_utf8_lossy(name).into_owned());
    }

    fn close(&mut self) {
        let depth = self.depth;
        self.depth = depth.saturating_sub(1);
        if let Some(from) = self.skip_from {
            if depth == from {
                self.skip_from = None;
            }
            return;
        }
        match depth {
            1 => self.root_closed = true,
            2 => {
                if let Some(op) = self.op.take() {
                    self.operations.push(finish(op));
                }
            }
            3 => {
                if let (Some(field), Some(op)) = (self.field.take(), self.op.as_mut()) {
                    let text = trim_cow(std::mem::take(&mut self.text));
                    let slot = field.slot(&mut op.raw);
                    if slot.is_some() {
                        op.duplicate.get_or_insert(field.name());
                    } else {
                        *slot = Some(text);
                    }
                }
            }
            _ => {}
        }
    }
}

fn finish(op: OpState<'_>) -> ParsedOperation {
    let user_id = op
        .raw
        .user_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let result = match op.duplicate {
        Some(field) => Err(FieldError::new(
            ErrorCode::InvalidParameterValue,
            field,
            "is given more than once",
        )),
        None => Operation::from_raw(op.kind, &op.raw),
    };
    ParsedOperation {
        kind: op.kind,
        user_id,
        result,
    }
}

/// The OCI field elements, and which operation each belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    UserId,
    ServiceProviderId,
    GroupId,
    FirstName,
    LastName,
    EmailAddress,
    PhoneNumber,
    Extension,
    MobilePhoneNumber,
    Language,
    TimeZone,
    Package,
    IsTrunkUser,
    HasRouteList,
    DeviceType,
    MacAddress,
    ServiceProviderName,
    GroupName,
}

impl Field {
    fn lookup(kind: OperationKind, name: &[u8]) -> Option<Field> {
        use Field::*;
        let f = match name {
            b"userId" => UserId,
            b"serviceProviderId" => ServiceProviderId,
            b"groupId" => GroupId,
            b"firstName" => FirstName,
            b"lastName" => LastName,
            b"emailAddress" => EmailAddress,
            b"phoneNumber" => PhoneNumber,
            b"extension" => Extension,
            b"mobilePhoneNumber" => MobilePhoneNumber,
            b"language" => Language,
            b"timeZone" => TimeZone,
            b"package" => Package,
            b"isTrunkUser" => IsTrunkUser,
            b"hasRouteList" => HasRouteList,
            b"deviceType" => DeviceType,
            b"macAddress" => MacAddress,
            b"serviceProviderName" => ServiceProviderName,
            b"groupName" => GroupName,
            _ => return None,
        };
        let applies = match kind {
            // The names only matter when an organization is created.
            OperationKind::AddUser => !matches!(f, DeviceType | MacAddress),
            OperationKind::ModifyUser => {
                !matches!(f, DeviceType | MacAddress | ServiceProviderName | GroupName)
            }
            OperationKind::DeleteUser => matches!(f, UserId | ServiceProviderId | GroupId),
            OperationKind::RequestActivationCode => matches!(f, UserId | DeviceType | MacAddress),
        };
        applies.then_some(f)
    }

    fn name(self) -> &'static str {
        use Field::*;
        match self {
            UserId => "userId",
            ServiceProviderId => "serviceProviderId",
            GroupId => "groupId",
            FirstName => "firstName",
            LastName => "lastName",
            EmailAddress => "emailAddress",
            PhoneNumber => "phoneNumber",
            Extension => "extension",
            MobilePhoneNumber => "mobilePhoneNumber",
            Language => "language",
            TimeZone => "timeZone",
            Package => "package",
            IsTrunkUser => "isTrunkUser",
            HasRouteList => "hasRouteList",
            DeviceType => "deviceType",
            MacAddress => "macAddress",
            ServiceProviderName => "serviceProviderName",
            GroupName => "groupName",
        }
    }

    fn slot<'s, 'a>(self, raw: &'s mut RawFields<'a>) -> &'s mut Option<Cow<'a, str>> {
        use Field::*;
        match self {
            UserId => &mut raw.user_id,
            ServiceProviderId => &mut raw.service_provider_id,
            GroupId => &mut raw.group_id,
            FirstName => &mut raw.first_name,
            LastName => &mut raw.last_name,
            EmailAddress => &mut raw.email_address,
            PhoneNumber => &mut raw.phone_number,
            Extension => &mut raw.extension,
            MobilePhoneNumber => &mut raw.mobile_phone_number,
            Language => &mut raw.language,
            TimeZone => &mut raw.time_zone,
            Package => &mut raw.package,
            IsTrunkUser => &mut raw.is_trunk_user,
            HasRouteList => &mut raw.has_route_list,
            ServiceProviderName => &mut raw.service_provider_name,
            GroupName => &mut raw.group_name,
            DeviceType => &mut raw.device_type,
            MacAddress => &mut raw.mac_address,
        }
    }
}

/// Checks the root's attributes and returns `requestId` (any prefix;
/// namespace declarations and other attributes are ignored).
fn root_attributes(
    reader: &mut xml::AttributeReader,
    e: &BytesStart<'_>,
) -> Result<Option<String>, DocumentError> {
    let mut request_id = None;
    for attr in reader.element(e) {
        let attr = attr.map_err(|err| attribute_error(e, err))?;
        let value = attribute_value(&attr.value)?;
        if xml::is_namespace_declaration(attr.key.as_ref()) {
            continue;
        }
        if attr.key.local_name().as_ref() == b"requestId" {
            request_id = Some(value);
        }
    }
    let Some(id) = request_id else {
        return Ok(None);
    };
    let id = id.trim();
    if id.is_empty() {
        return Ok(None);
    }
    if id.chars().any(char::is_control) {
        return Err(DocumentError::new(
            ErrorCode::InvalidParameterValue,
            "requestId: must not contain control characters",
        ));
    }
    if id.chars().count() > REQUEST_ID_MAX_CHARS {
        return Err(DocumentError::new(
            ErrorCode::InvalidParameterSize,
            format!("requestId: must be at most {REQUEST_ID_MAX_CHARS} characters"),
        ));
    }
    Ok(Some(id.to_string()))
}

/// Well-formedness of an element's attributes (values are not used).
fn check_attributes(
    reader: &mut xml::AttributeReader,
    e: &BytesStart<'_>,
) -> Result<(), DocumentError> {
    if e.attributes_raw().iter().all(|b| xml::is_space(*b)) {
        return Ok(());
    }
    for attr in reader.element(e) {
        let attr = attr.map_err(|err| attribute_error(e, err))?;
        if attr.value.contains(&b'<') || attr.value.contains(&b'&') {
            attribute_value(&attr.value)?;
        }
    }
    Ok(())
}

/// An attribute refusal → 9013 for a limit (naming it), else 9011.
fn attribute_error(e: &BytesStart<'_>, err: xml::AttributeError) -> DocumentError {
    match err {
        xml::AttributeError::TooMany(limit) => DocumentError::new(
            ErrorCode::XmlTooComplex,
            format!(
                "element <{}> has more than {limit} attributes (limit max_xml_attributes)",
                xml::shown(e.name().as_ref())
            ),
        ),
        xml::AttributeError::TooManyNamespaceDeclarations(limit) => DocumentError::new(
            ErrorCode::XmlTooComplex,
            format!(
                "more than {limit} namespace declarations in the document (limit max_xml_namespace_declarations)"
            ),
        ),
        xml::AttributeError::Duplicate(name) => malformed(format!(
            "bad attribute: `{name}` is given more than once on <{}>",
            xml::shown(e.name().as_ref())
        )),
        xml::AttributeError::Syntax(message) => malformed(format!("bad attribute: {message}")),
    }
}

/// An attribute value with references resolved (predefined entities and
/// character references only) and whitespace normalized.
fn attribute_value(raw: &[u8]) -> Result<String, DocumentError> {
    if raw.contains(&b'<') {
        return Err(malformed("'<' in an attribute value"));
    }
    let s = std::str::from_utf8(raw).map_err(|_| malformed("attribute value is not UTF-8"))?;
    let s = quick_xml::escape::unescape(s).map_err(|e| match e {
        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name) => {
            forbidden_entity(name.as_bytes())
        }
        other => malformed(format!("bad reference in an attribute value: {other}")),
    })?;
    Ok(s.replace(['\t', '\n', '\r'], " "))
}

/// `&name;` or `&#N;` in text → the character. Only the five predefined
/// entities and character references to XML characters are accepted.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, DocumentError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) if xml::is_char(c) => Ok(c),
            Ok(_) => Err(malformed(
                "character reference to a character not allowed in XML",
            )),
            Err(e) => Err(malformed(format!("bad character reference: {e}"))),
        };
    }
    let name: &[u8] = r;
    std::str::from_utf8(name)
        .ok()
        .and_then(xml::predefined_entity)
        .and_then(|text| text.chars().next())
        .ok_or_else(|| forbidden_entity(name))
}

fn forbidden_entity(name: &[u8]) -> DocumentError {
    DocumentError::new(
        ErrorCode::ForbiddenXmlConstruct,
        format!(
            "reference to entity &{};: only &lt; &gt; &amp; &apos; &quot; and character references are allowed",
            xml::shown(name)
        ),
    )
}

fn trim_cow(c: Cow<'_, str>) -> Cow<'_, str> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => {
            let t = s.trim();
            if t.len() == s.len() {
                Cow::Owned(s)
            } else {
                Cow::Owned(t.to_owned())
            }
        }
    }
}

fn malformed(msg: impl Into<String>) -> DocumentError {
    DocumentError::new(ErrorCode::MalformedXml, msg)
}

/// A quick-xml error → 9011, or 9012 when the document tried DTD markup
/// (`<!ENTITY` and friends outside a DOCTYPE are syntax errors to
/// quick-xml, but what they attempt is the forbidden construct).
fn xml_error(xml: &str, e: &quick_xml::Error, position: u64) -> DocumentError {
    if xml::has_dtd_markup(xml.as_bytes()) {
        return DocumentError::new(
            ErrorCode::ForbiddenXmlConstruct,
            "DTD markup (DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION) is not allowed",
        );
    }
    malformed(format!(
        "not well-formed XML at byte {position}: {}",
        xml::bounded(e.to_string())
    ))
}
