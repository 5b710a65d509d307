//! The license core's Webex Calling inventory inside a unit of work (a part
//! of [`super::Tx`]): locations, their numbers and who holds each, and the
//! users Calling was withheld from. The rules (which number a user may
//! have) are the core's, in `license::calling`; a back-end only maps rows.

use crate::domain::calling::{CallingLocation, CallingNumber, CallingWithheld, NumberHolder};
use crate::domain::device::DeviceActivation;

use super::StoreError;

pub trait CallingRows {
    /// Whether the organization keeps a Calling inventory here (has at
    /// least one location).
    fn calling_managed(&self, org_id: &str) -> Result<bool, StoreError>;
    fn calling_location(
        &self,
        org_id: &str,
        location_id: &str,
    ) -> Result<Option<CallingLocation>, StoreError>;
    /// The organization's locations, by id.
    fn calling_locations(&self, org_id: &str) -> Result<Vec<CallingLocation>, StoreError>;
    /// Inserts or replaces a location of `org_id`.
    fn put_calling_location(
        &self,
        org_id: &str,
        location: &CallingLocation,
        now: i64,
    ) -> Result<(), StoreError>;

    /// A number and the organization it belongs to.
    fn calling_number(&self, number: &str) -> Result<Option<(String, CallingNumber)>, StoreError>;
    /// Inserts or replaces a number of `org_id` (holder included).
    fn put_calling_number(
        &self,
        org_id: &str,
        number: &CallingNumber,
        now: i64,
    ) -> Result<(), StoreError>;
    /// The organization's numbers, by number.
    fn calling_numbers(&self, org_id: &str) -> Result<Vec<CallingNumber>, StoreError>;
    /// Assigns `number` to `holder` (it exists; the rules checked it is
    /// free). A back-end with concurrent writers makes the second of two
    /// units of work assigning one number at once run again.
    fn hold_number(&self, number: &str, holder: &NumberHolder, now: i64) -> Result<(), StoreError>;
    /// Frees every number the subscriber holds.
    fn release_numbers(&self, subscriber_id: &str) -> Result<(), StoreError>;

    fn calling_withheld(&self, subscriber_id: &str) -> Result<Option<CallingWithheld>, StoreError>;
    /// Inserts or replaces the subscriber's row (of `org_id`).
    fn put_calling_withheld(&self, org_id: &str, row: &CallingWithheld) -> Result<(), StoreError>;
    fn clear_calling_withheld(&self, subscriber_id: &str) -> Result<(), StoreError>;
    /// The organization's users without Calling, by user id.
    fn org_calling_withheld(&self, org_id: &str) -> Result<Vec<CallingWithheld>, StoreError>;

    /// The number the subscriber holds, if any.
    fn held_number(&self, subscriber_id: &str) -> Result<Option<CallingNumber>, StoreError>;

    /// Records an allowed device activation of `org_id`.
    fn put_device_activation(
        &self,
        org_id: &str,
        activation: &DeviceActivation,
    ) -> Result<(), StoreError>;
    /// The activation a command key allowed.
    fn device_activation(&self, command_key: &str) -> Result<Option<DeviceActivation>, StoreError>;
    /// The organization's activations, by user then time.
    fn org_device_activations(&self, org_id: &str) -> Result<Vec<DeviceActivation>, StoreError>;
}
