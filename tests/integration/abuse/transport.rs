//! Abuse tests: transport.
