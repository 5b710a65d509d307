//! The Xsi-Events wire documents (`/com.broadsoft.xsi-events/v2.0/…`,
//! Xsi spec R21 §4.6, §4.7; `research/xsi-facts.md` §3): readers of what
//! clients send, writers of what bwgate answers and streams, as
//! [`Element`] trees in the XSI namespace, and [`to_chunk`], which writes
//! one document as one chunk of a channel stream (or one HTTP-contact
//! POST body).
//!
//! Readers (elements matched by local name, any prefix or namespace, or
//! none; other children ignored; a nil or empty optional element is the
//! same as an absent one). A missing required element is 1001
//! (`MissingParameter`); a wrong root, a required element that is empty
//! or nil, or a bad value is 9017 (`InvalidParameterValue`); each with a
//! one-line reason naming the element:
//!
//! - [`read_channel`]: `POST …/channel`:
//!   `<Channel><channelSetId/><priority/><weight/><expires/></Channel>`.
//! - [`read_expires`]: the refresh `PUT`s, `<Channel><expires/></Channel>`
//!   and `<Subscription><expires/></Subscription>`.
//! - [`read_subscription`]: the subscription `POST`:
//!   `<Subscription><event/><expires/>` then `<channelSetId/>` or
//!   `<httpContact><uri/></httpContact>`, then `<applicationId/>`.
//! - [`read_event_response`]: `POST …/channel/eventresponse`:
//!   `<EventResponse><eventID/><statusCode/><reason/></EventResponse>`.
//! - [`read_event`]: reads back an event document (tests, `bwgate load`,
//!   conformance).
//!
//! Writers, shaped like the samples in `tests/support/xsi-samples/`
//! (names and element order): [`channel`] (the first chunk of a channel),
//! [`channel_heartbeat`], [`channel_set`], [`subscription_response`],
//! [`subscription_detail`], [`subscription_event`],
//! [`subscription_terminated`], [`channel_terminated`]; and the client's
//! side, for load generators and tests: [`channel_request`],
//! [`expires_request`], [`subscription_request`], [`event_response`].
//!
//! Events are written as XSI writes them (the CHK wire trace):
//!
//! ```text
//! <xsi:Event xmlns:xsi="http://schema.broadsoft.com/xsi"
//!   xmlns:xsi1="http://www.w3.org/2001/XMLSchema-instance" xsi1:type="xsi:SubscriptionEvent">
//!   <xsi:eventID/> <xsi:sequenceNumber/> <xsi:userId/> <xsi:externalApplicationId/>?
//!   <xsi:subscriptionId/> (<xsi:channelId/> | <xsi:httpContact><xsi:uri/></xsi:httpContact>)
//!   <xsi:targetId/>? <xsi:eventData xsi1:type="xsi:<Kind>Event">…</xsi:eventData>
//! </xsi:Event>
//! ```
//!
//! The tree keeps neither prefixes nor attribute namespaces, and
//! [`Element::to_xml`] writes unprefixed names and a plain `type`
//! attribute, which loses the meaning of `xsi1:type`. So an `Event`
//! document is written by [`event_xml`] (every XSI element `xsi:`-prefixed,
//! `xmlns:xsi` and `xmlns:xsi1` declared on the root, the `type` attribute
//! written as `xsi1:type`), which [`to_chunk`] uses; other documents are
//! written by [`Element::to_xml`] (default namespace, no prefixes), as
//! the samples show them.
//!
//! The `eventData` of bwgate's `Provisioning` package
//! (`schemas/xsi-events-provisioning.xsd`) has `xsi1:type`
//! `xsi:<Kind>Event` ([`EventKind::as_str`]) and these children, in this
//! order, each left out when the event has no value for it
//! ([`EVENT_DATA_FIELDS`]): `userId`, `subscriberId`, `serviceProviderId`,
//! `groupId`, `status`, `package`, `organizationId`, `organizationName`,
//! `errorCode`, `reason`, and always `occurredAt` (the event's `at`, ISO
//! 8601 UTC with milliseconds, `2026-11-24T10:15:00.123Z`). The event's
//! log position (`seq`) and its template (`provisioningId`) are not
//! written: `sequenceNumber` numbers the subscription's events, and the
//! template is bwgate's routing, not the subscriber's business.

use super::build::{parent, push_some, text, xsi};
use bytes::Bytes;

use super::document::{Element, XSI_INSTANCE_NAMESPACE, XSI_NAMESPACE};
use crate::domain::event::{EventDelivery, EventKind, ProvisioningEvent};
pub use crate::domain::timestamp::{iso_millis, parse_iso_millis};
use crate::domain::{ErrorCode, Refusal};
use crate::flowthrough::response::escape_into;

