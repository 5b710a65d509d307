//! The license core's Webex Calling inventory on PostgreSQL. See SQLite's
//! `calling.rs` for the same rows. Assigning a number updates its row, so
//! of two units of work taking one free number at once the second to
//! commit conflicts (REPEATABLE READ) and runs again, then finds it held.

use tokio_postgres::Row;

use super::sql::{exec, get, row, rows};
use super::tx::PgTx;
use crate::domain::calling::{CallingLocation, CallingNumber, CallingWithheld, NumberHolder};
use crate::domain::device::DeviceActivation;
use crate::store::calling_rows::CallingRows;
use crate::store::rows::{holder_columns, number_holder, stored_number};
use crate::store::StoreError;

const NUMBER_COLUMNS: &str =
    "number, location_id, holder_kind, holder_ref, holder_user_id, assigned_at";
const WITHHELD_COLUMNS: &str = "subscriber_id, user_id, directory_number, reason, at";
const DEVICE_COLUMNS: &str =
    "command_key, subscriber_id, user_id, device_type, mac_address, issued_at, expires_at";

fn device(r: &Row) -> Result<DeviceActivation, StoreError> {
    Ok(DeviceActivation {
        command_key: get(r, 0)?,
        subscriber_id: get(r, 1)?,
        user_id: get(r, 2)?,
        device_type: get(r, 3)?,
        mac_address: get(r, 4)?,
        issued_at: get(r, 5)?,
        expires_at: get(r, 6)?,
    })
}

fn calling_number(r: &Row) -> Result<CallingNumber, StoreError> {
    let number: String = get(r, 0)?;
    Ok(CallingNumber {
        holder: number_holder(&number, get(r, 2)?, get(r, 3)?, get(r, 4)?)?,
        number: stored_number(&number)?,
        location_id: get(r, 1)?,
        assigned_at: get(r, 5)?,
    })
}

fn withheld(r: &Row) -> Result<CallingWithheld, StoreError> {
    Ok(CallingWithheld {
        subscriber_id: get(r, 0)?,
        user_id: get(r, 1)?,
        directory_number: get(r, 2)?,
        reason: get(r, 3)?,
        at: get(r, 4)?,
    })
}

fn location(r: &Row) -> Result<CallingLocation, StoreError> {
    Ok(CallingLocation {
        id: get(r, 0)?,
        name: get(r, 1)?,
        country: get(r, 2)?,
    })
}

impl CallingRows for PgTx<'_, '_> {
    fn calling_managed(&self, org_id: &str) -> Result<bool, StoreError> {
        self.run(async {
            Ok(row(
                self.tx,
                "SELECT 1 FROM calling_locations WHERE org_id = $1 LIMIT 1",
                &[&org_id],
            )
            .await?
            .is_some())
        })
    }

    fn calling_location(
        &self,
        org_id: &str,
        location_id: &str,
    ) -> Result<Option<CallingLocation>, StoreError> {
        self.run(async {
            row(
                self.tx,
                "SELECT location_id, name, country FROM calling_locations
                 WHERE org_id = $1 AND location_id = $2",
                &[&org_id, &location_id],
            )
            .await?
            .map(|r| location(&r))
            .transpose()
        })
    }

    fn calling_locations(&self, org_id: &str) -> Result<Vec<CallingLocation>, StoreError> {
        self.run(async {
            rows(
                self.tx,
                "SELECT location_id, name, country FROM calling_locations
                 WHERE org_id = $1 ORDER BY location_id COLLATE \"C\"",
                &[&org_id],
            )
            .await?
            .iter()
            .map(location)
            .collect()
        })
    }

