//! The hub on a real SQLite store: the use cases write events, the
//! dispatcher hands them out; channels are read as the HTTP face would
//! stream them (their receivers).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Notify};

use super::*;
use crate::config::XsiEventsConfig;
use crate::domain::event::EventKind;
use crate::store::postgres::suite::PgFactory;
use crate::store::sqlite::suite::SqliteFactory;
use crate::store::suite::StoreFactory;
use crate::store::suite::{add, delete, fixture, template, Fixture};
use crate::xsi::events::{read_event, SubscriptionDelivery, SubscriptionRequest};

struct Running {
    hub: Arc<EventHub>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(fx: &Fixture, config: XsiEventsConfig) -> Running {
    let tls = Arc::new(crate::tls::client::service_client_config(None).expect("client tls"));
    let hub = EventHub::new(
        config,
        "n1".into(),
        fx.store.clone(),
        Arc::new(Notify::new()),
        tls,
    );
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(hub.clone().run(rx));
    Running { hub, stop, task }
}

fn fast() -> XsiEventsConfig {
    XsiEventsConfig {
        poll_interval_ms: 10,
        ..XsiEventsConfig::default()
    }
}

fn channel_req(set: &str) -> ChannelRequest {
    ChannelRequest {
        channel_set_id: set.into(),
        priority: 1,
        weight: 50,
        expires: 3600,
    }
}

fn sub_req(set: &str) -> SubscriptionRequest {
    SubscriptionRequest {
        event: "Provisioning".into(),
        expires: 3600,
        delivery: SubscriptionDelivery::Channel {
            channel_set_id: set.into(),
        },
        application_id: None,
    }
}

async fn next_chunk(rx: &mut mpsc::Receiver<Bytes>) -> Option<String> {
    let chunk = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .ok()??;
    Some(String::from_utf8_lossy(&chunk).into_owned())
}

async fn next_event(
    rx: &mut mpsc::Receiver<Bytes>,
) -> (crate::xsi::events::EventEnvelopeOwned, EventKind) {
    let chunk = next_chunk(rx).await.expect("an event chunk");
    let doc = crate::xsi::parse_str(&chunk, &Default::default()).expect("xml");
    let (env, event) = read_event(&doc).expect("event");
    let kind = event.map(|e| e.kind).expect("a provisioning event");
    (env, kind)
}

async fn a_service_provider_subscription_gets_its_events_on_its_channel(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let run = start(&fx, fast()).await;
    let owner = Owner::partner_admin("acme");
    let mut open = run
        .hub
        .add_channel(&owner, channel_req("set"))
        .expect("channel");
    assert!(next_chunk(&mut open.chunks)
        .await
        .unwrap()
        .contains("<Channel"));
    let target = EventTarget::ServiceProvider {
        service_provider_id: "SP1".into(),
    };
    run.hub
        .subscribe(&owner, target, sub_req("set"))
        .await
        .expect("subscribe");
    crate::store::suite::accept(
        &fx,
        &t,
        "T1",
        vec![add("a@x.example", "SP1", "G1", Some("a@x.example"))],
    )
    .await;
    crate::store::suite::accept(
        &fx,
        &t,
        "T2",
        vec![add("b@y.example", "SP2", "G1", Some("b@y.example"))],
    )
    .await;
    crate::store::suite::accept(&fx, &t, "T3", vec![delete("a@x.example")]).await;
    let (_, first) = next_event(&mut open.chunks).await;
    assert_eq!(first, EventKind::OrganizationAttached);
    let (_, second) = next_event(&mut open.chunks).await;
    assert_eq!(second, EventKind::SubscriberAccepted);
    let (_, third) = next_event(&mut open.chunks).await;
    assert_eq!(
        third,
        EventKind::SubscriberRemoved,
        "SP2's events are not SP1's"
    );
    let _ = run.stop.send(true);
    run.task.await.expect("hub ends");
    assert!(
        open.chunks.recv().await.is_none(),
        "the stream ends at shutdown"
    );
}

async fn a_client_that_does_not_read_is_closed_when_its_queue_is_full(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let run = start(
        &fx,
        XsiEventsConfig {
            channel_queue_len: 8,
            ack_timeout_secs: 1,
            ..fast()
        },
    )
    .await;
    let owner = Owner::partner_admin("acme");
    let open = run
        .hub
        .add_channel(&owner, channel_req("set"))
        .expect("channel");
    let target = EventTarget::System;
    run.hub
        .subscribe(&owner, target, sub_req("set"))
        .await
        .expect("subscribe");
    // Never read: 20 events do not fit in a queue of 8.
    for i in 0..20 {
        let user = format!("u{i}@x.example");
        crate::store::suite::accept(
            &fx,
            &t,
            &format!("T{i}"),
            vec![add(&user, "SP1", "G1", Some(&user))],
        )
        .await;
    }
    crate::testing::eventually("the slow channel closed", Duration::from_secs(5), || {
        let counts = run.hub.counts();
        async move {
            if counts.channels == 0 {
                Ok(())
            } else {
                Err(counts)
            }
        }
    })
    .await;
    let counts = run.hub.counts();
    assert_eq!(counts.subscriptions, 1, "the subscription stays");
    assert!(
        counts.backlog + counts.in_flight >= 20 - 8,
        "what did not fit waits for another channel: {counts:?}"
    );
    // A new channel of the set gets them: every event, none lost.
    let mut again = run
        .hub
        .add_channel(&owner, channel_req("set"))
        .expect("channel");
    next_chunk(&mut again.chunks).await;
    let mut users = std::collections::BTreeSet::new();
    while users.len() < 20 {
        let Some(chunk) = next_chunk(&mut again.chunks).await else {
            panic!(
                "got {} users: {users:?}; {:?}",
                users.len(),
                run.hub.counts()
            );
        };
        let doc = crate::xsi::parse_str(&chunk, &Default::default()).expect("xml");
        let (_, event) = read_event(&doc).expect("event");
        if let Some(u) = event.and_then(|e| e.user_id) {
            users.insert(u);
        }
    }
    drop(open);
    let _ = run.stop.send(true);
    let _ = run.task.await;
}

async fn limits_refuse_channels_and_subscriptions_beyond_them(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let run = start(
        &fx,
        XsiEventsConfig {
            max_channels_per_owner: 2,
            max_channels: 3,
            max_subscriptions_per_channel_set: 1,
            ..fast()
        },
    )
    .await;
    let ann = Owner::user("ann@x.example", "acme");
    let bob = Owner::user("bob@x.example", "acme");
    let _a1 = run.hub.add_channel(&ann, channel_req("s")).expect("1");
    let _a2 = run.hub.add_channel(&ann, channel_req("s")).expect("2");
    let over = run
        .hub
        .add_channel(&ann, channel_req("s"))
        .err()
        .expect("owner limit");
    assert_eq!(over.code, ErrorCode::XsiEventLimit);
    let _b1 = run.hub.add_channel(&bob, channel_req("t")).expect("3");
    let over = run
        .hub
        .add_channel(&bob, channel_req("t"))
        .err()
        .expect("node limit");
    assert_eq!(over.code, ErrorCode::XsiEventLimit);
    let user = EventTarget::User {
        user_id: "ann@x.example".into(),
    };
    run.hub
        .subscribe(&ann, user.clone(), sub_req("s"))
        .await
        .expect("first");
    let over = run
        .hub
        .subscribe(&ann, user, sub_req("s"))
        .await
        .expect_err("set limit");
    assert_eq!(over.code, ErrorCode::XsiEventLimit);
    assert_eq!(run.hub.counts().channels, 3);
    let _ = run.stop.send(true);
    let _ = run.task.await;
}

async fn a_new_channel_set_with_the_same_application_replaces_the_old_one(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let run = start(&fx, fast()).await;
    let owner = Owner::user("ann@x.example", "acme");
    let mut old = run
        .hub
        .add_channel(&owner, channel_req("old"))
        .expect("old channel");
    next_chunk(&mut old.chunks).await;
    let target = || EventTarget::User {
        user_id: "ann@x.example".into(),
    };
    let with_app = |set: &str| SubscriptionRequest {
        application_id: Some("ann-app".into()),
        ..sub_req(set)
    };
    let (first, _) = run
        .hub
        .subscribe(&owner, target(), with_app("old"))
        .await
        .expect("first");
    // Another application on the old set is not touched by ann-app.
    let other = SubscriptionRequest {
        application_id: Some("other-app".into()),
        ..sub_req("third")
    };
    let (kept, _) = run
        .hub
        .subscribe(&owner, target(), other)
        .await
        .expect("other");
    let (second, _) = run
        .hub
        .subscribe(&owner, target(), with_app("new"))
        .await
        .expect("second");

    // The old set ends: its subscription (SubscriptionTerminatedEvent),
    // then its channel (ChannelTerminatedEvent), then the stream.
    let terminated = next_chunk(&mut old.chunks)
        .await
        .expect("subscription terminated");
    assert!(
        terminated.contains("xsi:SubscriptionTerminatedEvent"),
        "{terminated}"
    );
    assert!(terminated.contains(&first), "{terminated}");
    let closed = next_chunk(&mut old.chunks)
        .await
        .expect("channel terminated");
    assert!(
        closed.contains("xsi:ChannelTerminatedEvent") && closed.contains("ChannelSetReplaced"),
        "{closed}"
    );
    assert!(old.chunks.recv().await.is_none());
    // Its acknowledgement (clients answer every event but
    // ChannelTerminated) is taken although the subscription is gone.
    let ack = crate::xsi::events::EventResponse {
        event_id: format!("{first}.0"),
        status_code: 200,
        reason: "OK".into(),
    };
    assert!(terminated.contains(&ack.event_id), "{terminated}");
    run.hub.event_response(&owner, &ack).expect("acknowledged");
    assert!(
        run.hub.subscription(&owner, &first).is_err(),
        "gone from memory"
    );
    assert!(run.hub.subscription(&owner, &second).is_ok());
    assert!(run.hub.subscription(&owner, &kept).is_ok());
    let stored: Vec<String> = fx
        .store
        .event_subscriptions()
        .await
        .expect("stored")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(
        !stored.contains(&first) && stored.contains(&second) && stored.contains(&kept),
        "{stored:?}"
    );
    let _ = run.stop.send(true);
    let _ = run.task.await;
}

async fn subscriptions_and_channels_end_at_their_expiry_unless_refreshed(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let run = start(
        &fx,
        XsiEventsConfig {
            // Requests ask for an hour; the server gives two seconds.
            subscription_max_expires_secs: 2,
            channel_max_expires_secs: 2,
            ..fast()
        },
    )
    .await;
    let owner = Owner::partner_admin("acme");
    let mut keep = run
        .hub
        .add_channel(&owner, channel_req("keep"))
        .expect("keep");
    let mut lapse = run
        .hub
        .add_channel(&owner, channel_req("lapse"))
        .expect("lapse");
    assert_eq!((keep.expires, lapse.expires), (2, 2), "cut to the maximum");
    next_chunk(&mut keep.chunks).await;
    next_chunk(&mut lapse.chunks).await;
    let (kept, expires) = run
        .hub
        .subscribe(&owner, EventTarget::System, sub_req("keep"))
        .await
        .expect("kept");
    assert_eq!(expires, 2);
    let (lapsed, _) = run
        .hub
        .subscribe(&owner, EventTarget::System, sub_req("keep"))
        .await
        .expect("lapsed");
    // Refreshed well within their time: the kept ones live on (still cut
    // to 2 s, so refreshed again and again).
    for _ in 0..9 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        run.hub
            .refresh_channel(&owner, &keep.channel_id, 3600)
            .expect("refresh channel");
        run.hub
            .refresh_subscription(&owner, &kept, 3600)
            .await
            .expect("refresh subscription");
    }
    // The lapsed subscription ended with a SubscriptionTerminatedEvent on
    // the kept channel; the lapsed channel with ChannelTerminatedEvent.
    let ended = next_chunk(&mut keep.chunks).await.expect("terminated");
    assert!(
        ended.contains("xsi:SubscriptionTerminatedEvent") && ended.contains(&lapsed),
        "{ended}"
    );
    let mut last = String::new();
    while let Some(chunk) = next_chunk(&mut lapse.chunks).await {
        last = chunk;
    }
    assert!(
        last.contains("xsi:ChannelTerminatedEvent") && last.contains("Expired"),
        "{last}"
    );
    assert!(run.hub.subscription(&owner, &kept).is_ok());
    assert!(run.hub.subscription(&owner, &lapsed).is_err());
    let stored: Vec<String> = fx
        .store
        .event_subscriptions()
        .await
        .expect("stored")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(stored, vec![kept.clone()], "the expired one left the store");
    assert_eq!(run.hub.counts().channels, 1);
    let _ = run.stop.send(true);
    let _ = run.task.await;
}