/// The XML declaration in front of every chunk.
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
/// Longest `channelSetId`, `event`, `applicationId`, `eventID` and other
/// identifiers read, in characters.
pub const MAX_ID_CHARS: usize = 256;
/// Longest `httpContact/uri` read, in characters.
pub const MAX_URI_CHARS: usize = 2048;
/// Longest `EventResponse` `reason` read, in characters.
pub const MAX_REASON_CHARS: usize = 1024;
/// The children of a `Provisioning` `eventData`, in the order
/// [`subscription_event`] writes them.
pub const EVENT_DATA_FIELDS: [&str; 11] = [
    "userId",
    "subscriberId",
    "serviceProviderId",
    "groupId",
    "status",
    "package",
    "organizationId",
    "organizationName",
    "errorCode",
    "reason",
    "occurredAt",
];

// ---------------------------------------------------------------- readers

/// `POST /com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    pub channel_set_id: String,
    /// 1 when absent.
    pub priority: u32,
    /// 1 when absent.
    pub weight: u32,
    /// Seconds asked for (more than 0; the caller caps it).
    pub expires: u64,
}

/// Reads `<Channel><channelSetId/><priority/><weight/><expires/></Channel>`:
/// `channelSetId` required (1 to [`MAX_ID_CHARS`] characters),
/// `priority` and `weight` optional (whole numbers, default 1), `expires`
/// required (whole seconds, more than 0).
pub fn read_channel(doc: &Element) -> Result<ChannelRequest, Refusal> {
    expect_root(doc, "Channel")?;
    let channel_set_id = id_text(doc, "Channel", "channelSetId")?;
    let priority = optional_number(doc, "priority")?.unwrap_or(1);
    let weight = optional_number(doc, "weight")?.unwrap_or(1);
    let expires = expires_of(doc)?;
    Ok(ChannelRequest {
        channel_set_id,
        priority,
        weight,
        expires,
    })
}

/// Reads the `expires` of a refresh: `PUT …/channel/{id}` with
/// `<Channel><expires/></Channel>` (`root` `"Channel"`) or
/// `PUT …/subscription/{id}` with `<Subscription><expires/></Subscription>`
/// (`root` `"Subscription"`). The root must be `root`; `expires` is
/// required, whole seconds, more than 0.
pub fn read_expires(doc: &Element, root: &str) -> Result<u64, Refusal> {
    expect_root(doc, root)?;
    expires_of(doc)
}

/// Where a subscription's events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionDelivery {
    /// The channels of this channel set.
    Channel { channel_set_id: String },
    /// POSTed to this URI, kept as the client wrote it (echoed as such in
    /// `httpContact/uri`); [`http_contact_url`] gives the URL to POST to.
    HttpContact { uri: String },
}

/// The wire's delivery as the domain keeps it, and back.
impl From<SubscriptionDelivery> for EventDelivery {
    fn from(d: SubscriptionDelivery) -> Self {
        match d {
            SubscriptionDelivery::Channel { channel_set_id } => {
                EventDelivery::ChannelSet { channel_set_id }
            }
            SubscriptionDelivery::HttpContact { uri } => EventDelivery::HttpContact { uri },
        }
    }
}

impl From<EventDelivery> for SubscriptionDelivery {
    fn from(d: EventDelivery) -> Self {
        match d {
            EventDelivery::ChannelSet { channel_set_id } => {
                SubscriptionDelivery::Channel { channel_set_id }
            }
            EventDelivery::HttpContact { uri } => SubscriptionDelivery::HttpContact { uri },
        }
    }
}

/// A subscription `POST` (`/user/{id}`, `/enterprise/{id}`, …, `/system`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    /// The event package (`Provisioning` for bwgate; not checked here).
    pub event: String,
    /// Seconds asked for (more than 0; the caller caps it).
    pub expires: u64,
    pub delivery: SubscriptionDelivery,
    pub application_id: Option<String>,
}

