//! Subscriber operations as every face hands them to `provision`: add,
//! modify, delete, and device activation-code requests, validated against
//! BroadWorks' OCI-P field limits.
//!
//! Faces collect the raw text of each field into [`RawFields`] (OCI field
//! names; `None` = element absent, `Some("")` = empty element) and call
//! [`Operation::from_raw`]. Validation stops at the first problem and names
//! the OCI field in a [`FieldError`].

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::email::normalize_email;
use super::error_code::ErrorCode;
use super::ids::{EnterpriseKey, UserId};
use super::phone::DirectoryNumber;
use super::template::Package;

/// OCI-P size limits, in characters.
pub const NAME_MAX_CHARS: usize = 30;
pub const SERVICE_PROVIDER_ID_MAX_CHARS: usize = 30;
pub const GROUP_ID_MAX_CHARS: usize = 30;
pub const EMAIL_MAX_CHARS: usize = 80;
pub const EXTENSION_MIN_DIGITS: usize = 2;
pub const EXTENSION_MAX_DIGITS: usize = 20;
pub const LANGUAGE_MAX_CHARS: usize = 40;
pub const TIME_ZONE_MAX_CHARS: usize = 127;
pub const DEVICE_TYPE_MAX_CHARS: usize = 40;
/// `serviceProviderName` and `groupName` (OCI-P allows 80 for names).
pub const ORG_NAME_PART_MAX_CHARS: usize = 80;

/// One invalid field of one operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub code: ErrorCode,
    /// The OCI field name (`userId`, `phoneNumber`, …).
    pub field: &'static str,
    /// What is wrong, without the field name (Display adds it).
    pub message: String,
}

impl FieldError {
    pub fn new(code: ErrorCode, field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            code,
            field,
            message: message.into(),
        }
    }

    pub fn missing(field: &'static str) -> Self {
        FieldError::new(ErrorCode::MissingParameter, field, "is missing")
    }

    /// The same error reported on another field (e.g. an `E164` error on
    /// `mobilePhoneNumber`).
    pub fn for_field(mut self, field: &'static str) -> Self {
        self.field = field;
        self
    }
}

/// The four operations of the flow-through contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationKind {
    AddUser,
    ModifyUser,
    DeleteUser,
    RequestActivationCode,
}

impl OperationKind {
    pub const ALL: [OperationKind; 4] = [
        OperationKind::AddUser,
        OperationKind::ModifyUser,
        OperationKind::DeleteUser,
        OperationKind::RequestActivationCode,
    ];

    /// The element name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            OperationKind::AddUser => "AddUser",
            OperationKind::ModifyUser => "ModifyUser",
            OperationKind::DeleteUser => "DeleteUser",
            OperationKind::RequestActivationCode => "RequestActivationCode",
        }
    }

    /// Exact (case-sensitive) element name → kind.
    pub fn from_name(name: &[u8]) -> Option<OperationKind> {
        match name {
            b"AddUser" => Some(OperationKind::AddUser),
            b"ModifyUser" => Some(OperationKind::ModifyUser),
            b"DeleteUser" => Some(OperationKind::DeleteUser),
            b"RequestActivationCode" => Some(OperationKind::RequestActivationCode),
            _ => None,
        }
    }
}

impl fmt::Display for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A subscriber to provision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscriber {
    pub user_id: UserId,
    pub service_provider_id: String,
    pub group_id: String,
    pub first_name: String,
    pub last_name: String,
    /// Normalized (domain lower-cased).
    pub email: Option<String>,
    pub phone_number: Option<DirectoryNumber>,
    pub extension: Option<String>,
    pub mobile_phone_number: Option<DirectoryNumber>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    /// `None`: the template's default package.
    pub package: Option<Package>,
    pub is_trunk_user: bool,
    pub has_route_list: bool,
    /// The enterprise's (service provider's) name, when BroadWorks sent one.
    #[serde(default)]
    pub service_provider_name: Option<String>,
    /// The group's name, when BroadWorks sent one.
    #[serde(default)]
    pub group_name: Option<String>,
}

impl NewSubscriber {
    pub fn enterprise_key(&self, enterprise_mode: bool) -> EnterpriseKey {
        EnterpriseKey::derive(&self.service_provider_id, &self.group_id, enterprise_mode)
    }

