//! The provisioning event log: the use cases append an event with the
//! change it reports (same transaction: an undone operation leaves none),
//! in commit order; subscriptions keep their cursor across reopening and
//! it never moves back; pruning spares what a subscription still needs.

use super::*;
use crate::domain::event::{
    EventDelivery, EventKind, EventSubscription, EventTarget, ProvisioningEvent, EVENT_PACKAGE,
};
use crate::provision::DeliveryOutcome;

async fn all_events(s: &Fixture) -> Vec<ProvisioningEvent> {
    s.events_after(0, 1000).await.expect("events")
}

fn kinds(events: &[ProvisioningEvent]) -> Vec<(EventKind, Option<&str>)> {
    events
        .iter()
        .map(|e| (e.kind, e.user_id.as_deref()))
        .collect()
}

/// Someone listens (events are written only then).
async fn watched(s: &Fixture) {
    s.put_event_subscription(&subscription("watcher", 0))
        .await
        .expect("subscription");
}

pub(crate) async fn without_subscriptions_no_event_is_written(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "T1",
        vec![add("a@e1.example", "E1", "G", Some("a@e1.example"))],
    )
    .await;
    if s.backend_name() == "sqlite" {
        // Nobody could ever receive them: not written.
        assert!(all_events(s).await.is_empty());
    }
    // From the first subscription on, they are.
    watched(s).await;
    accept(
        s,
        &t,
        "T2",
        vec![add("b@e1.example", "E1", "G", Some("b@e1.example"))],
    )
    .await;
    let events = all_events(s).await;
    let last = events.last().expect("an event");
    assert_eq!(
        (last.kind, last.user_id.as_deref()),
        (EventKind::SubscriberAccepted, Some("b@e1.example"))
    );
}

