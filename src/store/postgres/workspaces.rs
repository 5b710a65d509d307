//! Workspaces on PostgreSQL (see SQLite's `workspaces.rs`). Two nodes
//! inserting one user id at once: the unique index fails the second, which
//! reruns its unit of work and finds the first's row.

use tokio_postgres::Row;

use super::sql::{exec, get, row, rows};
use super::tx::PgTx;
use crate::domain::workspace::WorkspaceRecord;
use crate::store::rows::{encode_errors, WorkspaceRow, WORKSPACE_COLUMNS};
use crate::store::workspace_rows::WorkspaceRows;
use crate::store::StoreError;

fn workspace_row(r: &Row) -> Result<WorkspaceRow, StoreError> {
    Ok(WorkspaceRow {
        id: get(r, 0)?,
        provisioning_id: get(r, 1)?,
        partner_id: get(r, 2)?,
        sp_enterprise_id: get(r, 3)?,
        enterprise_key: get(r, 4)?,
        org_id: get(r, 5)?,
        user_id: get(r, 6)?,
        display_name: get(r, 7)?,
        phone_number: get(r, 8)?,
        extension: get(r, 9)?,
        status: get(r, 10)?,
        errors_json: get(r, 11)?,
        version: get(r, 12)?,
        created_at: get(r, 13)?,
        updated_at: get(r, 14)?,
    })
}

impl PgTx<'_, '_> {
    fn one_workspace(
        &self,
        filter: &str,
        value: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.run(async {
            let sql = format!("SELECT {WORKSPACE_COLUMNS} FROM workspaces WHERE {filter}");
            row(self.tx, &sql, &[&value])
                .await?
                .map(|r| workspace_row(&r)?.into_record())
                .transpose()
        })
    }
}

impl WorkspaceRows for PgTx<'_, '_> {
    fn insert_workspace(&self, w: &WorkspaceRecord) -> Result<(), StoreError> {
        let errors = encode_errors(&w.errors)?;
        self.write(async {
            let sql = format!(
                "INSERT INTO workspaces ({WORKSPACE_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            );
            exec(
                self.tx,
                &sql,
                &[
                    &w.id,
                    &w.provisioning_id,
                    &w.partner_id,
                    &w.sp_enterprise_id,
                    &w.enterprise_key.as_str(),
                    &w.org_id,
                    &w.user_id.as_str(),
                    &w.display_name,
                    &w.phone_number.as_ref().map(|n| n.as_str()),
                    &w.extension,
                    &w.status.as_str(),
                    &errors,
                    &w.version,
                    &w.created_at,
                    &w.updated_at,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.one_workspace("id = $1", id)
    }

    fn live_workspace_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.one_workspace("user_id = $1 AND status <> 'removed'", user_id)
    }

    fn live_workspaces_of_org(&self, org_id: &str) -> Result<Vec<WorkspaceRecord>, StoreError> {
        self.run(async {
            let sql = format!(
                "SELECT {WORKSPACE_COLUMNS} FROM workspaces
                 WHERE org_id = $1 AND status <> 'removed' ORDER BY id"
            );
            rows(self.tx, &sql, &[&org_id])
                .await?
                .iter()
                .map(|r| workspace_row(r)?.into_record())
                .collect()
        })
    }

    fn update_workspace(&self, w: &WorkspaceRecord) -> Result<(), StoreError> {
        let errors = encode_errors(&w.errors)?;
        self.write(async {
            exec(
                self.tx,
                "UPDATE workspaces SET user_id = $2, display_name = $3, phone_number = $4,
                     extension = $5, status = $6, errors_json = $7, version = $8,
                     updated_at = $9
                 WHERE id = $1",
                &[
                    &w.id,
                    &w.user_id.as_str(),
                    &w.display_name,
                    &w.phone_number.as_ref().map(|n| n.as_str()),
                    &w.extension,
                    &w.status.as_str(),
                    &errors,
                    &w.version,
                    &w.updated_at,
                ],
            )
            .await?;
            Ok(())
        })
    }
}