    /// The name of the organization this subscriber's enterprise gets when
    /// it is created for it ([`super::organization::new_org_name`]).
    pub fn new_org_name(&self, enterprise_mode: bool) -> String {
        super::organization::new_org_name(
            enterprise_mode,
            self.service_provider_name.as_deref(),
            self.group_name.as_deref(),
            &self.enterprise_key(enterprise_mode),
        )
    }
}

/// A change to an existing subscriber. `None` = unchanged. For the three
/// removable fields `Some(None)` (an empty element) removes the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberChanges {
    pub user_id: UserId,
    pub service_provider_id: String,
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub phone_number: Option<Option<DirectoryNumber>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub extension: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_or_null"
    )]
    pub mobile_phone_number: Option<Option<DirectoryNumber>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Package>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_trunk_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_route_list: Option<bool>,
}

impl SubscriberChanges {
    /// A change of nothing for the subscriber with these ids (callers set
    /// the fields they change).
    pub fn only_ids(user_id: UserId, service_provider_id: String, group_id: String) -> Self {
        SubscriberChanges {
            user_id,
            service_provider_id,
            group_id,
            first_name: None,
            last_name: None,
            email: None,
            phone_number: None,
            extension: None,
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            package: None,
            is_trunk_user: None,
            has_route_list: None,
        }
    }

    pub fn enterprise_key(&self, enterprise_mode: bool) -> EnterpriseKey {
        EnterpriseKey::derive(&self.service_provider_id, &self.group_id, enterprise_mode)
    }
}

/// JSON: absent key → `None` (via `default`), `null` → `Some(None)`.
fn present_or_null<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The subscriber a delete is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberRef {
    pub user_id: UserId,
    pub service_provider_id: Option<String>,
    pub group_id: Option<String>,
}

/// A device asks for an activation code (device onboarding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationCodeRequest {
    pub user_id: UserId,
    pub device_type: Option<String>,
    /// 12 upper-case hex digits, no separators.
    pub mac_address: Option<String>,
}

/// A validated operation. JSON: `{"kind":"AddUser","userId":…,…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Operation {
    AddUser(NewSubscriber),
    ModifyUser(SubscriberChanges),
    DeleteUser(SubscriberRef),
    RequestActivationCode(ActivationCodeRequest),
}

impl Operation {
    pub fn kind(&self) -> OperationKind {
        match self {
            Operation::AddUser(_) => OperationKind::AddUser,
            Operation::ModifyUser(_) => OperationKind::ModifyUser,
            Operation::DeleteUser(_) => OperationKind::DeleteUser,
            Operation::RequestActivationCode(_) => OperationKind::RequestActivationCode,
        }
    }

    pub fn user_id(&self) -> &UserId {
        match self {
            Operation::AddUser(s) => &s.user_id,
            Operation::ModifyUser(c) => &c.user_id,
            Operation::DeleteUser(r) => &r.user_id,
            Operation::RequestActivationCode(a) => &a.user_id,
        }
    }

    /// Validates the raw fields of one operation of `kind`. Fields that do
    /// not belong to `kind` are ignored.
    pub fn from_raw(kind: OperationKind, raw: &RawFields<'_>) -> Result<Operation, FieldError> {
        Ok(match kind {
            OperationKind::AddUser => Operation::AddUser(NewSubscriber::from_raw(raw)?),
            OperationKind::ModifyUser => Operation::ModifyUser(SubscriberChanges::from_raw(raw)?),
            OperationKind::DeleteUser => Operation::DeleteUser(SubscriberRef::from_raw(raw)?),
            OperationKind::RequestActivationCode => {
                Operation::RequestActivationCode(ActivationCodeRequest::from_raw(raw)?)
            }
        })
    }
}

/// Unvalidated field text, by OCI field name. `None`: the field was not
/// sent; `Some("")` (after trimming): it was sent empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawFields<'a> {
    pub user_id: Option<Cow<'a, str>>,
    pub service_provider_id: Option<Cow<'a, str>>,
    pub group_id: Option<Cow<'a, str>>,
    pub first_name: Option<Cow<'a, str>>,
    pub last_name: Option<Cow<'a, str>>,
    pub email_address: Option<Cow<'a, str>>,
    pub phone_number: Option<Cow<'a, str>>,
    pub extension: Option<Cow<'a, str>>,
    pub mobile_phone_number: Option<Cow<'a, str>>,
    pub language: Option<Cow<'a, str>>,
    pub time_zone: Option<Cow<'a, str>>,
    pub package: Option<Cow<'a, str>>,
    pub is_trunk_user: Option<Cow<'a, str>>,
    pub has_route_list: Option<Cow<'a, str>>,
    pub device_type: Option<Cow<'a, str>>,
    pub mac_address: Option<Cow<'a, str>>,
    pub service_provider_name: Option<Cow<'a, str>>,
    pub group_name: Option<Cow<'a, str>>,
}

