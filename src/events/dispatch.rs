//! The dispatcher: one task per node that reads the event log, hands
//! each new event to the subscriptions that want it, sends what they may
//! send, sends again what was not acknowledged in time, ends what expired,
//! writes cursors back and prunes old events.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::state::{chosen_channel, event_id, InFlight, Live, Registry, DUE_NOW};
use super::{EventHub, MAX_IN_FLIGHT};
use crate::domain::event::{EventDelivery, ProvisioningEvent};
use crate::domain::now_millis;
use crate::xsi::events::{self as wire, EventDestination};

/// Events read from the log in one query.
const READ_BATCH: usize = 500;
/// Queries of new events in one pass, at most (the rest next pass).
const READS_PER_PASS: usize = 20;
/// How long a hole in the log's seqs is waited for (PostgreSQL: a lower
/// seq can commit after a higher one) before it is passed over.
const GAP_WAIT_MS: i64 = 5_000;
/// Cursors are written back at most this often.
const PERSIST_EVERY_MS: i64 = 1_000;
/// Old events are pruned at most this often.
const PRUNE_EVERY_MS: i64 = 60_000;

/// Where the dispatcher is in the log.
#[derive(Debug, Default)]
struct Tail {
    /// Every event at or below it was handed out (or passed over).
    pos: i64,
    /// Events above `pos` handed out already (after a hole).
    seen: BTreeSet<i64>,
    /// Since when the hole at `pos + 1` has been waited for.
    gap_since: Option<i64>,
}

impl Tail {
    /// Keeps the events not handed out yet and moves `pos` over what is
    /// contiguous (or over a hole waited for long enough).
    fn take(&mut self, events: Vec<ProvisioningEvent>, now: i64) -> Vec<ProvisioningEvent> {
        let fresh: Vec<ProvisioningEvent> = events
            .into_iter()
            .filter(|e| e.seq > self.pos && self.seen.insert(e.seq))
            .collect();
        self.advance(now);
        fresh
    }

    fn advance(&mut self, now: i64) {
        loop {
            while self.seen.remove(&(self.pos + 1)) {
                self.pos += 1;
            }
            let Some(&next) = self.seen.first() else {
                self.gap_since = None;
                return;
            };
            match self.gap_since {
                None => {
                    self.gap_since = Some(now);
                    return;
                }
                Some(since) if now - since >= GAP_WAIT_MS => {
                    // A seq taken by a transaction that rolled back.
                    self.pos = next - 1;
                    self.gap_since = None;
                }
                Some(_) => return,
            }
        }
    }

    /// The highest seq read (handed out or not).
    fn read_to(&self) -> i64 {
        self.seen.last().copied().unwrap_or(self.pos).max(self.pos)
    }
}

/// A POST to an HTTP contact, made outside the lock.
struct ContactSend {
    subscription_id: String,
    seq: i64,
    uri: String,
    body: Bytes,
}

pub(super) fn close_channel(r: &mut Registry, channel_id: &str, reason: &'static str) {
    if r.channels.remove(channel_id).is_some() {
        // What it was sent and did not acknowledge goes to the next channel
        // of its set at once (the client may never have read it).
        for live in r.subs.values_mut() {
            for f in live.in_flight.values_mut() {
                if f.channel.as_deref() == Some(channel_id) {
                    f.sent_at = DUE_NOW;
                }
            }
        }
        // Dropping the sender ends the stream once its queue is read.
        metrics::counter!("bwgate_xsi_channels_closed_total", "reason" => reason).increment(1);
        metrics::gauge!("bwgate_xsi_channels").set(r.channels.len() as f64);
        tracing::info!(channel_id, reason, "xsi-events channel closed");
    }
}

