//! Tooling that ships in the `bwgate` binary but is not the service:
//! `bwgate load`, `bench-baseline`, `bench-store` ([`load`]) and
//! `bwgate replay` ([`conformance`]).
//!
//! Kept apart so the service never depends on it: tools may use service
//! modules (a client, the store for `bench-store`), never the reverse
//! (`tests/layers.rs` checks this).

pub mod conformance;
pub mod load;
