//! The XSI face's routes on the mTLS listener: Xsi-Actions under
//! `/com.broadsoft.xsi-actions/v2.0/` and the auth service under
//! `/authService/`. User ids are full `user@domain` ids, percent-decoded
//! (`%40`); service names match without case (the specification writes
//! its URIs in lower case).

use hyper::Method;

pub const ACTIONS_PREFIX: &str = "/com.broadsoft.xsi-actions/v2.0/";
pub const EVENTS_PREFIX: &str = "/com.broadsoft.xsi-events/v2.0/";
/// The one streaming (Comet) URL: adding a channel.
pub const ASYNC_EVENTS_PREFIX: &str = "/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/";
pub const AUTH_PREFIX: &str = "/authService/";

/// What an Xsi-Events subscription's URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPath {
    User(String),
    /// `/enterprise/{id}` and `/serviceprovider/{id}` alike.
    ServiceProvider(String),
    Group {
        service_provider: String,
        group: String,
    },
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionMethod {
    Get,
    Refresh,
    Delete,
}

/// The Xsi-Events resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsRoute {
    /// `POST /com.broadsoft.async/…/channel`: a streaming channel.
    AddChannel,
    /// `PUT …/channel/{channelId}/heartbeat`
    Heartbeat { channel: String },
    /// `PUT|DELETE …/channel/{channelId}`
    Channel { channel: String, delete: bool },
    /// `POST …/channel/eventresponse`
    EventResponse,
    /// `GET …/channelset/{channelSetId}`
    ChannelSet { set: String },
    /// `POST …/user/{userId}`, `…/enterprise|serviceprovider/{id}[/group/{groupId}]`, `…/system`
    Subscribe { target: TargetPath },
    /// `GET|PUT|DELETE …/subscription/{subscriptionId}`
    Subscription {
        id: String,
        method: SubscriptionMethod,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsiRoute {
    /// `GET …/versions`
    Versions,
    /// `GET …/user/{userId}/profile`
    Profile { user: String },
    /// `POST …/user/{userId}/profile/LoginToken`
    LoginToken { user: String },
    /// `GET …/user/{userId}/services`
    Services { user: String },
    /// `GET|PUT …/user/{userId}/services/IntegratedIMP`
    IntegratedImp { user: String, put: bool },
    /// `GET …/user/{userId}/directories/Enterprise`
    EnterpriseDirectory { user: String },
    /// `GET /authService/token/{userId}`
    AuthToken { user: String },
    /// `GET /authService/jwks`: the public keys of the tokens.
    Jwks,
    /// Xsi-Events (`http::xsi::events`).
    Events(EventsRoute),
    /// Under an XSI prefix, but nothing here (an `ErrorInfo` 404).
    NotFound,
    /// A known resource, another method (an `ErrorInfo` 405 with `Allow`).
    MethodNotAllowed { allow: &'static str },
    /// The user id in the path is not valid percent-encoding or UTF-8.
    BadUserId,
}

impl EventsRoute {
    pub fn label(&self) -> &'static str {
        match self {
            EventsRoute::AddChannel => "xsi-events:POST /channel",
            EventsRoute::Heartbeat { .. } => "xsi-events:PUT /channel/{id}/heartbeat",
            EventsRoute::Channel { delete: false, .. } => "xsi-events:PUT /channel/{id}",
            EventsRoute::Channel { delete: true, .. } => "xsi-events:DELETE /channel/{id}",
            EventsRoute::EventResponse => "xsi-events:POST /channel/eventresponse",
            EventsRoute::ChannelSet { .. } => "xsi-events:/channelset/{id}",
            EventsRoute::Subscribe { .. } => "xsi-events:POST subscription",
            EventsRoute::Subscription { .. } => "xsi-events:/subscription/{id}",
        }
    }
}

impl XsiRoute {
    pub fn label(&self) -> &'static str {
        match self {
            XsiRoute::Versions => "xsi:/versions",
            XsiRoute::Profile { .. } => "xsi:/user/{userId}/profile",
            XsiRoute::LoginToken { .. } => "xsi:POST /user/{userId}/profile/LoginToken",
            XsiRoute::Services { .. } => "xsi:/user/{userId}/services",
            XsiRoute::IntegratedImp { put: false, .. } => {
                "xsi:/user/{userId}/services/IntegratedIMP"
            }
            XsiRoute::IntegratedImp { put: true, .. } => {
                "xsi:PUT /user/{userId}/services/IntegratedIMP"
            }
            XsiRoute::EnterpriseDirectory { .. } => "xsi:/user/{userId}/directories/Enterprise",
            XsiRoute::AuthToken { .. } => "xsi:/authService/token/{userId}",
            XsiRoute::Jwks => "xsi:/authService/jwks",
            XsiRoute::Events(e) => e.label(),
            XsiRoute::NotFound => "xsi:unmatched",
            XsiRoute::MethodNotAllowed { .. } => "xsi:method_not_allowed",
            XsiRoute::BadUserId => "xsi:bad_user_id",
        }
    }

    /// The user the request is about (the one it must authenticate as).
    pub fn user(&self) -> Option<&str> {
        match self {
            XsiRoute::Profile { user }
            | XsiRoute::LoginToken { user }
            | XsiRoute::Services { user }
            | XsiRoute::IntegratedImp { user, .. }
            | XsiRoute::EnterpriseDirectory { user }
            | XsiRoute::AuthToken { user } => Some(user),
            _ => None,
        }
    }
}