impl NewSubscriber {
    pub fn from_raw(raw: &RawFields<'_>) -> Result<NewSubscriber, FieldError> {
        let user_id = required_user_id(&raw.user_id)?;
        let service_provider_id = required_text(
            "serviceProviderId",
            &raw.service_provider_id,
            SERVICE_PROVIDER_ID_MAX_CHARS,
        )?;
        let group_id = required_text("groupId", &raw.group_id, GROUP_ID_MAX_CHARS)?;
        let first_name = required_text("firstName", &raw.first_name, NAME_MAX_CHARS)?;
        let last_name = required_text("lastName", &raw.last_name, NAME_MAX_CHARS)?;
        let email = optional_email(&raw.email_address)?;
        let phone_number = optional_phone("phoneNumber", &raw.phone_number)?;
        let extension = present(&raw.extension).map(extension).transpose()?;
        let mobile_phone_number = optional_phone("mobilePhoneNumber", &raw.mobile_phone_number)?;
        let language = optional_text("language", &raw.language, LANGUAGE_MAX_CHARS)?;
        let time_zone = optional_text("timeZone", &raw.time_zone, TIME_ZONE_MAX_CHARS)?;
        let package = optional_package(&raw.package)?;
        let is_trunk_user = optional_bool("isTrunkUser", &raw.is_trunk_user)?.unwrap_or(false);
        let has_route_list = optional_bool("hasRouteList", &raw.has_route_list)?.unwrap_or(false);
        let service_provider_name = optional_text(
            "serviceProviderName",
            &raw.service_provider_name,
            ORG_NAME_PART_MAX_CHARS,
        )?;
        let group_name = optional_text("groupName", &raw.group_name, ORG_NAME_PART_MAX_CHARS)?;
        if phone_number.is_none() && extension.is_none() {
            return Err(FieldError::new(
                ErrorCode::MissingParameter,
                "phoneNumber",
                "phoneNumber or extension is required",
            ));
        }
        if is_trunk_user && has_route_list {
            return Err(trunk_with_route_list());
        }
        Ok(NewSubscriber {
            user_id,
            service_provider_id,
            group_id,
            first_name,
            last_name,
            email,
            phone_number,
            extension,
            mobile_phone_number,
            language,
            time_zone,
            package,
            is_trunk_user,
            has_route_list,
            service_provider_name,
            group_name,
        })
    }
}

impl SubscriberChanges {
    /// Empty elements of fields that cannot be removed (names, email,
    /// language, time zone, package, flags) mean "unchanged": an AS that
    /// always sends every field sends them empty when it has no value.
    pub fn from_raw(raw: &RawFields<'_>) -> Result<SubscriberChanges, FieldError> {
        let user_id = required_user_id(&raw.user_id)?;
        let service_provider_id = required_text(
            "serviceProviderId",
            &raw.service_provider_id,
            SERVICE_PROVIDER_ID_MAX_CHARS,
        )?;
        let group_id = required_text("groupId", &raw.group_id, GROUP_ID_MAX_CHARS)?;
        let first_name = optional_text("firstName", &raw.first_name, NAME_MAX_CHARS)?;
        let last_name = optional_text("lastName", &raw.last_name, NAME_MAX_CHARS)?;
        let email = optional_email(&raw.email_address)?;
        let phone_number = removable_phone("phoneNumber", &raw.phone_number)?;
        let extension = match raw.extension.as_deref().map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(v) => Some(Some(extension(v)?)),
        };
        let mobile_phone_number = removable_phone("mobilePhoneNumber", &raw.mobile_phone_number)?;
        let language = optional_text("language", &raw.language, LANGUAGE_MAX_CHARS)?;
        let time_zone = optional_text("timeZone", &raw.time_zone, TIME_ZONE_MAX_CHARS)?;
        let package = optional_package(&raw.package)?;
        let is_trunk_user = optional_bool("isTrunkUser", &raw.is_trunk_user)?;
        let has_route_list = optional_bool("hasRouteList", &raw.has_route_list)?;
        if phone_number == Some(None) && extension == Some(None) {
            return Err(FieldError::new(
                ErrorCode::MissingParameter,
                "phoneNumber",
                "phoneNumber and extension cannot both be removed; a subscriber keeps at least one",
            ));
        }
        if is_trunk_user == Some(true) && has_route_list == Some(true) {
            return Err(trunk_with_route_list());
        }
        Ok(SubscriberChanges {
            user_id,
            service_provider_id,
            group_id,
            first_name,
            last_name,
            email,
            phone_number,
            extension,
            mobile_phone_number,
            language,
            time_zone,
            package,
            is_trunk_user,
            has_route_list,
        })
    }

    /// True when nothing but the identifying fields was sent.
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.email.is_none()
            && self.phone_number.is_none()
            && self.extension.is_none()
            && self.mobile_phone_number.is_none()
            && self.language.is_none()
            && self.time_zone.is_none()
            && self.package.is_none()
            && self.is_trunk_user.is_none()
            && self.has_route_list.is_none()
    }
}

