//! Schema migrations on PostgreSQL: one embedded SQL file per version,
//! applied in order inside one transaction (PostgreSQL's DDL is
//! transactional), recorded in `bwgate_schema`. Nodes starting together
//! take an advisory lock first, so one migrates and the others find it done.

use deadpool_postgres::GenericClient;

use super::sql::{exec, get, row};
use crate::store::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_disabled_templates_and_pending_organizations",
        sql: include_str!("migrations/0002_disabled_templates_and_pending_organizations.sql"),
    },
    Migration {
        version: 3,
        name: "0003_provisioning_events",
        sql: include_str!("migrations/0003_provisioning_events.sql"),
    },
    Migration {
        version: 4,
        name: "0004_used_once",
        sql: include_str!("migrations/0004_used_once.sql"),
    },
    Migration {
        version: 5,
        name: "0005_license_subscriptions",
        sql: include_str!("migrations/0005_license_subscriptions.sql"),
    },
    Migration {
        version: 6,
        name: "0006_calling_inventory",
        sql: include_str!("migrations/0006_calling_inventory.sql"),
    },
    Migration {
        version: 7,
        name: "0007_workspaces",
        sql: include_str!("migrations/0007_workspaces.sql"),
    },
];

const MIGRATION_LOCK: i64 = 0x0062_7767_6174_6500; // "bwgate" 00

/// The schema version a fully migrated database has.
pub(super) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the schema to [`latest_version`] inside the caller's
/// transaction; returns how many migrations ran. A database migrated by a
/// newer binary is refused before anything changes.
pub(super) async fn migrate<C: GenericClient>(c: &C, now: i64) -> Result<usize, StoreError> {
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS bwgate_schema (
             version    BIGINT NOT NULL PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at BIGINT NOT NULL
         )",
    )
    .await?;
    let found: Option<i64> = match row(c, "SELECT max(version) FROM bwgate_schema", &[]).await? {
        Some(r) => get(&r, 0)?,
        None => None,
    };
    let current = found.unwrap_or(0);
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest_version(),
        });
    }
    let mut applied = 0;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        c.batch_execute(m.sql).await.map_err(|e| {
            StoreError::Database(format!(
                "migration {} failed: {}",
                m.name,
                StoreError::from(e)
            ))
        })?;
        exec(
            c,
            "INSERT INTO bwgate_schema (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &now],
        )
        .await?;
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }
}
