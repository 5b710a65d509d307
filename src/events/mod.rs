//! Xsi-Events delivery of the provisioning event log: channels (streaming
//! responses this node holds), subscriptions (kept in the store, so they
//! outlive restarts), and the dispatcher that reads the log and sends each
//! subscription its events, one XML document per chunk, or POSTs them to
//! an HTTP contact.
//!
//! Delivery is at least once: an event stays in flight until its
//! `eventresponse` (or the contact's 2xx) and is sent again, with the same
//! `eventID`, after `ack_timeout_secs`; a subscription's cursor in the
//! store only passes what was acknowledged, so a restart sends the rest
//! again. Memory is bounded: a channel's queue (a client reading slower
//! than events come is closed), a subscription's backlog (beyond it the
//! log is read again), and events in flight per subscription.
//!
//! The XSI face (`http::xsi`) authenticates callers and calls the methods
//! here with the caller as an [`Owner`]; nothing here knows HTTP.

mod dispatch;
mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::config::XsiEventsConfig;
use crate::domain::event::{EventDelivery, EventSubscription, EventTarget, EVENT_PACKAGE};
use crate::domain::now_millis;
use crate::domain::{ErrorCode, Refusal};
use crate::store::{SharedStore, StoreError};
use crate::xsi::events::{self as wire, ChannelRequest, ChannelView, EventDestination};

use state::{Channel, Live, Registry};

/// Events sent and not acknowledged, per subscription, before it waits.
const MAX_IN_FLIGHT: usize = 64;

/// Who acts: a subscriber (its user id) or a partner admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner of channels and subscriptions: the user id (lower case),
    /// or `partner:{id}`.
    pub key: String,
    /// Only this partner's events reach the owner.
    pub partner_id: String,
}

impl Owner {
    pub fn user(user_id: &str, partner_id: &str) -> Owner {
        Owner {
            key: user_id.to_ascii_lowercase(),
            partner_id: partner_id.to_string(),
        }
    }

    pub fn partner_admin(partner_id: &str) -> Owner {
        Owner {
            key: format!("partner:{partner_id}"),
            partner_id: partner_id.to_string(),
        }
    }

    pub fn is_partner_admin(&self) -> bool {
        self.key.starts_with("partner:")
    }
}

/// A channel just opened: its id, its `expires`, and the chunks to stream.
pub struct OpenChannel {
    pub channel_id: String,
    pub expires: u64,
    pub chunks: mpsc::Receiver<Bytes>,
}

/// A subscription as its owner reads it back.
pub struct SubscriptionInfo {
    pub view: wire::SubscriptionView,
}

/// Counts for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubCounts {
    pub channels: usize,
    pub subscriptions: usize,
    pub in_flight: usize,
    pub backlog: usize,
}

pub struct EventHub {
    config: XsiEventsConfig,
    node_id: String,
    store: SharedStore,
    registry: Mutex<Registry>,
    /// Provisioning id → partner id (templates never change partner).
    partners: Mutex<HashMap<String, String>>,
    wake: Arc<Notify>,
    contact_tls: Arc<rustls::ClientConfig>,
    closed: AtomicBool,
    /// When this hub was made: the run loop loads the subscriptions this
    /// node made before (a previous process's). Those made since are in
    /// memory already, and one ended meanwhile must not come back.
    started_at: i64,
}

fn storage(e: StoreError) -> Refusal {
    Refusal::new(ErrorCode::StorageUnavailable, e.to_string())
}

fn limit(why: String) -> Refusal {
    Refusal::new(ErrorCode::XsiEventLimit, why)
}

fn no_channel(id: &str) -> Refusal {
    Refusal::new(
        ErrorCode::NotFound,
        format!("no channel '{}' of yours on this server", clip(id)),
    )
}

