//! Subscriber state and the pure rules that turn an accepted operation into
//! a new state plus normalized commands. No I/O here: the store runs these
//! inside its transaction so the decision and its record commit together.

use serde::{Deserialize, Serialize};

use super::error_code::ErrorCode;
use super::ids::{EnterpriseKey, UserId};
use super::phone::DirectoryNumber;
use super::subscriber::{NewSubscriber, SubscriberChanges};
use super::template::{CustomerTemplate, Package};

/// Cisco's subscriber statuses, plus `removed` for a partial deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberStatus {
    PendingEmailInput,
    PendingEmailValidation,
    PendingUserMigration,
    Provisioning,
    Provisioned,
    Updating,
    Error,
    Removed,
}

impl SubscriberStatus {
    pub const ALL: [SubscriberStatus; 8] = [
        SubscriberStatus::PendingEmailInput,
        SubscriberStatus::PendingEmailValidation,
        SubscriberStatus::PendingUserMigration,
        SubscriberStatus::Provisioning,
        SubscriberStatus::Provisioned,
        SubscriberStatus::Updating,
        SubscriberStatus::Error,
        SubscriberStatus::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::PendingEmailInput => "pending_email_input",
            SubscriberStatus::PendingEmailValidation => "pending_email_validation",
            SubscriberStatus::PendingUserMigration => "pending_user_migration",
            SubscriberStatus::Provisioning => "provisioning",
            SubscriberStatus::Provisioned => "provisioned",
            SubscriberStatus::Updating => "updating",
            SubscriberStatus::Error => "error",
            SubscriberStatus::Removed => "removed",
        }
    }

    pub fn parse(s: &str) -> Option<SubscriberStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Waiting for the user (email input, validation, consent).
    pub fn is_pending_user(self) -> bool {
        matches!(
            self,
            SubscriberStatus::PendingEmailInput
                | SubscriberStatus::PendingEmailValidation
                | SubscriberStatus::PendingUserMigration
        )
    }
}

/// An asynchronous failure recorded on the subscriber (`errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberError {
    pub error_code: u32,
    pub description: String,
}

/// A subscriber as stored. After a partial deletion `user_id`, numbers and
/// BroadWorks ids are gone; email, names and language stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberRecord {
    pub id: String,
    pub provisioning_id: String,
    pub user_id: Option<UserId>,
    pub enterprise_key: Option<EnterpriseKey>,
    pub org_id: Option<String>,
    pub service_provider_id: Option<String>,
    pub group_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone_number: Option<DirectoryNumber>,
    pub extension: Option<String>,
    pub mobile_phone_number: Option<DirectoryNumber>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub package: Package,
    pub status: SubscriberStatus,
    pub errors: Vec<SubscriberError>,
    pub self_activated: bool,
    /// Bumped on every change; commands carry it so late deliveries can be told apart.
    pub version: i64,
    pub created_at: i64,
    pub last_status_change: i64,
}

/// The organization an enterprise maps to (exactly one per enterprise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationRef {
    pub id: String,
    pub enterprise_key: EnterpriseKey,
    pub name: String,
}

/// A rejection of one operation: the one refusal value (a table code and
/// a one-line reason); the name stays for the use cases that decide them.
pub type Rejection = super::refusal::Refusal;

/// What the world looks like to an AddUser, read inside the transaction.
pub struct AddContext<'a> {
    pub template: &'a CustomerTemplate,
    pub enterprise_key: &'a EnterpriseKey,
    /// The subscriber already holding this BroadWorks user id, if any.
    pub existing: Option<&'a SubscriberRecord>,
    /// The enterprise's organization (settled or pending), or the existing
    /// one a trusted email attaches it to.
    pub organization: Option<&'a OrganizationRef>,
    /// Another account holds the (trusted) email: another live subscriber,
    /// or a user of an existing organization other than `organization`.
    pub email_held_elsewhere: bool,
    /// The subscriber would be the first user of an organization created
    /// here (trusted email, no settled organization, no attach): it takes
    /// an email another account holds at once instead of waiting for
    /// consent.
    pub first_of_new_org: bool,
    pub now: i64,
}

/// Outcome of an AddUser decision.
#[derive(Debug, Clone, PartialEq)]
pub enum AddDecision {
    /// A new subscriber; `create_org` when it is the enterprise's first
    /// and the template creates organizations.
    Create {
        record: SubscriberRecord,
        create_org: bool,
    },
    /// The same user id again with the same data: answer, change nothing.
    Unchanged { record: SubscriberRecord },
    /// The same user id again with new data: treated as a modify.
    Update { changes: SubscriberChanges },
}

