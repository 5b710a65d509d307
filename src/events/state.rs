//! The hub's bookkeeping, under one lock: the channels this node holds,
//! and per subscription what was matched, sent and acknowledged. Plain
//! data and rules, no I/O: the hub (`mod.rs`) reads the log, sends and
//! stores; this decides what goes where. Times are unix ms.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::domain::event::{EventSubscription, ProvisioningEvent};

/// One open channel (a streaming response on this node).
pub(super) struct Channel {
    pub(super) id: String,
    pub(super) set_id: String,
    pub(super) owner: String,
    pub(super) priority: u32,
    pub(super) weight: u32,
    pub(super) expires_at: i64,
    pub(super) last_heartbeat: i64,
    pub(super) sender: mpsc::Sender<Bytes>,
    /// Since when its queue has had no room while events waited.
    pub(super) full_since: Option<i64>,
}

/// An event sent and not acknowledged yet.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub(super) event: ProvisioningEvent,
    pub(super) sequence: u64,
    pub(super) sent_at: i64,
    pub(super) attempts: u32,
    /// The channel it went to (`None`: an HTTP contact): when that channel
    /// closes, it is due again at once.
    pub(super) channel: Option<String>,
}

/// `sent_at` of an event due again now.
pub(super) const DUE_NOW: i64 = i64::MIN / 2;

/// A subscription as this node delivers it.
pub(super) struct Live {
    pub(super) sub: EventSubscription,
    /// Last `sequenceNumber` given (numbers this node's sends).
    pub(super) sequence: u64,
    /// Highest log seq considered for this subscription (matched or not).
    pub(super) scanned: i64,
    /// Matched, not sent yet, in log order.
    pub(super) backlog: VecDeque<ProvisioningEvent>,
    /// The backlog was full: events after `scanned` are read again from
    /// the log (not from the tail) when there is room.
    pub(super) lagging: bool,
    /// Sent, waiting for their acknowledgement, by log seq.
    pub(super) in_flight: BTreeMap<i64, InFlight>,
    /// The cursor last written to the store.
    pub(super) stored_ack: i64,
    /// An HTTP-contact POST of this subscription is under way.
    pub(super) posting: bool,
}

impl Live {
    /// A subscription loaded from the store (resumes after its cursor) or
    /// just made (its cursor is the log's end).
    pub(super) fn new(sub: EventSubscription, lagging: bool) -> Live {
        let acked = sub.acked_seq;
        Live {
            sub,
            sequence: 0,
            scanned: acked,
            backlog: VecDeque::new(),
            lagging,
            in_flight: BTreeMap::new(),
            stored_ack: acked,
            posting: false,
        }
    }

    /// Everything at or below this is acknowledged or did not match: the
    /// cursor a restart resumes after.
    pub(super) fn acked(&self) -> i64 {
        let first_open = self
            .in_flight
            .keys()
            .next()
            .copied()
            .into_iter()
            .chain(self.backlog.front().map(|e| e.seq))
            .min();
        match first_open {
            Some(seq) => seq - 1,
            None => self.scanned,
        }
    }

    /// Whether `event` (of `partner`, its template's) is for this
    /// subscription: its partner's, and its target's.
    pub(super) fn wants(&self, event: &ProvisioningEvent, partner: Option<&str>) -> bool {
        partner == Some(self.sub.partner_id.as_str()) && self.sub.target.matches(event)
    }

    /// Offers one event read from the tail (in seq order). Returns whether
    /// it was queued.
    pub(super) fn offer(
        &mut self,
        event: &ProvisioningEvent,
        wanted: bool,
        backlog_cap: usize,
    ) -> bool {
        if event.seq <= self.scanned || self.lagging {
            return false;
        }
        if !wanted {
            self.scanned = event.seq;
            return false;
        }
        if self.backlog.len() >= backlog_cap {
            // From here on the log is the backlog.
            self.lagging = true;
            return false;
        }
        self.backlog.push_back(event.clone());
        self.scanned = event.seq;
        true
    }

    pub(super) fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    pub(super) fn channel_set(&self) -> Option<&str> {
        self.sub.delivery.channel_set_id()
    }
}

/// The `eventID` of a subscription's event: stable across resends and
/// restarts, and tells which subscription and event an acknowledgement is
/// for.
pub(super) fn event_id(subscription_id: &str, seq: i64) -> String {
    format!("{subscription_id}.{seq}")
}

/// `(subscription id, seq)` of an `eventID` this node made.
pub(super) fn parse_event_id(event_id: &str) -> Option<(&str, i64)> {
    let (sub, seq) = event_id.rsplit_once('.')?;
    Some((sub, seq.parse().ok()?))
}