impl SubscriberRef {
    pub fn from_raw(raw: &RawFields<'_>) -> Result<SubscriberRef, FieldError> {
        Ok(SubscriberRef {
            user_id: required_user_id(&raw.user_id)?,
            service_provider_id: optional_text(
                "serviceProviderId",
                &raw.service_provider_id,
                SERVICE_PROVIDER_ID_MAX_CHARS,
            )?,
            group_id: optional_text("groupId", &raw.group_id, GROUP_ID_MAX_CHARS)?,
        })
    }
}

impl ActivationCodeRequest {
    pub fn from_raw(raw: &RawFields<'_>) -> Result<ActivationCodeRequest, FieldError> {
        Ok(ActivationCodeRequest {
            user_id: required_user_id(&raw.user_id)?,
            device_type: optional_text("deviceType", &raw.device_type, DEVICE_TYPE_MAX_CHARS)?,
            mac_address: present(&raw.mac_address).map(mac_address).transpose()?,
        })
    }
}

fn trunk_with_route_list() -> FieldError {
    FieldError::new(
        ErrorCode::TrunkUserWithRouteList,
        "hasRouteList",
        "a trunk user with a route list cannot be provisioned",
    )
}

/// The trimmed value, or `None` when absent or empty.
fn present<'r>(v: &'r Option<Cow<'_, str>>) -> Option<&'r str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required_user_id(v: &Option<Cow<'_, str>>) -> Result<UserId, FieldError> {
    match present(v) {
        Some(s) => UserId::parse(s),
        None => Err(FieldError::missing("userId")),
    }
}

/// Free text: no control characters, `1..=max` characters.
pub fn check_text(field: &'static str, v: &str, max: usize) -> Result<String, FieldError> {
    let mut n = 0usize;
    for c in v.chars() {
        if c.is_control() {
            return Err(FieldError::new(
                ErrorCode::InvalidParameterValue,
                field,
                "must not contain control characters",
            ));
        }
        n += 1;
    }
    if n == 0 || n > max {
        return Err(FieldError::new(
            ErrorCode::InvalidParameterSize,
            field,
            format!("must be 1-{max} characters, got {n}"),
        ));
    }
    Ok(v.to_string())
}

fn required_text(
    field: &'static str,
    v: &Option<Cow<'_, str>>,
    max: usize,
) -> Result<String, FieldError> {
    match present(v) {
        Some(s) => check_text(field, s, max),
        None => Err(FieldError::missing(field)),
    }
}

fn optional_text(
    field: &'static str,
    v: &Option<Cow<'_, str>>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    present(v).map(|s| check_text(field, s, max)).transpose()
}

fn optional_email(v: &Option<Cow<'_, str>>) -> Result<Option<String>, FieldError> {
    const FIELD: &str = "emailAddress";
    let Some(s) = present(v) else {
        return Ok(None);
    };
    let n = s.chars().count();
    if n > EMAIL_MAX_CHARS {
        return Err(FieldError::new(
            ErrorCode::InvalidParameterSize,
            FIELD,
            format!("must be at most {EMAIL_MAX_CHARS} characters, got {n}"),
        ));
    }
    normalize_email(s)
        .map(Some)
        .map_err(|e| FieldError::new(ErrorCode::InvalidEmail, FIELD, e.to_string()))
}

