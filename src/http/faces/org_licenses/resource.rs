//! The license resources of one organization, as every face that serves
//! them names them: the operator API (`/admin/v1/organizations/{id}/…`),
//! the partner API (`/partner/v1/organizations/{id}/…`) and a remote
//! license core (`/license-core/v1/organizations/{id}/…`). One parser, so
//! the three faces cannot drift apart.
//!
//! | path after `…/organizations/{id}/` | methods |
//! |---|---|
//! | `subscriptions` | GET, HEAD |
//! | `subscriptions/{subscriptionId}` | PUT |
//! | `subscriptions/{subscriptionId}/move` (JSON or CSV) | POST |
//! | `licenses` (JSON, or CSV) | GET, HEAD |
//! | `licenses/grant`, `licenses/revoke` | POST |
//! | `license-templates` | GET, HEAD |
//! | `license-templates/organization`, `license-templates/groups/{groupId}` | PUT |
//! | `license-templates/apply` | POST |
//! | `calling/locations` | GET, HEAD |
//! | `calling/locations/{locationId}` | PUT |
//! | `calling/locations/{locationId}/numbers` (JSON or CSV) | POST |
//! | `calling/numbers`, `calling/users` (JSON, or CSV) | GET, HEAD |
//! | `devices` (GET: JSON or CSV; POST: JSON or CSV) | GET, HEAD, POST |

use hyper::Method;

use crate::license::calling_admin::MAX_NUMBERS_PER_REQUEST;
use crate::provision::devices::MAX_DEVICE_REQUESTS;

/// A JSON document that is not a bulk upload stays small.
pub const DOCUMENT_MAX_BODY: usize = 64 * 1024;

/// One license resource of an organization (the organization's id is the
/// face's: each decodes its own path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgResource {
    /// The subscriptions and what each has assigned.
    Subscriptions,
    /// Add or replace one subscription.
    SubscriptionPut { subscription_id: String },
    /// Users' licenses from this subscription to others.
    SubscriptionMove { subscription_id: String },
    /// Who holds what, and why.
    Holders,
    /// Licenses by hand (`revoke`: taken away).
    Grant { revoke: bool },
    /// The organization's and its groups' auto-license templates.
    Templates,
    /// The organization's template (`None`) or a group's.
    TemplatePut { group: Option<String> },
    /// The templates applied to existing users.
    TemplatesApply,
    /// Webex Calling locations.
    CallingLocations,
    /// Add or rename a location.
    CallingLocationPut { location_id: String },
    /// Numbers into a location's inventory.
    CallingNumbersAdd { location_id: String },
    /// Every number and its holder.
    CallingNumbers,
    /// Who has Calling, who not and why.
    CallingUsers,
    /// Device activations allowed.
    Devices,
    /// Activation codes for users (a provisioning action: it sends
    /// commands to the core).
    DeviceCodes,
}

