//! Which changes are provisioning events (the Xsi-Events `Provisioning`
//! package): the use cases call these right after storing a change, in
//! the same unit of work, so the event log holds an event exactly when
//! its change committed. The rules live here, not in a back-end.
//!
//! While no subscription exists no event is written: a subscription starts
//! at the log's end, so such an event could never reach anyone, and the
//! store's work per AddUser (the throughput bound) stays what it was. The
//! check runs in the same transaction as the append, after any
//! subscription made before it committed, so no subscriber misses one.

use crate::domain::event::{EventKind, ProvisioningEvent};
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{OrganizationRef, SubscriberRecord, SubscriberStatus};
use crate::domain::CustomerTemplate;
use crate::store::tx::Tx;
use crate::store::StoreError;

/// The event a subscriber's change from `from` (`None`: it is new) to
/// `after.status` reports, if any: a new (or revived) subscriber is
/// accepted; reaching `provisioned`, `error`, a waiting status or
/// `removed` is reported each time the status changes to it. Moves to
/// `provisioning` / `updating` are the license core's work in progress,
/// reported when it ends.
pub(crate) fn kind_of(from: Option<SubscriberStatus>, to: SubscriberStatus) -> Option<EventKind> {
    use SubscriberStatus as S;
    let revived = from == Some(S::Removed) && to != S::Removed;
    if from.is_none() || revived {
        return Some(EventKind::SubscriberAccepted);
    }
    if from == Some(to) {
        return None;
    }
    match to {
        S::Provisioned => Some(EventKind::SubscriberProvisioned),
        S::Error => Some(EventKind::SubscriberFailed),
        S::PendingEmailInput | S::PendingEmailValidation | S::PendingUserMigration => {
            Some(EventKind::SubscriberPending)
        }
        S::Removed => Some(EventKind::SubscriberRemoved),
        S::Provisioning | S::Updating => None,
    }
}

/// Appends the event of `after`'s change from `from` (see [`kind_of`]).
/// `before`: the record before the change, when the caller has it: a
/// removal clears the user id, service provider and group, and the event
/// still names them (subscriptions match on them).
pub(crate) fn subscriber_changed(
    tx: &dyn Tx,
    from: Option<SubscriberStatus>,
    before: Option<&SubscriberRecord>,
    after: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let Some(kind) = kind_of(from, after.status) else {
        return Ok(());
    };
    if !tx.events_wanted()? {
        return Ok(());
    }
    append(tx, kind, before, after, now)
}

/// The license core applied subscriber `id`'s provisioning (its status
/// just became `provisioned`): read only when someone listens.
pub(crate) fn subscriber_provisioned(tx: &dyn Tx, id: &str, now: i64) -> Result<(), StoreError> {
    if !tx.events_wanted()? {
        return Ok(());
    }
    match tx.subscriber_by_id(id)? {
        Some(s) => append(tx, EventKind::SubscriberProvisioned, None, &s, now),
        None => Ok(()),
    }
}

fn append(
    tx: &dyn Tx,
    kind: EventKind,
    before: Option<&SubscriberRecord>,
    after: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    let failure = (kind == EventKind::SubscriberFailed)
        .then(|| after.errors.last())
        .flatten();
    tx.append_event(&ProvisioningEvent {
        seq: 0,
        kind,
        at: now,
        provisioning_id: after.provisioning_id.clone(),
        service_provider_id: after
            .service_provider_id
            .clone()
            .or_else(|| before.and_then(|b| b.service_provider_id.clone())),
        group_id: after
            .group_id
            .clone()
            .or_else(|| before.and_then(|b| b.group_id.clone())),
        user_id: after
            .user_id
            .as_ref()
            .or(before.and_then(|b| b.user_id.as_ref()))
            .map(|u| u.as_str().to_string()),
        subscriber_id: Some(after.id.clone()),
        status: Some(after.status.as_str().to_string()),
        package: Some(after.package.as_str().to_string()),
        organization_id: after
            .org_id
            .clone()
            .or_else(|| before.and_then(|b| b.org_id.clone())),
        organization_name: None,
        error_code: failure.map(|e| e.error_code),
        reason: failure.map(|e| e.description.clone()),
    })
}

