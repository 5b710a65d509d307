//! A workspace's licenses: the workspace license
//! ([`WORKSPACE_LICENSE`]), taken from its organization's subscriptions
//! like a user's package (9041 when none is left). No package, template,
//! admin grant or Webex Calling rule applies to a workspace: it calls
//! through BroadWorks with its own number. Subscription moves take it like
//! a user (by its BroadWorks user id); removal gives the license back.

use crate::domain::license::{GrantSource, Holding};
use crate::domain::workspace::WORKSPACE_LICENSE;
use crate::domain::ErrorCode;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::apply::{answer, refuse, settle, Applied, Granted, Wanted, Who};
use super::subscriptions::Pool;
use super::LicensePolicy;

/// What a workspace's licenses are granted as (`source_ref`).
pub const WORKSPACE_SOURCE: &str = "workspace";

/// Gives the workspace `who` its license (again: a redelivery or a
/// provisioning after a refusal holds what it held).
pub(super) fn provision(
    tx: &dyn Tx,
    pool: &mut Pool,
    policy: LicensePolicy,
    who: &Who<'_>,
    held: &[Holding],
    key: &str,
    now: i64,
) -> Result<Applied, StoreError> {
    let wanted: Wanted = [(
        WORKSPACE_LICENSE.to_string(),
        (GrantSource::Package, WORKSPACE_SOURCE.to_string()),
    )]
    .into_iter()
    .collect();
    match settle(tx, pool, policy, who, held, &wanted, key, now)? {
        Ok(_) => answer(tx, key, Granted::default(), now),
        Err(shortage) => refuse(tx, key, ErrorCode::LicenseShortage, shortage, now),
    }
}
