//! TrackingID: one per request, echoed in the `TrackingID` response header
//! (the header BroadWorks XSPs use) and carried into logs and stored work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const HEADER: &str = "trackingid";
/// The caller's own TrackingID, echoed back for correlation.
pub const CLIENT_HEADER: &str = "x-client-trackingid";
const MAX_CLIENT_ID_LEN: usize = 128;

static BOOT_ID: OnceLock<u64> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh id: a random per-process prefix plus a counter, so ids are
/// unique across restarts and nodes without a random draw per request.
pub fn generate() -> String {
    let boot = *BOOT_ID.get_or_init(rand::random::<u64>);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("BWG_{boot:016x}_{n:012x}")
}

/// The caller's TrackingID when it is sane (BroadWorks sends `NA_<uuid>`
/// style ids). It is only echoed and logged: the gateway always issues its
/// own id, because stored work is keyed by it and a caller could reuse one.
pub fn client_id(value: Option<&[u8]>) -> Option<String> {
    match value {
        Some(v)
            if !v.is_empty()
                && v.len() <= MAX_CLIENT_ID_LEN
                && v.iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b)) =>
        {
            // Checked ASCII above, so this cannot fail.
            Some(String::from_utf8_lossy(v).into_owned())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("BWG_"));
    }

    #[test]
    fn sane_client_ids_are_kept_and_others_dropped() {
        assert_eq!(
            client_id(Some(b"NA_0f1e-2d3c")).as_deref(),
            Some("NA_0f1e-2d3c")
        );
        assert_eq!(client_id(Some(b"bad id\r\nx")), None);
        assert_eq!(client_id(Some(&[b'a'; 200])), None);
        assert_eq!(client_id(None), None);
    }
}