/// Reads `<Subscription><event/><expires/>` + `<channelSetId/>` or
/// `<httpContact><uri/></httpContact>` + `<applicationId/>?`.
///
/// `event` required (1 to [`MAX_ID_CHARS`] characters), `expires`
/// required (whole seconds, more than 0), exactly one of `channelSetId`
/// (as in [`read_channel`]) and `httpContact` (neither: 1001; both:
/// 9017), `applicationId` optional (up to [`MAX_ID_CHARS`]).
///
/// `httpContact/uri` (1 to [`MAX_URI_CHARS`] characters, no whitespace)
/// is an `http://` or `https://` URI (any case), or a URI without a
/// scheme (`host[:port][/path]`), which is read as `http://`: the spec's
/// own example is `172.16.25.114:8800/MyApplication/eventConsumer`, and
/// the real 2014 events echo such URIs. Any other scheme (`ftp://…`,
/// `mailto:…`) is refused, as is a URI without a host.
pub fn read_subscription(doc: &Element) -> Result<SubscriptionRequest, Refusal> {
    expect_root(doc, "Subscription")?;
    let event = id_text(doc, "Subscription", "event")?;
    let expires = expires_of(doc)?;
    let delivery = match (doc.child("channelSetId"), doc.child("httpContact")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "channelSetId, httpContact: give one of them, not both",
            ))
        }
        (None, None) => {
            return Err(missing(
                "channelSetId or httpContact: one of them is required in <Subscription>",
            ))
        }
        (Some(_), None) => SubscriptionDelivery::Channel {
            channel_set_id: id_text(doc, "Subscription", "channelSetId")?,
        },
        (None, Some(contact)) => SubscriptionDelivery::HttpContact {
            uri: contact_uri(contact)?,
        },
    };
    let application_id = optional_text(doc, "applicationId", MAX_ID_CHARS)?;
    Ok(SubscriptionRequest {
        event,
        expires,
        delivery,
        application_id,
    })
}

/// The URL to POST an HTTP-contact subscription's events to: the
/// subscription's `uri` as is when it has a scheme, else behind
/// `http://` (see [`read_subscription`]).
pub fn http_contact_url(uri: &str) -> String {
    if uri.contains("://") {
        uri.to_owned()
    } else {
        format!("http://{uri}")
    }
}

/// `POST …/channel/eventresponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventResponse {
    pub event_id: String,
    pub status_code: u16,
    /// Empty when absent.
    pub reason: String,
}

/// Reads `<EventResponse><eventID/><statusCode/><reason/></EventResponse>`:
/// `eventID` required (1 to [`MAX_ID_CHARS`] characters), `statusCode`
/// required (100 to 599), `reason` optional (up to [`MAX_REASON_CHARS`]).
pub fn read_event_response(doc: &Element) -> Result<EventResponse, Refusal> {
    expect_root(doc, "EventResponse")?;
    let event_id = id_text(doc, "EventResponse", "eventID")?;
    let raw = required(doc, "EventResponse", "statusCode")?;
    let status_code: u16 = number("statusCode", raw)?;
    if !(100..=599).contains(&status_code) {
        return Err(invalid(format!(
            "statusCode: {status_code} is not an HTTP status (100 to 599)"
        )));
    }
    let reason = optional_text(doc, "reason", MAX_REASON_CHARS)?.unwrap_or_default();
    Ok(EventResponse {
        event_id,
        status_code,
        reason,
    })
}

// ---------------------------------------------------------------- writers

/// The first chunk of a channel (the answer to the channel `POST`):
/// `<Channel><channelId/><expires/></Channel>`.
pub fn channel(channel_id: &str, expires: u64) -> Element {
    parent(
        "Channel",
        vec![
            text("channelId", channel_id),
            text("expires", &expires.to_string()),
        ],
    )
}

/// `<ChannelHeartBeat xmlns="http://schema.broadsoft.com/xsi"/>`, the
/// chunk a heartbeat `PUT` makes the server send (spelled `HeartBeat`, as
/// clients match it, not the spec text's `Heartbeat`).
pub fn channel_heartbeat() -> Element {
    xsi("ChannelHeartBeat")
}

/// One channel of [`channel_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelView {
    pub channel_id: String,
    pub channel_set_id: String,
    pub priority: u32,
    pub weight: u32,
    /// Seconds left.
    pub expires: u64,
}

/// `GET …/channelset/{channelSetId}`:
/// `<ChannelSet><channel><channelId/><channelSetId/><priority/><weight/><expires/></channel>…</ChannelSet>`.
pub fn channel_set(channel_set_id: &str, channels: &[ChannelView]) -> Element {
    // The spec's sample names the set only inside each channel (each
    // view's own `channel_set_id` is written); an empty set is
    // `<ChannelSet xmlns="…"/>`.
    let _ = channel_set_id;
    parent(
        "ChannelSet",
        channels
            .iter()
            .map(|c| {
                parent(
                    "channel",
                    vec![
                        text("channelId", &c.channel_id),
                        text("channelSetId", &c.channel_set_id),
                        text("priority", &c.priority.to_string()),
                        text("weight", &c.weight.to_string()),
                        text("expires", &c.expires.to_string()),
                    ],
                )
            })
            .collect(),
    )
}

