//! E.164 telephone numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error_code::ErrorCode;
use super::subscriber::FieldError;

/// Fewest and most digits accepted after the `+` (country code included).
/// Seven: the shortest numbers in service (Niue +683 xxxx, St Helena +290 xxxx).
pub const E164_MIN_DIGITS: usize = 7;
pub const E164_MAX_DIGITS: usize = 15;

/// An E.164 number in canonical form: `+` and 7..=15 digits, the first
/// (country code) digit 1-9.
///
/// `parse` accepts the usual human formatting — spaces, dashes, dots and
/// parentheses anywhere (`+1 (240) 555-1212`, `+1.240.555.1212`) — and
/// strips it. It rejects letters or any other character, a missing `+`
/// (national numbers are ambiguous), a second `+`, a leading 0, and too few
/// or too many digits. Every rejection is `InvalidPhoneNumber` (9002) on
/// field `phoneNumber`; use [`FieldError::for_field`] to name another field.
///
/// Serialized as a bare string (not re-validated when deserialized).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct E164(String);

impl E164 {
    pub fn parse(raw: &str) -> Result<E164, FieldError> {
        let err = |msg: &str| {
            Err(FieldError::new(
                ErrorCode::InvalidPhoneNumber,
                "phoneNumber",
                msg.to_string(),
            ))
        };
        // A number at all first (the formatting stripped), then E.164's rules.
        let number = DirectoryNumber::parse(raw)?.0;
        let Some(digits) = number.strip_prefix('+') else {
            return err("must start with '+' and the country code");
        };
        if digits.starts_with('0') {
            return err("country code must not start with 0");
        }
        if digits.len() > E164_MAX_DIGITS {
            return err("has more than 15 digits");
        }
        if digits.len() < E164_MIN_DIGITS {
            return err("has fewer than 7 digits");
        }
        Ok(E164(number))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Most digits a directory number may have (E.164's 15, with room for a
/// national trunk prefix and a longer private-numbering plan).
pub const DIRECTORY_MAX_DIGITS: usize = 20;

/// A subscriber's number as BroadWorks sends it: E.164 (`+12405551212`) or
/// national (`2405551212`, `020 7946 0958`), the usual formatting stripped
/// as in [`E164::parse`]. BroadWorks stores numbers without a country code
/// in many deployments, so a national number is kept as given; the license
/// core decides what it means for Webex Calling (which needs
/// [`DirectoryNumber::e164`]) instead of the whole AddUser being refused.
///
/// `parse` refuses what is not a number at all: letters or other
/// characters, a `+` anywhere but first, no digit, more than 20 digits
/// (9002 on the field).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DirectoryNumber(String);

impl DirectoryNumber {
    pub fn parse(raw: &str) -> Result<DirectoryNumber, FieldError> {
        let err = |msg: &str| {
            Err(FieldError::new(
                ErrorCode::InvalidPhoneNumber,
                "phoneNumber",
                msg.to_string(),
            ))
        };
        let mut out = String::with_capacity(DIRECTORY_MAX_DIGITS + 1);
        let mut digits = 0usize;
        for c in raw.trim().chars() {
            match c {
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' if out.is_empty() => out.push('+'),
                '+' => return err("'+' may only appear once, at the start"),
                '0'..='9' => {
                    digits += 1;
                    if digits > DIRECTORY_MAX_DIGITS {
                        return err("has more than 20 digits");
                    }
                    out.push(c);
                }
                _ => return err("may contain only '+', digits, spaces, '-', '.', '(' and ')'"),
            }
        }
        if digits == 0 {
            return err("has no digits");
        }
        Ok(DirectoryNumber(out))
    }

    /// The number in E.164, if it is one (what Webex Calling needs).
    pub fn e164(&self) -> Option<E164> {
        E164::parse(&self.0).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<E164> for DirectoryNumber {
    fn from(n: E164) -> Self {
        DirectoryNumber(n.into_string())
    }
}

impl fmt::Display for DirectoryNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_numbers_keep_national_form_and_know_their_e164() {
        let ok = [
            ("240-555-1212", "2405551212", None),
            ("020 7946 0958", "02079460958", None),
            ("+1 (240) 555-1212", "+12405551212", Some("+12405551212")),
            ("+123456", "+123456", None), // too short for E.164, still a number
            ("1234", "1234", None),
        ];
        for (raw, kept, e164) in ok {
            let n = DirectoryNumber::parse(raw).expect(raw);
            assert_eq!(n.as_str(), kept, "{raw}");
            assert_eq!(n.e164().as_ref().map(E164::as_str), e164, "{raw}");
        }
        for raw in [
            "",
            " - ",
            "+1 240 555 CALL",
            "1+2",
            "555-1212 x12",
            "123456789012345678901",
        ] {
            let err = DirectoryNumber::parse(raw).expect_err(raw);
            assert_eq!(err.code, ErrorCode::InvalidPhoneNumber, "{raw}");
        }
        // Every stored E.164 number reads back as a directory number.
        let e = E164::parse("+442079460958").unwrap();
        assert_eq!(DirectoryNumber::from(e.clone()).e164(), Some(e));
    }

    #[test]
    fn normalization_table() {
        let ok = [
            ("+12405551212", "+12405551212"),
            ("+1-240-555-1212", "+12405551212"),
            ("+1 (240) 555 1212", "+12405551212"),
            ("+1.240.555.1212", "+12405551212"),
            ("  +44 20 7946 0958 ", "+442079460958"),
            ("(+49) 30-1234-5678", "+493012345678"),
            ("+683 4002", "+6834002"), // 7 digits: Niue, shortest in use
            ("+123456789012345", "+123456789012345"), // 15 digits: longest
        ];
        for (raw, want) in ok {
            assert_eq!(
                E164::parse(raw).map(E164::into_string).as_deref(),
                Ok(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn rejection_table() {
        let bad = [
            "",
            "   ",
            "+",
            "12405551212",             // no '+'
            "001 240 555 1212",        // international prefix instead of '+'
            "+0 240 555 1212",         // leading 0 country code
            "+123456",                 // 6 digits
            "+1234567890123456",       // 16 digits
            "+1 240 555 CALL",         // letters
            "+1 240 555 1212 x12",     // extension suffix
            "+1+2405551212",           // second '+'
            "+1/240/555/1212",         // other separator
            "+１２４０５５５１２１２", // full-width digits
        ];
        for raw in bad {
            let err = E164::parse(raw).expect_err(raw);
            assert_eq!(err.code, ErrorCode::InvalidPhoneNumber, "{raw}");
            assert_eq!(err.field, "phoneNumber");
        }
    }

    #[test]
    fn serializes_as_bare_string() {
        let n = E164::parse("+1 240 555 1212").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+12405551212\"");
        assert_eq!(n.to_string(), "+12405551212");
    }
}
