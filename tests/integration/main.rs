//! Integration tests: the real `bwgate` binary on ephemeral loopback ports,
//! real TLS with generated certificates, a real SQLite file.

mod harness;

mod config_cli;
mod flowthrough;
mod lifecycle;
mod metrics;
mod mtls;
mod reload;