    fn put_calling_location(
        &self,
        org_id: &str,
        l: &CallingLocation,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(async {
            exec(
                self.tx,
                "INSERT INTO calling_locations
                     (org_id, location_id, name, country, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (org_id, location_id) DO UPDATE SET
                     name = excluded.name, country = excluded.country,
                     updated_at = excluded.updated_at",
                &[&org_id, &l.id, &l.name, &l.country, &now],
            )
            .await?;
            Ok(())
        })
    }

    fn calling_number(&self, number: &str) -> Result<Option<(String, CallingNumber)>, StoreError> {
        self.run(async {
            let sql =
                format!("SELECT {NUMBER_COLUMNS}, org_id FROM calling_numbers WHERE number = $1");
            row(self.tx, &sql, &[&number])
                .await?
                .map(|r| Ok((get(&r, 6)?, calling_number(&r)?)))
                .transpose()
        })
    }

    fn put_calling_number(
        &self,
        org_id: &str,
        n: &CallingNumber,
        now: i64,
    ) -> Result<(), StoreError> {
        let (kind, reference, user_id) = holder_columns(n.holder.as_ref());
        self.write(async {
            exec(
                self.tx,
                "INSERT INTO calling_numbers
                     (number, org_id, location_id, holder_kind, holder_ref, holder_user_id,
                      assigned_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (number) DO UPDATE SET
                     org_id = excluded.org_id, location_id = excluded.location_id,
                     holder_kind = excluded.holder_kind, holder_ref = excluded.holder_ref,
                     holder_user_id = excluded.holder_user_id,
                     assigned_at = excluded.assigned_at",
                &[
                    &n.number.as_str(),
                    &org_id,
                    &n.location_id,
                    &kind,
                    &reference,
                    &user_id,
                    &n.assigned_at,
                    &now,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn calling_numbers(&self, org_id: &str) -> Result<Vec<CallingNumber>, StoreError> {
        self.run(async {
            let sql = format!(
                "SELECT {NUMBER_COLUMNS} FROM calling_numbers WHERE org_id = $1
                 ORDER BY number COLLATE \"C\""
            );
            rows(self.tx, &sql, &[&org_id])
                .await?
                .iter()
                .map(calling_number)
                .collect()
        })
    }

    fn hold_number(&self, number: &str, holder: &NumberHolder, now: i64) -> Result<(), StoreError> {
        let (kind, reference, user_id) = holder_columns(Some(holder));
        self.write(async {
            exec(
                self.tx,
                "UPDATE calling_numbers SET holder_kind = $2, holder_ref = $3,
                     holder_user_id = $4, assigned_at = $5
                 WHERE number = $1",
                &[&number, &kind, &reference, &user_id, &now],
            )
            .await?;
            Ok(())
        })
    }

    fn release_numbers(&self, subscriber_id: &str) -> Result<(), StoreError> {
        self.write(async {
            exec(
                self.tx,
                "UPDATE calling_numbers SET holder_kind = NULL, holder_ref = NULL,
                     holder_user_id = NULL, assigned_at = NULL
                 WHERE holder_kind = 'user' AND holder_ref = $1",
                &[&subscriber_id],
            )
            .await?;
            Ok(())
        })
    }

    fn calling_withheld(&self, subscriber_id: &str) -> Result<Option<CallingWithheld>, StoreError> {
        self.run(async {
            let sql =
                format!("SELECT {WITHHELD_COLUMNS} FROM calling_withheld WHERE subscriber_id = $1");
            row(self.tx, &sql, &[&subscriber_id])
                .await?
                .map(|r| withheld(&r))
                .transpose()
        })
    }

    fn put_calling_withheld(&self, org_id: &str, w: &CallingWithheld) -> Result<(), StoreError> {
        self.write(async {
            exec(
                self.tx,
                "INSERT INTO calling_withheld
                     (subscriber_id, org_id, user_id, directory_number, reason, at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (subscriber_id) DO UPDATE SET
                     org_id = excluded.org_id, user_id = excluded.user_id,
                     directory_number = excluded.directory_number,
                     reason = excluded.reason, at = excluded.at",
                &[
                    &w.subscriber_id,
                    &org_id,
                    &w.user_id,
                    &w.directory_number,
                    &w.reason,
                    &w.at,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn clear_calling_withheld(&self, subscriber_id: &str) -> Result<(), StoreError> {
        self.write(async {
            exec(
                self.tx,
                "DELETE FROM calling_withheld WHERE subscriber_id = $1",
                &[&subscriber_id],
            )
            .await?;
            Ok(())
        })
    }

    fn org_calling_withheld(&self, org_id: &str) -> Result<Vec<CallingWithheld>, StoreError> {
        self.run(async {
            let sql = format!(
                "SELECT {WITHHELD_COLUMNS} FROM calling_withheld WHERE org_id = $1
                 ORDER BY user_id COLLATE \"C\", subscriber_id COLLATE \"C\""
            );
            rows(self.tx, &sql, &[&org_id])
                .await?
                .iter()
                .map(withheld)
                .collect()
        })
    }

    fn held_number(&self, subscriber_id: &str) -> Result<Option<CallingNumber>, StoreError> {
        self.run(async {
            let sql = format!(
                "SELECT {NUMBER_COLUMNS} FROM calling_numbers
                 WHERE holder_kind = 'user' AND holder_ref = $1"
            );
            row(self.tx, &sql, &[&subscriber_id])
                .await?
                .map(|r| calling_number(&r))
                .transpose()
        })
    }

    fn put_device_activation(&self, org_id: &str, d: &DeviceActivation) -> Result<(), StoreError> {
        self.write(async {
            exec(
                self.tx,
                "INSERT INTO device_activations (command_key, org_id, subscriber_id, user_id,
                     device_type, mac_address, issued_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &d.command_key,
                    &org_id,
                    &d.subscriber_id,
                    &d.user_id,
                    &d.device_type,
                    &d.mac_address,
                    &d.issued_at,
                    &d.expires_at,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn device_activation(&self, command_key: &str) -> Result<Option<DeviceActivation>, StoreError> {
        self.run(async {
            let sql =
                format!("SELECT {DEVICE_COLUMNS} FROM device_activations WHERE command_key = $1");
            row(self.tx, &sql, &[&command_key])
                .await?
                .map(|r| device(&r))
                .transpose()
        })
    }

    fn org_device_activations(&self, org_id: &str) -> Result<Vec<DeviceActivation>, StoreError> {
        self.run(async {
            let sql = format!(
                "SELECT {DEVICE_COLUMNS} FROM device_activations WHERE org_id = $1
                 ORDER BY user_id COLLATE \"C\", issued_at, command_key COLLATE \"C\""
            );
            rows(self.tx, &sql, &[&org_id])
                .await?
                .iter()
                .map(device)
                .collect()
        })
    }
}
