//! Xsi-Events on the XSI face: who the caller is (a subscriber, by the
//! same schemes as Xsi-Actions, or a partner admin, by its admin token as
//! `Authorization: Bearer`), which targets it may subscribe to, and the
//! translation of requests and answers; the hub (`crate::events`) does the
//! rest. A channel's answer is a stream: `<Channel>` first, then one
//! document per chunk.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::auth::{authenticate, Scheme};
use super::routes::{EventsRoute, SubscriptionMethod, TargetPath};
use super::{document, empty, user_id_of, Format};
use crate::domain::event::EventTarget;
use crate::domain::{ErrorCode, Refusal};
use crate::events::{EventHub, Owner};
use crate::http::partner::auth::TokenCheck;
use crate::http::{ResponseBody, State};
use crate::xsi::events as wire;
use crate::xsi::Element;

/// The content type of a channel's stream (as BroadWorks sends it).
const STREAM_CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

fn hub(state: &State) -> Result<&Arc<EventHub>, Refusal> {
    state.xsi.events.as_ref().ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnderMaintenance,
            "Xsi-Events is not running on this node",
        )
    })
}

/// A bearer that is not a JWT (three dot-separated parts) is a partner
/// admin token.
fn partner_token(parts: &Parts) -> Option<&str> {
    crate::http::partner::auth::bearer(&parts.headers).filter(|t| t.split('.').count() != 3)
}

async fn owner(state: &State, peer: IpAddr, parts: &Parts) -> Result<Owner, Refusal> {
    if let Some(token) = partner_token(parts) {
        let check = state
            .partner_auth
            .partner_for_token(
                &state.queries,
                &state.verify_queue,
                &peer.to_string(),
                token,
            )
            .await?;
        return match check {
            TokenCheck::Partner(partner) => Ok(Owner::partner_admin(&partner)),
            TokenCheck::Denied => Err(super::auth::unauthenticated(
                "the bearer token is neither an XSI token nor a partner admin token",
            )),
            TokenCheck::Busy => Err(Refusal::bare(ErrorCode::VerificationBusy)),
        };
    }
    let c = authenticate(
        state,
        peer,
        &parts.headers,
        None,
        &[Scheme::Basic, Scheme::Bearer, Scheme::Sso],
    )
    .await?;
    Ok(Owner::user(
        &user_id_of(&c.subscriber)?,
        &c.template.partner_id,
    ))
}

/// What `owner` may watch: a user itself; a partner admin any user, and
/// service providers, groups and everything of its partner.
fn target(owner: &Owner, path: &TargetPath) -> Result<EventTarget, Refusal> {
    let admin_only = || {
        Refusal::new(
            ErrorCode::XsiTargetForbidden,
            "a user subscribes to its own events only: service provider, enterprise, group and system targets need a partner admin token",
        )
    };
    match path {
        TargetPath::User(user) => {
            if !owner.is_partner_admin() && !user.eq_ignore_ascii_case(&owner.key) {
                return Err(Refusal::bare(ErrorCode::XsiOtherUser));
            }
            Ok(EventTarget::User {
                user_id: user.clone(),
            })
        }
        _ if !owner.is_partner_admin() => Err(admin_only()),
        TargetPath::ServiceProvider(sp) => Ok(EventTarget::ServiceProvider {
            service_provider_id: sp.clone(),
        }),
        TargetPath::Group {
            service_provider,
            group,
        } => Ok(EventTarget::Group {
            service_provider_id: service_provider.clone(),
            group_id: group.clone(),
        }),
        TargetPath::System => Ok(EventTarget::System),
    }
}

fn parse_body(
    state: &State,
    parts: &Parts,
    body: &[u8],
    expected: &str,
) -> Result<Element, Refusal> {
    if body.is_empty() {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            format!("the body is missing: send a <{expected}> document"),
        ));
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    super::xml_body(state, content_type, body)
}

/// Answers one Xsi-Events request (`route` is one of the events routes).
pub(super) async fn handle(
    state: &State,
    peer: IpAddr,
    route: &EventsRoute,
    parts: &Parts,
    body: &[u8],
    format: Format,
) -> Result<Response<ResponseBody>, Refusal> {
    let hub = hub(state)?;
    let owner = owner(state, peer, parts).await?;
    match route {
        EventsRoute::AddChannel => {
            let req = wire::read_channel(&parse_body(state, parts, body, "Channel")?)?;
            let open = hub.add_channel(&owner, req)?;
            tracing::info!(channel_id = %open.channel_id, owner = %owner.key, "xsi-events channel opened");
            let mut resp = Response::new(ResponseBody::streaming(open.chunks));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(STREAM_CONTENT_TYPE));
            Ok(resp)
        }
        EventsRoute::Heartbeat { channel } => {
            // A body (some clients send one) is ignored.
            hub.heartbeat(&owner, channel)?;
            Ok(empty(StatusCode::OK))
        }
        EventsRoute::Channel {
            channel,
            delete: false,
        } => {
            let expires =
                wire::read_expires(&parse_body(state, parts, body, "Channel")?, "Channel")?;
            hub.refresh_channel(&owner, channel, expires)?;
            Ok(empty(StatusCode::OK))
        }
        EventsRoute::Channel {
            channel,
            delete: true,
        } => {
            hub.delete_channel(&owner, channel)?;
            Ok(empty(StatusCode::OK))
        }
        EventsRoute::EventResponse => {
            let resp =
                wire::read_event_response(&parse_body(state, parts, body, "EventResponse")?)?;
            hub.event_response(&owner, &resp)?;
            Ok(empty(StatusCode::OK))
        }
        EventsRoute::ChannelSet { set } => {
            let views = hub.channel_set(&owner, set)?;
            Ok(document(
                StatusCode::OK,
                &wire::channel_set(set, &views),
                format,
            ))
        }
        EventsRoute::Subscribe { target: path } => {
            let target = target(&owner, path)?;
            let req = wire::read_subscription(&parse_body(state, parts, body, "Subscription")?)?;
            if matches!(req.delivery, wire::SubscriptionDelivery::HttpContact { .. })
                && !owner.is_partner_admin()
            {
                // The gateway would POST wherever a user asks, inside the
                // operator's network too: applications with an HTTP
                // contact are a partner admin's.
                return Err(Refusal::new(
                    ErrorCode::XsiTargetForbidden,
                    "HTTP-contact subscriptions need a partner admin token; a user's events go to its channels",
                ));
            }
            let (id, expires) = hub.subscribe(&owner, target, req).await?;
            Ok(document(
                StatusCode::OK,
                &wire::subscription_response(&id, expires),
                format,
            ))
        }
        EventsRoute::Subscription { id, method } => match method {
            SubscriptionMethod::Get => {
                let info = hub.subscription(&owner, id)?;
                Ok(document(
                    StatusCode::OK,
                    &wire::subscription_detail(&info.view),
                    format,
                ))
            }
            SubscriptionMethod::Refresh => {
                let expires = wire::read_expires(
                    &parse_body(state, parts, body, "Subscription")?,
                    "Subscription",
                )?;
                let expires = hub.refresh_subscription(&owner, id, expires).await?;
                Ok(document(
                    StatusCode::OK,
                    &wire::subscription_response(id, expires),
                    format,
                ))
            }
            SubscriptionMethod::Delete => {
                hub.unsubscribe(&owner, id).await?;
                Ok(empty(StatusCode::OK))
            }
        },
    }
}