fn optional_phone(
    field: &'static str,
    v: &Option<Cow<'_, str>>,
) -> Result<Option<DirectoryNumber>, FieldError> {
    present(v)
        .map(|s| DirectoryNumber::parse(s).map_err(|e| e.for_field(field)))
        .transpose()
}

fn removable_phone(
    field: &'static str,
    v: &Option<Cow<'_, str>>,
) -> Result<Option<Option<DirectoryNumber>>, FieldError> {
    match v.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(s) => DirectoryNumber::parse(s)
            .map(|n| Some(Some(n)))
            .map_err(|e| e.for_field(field)),
    }
}

/// An extension: 2..=20 ASCII digits.
pub fn extension(v: &str) -> Result<String, FieldError> {
    const FIELD: &str = "extension";
    if !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(
            ErrorCode::InvalidParameterValue,
            FIELD,
            "may contain only digits 0-9",
        ));
    }
    if !(EXTENSION_MIN_DIGITS..=EXTENSION_MAX_DIGITS).contains(&v.len()) {
        return Err(FieldError::new(
            ErrorCode::InvalidParameterSize,
            FIELD,
            format!(
                "must be {EXTENSION_MIN_DIGITS}-{EXTENSION_MAX_DIGITS} digits, got {}",
                v.len()
            ),
        ));
    }
    Ok(v.to_string())
}

fn optional_package(v: &Option<Cow<'_, str>>) -> Result<Option<Package>, FieldError> {
    match present(v) {
        None => Ok(None),
        Some(s) => Package::parse(s).map(Some).ok_or_else(|| {
            FieldError::new(
                ErrorCode::InvalidParameterValue,
                "package",
                format!(
                    "unknown package {}; expected softphone, basic, standard or premium",
                    shown(s)
                ),
            )
        }),
    }
}

fn optional_bool(
    field: &'static str,
    v: &Option<Cow<'_, str>>,
) -> Result<Option<bool>, FieldError> {
    match present(v) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(s) => Err(FieldError::new(
            ErrorCode::InvalidParameterValue,
            field,
            format!("must be true, false, 1 or 0, got {}", shown(s)),
        )),
    }
}

/// A MAC address: 12 hex digits, optionally separated by ':', '-' or '.'
/// (`00:1A:2b:3c:4d:5e`, `001a.2b3c.4d5e`); normalized to upper case
/// without separators.
pub fn mac_address(v: &str) -> Result<String, FieldError> {
    const FIELD: &str = "macAddress";
    let mut out = String::with_capacity(12);
    for c in v.chars() {
        match c {
            ':' | '-' | '.' => {}
            c if c.is_ascii_hexdigit() => {
                if out.len() == 12 {
                    return Err(FieldError::new(
                        ErrorCode::InvalidParameterValue,
                        FIELD,
                        "must have exactly 12 hex digits",
                    ));
                }
                out.push(c.to_ascii_uppercase());
            }
            _ => {
                return Err(FieldError::new(
                    ErrorCode::InvalidParameterValue,
                    FIELD,
                    "may contain only hex digits and ':', '-' or '.' separators",
                ))
            }
        }
    }
    if out.len() != 12 {
        return Err(FieldError::new(
            ErrorCode::InvalidParameterValue,
            FIELD,
            "must have exactly 12 hex digits",
        ));
    }
    Ok(out)
}

