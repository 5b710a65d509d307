//! Route table of the HTTPS listener. A route's label is its template (not
//! the raw path) so metrics stay bounded whatever clients send.

use hyper::Method;

use crate::config::LimitsConfig;
use crate::http::activation::ActivationPage;
use crate::http::error::ErrorFormat;
use crate::http::Face;
use crate::license::wire::COMMANDS_PATH as LICENSE_CORE_COMMANDS;
use crate::license::wire::ORGANIZATIONS_PATH as LICENSE_CORE_ORGS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: service identity and the caller's TLS identity.
    Root,
    /// `GET /` on the portal listener.
    PortalHome,
    /// `GET /orgs/approve?token=…` on the portal: the approval page.
    OrgApprovalPage,
    /// `POST /orgs/approve` (form `token`) on the portal: approve.
    OrgApprove,
    /// The activation portal's pages (`/activate…`, `/consent`).
    Activation(ActivationPage),
    /// `POST /activate/signin`: BroadWorks credentials → the activation.
    SignIn,
    /// `GET`/`POST /self-activate/{provisioningId}`.
    SelfActivate {
        provisioning_id: String,
        submit: bool,
    },
    /// Partner admins: `/partner/v1/…` (JSON API), `/partner/status…` (page).
    Partner(crate::http::partner::PartnerRoute),
    /// `POST /uc-one/v1/provisioning/{provisioningId}`.
    FlowThrough {
        provisioning_id: String,
    },
    /// Xsi-Actions and the auth service (`http::xsi`).
    Xsi(crate::http::xsi::XsiRoute),
    /// `POST /license-core/v1/commands` (license core processes only).
    LicenseCoreCommands,
    /// `/license-core/v1/organizations/{id}/{resource}` (idem): a gateway
    /// relays its operator's or partner admins' requests.
    LicenseCoreOrg {
        org_id: String,
        resource: crate::http::faces::org_licenses::OrgResource,
    },
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
        format: ErrorFormat,
    },
}

impl Route {
    pub fn label(&self) -> &'static str {
        match self {
            Route::Root => "/",
            Route::PortalHome => "portal:/",
            Route::OrgApprovalPage => "portal:/orgs/approve",
            Route::OrgApprove => "portal:POST /orgs/approve",
            Route::Activation(page) => page.label(),
            Route::SignIn => "portal:POST /activate/signin",
            Route::SelfActivate { submit: false, .. } => "portal:/self-activate/{provisioningId}",
            Route::SelfActivate { submit: true, .. } => {
                "portal:POST /self-activate/{provisioningId}"
            }
            Route::Partner(r) => r.label(),
            Route::FlowThrough { .. } => "/uc-one/v1/provisioning/{provisioningId}",
            Route::Xsi(r) => r.label(),
            Route::LicenseCoreCommands => "core:POST /license-core/v1/commands",
            Route::LicenseCoreOrg { resource, .. } => resource.labels().1,
            Route::NotFound => "unmatched",
            Route::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }

    /// Largest body this route reads: flow-through documents may be large;
    /// everything else (portal forms, JSON actions, bodies nobody reads)
    /// is small. `max_body_bytes` caps every body. Known before the body
    /// is read, so nothing is buffered beyond it.
    pub fn body_limit(&self, limits: &LimitsConfig) -> usize {
        match self {
            Route::FlowThrough { .. } | Route::LicenseCoreCommands => limits.max_body_bytes,
            // Bulk uploads (numbers, moves, devices) have room for their rows.
            Route::LicenseCoreOrg { resource, .. }
            | Route::Partner(crate::http::partner::PartnerRoute::ApiOrg { resource, .. }) => {
                resource.max_body().min(limits.max_body_bytes)
            }
            _ => limits.max_form_body_bytes.min(limits.max_body_bytes),
        }
    }

