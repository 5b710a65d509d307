//! Webex Calling's inventory as the license core keeps it: an
//! organization's locations, the numbers pre-provisioned in them and who
//! holds each, and the users Webex Calling was withheld from (with why).
//! The rules that use them are in `license::calling`.

use serde::{Deserialize, Serialize};

use super::phone::E164;

/// A Webex Calling location of an organization (a site: its numbers, its
/// country's emergency and dialing rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallingLocation {
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 (`US`, `GB`).
    pub country: String,
}

/// The country code in canonical form (two ASCII letters, upper case), or
/// why not.
pub fn country_code(raw: &str) -> Result<String, String> {
    let c = raw.trim();
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(c.to_ascii_uppercase())
    } else {
        Err(format!(
            "country '{raw}' is not an ISO 3166-1 alpha-2 code (US, GB, DE, …)"
        ))
    }
}

/// Who a number is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NumberHolder {
    /// A user entitled to Webex Calling with this number.
    #[serde(rename_all = "camelCase")]
    User {
        subscriber_id: String,
        user_id: String,
    },
    /// A service (auto attendant, hunt group, …), named by the operator.
    Service { name: String },
}

impl NumberHolder {
    pub const fn kind(&self) -> &'static str {
        match self {
            NumberHolder::User { .. } => "user",
            NumberHolder::Service { .. } => "service",
        }
    }

    /// The subscriber id or the service's name.
    pub fn reference(&self) -> &str {
        match self {
            NumberHolder::User { subscriber_id, .. } => subscriber_id,
            NumberHolder::Service { name } => name,
        }
    }
}

/// A number pre-provisioned in a location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallingNumber {
    pub number: E164,
    pub location_id: String,
    /// `None`: free.
    pub holder: Option<NumberHolder>,
    /// When it was assigned to its holder (unix ms).
    pub assigned_at: Option<i64>,
}

/// A user provisioned without Webex Calling, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallingWithheld {
    pub subscriber_id: String,
    pub user_id: String,
    /// The number BroadWorks last sent for it (kept to decide again at a
    /// package change, which does not carry it).
    pub directory_number: Option<String>,
    pub reason: String,
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_upper_cased() {
        assert_eq!(country_code(" us ").as_deref(), Ok("US"));
        assert_eq!(country_code("GB").as_deref(), Ok("GB"));
        for bad in ["", "USA", "U1", "Ü", "G B"] {
            assert!(country_code(bad).is_err(), "{bad}");
        }
    }
}
