//! Tests of the XSI document reader (`document.rs`); the typed readers
//! test themselves.

use super::document::*;

/// Every sample in `tests/support/xsi-samples/`.
fn samples() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/xsi-samples");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/support/xsi-samples")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn parse_default(xml: &str) -> Result<Element, XsiParseError> {
    parse(xml.as_bytes(), None, &XsiLimits::default())
}

#[test]
fn parse_errors_become_refusals_with_the_tables_codes() {
    use crate::domain::{ErrorCode, Refusal};
    let default = XsiLimits::default();
    let tiny = XsiLimits {
        max_bytes: 8,
        ..XsiLimits::default()
    };
    let shallow = XsiLimits {
        max_depth: 2,
        ..XsiLimits::default()
    };
    for (body, limits, code, status) in [
        (
            "<!DOCTYPE x><x/>",
            &default,
            ErrorCode::ForbiddenXmlConstruct,
            400,
        ),
        (
            "<x>&ext;</x>",
            &default,
            ErrorCode::ForbiddenXmlConstruct,
            400,
        ),
        ("<x></y>", &default, ErrorCode::MalformedXml, 400),
        ("<abcdefghij/>", &tiny, ErrorCode::DocumentTooLarge, 413),
        (
            "<a><b><c/></b></a>",
            &shallow,
            ErrorCode::XmlTooComplex,
            400,
        ),
    ] {
        let e = parse(body.as_bytes(), None, limits).expect_err(body);
        let r = Refusal::from(e.clone());
        assert_eq!((r.code, r.http_status()), (code, status), "{body}: {e}");
        assert_eq!(r.detail, Some(e.to_string()), "{body}");
    }
}

/// parse → to_xml → parse is the identity (without a size limit: the
/// written form may be longer).
fn assert_round_trip(tree: &Element, limits: &XsiLimits) {
    let xml = tree.to_xml();
    // to_xml declares namespaces per element where the tree needs them.
    let loose = XsiLimits {
        max_bytes: usize::MAX,
        max_attributes: usize::MAX,
        max_namespace_declarations: usize::MAX,
        ..*limits
    };
    let again = parse_str(&xml, &loose).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    assert_eq!(&again, tree, "round trip changed the tree:\n{xml}");
}

#[test]
fn every_sample_parses_and_round_trips() {
    let samples = samples();
    assert_eq!(samples.len(), 28, "samples in tests/support/xsi-samples");
    for (name, bytes) in &samples {
        let tree = parse(bytes, Some("application/xml"), &XsiLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(tree.is_xsi(), "{name}: root in the XSI namespace");
        assert!(tree.depth() <= 5, "{name}");
        assert_round_trip(&tree, &XsiLimits::default());
    }
}

#[test]
fn the_tree_holds_names_namespaces_attributes_text_and_nil() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/xsi-samples/events-callreceived.r21-spec.xml"),
    )
    .unwrap();
    let event = parse(&bytes, None, &XsiLimits::default()).unwrap();
    assert_eq!(event.name, "Event");
    assert_eq!(event.namespace.as_deref(), Some(XSI_NAMESPACE));
    // `xsi1:type` is in the XML Schema instance namespace; kept by local name.
    assert_eq!(event.attr("type"), Some("xsi:SubscriptionEvent"));
    assert_eq!(event.child_text("sequenceNumber"), Some("6"));
    let call = event.child("eventData").unwrap().child("call").unwrap();
    let dn = call.child("remoteParty").unwrap().child("userDN").unwrap();
    assert_eq!(dn.text, "tel:+15006001011;ext=1011");
    assert_eq!(dn.attr("countryCode"), Some("1"));
    assert_eq!(event.depth(), 5);

    let profile = parse_default(include_str!(
        "../../tests/support/xsi-samples/actions-profile-get-response.r21-spec.xml"
    ))
    .unwrap();
    let extra = profile.child("additionalDetails").unwrap();
    let mobile = extra.child("mobile").unwrap();
    assert!(mobile.nil && mobile.attributes.is_empty() && mobile.text.is_empty());
    assert_eq!(extra.child_text("mobile"), None);
    assert_eq!(
        extra.child_text("emailAddress"),
        Some("subhashnegi@gmail.com")
    );
    assert!(!extra.child("emailAddress").unwrap().nil);
    let nils = extra.children.iter().filter(|c| c.nil).count();
    assert_eq!(nils, 6);
    assert_eq!(profile.element_count(), 24);

    let services = parse_default(include_str!(
        "../../tests/support/xsi-samples/actions-services-get-response.r21-spec.xml"
    ))
    .unwrap();
    let names: Vec<_> = services
        .children_named("service")
        .filter_map(|s| s.child_text("name"))
        .collect();
    assert_eq!(
        names,
        [
            "Anonymous Call Rejection",
            "Do Not Disturb",
            "Hoteling Guest"
        ]
    );
}

