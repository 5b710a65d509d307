//! Provisioning events: what Xsi-Events subscribers of bwgate's own
//! `Provisioning` event package are told. The use cases append one to the
//! durable event log in the same transaction as the change it reports, so
//! an event exists exactly when its change committed; delivery reads the
//! log (see `crate::events`).

use serde::{Deserialize, Serialize};

/// What happened (the `eventData` type, `xsi:<Kind>Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A new subscriber was accepted (its first status says which flow).
    SubscriberAccepted,
    /// A subscriber now waits for its user (email input, validation or
    /// consent to move an account).
    SubscriberPending,
    /// The license core applied the subscriber's provisioning.
    SubscriberProvisioned,
    /// Provisioning failed; `error_code` and `reason` say why.
    SubscriberFailed,
    /// The subscriber was removed (the service was unassigned).
    SubscriberRemoved,
    /// The enterprise now maps to an organization (new or existing).
    OrganizationAttached,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::SubscriberAccepted,
        EventKind::SubscriberPending,
        EventKind::SubscriberProvisioned,
        EventKind::SubscriberFailed,
        EventKind::SubscriberRemoved,
        EventKind::OrganizationAttached,
    ];

    /// The `eventData` type's name without the `Event` suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SubscriberAccepted => "SubscriberAccepted",
            EventKind::SubscriberPending => "SubscriberPending",
            EventKind::SubscriberProvisioned => "SubscriberProvisioned",
            EventKind::SubscriberFailed => "SubscriberFailed",
            EventKind::SubscriberRemoved => "SubscriberRemoved",
            EventKind::OrganizationAttached => "OrganizationAttached",
        }
    }
}

/// The event package name a subscription asks for (`<event>`).
pub const EVENT_PACKAGE: &str = "Provisioning";

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningEvent {
    /// Position in the log (0 until stored); increases with commit order
    /// on SQLite, with allocation order on PostgreSQL (see the tailer).
    #[serde(default)]
    pub seq: i64,
    pub kind: EventKind,
    /// Unix milliseconds of the change.
    pub at: i64,
    /// The template the subscriber or enterprise came through (its partner
    /// scopes who may see the event).
    pub provisioning_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The BroadWorks user id (also on `SubscriberRemoved`, although the
    /// subscriber no longer holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
    /// The subscriber's status after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ProvisioningEvent {
    /// An event of `kind` at `at` through `provisioning_id`, nothing else
    /// set yet (not stored: `seq` 0).
    pub fn bare(kind: EventKind, at: i64, provisioning_id: impl Into<String>) -> ProvisioningEvent {
        ProvisioningEvent {
            seq: 0,
            kind,
            at,
            provisioning_id: provisioning_id.into(),
            service_provider_id: None,
            group_id: None,
            user_id: None,
            subscriber_id: None,
            status: None,
            package: None,
            organization_id: None,
            organization_name: None,
            error_code: None,
            reason: None,
        }
    }
}

/// What a subscription watches (the XSI subscription target).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventTarget {
    /// One user's events (`/user/{userId}`).
    User { user_id: String },
    /// Every user of a service provider or enterprise
    /// (`/enterprise/{id}`, `/serviceprovider/{id}`).
    ServiceProvider { service_provider_id: String },
    /// Every user of one group (`…/{id}/group/{groupId}`).
    Group {
        service_provider_id: String,
        group_id: String,
    },
    /// Everything the subscriber may see (`/system`).
    System,
}

impl EventTarget {
    /// The XSI `targetId`: the user id, the service provider id, the
    /// group id, or nothing for the system.
    pub fn target_id(&self) -> Option<&str> {
        match self {
            EventTarget::User { user_id } => Some(user_id),
            EventTarget::ServiceProvider {
                service_provider_id,
            } => Some(service_provider_id),
            EventTarget::Group { group_id, .. } => Some(group_id),
            EventTarget::System => None,
        }
    }