/// Sends `ChannelTerminatedEvent` (when the queue has room) and closes.
pub(super) fn terminate_channel(r: &mut Registry, channel_id: &str, reason: &'static str) {
    if let Some(c) = r.channels.get(channel_id) {
        let _ = c.sender.try_send(wire::to_chunk(&wire::channel_terminated(
            channel_id, reason,
        )));
    }
    close_channel(r, channel_id, reason);
}

/// Sends the subscription a `SubscriptionTerminatedEvent` through its
/// channel, if one is open here, and forgets it.
pub(super) fn end_subscription(r: &mut Registry, subscription_id: &str) {
    let Some(mut live) = r.subs.remove(subscription_id) else {
        return;
    };
    if let Some(set) = live.channel_set().map(str::to_string) {
        if let Some(c) = r.channel_for(&live.sub.owner, &set) {
            let sequence = live.next_sequence();
            let id = event_id(&live.sub.id, 0);
            let env = EventHub::envelope(&live, &id, sequence, EventDestination::Channel(&c.id));
            let _ = c
                .sender
                .try_send(wire::to_chunk(&wire::subscription_terminated(&env)));
        }
    }
    tracing::info!(subscription_id, "xsi-events subscription ended");
}

/// Ends `owner`'s channel set: its subscriptions, then its channels.
/// Returns the ended subscriptions' ids (to delete from the store).
pub(super) fn terminate_set(
    r: &mut Registry,
    owner: &str,
    set_id: &str,
    reason: &'static str,
) -> Vec<String> {
    let subs = r.subscriptions_of_set(owner, Some(set_id));
    for id in &subs {
        end_subscription(r, id);
    }
    let channels: Vec<String> = r
        .channels
        .values()
        .filter(|c| c.owner == owner && c.set_id == set_id)
        .map(|c| c.id.clone())
        .collect();
    for id in channels {
        terminate_channel(r, &id, reason);
    }
    subs
}