#[test]
fn text_is_concatenated_unescaped_and_trimmed() {
    let tree = parse_default(
        "<a xmlns='urn:x'>\n  one &amp; <b/>two&#x20;<![CDATA[<three>]]>&#9;\r\n</a>",
    )
    .unwrap();
    assert_eq!(tree.text, "one & two <three>");
    assert_eq!(
        tree.children,
        vec![Element {
            namespace: Some("urn:x".into()),
            ..Element::new("b")
        }]
    );
    // CR LF and lone CR in text read as LF; a CR written as a reference stays.
    let tree = parse_default("<a>x\r\ny\rz&#13;w</a>").unwrap();
    assert_eq!(tree.text, "x\ny\nz\rw");
    assert_round_trip(&tree, &XsiLimits::default());
}

#[test]
fn attributes_are_normalized_and_keyed_by_local_name() {
    let tree = parse_default(
        "<a xmlns:p='urn:p' p:id='1' tab='x\ty\r\nz' kept='&#9;&#10;&#13;' q='&quot;&apos;&lt;'/>",
    )
    .unwrap();
    assert_eq!(
        tree.attributes,
        vec![
            ("id".to_string(), "1".to_string()),
            ("tab".to_string(), "x y z".to_string()),
            ("kept".to_string(), "\t\n\r".to_string()),
            ("q".to_string(), "\"'<".to_string()),
        ]
    );
    assert_round_trip(&tree, &XsiLimits::default());
    assert_eq!(
        parse_default("<a xmlns:p='urn:p' xmlns:q='urn:q' p:id='1' q:id='2'/>"),
        Err(XsiParseError::DuplicateAttribute("id".into()))
    );
    assert!(matches!(
        parse_default("<a id='1' id='2'/>"),
        Err(XsiParseError::BadAttribute(_))
    ));
    assert!(matches!(
        parse_default("<a id/>"),
        Err(XsiParseError::BadAttribute(_))
    ));
    assert!(matches!(
        parse_default("<a id='<'/>"),
        Err(XsiParseError::BadAttribute(_))
    ));
}

#[test]
fn namespaces_resolve_and_unknown_prefixes_are_tolerated() {
    let tree = parse_default(
        "<x:Event xmlns:x='http://schema.broadsoft.com/xsi'><x:a/><b/><c xmlns='urn:c'><d/></c><q:e/></x:Event>",
    )
    .unwrap();
    assert!(tree.is_xsi());
    let ns: Vec<_> = tree
        .children
        .iter()
        .map(|c| (c.name.as_str(), c.namespace.as_deref()))
        .collect();
    assert_eq!(
        ns,
        [
            ("a", Some(XSI_NAMESPACE)),
            ("b", None),
            ("c", Some("urn:c")),
            ("e", None)
        ]
    );
    assert_eq!(
        tree.children[2].children[0].namespace.as_deref(),
        Some("urn:c")
    );
    assert_round_trip(&tree, &XsiLimits::default());
    // `xsi:nil` needs the XML Schema instance namespace; any prefix will do.
    let tree = parse_default(
        "<a xmlns:i='http://www.w3.org/2001/XMLSchema-instance'><b i:nil='true'/><c nil='true'/><d i:nil='false'/></a>",
    )
    .unwrap();
    let nil: Vec<_> = tree.children.iter().map(|c| c.nil).collect();
    assert_eq!(nil, [true, false, false]);
    assert_eq!(tree.children[1].attr("nil"), Some("true"));
    assert!(tree.children[2].attributes.is_empty());
    assert_round_trip(&tree, &XsiLimits::default());
    assert!(matches!(
        parse_default("<xmlns:a/>"),
        Err(XsiParseError::Namespace(_))
    ));
    assert!(matches!(
        parse_default("<a xmlns:xml='urn:not-xml'/>"),
        Err(XsiParseError::Namespace(_))
    ));
}

