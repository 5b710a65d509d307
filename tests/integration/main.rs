//! Integration tests: the real `bwgate` binary on ephemeral loopback ports,
//! real TLS with generated certificates, a real SQLite file.

// Cargo.toml's `unwrap_used` is for service code; here an unwrap that
// fails is a test failure (clippy.toml only exempts `#[test]` functions).
#![allow(clippy::unwrap_used)]

mod harness;
#[path = "../support/pg_cluster.rs"]
mod pg_cluster;

mod abuse;
mod activation;
mod browser;

mod calling;
mod config_cli;
mod conformance;
mod crash;
mod email;
mod flowthrough;
mod license_core;
mod licenses;
mod lifecycle;
mod limits;
mod load;
mod load_channels;
mod metrics;
mod mtls;
mod nodes;
mod orgs;
mod partner;
mod partner_licenses;
mod reload;
mod signin;
mod xsi;
mod xsi_events;
