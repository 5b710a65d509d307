use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::config::LimitsConfig;
use crate::domain::ids::UserId;
use crate::domain::phone::DirectoryNumber;
use crate::domain::subscriber::{NewSubscriber, Operation, OperationKind};
use crate::domain::{ErrorCode, Package};

use ErrorCode::*;

const NS: &str = "urn:bwgate:flowthrough:1";

fn limits() -> ParseLimits {
    ParseLimits::default()
}

fn parse(xml: &str) -> Result<ParsedRequest, DocumentError> {
    parse_request(xml.as_bytes(), None, &limits())
}

fn doc_code(xml: &str) -> ErrorCode {
    match parse(xml) {
        Ok(p) => panic!("expected a document error, parsed {p:?}"),
        Err(e) => {
            assert!(!e.message().is_empty());
            e.code
        }
    }
}

/// The only operation of a document, which must be valid.
fn only_op(xml: &str) -> Operation {
    let p = parse(xml).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.operations.len(), 1);
    p.operations[0]
        .result
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn only_op_err(xml: &str) -> crate::domain::subscriber::FieldError {
    let p = parse(xml).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.operations.len(), 1);
    p.operations[0]
        .result
        .clone()
        .expect_err("operation should fail")
}

fn wrap(ops: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ProvisioningRequest xmlns="{NS}">{ops}</ProvisioningRequest>"#
    )
}

const ADD_FIELDS: &str = "<userId>jdoe@acme.example.com</userId>\
    <serviceProviderId>Reseller1</serviceProviderId>\
    <groupId>AcmeCorp</groupId>\
    <firstName>John</firstName>\
    <lastName>Doe</lastName>\
    <phoneNumber>+12405551212</phoneNumber>";

fn add_user(extra: &str) -> String {
    wrap(&format!("<AddUser>{ADD_FIELDS}{extra}</AddUser>"))
}

fn numbered_add_user(i: usize) -> String {
    format!(
        "<AddUser><userId>user{i}@acme.example.com</userId><serviceProviderId>SP1</serviceProviderId>\
         <groupId>G1</groupId><firstName>First{i}</firstName><lastName>Last{i}</lastName>\
         <phoneNumber>+1240555{:04}</phoneNumber></AddUser>",
        i % 10_000
    )
}

fn bulk(n: usize) -> String {
    let ops: String = (0..n).map(numbered_add_user).collect();
    wrap(&ops)
}

