//! bwgate: a BroadWorks-compatible provisioning gateway.
//!
//! Layout follows `DESIGN.md`: wire faces (`http`, later `flowthrough`, `xsi`,
//! `api`, `portal`) translate to `domain` types; only `store` speaks SQL and
//! only `http` knows hyper. The modules below are in layers, bottom first;
//! a module uses only modules in lower layers. `tests/layers` checks this
//! on every `cargo test`, with today's exceptions listed there as debts.
//!
//! `pub` only for what `main.rs`, the tests, benches and fuzz targets use;
//! the rest is `pub(crate)`.

// Pure types and rules; XML and HTML lexical rules; the bare HTTPS client.
pub mod client;
pub mod domain;
pub(crate) mod html;
pub(crate) mod xml;
// Typed configuration; the normalized command JSON.
pub(crate) mod commands;
pub mod config;
// Data access; TLS; logging and metrics; the flow-through wire contract.
pub mod flowthrough;
pub mod store;
pub mod telemetry;
pub mod tls;
// Signed links and XSI tokens; the license core; XSI documents; demo
// seeding.
pub(crate) mod demo;
pub(crate) mod license;
pub(crate) mod links;
pub mod tokens;
pub mod xsi;
// Email; the XSP client; activation and approval links and their emails.
pub(crate) mod activation;
pub mod notify;
pub mod orgs;
pub(crate) mod xsp;
// The use cases and Xsi-Events delivery; state shared by the faces; the
// faces; start-up.
pub mod app;
pub mod events;
pub mod http;
pub mod provision;
pub mod serve;
// `bwgate load`, `bench-*`, `replay`: apart from the service, which never
// uses them.
pub mod tools;
// Helpers of the unit tests (`eventually`).
#[cfg(test)]
pub(crate) mod testing;