/// A path no resource takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// 404 (9015), with what was not found.
    NotFound(&'static str),
    /// 405 (9016), with the methods the path allows.
    Method(&'static str),
}

pub const READ: &str = "GET, HEAD";
pub const POST: &str = "POST";
pub const PUT: &str = "PUT";
pub const READ_POST: &str = "GET, HEAD, POST";

impl OrgResource {
    /// The resource at `rest` (the path after `…/organizations/{id}/`,
    /// still percent-encoded) for `method`.
    pub fn parse(method: &Method, rest: &str) -> Result<OrgResource, Miss> {
        let read = *method == Method::GET || *method == Method::HEAD;
        let only = |ok: bool, allow: &'static str, resource: OrgResource| {
            if ok {
                Ok(resource)
            } else {
                Err(Miss::Method(allow))
            }
        };
        let post = *method == Method::POST;
        let put = *method == Method::PUT;
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            ["subscriptions"] => only(read, READ, OrgResource::Subscriptions),
            ["subscriptions", id] => {
                let subscription_id = segment(id, "no such subscription")?;
                only(put, PUT, OrgResource::SubscriptionPut { subscription_id })
            }
            ["subscriptions", id, "move"] => {
                let subscription_id = segment(id, "no such subscription")?;
                only(
                    post,
                    POST,
                    OrgResource::SubscriptionMove { subscription_id },
                )
            }
            ["licenses"] => only(read, READ, OrgResource::Holders),
            ["licenses", "grant"] => only(post, POST, OrgResource::Grant { revoke: false }),
            ["licenses", "revoke"] => only(post, POST, OrgResource::Grant { revoke: true }),
            ["license-templates"] => only(read, READ, OrgResource::Templates),
            ["license-templates", "apply"] => only(post, POST, OrgResource::TemplatesApply),
            ["license-templates", "organization"] => {
                only(put, PUT, OrgResource::TemplatePut { group: None })
            }
            ["license-templates", "groups", group] => {
                let group = segment(group, "no such group")?;
                only(put, PUT, OrgResource::TemplatePut { group: Some(group) })
            }
            ["calling", "locations"] => only(read, READ, OrgResource::CallingLocations),
            ["calling", "locations", id] => {
                let location_id = segment(id, "no such location")?;
                only(put, PUT, OrgResource::CallingLocationPut { location_id })
            }
            ["calling", "locations", id, "numbers"] => {
                let location_id = segment(id, "no such location")?;
                only(post, POST, OrgResource::CallingNumbersAdd { location_id })
            }
            ["calling", "numbers"] => only(read, READ, OrgResource::CallingNumbers),
            ["calling", "users"] => only(read, READ, OrgResource::CallingUsers),
            ["devices"] if read => Ok(OrgResource::Devices),
            ["devices"] => only(post, READ_POST, OrgResource::DeviceCodes),
            ["license-templates", ..] => Err(Miss::NotFound("no such license template")),
            ["calling", ..] => Err(Miss::NotFound("no such Webex Calling resource")),
            _ => Err(Miss::NotFound("no such organization resource")),
        }
    }

    /// The path after `…/organizations/{id}/` (ids percent-encoded): what
    /// [`OrgResource::parse`] reads back.
    pub fn path(&self) -> String {
        let e = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        match self {
            OrgResource::Subscriptions => "subscriptions".into(),
            OrgResource::SubscriptionPut { subscription_id } => {
                format!("subscriptions/{}", e(subscription_id))
            }
            OrgResource::SubscriptionMove { subscription_id } => {
                format!("subscriptions/{}/move", e(subscription_id))
            }
            OrgResource::Holders => "licenses".into(),
            OrgResource::Grant { revoke: false } => "licenses/grant".into(),
            OrgResource::Grant { revoke: true } => "licenses/revoke".into(),
            OrgResource::Templates => "license-templates".into(),
            OrgResource::TemplatePut { group: None } => "license-templates/organization".into(),
            OrgResource::TemplatePut { group: Some(g) } => {
                format!("license-templates/groups/{}", e(g))
            }
            OrgResource::TemplatesApply => "license-templates/apply".into(),
            OrgResource::CallingLocations => "calling/locations".into(),
            OrgResource::CallingLocationPut { location_id } => {
                format!("calling/locations/{}", e(location_id))
            }
            OrgResource::CallingNumbersAdd { location_id } => {
                format!("calling/locations/{}/numbers", e(location_id))
            }
            OrgResource::CallingNumbers => "calling/numbers".into(),
            OrgResource::CallingUsers => "calling/users".into(),
            OrgResource::Devices | OrgResource::DeviceCodes => "devices".into(),
        }
    }

    /// The method that reaches it (reads: GET).
    pub fn method(&self) -> Method {
        match self {
            OrgResource::SubscriptionPut { .. }
            | OrgResource::TemplatePut { .. }
            | OrgResource::CallingLocationPut { .. } => Method::PUT,
            OrgResource::SubscriptionMove { .. }
            | OrgResource::Grant { .. }
            | OrgResource::TemplatesApply
            | OrgResource::CallingNumbersAdd { .. }
            | OrgResource::DeviceCodes => Method::POST,
            _ => Method::GET,
        }
    }

    /// Whether the body may be CSV (besides JSON).
    pub fn takes_csv(&self) -> bool {
        matches!(
            self,
            OrgResource::SubscriptionMove { .. }
                | OrgResource::CallingNumbersAdd { .. }
                | OrgResource::DeviceCodes
        )
    }

    /// Largest body it reads: bulk uploads have room for their most rows.
    pub fn max_body(&self) -> usize {
        match self {
            OrgResource::CallingNumbersAdd { .. } => MAX_NUMBERS_PER_REQUEST * 96,
            OrgResource::DeviceCodes => MAX_DEVICE_REQUESTS * 160,
            _ => DOCUMENT_MAX_BODY,
        }
    }

    /// Whether the license store answers it (a remote core's, when the
    /// licenses are kept there). Device codes are asked through the
    /// gateway's outbox, like a BroadWorks `RequestActivationCode`.
    pub fn kept_by_core(&self) -> bool {
        *self != OrgResource::DeviceCodes
    }

    /// `(partner, core)` metric labels: templates, so they stay bounded.
    pub fn labels(&self) -> (&'static str, &'static str) {
        macro_rules! both {
            ($m:literal, $p:literal) => {
                (
                    concat!("portal:", $m, "/partner/v1/organizations/{id}/", $p),
                    concat!("core:", $m, "/license-core/v1/organizations/{id}/", $p),
                )
            };
        }
        match self {
            OrgResource::Subscriptions => both!("", "subscriptions"),
            OrgResource::SubscriptionPut { .. } => both!("PUT ", "subscriptions/{id}"),
            OrgResource::SubscriptionMove { .. } => both!("POST ", "subscriptions/{id}/move"),
            OrgResource::Holders => both!("", "licenses"),
            OrgResource::Grant { .. } => both!("POST ", "licenses/{action}"),
            OrgResource::Templates => both!("", "license-templates"),
            OrgResource::TemplatePut { .. } => both!("PUT ", "license-templates/{which}"),
            OrgResource::TemplatesApply => both!("POST ", "license-templates/apply"),
            OrgResource::CallingLocations => both!("", "calling/locations"),
            OrgResource::CallingLocationPut { .. } => both!("PUT ", "calling/locations/{id}"),
            OrgResource::CallingNumbersAdd { .. } => {
                both!("POST ", "calling/locations/{id}/numbers")
            }
            OrgResource::CallingNumbers => both!("", "calling/numbers"),
            OrgResource::CallingUsers => both!("", "calling/users"),
            OrgResource::Devices => both!("", "devices"),
            OrgResource::DeviceCodes => both!("POST ", "devices"),
        }
    }
}

