//! Device activation codes: a device registers to Webex Calling, so its
//! user must hold a Calling license; Webex Go (the user's mobile phone as
//! a Calling device) needs Webex Calling Professional and a location in
//! the US or the UK. An allowed activation is recorded with its expiry
//! (Webex Go: 90 days); the gateway emails the code it derives from the
//! command key.

use crate::domain::device::{
    DeviceActivation, DeviceKind, IssuedDevice, CALLING_PROFESSIONAL, WEBEX_GO_COUNTRIES,
};
use crate::domain::license::Holding;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::apply::Who;
use super::calling::is_calling;

/// What a device activation asks.
pub(super) struct DeviceRequest<'a> {
    pub device_type: Option<&'a str>,
    pub mac_address: Option<&'a str>,
}

/// Allows and records the activation, or says why not.
pub(super) fn issue(
    tx: &dyn Tx,
    who: &Who<'_>,
    held: &[Holding],
    request: &DeviceRequest<'_>,
    key: &str,
    now: i64,
) -> Result<Result<IssuedDevice, String>, StoreError> {
    let kind = DeviceKind::of(request.device_type);
    let Some(calling) = held.iter().find(|h| is_calling(&h.license)) else {
        return Ok(Err(
            "the user holds no Webex Calling license; a device needs one".into(),
        ));
    };
    if kind == DeviceKind::WebexGo {
        let professional = held
            .iter()
            .any(|h| CALLING_PROFESSIONAL.contains(&h.license.as_str()));
        if !professional {
            return Ok(Err(format!(
                "Webex Go needs Webex Calling Professional (the standard or premium package); \
                 the user holds {}",
                calling.license
            )));
        }
        if let Err(why) = webex_go_country(tx, who)? {
            return Ok(Err(why));
        }
    }
    let activation = DeviceActivation {
        command_key: key.to_string(),
        subscriber_id: who.subscriber_id.to_string(),
        user_id: who.user_id.unwrap_or_default().to_string(),
        device_type: request.device_type.map(str::to_string),
        mac_address: request.mac_address.map(str::to_string),
        issued_at: now,
        expires_at: kind.expires_at(now),
    };
    tx.put_device_activation(who.org_id, &activation)?;
    Ok(Ok(issued(&activation)))
}

/// The answer an activation gave.
pub(super) fn issued(a: &DeviceActivation) -> IssuedDevice {
    IssuedDevice {
        device_type: a.device_type.clone(),
        expires_at: a.expires_at,
    }
}

/// Webex Go is sold in the US and the UK: the user's Calling location (of
/// the number it holds) must be in one of them.
fn webex_go_country(tx: &dyn Tx, who: &Who<'_>) -> Result<Result<(), String>, StoreError> {
    let Some(number) = tx.held_number(who.subscriber_id)? else {
        return Ok(Err(
            "Webex Go needs the user's Webex Calling location (US or UK): the user holds no \
             number of the organization's locations"
                .into(),
        ));
    };
    let country = tx
        .calling_location(who.org_id, &number.location_id)?
        .map(|l| l.country)
        .unwrap_or_default();
    if WEBEX_GO_COUNTRIES.contains(&country.as_str()) {
        Ok(Ok(()))
    } else {
        Ok(Err(format!(
            "Webex Go is available in the US and the UK; the user's location '{}' is in '{country}'",
            number.location_id
        )))
    }
}
