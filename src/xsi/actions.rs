//! bwgate's Xsi-Actions response documents (issue 14), built as
//! [`Element`] trees in the XSI namespace: the caller writes them with
//! [`Element::to_xml`] behind an XML declaration, or as JSON with
//! [`super::badgerfish::to_badgerfish`]. One reader, for the body of
//! `PUT …/services/IntegratedIMP`.
//!
//! Where a document also exists in BroadWorks (Xsi spec R21 samples in
//! `tests/support/xsi-samples/`), the elements bwgate writes have the
//! sample's names and order; what bwgate has no data for is left out (a
//! client reads elements by name and ignores the ones it does not know,
//! and none of the left-out ones is one it needs):
//!
//! - [`profile`]: `Profile` (`details`, `additionalDetails`) plus
//!   bwgate's own `integratedIMP` block (status, package, organization,
//!   errors). That block is a bwgate extension, not BroadWorks schema;
//!   `passwordExpiresDays`, `fac`, `registrations`, `scheduleList`,
//!   `portalPasswordChange` and `countryCode` are not written.
//! - [`services`]: `Services`, listing the one service bwgate has.
//! - [`integrated_imp`] / [`read_integrated_imp`]: the service's
//!   document, `<IntegratedIMP><active>…</active></IntegratedIMP>`, shaped
//!   like `DoNotDisturb`.
//! - [`enterprise_directory`]: `Enterprise` (`directories/Enterprise`).
//! - [`login_token`]: `LoginToken` (`POST profile/LoginToken`).
//! - [`versions`]: `Versions`, bwgate's shape (the spec names `/versions`
//!   but shows no body).

use super::build::{parent, push_some, text, xsi};
use super::document::Element;
#[cfg(test)]
use super::document::XSI_NAMESPACE;
use crate::domain::directory::{DirectoryEntry, DirectoryPage};
use crate::domain::{ErrorCode, Refusal};

/// The name `Services` lists for the Integrated IM&P service.
pub const INTEGRATED_IMP_SERVICE_NAME: &str = "Integrated IM&P";
/// The last path segment of the service (`…/services/IntegratedIMP`).
pub const INTEGRATED_IMP_SERVICE_PATH: &str = "IntegratedIMP";
/// The URL version bwgate serves.
pub const XSI_VERSION: &str = "v2.0";

/// What [`profile`] writes about a subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileView {
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub group_id: Option<String>,
    pub service_provider_id: Option<String>,
    /// `serviceProvider isEnterprise="…"` (written only with
    /// `service_provider_id`).
    pub is_enterprise: bool,
    pub number: Option<String>,
    pub extension: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    /// The subscriber's status as bwgate names it.
    pub status: String,
    /// The subscriber's package.
    pub package: String,
    pub organization_id: Option<String>,
    pub organization_name: Option<String>,
    /// The subscriber's open errors, as (error code, description).
    pub errors: Vec<(u32, String)>,
}

/// `GET …/user/{userId}/profile`:
///
/// ```text
/// <Profile xmlns="http://schema.broadsoft.com/xsi">
///   <details> <userId/> <firstName/> <lastName/> <groupId/>
///     <serviceProvider isEnterprise="true|false"/> <number/> <extension/>
///   </details>
///   <additionalDetails> <mobile/> <emailAddress/> </additionalDetails>
///   <integratedIMP> <status/> <package/> <organizationId/>
///     <organizationName/> <errors> <error> <errorCode/> <description/>
///     </error>… </errors> </integratedIMP>
/// </Profile>
/// ```
///
/// In `details`, absent values are left out (userId, firstName and
/// lastName are always written). In `additionalDetails`, `mobile` and
/// `emailAddress` are always written, `xsi:nil="true"` when absent, as in
/// the spec's sample; `impId` is not written (bwgate has none for a
/// profile). In `integratedIMP`, `organizationId` and `organizationName`
/// are left out when absent, `errors` when there are none.
pub fn profile(v: &ProfileView) -> Element {
    let mut details = vec![
        text("userId", &v.user_id),
        text("firstName", &v.first_name),
        text("lastName", &v.last_name),
    ];
    push_some(&mut details, "groupId", v.group_id.as_deref());
    if let Some(sp) = &v.service_provider_id {
        let mut el = text("serviceProvider", sp);
        el.attributes
            .push(("isEnterprise".into(), bool_text(v.is_enterprise).into()));
        details.push(el);
    }
    push_some(&mut details, "number", v.number.as_deref());
    push_some(&mut details, "extension", v.extension.as_deref());

    let additional = vec![
        text_or_nil("mobile", v.mobile.as_deref()),
        text_or_nil("emailAddress", v.email.as_deref()),
    ];

    let mut imp = vec![text("status", &v.status), text("package", &v.package)];
    push_some(&mut imp, "organizationId", v.organization_id.as_deref());
    push_some(&mut imp, "organizationName", v.organization_name.as_deref());
    if !v.errors.is_empty() {
        let errors = v
            .errors
            .iter()
            .map(|(code, description)| {
                parent(
                    "error",
                    vec![
                        text("errorCode", &code.to_string()),
                        text("description", description),
                    ],
                )
            })
            .collect();
        imp.push(parent("errors", errors));
    }

    parent(
        "Profile",
        vec![
            parent("details", details),
            parent("additionalDetails", additional),
            parent("integratedIMP", imp),
        ],
    )
}