/// The answer to a subscription `POST` (and to its refresh `PUT`):
/// `<Subscription><subscriptionId/><expires/></Subscription>`.
pub fn subscription_response(subscription_id: &str, expires: u64) -> Element {
    parent(
        "Subscription",
        vec![
            text("subscriptionId", subscription_id),
            text("expires", &expires.to_string()),
        ],
    )
}

/// What [`subscription_detail`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionView {
    pub subscription_id: String,
    /// The subscription's `targetId` (none for `/system`).
    pub target_id: Option<String>,
    pub event: String,
    /// Seconds left.
    pub expires: u64,
    pub delivery: SubscriptionDelivery,
    pub application_id: Option<String>,
}

/// `GET …/subscription/{subscriptionId}`:
///
/// ```text
/// <Subscription> <subscriptionId/> <targetId/>? <event/> <expires/>
///   (<channelSetId/> | <httpContact><uri/></httpContact>) <applicationId/>?
/// </Subscription>
/// ```
///
/// bwgate's shape: the spec (§4.6.2.6) says only that the `GET` answers
/// 200, and no sample of its body is public. It is the subscription
/// response (`subscriptionId` first, `expires` the seconds left) merged
/// with the request's elements in the request's order (so
/// [`read_subscription`] reads it, and `expires` precedes `httpContact` as
/// the spec's revision note requires), plus the `targetId` an event's
/// envelope carries, after `subscriptionId` as there.
pub fn subscription_detail(v: &SubscriptionView) -> Element {
    let mut children = vec![text("subscriptionId", &v.subscription_id)];
    push_some(&mut children, "targetId", v.target_id.as_deref());
    children.push(text("event", &v.event));
    children.push(text("expires", &v.expires.to_string()));
    children.push(delivery_element(&v.delivery));
    push_some(&mut children, "applicationId", v.application_id.as_deref());
    parent("Subscription", children)
}

/// Where an event goes: the channel it is written on, or the
/// subscription's HTTP contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventDestination<'a> {
    /// `channelId`.
    Channel(&'a str),
    /// `httpContact/uri`, as the subscription wrote it.
    HttpContact(&'a str),
}

/// The envelope of a `SubscriptionEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventEnvelope<'a> {
    /// `eventID` (a UUID; what the client acknowledges).
    pub event_id: &'a str,
    /// `sequenceNumber`: 1, 2, … per subscription.
    pub sequence_number: u64,
    /// `userId`: the subscriber of the subscription (its owner).
    pub user_id: &'a str,
    /// `externalApplicationId`: the subscription's `applicationId`.
    pub external_application_id: Option<&'a str>,
    pub subscription_id: &'a str,
    pub destination: EventDestination<'a>,
    /// `targetId`: the subscription's target (none for `/system`).
    pub target_id: Option<&'a str>,
}

/// A `Provisioning` event (see the module's documentation for the
/// `eventData`).
pub fn subscription_event(env: &EventEnvelope<'_>, event: &ProvisioningEvent) -> Element {
    let mut data = Vec::with_capacity(EVENT_DATA_FIELDS.len());
    push_some(&mut data, "userId", event.user_id.as_deref());
    push_some(&mut data, "subscriberId", event.subscriber_id.as_deref());
    push_some(
        &mut data,
        "serviceProviderId",
        event.service_provider_id.as_deref(),
    );
    push_some(&mut data, "groupId", event.group_id.as_deref());
    push_some(&mut data, "status", event.status.as_deref());
    push_some(&mut data, "package", event.package.as_deref());
    push_some(
        &mut data,
        "organizationId",
        event.organization_id.as_deref(),
    );
    push_some(
        &mut data,
        "organizationName",
        event.organization_name.as_deref(),
    );
    if let Some(code) = event.error_code {
        data.push(text("errorCode", &code.to_string()));
    }
    push_some(&mut data, "reason", event.reason.as_deref());
    data.push(text("occurredAt", &iso_millis(event.at)));
    let type_name = format!("{}Event", event.kind.as_str());
    envelope(env, typed("eventData", &type_name, data))
}

/// A `SubscriptionTerminatedEvent` (the subscription expired or was
/// deleted): the envelope with an empty
/// `<xsi:eventData xsi1:type="xsi:SubscriptionTerminatedEvent"/>`.
pub fn subscription_terminated(env: &EventEnvelope<'_>) -> Element {
    envelope(
        env,
        typed("eventData", "SubscriptionTerminatedEvent", Vec::new()),
    )
}

