//! Device activation codes as the license core decides them: which device
//! a user may activate, until when. The code itself is never stored: the
//! gateway derives it from the command key with its server key when it
//! emails it (`MailSecret::DerivedCode`).

use serde::{Deserialize, Serialize};

/// Webex Go's activation code works this long (days).
pub const WEBEX_GO_CODE_DAYS: i64 = 90;
/// Any other device's activation code works this long (days).
pub const DEVICE_CODE_DAYS: i64 = 7;
/// Digits of an emailed device activation code.
pub const DEVICE_CODE_DIGITS: u32 = 16;
/// The countries Webex Go is sold in (ISO 3166-1 alpha-2).
pub const WEBEX_GO_COUNTRIES: [&str; 2] = ["US", "GB"];
/// The licenses that are Webex Calling Professional (the package licenses
/// of `standard` and `premium`; `basic` and `softphone` are not).
pub const CALLING_PROFESSIONAL: [&str; 2] = ["webex-calling-standard", "webex-calling-premium"];

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What kind of device a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Webex Go: the user's mobile phone as a Webex Calling device.
    WebexGo,
    /// A phone or app registering to Webex Calling.
    Other,
}

impl DeviceKind {
    /// From BroadWorks' `deviceType` (`Webex Go`, `webex-go`, `WEBEX_GO`
    /// are Webex Go; anything else, or none, another device).
    pub fn of(device_type: Option<&str>) -> DeviceKind {
        let folded: String = device_type
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if folded == "webexgo" {
            DeviceKind::WebexGo
        } else {
            DeviceKind::Other
        }
    }

    /// When a code issued at `now` stops working.
    pub const fn expires_at(self, now: i64) -> i64 {
        let days = match self {
            DeviceKind::WebexGo => WEBEX_GO_CODE_DAYS,
            DeviceKind::Other => DEVICE_CODE_DAYS,
        };
        now + days * DAY_MS
    }
}

/// A device activation the core allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceActivation {
    /// The command that asked for it (the code is derived from it).
    pub command_key: String,
    pub subscriber_id: String,
    pub user_id: String,
    pub device_type: Option<String>,
    pub mac_address: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What the core answers an allowed activation with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedDevice {
    pub device_type: Option<String>,
    pub expires_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webex_go_is_recognized_however_spelled_and_lasts_ninety_days() {
        for t in ["Webex Go", "webex-go", "WEBEX_GO", " webexgo "] {
            assert_eq!(DeviceKind::of(Some(t)), DeviceKind::WebexGo, "{t}");
        }
        for t in [None, Some("Cisco 8845"), Some("webex"), Some("go")] {
            assert_eq!(DeviceKind::of(t), DeviceKind::Other, "{t:?}");
        }
        assert_eq!(DeviceKind::WebexGo.expires_at(0), 90 * DAY_MS);
        assert_eq!(DeviceKind::Other.expires_at(5), 5 + 7 * DAY_MS);
    }
}