pub fn decide_add(
    op: &NewSubscriber,
    ctx: &AddContext<'_>,
    new_id: impl FnOnce() -> String,
) -> Result<AddDecision, Rejection> {
    let settings = &ctx.template.settings;
    if settings.wholesale {
        return Err(Rejection::new(
            ErrorCode::WholesaleRejected,
            "the template belongs to a wholesale customer",
        ));
    }
    // The product makes the email mandatory in the trusted flow: without
    // one there is nobody to provision and nowhere to send a link.
    if settings.trusted_emails && op.email.is_none() {
        return Err(Rejection::new(
            ErrorCode::MissingParameter,
            "email is mandatory when the customer template trusts emails (field: email)",
        ));
    }
    if let Some(existing) = ctx.existing {
        if existing.provisioning_id != ctx.template.provisioning_id
            || existing.enterprise_key.as_ref() != Some(ctx.enterprise_key)
        {
            return Err(Rejection::new(
                ErrorCode::UserIdAlreadyAssociated,
                format!(
                    "userId {} belongs to another enterprise or template",
                    op.user_id
                ),
            ));
        }
        let package = op.package.unwrap_or(existing.package);
        let same = existing.first_name == op.first_name
            && existing.last_name == op.last_name
            && existing.email == op.email
            && existing.phone_number == op.phone_number
            && existing.extension == op.extension
            && existing.mobile_phone_number == op.mobile_phone_number
            && existing.package == package
            && (op.language.is_none() || existing.language == op.language)
            && (op.time_zone.is_none() || existing.time_zone == op.time_zone);
        if same {
            return Ok(AddDecision::Unchanged {
                record: existing.clone(),
            });
        }
        return Ok(AddDecision::Update {
            changes: SubscriberChanges {
                user_id: op.user_id.clone(),
                service_provider_id: op.service_provider_id.clone(),
                group_id: op.group_id.clone(),
                first_name: Some(op.first_name.clone()),
                last_name: Some(op.last_name.clone()),
                email: op.email.clone(),
                phone_number: Some(op.phone_number.clone()),
                extension: Some(op.extension.clone()),
                mobile_phone_number: Some(op.mobile_phone_number.clone()),
                language: op.language.clone(),
                time_zone: op.time_zone.clone(),
                package: op.package,
                is_trunk_user: Some(op.is_trunk_user),
                has_route_list: Some(op.has_route_list),
            },
        });
    }
    let create_org = ctx.organization.is_none() && settings.create_new_orgs;
    // Without an organization to create, an untrusted user may still
    // attach the enterprise to an existing one with the email it verifies.
    let may_attach_later = !settings.trusted_emails && settings.provision_existing_orgs;
    if ctx.organization.is_none() && !settings.create_new_orgs && !may_attach_later {
        return Err(Rejection::new(
            ErrorCode::NewOrgNotAllowed,
            "the template does not create new organizations and none is linked to this enterprise",
        ));
    }
    let status = match (&op.email, settings.trusted_emails) {
        (Some(_), true) if ctx.email_held_elsewhere && !ctx.first_of_new_org => {
            SubscriberStatus::PendingUserMigration
        }
        (Some(_), true) => SubscriberStatus::Provisioning,
        _ => SubscriberStatus::PendingEmailInput,
    };
    Ok(AddDecision::Create {
        record: SubscriberRecord {
            id: new_id(),
            provisioning_id: ctx.template.provisioning_id.clone(),
            user_id: Some(op.user_id.clone()),
            enterprise_key: Some(ctx.enterprise_key.clone()),
            org_id: ctx.organization.map(|o| o.id.clone()),
            service_provider_id: Some(op.service_provider_id.clone()),
            group_id: Some(op.group_id.clone()),
            first_name: op.first_name.clone(),
            last_name: op.last_name.clone(),
            email: op.email.clone(),
            phone_number: op.phone_number.clone(),
            extension: op.extension.clone(),
            mobile_phone_number: op.mobile_phone_number.clone(),
            language: op.language.clone(),
            time_zone: op.time_zone.clone(),
            package: op.package.unwrap_or(settings.default_package),
            status,
            errors: Vec::new(),
            self_activated: false,
            version: 1,
            created_at: ctx.now,
            last_status_change: ctx.now,
        },
        create_org,
    })
}

/// The BroadWorks trunk flags of a subscriber, kept by the store (they are
/// not sent to the license core). A trunk user with a route list cannot be
/// provisioned (9006), whether both flags come in one request or one of
/// them was stored before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrunkFlags {
    pub is_trunk_user: bool,
    pub has_route_list: bool,
}