/// `before` changed to `after` (both whole records).
pub(crate) fn subscriber_updated(
    tx: &dyn Tx,
    before: &SubscriberRecord,
    after: &SubscriberRecord,
    now: i64,
) -> Result<(), StoreError> {
    subscriber_changed(tx, Some(before.status), Some(before), after, now)
}

/// The enterprise `org.enterprise_key` now maps to `org` (created and
/// announced, or attached to an existing organization).
pub(crate) fn organization_attached(
    tx: &dyn Tx,
    template: &CustomerTemplate,
    org: &OrganizationRef,
    now: i64,
) -> Result<(), StoreError> {
    if !tx.events_wanted()? {
        return Ok(());
    }
    let (service_provider_id, group_id) =
        enterprise_parts(&org.enterprise_key, template.settings.enterprise_mode);
    tx.append_event(&ProvisioningEvent {
        service_provider_id: Some(service_provider_id),
        group_id,
        organization_id: Some(org.id.clone()),
        organization_name: Some(org.name.clone()),
        ..ProvisioningEvent::bare(
            EventKind::OrganizationAttached,
            now,
            &template.provisioning_id,
        )
    })
}

/// The service provider (and group, in group mode) an enterprise key was
/// derived from (`EnterpriseKey::derive`: `sp` or `sp+group`).
fn enterprise_parts(key: &EnterpriseKey, enterprise_mode: bool) -> (String, Option<String>) {
    let key = key.as_str();
    match (enterprise_mode, key.split_once('+')) {
        (false, Some((sp, group))) => (sp.to_string(), Some(group.to_string())),
        _ => (key.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriberStatus as S;

    #[test]
    fn only_status_changes_that_end_somewhere_are_events() {
        assert_eq!(
            kind_of(None, S::Provisioning),
            Some(EventKind::SubscriberAccepted)
        );
        assert_eq!(
            kind_of(None, S::PendingEmailInput),
            Some(EventKind::SubscriberAccepted)
        );
        assert_eq!(
            kind_of(Some(S::Removed), S::Provisioning),
            Some(EventKind::SubscriberAccepted)
        );
        assert_eq!(
            kind_of(Some(S::Provisioning), S::Provisioned),
            Some(EventKind::SubscriberProvisioned)
        );
        assert_eq!(
            kind_of(Some(S::Updating), S::Provisioned),
            Some(EventKind::SubscriberProvisioned)
        );
        assert_eq!(
            kind_of(Some(S::Provisioning), S::Error),
            Some(EventKind::SubscriberFailed)
        );
        assert_eq!(
            kind_of(Some(S::Provisioned), S::PendingUserMigration),
            Some(EventKind::SubscriberPending)
        );
        assert_eq!(
            kind_of(Some(S::PendingEmailValidation), S::PendingEmailInput),
            Some(EventKind::SubscriberPending)
        );
        assert_eq!(
            kind_of(Some(S::Provisioned), S::Removed),
            Some(EventKind::SubscriberRemoved)
        );
        assert_eq!(kind_of(Some(S::Provisioned), S::Updating), None);
        assert_eq!(
            kind_of(Some(S::PendingEmailValidation), S::Provisioning),
            None
        );
        assert_eq!(kind_of(Some(S::Provisioned), S::Provisioned), None);
        assert_eq!(kind_of(Some(S::Removed), S::Removed), None);
    }

    #[test]
    fn enterprise_keys_split_into_provider_and_group_in_group_mode_only() {
        let key = EnterpriseKey::derive("sp1", "g1", false);
        assert_eq!(
            enterprise_parts(&key, false),
            ("sp1".into(), Some("g1".into()))
        );
        let key = EnterpriseKey::derive("sp1", "g1", true);
        assert_eq!(enterprise_parts(&key, true), ("sp1".into(), None));
    }
}