/// `GET …/user/{userId}/services`: the Integrated IM&P service when it is
/// assigned, else an empty `<Services/>`. The user id is percent-encoded
/// in the `uri` where it has characters a path segment cannot carry
/// (`/`, `?`, `#`, `%`, …; `@` stays).
pub fn services(user_id: &str, assigned: bool) -> Element {
    let mut list = Vec::new();
    if assigned {
        let uri = format!(
            "/{XSI_VERSION}/user/{}/services/{INTEGRATED_IMP_SERVICE_PATH}",
            encode_path_segment(user_id)
        );
        list.push(parent(
            "service",
            vec![text("name", INTEGRATED_IMP_SERVICE_NAME), text("uri", &uri)],
        ));
    }
    parent("Services", list)
}

/// `GET …/services/IntegratedIMP`:
/// `<IntegratedIMP><active>true|false</active></IntegratedIMP>`.
pub fn integrated_imp(active: bool) -> Element {
    parent("IntegratedIMP", vec![text("active", bool_text(active))])
}

/// The body of `PUT …/services/IntegratedIMP`: whether the service is to
/// be active.
///
/// Elements are matched by local name (any prefix or namespace, or none).
/// The root must be `IntegratedIMP` (else 9017); the value is the first
/// `active` child, or without one the first `isActive` child (the JSON
/// spelling of the spec's example); it is `true`/`1` or `false`/`0`
/// (surrounding whitespace aside). Neither child: 1001
/// (`MissingParameter`); any other value, an empty or nil one included:
/// 9017 (`InvalidParameterValue`). Other children are ignored.
pub fn read_integrated_imp(doc: &Element) -> Result<bool, Refusal> {
    if doc.name != "IntegratedIMP" {
        return Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("the root element is <{}>, not <IntegratedIMP>", doc.name),
        ));
    }
    let Some(active) = doc.child("active").or_else(|| doc.child("isActive")) else {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            "active: missing from <IntegratedIMP>",
        ));
    };
    if active.nil {
        return Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!("{}: is nil, expected true or false", active.name),
        ));
    }
    match active.text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            format!(
                "{}: {:?} is not true or false",
                active.name,
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// `GET …/directories/Enterprise`: one page, shaped like the spec's
/// sample:
///
/// ```text
/// <Enterprise xmlns="http://schema.broadsoft.com/xsi">
///   <startIndex/> <numberOfRecords/> <totalAvailableRecords/>
///   <enterpriseDirectory>
///     <directoryDetails> <userId/> <firstName/> <lastName/> <groupId/>
///       <number/> <extension/>
///       <additionalDetails> <mobile/> <emailAddress/> <impId/> </additionalDetails>
///     </directoryDetails>…
///   </enterpriseDirectory>
/// </Enterprise>
/// ```
///
/// Absent values are left out; `additionalDetails` is always written,
/// empty when the entry has none of its values (as BroadWorks writes an
/// empty `<additionalDetails/>` in a profile). The sample's
/// `hiranganaLastName`, `hiranganaFirstName`, `firstNameUnicode` and
/// `lastNameUnicode` are not written: bwgate holds no phonetic or
/// alternate names, and copies of the names would add nothing.
pub fn enterprise_directory(page: &DirectoryPage<'_>) -> Element {
    let entries = page.entries.iter().map(|e| directory_details(e)).collect();
    parent(
        "Enterprise",
        vec![
            text("startIndex", &page.start_index.to_string()),
            text("numberOfRecords", &page.number_of_records.to_string()),
            text(
                "totalAvailableRecords",
                &page.total_available_records.to_string(),
            ),
            parent("enterpriseDirectory", entries),
        ],
    )
}

fn directory_details(e: &DirectoryEntry) -> Element {
    let mut details = vec![
        text("userId", &e.user_id),
        text("firstName", &e.first_name),
        text("lastName", &e.last_name),
    ];
    push_some(&mut details, "groupId", e.group_id.as_deref());
    push_some(&mut details, "number", e.number.as_deref());
    push_some(&mut details, "extension", e.extension.as_deref());
    let mut additional = Vec::new();
    push_some(&mut additional, "mobile", e.mobile.as_deref());
    push_some(&mut additional, "emailAddress", e.email.as_deref());
    push_some(&mut additional, "impId", e.imp_id.as_deref());
    details.push(parent("additionalDetails", additional));
    parent("directoryDetails", details)
}

/// `POST …/profile/LoginToken` (201): `<LoginToken><token/></LoginToken>`.
pub fn login_token(token: &str) -> Element {
    parent("LoginToken", vec![text("token", token)])
}

/// `GET …/versions`: `<Versions><version>v2.0</version></Versions>`.
/// bwgate's shape: the spec lists `/versions` without a sample.
pub fn versions() -> Element {
    parent("Versions", vec![text("version", XSI_VERSION)])
}

fn text_or_nil(name: &str, value: Option<&str>) -> Element {
    match value {
        Some(v) => text(name, v),
        None => Element {
            nil: true,
            ..xsi(name)
        },
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Percent-encodes what an RFC 3986 path segment cannot carry as is
/// (everything but unreserved characters, sub-delims, `:` and `@`).
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let plain = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
            );
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::directory::{search, DirectoryQuery};
    use crate::xsi::document::{parse_str, XsiLimits};

    fn reparsed(el: &Element) -> Element {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
            el.to_xml()
        );
        parse_str(&xml, &XsiLimits::default()).unwrap_or_else(|e| panic!("{e}:\n{xml}"))
    }

    fn assert_round_trip(el: &Element) {
        assert_eq!(&reparsed(el), el, "{}", el.to_xml());
    }

    fn sample(name: &str) -> Element {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/xsi-samples")
            .join(name);
        let xml = std::fs::read_to_string(&path).unwrap();
        parse_str(&xml, &XsiLimits::default()).unwrap()
    }

    /// Every element's path (`Profile/details/userId`), in document order.
    fn paths(el: &Element) -> Vec<String> {
        fn walk(el: &Element, prefix: &str, out: &mut Vec<String>) {
            let path = if prefix.is_empty() {
                el.name.clone()
            } else {
                format!("{prefix}/{}", el.name)
            };
            out.push(path.clone());
            for c in &el.children {
                walk(c, &path, out);
            }
        }
        let mut out = Vec::new();
        walk(el, "", &mut out);
        out
    }

    /// The paths of `a` that `b` has too, in `a`'s order.
    fn shared(a: &[String], b: &[String]) -> Vec<String> {
        a.iter().filter(|p| b.contains(p)).cloned().collect()
    }

    fn full_view() -> ProfileView {
        ProfileView {
            user_id: "negi001@172.16.25.102".into(),
            first_name: "Subhash".into(),
            last_name: "Negi".into(),
            group_id: Some("gp1".into()),
            service_provider_id: Some("sp1".into()),
            is_enterprise: false,
            number: Some("5006007004".into()),
            extension: Some("7004".into()),
            mobile: Some("+15551234567".into()),
            email: Some("subhashnegi@gmail.com".into()),
            status: "active".into(),
            package: "standard".into(),
            organization_id: Some("org-1".into()),
            organization_name: Some("Smith & Sons <UK>".into()),
            errors: vec![
                (9017, "bad value".into()),
                (8251, "Phone Number already exists".into()),
            ],
        }
    }

    #[test]
    fn profile_matches_the_spec_sample_where_they_overlap() {
        let ours = profile(&full_view());
        assert_round_trip(&ours);
        let sample = sample("actions-profile-get-response.r21-spec.xml");
        let (ours_paths, sample_paths) = (paths(&ours), paths(&sample));
        let common = shared(&sample_paths, &ours_paths);
        assert_eq!(shared(&ours_paths, &sample_paths), common, "same order");
        assert_eq!(
            common,
            [
                "Profile",
                "Profile/details",
                "Profile/details/userId",
                "Profile/details/firstName",
                "Profile/details/lastName",
                "Profile/details/groupId",
                "Profile/details/serviceProvider",
                "Profile/details/number",
                "Profile/details/extension",
                "Profile/additionalDetails",
                "Profile/additionalDetails/mobile",
                "Profile/additionalDetails/emailAddress",
            ]
        );
        // What the sample lacks is bwgate's block, last.
        let own: Vec<_> = ours_paths.iter().filter(|p| !common.contains(p)).collect();
        assert!(own.iter().all(|p| p.starts_with("Profile/integratedIMP")));
        assert_eq!(
            ours.children.last().map(|c| c.name.as_str()),
            Some("integratedIMP")
        );
        // The sample's details read back as ours do, attribute included.
        let sample_details = sample.child("details").unwrap();
        let our_details = ours.child("details").unwrap();
        assert_eq!(
            sample_details.child("serviceProvider").unwrap().attributes,
            our_details.child("serviceProvider").unwrap().attributes
        );
        for name in ["userId", "firstName", "lastName", "groupId", "number"] {
            assert_eq!(
                sample_details.child_text(name),
                our_details.child_text(name)
            );
        }
        // And the profile reader (what the XSP client uses) reads ours.
        let read = crate::xsi::Profile::from_element(&reparsed(&ours)).unwrap();
        assert_eq!(read.user_id, "negi001@172.16.25.102");
        assert_eq!(read.service_provider_id, "sp1");
        assert_eq!(read.mobile.as_deref(), Some("+15551234567"));
    }

    #[test]
    fn profile_writes_bwgates_block_and_leaves_out_absent_details() {
        let full = profile(&full_view());
        let imp = full.child("integratedIMP").unwrap();
        let names: Vec<_> = imp.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "status",
                "package",
                "organizationId",
                "organizationName",
                "errors"
            ]
        );
        assert_eq!(
            imp.child_text("organizationName"),
            Some("Smith & Sons <UK>")
        );
        let errors: Vec<_> = imp
            .child("errors")
            .unwrap()
            .children_named("error")
            .map(|e| {
                (
                    e.child_text("errorCode").unwrap().to_string(),
                    e.child_text("description").unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            errors,
            [
                ("9017".to_string(), "bad value".to_string()),
                ("8251".into(), "Phone Number already exists".into())
            ]
        );

        let bare = profile(&ProfileView {
            user_id: "u@x.example".into(),
            first_name: "F".into(),
            last_name: "L".into(),
            status: "pending".into(),
            package: "basic".into(),
            is_enterprise: true,
            ..ProfileView::default()
        });
        assert_round_trip(&bare);
        let details: Vec<_> = bare
            .child("details")
            .unwrap()
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(details, ["userId", "firstName", "lastName"]);
        let additional = bare.child("additionalDetails").unwrap();
        let nils: Vec<_> = additional
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.nil))
            .collect();
        assert_eq!(nils, [("mobile", true), ("emailAddress", true)]);
        assert!(bare.to_xml().contains("xsi:nil=\"true\""));
        let imp: Vec<_> = bare
            .child("integratedIMP")
            .unwrap()
            .children
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(imp, ["status", "package"]);
        // Every element is in the XSI namespace.
        fn all_xsi(el: &Element) -> bool {
            el.is_xsi() && el.children.iter().all(all_xsi)
        }
        assert!(all_xsi(&full) && all_xsi(&bare));
    }

    #[test]
    fn enterprise_directory_matches_the_spec_sample_where_they_overlap() {
        let entries = vec![
            DirectoryEntry {
                user_id: "agent1@172.16.25.102".into(),
                first_name: "agent1".into(),
                last_name: "agent1".into(),
                group_id: Some("WebClientGrp1".into()),
                number: Some("+19008005006".into()),
                extension: Some("5006".into()),
                mobile: Some("+19008009999".into()),
                email: Some("agent1@mail.example".into()),
                imp_id: Some("agent1@imp.example".into()),
            },
            DirectoryEntry {
                user_id: "ankur1@172.16.25.102".into(),
                first_name: "ankur".into(),
                last_name: "ankur".into(),
                group_id: Some("WebClientGrp1".into()),
                number: Some("+19008005003".into()),
                extension: Some("5003".into()),
                ..DirectoryEntry::default()
            },
        ];
        let page = search(&entries, &DirectoryQuery::all(100));
        let ours = enterprise_directory(&page);
        assert_round_trip(&ours);
        let sample = sample("actions-directories-enterprise-get-response.r21-spec.xml");
        let (ours_paths, sample_paths) = (paths(&ours), paths(&sample));
        let common = shared(&sample_paths, &ours_paths);
        assert_eq!(shared(&ours_paths, &sample_paths), common);
        let d = "Enterprise/enterpriseDirectory/directoryDetails";
        let entry_paths: Vec<String> = [
            "",
            "/userId",
            "/firstName",
            "/lastName",
            "/groupId",
            "/number",
            "/extension",
            "/additionalDetails",
        ]
        .iter()
        .map(|s| format!("{d}{s}"))
        .collect();
        let mut expected: Vec<String> = [
            "Enterprise",
            "Enterprise/startIndex",
            "Enterprise/numberOfRecords",
            "Enterprise/totalAvailableRecords",
            "Enterprise/enterpriseDirectory",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expected.extend(entry_paths.iter().cloned());
        expected.extend(entry_paths.iter().cloned());
        assert_eq!(common, expected);
        // Paging values and entries as the sample writes them.
        for name in ["startIndex", "numberOfRecords", "totalAvailableRecords"] {
            assert_eq!(ours.child_text(name), sample.child_text(name), "{name}");
        }
        let ours_dir = ours.child("enterpriseDirectory").unwrap();
        let sample_dir = sample.child("enterpriseDirectory").unwrap();
        for (o, s) in ours_dir.children.iter().zip(&sample_dir.children) {
            for name in ["userId", "firstName", "lastName", "groupId", "number"] {
                assert_eq!(o.child_text(name), s.child_text(name), "{name}");
            }
        }
        // additionalDetails: what is present, in order; empty otherwise.
        let additional: Vec<Vec<&str>> = ours_dir
            .children
            .iter()
            .map(|e| {
                e.child("additionalDetails")
                    .unwrap()
                    .children
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            additional,
            [vec!["mobile", "emailAddress", "impId"], vec![]]
        );
    }

    #[test]
    fn an_empty_or_past_the_end_page_keeps_its_counts() {
        let entries = vec![DirectoryEntry {
            user_id: "a@x".into(),
            first_name: "A".into(),
            last_name: "B".into(),
            ..DirectoryEntry::default()
        }];
        let q = DirectoryQuery::from_pairs(&[("start".into(), "5".into())], 10).unwrap();
        let page = search(&entries, &q);
        let doc = enterprise_directory(&page);
        assert_round_trip(&doc);
        assert_eq!(doc.child_text("startIndex"), Some("5"));
        assert_eq!(doc.child_text("numberOfRecords"), Some("0"));
        assert_eq!(doc.child_text("totalAvailableRecords"), Some("1"));
        assert!(doc
            .child("enterpriseDirectory")
            .unwrap()
            .children
            .is_empty());
    }

    #[test]
    fn services_lists_integrated_imp_when_assigned() {
        let doc = services("negi001@172.16.25.102", true);
        assert_round_trip(&doc);
        let service = doc.child("service").unwrap();
        assert_eq!(service.child_text("name"), Some("Integrated IM&P"));
        assert_eq!(
            service.child_text("uri"),
            Some("/v2.0/user/negi001@172.16.25.102/services/IntegratedIMP")
        );
        assert!(doc.to_xml().contains("Integrated IM&amp;P"));
        // Same element names as the spec's sample.
        let sample = sample("actions-services-get-response.r21-spec.xml");
        let sample_service = sample.child("service").unwrap();
        assert_eq!(
            paths(sample_service),
            paths(service),
            "service/name, service/uri"
        );
        assert_eq!(doc.name, sample.name);

        let none = services("negi001@172.16.25.102", false);
        assert_round_trip(&none);
        assert!(none.children.is_empty());
        assert_eq!(
            none.to_xml(),
            "<Services xmlns=\"http://schema.broadsoft.com/xsi\"/>"
        );

        let odd = services("a/b?c#d%e@x.example", true);
        assert_eq!(
            odd.child("service").unwrap().child_text("uri"),
            Some("/v2.0/user/a%2Fb%3Fc%23d%25e@x.example/services/IntegratedIMP")
        );
    }

    #[test]
    fn integrated_imp_round_trips_through_its_reader() {
        for active in [true, false] {
            let doc = integrated_imp(active);
            assert_round_trip(&doc);
            assert_eq!(read_integrated_imp(&reparsed(&doc)), Ok(active));
        }
        assert_eq!(
            integrated_imp(true).to_xml(),
            "<IntegratedIMP xmlns=\"http://schema.broadsoft.com/xsi\"><active>true</active></IntegratedIMP>"
        );
    }

    fn read(xml: &str) -> Result<bool, Refusal> {
        read_integrated_imp(&parse_str(xml, &XsiLimits::default()).unwrap())
    }

    #[test]
    fn read_integrated_imp_accepts_the_spellings() {
        for (xml, want) in [
            ("<IntegratedIMP><active>true</active></IntegratedIMP>", true),
            ("<IntegratedIMP><active>1</active></IntegratedIMP>", true),
            ("<IntegratedIMP><active> false </active></IntegratedIMP>", false),
            ("<IntegratedIMP><active>0</active></IntegratedIMP>", false),
            ("<IntegratedIMP><isActive>true</isActive></IntegratedIMP>", true),
            (
                "<x:IntegratedIMP xmlns:x=\"urn:any\"><x:active>true</x:active></x:IntegratedIMP>",
                true,
            ),
            (
                "<IntegratedIMP xmlns=\"http://schema.broadsoft.com/xsi\"><other/><active>false</active></IntegratedIMP>",
                false,
            ),
            (
                "<IntegratedIMP><isActive>true</isActive><active>false</active></IntegratedIMP>",
                false,
            ),
        ] {
            assert_eq!(read(xml), Ok(want), "{xml}");
        }
    }

    #[test]
    fn read_integrated_imp_refuses_what_it_cannot_use() {
        let missing = read("<IntegratedIMP><ringSplash>true</ringSplash></IntegratedIMP>")
            .expect_err("missing");
        assert_eq!(missing.code, ErrorCode::MissingParameter);
        assert_eq!(missing.code.code(), 1001);
        assert_eq!(
            read("<IntegratedIMP/>").map_err(|r| r.code),
            Err(ErrorCode::MissingParameter)
        );
        for xml in [
            "<IntegratedIMP><active>yes</active></IntegratedIMP>",
            "<IntegratedIMP><active>True</active></IntegratedIMP>",
            "<IntegratedIMP><active/></IntegratedIMP>",
            "<IntegratedIMP xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><active i:nil=\"true\"/></IntegratedIMP>",
            "<DoNotDisturb><active>true</active></DoNotDisturb>",
            "<integratedimp><active>true</active></integratedimp>",
        ] {
            let r = read(xml).expect_err(xml);
            assert_eq!(r.code, ErrorCode::InvalidParameterValue, "{xml}");
            assert_eq!(r.code.code(), 9017);
        }
        let wrong_root = read("<DoNotDisturb><active>true</active></DoNotDisturb>").unwrap_err();
        assert_eq!(
            wrong_root.detail.as_deref(),
            Some("the root element is <DoNotDisturb>, not <IntegratedIMP>")
        );
    }

    #[test]
    fn login_token_matches_the_spec_sample() {
        let token = "c3NvMV85ZTVmOTJiZS0yYzJmLTRmM2MtOTJmYi1jZGJkYjNlNjVmODZfMTI3LjAuMC4xX25vcnRoMDBAbXRsYXNkZXY4My5uZXQ=";
        let doc = login_token(token);
        assert_round_trip(&doc);
        assert_eq!(
            doc,
            sample("actions-logintoken-post-response.r21-spec.xml"),
            "the whole sample"
        );
    }

    #[test]
    fn versions_lists_v2() {
        let doc = versions();
        assert_round_trip(&doc);
        assert_eq!(
            doc.to_xml(),
            "<Versions xmlns=\"http://schema.broadsoft.com/xsi\"><version>v2.0</version></Versions>"
        );
    }

    #[test]
    fn documents_convert_to_badgerfish() {
        let json = crate::xsi::badgerfish::to_badgerfish(&integrated_imp(true));
        assert_eq!(
            json,
            serde_json::json!({"IntegratedIMP": {
                "@xmlns": {"$": XSI_NAMESPACE},
                "active": {"$": "true"}
            }})
        );
        let profile_json = crate::xsi::badgerfish::to_badgerfish(&profile(&ProfileView {
            user_id: "u@x.example".into(),
            ..ProfileView::default()
        }));
        assert_eq!(
            profile_json["Profile"]["additionalDetails"]["mobile"],
            serde_json::json!({"@xsi:nil": "true"})
        );
    }
}