impl EventHub {
    /// Runs until `shutdown`; then ends every stream and writes the
    /// cursors back.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tail = Tail::default();
        match self.load().await {
            Ok(pos) => tail.pos = pos,
            Err(e) => {
                tracing::error!(error = %e, "xsi-events: cannot read subscriptions; they start empty")
            }
        }
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let mut persisted_at = 0;
        let mut pruned_at = now_millis();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            if *shutdown.borrow() {
                break;
            }
            let now = now_millis();
            if let Err(e) = self.pass(&mut tail, now).await {
                tracing::warn!(error = %e, "xsi-events pass failed; trying again");
            }
            if now - persisted_at >= PERSIST_EVERY_MS {
                self.persist_cursors().await;
                persisted_at = now;
            }
            if now - pruned_at >= PRUNE_EVERY_MS {
                self.prune(tail.pos, now).await;
                pruned_at = now;
            }
        }
        self.close();
        self.persist_cursors().await;
    }

    /// This node's subscriptions from the store (each resumes after its
    /// cursor, read from the log); returns the log's end.
    async fn load(&self) -> Result<i64, crate::store::StoreError> {
        let subs = self.store.event_subscriptions().await?;
        let end = self.store.last_event_seq().await?;
        let mut r = self.registry();
        // Subscriptions made since the hub started are the live path's: the
        // load may finish after one was made, or already ended (a replaced
        // channel set's, deleted from the store just after).
        let before_start = |s: &super::EventSubscription| s.created_at < self.started_at;
        for sub in subs
            .into_iter()
            .filter(|s| s.node == self.node_id && before_start(s))
        {
            if let (Some(app), EventDelivery::ChannelSet { channel_set_id }) =
                (&sub.application_id, &sub.delivery)
            {
                r.app_sets
                    .insert((sub.owner.clone(), app.clone()), channel_set_id.clone());
            }
            r.subs.insert(sub.id.clone(), Live::new(sub, true));
        }
        metrics::gauge!("bwgate_xsi_subscriptions").set(r.subs.len() as f64);
        tracing::info!(
            subscriptions = r.subs.len(),
            log_end = end,
            "xsi-events subscriptions loaded"
        );
        Ok(end)
    }

    async fn pass(
        self: &Arc<Self>,
        tail: &mut Tail,
        now: i64,
    ) -> Result<(), crate::store::StoreError> {
        for _ in 0..READS_PER_PASS {
            let read = self.store.events_after(tail.pos, READ_BATCH).await?;
            let full = read.len() == READ_BATCH;
            let fresh = tail.take(read, now);
            if !fresh.is_empty() {
                let partners = self.partners_of(&fresh).await?;
                self.hand_out(&fresh, &partners);
            }
            if !full {
                break;
            }
        }
        self.refill(tail.read_to()).await?;
        let (sends, expired) = self.deliver(now);
        for id in expired {
            if let Err(e) = self.store.delete_event_subscription(&id).await {
                tracing::warn!(subscription_id = %id, error = %e, "expired subscription stays in the store");
            }
        }
        for send in sends {
            self.spawn_contact(send);
        }
        Ok(())
    }

    fn partner_of(&self, provisioning_id: &str) -> Option<String> {
        let partners = self.partners.lock().unwrap_or_else(|p| p.into_inner());
        partners.get(provisioning_id).cloned()
    }

    /// The partner of each event (its template's), learnt from the store
    /// the first time a template is seen (templates never change partner).
    async fn partners_of(
        &self,
        events: &[ProvisioningEvent],
    ) -> Result<Vec<Option<String>>, crate::store::StoreError> {
        let unknown: HashSet<&str> = events
            .iter()
            .map(|e| e.provisioning_id.as_str())
            .filter(|p| self.partner_of(p).is_none())
            .collect();
        for pid in unknown {
            if let Some(t) = self.store.template(pid).await? {
                self.partners
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(pid.to_string(), t.partner_id);
            }
        }
        Ok(events
            .iter()
            .map(|e| self.partner_of(&e.provisioning_id))
            .collect())
    }

    fn hand_out(&self, events: &[ProvisioningEvent], partners: &[Option<String>]) {
        let cap = self.config.subscription_backlog;
        let mut r = self.registry();
        for live in r.subs.values_mut() {
            for (e, partner) in events.iter().zip(partners) {
                let wanted = live.wants(e, partner.as_deref());
                live.offer(e, wanted, cap);
            }
        }
    }

    /// Subscriptions whose backlog overflowed (or that resume after a
    /// restart) read their events from the log while they have room.
    async fn refill(&self, read_to: i64) -> Result<(), crate::store::StoreError> {
        let cap = self.config.subscription_backlog;
        let lagging: Vec<(String, i64, usize)> = {
            let r = self.registry();
            r.subs
                .values()
                .filter(|l| l.lagging && l.backlog.len() < cap)
                .map(|l| (l.sub.id.clone(), l.scanned, cap - l.backlog.len()))
                .collect()
        };
        for (id, scanned, room) in lagging {
            let read = self
                .store
                .events_after(scanned, room.min(READ_BATCH))
                .await?;
            let partners = self.partners_of(&read).await?;
            let mut r = self.registry();
            let Some(live) = r.subs.get_mut(&id) else {
                continue;
            };
            let mut last = scanned;
            let mut queued = 0;
            for (e, partner) in read.iter().zip(&partners) {
                if e.seq <= live.scanned {
                    continue;
                }
                // Only up to where the tail is: later ones come from it.
                if e.seq > read_to || queued == room {
                    break;
                }
                if live.wants(e, partner.as_deref()) {
                    live.backlog.push_back(e.clone());
                    queued += 1;
                }
                last = e.seq;
            }
            live.scanned = live.scanned.max(last);
            if live.scanned >= read_to || (read.len() < room.min(READ_BATCH) && last == scanned) {
                live.lagging = false;
                live.scanned = live.scanned.max(read_to);
            }
        }
        Ok(())
    }

    /// Sends what may be sent, sends again what waited too long, ends what
    /// expired. Returns the HTTP-contact POSTs to make and the expired
    /// subscriptions to delete from the store.
    fn deliver(&self, now: i64) -> (Vec<ContactSend>, Vec<String>) {
        let ack_timeout = super::secs_to_ms(self.config.ack_timeout_secs);
        let heartbeat_timeout = super::secs_to_ms(self.config.heartbeat_timeout_secs);
        let max_attempts = self.config.max_delivery_attempts;
        let mut r = self.registry();

        // Channels: expired, silent, or gone.
        let mut ended: Vec<(String, &'static str)> = Vec::new();
        for c in r.channels.values() {
            if c.sender.is_closed() {
                ended.push((c.id.clone(), "client_gone"));
            } else if c.expires_at <= now {
                ended.push((c.id.clone(), "Expired"));
            } else if now - c.last_heartbeat > heartbeat_timeout {
                ended.push((c.id.clone(), "HeartbeatTimeout"));
            }
        }
        for (id, reason) in ended {
            terminate_channel(&mut r, &id, reason);
        }

        let expired: Vec<String> = r
            .subs
            .values()
            .filter(|l| l.sub.expires_at <= now)
            .map(|l| l.sub.id.clone())
            .collect();
        for id in &expired {
            end_subscription(&mut r, id);
        }

        let mut sends = Vec::new();
        let mut slow: Vec<(String, &'static str)> = Vec::new();
        let Registry { channels, subs, .. } = &mut *r;
        for live in subs.values_mut() {
            give_up_old(live, max_attempts, now, ack_timeout);
            match live.sub.delivery.clone() {
                EventDelivery::ChannelSet { channel_set_id } => {
                    let chosen = chosen_channel(channels, &live.sub.owner, &channel_set_id);
                    let Some(channel) = chosen.and_then(|id| channels.get_mut(&id)) else {
                        continue;
                    };
                    // Again, what waited too long for its response, then
                    // what is new; never more than the queue has room for
                    // (one slot stays for heartbeats and terminations).
                    let mut due: Vec<i64> = live
                        .in_flight
                        .iter()
                        .filter(|(_, f)| f.sent_at + ack_timeout <= now)
                        .map(|(seq, _)| *seq)
                        .collect();
                    let waiting = !due.is_empty() || !live.backlog.is_empty();
                    let mut room = channel.sender.capacity().saturating_sub(1);
                    let mut gone = false;
                    due.truncate(room);
                    for seq in due {
                        let Some(f) = live.in_flight.get(&seq).cloned() else {
                            continue;
                        };
                        if send_event(live, channel, &f.event, f.sequence).is_err() {
                            gone = true;
                            break;
                        }
                        room -= 1;
                        if let Some(f) = live.in_flight.get_mut(&seq) {
                            f.sent_at = now;
                            f.attempts += 1;
                            f.channel = Some(channel.id.clone());
                        }
                        metrics::counter!("bwgate_xsi_events_resent_total").increment(1);
                    }
                    while !gone && room > 0 && live.in_flight.len() < MAX_IN_FLIGHT {
                        let Some(event) = live.backlog.pop_front() else {
                            break;
                        };
                        let sequence = live.next_sequence();
                        if send_event(live, channel, &event, sequence).is_err() {
                            live.backlog.push_front(event);
                            gone = true;
                            break;
                        }
                        room -= 1;
                        metrics::counter!("bwgate_xsi_events_sent_total", "via" => "channel")
                            .increment(1);
                        live.in_flight.insert(
                            event.seq,
                            InFlight {
                                event,
                                sequence,
                                sent_at: now,
                                attempts: 1,
                                channel: Some(channel.id.clone()),
                            },
                        );
                    }
                    // A client whose queue stays full while events wait
                    // does not read: after `ack_timeout` it is closed (its
                    // unacknowledged events go to another channel).
                    let no_room = channel.sender.capacity() <= 1;
                    match (waiting && no_room, channel.full_since) {
                        (false, _) => channel.full_since = None,
                        (true, None) => channel.full_since = Some(now),
                        (true, Some(since)) if now - since >= ack_timeout => {
                            slow.push((channel.id.clone(), "slow_consumer"));
                        }
                        (true, Some(_)) => {}
                    }
                    if gone {
                        slow.push((channel.id.clone(), "client_gone"));
                    }
                }
                EventDelivery::HttpContact { uri } => {
                    if live.posting {
                        continue;
                    }
                    // One at a time, in order: again what failed, else the
                    // next.
                    let retry = live
                        .in_flight
                        .iter()
                        .find(|(_, f)| f.sent_at + ack_timeout <= now)
                        .map(|(seq, f)| (*seq, f.clone()));
                    let (seq, sequence, event) = match retry {
                        Some((seq, f)) => {
                            if let Some(f) = live.in_flight.get_mut(&seq) {
                                f.sent_at = now;
                                f.attempts += 1;
                            }
                            metrics::counter!("bwgate_xsi_events_resent_total").increment(1);
                            (seq, f.sequence, f.event)
                        }
                        None if live.in_flight.is_empty() => {
                            let Some(event) = live.backlog.pop_front() else {
                                continue;
                            };
                            let sequence = live.next_sequence();
                            live.in_flight.insert(
                                event.seq,
                                InFlight {
                                    event: event.clone(),
                                    sequence,
                                    sent_at: now,
                                    attempts: 1,
                                    channel: None,
                                },
                            );
                            (event.seq, sequence, event)
                        }
                        None => continue,
                    };
                    let eid = event_id(&live.sub.id, seq);
                    let env = EventHub::envelope(
                        live,
                        &eid,
                        sequence,
                        EventDestination::HttpContact(&uri),
                    );
                    let body = wire::to_chunk(&wire::subscription_event(&env, &event));
                    live.posting = true;
                    sends.push(ContactSend {
                        subscription_id: live.sub.id.clone(),
                        seq,
                        uri: wire::http_contact_url(&uri),
                        body,
                    });
                }
            }
        }
        for (id, reason) in slow {
            close_channel(&mut r, &id, reason);
        }
        metrics::gauge!("bwgate_xsi_subscriptions").set(r.subs.len() as f64);
        (sends, expired)
    }

    fn spawn_contact(self: &Arc<Self>, send: ContactSend) {
        let hub = self.clone();
        let timeout = Duration::from_millis(self.config.contact_timeout_ms);
        tokio::spawn(async move {
            let post = crate::client::post_once(
                &send.uri,
                "application/xml; charset=UTF-8",
                send.body,
                hub.contact_tls.clone(),
            );
            let ok = match tokio::time::timeout(timeout, post).await {
                Ok(Ok(status)) if status.is_success() => true,
                Ok(Ok(status)) => {
                    tracing::info!(subscription_id = %send.subscription_id, %status, "http contact refused an event; sent again later");
                    false
                }
                Ok(Err(e)) => {
                    tracing::info!(subscription_id = %send.subscription_id, error = %e, "http contact unreachable; sent again later");
                    false
                }
                Err(_) => {
                    tracing::info!(subscription_id = %send.subscription_id, "http contact timed out; sent again later");
                    false
                }
            };
            let mut r = hub.registry();
            if let Some(live) = r.subs.get_mut(&send.subscription_id) {
                live.posting = false;
                if ok && live.in_flight.remove(&send.seq).is_some() {
                    metrics::counter!("bwgate_xsi_events_sent_total", "via" => "http_contact")
                        .increment(1);
                }
            }
            drop(r);
            if ok {
                hub.wake.notify_one();
            }
        });
    }

    /// Writes back the cursors that moved.
    async fn persist_cursors(&self) {
        let moved: Vec<(String, i64)> = {
            let r = self.registry();
            r.subs
                .values()
                .filter(|l| l.acked() > l.stored_ack)
                .map(|l| (l.sub.id.clone(), l.acked()))
                .collect()
        };
        for (id, acked) in moved {
            match self.store.advance_event_cursor(&id, acked).await {
                Ok(()) => {
                    if let Some(l) = self.registry().subs.get_mut(&id) {
                        l.stored_ack = l.stored_ack.max(acked);
                    }
                }
                Err(e) => {
                    tracing::warn!(subscription_id = %id, error = %e, "cursor not written; next pass")
                }
            }
        }
    }

    /// Deletes events past retention that no subscription (of any node)
    /// still needs.
    async fn prune(&self, tail_pos: i64, now: i64) {
        let keep_from = match self.store.event_subscriptions().await {
            Ok(subs) => subs.iter().map(|s| s.acked_seq).min().unwrap_or(tail_pos),
            Err(_) => return,
        };
        let before = now - super::secs_to_ms(self.config.retention_hours.saturating_mul(3600));
        match self
            .store
            .prune_events(before, keep_from.min(tail_pos))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old provisioning events pruned"),
            Err(e) => tracing::warn!(error = %e, "provisioning events not pruned"),
        }
    }
}

