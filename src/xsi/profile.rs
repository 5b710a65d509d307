//! The user `Profile` an XSP answers to
//! `GET /com.broadsoft.xsi-actions/v2.0/user/{userId}/profile`
//! (Xsi spec R21 §3.5.2.1):
//!
//! ```text
//! <Profile xmlns="http://schema.broadsoft.com/xsi">
//!   <details> <userId/> <firstName/> <lastName/> <groupId/>
//!     <serviceProvider isEnterprise="…"/> <number/> <extension/> </details>
//!   <additionalDetails> <mobile/> <emailAddress/> … </additionalDetails>
//!   <countryCode/> …
//! </Profile>
//! ```
//!
//! Fields are found by their local name and their parent's (`details`,
//! `additionalDetails`, `Profile`) wherever they are, the last non-empty
//! one winning; their text is trimmed; nil or empty elements leave a field
//! unset; anything else is ignored.

use super::document::{self, Element, XsiLimits, XsiParseError};
use crate::domain::{ErrorCode, Refusal};

/// What the XSP says about a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub group_id: String,
    pub service_provider_id: String,
    /// The service provider is an enterprise (`isEnterprise="true"`).
    pub is_enterprise: bool,
    /// The user's number as BroadWorks holds it (national digits).
    pub number: Option<String>,
    pub extension: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    /// E.164 country code of `number` (`countryCode`).
    pub country_code: Option<String>,
}

/// Why a body is not a usable profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Document(#[from] XsiParseError),
    #[error("no details/userId")]
    NoUserId,
}

impl ProfileError {
    /// The refusal for a request carrying this profile: the document's
    /// code, or 1001 for a profile without its user id.
    pub fn to_refusal(&self) -> Refusal {
        match self {
            ProfileError::Document(e) => e.to_refusal(),
            ProfileError::NoUserId => Refusal::new(
                ErrorCode::MissingParameter,
                "the Profile has no details/userId",
            ),
        }
    }
}

impl From<ProfileError> for Refusal {
    fn from(e: ProfileError) -> Self {
        e.to_refusal()
    }
}

impl Profile {
    /// Reads a `Profile` body (UTF-8 or ISO-8859-1, default
    /// [`XsiLimits`]).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Profile, ProfileError> {
        let root = document::parse(body, content_type, &XsiLimits::default())?;
        Profile::from_element(&root)
    }

    /// Reads a parsed document; a profile always has a user id.
    pub fn from_element(root: &Element) -> Result<Profile, ProfileError> {
        let mut p = Profile::default();
        p.read(root, None);
        if p.user_id.is_empty() {
            return Err(ProfileError::NoUserId);
        }
        Ok(p)
    }

    fn read(&mut self, el: &Element, parent: Option<&str>) {
        if el.name == "serviceProvider" {
            for (name, value) in &el.attributes {
                if name == "isEnterprise" {
                    self.is_enterprise = value == "true";
                }
            }
        }
        let value = el.text.trim();
        if !value.is_empty() {
            if let Some(field) = self.field(parent, &el.name) {
                *field = value.to_string();
            }
        }
        for child in &el.children {
            self.read(child, Some(&el.name));
        }
    }

    fn field(&mut self, parent: Option<&str>, name: &str) -> Option<&mut String> {
        Some(match (parent?, name) {
            ("details", "userId") => &mut self.user_id,
            ("details", "firstName") => &mut self.first_name,
            ("details", "lastName") => &mut self.last_name,
            ("details", "groupId") => &mut self.group_id,
            ("details", "serviceProvider") => &mut self.service_provider_id,
            ("details", "number") => self.number.get_or_insert_default(),
            ("details", "extension") => self.extension.get_or_insert_default(),
            ("additionalDetails", "mobile") => self.mobile.get_or_insert_default(),
            ("additionalDetails", "emailAddress") => self.email.get_or_insert_default(),
            ("Profile", "countryCode") => self.country_code.get_or_insert_default(),
            _ => return None,
        })
    }

    /// The number in E.164 (`+{countryCode}{number}`), when both are known
    /// and make a valid number.
    pub fn e164_number(&self) -> Option<crate::domain::phone::E164> {
        let number = self.number.as_deref()?;
        let raw = if number.starts_with('+') {
            number.to_string()
        } else {
            format!("+{}{}", self.country_code.as_deref()?, number)
        };
        crate::domain::phone::E164::parse(&raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_refusals_with_the_tables_codes() {
        use crate::domain::{ErrorCode, Refusal};
        let no_user = Profile::parse(b"<Profile><details/></Profile>", None).expect_err("no id");
        let r = Refusal::from(no_user);
        assert_eq!(
            (r.code, r.http_status()),
            (ErrorCode::MissingParameter, 400)
        );
        let dtd = Profile::parse(b"<!DOCTYPE p><Profile/>", None).expect_err("dtd");
        assert_eq!(dtd.to_refusal().code, ErrorCode::ForbiddenXmlConstruct);
    }

    const SAMPLE: &str = include_str!("../../tests/support/xsp-profile.xml");

    #[test]
    fn reads_the_spec_sample_profile() {
        let p = Profile::parse(SAMPLE.as_bytes(), Some("application/xml")).unwrap();
        assert_eq!(p.user_id, "negi001@172.16.25.102");
        assert_eq!(
            (p.first_name.as_str(), p.last_name.as_str()),
            ("Subhash", "Negi")
        );
        assert_eq!(p.group_id, "gp1");
        assert_eq!(p.service_provider_id, "sp1");
        assert!(!p.is_enterprise);
        assert_eq!(p.number.as_deref(), Some("5006007004"));
        assert_eq!(p.extension.as_deref(), Some("7004"));
        assert_eq!(p.email.as_deref(), Some("subhashnegi@gmail.com"));
        assert_eq!(p.mobile, None, "xsi:nil stays empty");
        assert_eq!(p.e164_number().unwrap().as_str(), "+15006007004");
    }

    #[test]
    fn latin1_profiles_decode_and_junk_is_refused() {
        let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Profile xmlns=\"http://schema.broadsoft.com/xsi\"><details><userId>j@x.example</userId><firstName>J\xfcrgen</firstName></details></Profile>";
        let p = Profile::parse(doc, None).unwrap();
        assert_eq!(p.first_name, "J\u{fc}rgen");
        assert_eq!(
            Profile::parse(b"<Profile><details/></Profile>", None),
            Err(ProfileError::NoUserId)
        );
        assert!(matches!(
            Profile::parse(b"<Profile><details>", None),
            Err(ProfileError::Document(XsiParseError::Unclosed(_)))
        ));
    }

    #[test]
    fn the_fixture_profile_reads_an_enterprise_user() {
        let doc = include_str!(
            "../../tests/support/xsi-samples/actions-profile-get-response.fixture.xml"
        );
        let p = Profile::parse(doc.as_bytes(), None).unwrap();
        assert_eq!(p.user_id, "Test1234User1@xdp.broadsoft.com");
        assert_eq!(p.service_provider_id, "Test1234Ent");
        assert!(p.is_enterprise);
        assert_eq!(p.email, None, "empty additionalDetails");
        assert_eq!(p.e164_number().unwrap().as_str(), "+11234567890");
    }

    #[test]
    fn references_are_part_of_the_text() {
        // quick-xml reports `&amp;` as its own event: the whole text is
        // read, not its last piece.
        let doc = b"<Profile><details><userId>u@x.example</userId><lastName>Smith &amp; Sons</lastName></details></Profile>";
        let p = Profile::parse(doc, None).unwrap();
        assert_eq!(p.last_name, "Smith & Sons");
    }
}
