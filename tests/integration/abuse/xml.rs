//! Abuse tests: xml.
