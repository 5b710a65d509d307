//! Request bodies: bounded in size (the route's own limit), in time, and
//! in memory held at once (`body_budget`), read whole before dispatch (so
//! error answers keep the connection reusable, as nginx discards bodies).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::HeaderMap;

use crate::domain::ErrorCode;
use crate::domain::Refusal;
use crate::http::body_budget::{BudgetScope, OverBudget, Reservation};

/// Whether the request announces a body at all.
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
}

/// An oversized body is still read (and thrown away) up to this many times
/// the limit, so an HTTP/1.1 client that is still sending can read the 413
/// instead of a connection reset (nginx discards bodies the same way).
/// Beyond it the connection is dropped rather than reading gigabytes.
const DISCARD_FACTOR: usize = 4;
const DISCARD_CAP: usize = 64 << 20;

/// Reads a body of at most `limit` bytes, unaccounted (the ops listener).
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Refusal> {
    read_body_within(headers, body, limit, timeout, None).await
}

/// Reads a body of at most `limit` bytes; with a `reservation`, every byte
/// kept is first reserved in it (the declared length at once), so a body
/// over the connection's or the process's budget is refused before it is
/// stored. Bytes read only to be discarded reserve nothing.
pub async fn read_body_within(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
    mut reservation: Option<&mut Reservation>,
) -> Result<Bytes, Refusal> {
    let discard_budget = limit.saturating_mul(DISCARD_FACTOR).min(DISCARD_CAP);
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > discard_budget as u64) {
        return Err(too_large(limit));
    }
    if let (Some(r), Some(n)) = (reservation.as_deref_mut(), declared) {
        if n <= limit as u64 {
            r.ensure(n as usize).map_err(over_budget)?;
        }
    }
    let read = collect(body, limit, discard_budget, reservation);
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(Refusal::new(
            ErrorCode::RequestTimeout,
            format!("The body did not arrive within {} ms.", timeout.as_millis()),
        )),
    }
}

/// Collects up to `limit` bytes; past it keeps reading without storing
/// until `discard_budget`, then answers 413. A body that arrives in one
/// frame (the usual case) is returned without a copy.
async fn collect(
    mut body: Incoming,
    limit: usize,
    discard_budget: usize,
    mut reservation: Option<&mut Reservation>,
) -> Result<Bytes, Refusal> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::new(
                ErrorCode::MalformedXml,
                format!("The request body could not be read: {e}."),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            first = None;
            rest = None;
            if seen > discard_budget {
                break;
            }
            continue;
        }
        if let Some(r) = reservation.as_deref_mut() {
            r.ensure(seen).map_err(over_budget)?;
        }
        match (&mut first, &mut rest) {
            (None, None) => first = Some(data),
            (Some(head), None) => {
                let mut joined = BytesMut::with_capacity(head.len() + data.len());
                joined.extend_from_slice(head);
                joined.extend_from_slice(&data);
                first = None;
                rest = Some(joined);
            }
            (_, Some(joined)) => joined.extend_from_slice(&data),
        }
    }
    if seen > limit {
        return Err(too_large(limit));
    }
    Ok(match (first, rest) {
        (Some(b), _) => b,
        (None, Some(joined)) => joined.freeze(),
        (None, None) => Bytes::new(),
    })
}

/// Over the connection's budget the client itself has too much in flight
/// (413); over the process's, everyone does: retry shortly (503).
fn over_budget(e: OverBudget) -> Refusal {
    ::metrics::counter!("bwgate_request_bodies_refused_total", "budget" => match e.scope {
        BudgetScope::Connection => "connection",
        BudgetScope::Process => "process",
    })
    .increment(1);
    match e.scope {
        BudgetScope::Connection => Refusal::new(
            ErrorCode::DocumentTooLarge,
            format!(
                "Request bodies in progress on this connection would exceed {} bytes; send fewer at once.",
                e.size
            ),
        ),
        BudgetScope::Process => Refusal::new(
            ErrorCode::ServerBusy,
            "Too many request bodies are being received; retry shortly.".to_string(),
        )
        .retry_after(1),
    }
}

fn too_large(limit: usize) -> Refusal {
    Refusal::new(
        ErrorCode::DocumentTooLarge,
        format!("The limit is {limit} bytes."),
    )
}