/// Whether `path` belongs to this face.
pub fn is_xsi(path: &str) -> bool {
    path.starts_with(ACTIONS_PREFIX)
        || path.starts_with(AUTH_PREFIX)
        || path.starts_with(EVENTS_PREFIX)
        || path.starts_with(ASYNC_EVENTS_PREFIX)
        || path == ACTIONS_PREFIX.trim_end_matches('/')
}

fn decode(segment: &str) -> Option<String> {
    percent_decode(segment).filter(|s| !s.is_empty() && !s.contains('/'))
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not
/// UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn only(method: &Method, allowed: &[Method], allow: &'static str, route: XsiRoute) -> XsiRoute {
    let head_ok = allowed.contains(&Method::GET) && *method == Method::HEAD;
    if allowed.contains(method) || head_ok {
        route
    } else {
        XsiRoute::MethodNotAllowed { allow }
    }
}

pub fn route(method: &Method, path: &str) -> XsiRoute {
    if let Some(rest) = path.strip_prefix(AUTH_PREFIX) {
        return match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["jwks"] => only(method, &[Method::GET], "GET, HEAD", XsiRoute::Jwks),
            ["token", user] => match decode(user) {
                Some(user) => only(
                    method,
                    &[Method::GET],
                    "GET, HEAD",
                    XsiRoute::AuthToken { user },
                ),
                None => XsiRoute::BadUserId,
            },
            _ => XsiRoute::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix(ASYNC_EVENTS_PREFIX) {
        return match rest.trim_end_matches('/') {
            "channel" => only(
                method,
                &[Method::POST],
                "POST",
                XsiRoute::Events(EventsRoute::AddChannel),
            ),
            _ => XsiRoute::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix(EVENTS_PREFIX) {
        return events_route(method, rest);
    }
    let Some(rest) = path.strip_prefix(ACTIONS_PREFIX) else {
        return XsiRoute::NotFound;
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["versions"] => only(method, &[Method::GET], "GET, HEAD", XsiRoute::Versions),
        ["user", user, tail @ ..] => {
            let Some(user) = decode(user) else {
                return XsiRoute::BadUserId;
            };
            let lower: Vec<String> = tail.iter().map(|s| s.to_ascii_lowercase()).collect();
            let tail: Vec<&str> = lower.iter().map(String::as_str).collect();
            match tail.as_slice() {
                ["profile"] => only(
                    method,
                    &[Method::GET],
                    "GET, HEAD",
                    XsiRoute::Profile { user },
                ),
                ["profile", "logintoken"] => only(
                    method,
                    &[Method::POST],
                    "POST",
                    XsiRoute::LoginToken { user },
                ),
                ["services"] => only(
                    method,
                    &[Method::GET],
                    "GET, HEAD",
                    XsiRoute::Services { user },
                ),
                ["services", "integratedimp"] => match *method {
                    Method::GET | Method::HEAD => XsiRoute::IntegratedImp { user, put: false },
                    Method::PUT => XsiRoute::IntegratedImp { user, put: true },
                    _ => XsiRoute::MethodNotAllowed {
                        allow: "GET, HEAD, PUT",
                    },
                },
                ["directories", "enterprise"] => only(
                    method,
                    &[Method::GET],
                    "GET, HEAD",
                    XsiRoute::EnterpriseDirectory { user },
                ),
                _ => XsiRoute::NotFound,
            }
        }
        _ => XsiRoute::NotFound,
    }
}

/// An id segment of an Xsi-Events path (channel, set, subscription,
/// service provider, group): decoded, not empty.
fn id_segment(segment: &str) -> Option<String> {
    decode(segment)
}

fn events_route(method: &Method, rest: &str) -> XsiRoute {
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let subscribe = |target: Option<TargetPath>| match target {
        Some(target) => only(
            method,
            &[Method::POST],
            "POST",
            XsiRoute::Events(EventsRoute::Subscribe { target }),
        ),
        None => XsiRoute::BadUserId,
    };
    match segments.as_slice() {
        // The specification adds channels under the async prefix only;
        // a client that leaves it out gets the same stream.
        ["channel"] => only(
            method,
            &[Method::POST],
            "POST",
            XsiRoute::Events(EventsRoute::AddChannel),
        ),
        ["channel", "eventresponse"] => only(
            method,
            &[Method::POST],
            "POST",
            XsiRoute::Events(EventsRoute::EventResponse),
        ),
        ["channel", id, "heartbeat"] => match id_segment(id) {
            Some(channel) => only(
                method,
                &[Method::PUT],
                "PUT",
                XsiRoute::Events(EventsRoute::Heartbeat { channel }),
            ),
            None => XsiRoute::BadUserId,
        },
        ["channel", id] => match (id_segment(id), method) {
            (Some(channel), &Method::PUT) => XsiRoute::Events(EventsRoute::Channel {
                channel,
                delete: false,
            }),
            (Some(channel), &Method::DELETE) => XsiRoute::Events(EventsRoute::Channel {
                channel,
                delete: true,
            }),
            (Some(_), _) => XsiRoute::MethodNotAllowed {
                allow: "PUT, DELETE",
            },
            (None, _) => XsiRoute::BadUserId,
        },
        ["channelset", id] => match id_segment(id) {
            Some(set) => only(
                method,
                &[Method::GET],
                "GET, HEAD",
                XsiRoute::Events(EventsRoute::ChannelSet { set }),
            ),
            None => XsiRoute::BadUserId,
        },
        ["subscription", id] => match id_segment(id) {
            Some(id) => {
                let method = match *method {
                    Method::GET | Method::HEAD => SubscriptionMethod::Get,
                    Method::PUT => SubscriptionMethod::Refresh,
                    Method::DELETE => SubscriptionMethod::Delete,
                    _ => {
                        return XsiRoute::MethodNotAllowed {
                            allow: "GET, HEAD, PUT, DELETE",
                        }
                    }
                };
                XsiRoute::Events(EventsRoute::Subscription { id, method })
            }
            None => XsiRoute::BadUserId,
        },
        ["user", user] | ["user", user, "subscription"] => {
            subscribe(decode(user).map(TargetPath::User))
        }
        ["enterprise" | "serviceprovider", sp] => {
            subscribe(id_segment(sp).map(TargetPath::ServiceProvider))
        }
        ["enterprise" | "serviceprovider", sp, "group", group] => subscribe(
            id_segment(sp)
                .zip(id_segment(group))
                .map(|(service_provider, group)| TargetPath::Group {
                    service_provider,
                    group,
                }),
        ),
        ["system"] => subscribe(Some(TargetPath::System)),
        _ => XsiRoute::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> XsiRoute {
        route(&Method::GET, path)
    }

    #[test]
    fn actions_paths_decode_the_user_and_match_services_without_case() {
        let ann = || "ann@acme.example".to_string();
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann%40acme.example/profile"),
            XsiRoute::Profile { user: ann() }
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/services/integratedimp"),
            XsiRoute::IntegratedImp {
                user: ann(),
                put: false
            }
        );
        assert_eq!(
            route(
                &Method::PUT,
                "/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/services/IntegratedIMP"
            ),
            XsiRoute::IntegratedImp {
                user: ann(),
                put: true
            }
        );
        assert_eq!(
            route(
                &Method::POST,
                "/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/profile/LoginToken"
            ),
            XsiRoute::LoginToken { user: ann() }
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/directories/Enterprise"),
            XsiRoute::EnterpriseDirectory { user: ann() }
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/versions"),
            XsiRoute::Versions
        );
        assert_eq!(
            get("/authService/token/ann%40acme.example"),
            XsiRoute::AuthToken { user: ann() }
        );
        assert_eq!(get("/authService/jwks"), XsiRoute::Jwks);
    }

    #[test]
    fn events_paths_name_channels_sets_subscriptions_and_targets() {
        let ev = |m: Method, p: &str| route(&m, &format!("/com.broadsoft.xsi-events/v2.0/{p}"));
        assert_eq!(
            route(
                &Method::POST,
                "/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel"
            ),
            XsiRoute::Events(EventsRoute::AddChannel)
        );
        assert_eq!(
            ev(Method::PUT, "channel/c1/heartbeat"),
            XsiRoute::Events(EventsRoute::Heartbeat {
                channel: "c1".into()
            })
        );
        assert_eq!(
            ev(Method::PUT, "channel/c1"),
            XsiRoute::Events(EventsRoute::Channel {
                channel: "c1".into(),
                delete: false
            })
        );
        assert_eq!(
            ev(Method::DELETE, "channel/c1"),
            XsiRoute::Events(EventsRoute::Channel {
                channel: "c1".into(),
                delete: true
            })
        );
        assert_eq!(
            ev(Method::GET, "channel/c1"),
            XsiRoute::MethodNotAllowed {
                allow: "PUT, DELETE"
            }
        );
        assert_eq!(
            ev(Method::POST, "channel/eventresponse"),
            XsiRoute::Events(EventsRoute::EventResponse)
        );
        assert_eq!(
            ev(Method::GET, "channelset/s1"),
            XsiRoute::Events(EventsRoute::ChannelSet { set: "s1".into() })
        );
        assert_eq!(
            ev(Method::DELETE, "subscription/x"),
            XsiRoute::Events(EventsRoute::Subscription {
                id: "x".into(),
                method: SubscriptionMethod::Delete
            })
        );
        let user = XsiRoute::Events(EventsRoute::Subscribe {
            target: TargetPath::User("ann@acme.example".into()),
        });
        assert_eq!(ev(Method::POST, "user/ann%40acme.example"), user);
        assert_eq!(ev(Method::POST, "user/ann@acme.example/subscription"), user);
        let sp = XsiRoute::Events(EventsRoute::Subscribe {
            target: TargetPath::ServiceProvider("SP1".into()),
        });
        assert_eq!(ev(Method::POST, "enterprise/SP1"), sp);
        assert_eq!(ev(Method::POST, "serviceprovider/SP1"), sp);
        assert_eq!(
            ev(Method::POST, "serviceprovider/SP1/group/G1"),
            XsiRoute::Events(EventsRoute::Subscribe {
                target: TargetPath::Group {
                    service_provider: "SP1".into(),
                    group: "G1".into()
                }
            })
        );
        assert_eq!(
            ev(Method::POST, "system"),
            XsiRoute::Events(EventsRoute::Subscribe {
                target: TargetPath::System
            })
        );
        assert_eq!(
            ev(Method::GET, "system"),
            XsiRoute::MethodNotAllowed { allow: "POST" }
        );
        assert_eq!(ev(Method::POST, "elsewhere"), XsiRoute::NotFound);
        assert!(is_xsi("/com.broadsoft.xsi-events/v2.0/system"));
    }

    #[test]
    fn unknown_paths_methods_and_bad_escapes_are_classified() {
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/calls"),
            XsiRoute::NotFound
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/nothing"),
            XsiRoute::NotFound
        );
        assert_eq!(get("/authService/other"), XsiRoute::NotFound);
        assert_eq!(
            route(
                &Method::DELETE,
                "/com.broadsoft.xsi-actions/v2.0/user/ann@acme.example/profile"
            ),
            XsiRoute::MethodNotAllowed { allow: "GET, HEAD" }
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann%4/profile"),
            XsiRoute::BadUserId
        );
        assert_eq!(
            get("/com.broadsoft.xsi-actions/v2.0/user/ann%FF/profile"),
            XsiRoute::BadUserId
        );
        assert!(is_xsi("/com.broadsoft.xsi-actions/v2.0/versions"));
        assert!(is_xsi("/authService/jwks"));
        assert!(!is_xsi("/uc-one/v1/provisioning/t"));
    }
}