/// The organization id and resource of `raw` (the path after a face's
/// `…/organizations/`), or `None` when `raw` has no resource part (the
/// organization itself).
pub fn split_org(method: &Method, raw: &str) -> Option<Result<(String, OrgResource), Miss>> {
    let (raw_org, rest) = raw.split_once('/')?;
    Some(segment(raw_org, "no such organization").and_then(|org_id| {
        let resource = OrgResource::parse(method, rest)?;
        Ok((org_id, resource))
    }))
}

/// One decoded path segment: not empty, no slash (even an encoded one).
fn segment(raw: &str, missing: &'static str) -> Result<String, Miss> {
    percent_decode(raw)
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .ok_or(Miss::NotFound(missing))
}

/// `%XX` decoding of one path segment (`+` stays `+`: group-mode keys);
/// `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, rest: &str) -> Result<OrgResource, Miss> {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        OrgResource::parse(&method, rest)
    }

    fn every() -> Vec<OrgResource> {
        let s = |v: &str| v.to_string();
        vec![
            OrgResource::Subscriptions,
            OrgResource::SubscriptionPut {
                subscription_id: s("sub:1 a"),
            },
            OrgResource::SubscriptionMove {
                subscription_id: s("s/é"),
            },
            OrgResource::Holders,
            OrgResource::Grant { revoke: false },
            OrgResource::Grant { revoke: true },
            OrgResource::Templates,
            OrgResource::TemplatePut { group: None },
            OrgResource::TemplatePut {
                group: Some(s("sales team")),
            },
            OrgResource::TemplatesApply,
            OrgResource::CallingLocations,
            OrgResource::CallingLocationPut {
                location_id: s("hq 1"),
            },
            OrgResource::CallingNumbersAdd {
                location_id: s("hq%"),
            },
            OrgResource::CallingNumbers,
            OrgResource::CallingUsers,
            OrgResource::Devices,
            OrgResource::DeviceCodes,
        ]
    }

    #[test]
    fn every_resource_reads_back_from_its_path_and_method() {
        for r in every() {
            // An id with a slash has no path (it is refused as not found).
            if r.path().contains("s%2F") {
                assert_eq!(
                    OrgResource::parse(&r.method(), &r.path()),
                    Err(Miss::NotFound("no such subscription"))
                );
                continue;
            }
            assert_eq!(
                OrgResource::parse(&r.method(), &r.path()),
                Ok(r.clone()),
                "{}",
                r.path()
            );
        }
    }

    #[test]
    fn paths_decode_their_ids() {
        assert_eq!(
            parse("PUT", "subscriptions/sub%3A1"),
            Ok(OrgResource::SubscriptionPut {
                subscription_id: "sub:1".into()
            })
        );
        assert_eq!(
            parse("PUT", "license-templates/groups/sales%20team"),
            Ok(OrgResource::TemplatePut {
                group: Some("sales team".into())
            })
        );
        assert_eq!(
            parse("HEAD", "calling/numbers"),
            Ok(OrgResource::CallingNumbers)
        );
        assert_eq!(parse("POST", "devices"), Ok(OrgResource::DeviceCodes));
        assert_eq!(parse("GET", "devices"), Ok(OrgResource::Devices));
    }

    #[test]
    fn a_wrong_method_names_the_allowed_ones() {
        for (method, rest, allow) in [
            ("PUT", "licenses", READ),
            ("POST", "subscriptions", READ),
            ("GET", "subscriptions/s1", PUT),
            ("PUT", "subscriptions/s/move", POST),
            ("PUT", "license-templates", READ),
            ("GET", "license-templates/apply", POST),
            ("POST", "license-templates/groups/g", PUT),
            ("PUT", "calling/users", READ),
            ("PUT", "devices", READ_POST),
            ("GET", "licenses/grant", POST),
            ("POST", "calling/locations", READ),
            ("GET", "calling/locations/hq", PUT),
            ("PUT", "calling/locations/hq/numbers", POST),
        ] {
            assert_eq!(
                parse(method, rest),
                Err(Miss::Method(allow)),
                "{method} {rest}"
            );
        }
    }

    #[test]
    fn unknown_or_empty_segments_are_not_found() {
        for rest in [
            "",
            "nope",
            "subscriptions/",
            "subscriptions/a/b",
            "license-templates/nope",
            "license-templates/groups/",
            "calling/nope",
            "calling/locations/a%2Fb",
            "calling/locations/%zz",
            "licenses/other",
        ] {
            assert!(
                matches!(parse("PUT", rest), Err(Miss::NotFound(_))),
                "{rest}: {:?}",
                parse("PUT", rest)
            );
        }
    }

    #[test]
    fn the_organization_is_split_off_and_decoded() {
        let get = Method::GET;
        assert_eq!(split_org(&get, "org-1"), None);
        assert_eq!(
            split_org(&get, "org%201/licenses"),
            Some(Ok(("org 1".into(), OrgResource::Holders)))
        );
        assert_eq!(
            split_org(&get, "/licenses"),
            Some(Err(Miss::NotFound("no such organization")))
        );
        assert_eq!(
            split_org(&get, "a%2Fb/licenses"),
            Some(Err(Miss::NotFound("no such organization")))
        );
    }

    #[test]
    fn only_device_codes_stay_with_the_gateway() {
        let kept: Vec<bool> = every().iter().map(OrgResource::kept_by_core).collect();
        assert_eq!(kept.iter().filter(|k| !**k).count(), 1);
        assert!(!OrgResource::DeviceCodes.kept_by_core());
    }
}
