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
use crate::store::sqlite::suite::SqliteFactory;
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

#[tokio::test]
async fn a_service_provider_subscription_gets_its_events_on_its_channel() {
    let fx = fixture(&SqliteFactory).await;
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

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_when_its_queue_is_full() {
    let fx = fixture(&SqliteFactory).await;
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

#[tokio::test]
async fn limits_refuse_channels_and_subscriptions_beyond_them() {
    let fx = fixture(&SqliteFactory).await;
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
