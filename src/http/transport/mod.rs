//! Transport: the listeners (TLS accept loop, hyper connections), the
//! router and request dispatch, body reading and its limits and budgets,
//! rate limits and lockouts, TrackingIDs, metrics, and the rendering of
//! refusals. Nothing here knows a face's business; faces live in
//! `http::faces`.

pub mod body;
pub mod body_budget;
pub mod handler;
pub mod host_header;
pub mod lockout;
pub mod metrics;
pub mod ratelimit;
pub mod render;
pub mod response_body;
pub mod router;
pub mod server;
pub mod state;
pub mod tracking;
