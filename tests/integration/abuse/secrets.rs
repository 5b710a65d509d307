//! Abuse tests: secrets.
