//! The ops listener's route table: every request is parsed once, from its
//! method and path, into an [`AdminRoute`] (or the refusal a request no
//! route takes gets), and `super::handle` dispatches with one `match`.
//!
//! | route | methods |
//! |---|---|
//! | `/healthz`, `/readyz`, `/metrics` | GET, HEAD |
//! | `/admin/v1/subscribers/{userId or id}` | GET, HEAD |
//! | `/admin/v1/subscribers/{userId or id}/activation` | POST |
//! | `/admin/v1/emails` | GET, HEAD |
//! | `/admin/v1/emails/test` | POST |
//! | `/admin/v1/organizations/import` | POST |
//! | `/admin/v1/organizations/{id}` | GET, HEAD, PUT |
//! | `/admin/v1/organizations/{id}/subscriptions` | GET, HEAD |
//! | `/admin/v1/organizations/{id}/subscriptions/{subscriptionId}` | PUT |
//! | `/admin/v1/organizations/{id}/subscriptions/{subscriptionId}/move` (JSON or CSV) | POST |
//! | `/admin/v1/organizations/{id}/licenses` (JSON, or CSV) | GET, HEAD |
//! | `/admin/v1/organizations/{id}/licenses/grant`, `…/licenses/revoke` | POST |
//! | `/admin/v1/licenses/ledger?after=&limit=` | GET, HEAD |
//! | `/admin/v1/organizations/{id}/license-templates` | GET, HEAD |
//! | `/admin/v1/organizations/{id}/license-templates/organization` | PUT |
//! | `/admin/v1/organizations/{id}/license-templates/groups/{groupId}` | PUT |
//! | `/admin/v1/organizations/{id}/license-templates/apply` | POST |
//! | `/admin/v1/organizations/{id}/calling/locations` | GET, HEAD |
//! | `/admin/v1/organizations/{id}/calling/locations/{locationId}` | PUT |
//! | `/admin/v1/organizations/{id}/calling/locations/{locationId}/numbers` (JSON or CSV) | POST |
//! | `/admin/v1/organizations/{id}/calling/numbers` (JSON, or CSV) | GET, HEAD |
//! | `/admin/v1/organizations/{id}/calling/users` (JSON, or CSV) | GET, HEAD |
//! | `/admin/v1/organizations/{id}/devices` (JSON, or CSV; POST: JSON or CSV) | GET, HEAD, POST |
//! | `/admin/v1/enterprises/{partnerId}/{enterpriseKey}/detach` | POST |
//!
//! An unknown path is 404 (9015), a known one with another method 405
//! (9016) with `Allow`. Organization ids, partner ids and enterprise keys
//! and subscriber keys (user ids or ids) are percent-decoded (`+` stays
//! `+`: group-mode keys and user ids); a bad escape is 400 (9017).

use hyper::Method;

use crate::domain::{ErrorCode, Refusal};
use crate::http::faces::org_licenses::resource::percent_decode;
use crate::http::faces::org_licenses::{split_org, Miss, OrgResource};

pub const ADMIN_PREFIX: &str = "/admin/";
const SUBSCRIBERS_PREFIX: &str = "/admin/v1/subscribers/";
const ACTIVATION_SUFFIX: &str = "/activation";
const EMAILS: &str = "/admin/v1/emails";
const EMAILS_TEST: &str = "/admin/v1/emails/test";
pub const ORGS_IMPORT: &str = "/admin/v1/organizations/import";
const ORGS_PREFIX: &str = "/admin/v1/organizations/";
const LICENSE_LEDGER: &str = "/admin/v1/licenses/ledger";
const ENTERPRISES_PREFIX: &str = "/admin/v1/enterprises/";
const DETACH_SUFFIX: &str = "/detach";

const READ: &str = "GET, HEAD";
const POST: &str = "POST";
const ORG: &str = "GET, HEAD, PUT";

