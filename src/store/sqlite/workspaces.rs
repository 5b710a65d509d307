//! Workspaces provisioned through the partner API.

use rusqlite::{params, OptionalExtension, Row};

use super::tx::SqliteTx;
use crate::domain::workspace::WorkspaceRecord;
use crate::store::rows::{encode_errors, WorkspaceRow, WORKSPACE_COLUMNS};
use crate::store::workspace_rows::WorkspaceRows;
use crate::store::StoreError;

fn workspace_row(row: &Row<'_>) -> rusqlite::Result<WorkspaceRow> {
    Ok(WorkspaceRow {
        id: row.get(0)?,
        provisioning_id: row.get(1)?,
        partner_id: row.get(2)?,
        sp_enterprise_id: row.get(3)?,
        enterprise_key: row.get(4)?,
        org_id: row.get(5)?,
        user_id: row.get(6)?,
        display_name: row.get(7)?,
        phone_number: row.get(8)?,
        extension: row.get(9)?,
        status: row.get(10)?,
        errors_json: row.get(11)?,
        version: row.get(12)?,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}

impl SqliteTx<'_, '_> {
    fn one_workspace(
        &self,
        filter: &str,
        value: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE {filter}"
            ))?
            .query_row([value], workspace_row)
            .optional()?
            .map(WorkspaceRow::into_record)
            .transpose()
    }
}

impl WorkspaceRows for SqliteTx<'_, '_> {
    fn insert_workspace(&self, w: &WorkspaceRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO workspaces ({WORKSPACE_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
            ))?
            .execute(params![
                w.id,
                w.provisioning_id,
                w.partner_id,
                w.sp_enterprise_id,
                w.enterprise_key.as_str(),
                w.org_id,
                w.user_id.as_str(),
                w.display_name,
                w.phone_number.as_ref().map(|n| n.as_str()),
                w.extension,
                w.status.as_str(),
                encode_errors(&w.errors)?,
                w.version,
                w.created_at,
                w.updated_at,
            ])?;
        Ok(())
    }

    fn workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.one_workspace("id = ?1", id)
    }

    fn live_workspace_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.one_workspace("user_id = ?1 AND status <> 'removed'", user_id)
    }

    fn live_workspaces_of_org(&self, org_id: &str) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {WORKSPACE_COLUMNS} FROM workspaces
             WHERE org_id = ?1 AND status <> 'removed' ORDER BY id"
        ))?;
        let rows = stmt.query_map([org_id], workspace_row)?;
        rows.map(|r| r?.into_record()).collect()
    }

    fn update_workspace(&self, w: &WorkspaceRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE workspaces SET user_id = ?2, display_name = ?3, phone_number = ?4,
                     extension = ?5, status = ?6, errors_json = ?7, version = ?8,
                     updated_at = ?9
                 WHERE id = ?1",
            )?
            .execute(params![
                w.id,
                w.user_id.as_str(),
                w.display_name,
                w.phone_number.as_ref().map(|n| n.as_str()),
                w.extension,
                w.status.as_str(),
                encode_errors(&w.errors)?,
                w.version,
                w.updated_at,
            ])?;
        Ok(())
    }
}
