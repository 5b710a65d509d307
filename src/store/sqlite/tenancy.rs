//! SQL for partners, clusters and customer templates. Write functions run
//! on the writer thread (inside its transaction), read functions on a
//! pooled read-only connection.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::{Cluster, CustomerTemplate, Partner};
use crate::store::rows::TemplateRow;
use crate::store::StoreError;

pub(super) fn upsert_partner(conn: &Connection, p: &Partner, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO partners (id, name, admin_email, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (id) DO UPDATE SET
             name = excluded.name,
             admin_email = excluded.admin_email,
             updated_at = max(updated_at, excluded.updated_at)",
    )?
    .execute(params![p.id, p.name, p.admin_email, now])?;
    Ok(())
}

pub(super) fn upsert_cluster(conn: &Connection, c: &Cluster, now: i64) -> Result<(), StoreError> {
    require_partner(conn, &c.partner_id)?;
    conn.prepare_cached(
        "INSERT INTO clusters (id, partner_id, name, xsp_url, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT (id) DO UPDATE SET
             partner_id = excluded.partner_id,
             name = excluded.name,
             xsp_url = excluded.xsp_url,
             updated_at = max(updated_at, excluded.updated_at)",
    )?
    .execute(params![c.id, c.partner_id, c.name, c.xsp_url, now])?;
    Ok(())
}

pub(super) fn upsert_template(
    conn: &Connection,
    t: &CustomerTemplate,
    now: i64,
) -> Result<(), StoreError> {
    require_partner(conn, &t.partner_id)?;
    if let Some(cluster_id) = &t.cluster_id {
        require(
            conn,
            "SELECT 1 FROM clusters WHERE id = ?1",
            "cluster",
            cluster_id,
        )?;
    }
    let settings = serde_json::to_string(&t.settings)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode template settings: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO templates (provisioning_id, partner_id, cluster_id, name, settings_json,
                                provisioning_username, provisioning_password_hash, source,
                                disabled_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?10, ?9, ?9)
         ON CONFLICT (provisioning_id) DO UPDATE SET
             partner_id = excluded.partner_id,
             cluster_id = excluded.cluster_id,
             name = excluded.name,
             settings_json = excluded.settings_json,
             provisioning_username = excluded.provisioning_username,
             provisioning_password_hash = excluded.provisioning_password_hash,
             source = excluded.source,
             disabled_at = excluded.disabled_at,
             updated_at = max(updated_at, excluded.updated_at)",
    )?
    .execute(params![
        t.provisioning_id,
        t.partner_id,
        t.cluster_id,
        t.name,
        settings,
        t.provisioning_username,
        t.provisioning_password_hash,
        t.source.as_str(),
        now,
        t.disabled_at
    ])?;
    Ok(())
}

fn require_partner(conn: &Connection, id: &str) -> Result<(), StoreError> {
    require(conn, "SELECT 1 FROM partners WHERE id = ?1", "partner", id)
}

/// Checks a referenced row exists, for a clear `MissingReference` instead
/// of SQLite's anonymous "FOREIGN KEY constraint failed".
fn require(conn: &Connection, sql: &str, entity: &'static str, id: &str) -> Result<(), StoreError> {
    let found = conn
        .prepare_cached(sql)?
        .query_row([id], |_| Ok(()))
        .optional()?;
    match found {
        Some(()) => Ok(()),
        None => Err(StoreError::MissingReference {
            entity,
            id: id.to_string(),
        }),
    }
}

pub(super) fn partner(conn: &Connection, id: &str) -> Result<Option<Partner>, StoreError> {
    let partner = conn
        .prepare_cached("SELECT id, name, admin_email FROM partners WHERE id = ?1")?
        .query_row([id], |row| {
            Ok(Partner {
                id: row.get(0)?,
                name: row.get(1)?,
                admin_email: row.get(2)?,
            })
        })
        .optional()?;
    Ok(partner)
}

const TEMPLATE_COLUMNS: &str = "provisioning_id, partner_id, cluster_id, name, settings_json,
     provisioning_username, provisioning_password_hash, source, disabled_at";

pub(super) fn template(
    conn: &Connection,
    provisioning_id: &str,
) -> Result<Option<CustomerTemplate>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE provisioning_id = ?1"
        ))?
        .query_row([provisioning_id], template_row)
        .optional()?;
    row.map(TemplateRow::decode).transpose()
}

pub(super) fn templates(conn: &Connection) -> Result<Vec<CustomerTemplate>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY provisioning_id"
    ))?;
    let rows = stmt.query_map([], template_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.decode()?);
    }
    Ok(out)
}

/// A row as the shared decoding takes it.
pub(super) fn template_row(row: &Row<'_>) -> rusqlite::Result<TemplateRow> {
    Ok(TemplateRow {
        provisioning_id: row.get(0)?,
        partner_id: row.get(1)?,
        cluster_id: row.get(2)?,
        name: row.get(3)?,
        settings_json: row.get(4)?,
        provisioning_username: row.get(5)?,
        provisioning_password_hash: row.get(6)?,
        source: row.get(7)?,
        disabled_at: row.get(8)?,
    })
}

/// Disables every `config` template whose id is not in `keep` (a JSON
/// array of ids) and enables those that are; returns the ids disabled by
/// this call. `demo` and `api` templates are left alone.
pub(super) fn sync_config_templates(
    conn: &Connection,
    keep_json: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(
        "UPDATE templates SET disabled_at = NULL, updated_at = max(updated_at, ?2)
         WHERE source = 'config' AND disabled_at IS NOT NULL
           AND provisioning_id IN (SELECT value FROM json_each(?1))",
    )?
    .execute(params![keep_json, now])?;
    let mut stmt = conn.prepare_cached(
        "UPDATE templates SET disabled_at = ?2, updated_at = max(updated_at, ?2)
         WHERE source = 'config' AND disabled_at IS NULL
           AND provisioning_id NOT IN (SELECT value FROM json_each(?1))
         RETURNING provisioning_id",
    )?;
    let mut ids = stmt
        .query_map(params![keep_json, now], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    ids.sort();
    Ok(ids)
}

/// One node writes this database: the newest write time and the row
/// counts change with every partner, cluster or template written.
pub(super) fn revision(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT coalesce(max(updated_at), 0) + count(*) FROM partners)
                  + (SELECT coalesce(max(updated_at), 0) + count(*) FROM clusters)
                  + (SELECT coalesce(max(updated_at), 0) + count(*) FROM templates)",
        )?
        .query_row([], |r| r.get(0))?)
}