/// One route of the ops listener, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    /// `GET /healthz`: the process is alive.
    Health,
    /// `GET /readyz`: takes traffic.
    Ready,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// `GET /admin/v1/subscribers/{key}`: the operator read-back.
    SubscriberReport { key: String },
    /// `POST /admin/v1/subscribers/{key}/activation`: retry activation.
    ActivationRetry { key: String },
    /// `GET /admin/v1/emails?…`: the email outbox.
    EmailList,
    /// `POST /admin/v1/emails/test`: enqueue a test email.
    EmailTest,
    /// `POST /admin/v1/organizations/import`: JSON array or CSV.
    OrgImport,
    /// `PUT /admin/v1/organizations/{id}`: one organization, upsert.
    OrgPut { id: String },
    /// `GET /admin/v1/organizations/{id}`.
    OrgGet { id: String },
    /// `…/organizations/{id}/{resource}`: the organization's licenses
    /// (`http::faces::org_licenses`).
    Org {
        org_id: String,
        resource: OrgResource,
    },
    /// `GET /admin/v1/licenses/ledger`: grants and removals (billing).
    LicenseLedger,
    /// `POST /admin/v1/enterprises/{partner}/{enterprise_key}/detach`.
    Detach {
        partner: String,
        enterprise_key: String,
    },
}

/// A request no route takes: the refusal to answer, and for a 405 the
/// methods the path allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    pub refusal: Refusal,
    pub allow: Option<&'static str>,
}

impl From<Miss> for Unrouted {
    fn from(miss: Miss) -> Unrouted {
        match miss {
            Miss::NotFound(what) => Unrouted::not_found(what),
            Miss::Method(allow) => Unrouted::method(allow),
        }
    }
}

impl Unrouted {
    fn not_found(detail: &str) -> Unrouted {
        Unrouted {
            refusal: Refusal::new(ErrorCode::NotFound, detail),
            allow: None,
        }
    }

    fn method(allow: &'static str) -> Unrouted {
        Unrouted {
            refusal: Refusal::new(ErrorCode::MethodNotAllowed, format!("use {allow}")),
            allow: Some(allow),
        }
    }

    fn bad_escape() -> Unrouted {
        Unrouted {
            refusal: Refusal::new(
                ErrorCode::InvalidParameterValue,
                "bad percent-encoding in the path",
            ),
            allow: None,
        }
    }
}