/// A `ChannelTerminatedEvent`: `<xsi:Event xsi1:type="xsi:ChannelTerminatedEvent">`
/// with `channelId` and `reason` (for example `MaxChannelsReached`); no
/// `eventID`, and the client does not acknowledge it.
pub fn channel_terminated(channel_id: &str, reason: &str) -> Element {
    typed(
        "Event",
        "ChannelTerminatedEvent",
        vec![text("channelId", channel_id), text("reason", reason)],
    )
}

/// The client's channel `POST`:
/// `<Channel><channelSetId/><priority/><weight/><expires/></Channel>`.
pub fn channel_request(r: &ChannelRequest) -> Element {
    parent(
        "Channel",
        vec![
            text("channelSetId", &r.channel_set_id),
            text("priority", &r.priority.to_string()),
            text("weight", &r.weight.to_string()),
            text("expires", &r.expires.to_string()),
        ],
    )
}

/// The client's refresh `PUT`: `<{root}><expires/></{root}>` (`Channel` or
/// `Subscription`).
pub fn expires_request(root: &str, expires: u64) -> Element {
    parent(root, vec![text("expires", &expires.to_string())])
}

/// The client's subscription `POST`:
/// `<Subscription><event/><expires/>(<channelSetId/>|<httpContact><uri/></httpContact>)<applicationId/>?</Subscription>`.
pub fn subscription_request(r: &SubscriptionRequest) -> Element {
    let mut children = vec![
        text("event", &r.event),
        text("expires", &r.expires.to_string()),
        delivery_element(&r.delivery),
    ];
    push_some(&mut children, "applicationId", r.application_id.as_deref());
    parent("Subscription", children)
}

/// The client's acknowledgement:
/// `<EventResponse><eventID/><statusCode/><reason/></EventResponse>`.
pub fn event_response(r: &EventResponse) -> Element {
    parent(
        "EventResponse",
        vec![
            text("eventID", &r.event_id),
            text("statusCode", &r.status_code.to_string()),
            text("reason", &r.reason),
        ],
    )
}

// ----------------------------------------------------- reading events back

/// What an event document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventType {
    /// A `SubscriptionEvent` of the `Provisioning` package.
    Provisioning(EventKind),
    /// A `SubscriptionEvent` whose `eventData` is a
    /// `SubscriptionTerminatedEvent`.
    SubscriptionTerminated,
    /// A `ChannelTerminatedEvent`: only `destination` (the channel) and
    /// this reason are on the wire.
    ChannelTerminated { reason: String },
}

/// An [`EventDestination`] with owned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDestinationOwned {
    Channel(String),
    HttpContact(String),
}

/// An [`EventEnvelope`] as [`read_event`] reads it. For a
/// `ChannelTerminatedEvent` the text fields are empty, `sequence_number`
/// is 0 and the options are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEnvelopeOwned {
    pub event_type: EventType,
    pub event_id: String,
    pub sequence_number: u64,
    pub user_id: String,
    pub external_application_id: Option<String>,
    pub subscription_id: String,
    pub destination: EventDestinationOwned,
    pub target_id: Option<String>,
}

impl EventEnvelopeOwned {
    /// The envelope to write this one again.
    pub fn as_envelope(&self) -> EventEnvelope<'_> {
        EventEnvelope {
            event_id: &self.event_id,
            sequence_number: self.sequence_number,
            user_id: &self.user_id,
            external_application_id: self.external_application_id.as_deref(),
            subscription_id: &self.subscription_id,
            destination: match &self.destination {
                EventDestinationOwned::Channel(c) => EventDestination::Channel(c),
                EventDestinationOwned::HttpContact(u) => EventDestination::HttpContact(u),
            },
            target_id: self.target_id.as_deref(),
        }
    }

    /// Whether the client must acknowledge it (`POST …/eventresponse`):
    /// every event but `ChannelTerminatedEvent`.
    pub fn needs_response(&self) -> bool {
        !matches!(self.event_type, EventType::ChannelTerminated { .. })
    }
}

