//! Timestamps on the wire: unix milliseconds as ISO 8601 UTC with
//! milliseconds (`2026-11-24T10:15:00.123Z`), as Cisco's APIs and bwgate's
//! Xsi-Events write them.

use time::{OffsetDateTime, PrimitiveDateTime};

/// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z in unix ms: the
/// range of a four-digit year.
const MIN_ISO_MILLIS: i64 = -62_167_219_200_000;
const MAX_ISO_MILLIS: i64 = 253_402_300_799_999;

/// Unix milliseconds as ISO 8601 UTC with milliseconds, clamped to years
/// 0000-9999.
pub fn iso_millis(ms: i64) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let ms = ms.clamp(MIN_ISO_MILLIS, MAX_ISO_MILLIS);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// A timestamp as [`iso_millis`] writes it, with any number of second
/// digits or none, as unix milliseconds (finer digits dropped).
pub fn parse_iso_millis(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]Z"
    );
    let t = PrimitiveDateTime::parse(s, &fmt).ok()?.assume_utc();
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}
