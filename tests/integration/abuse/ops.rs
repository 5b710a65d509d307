//! Abuse tests: ops.