/// A user value quoted for a message: at most 40 characters, control
/// characters escaped.
fn shown(s: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == 40 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorCode::*;

    fn c(s: &str) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(s))
    }

    fn add_raw() -> RawFields<'static> {
        RawFields {
            user_id: c("alice@example.com"),
            service_provider_id: c("SP1"),
            group_id: c("Acme"),
            first_name: c("Alice"),
            last_name: c("Smith"),
            phone_number: c("+1 240 555 1212"),
            ..RawFields::default()
        }
    }

    fn modify_raw() -> RawFields<'static> {
        RawFields {
            user_id: c("alice@example.com"),
            service_provider_id: c("SP1"),
            group_id: c("Acme"),
            ..RawFields::default()
        }
    }

    fn add_err(f: impl FnOnce(&mut RawFields<'static>)) -> FieldError {
        let mut raw = add_raw();
        f(&mut raw);
        NewSubscriber::from_raw(&raw).expect_err("should be rejected")
    }

    fn modify_err(f: impl FnOnce(&mut RawFields<'static>)) -> FieldError {
        let mut raw = modify_raw();
        f(&mut raw);
        SubscriberChanges::from_raw(&raw).expect_err("should be rejected")
    }

    #[test]
    fn minimal_add_user_is_valid_with_defaults() {
        let s = NewSubscriber::from_raw(&add_raw()).unwrap();
        assert_eq!(s.user_id.as_str(), "alice@example.com");
        assert_eq!(s.phone_number.as_ref().unwrap().as_str(), "+12405551212");
        assert_eq!(s.email, None);
        assert_eq!(s.package, None);
        assert!(!s.is_trunk_user && !s.has_route_list);
        assert_eq!(s.enterprise_key(false).as_str(), "SP1+Acme");
        assert_eq!(s.enterprise_key(true).as_str(), "SP1");
    }

    #[test]
    fn full_add_user_normalizes_every_field() {
        let mut raw = add_raw();
        raw.first_name = c("  Müller ");
        raw.email_address = c(" Alice.Smith@Example.COM ");
        raw.extension = c("1212");
        raw.mobile_phone_number = c("+44 7700 900123");
        raw.language = c("English");
        raw.time_zone = c("America/New_York");
        raw.package = c("Premium");
        raw.is_trunk_user = c("0");
        raw.has_route_list = c("true");
        let s = NewSubscriber::from_raw(&raw).unwrap();
        assert_eq!(s.first_name, "Müller");
        assert_eq!(s.email.as_deref(), Some("Alice.Smith@example.com"));
        assert_eq!(s.extension.as_deref(), Some("1212"));
        assert_eq!(s.mobile_phone_number.unwrap().as_str(), "+447700900123");
        assert_eq!(s.package, Some(Package::Premium));
        assert!(!s.is_trunk_user);
        assert!(s.has_route_list);
    }

    #[test]
    fn missing_mandatory_fields_name_the_oci_field() {
        type Edit = fn(&mut RawFields<'static>);
        let cases: Vec<(&str, Edit)> = vec![
            ("userId", |r| r.user_id = None),
            ("userId", |r| r.user_id = c("  ")),
            ("serviceProviderId", |r| r.service_provider_id = None),
            ("groupId", |r| r.group_id = c("")),
            ("firstName", |r| r.first_name = None),
            ("lastName", |r| r.last_name = c(" \t ")),
        ];
        for (field, f) in cases {
            let e = add_err(f);
            assert_eq!((e.code, e.field), (MissingParameter, field), "{e}");
        }
        let e = add_err(|r| r.phone_number = None);
        assert_eq!((e.code, e.field), (MissingParameter, "phoneNumber"));
        // An extension alone is enough; an empty phone element counts as missing.
        let mut raw = add_raw();
        raw.phone_number = c("");
        raw.extension = c("42");
        assert!(NewSubscriber::from_raw(&raw).is_ok());
    }

    #[test]
    fn first_problem_wins() {
        let e = add_err(|r| {
            r.user_id = None;
            r.first_name = None;
            r.email_address = c("bad");
        });
        assert_eq!(e.field, "userId");
        let e = add_err(|r| {
            r.email_address = c("bad");
            r.phone_number = c("bad");
        });
        assert_eq!(e.code, InvalidEmail);
    }

    #[test]
    fn size_limits_table() {
        let n = |k: usize| "x".repeat(k);
        let cases: Vec<(&'static str, String, usize)> = vec![
            ("serviceProviderId", n(31), 30),
            ("groupId", n(31), 30),
            ("firstName", n(31), 30),
            ("lastName", n(31), 30),
            ("language", n(41), 40),
            ("timeZone", n(128), 127),
        ];
        for (field, value, max) in cases {
            let v: &'static str = Box::leak(value.into_boxed_str());
            let at_max: &'static str = &v[..max];
            let set = |r: &mut RawFields<'static>, s: &'static str| match field {
                "serviceProviderId" => r.service_provider_id = c(s),
                "groupId" => r.group_id = c(s),
                "firstName" => r.first_name = c(s),
                "lastName" => r.last_name = c(s),
                "language" => r.language = c(s),
                _ => r.time_zone = c(s),
            };
            let mut raw = add_raw();
            set(&mut raw, v);
            let e = NewSubscriber::from_raw(&raw).expect_err(field);
            assert_eq!((e.code, e.field), (InvalidParameterSize, field), "{e}");
            let mut raw = add_raw();
            set(&mut raw, at_max);
            assert!(
                NewSubscriber::from_raw(&raw).is_ok(),
                "{field} at its limit"
            );
        }
        // Limits count characters, not bytes.
        let mut raw = add_raw();
        raw.last_name = c("ÄÖÜäöüßÄÖÜäöüßÄÖÜäöüßÄÖÜäöüßÄÖ"); // 30 chars, 60 bytes
        assert!(NewSubscriber::from_raw(&raw).is_ok());
    }

    #[test]
    fn email_table() {
        let mut raw = add_raw();
        raw.email_address = c("");
        assert_eq!(NewSubscriber::from_raw(&raw).unwrap().email, None);
        let long = format!("{}@example.com", "a".repeat(69)); // 81 chars
        let long: &'static str = Box::leak(long.into_boxed_str());
        let e = add_err(|r| r.email_address = c(long));
        assert_eq!((e.code, e.field), (InvalidParameterSize, "emailAddress"));
        for bad in [
            "plain",
            "a@b",
            "a b@c.com",
            "a@@c.com",
            "@c.com",
            "a@c..com",
        ] {
            let e = add_err(|r| r.email_address = c(bad));
            assert_eq!((e.code, e.field), (InvalidEmail, "emailAddress"), "{bad}");
        }
    }

    #[test]
    fn phone_errors_name_their_field() {
        let e = add_err(|r| r.phone_number = c("240 555 CALL"));
        assert_eq!((e.code, e.field), (InvalidPhoneNumber, "phoneNumber"));
        let e = add_err(|r| r.mobile_phone_number = c("+1 555 CALL ME"));
        assert_eq!((e.code, e.field), (InvalidPhoneNumber, "mobilePhoneNumber"));
    }

    #[test]
    fn extension_table() {
        for ok in ["12", "1212", "00000000000000000000"] {
            assert_eq!(extension(ok).as_deref(), Ok(ok));
        }
        for (bad, code) in [
            ("1", InvalidParameterSize),
            ("123456789012345678901", InvalidParameterSize),
            ("12a", InvalidParameterValue),
            ("12-34", InvalidParameterValue),
            ("١٢٣", InvalidParameterValue), // Arabic-Indic digits
        ] {
            assert_eq!(extension(bad).unwrap_err().code, code, "{bad}");
        }
        let e = add_err(|r| r.extension = c("x1"));
        assert_eq!((e.code, e.field), (InvalidParameterValue, "extension"));
    }

    #[test]
    fn mac_table() {
        for (raw, want) in [
            ("001A2B3C4D5E", "001A2B3C4D5E"),
            ("00:1a:2b:3c:4d:5e", "001A2B3C4D5E"),
            ("00-1A-2B-3C-4D-5E", "001A2B3C4D5E"),
            ("001a.2b3c.4d5e", "001A2B3C4D5E"),
        ] {
            assert_eq!(mac_address(raw).as_deref(), Ok(want), "{raw}");
        }
        for bad in [
            "001A2B3C4D5",
            "001A2B3C4D5E6",
            "00:1A:2B:3C:4D:5G",
            "00 1A 2B 3C 4D 5E",
        ] {
            let e = mac_address(bad).expect_err(bad);
            assert_eq!(
                (e.code, e.field),
                (InvalidParameterValue, "macAddress"),
                "{bad}"
            );
        }
    }

    #[test]
    fn value_rules_give_9017() {
        let e = add_err(|r| r.package = c("gold"));
        assert_eq!((e.code, e.field), (InvalidParameterValue, "package"));
        assert!(e.message.contains("'gold'"));
        for bad in ["yes", "TRUE ", "2", "on"] {
            let e = add_err(|r| r.is_trunk_user = c(bad));
            assert_eq!(
                (e.code, e.field),
                (InvalidParameterValue, "isTrunkUser"),
                "{bad}"
            );
        }
        let e = add_err(|r| r.first_name = c("Al\u{7}ice"));
        assert_eq!((e.code, e.field), (InvalidParameterValue, "firstName"));
        let e = add_err(|r| r.last_name = c("Smi\nth"));
        assert_eq!((e.code, e.field), (InvalidParameterValue, "lastName"));
        // Messages never carry raw control characters.
        let e = add_err(|r| r.package = c("go\u{1}ld"));
        assert!(!e.message.chars().any(char::is_control), "{:?}", e.message);
    }

    #[test]
    fn trunk_user_with_route_list_is_refused() {
        for (t, r) in [("true", "true"), ("1", "1"), ("true", "1")] {
            let e = add_err(|raw| {
                raw.is_trunk_user = c(t);
                raw.has_route_list = c(r);
            });
            assert_eq!(e.code, TrunkUserWithRouteList);
        }
        let e = modify_err(|raw| {
            raw.is_trunk_user = c("true");
            raw.has_route_list = c("true");
        });
        assert_eq!(e.code, TrunkUserWithRouteList);
    }

    #[test]
    fn modify_distinguishes_absent_empty_and_set() {
        let mut raw = modify_raw();
        raw.mobile_phone_number = c("");
        raw.extension = c(" 4711 ");
        raw.first_name = c("");
        raw.package = c("standard");
        let ch = SubscriberChanges::from_raw(&raw).unwrap();
        assert_eq!(ch.phone_number, None);
        assert_eq!(ch.mobile_phone_number, Some(None));
        assert_eq!(ch.extension, Some(Some("4711".to_string())));
        assert_eq!(ch.first_name, None);
        assert_eq!(ch.package, Some(Package::Standard));
        assert!(!ch.is_empty());
        assert!(SubscriberChanges::from_raw(&modify_raw())
            .unwrap()
            .is_empty());

        let e = modify_err(|r| {
            r.phone_number = c("");
            r.extension = c("");
        });
        assert_eq!((e.code, e.field), (MissingParameter, "phoneNumber"));
        let e = modify_err(|r| r.group_id = None);
        assert_eq!((e.code, e.field), (MissingParameter, "groupId"));
        let e = modify_err(|r| r.mobile_phone_number = c("+1 x"));
        assert_eq!((e.code, e.field), (InvalidPhoneNumber, "mobilePhoneNumber"));
    }

    #[test]
    fn delete_and_activation_code() {
        let raw = RawFields {
            user_id: c("bob@example.com"),
            ..RawFields::default()
        };
        let op = Operation::from_raw(OperationKind::DeleteUser, &raw).unwrap();
        assert_eq!(op.kind(), OperationKind::DeleteUser);
        assert_eq!(op.user_id().as_str(), "bob@example.com");
        let e = Operation::from_raw(OperationKind::DeleteUser, &RawFields::default()).unwrap_err();
        assert_eq!((e.code, e.field), (MissingParameter, "userId"));

        let raw = RawFields {
            user_id: c("bob@example.com"),
            device_type: c("Polycom VVX 450"),
            mac_address: c("00:04:f2:aa:bb:cc"),
            ..RawFields::default()
        };
        match Operation::from_raw(OperationKind::RequestActivationCode, &raw).unwrap() {
            Operation::RequestActivationCode(a) => {
                assert_eq!(a.mac_address.as_deref(), Some("0004F2AABBCC"));
                assert_eq!(a.device_type.as_deref(), Some("Polycom VVX 450"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_round_trip_keeps_removals_apart_from_absence() {
        let mut raw = modify_raw();
        raw.mobile_phone_number = c("");
        raw.phone_number = c("+12405551212");
        let op = Operation::ModifyUser(SubscriberChanges::from_raw(&raw).unwrap());
        let json = serde_json::to_string(&op).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"ModifyUser","userId":"alice@example.com""#),
            "{json}"
        );
        assert!(json.contains(r#""mobilePhoneNumber":null"#), "{json}");
        assert!(!json.contains("extension"), "{json}");
        let back: Operation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, op);

        let add = Operation::from_raw(OperationKind::AddUser, &add_raw()).unwrap();
        let json = serde_json::to_string(&add).unwrap();
        assert!(json.contains(r#""serviceProviderId":"SP1""#), "{json}");
        assert!(json.contains(r#""isTrunkUser":false"#), "{json}");
        assert_eq!(serde_json::from_str::<Operation>(&json).unwrap(), add);
    }

    #[test]
    fn field_error_display_and_kind_names() {
        let e = FieldError::missing("firstName");
        assert_eq!(e.to_string(), "firstName: is missing");
        for k in OperationKind::ALL {
            assert_eq!(OperationKind::from_name(k.as_str().as_bytes()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
        assert_eq!(OperationKind::from_name(b"adduser"), None);
    }
}
