//! Request metrics by route, method and status. Metric handles are cached
//! per label set so the hot path does no label allocation or registry lookup.

use std::sync::OnceLock;
use std::time::Duration;

use dashmap::DashMap;
use hyper::Method;
use metrics::{Counter, Histogram};

pub const REQUESTS: &str = "bwgate_http_requests_total";
pub const DURATION: &str = "bwgate_http_request_duration_seconds";

type Key = (&'static str, &'static str, u16);

static HANDLES: OnceLock<DashMap<Key, (Counter, Histogram)>> = OnceLock::new();

pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

pub fn record(route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
    let map = HANDLES.get_or_init(DashMap::new);
    let key = (route, method, status);
    if let Some(h) = map.get(&key) {
        h.0.increment(1);
        h.1.record(elapsed.as_secs_f64());
        return;
    }
    let labels = [
        ("route", route.to_string()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    let handles = (
        metrics::counter!(REQUESTS, &labels),
        metrics::histogram!(DURATION, &labels),
    );
    handles.0.increment(1);
    handles.1.record(elapsed.as_secs_f64());
    map.insert(key, handles);
}
