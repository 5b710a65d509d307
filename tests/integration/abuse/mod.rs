//! Attacks run against the real binary on its defaults (issue 10's
//! hardening), each asserting it is refused and bounded in time and count.
//! One file per area, so each limit's attack sits beside its siblings.

mod auth;
mod ops;
mod secrets;
mod transport;
mod xml;