#[test]
fn limits_refuse_depth_elements_and_size() {
    let limits = XsiLimits {
        max_depth: 3,
        max_elements: 5,
        max_bytes: 200,
        ..XsiLimits::default()
    };
    assert!(parse_str("<a><b><c/></b></a>", &limits).is_ok());
    assert_eq!(
        parse_str("<a><b><c><d/></c></b></a>", &limits),
        Err(XsiParseError::TooDeep(3))
    );
    assert!(parse_str("<a><b/><b/><b/><b/></a>", &limits).is_ok());
    assert_eq!(
        parse_str("<a><b/><b/><b/><b/><b/></a>", &limits),
        Err(XsiParseError::TooManyElements(5))
    );
    let big = format!("<a>{}</a>", "x".repeat(200));
    assert_eq!(
        parse(big.as_bytes(), None, &limits),
        Err(XsiParseError::TooLarge {
            size: 207,
            limit: 200
        })
    );
    assert!(matches!(
        parse_str(&big, &limits),
        Err(XsiParseError::TooLarge { .. })
    ));
    let e = XsiParseError::TooDeep(3);
    assert_eq!(e.code(), crate::domain::ErrorCode::XmlTooComplex);
    // The defaults are the [limits] ones.
    let d = XsiLimits::default();
    assert_eq!(
        (d.max_depth, d.max_elements, d.max_bytes),
        (16, 50_000, 4 << 20)
    );
    assert_eq!((d.max_attributes, d.max_namespace_declarations), (64, 64));
}

/// ` a0="" a1="" …` (or ` xmlns:p0="urn:p0" …`).
fn attribute_run(n: usize, declarations: bool) -> String {
    (0..n)
        .map(|i| {
            if declarations {
                format!(" xmlns:p{i}=\"urn:p{i}\"")
            } else {
                format!(" a{i}=\"\"")
            }
        })
        .collect()
}

#[test]
fn attribute_and_namespace_bombs_are_refused_naming_the_limit() {
    let limits = XsiLimits {
        max_attributes: 10,
        max_namespace_declarations: 8,
        ..XsiLimits::default()
    };
    let at_limit = format!(
        "<a xmlns='urn:x'{}><b{}/></a>",
        attribute_run(7, true),
        attribute_run(10, false)
    );
    let tree = parse_str(&at_limit, &limits).unwrap();
    assert_eq!(tree.children[0].attributes.len(), 10);

    let e = parse_str(&format!("<a><b{}/></a>", attribute_run(11, false)), &limits).unwrap_err();
    assert_eq!(
        e,
        XsiParseError::TooManyAttributes {
            element: "b".into(),
            limit: 10
        }
    );
    assert_eq!(e.code(), crate::domain::ErrorCode::XmlTooComplex);
    assert!(e.to_string().contains("max_xml_attributes"), "{e}");

    // Declarations count across the document.
    let spread = format!(
        "<a{}><b{}/></a>",
        attribute_run(5, true),
        attribute_run(4, true).replace("xmlns:p", "xmlns:q")
    );
    let e = parse_str(&spread, &limits).unwrap_err();
    assert_eq!(e, XsiParseError::TooManyNamespaceDeclarations(8));
    assert_eq!(e.code(), crate::domain::ErrorCode::XmlTooComplex);
    assert!(
        e.to_string().contains("max_xml_namespace_declarations"),
        "{e}"
    );

    // The defaults refuse the issue's bombs.
    for declarations in [false, true] {
        let bomb = format!("<a{}/>", attribute_run(100_000, declarations));
        let e = parse(bomb.as_bytes(), None, &XsiLimits::default()).unwrap_err();
        assert_eq!(e.code(), crate::domain::ErrorCode::XmlTooComplex, "{e}");
    }
}

#[test]
fn duplicate_local_names_are_found_past_the_linear_set() {
    let many = attribute_run(40, false);
    assert_eq!(
        parse_default(&format!("<a xmlns:p='urn:p'{many} p:a17='x'/>")),
        Err(XsiParseError::DuplicateAttribute("a17".into()))
    );
    assert!(matches!(
        parse_default(&format!("<a{many} a39=''/>")),
        Err(XsiParseError::BadAttribute(_))
    ));
    // xsi:nil is not an attribute of the tree, so `nil` may appear beside it.
    let tree = parse_default(
        "<a xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' xmlns:o='urn:o' xsi:nil='true' o:nil='no'/>",
    )
    .unwrap();
    assert!(tree.nil);
    assert_eq!(tree.attributes, vec![("nil".to_string(), "no".to_string())]);
}

