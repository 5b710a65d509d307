//! Identifiers: the BroadWorks user id and the enterprise key
//! (`spEnterpriseId`) a subscriber's organization is found by.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::email::is_valid_domain;
use super::error_code::ErrorCode;
use super::subscriber::FieldError;

/// Longest BroadWorks user id (OCI-P `UserId`: 1..161 characters).
pub const USER_ID_MAX_CHARS: usize = 161;

/// A BroadWorks user id, `user@domain`, in its canonical (compared) form.
///
/// `parse` checks: 1..=161 characters, exactly one `@`, a non-empty local
/// part, a DNS host name as domain, and only printable ASCII (no
/// whitespace, control or invisible format characters such as U+200B, no
/// non-ASCII letters that look like ASCII ones). The whole id is then
/// ASCII-lower-cased: BroadWorks ids are matched without regard to case
/// (the domain is a DNS name; the local part is compared the same way
/// here, so `Case@`, `case@` and `CASE@` are one subscriber; see the
/// docs/flowthrough.md, "User ids"). Callers trim: surrounding whitespace is an error.
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
        if let Some(c) = raw.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterValue,
                FIELD,
                refused_character(c),
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
        Ok(UserId(raw.to_ascii_lowercase()))
    }

    /// The canonical form of a user id given as a lookup key (a path
    /// segment, a query value), `None` when it is no valid user id: such a
    /// key may still be a subscriber id.
    pub fn canonical_key(raw: &str) -> Option<UserId> {
        UserId::parse(raw).ok()
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

/// Why `c` (not printable ASCII) cannot be in a user id, naming it.
fn refused_character(c: char) -> String {
    let code = format!("U+{:04X}", u32::from(c));
    if c.is_whitespace() {
        format!("must not contain whitespace ({code})")
    } else if c.is_control() {
        format!("must not contain control characters ({code})")
    } else if is_invisible_format(c) {
        format!("must not contain invisible formatting characters ({code})")
    } else {
        format!(
            "must use printable ASCII only ({code} is not): non-ASCII letters \
             can look like ASCII ones and impersonate another user id"
        )
    }
}

/// Unicode format characters (category Cf) that render as nothing:
/// zero-width space/joiners, direction marks and overrides, word joiner,
/// BOM, soft hyphen, tag characters. Only for the error message: every
/// non-ASCII character is refused anyway.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{61C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'..='\u{E007F}'
    )
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
            ("Alice.Smith@Example.COM", "alice.smith@example.com"),
            ("CASE@Example.com", "case@example.com"),
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
            ("ali\u{200B}ce@example.com", InvalidParameterValue),
            ("alice\u{FEFF}@example.com", InvalidParameterValue),
            ("\u{202E}alice@example.com", InvalidParameterValue),
            // Cyrillic a (U+0430) looks like the ASCII one.
            ("\u{430}lice@example.com", InvalidParameterValue),
            ("alice@ex\u{430}mple.com", InvalidParameterValue),
            ("alice\u{7F}@example.com", InvalidParameterValue),
        ];
        for (raw, code) in bad {
            let err = UserId::parse(raw).expect_err(raw);
            assert_eq!(err.code, *code, "{raw:?}: {err}");
            assert_eq!(err.field, "userId");
        }
    }

    #[test]
    fn case_variants_are_one_user_id_and_refusals_name_the_character() {
        let ids: Vec<UserId> = ["Case@x.example", "case@x.example", "CASE@X.EXAMPLE"]
            .iter()
            .map(|raw| UserId::parse(raw).expect(raw))
            .collect();
        assert!(
            ids.iter().all(|u| u.as_str() == "case@x.example"),
            "{ids:?}"
        );
        let zw = UserId::parse("ca\u{200D}se@x.example").expect_err("zero-width joiner");
        assert!(
            zw.message.contains("invisible") && zw.message.contains("U+200D"),
            "{zw}"
        );
        let look_alike = UserId::parse("\u{441}ase@x.example").expect_err("Cyrillic es");
        assert!(look_alike.message.contains("U+0441"), "{look_alike}");
        assert_eq!(
            UserId::canonical_key("Bob@Corp.Example").map(UserId::into_string),
            Some("bob@corp.example".to_string())
        );
        assert_eq!(UserId::canonical_key("sub-123"), None);
    }

    #[test]
    fn user_id_parts_and_json() {
        let u = UserId::parse("Bob@Corp.example").unwrap();
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