/// The id of `owner`'s channel in set `set_id` that events go to: the best
/// (lowest) priority, then the highest weight, then the lowest id.
pub(super) fn chosen_channel(
    channels: &HashMap<String, Channel>,
    owner: &str,
    set_id: &str,
) -> Option<String> {
    channels
        .values()
        .filter(|c| c.owner == owner && c.set_id == set_id)
        .min_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.weight.cmp(&a.weight))
                .then(a.id.cmp(&b.id))
        })
        .map(|c| c.id.clone())
}

/// Everything the hub keeps in memory.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) channels: HashMap<String, Channel>,
    pub(super) subs: HashMap<String, Live>,
    /// `(owner, applicationId)` → the channel set its subscriptions use: a
    /// new set with the same application replaces the old one.
    pub(super) app_sets: HashMap<(String, String), String>,
}

impl Registry {
    pub(super) fn channels_of_owner(&self, owner: &str) -> usize {
        self.channels.values().filter(|c| c.owner == owner).count()
    }

    /// The channel of `owner`'s set `set_id` events go to.
    pub(super) fn channel_for(&self, owner: &str, set_id: &str) -> Option<&Channel> {
        chosen_channel(&self.channels, owner, set_id).and_then(|id| self.channels.get(&id))
    }

    /// Subscriptions bound to `owner`'s set `set_id` (or, for `None`, to
    /// the owner's HTTP contacts).
    pub(super) fn subscriptions_of_set(&self, owner: &str, set_id: Option<&str>) -> Vec<String> {
        self.subs
            .values()
            .filter(|l| l.sub.owner == owner && l.channel_set() == set_id)
            .map(|l| l.sub.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventDelivery, EventKind, EventTarget, EVENT_PACKAGE};

    fn event(seq: i64, user: &str) -> ProvisioningEvent {
        ProvisioningEvent {
            seq,
            service_provider_id: Some("sp".into()),
            group_id: Some("g".into()),
            user_id: Some(user.into()),
            ..ProvisioningEvent::bare(EventKind::SubscriberAccepted, 0, "t")
        }
    }

    fn live(acked: i64) -> Live {
        Live::new(
            EventSubscription {
                id: "s1".into(),
                owner: "ann@x".into(),
                partner_id: "p".into(),
                node: "n1".into(),
                target: EventTarget::User {
                    user_id: "ann@x".into(),
                },
                event_package: EVENT_PACKAGE.into(),
                delivery: EventDelivery::ChannelSet {
                    channel_set_id: "set".into(),
                },
                application_id: None,
                expires_at: i64::MAX,
                acked_seq: acked,
                created_at: 0,
            },
            false,
        )
    }

    #[test]
    fn the_cursor_stops_before_the_first_open_event() {
        let mut l = live(10);
        assert_eq!(l.acked(), 10);
        assert!(!l.offer(&event(9, "ann@x"), true, 10), "already past it");
        assert!(!l.offer(&event(11, "bob@x"), false, 10));
        assert_eq!(l.acked(), 11, "an event for others moves the cursor");
        assert!(l.offer(&event(12, "ann@x"), true, 10));
        assert!(l.offer(&event(13, "ann@x"), true, 10));
        assert_eq!(l.acked(), 11, "12 is not sent yet");
        let first = l.backlog.pop_front().map(|e| e.seq);
        assert_eq!(first, Some(12));
        l.in_flight.insert(
            12,
            InFlight {
                event: event(12, "ann@x"),
                sequence: 1,
                sent_at: 0,
                attempts: 1,
                channel: None,
            },
        );
        assert_eq!(l.acked(), 11, "12 sent, not acknowledged");
        l.in_flight.remove(&12);
        assert_eq!(l.acked(), 12, "13 still waits");
        l.backlog.clear();
        assert_eq!(l.acked(), 13);
    }

    #[test]
    fn a_full_backlog_turns_to_the_log() {
        let mut l = live(0);
        assert!(l.offer(&event(1, "ann@x"), true, 2));
        assert!(l.offer(&event(2, "ann@x"), true, 2));
        assert!(!l.offer(&event(3, "ann@x"), true, 2));
        assert!(l.lagging);
        assert_eq!(l.scanned, 2, "3 is to be read again from the log");
        assert!(
            !l.offer(&event(4, "bob@x"), false, 2),
            "nothing while lagging"
        );
        assert_eq!(l.scanned, 2);
    }

    #[test]
    fn event_ids_name_their_subscription_and_seq() {
        let id = event_id("3f2a-77.b", 42);
        assert_eq!(parse_event_id(&id), Some(("3f2a-77.b", 42)));
        assert_eq!(parse_event_id("nothing"), None);
        assert_eq!(parse_event_id("x.notanumber"), None);
    }
}
