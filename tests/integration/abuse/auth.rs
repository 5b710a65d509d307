//! Abuse tests: auth.
