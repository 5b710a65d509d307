//! Request bodies: bounded in size and in time, read whole before dispatch
//! (so error answers keep the connection reusable, as nginx discards bodies).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
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

pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, WireError> {
    if declared_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Ok(Err(e)) => Err(WireError::with_detail(
            ErrorCode::MalformedXml,
            format!("The request body could not be read: {e}."),
        )),
        Err(_) => Err(WireError::with_detail(
            ErrorCode::RequestTimeout,
            format!("The body did not arrive within {} ms.", timeout.as_millis()),
        )),
    }
}

fn too_large(limit: usize) -> WireError {
    WireError::with_detail(
        ErrorCode::DocumentTooLarge,
        format!("The limit is {limit} bytes."),
    )
}