impl AdminRoute {
    /// The route for `method` and `path` (without the query).
    pub fn parse(method: &Method, path: &str) -> Result<AdminRoute, Unrouted> {
        let read = *method == Method::GET || *method == Method::HEAD;
        let post = *method == Method::POST;
        let only = |ok: bool, allow: &'static str, route: AdminRoute| {
            if ok {
                Ok(route)
            } else {
                Err(Unrouted::method(allow))
            }
        };
        match path {
            "/healthz" => return only(read, READ, AdminRoute::Health),
            "/readyz" => return only(read, READ, AdminRoute::Ready),
            "/metrics" => return only(read, READ, AdminRoute::Metrics),
            EMAILS => return only(read, READ, AdminRoute::EmailList),
            EMAILS_TEST => return only(post, POST, AdminRoute::EmailTest),
            ORGS_IMPORT => return only(post, POST, AdminRoute::OrgImport),
            LICENSE_LEDGER => return only(read, READ, AdminRoute::LicenseLedger),
            _ => {}
        }
        if let Some(rest) = path.strip_prefix(SUBSCRIBERS_PREFIX) {
            // `ann%40acme.example` is `ann@acme.example`, as clients that
            // encode every path segment send it.
            let (raw, activation) = match rest.strip_suffix(ACTIVATION_SUFFIX) {
                Some(raw) => (raw, true),
                None => (rest, false),
            };
            let key = percent_decode(raw).ok_or_else(Unrouted::bad_escape)?;
            return if activation {
                only(post, POST, AdminRoute::ActivationRetry { key })
            } else {
                only(read, READ, AdminRoute::SubscriberReport { key })
            };
        }
        if let Some(raw) = path.strip_prefix(ORGS_PREFIX) {
            if let Some(org) = split_org(method, raw) {
                return org
                    .map(|(org_id, resource)| AdminRoute::Org { org_id, resource })
                    .map_err(Unrouted::from);
            }
            let Some(id) = percent_decode(raw).filter(|i| !i.is_empty() && !i.contains('/')) else {
                return Err(Unrouted::not_found("no such organization"));
            };
            return match *method {
                Method::PUT => Ok(AdminRoute::OrgPut { id }),
                Method::GET | Method::HEAD => Ok(AdminRoute::OrgGet { id }),
                _ => Err(Unrouted::method(ORG)),
            };
        }
        if let Some((partner, key)) = path
            .strip_prefix(ENTERPRISES_PREFIX)
            .and_then(|rest| rest.strip_suffix(DETACH_SUFFIX))
            .and_then(|rest| rest.split_once('/'))
        {
            let (Some(partner), Some(enterprise_key)) =
                (percent_decode(partner), percent_decode(key))
            else {
                return Err(Unrouted::bad_escape());
            };
            return only(
                post,
                POST,
                AdminRoute::Detach {
                    partner,
                    enterprise_key,
                },
            );
        }
        Err(Unrouted::not_found("no such route on the ops listener"))
    }

    /// Whether the route also takes a CSV body (the guard admits
    /// `text/csv` there besides JSON).
    pub fn takes_csv(&self) -> bool {
        matches!(self, AdminRoute::OrgImport)
            || matches!(self, AdminRoute::Org { resource, .. } if resource.takes_csv())
    }

    /// Whether the operator guard must admit the request first (every
    /// `/admin/...` route; the probes are open).
    pub fn is_operator_path(path: &str) -> bool {
        path.starts_with(ADMIN_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path: &str) -> Result<AdminRoute, Unrouted> {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        AdminRoute::parse(&method, path)
    }

    /// (status, code, Allow) of a refused parse.
    fn refused(method: &str, path: &str) -> (u16, u32, Option<&'static str>) {
        let u = parse(method, path).expect_err(path);
        (u.refusal.http_status(), u.refusal.code.code(), u.allow)
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn each_route_parses_with_its_parameters() {
        use AdminRoute::*;
        for (method, path, route) in [
            ("GET", "/healthz", Health),
            ("HEAD", "/readyz", Ready),
            ("GET", "/metrics", Metrics),
            (
                "GET",
                "/admin/v1/subscribers/ann@acme.example",
                SubscriberReport {
                    key: s("ann@acme.example"),
                },
            ),
            (
                "POST",
                "/admin/v1/subscribers/ann@acme.example/activation",
                ActivationRetry {
                    key: s("ann@acme.example"),
                },
            ),
            ("GET", "/admin/v1/emails", EmailList),
            ("POST", "/admin/v1/emails/test", EmailTest),
            ("POST", "/admin/v1/organizations/import", OrgImport),
            (
                "PUT",
                "/admin/v1/organizations/org-1",
                OrgPut { id: s("org-1") },
            ),
            (
                "GET",
                "/admin/v1/organizations/org-1",
                OrgGet { id: s("org-1") },
            ),
            (
                "HEAD",
                "/admin/v1/organizations/org-1",
                OrgGet { id: s("org-1") },
            ),
            (
                "GET",
                "/admin/v1/organizations/org%201/subscriptions",
                Org {
                    org_id: s("org 1"),
                    resource: OrgResource::Subscriptions,
                },
            ),
            (
                "POST",
                "/admin/v1/organizations/org-1/subscriptions/s%201/move",
                Org {
                    org_id: s("org-1"),
                    resource: OrgResource::SubscriptionMove {
                        subscription_id: s("s 1"),
                    },
                },
            ),
            (
                "POST",
                "/admin/v1/organizations/o/devices",
                Org {
                    org_id: s("o"),
                    resource: OrgResource::DeviceCodes,
                },
            ),
            ("GET", "/admin/v1/licenses/ledger", LicenseLedger),
            (
                "POST",
                "/admin/v1/enterprises/demo-partner/ent-1/detach",
                Detach {
                    partner: s("demo-partner"),
                    enterprise_key: s("ent-1"),
                },
            ),
        ] {
            assert_eq!(parse(method, path), Ok(route), "{method} {path}");
        }
    }

    #[test]
    fn a_wrong_method_is_405_with_allow() {
        for (method, path, allow) in [
            ("POST", "/healthz", READ),
            ("DELETE", "/metrics", READ),
            ("GET", "/admin/v1/emails/test", POST),
            ("POST", "/admin/v1/emails", READ),
            ("GET", "/admin/v1/subscribers/a@b.example/activation", POST),
            ("PUT", "/admin/v1/subscribers/a@b.example", READ),
            ("GET", "/admin/v1/organizations/import", POST),
            ("DELETE", "/admin/v1/organizations/org-1", ORG),
            ("POST", "/admin/v1/organizations/org-1", ORG),
            ("GET", "/admin/v1/enterprises/p/e/detach", POST),
            ("PUT", "/admin/v1/organizations/o/licenses", READ),
            ("POST", "/admin/v1/licenses/ledger", READ),
            (
                "PUT",
                "/admin/v1/organizations/o/devices",
                "GET, HEAD, POST",
            ),
        ] {
            assert_eq!(
                refused(method, path),
                (405, 9016, Some(allow)),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn an_unknown_path_is_404() {
        for (method, path) in [
            ("GET", "/nope"),
            ("GET", "/"),
            ("GET", "/admin/"),
            ("GET", "/admin/v1/subscribers"),
            ("GET", "/admin/v1/emails/"),
            ("GET", "/admin/v1/organizations/"),
            ("POST", "/admin/v1/enterprises/p/detach"),
            ("POST", "/admin/v1/enterprises/p/e"),
            ("GET", "/healthz/"),
            ("GET", "/HEALTHZ"),
            ("GET", "/admin/v1/organizations//licenses"),
            ("PUT", "/admin/v1/organizations/o/subscriptions/"),
            ("PUT", "/admin/v1/organizations/o/subscriptions/a/b"),
            ("PUT", "/admin/v1/organizations/o/license-templates/nope"),
            ("PUT", "/admin/v1/organizations/o/license-templates/groups/"),
        ] {
            assert_eq!(refused(method, path), (404, 9015, None), "{method} {path}");
        }
    }

    #[test]
    fn odd_and_percent_encoded_segments() {
        // Organization ids and enterprise keys are decoded, `+` kept.
        assert_eq!(
            parse("GET", "/admin/v1/organizations/acme%20corp"),
            Ok(AdminRoute::OrgGet { id: s("acme corp") })
        );
        assert_eq!(
            parse("POST", "/admin/v1/enterprises/sp%2D1/ent+grp%C3%A9/detach"),
            Ok(AdminRoute::Detach {
                partner: s("sp-1"),
                enterprise_key: s("ent+grpé"),
            })
        );
        // A key keeps what follows the partner's slash.
        assert_eq!(
            parse("POST", "/admin/v1/enterprises/p/a/b/detach"),
            Ok(AdminRoute::Detach {
                partner: s("p"),
                enterprise_key: s("a/b"),
            })
        );
        // An id that is empty, has a slash (even encoded) or a bad escape
        // names no organization, whatever the method.
        for path in [
            "/admin/v1/organizations/a/b",
            "/admin/v1/organizations/a%2Fb",
            "/admin/v1/organizations/%zz",
            "/admin/v1/organizations/%4",
            "/admin/v1/organizations/%ff",
        ] {
            assert_eq!(refused("PUT", path), (404, 9015, None), "{path}");
        }
        // Bad escapes in a detach path: 400.
        for path in [
            "/admin/v1/enterprises/p%/e/detach",
            "/admin/v1/enterprises/p/e%C3/detach",
        ] {
            assert_eq!(refused("POST", path), (400, 9017, None), "{path}");
        }
        // Subscriber keys are percent-decoded too; `+` stays.
        assert_eq!(
            parse("GET", "/admin/v1/subscribers/a%40b.example"),
            Ok(AdminRoute::SubscriberReport {
                key: s("a@b.example")
            })
        );
        assert_eq!(
            parse("POST", "/admin/v1/subscribers/a+x%40b.example/activation"),
            Ok(AdminRoute::ActivationRetry {
                key: s("a+x@b.example")
            })
        );
        assert_eq!(
            refused("GET", "/admin/v1/subscribers/a%4"),
            (400, 9017, None)
        );
        assert_eq!(
            parse("POST", "/admin/v1/subscribers//activation"),
            Ok(AdminRoute::ActivationRetry { key: s("") })
        );
    }

    #[test]
    fn only_admin_paths_need_the_operator() {
        assert!(AdminRoute::is_operator_path("/admin/v1/emails"));
        assert!(AdminRoute::is_operator_path("/admin/unknown"));
        assert!(!AdminRoute::is_operator_path("/metrics"));
        assert!(!AdminRoute::is_operator_path("/administrator"));
    }
}
