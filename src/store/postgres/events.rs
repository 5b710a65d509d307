//! The provisioning event log and its subscriptions (see SQLite's
//! `events.rs`). Events wait in the batch and go in one statement before
//! the commit, like commands (`tx.rs`).

use deadpool_postgres::GenericClient;

use super::sql::{exec, get, limit, row, rows};
use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::store::rows::{decode_event, decode_subscription, encode_event, encode_subscription};
use crate::store::StoreError;

pub(super) async fn insert_all<C: GenericClient>(
    c: &C,
    events: &[ProvisioningEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut at = Vec::with_capacity(events.len());
    let mut kind = Vec::with_capacity(events.len());
    let mut body = Vec::with_capacity(events.len());
    for e in events {
        at.push(e.at);
        kind.push(e.kind.as_str());
        body.push(encode_event(e)?);
    }
    // `WITH ORDINALITY` keeps the order the units appended them in.
    exec(
        c,
        "INSERT INTO provisioning_events (at, kind, body)
         SELECT at, kind, body FROM unnest($1::bigint[], $2::text[], $3::text[])
             WITH ORDINALITY AS e(at, kind, body, n) ORDER BY n",
        &[&at, &kind, &body],
    )
    .await?;
    Ok(())
}

pub(super) async fn after<C: GenericClient>(
    c: &C,
    after: i64,
    max: usize,
) -> Result<Vec<ProvisioningEvent>, StoreError> {
    let found = rows(
        c,
        "SELECT seq, body FROM provisioning_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after, &limit(max)],
    )
    .await?;
    found
        .iter()
        .map(|r| decode_event(get(r, 0)?, &get::<String>(r, 1)?))
        .collect()
}

pub(super) async fn last_seq<C: GenericClient>(c: &C) -> Result<i64, StoreError> {
    match row(
        c,
        "SELECT COALESCE(MAX(seq), 0) FROM provisioning_events",
        &[],
    )
    .await?
    {
        Some(r) => get(&r, 0),
        None => Ok(0),
    }
}

pub(super) async fn prune<C: GenericClient>(
    c: &C,
    before_at: i64,
    up_to_seq: i64,
) -> Result<u64, StoreError> {
    exec(
        c,
        "DELETE FROM provisioning_events WHERE at < $1 AND seq <= $2",
        &[&before_at, &up_to_seq],
    )
    .await
}

pub(super) async fn put_subscription<C: GenericClient>(
    c: &C,
    s: &EventSubscription,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO event_subscriptions (id, owner, partner_id, body, expires_at, acked_seq, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at,
             acked_seq = GREATEST(event_subscriptions.acked_seq, excluded.acked_seq)",
        &[
            &s.id,
            &s.owner,
            &s.partner_id,
            &encode_subscription(s)?,
            &s.expires_at,
            &s.acked_seq,
            &s.created_at,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn delete_subscription<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(exec(c, "DELETE FROM event_subscriptions WHERE id = $1", &[&id]).await? > 0)
}

pub(super) async fn subscriptions<C: GenericClient>(
    c: &C,
) -> Result<Vec<EventSubscription>, StoreError> {
    let found = rows(
        c,
        "SELECT body, acked_seq FROM event_subscriptions ORDER BY created_at, id",
        &[],
    )
    .await?;
    found
        .iter()
        .map(|r| decode_subscription(&get::<String>(r, 0)?, get(r, 1)?))
        .collect()
}

pub(super) async fn advance_cursor<C: GenericClient>(
    c: &C,
    id: &str,
    acked_seq: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "UPDATE event_subscriptions SET acked_seq = $2 WHERE id = $1 AND acked_seq < $2",
        &[&id, &acked_seq],
    )
    .await?;
    Ok(())
}
