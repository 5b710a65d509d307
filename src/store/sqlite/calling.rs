//! The license core's Webex Calling inventory: locations, numbers and who
//! holds them, users Calling was withheld from.

use rusqlite::{params, OptionalExtension, Row};

use super::tx::SqliteTx;
use crate::domain::calling::NumberHolder;
use crate::domain::calling::{CallingLocation, CallingNumber, CallingWithheld};
use crate::domain::device::DeviceActivation;
use crate::store::calling_rows::CallingRows;
use crate::store::rows::{holder_columns, number_holder, stored_number};
use crate::store::StoreError;

const NUMBER_COLUMNS: &str =
    "number, location_id, holder_kind, holder_ref, holder_user_id, assigned_at";
const WITHHELD_COLUMNS: &str = "subscriber_id, user_id, directory_number, reason, at";
const DEVICE_COLUMNS: &str =
    "command_key, subscriber_id, user_id, device_type, mac_address, issued_at, expires_at";

fn device(row: &Row<'_>) -> rusqlite::Result<DeviceActivation> {
    Ok(DeviceActivation {
        command_key: row.get(0)?,
        subscriber_id: row.get(1)?,
        user_id: row.get(2)?,
        device_type: row.get(3)?,
        mac_address: row.get(4)?,
        issued_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

type NumberRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn number_row(row: &Row<'_>) -> rusqlite::Result<NumberRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn calling_number(r: NumberRow) -> Result<CallingNumber, StoreError> {
    let (number, location_id, kind, reference, user_id, assigned_at) = r;
    Ok(CallingNumber {
        holder: number_holder(&number, kind, reference, user_id)?,
        number: stored_number(&number)?,
        location_id,
        assigned_at,
    })
}

fn withheld(row: &Row<'_>) -> rusqlite::Result<CallingWithheld> {
    Ok(CallingWithheld {
        subscriber_id: row.get(0)?,
        user_id: row.get(1)?,
        directory_number: row.get(2)?,
        reason: row.get(3)?,
        at: row.get(4)?,
    })
}

fn location(row: &Row<'_>) -> rusqlite::Result<CallingLocation> {
    Ok(CallingLocation {
        id: row.get(0)?,
        name: row.get(1)?,
        country: row.get(2)?,
    })
}

impl CallingRows for SqliteTx<'_, '_> {
    fn calling_managed(&self, org_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM calling_locations WHERE org_id = ?1 LIMIT 1")?
            .query_row([org_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn calling_location(
        &self,
        org_id: &str,
        location_id: &str,
    ) -> Result<Option<CallingLocation>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT location_id, name, country FROM calling_locations
                 WHERE org_id = ?1 AND location_id = ?2",
            )?
            .query_row([org_id, location_id], location)
            .optional()?)
    }

    fn calling_locations(&self, org_id: &str) -> Result<Vec<CallingLocation>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT location_id, name, country FROM calling_locations
             WHERE org_id = ?1 ORDER BY location_id",
        )?;
        let rows = stmt.query_map([org_id], location)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_calling_location(
        &self,
        org_id: &str,
        l: &CallingLocation,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO calling_locations
                     (org_id, location_id, name, country, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (org_id, location_id) DO UPDATE SET
                     name = excluded.name, country = excluded.country,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![org_id, l.id, l.name, l.country, now])?;
        Ok(())
    }

    fn calling_number(&self, number: &str) -> Result<Option<(String, CallingNumber)>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {NUMBER_COLUMNS}, org_id FROM calling_numbers WHERE number = ?1"
            ))?
            .query_row([number], |row| {
                Ok((number_row(row)?, row.get::<_, String>(6)?))
            })
            .optional()?;
        row.map(|(r, org_id)| Ok((org_id, calling_number(r)?)))
            .transpose()
    }

    fn put_calling_number(
        &self,
        org_id: &str,
        n: &CallingNumber,
        now: i64,
    ) -> Result<(), StoreError> {
        let (kind, reference, user_id) = holder_columns(n.holder.as_ref());
        self.conn
            .prepare_cached(
                "INSERT INTO calling_numbers
                     (number, org_id, location_id, holder_kind, holder_ref, holder_user_id,
                      assigned_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (number) DO UPDATE SET
                     org_id = excluded.org_id, location_id = excluded.location_id,
                     holder_kind = excluded.holder_kind, holder_ref = excluded.holder_ref,
                     holder_user_id = excluded.holder_user_id,
                     assigned_at = excluded.assigned_at",
            )?
            .execute(params![
                n.number.as_str(),
                org_id,
                n.location_id,
                kind,
                reference,
                user_id,
                n.assigned_at,
                now
            ])?;
        Ok(())
    }

    fn calling_numbers(&self, org_id: &str) -> Result<Vec<CallingNumber>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {NUMBER_COLUMNS} FROM calling_numbers WHERE org_id = ?1 ORDER BY number"
        ))?;
        let rows = stmt.query_map([org_id], number_row)?;
        rows.map(|r| calling_number(r?)).collect()
    }

    fn hold_number(&self, number: &str, holder: &NumberHolder, now: i64) -> Result<(), StoreError> {
        let (kind, reference, user_id) = holder_columns(Some(holder));
        self.conn
            .prepare_cached(
                "UPDATE calling_numbers SET holder_kind = ?2, holder_ref = ?3,
                     holder_user_id = ?4, assigned_at = ?5
                 WHERE number = ?1",
            )?
            .execute(params![number, kind, reference, user_id, now])?;
        Ok(())
    }

    fn release_numbers(&self, subscriber_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE calling_numbers SET holder_kind = NULL, holder_ref = NULL,
                     holder_user_id = NULL, assigned_at = NULL
                 WHERE holder_kind = 'user' AND holder_ref = ?1",
            )?
            .execute([subscriber_id])?;
        Ok(())
    }

    fn calling_withheld(&self, subscriber_id: &str) -> Result<Option<CallingWithheld>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {WITHHELD_COLUMNS} FROM calling_withheld WHERE subscriber_id = ?1"
            ))?
            .query_row([subscriber_id], withheld)
            .optional()?)
    }

    fn put_calling_withheld(&self, org_id: &str, w: &CallingWithheld) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO calling_withheld
                     (subscriber_id, org_id, user_id, directory_number, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (subscriber_id) DO UPDATE SET
                     org_id = excluded.org_id, user_id = excluded.user_id,
                     directory_number = excluded.directory_number,
                     reason = excluded.reason, at = excluded.at",
            )?
            .execute(params![
                w.subscriber_id,
                org_id,
                w.user_id,
                w.directory_number,
                w.reason,
                w.at
            ])?;
        Ok(())
    }

    fn clear_calling_withheld(&self, subscriber_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM calling_withheld WHERE subscriber_id = ?1")?
            .execute([subscriber_id])?;
        Ok(())
    }

    fn org_calling_withheld(&self, org_id: &str) -> Result<Vec<CallingWithheld>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {WITHHELD_COLUMNS} FROM calling_withheld WHERE org_id = ?1
             ORDER BY user_id, subscriber_id"
        ))?;
        let rows = stmt.query_map([org_id], withheld)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn held_number(&self, subscriber_id: &str) -> Result<Option<CallingNumber>, StoreError> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT {NUMBER_COLUMNS} FROM calling_numbers
                 WHERE holder_kind = 'user' AND holder_ref = ?1"
            ))?
            .query_row([subscriber_id], number_row)
            .optional()?;
        row.map(calling_number).transpose()
    }

    fn put_device_activation(&self, org_id: &str, d: &DeviceActivation) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO device_activations (command_key, org_id, subscriber_id, user_id,
                     device_type, mac_address, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                d.command_key,
                org_id,
                d.subscriber_id,
                d.user_id,
                d.device_type,
                d.mac_address,
                d.issued_at,
                d.expires_at
            ])?;
        Ok(())
    }

    fn device_activation(&self, command_key: &str) -> Result<Option<DeviceActivation>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {DEVICE_COLUMNS} FROM device_activations WHERE command_key = ?1"
            ))?
            .query_row([command_key], device)
            .optional()?)
    }

    fn org_device_activations(&self, org_id: &str) -> Result<Vec<DeviceActivation>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS} FROM device_activations WHERE org_id = ?1
             ORDER BY user_id, issued_at, command_key"
        ))?;
        let rows = stmt.query_map([org_id], device)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