async fn a_negative_event_response_has_the_event_sent_again_at_once(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    let run = start(&fx, fast()).await;
    let owner = Owner::partner_admin("acme");
    let mut open = run
        .hub
        .add_channel(&owner, channel_req("set"))
        .expect("channel");
    next_chunk(&mut open.chunks).await;
    run.hub
        .subscribe(&owner, EventTarget::System, sub_req("set"))
        .await
        .expect("subscribe");
    crate::store::suite::accept(
        &fx,
        &t,
        "T1",
        vec![add("a@x.example", "SP1", "G1", Some("a@x.example"))],
    )
    .await;
    let (org, _) = next_event(&mut open.chunks).await;
    let (accepted, _) = next_event(&mut open.chunks).await;
    let respond = |event_id: &str, status_code: u16| crate::xsi::events::EventResponse {
        event_id: event_id.into(),
        status_code,
        reason: String::new(),
    };
    run.hub
        .event_response(&owner, &respond(&accepted.event_id, 200))
        .expect("ack");
    run.hub
        .event_response(&owner, &respond(&org.event_id, 500))
        .expect("nack");
    // Not the default 30 s: at once, the same event.
    let (again, kind) = next_event(&mut open.chunks).await;
    assert_eq!(
        (again.event_id.as_str(), kind),
        (org.event_id.as_str(), EventKind::OrganizationAttached)
    );
    assert_eq!(again.sequence_number, org.sequence_number);
    // Another owner's response changes nothing; a made-up id is refused.
    let other = Owner::partner_admin("globex");
    assert!(run
        .hub
        .event_response(&other, &respond(&again.event_id, 200))
        .is_err());
    assert!(run
        .hub
        .event_response(&owner, &respond("not-an-id", 200))
        .is_err());
    run.hub
        .event_response(&owner, &respond(&again.event_id, 200))
        .expect("ack");
    crate::testing::eventually("nothing in flight", Duration::from_secs(5), || {
        let counts = run.hub.counts();
        async move {
            if counts.in_flight == 0 {
                Ok(())
            } else {
                Err(counts)
            }
        }
    })
    .await;
    // The cursor passes what was acknowledged (written back within a second).
    let last = fx.store.last_event_seq().await.expect("last");
    crate::testing::eventually("the cursor stored", Duration::from_secs(5), || {
        let store = fx.store.clone();
        async move {
            let subs = store.event_subscriptions().await.expect("subs");
            if subs[0].acked_seq == last {
                Ok(())
            } else {
                Err(subs[0].acked_seq)
            }
        }
    })
    .await;
    let _ = run.stop.send(true);
    let _ = run.task.await;
}

/// Each case on both back-ends (PostgreSQL: the scratch cluster).
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::SqliteFactory).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::PgFactory).await
                }
            )*
        }
    };
}

on_both!(
    a_new_channel_set_with_the_same_application_replaces_the_old_one,
    subscriptions_and_channels_end_at_their_expiry_unless_refreshed,
    a_negative_event_response_has_the_event_sent_again_at_once,
    a_service_provider_subscription_gets_its_events_on_its_channel,
    a_client_that_does_not_read_is_closed_when_its_queue_is_full,
    limits_refuse_channels_and_subscriptions_beyond_them
);