/// Quadratic before (quick-xml's duplicate check and the search of the
/// element's attribute list): 20,000 attributes took 2 s in the dev
/// profile, so 200,000 would take minutes.
#[test]
fn attributes_are_read_in_linear_time() {
    let raised = XsiLimits {
        max_attributes: 1_000_000,
        max_namespace_declarations: 1_000_000,
        max_bytes: usize::MAX,
        ..XsiLimits::default()
    };
    for declarations in [false, true] {
        let xml = format!("<a{}><b/></a>", attribute_run(200_000, declarations));
        let started = std::time::Instant::now();
        let parsed = parse_str(&xml, &raised);
        let took = started.elapsed();
        assert!(parsed.is_ok(), "{parsed:?}");
        assert!(
            took < std::time::Duration::from_secs(5),
            "200,000 attributes (declarations: {declarations}) took {took:?}"
        );
    }
}

#[test]
fn dtds_and_entities_are_refused() {
    for doc in [
        "<!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><a>&x;</a>",
        "<!DOCTYPE a><a/>",
        "<?xml version='1.0'?>\n<!doctype a SYSTEM 'http://evil.example/a.dtd'><a/>",
        "<a><!ENTITY x 'y'></a>",
    ] {
        let e = parse_default(doc).unwrap_err();
        assert_eq!(e, XsiParseError::Dtd, "{doc}");
        assert_eq!(e.code(), crate::domain::ErrorCode::ForbiddenXmlConstruct);
    }
    assert_eq!(
        parse_default("<a>&nbsp;</a>"),
        Err(XsiParseError::UndeclaredEntity("nbsp".into()))
    );
    assert_eq!(
        parse_default("<a b='&x;'/>"),
        Err(XsiParseError::UndeclaredEntity("x".into()))
    );
}

#[test]
fn characters_xml_cannot_carry_are_refused() {
    assert_eq!(
        parse_default("<a>x\u{1}</a>"),
        Err(XsiParseError::InvalidCharacter { offset: 4, code: 1 })
    );
    assert!(matches!(
        parse_default("<a>\u{FFFE}</a>"),
        Err(XsiParseError::InvalidCharacter { code: 0xFFFE, .. })
    ));
    for doc in [
        "<a>&#1;</a>",
        "<a>&#0;</a>",
        "<a b='&#x1b;'/>",
        "<a>&#xFFFF;</a>",
        "<a>&#xD800;</a>",
        "<a>&#;</a>",
    ] {
        assert!(
            matches!(
                parse_default(doc),
                Err(XsiParseError::InvalidCharacterReference(_))
            ),
            "{doc}: {:?}",
            parse_default(doc)
        );
    }
}

#[test]
fn iso_8859_1_decodes() {
    let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Profile xmlns=\"http://schema.broadsoft.com/xsi\"><details><firstName>J\xfcrgen \xc6</firstName></details></Profile>";
    let tree = parse(doc, None, &XsiLimits::default()).unwrap();
    assert_eq!(
        tree.child("details").unwrap().child_text("firstName"),
        Some("J\u{fc}rgen \u{c6}")
    );
    // From the Content-Type when the document does not say.
    let tree = parse(
        b"<a>\xe9</a>",
        Some("text/xml; charset=iso-8859-1"),
        &XsiLimits::default(),
    )
    .unwrap();
    assert_eq!(tree.text, "\u{e9}");
    assert!(matches!(
        parse(b"<a>\xe9</a>", None, &XsiLimits::default()),
        Err(XsiParseError::Undecodable(_))
    ));
    assert!(matches!(
        parse(
            b"<a/>",
            Some("text/xml; charset=windows-1251"),
            &XsiLimits::default()
        ),
        Err(XsiParseError::UnsupportedEncoding(_))
    ));
    assert!(matches!(
        parse(b"<a/>", Some("application/json"), &XsiLimits::default()),
        Err(XsiParseError::UnsupportedEncoding(_))
    ));
}