/// Reads an event document: what [`subscription_event`],
/// [`subscription_terminated`] and [`channel_terminated`] write (and XSI's
/// own `SubscriptionTerminatedEvent` and `ChannelTerminatedEvent`).
///
/// The root is `Event`; its `type` (`xsi:SubscriptionEvent`, or
/// `xsi:ChannelTerminatedEvent`; any prefix; absent means
/// `SubscriptionEvent`) says which. A `SubscriptionEvent` needs `eventID`,
/// `sequenceNumber`, `userId`, `subscriptionId`, one of `channelId` and
/// `httpContact/uri`, and `eventData` with a `type`: a `Provisioning`
/// kind (`xsi:<Kind>Event`), whose `occurredAt` is required, or
/// `SubscriptionTerminatedEvent` (the event is then `None`). Another
/// package's `eventData` is refused (9017). The event read back has `seq`
/// 0 and an empty `provisioning_id` (neither is on the wire).
pub fn read_event(
    doc: &Element,
) -> Result<(EventEnvelopeOwned, Option<ProvisioningEvent>), Refusal> {
    expect_root(doc, "Event")?;
    match doc.attr("type").map(type_local_name) {
        None | Some("SubscriptionEvent") => {}
        Some("ChannelTerminatedEvent") => {
            let channel_id = id_text(doc, "Event", "channelId")?;
            let reason = required(doc, "Event", "reason")?;
            let reason = bounded("reason", reason, MAX_REASON_CHARS)?;
            let envelope = EventEnvelopeOwned {
                event_type: EventType::ChannelTerminated { reason },
                event_id: String::new(),
                sequence_number: 0,
                user_id: String::new(),
                external_application_id: None,
                subscription_id: String::new(),
                destination: EventDestinationOwned::Channel(channel_id),
                target_id: None,
            };
            return Ok((envelope, None));
        }
        Some(other) => {
            return Err(invalid(format!(
                "Event: type {} is not SubscriptionEvent or ChannelTerminatedEvent",
                shown(other)
            )))
        }
    }
    let event_id = id_text(doc, "Event", "eventID")?;
    let sequence_number = number("sequenceNumber", required(doc, "Event", "sequenceNumber")?)?;
    let user_id = id_text(doc, "Event", "userId")?;
    let external_application_id = optional_text(doc, "externalApplicationId", MAX_ID_CHARS)?;
    let subscription_id = id_text(doc, "Event", "subscriptionId")?;
    let destination = match (doc.child("channelId"), doc.child("httpContact")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "channelId, httpContact: an event has one of them, not both",
            ))
        }
        (None, None) => {
            return Err(missing(
                "channelId or httpContact: one of them is required in <Event>",
            ))
        }
        (Some(_), None) => EventDestinationOwned::Channel(id_text(doc, "Event", "channelId")?),
        (None, Some(contact)) => {
            let uri = required(contact, "httpContact", "uri")?;
            EventDestinationOwned::HttpContact(bounded("httpContact/uri", uri, MAX_URI_CHARS)?)
        }
    };
    let target_id = optional_text(doc, "targetId", MAX_ID_CHARS)?;
    let data = doc
        .child("eventData")
        .ok_or_else(|| missing("eventData: missing from <Event>"))?;
    let data_type = data
        .attr("type")
        .map(type_local_name)
        .ok_or_else(|| missing("eventData: has no xsi:type"))?;
    let mut envelope = EventEnvelopeOwned {
        event_type: EventType::SubscriptionTerminated,
        event_id,
        sequence_number,
        user_id,
        external_application_id,
        subscription_id,
        destination,
        target_id,
    };
    if data_type == "SubscriptionTerminatedEvent" {
        return Ok((envelope, None));
    }
    let kind = data_type
        .strip_suffix("Event")
        .and_then(|k| EventKind::ALL.into_iter().find(|kind| kind.as_str() == k))
        .ok_or_else(|| {
            invalid(format!(
                "eventData: type {} is not an event of the Provisioning package",
                shown(data_type)
            ))
        })?;
    envelope.event_type = EventType::Provisioning(kind);
    let field = |name: &str| data.child_text(name).map(str::to_owned);
    let error_code = data
        .child_text("errorCode")
        .map(|v| number::<u32>("eventData/errorCode", v))
        .transpose()?;
    let occurred_at = data
        .child_text("occurredAt")
        .ok_or_else(|| missing("eventData/occurredAt: missing from <eventData>"))?;
    let at = parse_iso_millis(occurred_at).ok_or_else(|| {
        invalid(format!(
            "eventData/occurredAt: {} is not an ISO 8601 UTC time (2026-11-24T10:15:00.123Z)",
            shown(occurred_at)
        ))
    })?;
    let event = ProvisioningEvent {
        seq: 0,
        kind,
        at,
        provisioning_id: String::new(),
        service_provider_id: field("serviceProviderId"),
        group_id: field("groupId"),
        user_id: field("userId"),
        subscriber_id: field("subscriberId"),
        status: field("status"),
        package: field("package"),
        organization_id: field("organizationId"),
        organization_name: field("organizationName"),
        error_code,
        reason: field("reason"),
    };
    Ok((envelope, Some(event)))
}

