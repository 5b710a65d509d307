//! Request bodies: bounded in size and in time, read whole before dispatch
//! (so error answers keep the connection reusable, as nginx discards bodies).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use hyper::HeaderMap;

use super::error::WireError;
use crate::domain::ErrorCode;

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

pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, WireError> {
    let discard_budget = limit.saturating_mul(DISCARD_FACTOR).min(DISCARD_CAP);
    if declared_length(headers).is_some_and(|n| n > discard_budget as u64) {
        return Err(too_large(limit));
    }
    match tokio::time::timeout(timeout, collect(body, limit, discard_budget)).await {
        Ok(result) => result,
        Err(_) => Err(WireError::with_detail(
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
) -> Result<Bytes, WireError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            WireError::with_detail(
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

fn too_large(limit: usize) -> WireError {
    WireError::with_detail(
        ErrorCode::DocumentTooLarge,
        format!("The limit is {limit} bytes."),
    )
}