    /// Error body format for this route's face.
    pub fn error_format(&self, face: Face) -> ErrorFormat {
        match (self, face) {
            (Route::MethodNotAllowed { format, .. }, _) => *format,
            (Route::Partner(r), _) => r.error_format(),
            (_, Face::Portal) => ErrorFormat::Html,
            (_, Face::Provisioning) => ErrorFormat::XsiXml,
            (_, Face::LicenseCore) => ErrorFormat::Json,
        }
    }
}

pub const FLOWTHROUGH_PREFIX: &str = "/uc-one/v1/provisioning/";

pub fn route(face: Face, method: &Method, path: &str) -> Route {
    match face {
        Face::Provisioning => provisioning_route(method, path),
        Face::Portal => portal_route(method, path),
        Face::LicenseCore => license_core_route(method, path),
    }
}

/// A license core serves its command route, the organizations' license
/// resources for gateways, and `/` only: none of the gateway's faces.
fn license_core_route(method: &Method, path: &str) -> Route {
    match (path, method) {
        (LICENSE_CORE_COMMANDS, &Method::POST) => Route::LicenseCoreCommands,
        (LICENSE_CORE_COMMANDS, _) => Route::MethodNotAllowed {
            allow: "POST",
            format: ErrorFormat::Json,
        },
        ("/", &Method::GET | &Method::HEAD) => Route::Root,
        _ => {
            use crate::http::faces::org_licenses::{split_org, Miss, OrgResource};
            let found = path
                .strip_prefix(LICENSE_CORE_ORGS)
                .and_then(|raw| split_org(method, raw));
            match found {
                // Device codes are the gateway's to ask (its outbox).
                Some(Ok((_, OrgResource::DeviceCodes))) | Some(Err(Miss::NotFound(_))) | None => {
                    Route::NotFound
                }
                Some(Ok((org_id, resource))) => Route::LicenseCoreOrg { org_id, resource },
                Some(Err(Miss::Method(allow))) => Route::MethodNotAllowed {
                    allow,
                    format: ErrorFormat::Json,
                },
            }
        }
    }
}

fn portal_route(method: &Method, path: &str) -> Route {
    if path.starts_with("/partner/") {
        return crate::http::partner::route(method, path);
    }
    if path.starts_with(crate::http::partner::BROADWORKS_PREFIX) {
        return crate::http::partner::broadworks_route(method, path);
    }
    match (path, method) {
        ("/", &Method::GET | &Method::HEAD) => Route::PortalHome,
        ("/", _) => Route::MethodNotAllowed {
            allow: "GET, HEAD",
            format: ErrorFormat::Html,
        },
        ("/orgs/approve", &Method::GET | &Method::HEAD) => Route::OrgApprovalPage,
        ("/orgs/approve", &Method::POST) => Route::OrgApprove,
        ("/orgs/approve", _) => Route::MethodNotAllowed {
            allow: "GET, HEAD, POST",
            format: ErrorFormat::Html,
        },
        ("/activate/signin", &Method::POST) => Route::SignIn,
        ("/activate/signin", _) => Route::MethodNotAllowed {
            allow: "POST",
            format: ErrorFormat::Html,
        },
        ("/activate", &Method::GET | &Method::HEAD) => Route::Activation(ActivationPage::Show),
        ("/activate/email", &Method::POST) => Route::Activation(ActivationPage::SubmitEmail),
        ("/activate/verify", &Method::GET | &Method::HEAD) => {
            Route::Activation(ActivationPage::ConfirmLink)
        }
        ("/activate/verify", &Method::POST) => Route::Activation(ActivationPage::Verify),
        ("/consent", &Method::GET | &Method::HEAD) => {
            Route::Activation(ActivationPage::ConsentPage)
        }
        ("/consent", &Method::POST) => Route::Activation(ActivationPage::Consent),
        ("/activate", _) => Route::MethodNotAllowed {
            allow: "GET, HEAD",
            format: ErrorFormat::Html,
        },
        ("/activate/email", _) => Route::MethodNotAllowed {
            allow: "POST",
            format: ErrorFormat::Html,
        },
        ("/activate/verify" | "/consent", _) => Route::MethodNotAllowed {
            allow: "GET, HEAD, POST",
            format: ErrorFormat::Html,
        },
        _ => match path.strip_prefix(SELF_ACTIVATE_PREFIX) {
            Some(id) if !id.is_empty() && !id.contains('/') => match *method {
                Method::GET | Method::HEAD => Route::SelfActivate {
                    provisioning_id: id.to_string(),
                    submit: false,
                },
                Method::POST => Route::SelfActivate {
                    provisioning_id: id.to_string(),
                    submit: true,
                },
                _ => Route::MethodNotAllowed {
                    allow: "GET, HEAD, POST",
                    format: ErrorFormat::Html,
                },
            },
            _ => Route::NotFound,
        },
    }
}