// ---------------------------------------------------------------- writing

/// One document as one chunk of a channel stream (also the body of an
/// HTTP-contact POST): the XML declaration, then the document, with no
/// trailing newline. An `Event` in the XSI namespace is written by
/// [`event_xml`], anything else by [`Element::to_xml`].
///
/// Byte for byte as the real trace: a line feed separates the
/// declaration from a `Channel` document (the first chunk, `b5` for a
/// 36-character channel id and expires 86400), nothing separates it from
/// an event or a `ChannelHeartBeat` (`61` = 97 bytes for the heartbeat).
pub fn to_chunk(doc: &Element) -> Bytes {
    let body = if is_event(doc) {
        event_xml(doc)
    } else {
        doc.to_xml()
    };
    let separator = if doc.name == "Channel" { "\n" } else { "" };
    let mut out = String::with_capacity(XML_DECLARATION.len() + separator.len() + body.len());
    out.push_str(XML_DECLARATION);
    out.push_str(separator);
    out.push_str(&body);
    Bytes::from(out)
}

/// An event document as XSI writes it (no declaration):
/// `<xsi:Event xmlns:xsi="http://schema.broadsoft.com/xsi"
/// xmlns:xsi1="http://www.w3.org/2001/XMLSchema-instance" xsi1:type="…">`,
/// every element of the XSI namespace `xsi:`-prefixed, every `type`
/// attribute written as `xsi1:type` (the tree keeps attributes by local
/// name; in an event the only one is the schema-instance type), a nil
/// element as `xsi1:nil="true"`. Elements of another namespace, or none,
/// are written unprefixed with a default namespace declaration where it
/// changes. Text and values are escaped as [`Element::to_xml`] escapes
/// them; parsing the result gives the same tree.
pub fn event_xml(doc: &Element) -> String {
    let mut out = String::new();
    write_prefixed(doc, &mut out, None, true);
    out
}

fn is_event(doc: &Element) -> bool {
    doc.name == "Event" && doc.is_xsi()
}

fn write_prefixed(el: &Element, out: &mut String, default_namespace: Option<&str>, root: bool) {
    let namespace = el.namespace.as_deref();
    let prefixed = namespace == Some(XSI_NAMESPACE);
    out.push('<');
    if prefixed {
        out.push_str("xsi:");
    }
    out.push_str(&el.name);
    if root {
        out.push_str(" xmlns:xsi=\"");
        out.push_str(XSI_NAMESPACE);
        out.push_str("\" xmlns:xsi1=\"");
        out.push_str(XSI_INSTANCE_NAMESPACE);
        out.push('"');
    }
    let mut inner_default = default_namespace;
    if !prefixed && namespace != default_namespace {
        out.push_str(" xmlns=\"");
        escape_into(out, namespace.unwrap_or(""), true);
        out.push('"');
        inner_default = namespace;
    }
    if el.nil {
        out.push_str(" xsi1:nil=\"true\"");
    }
    for (name, value) in &el.attributes {
        out.push(' ');
        if name == "type" {
            out.push_str("xsi1:");
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_into(out, value, true);
        out.push('"');
    }
    if el.text.is_empty() && el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    escape_into(out, &el.text, false);
    for child in &el.children {
        write_prefixed(child, out, inner_default, false);
    }
    out.push_str("</");
    if prefixed {
        out.push_str("xsi:");
    }
    out.push_str(&el.name);
    out.push('>');
}

fn envelope(env: &EventEnvelope<'_>, data: Element) -> Element {
    let mut children = vec![
        text("eventID", env.event_id),
        text("sequenceNumber", &env.sequence_number.to_string()),
        text("userId", env.user_id),
    ];
    push_some(
        &mut children,
        "externalApplicationId",
        env.external_application_id,
    );
    children.push(text("subscriptionId", env.subscription_id));
    children.push(match env.destination {
        EventDestination::Channel(id) => text("channelId", id),
        EventDestination::HttpContact(uri) => parent("httpContact", vec![text("uri", uri)]),
    });
    push_some(&mut children, "targetId", env.target_id);
    children.push(data);
    typed("Event", "SubscriptionEvent", children)
}

fn delivery_element(d: &SubscriptionDelivery) -> Element {
    match d {
        SubscriptionDelivery::Channel { channel_set_id } => text("channelSetId", channel_set_id),
        SubscriptionDelivery::HttpContact { uri } => parent("httpContact", vec![text("uri", uri)]),
    }
}

/// An element with `xsi1:type="xsi:{type_name}"`.
fn typed(name: &str, type_name: &str, children: Vec<Element>) -> Element {
    let mut el = parent(name, children);
    el.attributes
        .push(("type".into(), format!("xsi:{type_name}")));
    el
}

// ------------------------------------------------------------- reading

fn missing(detail: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::MissingParameter, detail)
}

