//! A change to a known subscriber and its partial deletion, with the
//! commands the license core needs: shared by flow-through `ModifyUser` /
//! `DeleteUser` and partner admins' actions.

use crate::commands::Command;
use crate::domain::lifecycle::{self, SubscriberRecord, SubscriberStatus};
use crate::domain::Package;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::emit::Emitter;

/// Whether the license core has been told about the subscriber (so later
/// changes must follow it there).
pub(crate) fn sent_to_core(status: SubscriberStatus) -> bool {
    matches!(
        status,
        SubscriberStatus::Provisioning
            | SubscriberStatus::Provisioned
            | SubscriberStatus::Updating
            | SubscriberStatus::Error
    )
}

/// Whether anything but the package (and bookkeeping) changed.
fn profile_changed(a: &SubscriberRecord, b: &SubscriberRecord) -> bool {
    a.first_name != b.first_name
        || a.last_name != b.last_name
        || a.email != b.email
        || a.phone_number != b.phone_number
        || a.extension != b.extension
        || a.mobile_phone_number != b.mobile_phone_number
        || a.language != b.language
        || a.time_zone != b.time_zone
        || a.group_id != b.group_id
}

/// A stored record lacks a value every active subscriber has.
pub(crate) fn incomplete(record: &SubscriberRecord, what: &str) -> StoreError {
    StoreError::Corrupt(format!("subscriber '{}' has no {what}", record.id))
}

/// Stores a change decided by `lifecycle::apply_changes` (`current` →
/// `next`) and emits the commands the license core needs: a retry
/// (`ProvisionSubscriber`) for a failed subscriber, else `UpdateSubscriber`
/// and/or `ChangePackage` when the core knows the subscriber. Nothing when
/// nothing changed.
pub(crate) fn store_change(
    tx: &dyn Tx,
    current: &SubscriberRecord,
    next: &SubscriberRecord,
    package_change: Option<Package>,
    now: i64,
    out: &mut Emitter<'_>,
) -> Result<(), StoreError> {
    if next == current {
        return Ok(());
    }
    tx.update_subscriber(next, now)?;
    super::events::subscriber_updated(tx, current, next, now)?;
    if current.status == SubscriberStatus::Error {
        // A change to a failed subscriber is a retry: provision the
        // whole current record again (the core applies by key).
        super::admin::announce_provisioning(tx, next, out)?;
    } else if sent_to_core(current.status) {
        let key = next
            .enterprise_key
            .clone()
            .ok_or_else(|| incomplete(next, "enterprise key"))?;
        let org_id = next
            .org_id
            .clone()
            .ok_or_else(|| incomplete(next, "organization"))?;
        if profile_changed(current, next) {
            out.emit(
                &key,
                Command::UpdateSubscriber {
                    subscriber_id: next.id.clone(),
                    org_id: org_id.clone(),
                    email: next.email.clone(),
                    first_name: next.first_name.clone(),
                    last_name: next.last_name.clone(),
                    phone_number: next.phone_number.clone(),
                    extension: next.extension.clone(),
                    mobile_phone_number: next.mobile_phone_number.clone(),
                    language: next.language.clone(),
                    time_zone: next.time_zone.clone(),
                    subscriber_version: next.version,
                    group_id: next.group_id.clone(),
                },
            )?;
        }
        if let Some(package) = package_change {
            out.emit(
                &key,
                Command::ChangePackage {
                    subscriber_id: next.id.clone(),
                    org_id,
                    package,
                    subscriber_version: next.version,
                    user_id: next.user_id.clone(),
                    group_id: next.group_id.clone(),
                    phone_number: Some(next.phone_number.clone()),
                },
            )?;
        }
    }
    Ok(())
}

/// Partial deletion (`lifecycle::partial_delete`) of `current`, with
/// `RemoveSubscriber` when the license core knew the subscriber. Returns
/// the stored record.
pub(crate) fn store_partial_delete(
    tx: &dyn Tx,
    current: &SubscriberRecord,
    now: i64,
    out: &mut Emitter<'_>,
) -> Result<SubscriberRecord, StoreError> {
    let next = lifecycle::partial_delete(current, now);
    tx.update_subscriber(&next, now)?;
    super::events::subscriber_updated(tx, current, &next, now)?;
    if sent_to_core(current.status) {
        if let Some(org_id) = current.org_id.clone() {
            let key = current
                .enterprise_key
                .clone()
                .ok_or_else(|| incomplete(current, "enterprise key"))?;
            out.emit(
                &key,
                Command::RemoveSubscriber {
                    subscriber_id: next.id.clone(),
                    org_id,
                    subscriber_version: next.version,
                },
            )?;
        }
    }
    Ok(next)
}