/// The flags after `changes` (absent flags keep their stored value), or
/// 9006 when the result is a trunk user with a route list.
pub fn trunk_flags_after(
    stored: TrunkFlags,
    changes: &SubscriberChanges,
) -> Result<TrunkFlags, Rejection> {
    let next = TrunkFlags {
        is_trunk_user: changes.is_trunk_user.unwrap_or(stored.is_trunk_user),
        has_route_list: changes.has_route_list.unwrap_or(stored.has_route_list),
    };
    if next.is_trunk_user && next.has_route_list {
        let why = match (changes.is_trunk_user, changes.has_route_list) {
            (Some(true), Some(true)) => "",
            (Some(true), _) => " (it has a route list)",
            _ => " (it is a trunk user)",
        };
        return Err(Rejection::new(
            ErrorCode::TrunkUserWithRouteList,
            format!("a trunk user with a route list cannot be provisioned{why}"),
        ));
    }
    Ok(next)
}

/// Applies a modify to a record. Returns the new record and whether the
/// package changed. Statuses: a provisioned subscriber goes to `updating`;
/// one still provisioning or waiting for its user keeps its status.
pub fn apply_changes(
    current: &SubscriberRecord,
    changes: &SubscriberChanges,
    now: i64,
) -> Result<(SubscriberRecord, Option<Package>), Rejection> {
    if current.status == SubscriberStatus::Removed {
        return Err(Rejection::new(
            ErrorCode::NotFound,
            "the subscriber was removed",
        ));
    }
    let mut next = current.clone();
    if let Some(v) = &changes.first_name {
        next.first_name = v.clone();
    }
    if let Some(v) = &changes.last_name {
        next.last_name = v.clone();
    }
    if let Some(v) = &changes.email {
        next.email = Some(v.clone());
    }
    if let Some(v) = &changes.phone_number {
        next.phone_number = v.clone();
    }
    if let Some(v) = &changes.extension {
        next.extension = v.clone();
    }
    if let Some(v) = &changes.mobile_phone_number {
        next.mobile_phone_number = v.clone();
    }
    if let Some(v) = &changes.language {
        next.language = Some(v.clone());
    }
    if let Some(v) = &changes.time_zone {
        next.time_zone = Some(v.clone());
    }
    // A user moved to another group of its enterprise (enterprise mode:
    // the enterprise key is the service provider's, whatever the group).
    // In group mode the group is the enterprise: another one is not a move.
    let same_enterprise = current.enterprise_key.as_ref()
        == Some(&EnterpriseKey::derive(
            &changes.service_provider_id,
            &changes.group_id,
            true,
        ));
    if same_enterprise && current.group_id.as_deref() != Some(changes.group_id.as_str()) {
        next.group_id = Some(changes.group_id.clone());
    }
    if next.phone_number.is_none() && next.extension.is_none() {
        return Err(Rejection::new(
            ErrorCode::MissingParameter,
            "phoneNumber: a subscriber keeps at least one of phoneNumber or extension",
        ));
    }
    let package_change = match changes.package {
        Some(p) if p != current.package => {
            next.package = p;
            Some(p)
        }
        _ => None,
    };
    if current.status == SubscriberStatus::Error {
        // Any modify of a failed subscriber retries its provisioning.
        next.version += 1;
        next.status = SubscriberStatus::Provisioning;
        next.errors.clear();
        next.last_status_change = now;
        return Ok((next, package_change));
    }
    if next == *current {
        return Ok((next, None));
    }
    next.version += 1;
    if current.status == SubscriberStatus::Provisioned {
        next.status = SubscriberStatus::Updating;
        next.last_status_change = now;
    }
    Ok((next, package_change))
}

/// Partial deletion (what removing Integrated IM&P does): keep email,
/// names and language; drop the BroadWorks user id, numbers, extension and
/// service provider / group ids.
pub fn partial_delete(current: &SubscriberRecord, now: i64) -> SubscriberRecord {
    SubscriberRecord {
        user_id: None,
        phone_number: None,
        extension: None,
        mobile_phone_number: None,
        service_provider_id: None,
        group_id: None,
        status: SubscriberStatus::Removed,
        version: current.version + 1,
        last_status_change: now,
        ..current.clone()
    }
}

/// Full deletion (what a detach does to the enterprise's users): a
/// partial deletion that also drops the personal data the partial one
/// keeps: names (empty: the columns hold text), email, language and time
/// zone. The row stays, `removed`, so commands and licenses still name it.
pub fn full_delete(current: &SubscriberRecord, now: i64) -> SubscriberRecord {
    SubscriberRecord {
        first_name: String::new(),
        last_name: String::new(),
        email: None,
        language: None,
        time_zone: None,
        ..partial_delete(current, now)
    }
}

