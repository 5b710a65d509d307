//! An organization's administrator, as the license core must know it: the
//! first user of an organization created here, the next user to finish
//! when the admin was removed (a deleted admin must not leave the others
//! waiting for good, 9028), or a user a partner admin names. Attached
//! organizations keep their own admins (the gateway names none).

use crate::commands::Command;
use crate::domain::lifecycle::{SubscriberRecord, SubscriberStatus};
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::change::incomplete;
use super::emit::Emitter;

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminClaim {
    /// The subscriber became the admin now (`replaces`: a removed admin).
    Became { replaces: Option<String> },
    /// It was the admin already (named when it was added).
    Already,
    /// Another live user is the admin, or the organization has none to
    /// give (an attached one).
    Other,
}

impl AdminClaim {
    pub(crate) fn is_admin(&self) -> bool {
        !matches!(self, AdminClaim::Other)
    }
}

/// The subscriber becomes the organization's admin when it has none (a
/// created organization), or when its admin was removed.
pub(crate) fn claim(
    tx: &dyn Tx,
    org_id: &str,
    subscriber_id: &str,
) -> Result<AdminClaim, StoreError> {
    let became = |done: bool, replaces: Option<String>| {
        if done {
            AdminClaim::Became { replaces }
        } else {
            AdminClaim::Other
        }
    };
    Ok(match tx.org_admin(org_id)? {
        Some((admin, _)) if admin == subscriber_id => AdminClaim::Already,
        Some((admin, SubscriberStatus::Removed)) => became(
            tx.replace_org_admin(org_id, &admin, subscriber_id)?,
            Some(admin),
        ),
        Some(_) => AdminClaim::Other,
        None => became(tx.set_org_admin_if_unset(org_id, subscriber_id)?, None),
    })
}

/// `ProvisionSubscriber` for a subscriber stored as `provisioning`, with
/// `orgAdmin` set when it is (or just became, see [`claim`]) its
/// organization's admin. (A removed admin it replaces lost the role with
/// its own `RemoveSubscriber`.)
pub(crate) fn announce_provisioning(
    tx: &dyn Tx,
    s: &SubscriberRecord,
    out: &mut Emitter<'_>,
) -> Result<(), StoreError> {
    let (Some(key), Some(org_id)) = (s.enterprise_key.as_ref(), s.org_id.as_deref()) else {
        return Err(incomplete(s, "enterprise or organization"));
    };
    let org_admin = claim(tx, org_id, &s.id)?.is_admin();
    let command = Command::provision(s, org_admin).ok_or_else(|| incomplete(s, "user id"))?;
    out.emit(key, command)
}