fn no_subscription(id: &str) -> Refusal {
    Refusal::new(
        ErrorCode::NotFound,
        format!("no subscription '{}' of yours", clip(id)),
    )
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

impl EventHub {
    /// `wake`: signalled when new events may be in the log (the use
    /// cases' writes on this node).
    pub fn new(
        config: XsiEventsConfig,
        node_id: String,
        store: SharedStore,
        wake: Arc<Notify>,
        contact_tls: Arc<rustls::ClientConfig>,
    ) -> Arc<EventHub> {
        Arc::new(EventHub {
            config,
            node_id,
            store,
            registry: Mutex::new(Registry::default()),
            partners: Mutex::new(HashMap::new()),
            wake,
            contact_tls,
            closed: AtomicBool::new(false),
            started_at: now_millis(),
        })
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves plain data: go on with it.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn open(&self) -> Result<(), Refusal> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Refusal::bare(ErrorCode::ShuttingDown));
        }
        Ok(())
    }

    pub fn counts(&self) -> HubCounts {
        let r = self.registry();
        HubCounts {
            channels: r.channels.len(),
            subscriptions: r.subs.len(),
            in_flight: r.subs.values().map(|l| l.in_flight.len()).sum(),
            backlog: r.subs.values().map(|l| l.backlog.len()).sum(),
        }
    }

    // ---- channels

    /// Opens a channel of `owner`'s set `req.channel_set_id`; its first
    /// chunk (the `<Channel>` document) is already queued.
    pub fn add_channel(&self, owner: &Owner, req: ChannelRequest) -> Result<OpenChannel, Refusal> {
        self.open()?;
        let now = now_millis();
        let expires = req.expires.min(self.config.channel_max_expires_secs);
        let mut r = self.registry();
        if r.channels.len() >= self.config.max_channels {
            metrics::counter!("bwgate_xsi_channels_refused_total", "reason" => "total")
                .increment(1);
            return Err(limit(format!(
                "this server holds its most channels ({})",
                self.config.max_channels
            )));
        }
        if r.channels_of_owner(&owner.key) >= self.config.max_channels_per_owner {
            metrics::counter!("bwgate_xsi_channels_refused_total", "reason" => "owner")
                .increment(1);
            return Err(limit(format!(
                "you hold the most channels one user may ({})",
                self.config.max_channels_per_owner
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (sender, chunks) = mpsc::channel(self.config.channel_queue_len);
        // The queue is empty: the first chunk always fits.
        let _ = sender.try_send(wire::to_chunk(&wire::channel(&id, expires)));
        r.channels.insert(
            id.clone(),
            Channel {
                id: id.clone(),
                set_id: req.channel_set_id,
                owner: owner.key.clone(),
                priority: req.priority,
                weight: req.weight,
                expires_at: now.saturating_add(secs_to_ms(expires)),
                last_heartbeat: now,
                sender,
                full_since: None,
            },
        );
        metrics::gauge!("bwgate_xsi_channels").set(r.channels.len() as f64);
        drop(r);
        // Its set's subscriptions may have events waiting.
        self.wake.notify_one();
        Ok(OpenChannel {
            channel_id: id,
            expires,
            chunks,
        })
    }

    /// The client is alive: a `<ChannelHeartBeat>` chunk answers on the
    /// stream.
    pub fn heartbeat(&self, owner: &Owner, channel_id: &str) -> Result<(), Refusal> {
        let mut r = self.registry();
        let c = r
            .channels
            .get_mut(channel_id)
            .filter(|c| c.owner == owner.key)
            .ok_or_else(|| no_channel(channel_id))?;
        c.last_heartbeat = now_millis();
        let beat = wire::to_chunk(&wire::channel_heartbeat());
        if c.sender.try_send(beat).is_err() {
            // Full (the client does not read) or gone: closed either way.
            dispatch::close_channel(&mut r, channel_id, "slow_consumer");
            return Err(no_channel(channel_id));
        }
        Ok(())
    }

    /// A new `expires` for the channel (cut to the maximum); returns it.
    pub fn refresh_channel(
        &self,
        owner: &Owner,
        channel_id: &str,
        expires: u64,
    ) -> Result<u64, Refusal> {
        let expires = expires.min(self.config.channel_max_expires_secs);
        let mut r = self.registry();
        let c = r
            .channels
            .get_mut(channel_id)
            .filter(|c| c.owner == owner.key)
            .ok_or_else(|| no_channel(channel_id))?;
        c.expires_at = now_millis().saturating_add(secs_to_ms(expires));
        Ok(expires)
    }

    /// Ends the channel: a `ChannelTerminatedEvent` is its last chunk.
    pub fn delete_channel(&self, owner: &Owner, channel_id: &str) -> Result<(), Refusal> {
        let mut r = self.registry();
        if r.channels
            .get(channel_id)
            .is_none_or(|c| c.owner != owner.key)
        {
            return Err(no_channel(channel_id));
        }
        dispatch::terminate_channel(&mut r, channel_id, "ChannelDeleted");
        Ok(())
    }

    /// The channels of `owner`'s set on this node.
    pub fn channel_set(&self, owner: &Owner, set_id: &str) -> Result<Vec<ChannelView>, Refusal> {
        let now = now_millis();
        let r = self.registry();
        let mut views: Vec<ChannelView> = r
            .channels
            .values()
            .filter(|c| c.owner == owner.key && c.set_id == set_id)
            .map(|c| ChannelView {
                channel_id: c.id.clone(),
                channel_set_id: c.set_id.clone(),
                priority: c.priority,
                weight: c.weight,
                expires: u64::try_from((c.expires_at - now).max(0) / 1000).unwrap_or(0),
            })
            .collect();
        if views.is_empty() {
            return Err(Refusal::new(
                ErrorCode::NotFound,
                format!("no channel set '{}' of yours on this server", clip(set_id)),
            ));
        }
        views.sort_by(|a, b| a.channel_id.cmp(&b.channel_id));
        Ok(views)
    }

    // ---- subscriptions

    /// Subscribes `owner` to `target`'s events (the caller checked the
    /// owner may see the target). Returns the id and `expires` given.
    pub async fn subscribe(
        &self,
        owner: &Owner,
        target: EventTarget,
        req: wire::SubscriptionRequest,
    ) -> Result<(String, u64), Refusal> {
        self.open()?;
        if !req.event.eq_ignore_ascii_case(EVENT_PACKAGE) {
            return Err(Refusal::new(
                ErrorCode::InvalidParameterValue,
                format!(
                    "event package '{}' is not served here: only '{EVENT_PACKAGE}'",
                    clip(&req.event)
                ),
            ));
        }
        let expires = req.expires.min(self.config.subscription_max_expires_secs);
        let delivery = EventDelivery::from(req.delivery);
        let set: Option<String> = delivery.channel_set_id().map(str::to_string);
        let set = set.as_deref();
        {
            let r = self.registry();
            let bound = r.subscriptions_of_set(&owner.key, set).len();
            if bound >= self.config.max_subscriptions_per_channel_set {
                return Err(limit(format!(
                    "the channel set holds the most subscriptions one set may ({})",
                    self.config.max_subscriptions_per_channel_set
                )));
            }
        }
        let now = now_millis();
        let from = self.store.last_event_seq().await.map_err(storage)?;
        let sub = EventSubscription {
            id: uuid::Uuid::new_v4().to_string(),
            owner: owner.key.clone(),
            partner_id: owner.partner_id.clone(),
            node: self.node_id.clone(),
            target,
            event_package: EVENT_PACKAGE.to_string(),
            delivery,
            application_id: req.application_id,
            expires_at: now.saturating_add(secs_to_ms(expires)),
            acked_seq: from,
            created_at: now,
        };
        self.store
            .put_event_subscription(&sub)
            .await
            .map_err(storage)?;
        let replaced = {
            let mut r = self.registry();
            let replaced = match (&sub.application_id, set) {
                (Some(app), Some(set)) => {
                    let key = (owner.key.clone(), app.clone());
                    let old = r.app_sets.insert(key, set.to_string());
                    match old {
                        Some(old) if old != set => {
                            dispatch::terminate_set(&mut r, &owner.key, &old, "ChannelSetReplaced")
                        }
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            r.subs.insert(sub.id.clone(), Live::new(sub.clone(), false));
            metrics::gauge!("bwgate_xsi_subscriptions").set(r.subs.len() as f64);
            replaced
        };
        for id in replaced {
            // Gone from memory already; the store follows.
            let _ = self.store.delete_event_subscription(&id).await;
        }
        tracing::info!(subscription_id = %sub.id, owner = %owner.key, target = ?sub.target, "xsi-events subscription added");
        Ok((sub.id, expires))
    }

    fn owned(&self, owner: &Owner, id: &str) -> Result<EventSubscription, Refusal> {
        let r = self.registry();
        r.subs
            .get(id)
            .filter(|l| l.sub.owner == owner.key)
            .map(|l| l.sub.clone())
            .ok_or_else(|| no_subscription(id))
    }

    pub fn subscription(&self, owner: &Owner, id: &str) -> Result<SubscriptionInfo, Refusal> {
        let sub = self.owned(owner, id)?;
        let expires = u64::try_from((sub.expires_at - now_millis()).max(0) / 1000).unwrap_or(0);
        Ok(SubscriptionInfo {
            view: wire::SubscriptionView {
                subscription_id: sub.id.clone(),
                target_id: sub.target.target_id().map(str::to_string),
                event: sub.event_package.clone(),
                expires,
                delivery: wire::SubscriptionDelivery::from(sub.delivery.clone()),
                application_id: sub.application_id.clone(),
            },
        })
    }

    /// A new `expires` (cut to the maximum); returns it.
    pub async fn refresh_subscription(
        &self,
        owner: &Owner,
        id: &str,
        expires: u64,
    ) -> Result<u64, Refusal> {
        let mut sub = self.owned(owner, id)?;
        let expires = expires.min(self.config.subscription_max_expires_secs);
        sub.expires_at = now_millis().saturating_add(secs_to_ms(expires));
        self.store
            .put_event_subscription(&sub)
            .await
            .map_err(storage)?;
        if let Some(l) = self.registry().subs.get_mut(id) {
            l.sub.expires_at = sub.expires_at;
        }
        Ok(expires)
    }

    /// Ends the subscription (a `SubscriptionTerminatedEvent` goes to its
    /// channel, if one is open here).
    pub async fn unsubscribe(&self, owner: &Owner, id: &str) -> Result<(), Refusal> {
        self.owned(owner, id)?;
        self.store
            .delete_event_subscription(id)
            .await
            .map_err(storage)?;
        let mut r = self.registry();
        dispatch::end_subscription(&mut r, id);
        metrics::gauge!("bwgate_xsi_subscriptions").set(r.subs.len() as f64);
        Ok(())
    }

    /// An `eventresponse`: a 2xx `statusCode` acknowledges the event;
    /// another leaves it to be sent again.
    pub fn event_response(&self, owner: &Owner, resp: &wire::EventResponse) -> Result<(), Refusal> {
        let unknown = || {
            Refusal::new(
                ErrorCode::NotFound,
                format!(
                    "no event '{}' of yours waits for a response",
                    clip(&resp.event_id)
                ),
            )
        };
        let (sub_id, seq) = state::parse_event_id(&resp.event_id).ok_or_else(unknown)?;
        if seq == 0 {
            // A SubscriptionTerminatedEvent's: its subscription is gone,
            // and nothing waits for the answer.
            return Ok(());
        }
        let mut r = self.registry();
        let live = r
            .subs
            .get_mut(sub_id)
            .filter(|l| l.sub.owner == owner.key)
            .ok_or_else(unknown)?;
        if (200..300).contains(&resp.status_code) {
            if live.in_flight.remove(&seq).is_some() {
                metrics::counter!("bwgate_xsi_events_acknowledged_total").increment(1);
            }
            // An event acknowledged twice, or after it was given up: fine.
        } else if let Some(f) = live.in_flight.get_mut(&seq) {
            // Sent again at the next pass.
            f.sent_at = state::DUE_NOW;
        }
        drop(r);
        self.wake.notify_one();
        Ok(())
    }

    /// Stops taking channels and subscriptions and ends every stream
    /// (shutdown: the connections can then close).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut r = self.registry();
        let ids: Vec<String> = r.channels.keys().cloned().collect();
        for id in ids {
            dispatch::close_channel(&mut r, &id, "shutdown");
        }
    }

    /// Where an event of `destination` goes, for `subscription`.
    fn envelope<'a>(
        live: &'a Live,
        event_id: &'a str,
        sequence: u64,
        destination: EventDestination<'a>,
    ) -> wire::EventEnvelope<'a> {
        wire::EventEnvelope {
            event_id,
            sequence_number: sequence,
            user_id: live.sub.owner.as_str(),
            external_application_id: live.sub.application_id.as_deref(),
            subscription_id: live.sub.id.as_str(),
            destination,
            target_id: live.sub.target.target_id(),
        }
    }
}

#[cfg(test)]
mod tests;