fn expected_minimal() -> NewSubscriber {
    NewSubscriber {
        user_id: UserId::parse("jdoe@acme.example.com").unwrap(),
        service_provider_id: "Reseller1".into(),
        group_id: "AcmeCorp".into(),
        first_name: "John".into(),
        last_name: "Doe".into(),
        email: None,
        phone_number: Some(DirectoryNumber::parse("+12405551212").unwrap()),
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flowthrough")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_names(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".xml"))
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- basics

#[test]
fn minimal_add_user_parses_into_the_domain_type() {
    let p = parse_request(
        &fixture("valid-adduser-minimal.xml"),
        Some("application/xml"),
        &limits(),
    )
    .unwrap();
    assert_eq!(p.request_id.as_deref(), Some("as01-000001"));
    assert!(p.unknown_elements.is_empty());
    assert_eq!(p.operations.len(), 1);
    let op = &p.operations[0];
    assert_eq!(op.kind, OperationKind::AddUser);
    assert_eq!(op.user_id.as_deref(), Some("jdoe@acme.example.com"));
    assert_eq!(op.result, Ok(Operation::AddUser(expected_minimal())));
}

#[test]
fn a_national_number_is_kept_not_refused() {
    // BroadWorks often stores numbers without the country code: the user
    // is accepted with the number as given (the license core withholds
    // Webex Calling and says why), not refused with 9002.
    let p = parse_request(
        &fixture("valid-adduser-national-number.xml"),
        None,
        &limits(),
    )
    .unwrap();
    let Ok(Operation::AddUser(s)) = &p.operations[0].result else {
        panic!("{:?}", p.operations[0]);
    };
    let number = s.phone_number.as_ref().expect("number kept");
    assert_eq!(number.as_str(), "2405551212");
    assert_eq!(number.e164(), None);
}

#[test]
fn full_add_user_normalizes_every_field() {
    let p = parse_request(&fixture("valid-adduser-full.xml"), None, &limits()).unwrap();
    let Ok(Operation::AddUser(s)) = &p.operations[0].result else {
        panic!("{:?}", p.operations[0]);
    };
    assert_eq!(s.first_name, "Zoë");
    assert_eq!(s.last_name, "Ångström-Núñez");
    assert_eq!(s.email.as_deref(), Some("zoe.angstrom@acme.example.com"));
    assert_eq!(s.phone_number.as_ref().unwrap().as_str(), "+12405551213");
    assert_eq!(s.extension.as_deref(), Some("1213"));
    assert_eq!(
        s.mobile_phone_number.as_ref().unwrap().as_str(),
        "+13015550199"
    );
    assert_eq!(s.language.as_deref(), Some("English"));
    assert_eq!(s.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(s.package, Some(Package::Premium));
    assert!(!s.is_trunk_user && !s.has_route_list);
}

#[test]
fn limits_come_from_the_config() {
    let cfg = LimitsConfig {
        max_xml_depth: 7,
        max_xml_elements: 99,
        max_operations: 3,
        max_xml_attributes: 12,
        max_xml_namespace_declarations: 9,
        ..LimitsConfig::default()
    };
    assert_eq!(
        ParseLimits::from(&cfg),
        ParseLimits {
            max_depth: 7,
            max_elements: 99,
            max_operations: 3,
            max_attributes: 12,
            max_namespace_declarations: 9,
        }
    );
}

// ---------------------------------------------------------------- tolerance

#[test]
fn namespace_variants_parse_identically() {
    let body = |root_open: &str, root_close: &str, p: &str| {
        format!(
            "<?xml version=\"1.0\"?>{root_open}<{p}AddUser><{p}userId>jdoe@acme.example.com</{p}userId>\
             <{p}serviceProviderId>Reseller1</{p}serviceProviderId><{p}groupId>AcmeCorp</{p}groupId>\
             <{p}firstName>John</{p}firstName><{p}lastName>Doe</{p}lastName>\
             <{p}phoneNumber>+12405551212</{p}phoneNumber></{p}AddUser>{root_close}"
        )
    };
    let docs = [
        body(
            &format!("<ProvisioningRequest xmlns=\"{NS}\" requestId=\"r1\">"),
            "</ProvisioningRequest>",
            "",
        ),
        body(
            &format!("<ft:ProvisioningRequest xmlns:ft=\"{NS}\" requestId=\"r1\">"),
            "</ft:ProvisioningRequest>",
            "ft:",
        ),
        body(
            "<ProvisioningRequest xmlns=\"urn:other:ns\" requestId=\"r1\">",
            "</ProvisioningRequest>",
            "",
        ),
        body(
            "<x:ProvisioningRequest xmlns:x=\"urn:other:ns\" x:requestId=\"r1\">",
            "</x:ProvisioningRequest>",
            "x:",
        ),
        body(
            "<ProvisioningRequest requestId=\"r1\">",
            "</ProvisioningRequest>",
            "",
        ),
    ];
    let first = parse(&docs[0]).unwrap();
    assert_eq!(
        first.operations[0].result,
        Ok(Operation::AddUser(expected_minimal()))
    );
    assert_eq!(first.request_id.as_deref(), Some("r1"));
    for d in &docs[1..] {
        assert_eq!(parse(d).unwrap(), first, "{d}");
    }
    // The fixtures agree too.
    let prefixed = parse_request(&fixture("valid-prefixed-ns.xml"), None, &limits()).unwrap();
    let bare = parse_request(&fixture("tolerated-no-namespace.xml"), None, &limits()).unwrap();
    assert_eq!(prefixed.operations, bare.operations);
}

#[test]
fn field_order_does_not_matter() {
    let fields = [
        "<userId>jdoe@acme.example.com</userId>",
        "<serviceProviderId>Reseller1</serviceProviderId>",
        "<groupId>AcmeCorp</groupId>",
        "<firstName>John</firstName>",
        "<lastName>Doe</lastName>",
        "<phoneNumber>+12405551212</phoneNumber>",
        "<extension>1212</extension>",
        "<package>basic</package>",
        "<emailAddress>jdoe@acme.example.com</emailAddress>",
    ];
    let build = |order: &[usize]| {
        let inner: String = order.iter().map(|&i| fields[i]).collect();
        wrap(&format!("<AddUser>{inner}</AddUser>"))
    };
    let reference = parse(&build(&[0, 1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    assert!(reference.operations[0].result.is_ok());
    for order in [
        [8, 7, 6, 5, 4, 3, 2, 1, 0],
        [4, 0, 8, 2, 6, 1, 3, 7, 5],
        [5, 3, 1, 7, 0, 8, 6, 4, 2],
    ] {
        assert_eq!(parse(&build(&order)).unwrap(), reference, "{order:?}");
    }
}

#[test]
fn unknown_elements_are_ignored_and_listed() {
    let p = parse_request(&fixture("tolerated-unknown-elements.xml"), None, &limits()).unwrap();
    assert_eq!(p.unknown_elements, ["asVersion", "department", "impId"]);
    assert_eq!(p.operations.len(), 1);
    assert_eq!(
        p.operations[0].result,
        Ok(Operation::AddUser(expected_minimal()))
    );

    // A known field of another operation is unknown here; an element inside a
    // field is unknown and its text is not part of the field.
    let xml = wrap(&format!(
        "<Unknown><AddUser>{ADD_FIELDS}</AddUser></Unknown>\
         <DeleteUser><userId>jdoe@acme.example.com<b>x</b></userId><firstName>J</firstName></DeleteUser>"
    ));
    let p = parse(&xml).unwrap();
    assert_eq!(p.unknown_elements, ["Unknown", "b", "firstName"]);
    assert_eq!(
        p.operations.len(),
        1,
        "nothing inside an unknown element is an operation"
    );
    assert_eq!(
        p.operations[0].user_id.as_deref(),
        Some("jdoe@acme.example.com")
    );
    assert!(p.operations[0].result.is_ok());
}

#[test]
fn comments_and_processing_instructions_are_ignored() {
    let xml = format!(
        "<?xml version=\"1.0\"?><!-- c --><?as-trace id=1?><ProvisioningRequest xmlns=\"{NS}\">\
         <!-- before --><AddUser><?pi?>{ADD_FIELDS}<!-- inside --></AddUser></ProvisioningRequest><!-- after -->\n"
    );
    assert_eq!(only_op(&xml), Operation::AddUser(expected_minimal()));
}

#[test]
fn text_is_trimmed_and_references_and_cdata_are_joined() {
    let p = parse_request(&fixture("valid-entities-and-cdata.xml"), None, &limits()).unwrap();
    assert_eq!(p.request_id.as_deref(), Some("as01-&-000008"));
    let Ok(Operation::AddUser(s)) = &p.operations[0].result else {
        panic!("{:?}", p.operations[0]);
    };
    assert_eq!(s.service_provider_id, "Smith & Sons");
    assert_eq!(s.group_id, "R&D <Lab>");
    assert_eq!(s.first_name, "Seán");
    assert_eq!(s.last_name, "O'Brien");
    assert_eq!(s.email.as_deref(), Some("o'brien@acme.example.com"));

    let xml = add_user("").replace(
        "<firstName>John</firstName>",
        "<firstName>\n\t  John \r\n</firstName>",
    );
    let Operation::AddUser(s) = only_op(&xml) else {
        panic!()
    };
    assert_eq!(s.first_name, "John");
}

#[test]
fn empty_elements_mean_empty_values() {
    for empty in [
        "<mobilePhoneNumber/>",
        "<mobilePhoneNumber></mobilePhoneNumber>",
        "<mobilePhoneNumber>  </mobilePhoneNumber>",
    ] {
        let xml = wrap(&format!(
            "<ModifyUser><userId>jdoe@acme.example.com</userId><serviceProviderId>SP</serviceProviderId>\
             <groupId>G</groupId>{empty}</ModifyUser>"
        ));
        let Operation::ModifyUser(c) = only_op(&xml) else {
            panic!()
        };
        assert_eq!(c.mobile_phone_number, Some(None), "{empty}");
        assert_eq!(c.phone_number, None);
    }
    let p = parse_request(&fixture("valid-modify-remove-mobile.xml"), None, &limits()).unwrap();
    let Ok(Operation::ModifyUser(c)) = &p.operations[0].result else {
        panic!()
    };
    assert_eq!(c.mobile_phone_number, Some(None));
    assert_eq!(c.extension, Some(Some("2001".into())));

    // In AddUser an empty element is a missing value.
    let xml = add_user("").replace("<phoneNumber>+12405551212</phoneNumber>", "<phoneNumber/>");
    let e = only_op_err(&xml);
    assert_eq!((e.code, e.field), (MissingParameter, "phoneNumber"));
    let xml = add_user("").replace("<lastName>Doe</lastName>", "<lastName></lastName>");
    assert_eq!(only_op_err(&xml).field, "lastName");
}

// ---------------------------------------------------------------- charsets

#[test]
fn utf8_and_latin1_decode_to_the_same_text() {
    let utf8 = add_user("").replace("Doe", "Müller");
    let latin1_text = utf8.replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let latin1: Vec<u8> = latin1_text
        .chars()
        .map(|c| u8::try_from(c as u32).unwrap())
        .collect();
    assert!(latin1.contains(&0xFC), "really one byte 0xFC");
    assert!(std::str::from_utf8(&latin1).is_err(), "and not valid UTF-8");

    let a = parse_request(utf8.as_bytes(), None, &limits()).unwrap();
    let b = parse_request(&latin1, None, &limits()).unwrap();
    assert_eq!(a, b);
    let Ok(Operation::AddUser(s)) = &a.operations[0].result else {
        panic!()
    };
    assert_eq!(s.last_name, "Müller");

    // The fixture (real ISO-8859-1 bytes) and its UTF-8-with-BOM twin.
    let l = parse_request(&fixture("valid-latin1.xml"), Some("text/xml"), &limits()).unwrap();
    let u = parse_request(&fixture("valid-utf8-bom.xml"), Some("text/xml"), &limits()).unwrap();
    assert_eq!(l.operations, u.operations);
    let Ok(Operation::AddUser(s)) = &l.operations[0].result else {
        panic!()
    };
    assert_eq!(
        (s.first_name.as_str(), s.last_name.as_str()),
        ("Jürgen", "Müller")
    );
}

#[test]
fn charset_comes_from_declaration_then_content_type_then_utf8() {
    let no_decl = |name: &str| {
        format!(
            "<ProvisioningRequest><AddUser>{}</AddUser></ProvisioningRequest>",
            ADD_FIELDS.replace("Doe", name)
        )
    };
    let latin1 = |s: &str| -> Vec<u8> { s.chars().map(|c| c as u32 as u8).collect() };
    let last_name = |body: &[u8], ct: Option<&str>| -> Result<String, ErrorCode> {
        let p = parse_request(body, ct, &limits()).map_err(|e| e.code)?;
        match &p.operations[0].result {
            Ok(Operation::AddUser(s)) => Ok(s.last_name.clone()),
            other => panic!("{other:?}"),
        }
    };
    // Content-Type charset when there is no declaration, any label case.
    for ct in [
        "text/xml; charset=ISO-8859-1",
        "application/xml;charset=latin1",
        "application/xml; charset=\"iso-8859-1\"",
    ] {
        assert_eq!(
            last_name(&latin1(&no_decl("Müller")), Some(ct)).as_deref(),
            Ok("Müller"),
            "{ct}"
        );
    }
    // Default UTF-8.
    assert_eq!(
        last_name(no_decl("Müller").as_bytes(), None).as_deref(),
        Ok("Müller")
    );
    assert_eq!(
        last_name(no_decl("Müller").as_bytes(), Some("application/xml")).as_deref(),
        Ok("Müller")
    );
    // Declaration beats the header, both ways.
    let decl_utf8 = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>{}",
        no_decl("Müller")
    );
    assert_eq!(
        last_name(decl_utf8.as_bytes(), Some("text/xml; charset=ISO-8859-1")).as_deref(),
        Ok("Müller")
    );
    let decl_latin1 = format!(
        "<?xml version='1.0' encoding='Latin1'?>{}",
        no_decl("Müller")
    );
    assert_eq!(
        last_name(&latin1(&decl_latin1), Some("text/xml; charset=UTF-8")).as_deref(),
        Ok("Müller")
    );
    // US-ASCII is accepted for ASCII bytes only.
    let ascii = format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>{}",
        no_decl("Doe")
    );
    assert_eq!(last_name(ascii.as_bytes(), None).as_deref(), Ok("Doe"));
    let not_ascii = format!(
        "<?xml version=\"1.0\" encoding=\"us-ascii\"?>{}",
        no_decl("Müller")
    );
    assert_eq!(last_name(not_ascii.as_bytes(), None), Err(MalformedXml));
    // BOM.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(no_decl("Müller").as_bytes());
    assert_eq!(
        last_name(&bom, Some("text/xml; charset=ISO-8859-1")).as_deref(),
        Ok("Müller")
    );
}

#[test]
fn unsupported_charsets_and_media_types_give_9014() {
    let doc = wrap("<DeleteUser><userId>a@b.example.com</userId></DeleteUser>");
    let code = |body: &[u8], ct: Option<&str>| parse_request(body, ct, &limits()).unwrap_err().code;
    assert_eq!(
        code(&fixture("invalid-9014-shift-jis.xml"), None),
        UnsupportedMediaType
    );
    let ebcdic = doc.replace("UTF-8", "EBCDIC-US");
    assert_eq!(code(ebcdic.as_bytes(), None), UnsupportedMediaType);
    let no_decl = doc.replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", "");
    assert_eq!(
        code(no_decl.as_bytes(), Some("text/xml; charset=windows-1252")),
        UnsupportedMediaType
    );
    assert_eq!(
        code(no_decl.as_bytes(), Some("application/json")),
        UnsupportedMediaType
    );
    assert_eq!(
        code(no_decl.as_bytes(), Some("text/plain; charset=utf-8")),
        UnsupportedMediaType
    );
    let mut utf16 = vec![0xFF, 0xFE];
    for u in no_decl.encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    assert_eq!(code(&utf16, None), UnsupportedMediaType);
    // application/*+xml is XML.
    assert!(parse_request(
        no_decl.as_bytes(),
        Some("application/vnd.bwgate+xml"),
        &limits()
    )
    .is_ok());
}

#[test]
fn invalid_utf8_is_malformed() {
    let mut body = add_user("").into_bytes();
    let at = body.windows(3).position(|w| w == b"Doe").unwrap();
    body[at + 1] = 0xFC; // "Düe" in Latin-1 but declared UTF-8
    let e = parse_request(&body, None, &limits()).unwrap_err();
    assert_eq!(e.code, MalformedXml);
    assert!(e.message().contains("UTF-8"), "{}", e.message());
    // The header cannot override the declaration.
    let e = parse_request(&body, Some("text/xml; charset=ISO-8859-1"), &limits()).unwrap_err();
    assert_eq!(e.code, MalformedXml);
    // A UTF-8 BOM contradicting a Latin-1 declaration.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(add_user("").replace("UTF-8", "ISO-8859-1").as_bytes());
    assert_eq!(
        parse_request(&bom, None, &limits()).unwrap_err().code,
        MalformedXml
    );
}

// ---------------------------------------------------------------- refusals

#[test]
fn not_well_formed_documents_give_9011() {
    let ok_op = "<DeleteUser><userId>a@b.example.com</userId></DeleteUser>";
    let cases: Vec<(&str, String)> = vec![
        ("empty body", String::new()),
        ("whitespace body", " \r\n\t".into()),
        ("declaration only", "<?xml version=\"1.0\"?>".into()),
        ("mismatched end tag", wrap("<DeleteUser><userId>a@b.example.com</userId></AddUser>")),
        ("unclosed root", format!("<ProvisioningRequest>{ok_op}")),
        ("truncated tag", format!("<ProvisioningRequest>{ok_op}</Provisioning")),
        ("trailing garbage", format!("{}garbage", wrap(ok_op))),
        ("second root", format!("{}<ProvisioningRequest>{ok_op}</ProvisioningRequest>", wrap(ok_op))),
        ("text before root", format!("hello{}", wrap(ok_op).replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", ""))),
        ("stray end tag", format!("{}</ProvisioningRequest>", wrap(ok_op))),
        ("unquoted attribute", format!("<ProvisioningRequest requestId=r1>{ok_op}</ProvisioningRequest>")),
        ("duplicate attribute", format!("<ProvisioningRequest requestId=\"1\" requestId=\"2\">{ok_op}</ProvisioningRequest>")),
        ("bad attribute on an inner element", wrap("<DeleteUser a=\"1\" a=\"2\"><userId>a@b.example.com</userId></DeleteUser>")),
        ("'<' in attribute", format!("<ProvisioningRequest requestId=\"a<b\">{ok_op}</ProvisioningRequest>")),
        ("lone ampersand", wrap("<DeleteUser><userId>a&b@b.example.com</userId></DeleteUser>")),
        ("NUL character reference", wrap("<DeleteUser><userId>a&#0;@b.example.com</userId></DeleteUser>")),
        ("control character reference", wrap("<DeleteUser><userId>a&#x1;@b.example.com</userId></DeleteUser>")),
        ("declaration not at the start", format!("<!-- x --><?xml version=\"1.0\"?>{}", wrap(ok_op).replace("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", ""))),
        ("CDATA outside root", format!("{}<![CDATA[x]]>", wrap(ok_op))),
    ];
    for (what, xml) in cases {
        let r = parse(&xml);
        assert_eq!(
            r.as_ref().map_err(|e| e.code).err(),
            Some(MalformedXml),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn wrong_root_names_what_was_found() {
    let e = parse_request(&fixture("invalid-9011-wrong-root.xml"), None, &limits()).unwrap_err();
    assert_eq!(e.code, MalformedXml);
    assert!(
        e.message().contains("<UserAddRequest17sp4>"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("ProvisioningRequest"),
        "{}",
        e.message()
    );
    // The local name is compared exactly.
    assert_eq!(
        doc_code("<provisioningrequest><DeleteUser/></provisioningrequest>"),
        MalformedXml
    );
}

#[test]
fn dtds_and_entities_give_9012() {
    let ok_op = "<DeleteUser><userId>a@b.example.com</userId></DeleteUser>";
    let cases: Vec<(&str, String)> = vec![
        ("internal DOCTYPE", format!("<!DOCTYPE ProvisioningRequest []><ProvisioningRequest>{ok_op}</ProvisioningRequest>")),
        ("external DTD", format!("<!DOCTYPE ProvisioningRequest SYSTEM \"http://attacker.example/x.dtd\"><ProvisioningRequest>{ok_op}</ProvisioningRequest>")),
        ("DOCTYPE after a comment", format!("<!-- hi --><!DOCTYPE x><ProvisioningRequest>{ok_op}</ProvisioningRequest>")),
        ("undeclared entity in text", wrap("<DeleteUser><userId>&xxe;</userId></DeleteUser>")),
        ("entity inside an ignored element", wrap(&format!("<Extra>&xxe;</Extra>{ok_op}"))),
        ("entity in the requestId", format!("<ProvisioningRequest requestId=\"&xxe;\">{ok_op}</ProvisioningRequest>")),
        ("entity in another attribute", wrap(&format!("<Extra a=\"&xxe;\"/>{ok_op}"))),
        ("ENTITY declaration without DOCTYPE", format!("<!ENTITY xxe SYSTEM \"file:///etc/passwd\"><ProvisioningRequest>{ok_op}</ProvisioningRequest>")),
        ("ENTITY declaration inside the root", format!("<ProvisioningRequest><!ENTITY x \"y\">{ok_op}</ProvisioningRequest>")),
    ];
    for (what, xml) in cases {
        let r = parse(&xml);
        assert_eq!(
            r.as_ref().map_err(|e| e.code).err(),
            Some(ForbiddenXmlConstruct),
            "{what}: {r:?}"
        );
    }
    for f in [
        "invalid-9012-billion-laughs.xml",
        "invalid-9012-external-entity.xml",
    ] {
        let e = parse_request(&fixture(f), None, &limits()).unwrap_err();
        assert_eq!(e.code, ForbiddenXmlConstruct, "{f}");
        assert!(
            !e.message().contains("root:"),
            "no file content leaks: {}",
            e.message()
        );
    }
}

#[test]
fn billion_laughs_is_refused_without_expansion() {
    // 10^9 "lol"s if expanded; refused at the DOCTYPE in well under a second.
    let body = fixture("invalid-9012-billion-laughs.xml");
    let start = std::time::Instant::now();
    for _ in 0..100 {
        assert_eq!(
            parse_request(&body, None, &limits()).unwrap_err().code,
            ForbiddenXmlConstruct
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// An external entity pointing at a FIFO: opening a FIFO for reading blocks
/// until a writer appears, so a parser that tried to fetch the entity would
/// hang here instead of answering.
#[cfg(unix)]
#[test]
fn external_entities_are_never_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("secret.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-MARKER").unwrap();
    for target in [&fifo, &secret] {
        for body in [
            format!(
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file://{}\">]>\
                 <ProvisioningRequest><DeleteUser><userId>&xxe;</userId></DeleteUser></ProvisioningRequest>",
                target.display()
            ),
            format!(
                "<!DOCTYPE r SYSTEM \"file://{}\"><ProvisioningRequest><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>",
                target.display()
            ),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(parse_request(body.as_bytes(), None, &ParseLimits::default()));
            });
            let result = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the parser blocked: it tried to open the external entity");
            let e = result.unwrap_err();
            assert_eq!(e.code, ForbiddenXmlConstruct);
            assert!(!e.message().contains("TOP-SECRET"), "{}", e.message());
        }
    }
}

#[test]
fn depth_and_element_limits_give_9013() {
    // Depth bomb: 100 000 nested elements, refused at depth 17.
    let n = 100_000;
    let bomb = wrap(&format!(
        "<AddUser>{}{}</AddUser>",
        "<x>".repeat(n),
        "</x>".repeat(n)
    ));
    let e = parse(&bomb).unwrap_err();
    assert_eq!(e.code, XmlTooComplex);
    assert!(e.message().contains("16"), "{}", e.message());
    assert_eq!(
        parse_request(&fixture("invalid-9013-depth-bomb.xml"), None, &limits())
            .unwrap_err()
            .code,
        XmlTooComplex
    );
    // Unclosed depth bomb (not even well-formed) is stopped by the limit first.
    let unclosed = format!("<ProvisioningRequest>{}", "<x>".repeat(n));
    assert_eq!(doc_code(&unclosed), XmlTooComplex);

    // Exact boundary: the root is depth 1.
    let tight = ParseLimits {
        max_depth: 5,
        ..limits()
    };
    let at = |depth_below_field: usize| {
        let nest = format!(
            "{}{}",
            "<x>".repeat(depth_below_field),
            "</x>".repeat(depth_below_field)
        );
        add_user(&format!("<note>{nest}</note>"))
    };
    assert!(parse_request(at(1).as_bytes(), None, &tight).is_ok()); // depth 4
    let self_closing = add_user("<note><x/></note>"); // <x/> at depth 4
    assert!(parse_request(self_closing.as_bytes(), None, &tight).is_ok());
    let deep_empty = add_user("<note><x><y/></x></note>"); // <y/> at depth 5
    assert!(parse_request(deep_empty.as_bytes(), None, &tight).is_ok());
    let too_deep = add_user("<note><x><y><z/></y></x></note>"); // depth 6
    assert_eq!(
        parse_request(too_deep.as_bytes(), None, &tight)
            .unwrap_err()
            .code,
        XmlTooComplex
    );

    // Element count, root included: 1 + 1 + 6 fields = 8.
    let few = ParseLimits {
        max_elements: 8,
        ..limits()
    };
    assert!(parse_request(add_user("").as_bytes(), None, &few).is_ok());
    let e = parse_request(add_user("<x/>").as_bytes(), None, &few).unwrap_err();
    assert_eq!(e.code, XmlTooComplex);
    // Wide and flat: many ignored siblings.
    let wide = wrap(&format!(
        "{}<DeleteUser><userId>a@b.example.com</userId></DeleteUser>",
        "<e/>".repeat(60_000)
    ));
    assert_eq!(doc_code(&wide), XmlTooComplex);
}

#[test]
fn bulk_up_to_the_operation_limit() {
    let p = parse(&bulk(1000)).unwrap();
    assert_eq!(p.operations.len(), 1000);
    assert!(p.operations.iter().all(|o| o.result.is_ok()));
    assert_eq!(
        p.operations[999].user_id.as_deref(),
        Some("user999@acme.example.com")
    );

    let e = parse(&bulk(1001)).unwrap_err();
    assert_eq!(e.code, TooManyOperations);
    assert!(e.message().contains("1000"), "{}", e.message());

    let three = ParseLimits {
        max_operations: 3,
        ..limits()
    };
    assert!(parse_request(bulk(3).as_bytes(), None, &three).is_ok());
    assert_eq!(
        parse_request(bulk(4).as_bytes(), None, &three)
            .unwrap_err()
            .code,
        TooManyOperations
    );
}

#[test]
fn a_document_without_operations_gives_1001() {
    for xml in [
        format!("<ProvisioningRequest xmlns=\"{NS}\"/>"),
        format!("<ProvisioningRequest xmlns=\"{NS}\">\n</ProvisioningRequest>"),
        format!("<ProvisioningRequest xmlns=\"{NS}\"><Noise/><AddUserX/></ProvisioningRequest>"),
    ] {
        let e = parse(&xml).unwrap_err();
        assert_eq!(e.code, MissingParameter, "{xml}");
        assert!(e.message().starts_with("operation"), "{}", e.message());
    }
}

#[test]
fn request_id_is_checked() {
    let doc = |attr: &str| {
        format!("<ProvisioningRequest{attr}><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>")
    };
    assert_eq!(parse(&doc("")).unwrap().request_id, None);
    assert_eq!(parse(&doc(" requestId=\"\"")).unwrap().request_id, None);
    assert_eq!(
        parse(&doc(" requestId=' r-1 '"))
            .unwrap()
            .request_id
            .as_deref(),
        Some("r-1")
    );
    let long = format!(" requestId=\"{}\"", "r".repeat(129));
    assert_eq!(doc_code(&doc(&long)), InvalidParameterSize);
    let ok = format!(" requestId=\"{}\"", "r".repeat(128));
    assert!(parse(&doc(&ok)).is_ok());
    assert_eq!(
        doc_code(&doc(" requestId=\"a&#x7F;b\"")),
        InvalidParameterValue
    );
}

// ---------------------------------------------------------------- operations

#[test]
fn operation_errors_do_not_fail_the_document() {
    let bad_email = format!("<AddUser>{ADD_FIELDS}<emailAddress>nope</emailAddress></AddUser>")
        .replace("jdoe@", "bad@");
    let xml = wrap(&format!(
        "{}{bad_email}<DeleteUser><userId>  not-a-user-id  </userId></DeleteUser><DeleteUser/>{}",
        numbered_add_user(1),
        numbered_add_user(2)
    ));
    let p = parse(&xml).unwrap();
    let codes: Vec<Option<ErrorCode>> = p
        .operations
        .iter()
        .map(|o| o.result.as_ref().err().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some(InvalidEmail),
            Some(InvalidParameterValue),
            Some(MissingParameter),
            None
        ]
    );
    let kinds: Vec<OperationKind> = p.operations.iter().map(|o| o.kind).collect();
    use OperationKind::*;
    assert_eq!(kinds, [AddUser, AddUser, DeleteUser, DeleteUser, AddUser]);
    // Raw user ids are kept (trimmed) for the response, even invalid ones.
    let ids: Vec<Option<&str>> = p.operations.iter().map(|o| o.user_id.as_deref()).collect();
    assert_eq!(
        ids,
        [
            Some("user1@acme.example.com"),
            Some("bad@acme.example.com"),
            Some("not-a-user-id"),
            None,
            Some("user2@acme.example.com")
        ]
    );
}

#[test]
fn every_operation_level_code_through_the_parser() {
    let cases: Vec<(String, ErrorCode, &str)> = vec![
        (add_user("").replace("<userId>jdoe@acme.example.com</userId>", ""), MissingParameter, "userId"),
        (add_user("").replace("<groupId>AcmeCorp</groupId>", "<groupId/>"), MissingParameter, "groupId"),
        (add_user("").replace("<phoneNumber>+12405551212</phoneNumber>", ""), MissingParameter, "phoneNumber"),
        (add_user("").replace("John", &"J".repeat(31)), InvalidParameterSize, "firstName"),
        (add_user("<extension>1</extension>"), InvalidParameterSize, "extension"),
        (add_user("<emailAddress>a@b</emailAddress>"), InvalidEmail, "emailAddress"),
        (add_user("").replace("+12405551212", "+1 240 CALL NOW"), InvalidPhoneNumber, "phoneNumber"),
        (add_user("<isTrunkUser>true</isTrunkUser><hasRouteList>1</hasRouteList>"), TrunkUserWithRouteList, "hasRouteList"),
        (add_user("<package>gold</package>"), InvalidParameterValue, "package"),
        (add_user("<isTrunkUser>yes</isTrunkUser>"), InvalidParameterValue, "isTrunkUser"),
        (add_user("<extension>12a</extension>"), InvalidParameterValue, "extension"),
        (add_user("").replace("Doe", "Do&#x7F;e"), InvalidParameterValue, "lastName"),
        (add_user("<phoneNumber>+12405550000</phoneNumber>"), InvalidParameterValue, "phoneNumber"),
        (
            wrap("<RequestActivationCode><userId>a@b.example.com</userId><macAddress>00:11:22:33:44:GG</macAddress></RequestActivationCode>"),
            InvalidParameterValue,
            "macAddress",
        ),
        (
            wrap("<ModifyUser><userId>a@b.example.com</userId><serviceProviderId>S</serviceProviderId><groupId>G</groupId><phoneNumber/><extension/></ModifyUser>"),
            MissingParameter,
            "phoneNumber",
        ),
    ];
    for (xml, code, field) in cases {
        let e = only_op_err(&xml);
        assert_eq!((e.code, e.field), (code, field), "{e} in {xml}");
    }
}

#[test]
fn each_operation_kind_parses() {
    let p = parse_request(&fixture("valid-bulk-mixed.xml"), None, &limits()).unwrap();
    let kinds: Vec<OperationKind> = p.operations.iter().map(|o| o.kind).collect();
    use OperationKind::*;
    assert_eq!(
        kinds,
        [
            AddUser,
            AddUser,
            ModifyUser,
            DeleteUser,
            RequestActivationCode
        ]
    );
    for o in &p.operations {
        let op = o.result.as_ref().unwrap();
        assert_eq!(op.kind(), o.kind);
        assert_eq!(Some(op.user_id().as_str()), o.user_id.as_deref());
    }
    match &p.operations[2].result {
        Ok(Operation::ModifyUser(c)) => {
            assert_eq!(c.package, Some(Package::Premium));
            assert_eq!(c.last_name.as_deref(), Some("Smith-Jones"));
            assert_eq!(c.first_name, None);
            assert_eq!(c.phone_number, None);
        }
        other => panic!("{other:?}"),
    }
    match &p.operations[3].result {
        Ok(Operation::DeleteUser(r)) => assert_eq!(r.group_id.as_deref(), Some("AcmeCorp")),
        other => panic!("{other:?}"),
    }
    match &p.operations[4].result {
        Ok(Operation::RequestActivationCode(a)) => {
            assert_eq!(a.mac_address.as_deref(), Some("001BD4A1B2C3"));
            assert_eq!(a.device_type.as_deref(), Some("Cisco 8865"));
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- fixtures + XSD

fn xsd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/flowthrough-v1.xsd")
}

/// `xmllint --noout --schema …` (CI installs libxml2-utils; a missing
/// xmllint is a failure, not a skip).
fn xmllint(file: &Path) -> Result<(), String> {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(xsd())
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is required for this test (apt-get install libxml2-utils): {e}")
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn valid_fixtures_parse_cleanly_and_validate_against_the_xsd() {
    let names = fixture_names("valid-");
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let p = parse_request(&fixture(name), Some("application/xml"), &limits())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(
            p.unknown_elements.is_empty(),
            "{name}: {:?}",
            p.unknown_elements
        );
        for o in &p.operations {
            assert!(o.result.is_ok(), "{name}: {o:?}");
        }
        if let Err(e) = xmllint(&fixtures_dir().join(name)) {
            panic!("{name} does not validate against flowthrough-v1.xsd:\n{e}");
        }
    }
}

#[test]
fn tolerated_fixtures_parse_but_are_not_schema_valid() {
    let names = fixture_names("tolerated-");
    assert!(!names.is_empty());
    for name in &names {
        let p = parse_request(&fixture(name), None, &limits())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(p.operations.iter().all(|o| o.result.is_ok()), "{name}");
        assert!(
            xmllint(&fixtures_dir().join(name)).is_err(),
            "{name} unexpectedly schema-valid"
        );
    }
}

/// `invalid-<code>-<what>.xml` is refused with `<code>`: as a whole
/// document, or (for operation-level codes) by its only operation.
#[test]
fn invalid_fixtures_give_the_code_in_their_name() {
    let names = fixture_names("invalid-");
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let want: u32 = name["invalid-".len()..]
            .split('-')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let got = match parse_request(&fixture(name), None, &limits()) {
            Err(e) => e.code.code(),
            Ok(p) => {
                assert_eq!(p.operations.len(), 1, "{name}");
                p.operations[0].result.as_ref().expect_err(name).code.code()
            }
        };
        assert_eq!(got, want, "{name}");
    }
    // Where XSD 1.0 can express the rule, the schema refuses them too.
    for name in [
        "invalid-1001-adduser-missing-lastname.xml",
        "invalid-1002-first-name-too-long.xml",
        "invalid-9001-bad-email.xml",
        "invalid-9002-bad-phone.xml",
        "invalid-9017-unknown-package.xml",
        "invalid-9011-wrong-root.xml",
        "invalid-1001-no-operations.xml",
    ] {
        assert!(
            xmllint(&fixtures_dir().join(name)).is_err(),
            "{name} passes the XSD"
        );
    }
}

// ---------------------------------------------------------------- response

fn line(
    op: OperationKind,
    user: Option<&str>,
    outcome: Result<&str, (ErrorCode, &str)>,
) -> ResultLine {
    ResultLine {
        operation: op,
        user_id: user.map(str::to_string),
        outcome: outcome
            .map(str::to_string)
            .map_err(|(c, s)| (c, s.to_string())),
    }
}

#[test]
fn response_has_the_documented_shape() {
    let xml = render_response(
        Some("r-1"),
        "trk-1",
        &[
            line(
                OperationKind::AddUser,
                Some("a@b.example.com"),
                Ok("provisioning"),
            ),
            line(
                OperationKind::DeleteUser,
                None,
                Err((MissingParameter, "userId: is missing")),
            ),
        ],
    );
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ProvisioningResponse xmlns=\"urn:bwgate:flowthrough:1\" \
         requestId=\"r-1\" trackingId=\"trk-1\"><result operation=\"AddUser\" userId=\"a@b.example.com\" \
         status=\"provisioning\"/><result operation=\"DeleteUser\"><error errorCode=\"1001\">userId: is missing\
         </error></result></ProvisioningResponse>"
    );
    let no_id = render_response(None, "t", &[]);
    assert!(!no_id.contains("requestId"), "{no_id}");
    assert!(
        no_id.ends_with("trackingId=\"t\"></ProvisioningResponse>"),
        "{no_id}"
    );
}

#[test]
fn response_escapes_what_it_echoes() {
    let nasty = "a<b>&\"c'\td\ne\r\u{1}";
    let xml = render_response(
        Some(nasty),
        "t\"<&",
        &[line(
            OperationKind::ModifyUser,
            Some(nasty),
            Err((InvalidParameterValue, nasty)),
        )],
    );
    assert!(
        xml.contains("requestId=\"a&lt;b&gt;&amp;&quot;c&apos;&#9;d&#10;e&#13;\u{FFFD}\""),
        "{xml}"
    );
    assert!(xml.contains("trackingId=\"t&quot;&lt;&amp;\""), "{xml}");
    assert!(
        xml.contains(">a&lt;b&gt;&amp;&quot;c&apos;\td\ne&#13;\u{FFFD}</error>"),
        "{xml}"
    );

    // A real XML reader gets the values back (control character aside).
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut attrs = Vec::new();
    let mut text = String::new();
    let mut in_error = false;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                in_error = e.name().as_ref() == b"error";
                for a in e.attributes() {
                    let a = a.unwrap();
                    attrs.push((
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().into_owned(),
                    ));
                }
            }
            quick_xml::events::Event::End(_) => in_error = false,
            quick_xml::events::Event::Text(t) if in_error => {
                text.push_str(&t.xml10_content().unwrap())
            }
            quick_xml::events::Event::GeneralRef(r) if in_error => {
                let c =
                    r.resolve_char_ref().unwrap().unwrap_or_else(
                        || match &*String::from_utf8_lossy(&r) {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "quot" => '"',
                            "apos" => '\'',
                            other => panic!("{other}"),
                        },
                    );
                text.push(c);
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    let want = "a<b>&\"c'\td\ne\r\u{FFFD}";
    assert!(
        attrs.contains(&("requestId".into(), want.into())),
        "{attrs:?}"
    );
    assert!(attrs.contains(&("userId".into(), want.into())), "{attrs:?}");
    assert!(
        attrs.contains(&("trackingId".into(), "t\"<&".into())),
        "{attrs:?}"
    );
    assert_eq!(text, want);
}

#[test]
fn rendered_response_validates_against_the_xsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("response.xml");
    let xml = render_response(
        Some("as01-<&>-1"),
        "3f2c-trk",
        &[
            line(
                OperationKind::AddUser,
                Some("a@b.example.com"),
                Ok("provisioning"),
            ),
            line(
                OperationKind::ModifyUser,
                Some("x"),
                Ok("pending_email_input"),
            ),
            line(
                OperationKind::DeleteUser,
                None,
                Err((MissingParameter, "userId: is missing")),
            ),
            line(
                OperationKind::RequestActivationCode,
                Some("\"q\""),
                Err((InvalidParameterValue, "<bad> & \"worse\"")),
            ),
        ],
    );
    std::fs::write(&path, &xml).unwrap();
    if let Err(e) = xmllint(&path) {
        panic!("rendered response does not validate:\n{e}\n{xml}");
    }
}

#[test]
fn parse_then_render_round_trip() {
    let p = parse_request(&fixture("valid-bulk-mixed.xml"), None, &limits()).unwrap();
    let lines: Vec<ResultLine> = p
        .operations
        .iter()
        .map(|o| ResultLine {
            operation: o.kind,
            user_id: o.user_id.clone(),
            outcome: Ok("provisioning".into()),
        })
        .collect();
    let xml = render_response(p.request_id.as_deref(), "t", &lines);
    assert_eq!(xml.matches("<result ").count(), 5);
    assert!(xml.contains("requestId=\"as01-resync-20240601\""));
    assert!(xml.contains("operation=\"RequestActivationCode\" userId=\"alice@acme.example.com\""));
}

// ------------------------------------------------- attributes and characters

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
fn attribute_and_namespace_bombs_give_9013_naming_the_limit() {
    let tight = ParseLimits {
        max_attributes: 10,
        max_namespace_declarations: 8,
        ..limits()
    };
    let parse_tight = |xml: String| parse_request(xml.as_bytes(), None, &tight);
    // At the limits: accepted (the root's xmlns is one declaration).
    let root_ok = format!(
        "<ProvisioningRequest xmlns=\"{NS}\"{}><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>",
        attribute_run(7, true)
    );
    assert!(parse_tight(root_ok).is_ok());
    let inner_ok = add_user(&format!("<note{}/>", attribute_run(10, false)));
    assert!(parse_tight(inner_ok).is_ok());

    // One over, on the root, an operation, a field and an ignored element.
    let over_attributes = [
        format!(
            "<ProvisioningRequest requestId=\"r\"{}><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>",
            attribute_run(10, false)
        ),
        wrap(&format!(
            "<DeleteUser{}><userId>a@b.example.com</userId></DeleteUser>",
            attribute_run(11, false)
        )),
        wrap(&format!(
            "<DeleteUser><userId{}>a@b.example.com</userId></DeleteUser>",
            attribute_run(11, false)
        )),
        add_user(&format!("<note><deeper{}/></note>", attribute_run(11, false))),
    ];
    for xml in over_attributes {
        let e = parse_tight(xml).unwrap_err();
        assert_eq!(e.code, XmlTooComplex, "{e:?}");
        assert!(
            e.message().contains("max_xml_attributes"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("more than 10 attributes"),
            "{}",
            e.message()
        );
    }
    // Declarations count across the document, wherever they are.
    let spread = wrap(&format!(
        "<DeleteUser{}><userId{}>a@b.example.com</userId></DeleteUser>",
        attribute_run(4, true),
        attribute_run(4, true).replace("xmlns:p", "xmlns:q")
    ));
    let e = parse_tight(spread).unwrap_err();
    assert_eq!(e.code, XmlTooComplex);
    assert!(
        e.message().contains("more than 8 namespace declarations")
            && e.message().contains("max_xml_namespace_declarations"),
        "{}",
        e.message()
    );

    // The defaults: a 100,000-attribute element and a 100,000-declaration
    // root (the issue's bombs) are refused.
    let bomb = add_user(&format!("<note{}/>", attribute_run(100_000, false)));
    assert_eq!(doc_code(&bomb), XmlTooComplex);
    let ns_bomb = format!(
        "<ProvisioningRequest{}><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>",
        attribute_run(100_000, true)
    );
    assert_eq!(doc_code(&ns_bomb), XmlTooComplex);
}

#[test]
fn duplicate_attributes_are_still_refused_past_the_linear_set() {
    let many = attribute_run(40, false);
    let e = parse(&add_user(&format!("<note{many} a3=\"x\"/>"))).unwrap_err();
    assert_eq!(e.code, MalformedXml);
    assert!(
        e.message().contains("`a3` is given more than once"),
        "{}",
        e.message()
    );
    let e = parse(&format!(
        "<ProvisioningRequest xmlns=\"{NS}\" xmlns=\"{NS}\"><DeleteUser><userId>a@b.example.com</userId></DeleteUser></ProvisioningRequest>"
    ))
    .unwrap_err();
    assert_eq!(e.code, MalformedXml);
}

/// quick-xml's duplicate check made this quadratic: 20,000 attributes took
/// 0.36 s in the dev profile, so 200,000 would take about 36 s (80,000 took
/// 8 s in a release build). Linear, it takes well under a second.
#[test]
fn attributes_are_read_in_linear_time() {
    let raised = ParseLimits {
        max_attributes: 1_000_000,
        max_namespace_declarations: 1_000_000,
        ..limits()
    };
    for declarations in [false, true] {
        let xml = wrap(&format!(
            "<DeleteUser{}><userId>a@b.example.com</userId></DeleteUser>",
            attribute_run(200_000, declarations)
        ));
        let started = std::time::Instant::now();
        let parsed = parse_request(xml.as_bytes(), None, &raised);
        let took = started.elapsed();
        assert!(parsed.is_ok(), "{parsed:?}");
        assert!(
            took < Duration::from_secs(5),
            "200,000 attributes (declarations: {declarations}) took {took:?}"
        );
    }
}

#[test]
fn characters_xml_cannot_carry_refuse_the_whole_document() {
    let cases = [
        (
            "raw NUL in a field",
            add_user("").replace("jdoe@", "jd\0oe@"),
        ),
        (
            "raw NUL in an ignored element",
            add_user("<note>a\0b</note>"),
        ),
        ("raw NUL in an attribute", add_user("<note a=\"\0\"/>")),
        ("raw NUL in a comment", add_user("<!-- \0 -->")),
        ("raw NUL after the root", format!("{}\0", add_user(""))),
        (
            "C0 control in a field",
            add_user("<firstName>x\u{1}y</firstName>"),
        ),
        ("U+FFFE", add_user("<note>\u{FFFE}</note>")),
        (
            "U+FFFF in the requestId",
            add_user("").replace(
                "<ProvisioningRequest ",
                "<ProvisioningRequest requestId=\"\u{FFFF}\" ",
            ),
        ),
    ];
    for (what, xml) in cases {
        let e = parse(&xml).unwrap_err();
        assert_eq!(e.code, MalformedXml, "{what}: {e:?}");
        assert!(
            e.message().contains("not allowed in XML 1.0"),
            "{what}: {}",
            e.message()
        );
    }
    // ISO-8859-1 maps byte 0x00 to U+0000: refused after decoding too.
    let latin1 = add_user("<firstName>M\u{FC}ller</firstName>")
        .replace("UTF-8", "ISO-8859-1")
        .replace('\u{FC}', "\u{FC}\0");
    let latin1: Vec<u8> = latin1.chars().map(|c| c as u32 as u8).collect();
    let e = parse_request(&latin1, None, &limits()).unwrap_err();
    assert_eq!(e.code, MalformedXml, "{e:?}");
    // Tab, CR and LF are fine anywhere.
    assert!(parse(&add_user("<note>\t\r\n</note>")).is_ok());
}

// ---------------------------------------------------------------- org names

#[test]
fn add_user_carries_the_enterprise_and_group_names() {
    let op = only_op(&add_user(
        "<serviceProviderName> Acme Inc. </serviceProviderName><groupName>Head office</groupName>",
    ));
    let Operation::AddUser(s) = op else {
        panic!("an AddUser: {op:?}");
    };
    assert_eq!(s.service_provider_name.as_deref(), Some("Acme Inc."));
    assert_eq!(s.group_name.as_deref(), Some("Head office"));
    assert_eq!(s.new_org_name(true), "Acme Inc.");
    assert_eq!(s.new_org_name(false), "Acme Inc. — Head office");
    // Absent or empty: none (the key names the organization).
    let Operation::AddUser(s) = only_op(&add_user("<groupName></groupName>")) else {
        panic!("an AddUser");
    };
    assert_eq!((s.service_provider_name, s.group_name), (None, None));
    // 80 characters are allowed, 81 are not (1002), and control
    // characters are refused like in any other name (9017).
    let eighty = "é".repeat(80);
    let Operation::AddUser(s) = only_op(&add_user(&format!(
        "<serviceProviderName>{eighty}</serviceProviderName>"
    ))) else {
        panic!("an AddUser");
    };
    assert_eq!(s.service_provider_name.as_deref(), Some(eighty.as_str()));
    for (field, xml) in [
        (
            "serviceProviderName",
            format!(
                "<serviceProviderName>{}</serviceProviderName>",
                "x".repeat(81)
            ),
        ),
        (
            "groupName",
            format!("<groupName>{}</groupName>", "g".repeat(81)),
        ),
    ] {
        let e = only_op_err(&add_user(&xml));
        assert_eq!((e.code, e.field), (InvalidParameterSize, field), "{e}");
    }
    let e = only_op_err(&add_user("<groupName>a&#x9;b</groupName>"));
    assert_eq!(
        (e.code, e.field),
        (InvalidParameterValue, "groupName"),
        "{e}"
    );
}

#[test]
fn org_names_are_not_part_of_other_operations() {
    let p = parse(&wrap(
        "<ModifyUser><userId>jdoe@acme.example.com</userId><serviceProviderId>Reseller1</serviceProviderId>\
         <groupId>AcmeCorp</groupId><groupName>Head office</groupName></ModifyUser>",
    ))
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(p.operations[0].result.is_ok(), "{p:?}");
    assert_eq!(p.unknown_elements.len(), 1, "{p:?}");
}
