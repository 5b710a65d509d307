//! The operator asks for device activation codes in bulk (Webex Go for a
//! list of users, by CSV): each becomes an `IssueActivationCode` command,
//! as a BroadWorks `RequestActivationCode` would; the license core decides
//! each (9044 in the user's `errors[]` when it may not have one) and the
//! code is emailed to the user when it may.

use crate::commands::Command;
use crate::domain::ids::UserId;
use crate::domain::lifecycle::SubscriberStatus;
use crate::domain::{ErrorCode, Refusal};
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::change::sent_to_core;
use super::emit::Emitter;

/// Most codes one request may ask for.
pub const MAX_DEVICE_REQUESTS: usize = 5_000;

/// One user's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCodeRequest {
    pub user_id: UserId,
    pub device_type: Option<String>,
    /// Canonical (12 upper-case hex digits), checked by the face.
    pub mac_address: Option<String>,
}

/// Emits one command per request, all or nothing: every user must be a
/// provisioned subscriber of `org_id` (else nothing is sent and the first
/// problem is named). Returns the number of commands written.
pub fn request(
    tx: &dyn Tx,
    org_id: &str,
    requests: &[DeviceCodeRequest],
    tracking_id: &str,
    now: i64,
) -> Result<Result<usize, Refusal>, StoreError> {
    if requests.is_empty() {
        return Ok(Err(Refusal::new(
            ErrorCode::MissingParameter,
            "no device to issue a code for",
        )));
    }
    if requests.len() > MAX_DEVICE_REQUESTS {
        return Ok(Err(Refusal::new(
            ErrorCode::TooManyOperations,
            format!(
                "{} devices in one request; at most {MAX_DEVICE_REQUESTS}",
                requests.len()
            ),
        )));
    }
    // Every row checked before any command is written: all or nothing.
    let mut found = Vec::with_capacity(requests.len());
    for (row, r) in requests.iter().enumerate() {
        let s = tx
            .subscriber_by_user_id(r.user_id.as_str())?
            .filter(|s| s.org_id.as_deref() == Some(org_id))
            .filter(|s| s.status != SubscriberStatus::Removed);
        let Some(s) = s else {
            return Ok(Err(Refusal::new(
                ErrorCode::NotFound,
                format!(
                    "row {}: no user {} in organization '{org_id}'",
                    row + 1,
                    r.user_id
                ),
            )));
        };
        if !sent_to_core(s.status) {
            return Ok(Err(Refusal::new(
                ErrorCode::WrongState,
                format!(
                    "row {}: {} is {}: a device activation code needs a provisioned user",
                    row + 1,
                    r.user_id,
                    s.status.as_str()
                ),
            )));
        }
        let Some(key) = s.enterprise_key.clone() else {
            return Err(StoreError::Corrupt(format!(
                "subscriber '{}' has an organization but no enterprise key",
                s.id
            )));
        };
        found.push((s, key));
    }
    let mut out = Emitter::new(tx, tracking_id, "devices", now);
    for ((s, key), r) in found.into_iter().zip(requests) {
        out.emit(
            &key,
            Command::IssueActivationCode {
                subscriber_id: s.id,
                org_id: s.org_id,
                user_id: r.user_id.clone(),
                device_type: r.device_type.clone(),
                mac_address: r.mac_address.clone(),
            },
        )?;
    }
    Ok(Ok(out.written))
}