/// Found by the `xsi_parse` fuzz target: the charset check quotes the
/// media type Debug-escaped (up to 10 characters for each control
/// character), so a refused Content-Type made an unbounded message.
#[test]
fn a_refused_content_type_makes_a_bounded_message() {
    let ct = format!("groupI{}d<", "\u{1e}".repeat(60));
    let e = parse(b"<a/>", Some(&ct), &XsiLimits::default()).unwrap_err();
    let XsiParseError::UnsupportedEncoding(message) = &e else {
        panic!("{e:?}");
    };
    assert!(message.chars().count() <= 161, "{message}");
    assert!(!e.to_string().chars().any(char::is_control));
}

#[test]
fn malformed_documents_are_refused_with_the_right_error() {
    use XsiParseError::*;
    let cases: &[(&str, XsiParseError)] = &[
        ("", NoRoot),
        ("  \n", NoRoot),
        ("<!-- only a comment -->", NoRoot),
        (
            "<a><b></a>",
            MismatchedEndTag {
                expected: "b".into(),
                found: "a".into(),
            },
        ),
        (
            "<a></b>",
            MismatchedEndTag {
                expected: "a".into(),
                found: "b".into(),
            },
        ),
        ("<a/></a>", UnmatchedEndTag("a".into())),
        ("<a><b>", Unclosed("b".into())),
        ("<a>", Unclosed("a".into())),
        ("x<a/>", TextOutsideRoot),
        ("<a/>x", TextOutsideRoot),
        ("<a/>&amp;", TextOutsideRoot),
        ("<a/><![CDATA[x]]>", TextOutsideRoot),
        ("<a/><b/>", MultipleRoots("b".into())),
        ("<a/>\n<a></a>", MultipleRoots("a".into())),
        (" <?xml version='1.0'?><a/>", MisplacedDeclaration),
        ("<a/><?xml version='1.0'?>", MisplacedDeclaration),
        ("<1a/>", InvalidName("1a".into())),
        ("<a:b:c/>", InvalidName("a:b:c".into())),
        ("<a: b='1'/>", InvalidName("a:".into())),
        ("<a x:='1'/>", InvalidName("x:".into())),
        ("<a xmlns:='urn:x'/>", InvalidName("xmlns:".into())),
        ("<a p:xmlns='1'/>", InvalidName("p:xmlns".into())),
    ];
    for (doc, expected) in cases {
        assert_eq!(&parse_default(doc).unwrap_err(), expected, "{doc:?}");
        assert_eq!(expected.code(), crate::domain::ErrorCode::MalformedXml);
    }
    for doc in [
        "<a",
        "<a><!-- x -- y --></a>",
        "<a>&amp</a>",
        "<a>&</a>",
        "<a b='1'c='2'/>",
    ] {
        assert!(
            matches!(parse_default(doc), Err(Syntax { .. } | BadAttribute(_))),
            "{doc:?}: {:?}",
            parse_default(doc)
        );
    }
}

#[test]
fn comments_and_processing_instructions_are_skipped() {
    let tree = parse_default(
        "<?xml version='1.0' encoding='UTF-8'?>\n<!-- c --><?pi x?><a><!-- in --><?pi?>t</a>\n<!-- after -->\n",
    )
    .unwrap();
    assert_eq!(
        tree,
        Element {
            text: "t".into(),
            ..Element::new("a")
        }
    );
}

#[test]
fn to_xml_escapes_and_declares_what_it_must() {
    let tree = Element {
        name: "r".into(),
        namespace: Some(XSI_NAMESPACE.into()),
        attributes: vec![("v".into(), "a\"b<c>&\t\n\r".into())],
        nil: false,
        text: "1 <\r2 & 3 > 2".into(),
        children: vec![
            Element {
                nil: true,
                ..Element::new("free")
            },
            Element {
                namespace: Some(XSI_NAMESPACE.into()),
                ..Element::new("same")
            },
        ],
    };
    assert_eq!(
        tree.to_xml(),
        "<r xmlns=\"http://schema.broadsoft.com/xsi\" v=\"a&quot;b&lt;c&gt;&amp;&#9;&#10;&#13;\">\
1 &lt;&#13;2 &amp; 3 &gt; 2\
<free xmlns=\"\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:nil=\"true\"/>\
<same/></r>"
    );
    assert_round_trip(&tree, &XsiLimits::default());
    // A hand-built tree with characters XML cannot carry still writes XML.
    let odd = Element {
        text: "a\u{0}b".into(),
        ..Element::new("x")
    };
    assert_eq!(odd.to_xml(), "<x>a\u{FFFD}b</x>");
}