pub(crate) async fn provisioning_changes_append_events_in_commit_order(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    watched(s).await;
    assert_eq!(s.last_event_seq().await.expect("last"), 0);
    accept(
        s,
        &t,
        "T1",
        vec![
            add(
                "alice@acme.example",
                "SP1",
                "G1",
                Some("alice@acme.example"),
            ),
            add("bob@acme.example", "SP1", "G2", Some("bob@acme.example")),
        ],
    )
    .await;
    let alice = sub(s, "alice@acme.example").await;
    let bob = sub(s, "bob@acme.example").await;
    let provision = |id: &str| {
        let id = id.to_string();
        async move { s.subscriber_commands(&id).await.expect("cmds")[0].seq }
    };
    s.complete_command(
        provision(&alice.id).await,
        DeliveryOutcome::delivered(),
        NOW + 1,
    )
    .await
    .expect("deliver");
    s.complete_command(
        provision(&bob.id).await,
        DeliveryOutcome::Rejected {
            error_code: 9099,
            description: "no license left".into(),
        },
        NOW + 2,
    )
    .await
    .expect("reject");
    accept(s, &t, "T2", vec![delete("alice@acme.example")]).await;

    let events = all_events(s).await;
    assert_eq!(
        kinds(&events),
        vec![
            (EventKind::OrganizationAttached, None),
            (EventKind::SubscriberAccepted, Some("alice@acme.example")),
            (EventKind::SubscriberAccepted, Some("bob@acme.example")),
            (EventKind::SubscriberProvisioned, Some("alice@acme.example")),
            (EventKind::SubscriberFailed, Some("bob@acme.example")),
            // The removal still names the user id the subscriber gave up.
            (EventKind::SubscriberRemoved, Some("alice@acme.example")),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "{events:?}");
    assert_eq!(s.last_event_seq().await.expect("last"), events[5].seq);
    let org = &events[0];
    assert_eq!(org.service_provider_id.as_deref(), Some("SP1"));
    assert_eq!(org.organization_id, alice.org_id);
    assert!(org.organization_name.is_some());
    let accepted = &events[1];
    assert_eq!(
        (
            accepted.status.as_deref(),
            accepted.group_id.as_deref(),
            accepted.provisioning_id.as_str()
        ),
        (Some("provisioning"), Some("G1"), "tpl")
    );
    assert_eq!(accepted.subscriber_id.as_deref(), Some(alice.id.as_str()));
    assert_eq!(
        (events[3].at, events[3].status.as_deref()),
        (NOW + 1, Some("provisioned"))
    );
    let failed = &events[4];
    assert_eq!(
        (
            failed.error_code,
            failed.reason.as_deref(),
            failed.status.as_deref()
        ),
        (Some(9099), Some("no license left"), Some("error"))
    );
    // The removal still names where the subscriber was (subscriptions
    // to its service provider or group match it).
    assert_eq!(
        (
            events[5].service_provider_id.as_deref(),
            events[5].group_id.as_deref()
        ),
        (Some("SP1"), Some("G1"))
    );
    assert_eq!(events[5].organization_id, alice.org_id);
    // Paging: after the third, at most two.
    let page = s.events_after(events[2].seq, 2).await.expect("page");
    assert_eq!(page, events[3..5].to_vec());
}

pub(crate) async fn an_undone_operation_leaves_no_event(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    watched(s).await;
    s.db.fail_subscriber_inserts_named("Boom").await;
    let mut boom = new_sub("boom@e2.example", "E2", "G", Some("boom@e2.example"));
    boom.first_name = "Boom".into();
    accept(
        s,
        &t,
        "T1",
        vec![
            add("a@e1.example", "E1", "G", Some("a@e1.example")),
            Operation::AddUser(boom),
            add("b@e1.example", "E1", "G", Some("b@e1.example")),
        ],
    )
    .await;
    let events = all_events(s).await;
    assert_eq!(
        kinds(&events),
        vec![
            (EventKind::OrganizationAttached, None),
            (EventKind::SubscriberAccepted, Some("a@e1.example")),
            (EventKind::SubscriberAccepted, Some("b@e1.example")),
        ],
        "E2's organization and boom were undone with their events"
    );
    assert_eq!(events[0].service_provider_id.as_deref(), Some("E1"));
}

fn subscription(id: &str, acked_seq: i64) -> EventSubscription {
    EventSubscription {
        id: id.into(),
        owner: "alice@acme.example".into(),
        partner_id: "acme".into(),
        node: "n1".into(),
        target: EventTarget::User {
            user_id: "alice@acme.example".into(),
        },
        event_package: EVENT_PACKAGE.into(),
        delivery: EventDelivery::ChannelSet {
            channel_set_id: "set-1".into(),
        },
        application_id: Some("app".into()),
        expires_at: NOW + 3_600_000,
        acked_seq,
        created_at: NOW,
    }
}

pub(crate) async fn subscriptions_persist_and_their_cursor_only_moves_forward(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let a = subscription("sub-a", 0);
    let mut b = subscription("sub-b", 5);
    b.created_at = NOW + 1;
    b.delivery = EventDelivery::HttpContact {
        uri: "http://127.0.0.1:9/events".into(),
    };
    b.target = EventTarget::Group {
        service_provider_id: "SP1".into(),
        group_id: "G1".into(),
    };
    s.put_event_subscription(&a).await.expect("put a");
    s.put_event_subscription(&b).await.expect("put b");
    assert_eq!(
        s.event_subscriptions().await.expect("list"),
        vec![a.clone(), b.clone()]
    );

    s.advance_event_cursor("sub-a", 7).await.expect("advance");
    s.advance_event_cursor("sub-a", 3)
        .await
        .expect("back: ignored");
    // A refresh (put again with an older cursor) keeps the newer cursor.
    let mut refreshed = a.clone();
    refreshed.expires_at = NOW + 7_200_000;
    s.put_event_subscription(&refreshed).await.expect("refresh");
    let listed = s.event_subscriptions().await.expect("list");
    assert_eq!(listed[0].acked_seq, 7);
    assert_eq!(listed[0].expires_at, NOW + 7_200_000);

    assert!(s.delete_event_subscription("sub-b").await.expect("delete"));
    assert!(!s.delete_event_subscription("sub-b").await.expect("again"));
    drop(listed);
    // Reopened: still there, cursor kept.
    s.close().await.expect("close");
    let reopened = fx.db.open().await;
    let listed = reopened.event_subscriptions().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].acked_seq), ("sub-a", 7));
}

pub(crate) async fn pruning_removes_only_old_events_up_to_the_given_seq(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let t = template(s, "tpl", true, true).await;
    watched(s).await;
    accept(
        s,
        &t,
        "T1",
        vec![add("a@e1.example", "E1", "G", Some("a@e1.example"))],
    )
    .await;
    accept(
        s,
        &t,
        "T2",
        vec![add("b@e1.example", "E1", "G", Some("b@e1.example"))],
    )
    .await;
    let events = all_events(s).await;
    assert_eq!(events.len(), 3);
    // Old enough, but only up to the second: the third stays.
    let pruned = s.prune_events(NOW + 1, events[1].seq).await.expect("prune");
    assert_eq!(pruned, 2);
    assert_eq!(all_events(s).await, events[2..].to_vec());
    // Not old enough: nothing.
    assert_eq!(s.prune_events(NOW, i64::MAX).await.expect("prune"), 0);
    // The seq keeps counting after a prune (no reuse).
    accept(
        s,
        &t,
        "T3",
        vec![add("c@e1.example", "E1", "G", Some("c@e1.example"))],
    )
    .await;
    let last = all_events(s).await;
    assert!(last[1].seq > events[2].seq);
}
