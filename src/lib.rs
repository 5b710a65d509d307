//! bwgate: a BroadWorks-compatible provisioning gateway.
//!
//! Layout follows `DESIGN.md`: wire faces (`http`, later `flowthrough`, `xsi`,
//! `api`, `portal`) translate to `domain` types; only `store` speaks SQL and
//! only `http` knows hyper.

pub mod activation;
pub mod app;
pub mod client;
pub mod commands;
pub mod config;
pub mod conformance;
pub mod demo;
pub mod domain;
pub mod flowthrough;
pub mod http;
pub mod license;
pub mod links;
pub mod load;
pub mod notify;
pub mod orgs;
pub mod provision;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod xml;
pub mod xsi;
pub mod xsp;