fn invalid(detail: impl Into<String>) -> Refusal {
    Refusal::new(ErrorCode::InvalidParameterValue, detail)
}

/// A value quoted in a reason: Debug-escaped, at most 40 characters.
fn shown(v: &str) -> String {
    let mut s: String = v.chars().take(40).collect();
    if v.chars().count() > 40 {
        s.push('…');
    }
    format!("{s:?}")
}

/// The local part of a QName value (`xsi:SubscriptionEvent`).
fn type_local_name(v: &str) -> &str {
    v.rsplit(':').next().unwrap_or(v).trim()
}

fn expect_root(doc: &Element, root: &str) -> Result<(), Refusal> {
    if doc.name == root {
        Ok(())
    } else {
        let name: String = doc.name.chars().take(60).collect();
        Err(invalid(format!(
            "the root element is <{name}>, not <{root}>"
        )))
    }
}

/// The text of a required child: absent → 1001, nil or empty → 9017.
fn required<'a>(doc: &'a Element, parent_name: &str, name: &str) -> Result<&'a str, Refusal> {
    let Some(el) = doc.child(name) else {
        return Err(missing(format!("{name}: missing from <{parent_name}>")));
    };
    if el.nil {
        return Err(invalid(format!("{name}: is nil, a value is required")));
    }
    if el.text.is_empty() {
        return Err(invalid(format!("{name}: is empty, a value is required")));
    }
    Ok(&el.text)
}

/// A required identifier, 1 to [`MAX_ID_CHARS`] characters.
fn id_text(doc: &Element, parent_name: &str, name: &str) -> Result<String, Refusal> {
    bounded(name, required(doc, parent_name, name)?, MAX_ID_CHARS)
}

fn bounded(name: &str, value: &str, max: usize) -> Result<String, Refusal> {
    let count = value.chars().count();
    if count > max {
        return Err(invalid(format!(
            "{name}: {count} characters, more than {max}"
        )));
    }
    Ok(value.to_owned())
}

/// An optional text child: absent, nil or empty → `None`.
fn optional_text(doc: &Element, name: &str, max: usize) -> Result<Option<String>, Refusal> {
    doc.child_text(name)
        .map(|v| bounded(name, v, max))
        .transpose()
}

/// A whole number written with ASCII digits only.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, Refusal> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = value.parse() {
            return Ok(n);
        }
        return Err(invalid(format!("{name}: {} is too large", shown(value))));
    }
    Err(invalid(format!(
        "{name}: {} is not a whole number",
        shown(value)
    )))
}

fn optional_number(doc: &Element, name: &str) -> Result<Option<u32>, Refusal> {
    doc.child_text(name).map(|v| number(name, v)).transpose()
}

/// The required `expires`: whole seconds, more than 0.
fn expires_of(doc: &Element) -> Result<u64, Refusal> {
    let raw = required(doc, &doc.name, "expires")?;
    let seconds: u64 = number("expires", raw)?;
    if seconds == 0 {
        return Err(invalid("expires: 0, must be more than 0 seconds"));
    }
    Ok(seconds)
}

/// `httpContact/uri`, checked (see [`read_subscription`]).
fn contact_uri(contact: &Element) -> Result<String, Refusal> {
    let uri = required(contact, "httpContact", "uri")?;
    let uri = bounded("httpContact/uri", uri, MAX_URI_CHARS)?;
    let bad = |why: &str| invalid(format!("httpContact/uri: {} {why}", shown(&uri)));
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace"));
    }
    let rest = match uri.find("://") {
        Some(i) => {
            let scheme = &uri[..i];
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return Err(bad("is not an http:// or https:// URI"));
            }
            &uri[i + 3..]
        }
        None => {
            // `name:` that is not `host:port` is some other scheme
            // (`mailto:`, `ftp:`).
            if let Some((before, after)) = uri.split_once(':') {
                let port = after.split(['/', '?', '#']).next().unwrap_or_default();
                let scheme_like = before
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && before
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
                if scheme_like && !is_port {
                    return Err(bad("is not an http:// or https:// URI"));
                }
            }
            uri.as_str()
        }
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err(bad("has no host"));
    }
    Ok(uri)
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
