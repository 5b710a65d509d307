//! Webex Calling's rule: a user gets a Calling license only with a
//! location and a number: E.164, pre-provisioned in one of its
//! organization's locations, assigned to no other user or service.
//! Otherwise the user is still provisioned with its other licenses, and
//! the reason is kept (`calling_withheld`) and answered with the command
//! (code 9043 in the subscriber's `errors[]`).
//!
//! An organization without any location keeps no inventory here (its
//! numbers are managed elsewhere): an E.164 number is enough. A user
//! already entitled keeps its number whatever BroadWorks later sends: a
//! directory number change does not provision Calling again.

use crate::domain::calling::{CallingWithheld, NumberHolder};
use crate::domain::phone::{DirectoryNumber, E164};
use crate::domain::{ErrorCode, Refusal};
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::apply::Who;

/// Whether a license is a Webex Calling license.
pub fn is_calling(license: &str) -> bool {
    license.starts_with("webex-calling-")
}

/// What the core does about a user's Webex Calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// Nothing to decide: no Calling license wanted, or one already held.
    Unchanged,
    /// Entitled, with this inventory number (`None`: the organization
    /// keeps no inventory here).
    Entitle { number: Option<E164> },
    /// Not entitled, and why.
    Withhold { reason: String },
}

/// Decides whether the user may have Webex Calling with `number`.
pub(super) fn decide(
    tx: &dyn Tx,
    managed: bool,
    who: &Who<'_>,
    number: Option<&DirectoryNumber>,
) -> Result<Decision, StoreError> {
    let withhold = |reason: String| Ok(Decision::Withhold { reason });
    let Some(number) = number else {
        return withhold(
            "the user has no phone number; Webex Calling needs an E.164 number".into(),
        );
    };
    let Some(e164) = number.e164() else {
        return withhold(format!(
            "phone number '{number}' is not E.164 ('+' and the country code); Webex Calling needs one"
        ));
    };
    if !managed {
        return Ok(Decision::Entitle { number: None });
    }
    let not_ours = || {
        withhold(format!(
            "{e164} is not a number of any of organization '{}''s Webex Calling locations",
            who.org_id
        ))
    };
    let Some((org_id, found)) = tx.calling_number(e164.as_str())? else {
        return not_ours();
    };
    if org_id != who.org_id {
        return not_ours();
    }
    match found.holder {
        Some(NumberHolder::User { subscriber_id, .. }) if subscriber_id == who.subscriber_id => {
            Ok(Decision::Entitle { number: Some(e164) })
        }
        Some(NumberHolder::User { user_id, .. }) => withhold(format!(
            "{e164} (location '{}') is assigned to another user ({user_id})",
            found.location_id
        )),
        Some(NumberHolder::Service { name }) => withhold(format!(
            "{e164} (location '{}') is assigned to the service '{name}'",
            found.location_id
        )),
        None => Ok(Decision::Entitle { number: Some(e164) }),
    }
}

/// Writes what a decision means once the licenses are settled; the notice
/// to answer with (`Some` when Calling was withheld).
pub(super) fn record(
    tx: &dyn Tx,
    who: &Who<'_>,
    decision: &Decision,
    withheld_before: Option<&CallingWithheld>,
    number: Option<&DirectoryNumber>,
    now: i64,
) -> Result<Option<Refusal>, StoreError> {
    let user_id = || {
        who.user_id
            .map(str::to_string)
            .or_else(|| withheld_before.map(|w| w.user_id.clone()))
            .unwrap_or_default()
    };
    match decision {
        Decision::Unchanged => Ok(None),
        Decision::Entitle { number: held } => {
            if let Some(n) = held {
                tx.hold_number(
                    n.as_str(),
                    &NumberHolder::User {
                        subscriber_id: who.subscriber_id.to_string(),
                        user_id: user_id(),
                    },
                    now,
                )?;
            }
            if withheld_before.is_some() {
                tx.clear_calling_withheld(who.subscriber_id)?;
            }
            Ok(None)
        }
        Decision::Withhold { reason } => {
            tx.put_calling_withheld(
                who.org_id,
                &CallingWithheld {
                    subscriber_id: who.subscriber_id.to_string(),
                    user_id: user_id(),
                    directory_number: number.map(|n| n.as_str().to_string()),
                    reason: reason.clone(),
                    at: now,
                },
            )?;
            Ok(Some(Refusal::new(
                ErrorCode::CallingWithheld,
                reason.clone(),
            )))
        }
    }
}

/// The subscriber holds no Calling license any more: its number is free
/// and it is no longer reported as withheld.
pub(super) fn forget(tx: &dyn Tx, subscriber_id: &str) -> Result<(), StoreError> {
    tx.release_numbers(subscriber_id)?;
    tx.clear_calling_withheld(subscriber_id)
}
