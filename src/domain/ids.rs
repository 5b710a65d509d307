//! Identifiers: the BroadWorks user id and the enterprise key
//! (`spEnterpriseId`) a subscriber's organization is found by.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::email::is_valid_domain;
use super::error_code::ErrorCode;
use super::subscriber::FieldError;

/// Longest BroadWorks user id (OCI-P `UserId`: 1..161 characters).
pub const USER_ID_MAX_CHARS: usize = 161;

/// A BroadWorks user id, `user@domain`.
///
/// `parse` checks: 1..=161 characters, exactly one `@`, a non-empty local
/// part, a DNS host name as domain, no whitespace or control characters.
/// The domain is lower-cased (DNS names are case-insensitive), the local
/// part is kept as given. Callers trim: surrounding whitespace is an error.
///
/// Serialized as a bare string. Deserialization does not re-validate, so
/// records accepted under older rules still load.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<UserId, FieldError> {
        const FIELD: &str = "userId";
        if raw.is_empty() {
            return Err(FieldError::new(
                ErrorCode::MissingParameter,
                FIELD,
                "is missing",
            ));
        }
        if raw.chars().count() > USER_ID_MAX_CHARS {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterSize,
                FIELD,
                format!("must be at most {USER_ID_MAX_CHARS} characters"),
            ));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterValue,
                FIELD,
                "must not contain whitespace or control characters",
            ));
        }
        let (local, domain) = match raw.split_once('@') {
            Some((l, d)) if !d.contains('@') => (l, d),
            _ => {
                return Err(FieldError::new(
                    ErrorCode::InvalidParameterValue,
                    FIELD,
                    "must have the form user@domain with exactly one '@'",
                ))
            }
        };
        if local.is_empty() {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterValue,
                FIELD,
                "the part before '@' is empty",
            ));
        }
        if !is_valid_domain(domain) {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterValue,
                FIELD,
                "the part after '@' is not a valid domain name",
            ));
        }
        let mut s = String::with_capacity(raw.len());
        s.push_str(local);
        s.push('@');
        s.extend(domain.chars().map(|c| c.to_ascii_lowercase()));
        Ok(UserId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The local part (before `@`).
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    /// The domain (after `@`).
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The key of a BroadWorks enterprise as Webex sees it (`spEnterpriseId`):
/// the `serviceProviderId` alone when the template is in enterprise mode
/// (in BroadWorks an enterprise is a service provider), `sp+group` in group
/// mode (a service provider whose groups are separate customers).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnterpriseKey(String);

impl EnterpriseKey {
    pub fn derive(service_provider_id: &str, group_id: &str, enterprise_mode: bool) -> Self {
        if enterprise_mode {
            EnterpriseKey(service_provider_id.to_string())
        } else {
            let mut s = String::with_capacity(service_provider_id.len() + 1 + group_id.len());
            s.push_str(service_provider_id);
            s.push('+');
            s.push_str(group_id);
            EnterpriseKey(s)
        }
    }

    /// Rebuilds a key read back from storage (it was derived when stored).
    pub fn from_stored(key: impl Into<String>) -> Self {
        EnterpriseKey(key.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnterpriseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EnterpriseKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_table() {
        use ErrorCode::*;
        let ok: &[(&str, &str)] = &[
            ("alice@example.com", "alice@example.com"),
            ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),
            ("2405551212@as.sp-1.net", "2405551212@as.sp-1.net"),
            ("a+b_c'd@x.org", "a+b_c'd@x.org"),
        ];
        for (raw, want) in ok {
            assert_eq!(
                UserId::parse(raw).map(|u| u.to_string()).as_deref(),
                Ok(*want),
                "{raw}"
            );
        }
        let long_ok = format!("{}@example.com", "u".repeat(161 - 12));
        assert_eq!(long_ok.chars().count(), 161);
        assert!(UserId::parse(&long_ok).is_ok());
        let too_long = format!("{}@example.com", "u".repeat(162 - 12));

        let bad: &[(&str, ErrorCode)] = &[
            ("", MissingParameter),
            (&too_long, InvalidParameterSize),
            ("alice", InvalidParameterValue),
            ("alice@", InvalidParameterValue),
            ("@example.com", InvalidParameterValue),
            ("a@b@example.com", InvalidParameterValue),
            ("alice@localhost", InvalidParameterValue),
            ("alice@exa mple.com", InvalidParameterValue),
            (" alice@example.com", InvalidParameterValue),
            ("al\u{1}ice@example.com", InvalidParameterValue),
            ("alice@-bad.com", InvalidParameterValue),
        ];
        for (raw, code) in bad {
            let err = UserId::parse(raw).expect_err(raw);
            assert_eq!(err.code, *code, "{raw:?}: {err}");
            assert_eq!(err.field, "userId");
        }
    }

    #[test]
    fn user_id_parts_and_json() {
        let u = UserId::parse("bob@Corp.example").unwrap();
        assert_eq!(u.local_part(), "bob");
        assert_eq!(u.domain(), "corp.example");
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"bob@corp.example\"");
        let back: UserId = serde_json::from_str("\"bob@corp.example\"").unwrap();
        assert_eq!(back, u);
    }

    #[test]
    fn enterprise_key_follows_the_template_mode() {
        assert_eq!(
            EnterpriseKey::derive("Acme", "Sales", true).as_str(),
            "Acme"
        );
        assert_eq!(
            EnterpriseKey::derive("SP1", "acme", false).as_str(),
            "SP1+acme"
        );
        let k = EnterpriseKey::derive("SP1", "acme", false);
        assert_eq!(k.to_string(), "SP1+acme");
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"SP1+acme\"");
        assert_eq!(EnterpriseKey::from_stored("SP1+acme"), k);
    }
}