    /// Whether `event` concerns this target. User ids compare without
    /// case (BroadWorks user ids are case-insensitive).
    pub fn matches(&self, event: &ProvisioningEvent) -> bool {
        match self {
            EventTarget::User { user_id } => event
                .user_id
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(user_id)),
            EventTarget::ServiceProvider {
                service_provider_id,
            } => event.service_provider_id.as_deref() == Some(service_provider_id),
            EventTarget::Group {
                service_provider_id,
                group_id,
            } => {
                event.service_provider_id.as_deref() == Some(service_provider_id)
                    && event.group_id.as_deref() == Some(group_id)
            }
            EventTarget::System => true,
        }
    }
}

/// Where a subscription's events go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EventDelivery {
    /// The streaming channels of a channel set (on whichever node holds
    /// them).
    ChannelSet { channel_set_id: String },
    /// POSTed to this URI (`http://` or `https://`).
    HttpContact { uri: String },
}

impl EventDelivery {
    /// The channel set, for channel delivery.
    pub fn channel_set_id(&self) -> Option<&str> {
        match self {
            EventDelivery::ChannelSet { channel_set_id } => Some(channel_set_id),
            EventDelivery::HttpContact { .. } => None,
        }
    }
}

/// A subscription to the `Provisioning` package, as the store keeps it
/// (it outlives channels and restarts; channels do not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscription {
    /// `subscriptionId` (a UUID).
    pub id: String,
    /// Who made it: the BroadWorks user id of the caller (a subscriber),
    /// or `partner:{id}` for a partner admin.
    pub owner: String,
    /// The owner's partner: only events of this partner's templates match.
    pub partner_id: String,
    /// The node (`server.node_id`) that delivers it: the one it was made
    /// on (channels are per node; an HTTP contact is called by one node).
    #[serde(default)]
    pub node: String,
    pub target: EventTarget,
    /// The `<event>` package (always [`EVENT_PACKAGE`] today).
    pub event_package: String,
    pub delivery: EventDelivery,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// Unix ms after which it ends (a refresh moves it).
    pub expires_at: i64,
    /// Every matching event with `seq <= acked_seq` was acknowledged (or
    /// given up): after a restart delivery resumes after it.
    pub acked_seq: i64,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, sp: &str, group: &str) -> ProvisioningEvent {
        ProvisioningEvent {
            seq: 1,
            kind: EventKind::SubscriberAccepted,
            at: 0,
            provisioning_id: "t".into(),
            service_provider_id: Some(sp.into()),
            group_id: Some(group.into()),
            user_id: Some(user.into()),
            subscriber_id: Some("s".into()),
            status: Some("provisioning".into()),
            package: None,
            organization_id: None,
            organization_name: None,
            error_code: None,
            reason: None,
        }
    }

    #[test]
    fn targets_match_their_own_users_groups_and_providers_only() {
        let e = event("Ann@Acme.example", "sp1", "g1");
        let user = |u: &str| EventTarget::User { user_id: u.into() };
        assert!(user("ann@acme.example").matches(&e));
        assert!(!user("bob@acme.example").matches(&e));
        let sp = |s: &str| EventTarget::ServiceProvider {
            service_provider_id: s.into(),
        };
        assert!(sp("sp1").matches(&e));
        assert!(!sp("sp2").matches(&e));
        let group = |s: &str, g: &str| EventTarget::Group {
            service_provider_id: s.into(),
            group_id: g.into(),
        };
        assert!(group("sp1", "g1").matches(&e));
        assert!(!group("sp1", "g2").matches(&e));
        assert!(!group("sp2", "g1").matches(&e));
        assert!(EventTarget::System.matches(&e));
        // An organization event has no user: only provider-wide targets.
        let mut org = e.clone();
        org.user_id = None;
        org.kind = EventKind::OrganizationAttached;
        assert!(!user("ann@acme.example").matches(&org));
        assert!(sp("sp1").matches(&org));
    }

    #[test]
    fn events_round_trip_through_their_stored_json() {
        let e = event("ann@acme.example", "sp1", "g1");
        let json = serde_json::to_string(&e).unwrap_or_default();
        let back: ProvisioningEvent =
            serde_json::from_str(&json).unwrap_or_else(|_| event("", "", ""));
        assert_eq!(back, e);
        assert!(!json.contains("errorCode"), "absent fields are not written");
    }
}
