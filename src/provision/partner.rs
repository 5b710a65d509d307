//! Partner admins' actions on a subscriber (status page and JSON API):
//! delete, change package and make organization admin, with the
//! flow-through rules
//! (`lifecycle::partial_delete`, `lifecycle::apply_changes`) and their
//! commands (`{trackingId}:partner:{n}`), in one unit of work.

use crate::commands::Command;
use crate::domain::lifecycle::{self, Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::subscriber::SubscriberChanges;
use crate::domain::{ErrorCode, Package};
use crate::store::tx::{OrgOrigin, Tx};
use crate::store::StoreError;

use super::change::{store_change, store_partial_delete};
use super::emit::Emitter;

/// What a partner admin's change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminChange {
    pub subscriber: SubscriberRecord,
    /// Commands written to the outbox (wake the delivery worker).
    pub commands_written: usize,
}

/// The subscriber, if one of the partner's templates holds it.
fn owned(
    tx: &dyn Tx,
    partner_id: &str,
    subscriber_id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    let Some(s) = tx.subscriber_by_id(subscriber_id)? else {
        return Ok(None);
    };
    let owner = tx.template(&s.provisioning_id)?.map(|t| t.partner_id);
    Ok((owner.as_deref() == Some(partner_id)).then_some(s))
}

fn no_such_subscriber() -> Rejection {
    Rejection::new(ErrorCode::NotFound, "no such subscriber")
}

fn removed() -> Rejection {
    Rejection::new(ErrorCode::NotFound, "the subscriber was removed")
}

/// The partial deletion of `DeleteUser`, with `RemoveSubscriber` when the
/// license core knew the subscriber.
pub fn delete(
    tx: &dyn Tx,
    partner_id: &str,
    subscriber_id: &str,
    tracking_id: &str,
    now: i64,
) -> Result<Result<AdminChange, Rejection>, StoreError> {
    let Some(current) = owned(tx, partner_id, subscriber_id)? else {
        return Ok(Err(no_such_subscriber()));
    };
    if current.status == SubscriberStatus::Removed {
        return Ok(Err(removed()));
    }
    let mut out = Emitter::new(tx, tracking_id, "partner", now);
    let next = store_partial_delete(tx, &current, now, &mut out)?;
    Ok(Ok(AdminChange {
        subscriber: next,
        commands_written: out.written,
    }))
}

/// Like a `ModifyUser` package change (`ChangePackage`; a provisioned
/// subscriber goes to `updating`).
pub fn change_package(
    tx: &dyn Tx,
    partner_id: &str,
    subscriber_id: &str,
    package: Package,
    tracking_id: &str,
    now: i64,
) -> Result<Result<AdminChange, Rejection>, StoreError> {
    let Some(current) = owned(tx, partner_id, subscriber_id)? else {
        return Ok(Err(no_such_subscriber()));
    };
    let Some(user_id) = current.user_id.clone() else {
        // Only a partial deletion drops the user id.
        return Ok(Err(removed()));
    };
    let changes = SubscriberChanges {
        package: Some(package),
        ..SubscriberChanges::only_ids(
            user_id,
            current.service_provider_id.clone().unwrap_or_default(),
            current.group_id.clone().unwrap_or_default(),
        )
    };
    let (next, package_change) = match lifecycle::apply_changes(&current, &changes, now) {
        Ok(decided) => decided,
        Err(r) => return Ok(Err(r)),
    };
    let mut out = Emitter::new(tx, tracking_id, "partner", now);
    store_change(tx, &current, &next, package_change, now, &mut out)?;
    Ok(Ok(AdminChange {
        subscriber: next,
        commands_written: out.written,
    }))
}

/// Makes a provisioned subscriber its organization's administrator (an
/// organization created here: an attached one keeps its own admins); the
/// previous admin loses the role. `SetOrganizationAdmin` tells the core.
/// Naming the admin again changes nothing.
pub fn make_admin(
    tx: &dyn Tx,
    partner_id: &str,
    subscriber_id: &str,
    tracking_id: &str,
    now: i64,
) -> Result<Result<AdminChange, Rejection>, StoreError> {
    let Some(s) = owned(tx, partner_id, subscriber_id)? else {
        return Ok(Err(no_such_subscriber()));
    };
    if s.status == SubscriberStatus::Removed {
        return Ok(Err(removed()));
    }
    if !matches!(
        s.status,
        SubscriberStatus::Provisioned | SubscriberStatus::Updating
    ) {
        return Ok(Err(Rejection::new(
            ErrorCode::WrongState,
            format!(
                "the subscriber is {}: only a provisioned user can be made admin",
                s.status.as_str()
            ),
        )));
    }
    let (Some(org_id), Some(key)) = (s.org_id.clone(), s.enterprise_key.clone()) else {
        return Err(super::change::incomplete(&s, "organization"));
    };
    match tx.organization_by_key(partner_id, &key)? {
        Some((_, OrgOrigin::Created)) => {}
        _ => return Ok(Err(Rejection::new(
            ErrorCode::WrongState,
            "the subscriber's organization was attached: its own administrators name its admins",
        ))),
    }
    let current = tx.org_admin(&org_id)?;
    let replaces = match &current {
        Some((admin, _)) if *admin == s.id => {
            return Ok(Ok(AdminChange {
                subscriber: s,
                commands_written: 0,
            }))
        }
        Some((admin, status)) => {
            if !tx.replace_org_admin(&org_id, admin, &s.id)? {
                return Err(StoreError::Conflict(
                    "the organization's admin changed".into(),
                ));
            }
            // A removed admin lost the role with its own removal.
            (*status != SubscriberStatus::Removed).then(|| admin.clone())
        }
        None => {
            tx.set_org_admin_if_unset(&org_id, &s.id)?;
            None
        }
    };
    let mut out = Emitter::new(tx, tracking_id, "partner", now);
    out.emit(
        &key,
        Command::SetOrganizationAdmin {
            org_id,
            subscriber_id: s.id.clone(),
            replaces,
        },
    )?;
    Ok(Ok(AdminChange {
        subscriber: s,
        commands_written: out.written,
    }))
}
