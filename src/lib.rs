//! bwgate: a BroadWorks-compatible provisioning gateway.
//!
//! Layout follows `DESIGN.md`: wire faces (`http`, later `flowthrough`, `xsi`,
//! `api`, `portal`) translate to `domain` types; only `store` speaks SQL and
//! only `http` knows hyper.

pub(crate) mod activation;
pub mod app;
pub mod client;
pub(crate) mod commands;
pub mod config;
pub(crate) mod demo;
pub mod domain;
pub mod flowthrough;
pub mod http;
pub(crate) mod license;
pub(crate) mod links;
pub mod notify;
pub mod orgs;
pub mod provision;
pub mod serve;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod tools;
pub(crate) mod xml;
pub mod xsi;
pub(crate) mod xsp;