/// Queues one event on a channel (it has room: the caller checked).
fn send_event(
    live: &Live,
    channel: &super::state::Channel,
    event: &ProvisioningEvent,
    sequence: u64,
) -> Result<(), tokio::sync::mpsc::error::TrySendError<Bytes>> {
    let eid = event_id(&live.sub.id, event.seq);
    let env = EventHub::envelope(live, &eid, sequence, EventDestination::Channel(&channel.id));
    channel
        .sender
        .try_send(wire::to_chunk(&wire::subscription_event(&env, event)))
}

/// Events sent `max_attempts` times without a response are given up.
fn give_up_old(live: &mut Live, max_attempts: u32, now: i64, ack_timeout: i64) {
    let dead: Vec<i64> = live
        .in_flight
        .iter()
        .filter(|(_, f)| f.attempts >= max_attempts && f.sent_at + ack_timeout <= now)
        .map(|(seq, _)| *seq)
        .collect();
    for seq in dead {
        live.in_flight.remove(&seq);
        metrics::counter!("bwgate_xsi_events_given_up_total").increment(1);
        tracing::warn!(subscription_id = %live.sub.id, seq, max_attempts, "event never acknowledged; given up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::EventKind;

    fn ev(seq: i64) -> ProvisioningEvent {
        ProvisioningEvent {
            seq,
            ..ProvisioningEvent::bare(EventKind::SubscriberAccepted, 0, "t")
        }
    }

    fn seqs(events: &[ProvisioningEvent]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn the_tail_hands_each_event_out_once_and_waits_on_holes() {
        let mut t = Tail::default();
        assert_eq!(seqs(&t.take(vec![ev(1), ev(2), ev(4)], 0)), [1, 2, 4]);
        assert_eq!(t.pos, 2, "3 may still commit");
        // Read again from 2: 4 is not handed out twice; 3 now is.
        assert_eq!(seqs(&t.take(vec![ev(3), ev(4), ev(5)], 100)), [3, 5]);
        assert_eq!(t.pos, 5);
        // A hole that never fills is passed over after the wait.
        assert_eq!(seqs(&t.take(vec![ev(7)], 1_000)), [7]);
        assert_eq!(t.pos, 5);
        assert!(t.take(vec![ev(7)], 1_000 + GAP_WAIT_MS - 1).is_empty());
        assert_eq!(t.pos, 5);
        assert!(t.take(vec![ev(7)], 1_000 + GAP_WAIT_MS).is_empty());
        assert_eq!(t.pos, 7);
        assert_eq!(t.read_to(), 7);
    }
}