/// The answer for one operation of a document, as stored for replays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    pub index: usize,
    pub operation: crate::domain::subscriber::OperationKind,
    pub user_id: Option<String>,
    /// Status on success (`provisioning`, `pending_email_input`, …).
    pub status: Option<SubscriberStatus>,
    pub error_code: Option<u32>,
    pub error_message: Option<String>,
}

impl OperationResult {
    pub fn accepted(
        index: usize,
        operation: crate::domain::subscriber::OperationKind,
        user_id: &crate::domain::ids::UserId,
        status: SubscriberStatus,
    ) -> Self {
        OperationResult {
            index,
            operation,
            user_id: Some(user_id.as_str().to_string()),
            status: Some(status),
            error_code: None,
            error_message: None,
        }
    }

    pub fn rejected(
        index: usize,
        operation: crate::domain::subscriber::OperationKind,
        user_id: Option<String>,
        rejection: &Rejection,
    ) -> Self {
        OperationResult {
            index,
            operation,
            user_id,
            status: None,
            error_code: Some(rejection.code.code()),
            error_message: Some(rejection.message().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provisioned() -> SubscriberRecord {
        SubscriberRecord {
            id: "s-1".into(),
            provisioning_id: "t1".into(),
            user_id: UserId::parse("ann@bw.example").ok(),
            enterprise_key: Some(EnterpriseKey::from_stored("ent-1")),
            org_id: Some("org-1".into()),
            service_provider_id: Some("sp".into()),
            group_id: Some("g".into()),
            first_name: "Ann".into(),
            last_name: "Lee".into(),
            email: Some("ann@example.com".into()),
            phone_number: DirectoryNumber::parse("+12405550100").ok(),
            extension: Some("100".into()),
            mobile_phone_number: DirectoryNumber::parse("+12405550199").ok(),
            language: Some("English".into()),
            time_zone: Some("America/New_York".into()),
            package: Package::Standard,
            status: SubscriberStatus::Provisioned,
            errors: vec![],
            self_activated: false,
            version: 3,
            created_at: 1,
            last_status_change: 2,
        }
    }

    #[test]
    fn a_new_group_is_a_move_in_enterprise_mode_only() {
        use crate::domain::subscriber::SubscriberChanges;
        let uid = || UserId::parse("ann@bw.example").unwrap();
        // Enterprise mode: the key is the service provider's.
        let s = SubscriberRecord {
            enterprise_key: Some(EnterpriseKey::from_stored("sp")),
            ..provisioned()
        };
        let moved = SubscriberChanges::only_ids(uid(), "sp".into(), "g2".into());
        let (next, package) = apply_changes(&s, &moved, 10).unwrap();
        assert_eq!(next.group_id.as_deref(), Some("g2"));
        assert_eq!(
            (next.version, next.status, package),
            (4, SubscriberStatus::Updating, None)
        );
        // Group mode: the group is the enterprise; another is not a move.
        let s = SubscriberRecord {
            enterprise_key: Some(EnterpriseKey::from_stored("sp+g")),
            ..provisioned()
        };
        let (next, _) = apply_changes(&s, &moved, 10).unwrap();
        assert_eq!(next, s, "nothing changes");
    }

    #[test]
    fn partial_delete_keeps_names_email_and_language() {
        let s = provisioned();
        let p = partial_delete(&s, 10);
        assert_eq!(p.status, SubscriberStatus::Removed);
        assert_eq!((p.user_id, p.phone_number, p.extension), (None, None, None));
        assert_eq!((p.service_provider_id, p.group_id), (None, None));
        assert_eq!(p.first_name, "Ann");
        assert_eq!(p.email.as_deref(), Some("ann@example.com"));
        assert_eq!(p.language.as_deref(), Some("English"));
        assert_eq!((p.version, p.last_status_change), (4, 10));
    }

    #[test]
    fn full_delete_also_drops_names_email_language_and_time_zone() {
        let s = provisioned();
        let f = full_delete(&s, 10);
        let expected = SubscriberRecord {
            first_name: String::new(),
            last_name: String::new(),
            email: None,
            language: None,
            time_zone: None,
            ..partial_delete(&s, 10)
        };
        assert_eq!(f, expected);
        assert_eq!(f.status, SubscriberStatus::Removed);
        assert_eq!(f.mobile_phone_number, None);
        // What stays: the row's identity, its organization and package
        // (commands and licenses still name them).
        assert_eq!((f.id.as_str(), f.org_id.as_deref()), ("s-1", Some("org-1")));
        assert_eq!(f.package, Package::Standard);
        assert_eq!(f.version, 4);
    }
}