pub const SELF_ACTIVATE_PREFIX: &str = "/self-activate/";

fn provisioning_route(method: &Method, path: &str) -> Route {
    if crate::http::xsi::routes::is_xsi(path) {
        return Route::Xsi(crate::http::xsi::routes::route(method, path));
    }
    if let Some(id) = path.strip_prefix(FLOWTHROUGH_PREFIX) {
        if id.is_empty() || id.contains('/') {
            return Route::NotFound;
        }
        return match *method {
            Method::POST => Route::FlowThrough {
                provisioning_id: id.to_string(),
            },
            _ => Route::MethodNotAllowed {
                allow: "POST",
                format: ErrorFormat::XsiXml,
            },
        };
    }
    match path {
        "/" => match *method {
            Method::GET | Method::HEAD => Route::Root,
            _ => Route::MethodNotAllowed {
                allow: "GET, HEAD",
                format: ErrorFormat::Json,
            },
        },
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_flow_through_reads_large_bodies() {
        let mut limits = LimitsConfig::default();
        let flow = route(
            Face::Provisioning,
            &Method::POST,
            "/uc-one/v1/provisioning/t-1",
        );
        let portal_form = route(Face::Portal, &Method::POST, "/activate/signin");
        let anything_else = route(Face::Provisioning, &Method::POST, "/nope");
        assert_eq!(flow.body_limit(&limits), limits.max_body_bytes);
        assert_eq!(portal_form.body_limit(&limits), limits.max_form_body_bytes);
        assert_eq!(
            anything_else.body_limit(&limits),
            limits.max_form_body_bytes
        );
        // max_body_bytes caps every body.
        limits.max_body_bytes = 2048;
        assert_eq!(portal_form.body_limit(&limits), 2048);
    }

    #[test]
    fn unknown_paths_and_methods_are_classified() {
        assert_eq!(route(Face::Provisioning, &Method::GET, "/"), Route::Root);
        assert_eq!(
            route(Face::Provisioning, &Method::GET, "/nope"),
            Route::NotFound
        );
        assert_eq!(
            route(
                Face::Provisioning,
                &Method::POST,
                "/uc-one/v1/provisioning/t-1"
            ),
            Route::FlowThrough {
                provisioning_id: "t-1".into()
            }
        );
        assert_eq!(
            route(
                Face::Provisioning,
                &Method::POST,
                "/uc-one/v1/provisioning/"
            ),
            Route::NotFound
        );
        assert_eq!(
            route(
                Face::Provisioning,
                &Method::POST,
                "/uc-one/v1/provisioning/a/b"
            ),
            Route::NotFound
        );
        assert!(matches!(
            route(
                Face::Provisioning,
                &Method::GET,
                "/uc-one/v1/provisioning/t-1"
            ),
            Route::MethodNotAllowed { allow: "POST", .. }
        ));
        assert!(matches!(
            route(Face::Provisioning, &Method::POST, "/"),
            Route::MethodNotAllowed { .. }
        ));
    }
}
