//! Schema migrations: one embedded SQL file per version, applied in order,
//! each in its own transaction, tracked with `PRAGMA user_version`.
//!
//! To add a migration: create `migrations/NNNN_name.sql` and append a
//! `Migration { version: NNNN, .. }` to [`MIGRATIONS`]. Versions start at 1
//! and increase by one (a unit test checks this). Migrations run with
//! `foreign_keys` OFF so a table can be rebuilt (SQLite's "12 step"
//! procedure); `PRAGMA foreign_key_check` must pass before each commits.

use rusqlite::Connection;

use crate::store::StoreError;

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Value of `PRAGMA user_version` once this migration is applied.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_provisioning",
        sql: include_str!("migrations/0002_provisioning.sql"),
    },
    Migration {
        version: 3,
        name: "0003_email",
        sql: include_str!("migrations/0003_email.sql"),
    },
    Migration {
        version: 4,
        name: "0004_orgs",
        sql: include_str!("migrations/0004_orgs.sql"),
    },
    Migration {
        version: 5,
        name: "0005_activation",
        sql: include_str!("migrations/0005_activation.sql"),
    },
    Migration {
        version: 6,
        name: "0006_partner_admin",
        sql: include_str!("migrations/0006_partner_admin.sql"),
    },
    Migration {
        version: 7,
        name: "0007_trunk_flags",
        sql: include_str!("migrations/0007_trunk_flags.sql"),
    },
    Migration {
        version: 8,
        name: "0008_email_secrets",
        sql: include_str!("migrations/0008_email_secrets.sql"),
    },
    Migration {
        version: 9,
        name: "0009_user_id_case",
        sql: include_str!("migrations/0009_user_id_case.sql"),
    },
    Migration {
        version: 10,
        name: "0010_leases_and_intents",
        sql: include_str!("migrations/0010_leases_and_intents.sql"),
    },
    Migration {
        version: 11,
        name: "0011_template_disabled",
        sql: include_str!("migrations/0011_template_disabled.sql"),
    },
    Migration {
        version: 12,
        name: "0012_pending_organizations",
        sql: include_str!("migrations/0012_pending_organizations.sql"),
    },
    Migration {
        version: 13,
        name: "0013_provisioning_events",
        sql: include_str!("migrations/0013_provisioning_events.sql"),
    },
    Migration {
        version: 14,
        name: "0014_used_once",
        sql: include_str!("migrations/0014_used_once.sql"),
    },
    Migration {
        version: 15,
        name: "0015_license_subscriptions",
        sql: include_str!("migrations/0015_license_subscriptions.sql"),
    },
    Migration {
        version: 16,
        name: "0016_calling_inventory",
        sql: include_str!("migrations/0016_calling_inventory.sql"),
    },
    Migration {
        version: 17,
        name: "0017_workspaces",
        sql: include_str!("migrations/0017_workspaces.sql"),
    },
];

/// The schema version a fully migrated database has.
pub(crate) fn latest_version(migrations: &[Migration]) -> i64 {
    migrations.last().map_or(0, |m| m.version)
}

pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Fails with `SchemaTooNew` if the database was written by a newer binary.
pub(crate) fn check_not_too_new(
    conn: &Connection,
    migrations: &[Migration],
) -> Result<i64, StoreError> {
    let found = user_version(conn)?;
    let supported = latest_version(migrations);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    Ok(found)
}

/// Applies every migration newer than the database's `user_version`.
/// Returns how many were applied. Leaves `foreign_keys` ON.
pub(crate) fn migrate(conn: &Connection, migrations: &[Migration]) -> Result<usize, StoreError> {
    check_not_too_new(conn, migrations)?;
    // A no-op inside a transaction, so switch it before BEGIN.
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = apply_pending(conn, migrations);
    conn.pragma_update(None, "foreign_keys", true)?;
    result
}

fn apply_pending(conn: &Connection, migrations: &[Migration]) -> Result<usize, StoreError> {
    let mut applied = 0;
    for migration in migrations {
        if user_version(conn)? >= migration.version {
            continue;
        }
        // IMMEDIATE takes the write lock first, so two processes opening the
        // same new file cannot both apply a migration: re-check under lock.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        match apply_one(conn, migration, migrations) {
            Ok(true) => {
                conn.execute_batch("COMMIT").map_err(|e| {
                    rollback_quietly(conn);
                    migration_error(migration, StoreError::from(e))
                })?;
                applied += 1;
                tracing::info!(
                    version = migration.version,
                    name = migration.name,
                    "applied store migration"
                );
            }
            Ok(false) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                rollback_quietly(conn);
                return Err(migration_error(migration, e));
            }
        }
    }
    Ok(applied)
}

/// Runs one migration inside the open transaction. `Ok(false)`: another
/// connection applied it meanwhile.
fn apply_one(
    conn: &Connection,
    migration: &Migration,
    migrations: &[Migration],
) -> Result<bool, StoreError> {
    let current = check_not_too_new(conn, migrations)?;
    if current >= migration.version {
        return Ok(false);
    }
    conn.execute_batch(migration.sql)?;
    let violations: i64 =
        conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })?;
    if violations > 0 {
        return Err(StoreError::Database(format!(
            "{violations} foreign key violation(s) after migration"
        )));
    }
    conn.pragma_update(None, "user_version", migration.version)?;
    Ok(true)
}

fn migration_error(migration: &Migration, err: StoreError) -> StoreError {
    match err {
        StoreError::Database(msg) => {
            StoreError::Database(format!("migration {} failed: {msg}", migration.name))
        }
        other => other,
    }
}

fn rollback_quietly(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::warn!(error = %e, "rollback after failed migration failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_increase_by_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "migration {} out of order", m.name);
            let prefix = format!("{:04}_", m.version);
            assert!(m.name.starts_with(&prefix), "{} lacks {prefix}", m.name);
            assert!(!m.sql.trim().is_empty());
        }
        assert_eq!(latest_version(MIGRATIONS), MIGRATIONS.len() as i64);
    }

    #[test]
    fn licenses_granted_before_0015_get_their_subscribers_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("m.db")).expect("open");
        migrate(&conn, &MIGRATIONS[..14]).expect("up to 0014");
        conn.execute_batch(
            "INSERT INTO partners (id, name, created_at, updated_at) VALUES ('acme', 'Acme', 0, 0);
             INSERT INTO templates (provisioning_id, partner_id, name, settings_json,
                 provisioning_username, provisioning_password_hash, source, created_at, updated_at)
             VALUES ('p', 'acme', 'T', '{}', 'u', 'h', 'api', 0, 0);
             INSERT INTO organizations (id, enterprise_key, partner_id, provisioning_id, name,
                 origin, created_at)
             VALUES ('o1', 'e', 'acme', 'p', 'O', 'created', 0);
             INSERT INTO subscribers (id, provisioning_id, user_id, org_id, group_id, first_name,
                 last_name, package, status, version, created_at, last_status_change, updated_at)
             VALUES ('s1', 'p', 'ann@acme.example', 'o1', 'g1', 'A', 'L', 'basic',
                 'provisioned', 1, 0, 0, 0);
             INSERT INTO licenses (subscriber_id, license, granted_at)
             VALUES ('s1', 'webex-messaging', 0), ('gone', 'webex-messaging', 0);",
        )
        .expect("old rows");
        migrate(&conn, MIGRATIONS).expect("0015");
        let rows: Vec<(String, Option<String>, String, Option<String>)> = conn
            .prepare("SELECT subscriber_id, org_id, user_id, group_id FROM licenses ORDER BY 1")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .expect("rows");
        assert_eq!(
            rows,
            [
                ("gone".to_string(), None, String::new(), None),
                (
                    "s1".to_string(),
                    Some("o1".to_string()),
                    "ann@acme.example".to_string(),
                    Some("g1".to_string())
                ),
            ]
        );
    }

    #[test]
    fn migrations_run_once_and_record_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let list = [
            Migration {
                version: 1,
                name: "0001_a",
                sql: "CREATE TABLE runs (n INTEGER); INSERT INTO runs VALUES (1);",
            },
            Migration {
                version: 2,
                name: "0002_b",
                sql: "INSERT INTO runs VALUES (2);",
            },
        ];
        let conn = Connection::open(&path).expect("open");
        assert_eq!(migrate(&conn, &list[..1]).expect("first"), 1);
        assert_eq!(migrate(&conn, &list).expect("second"), 1);
        assert_eq!(migrate(&conn, &list).expect("third"), 0);
        drop(conn);

        let conn = Connection::open(&path).expect("reopen");
        assert_eq!(migrate(&conn, &list).expect("after reopen"), 0);
        let rows: Vec<i64> = conn
            .prepare("SELECT n FROM runs ORDER BY n")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("rows");
        assert_eq!(rows, vec![1, 2], "each migration ran exactly once");
        assert_eq!(user_version(&conn).expect("version"), 2);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1, "foreign keys are back on after migrating");
    }

    #[test]
    fn failing_migration_rolls_back_entirely() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("m.db")).expect("open");
        let list = [Migration {
            version: 1,
            name: "0001_bad",
            sql: "CREATE TABLE t (n INTEGER); INSERT INTO nope VALUES (1);",
        }];
        let err = migrate(&conn, &list).expect_err("must fail");
        assert!(
            matches!(&err, StoreError::Database(m) if m.contains("0001_bad") && m.contains("nope")),
            "{err:?}"
        );
        assert_eq!(user_version(&conn).expect("version"), 0);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(tables, 0, "partial migration was rolled back");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = Connection::open(dir.path().join("m.db")).expect("open");
        let newer = latest_version(MIGRATIONS) + 1;
        conn.pragma_update(None, "user_version", newer)
            .expect("set");
        let err = migrate(&conn, MIGRATIONS).expect_err("too new");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, supported } if found == newer && supported == latest_version(MIGRATIONS)),
            "{err:?}"
        );
    }

    #[test]
    fn user_ids_stored_before_are_lower_cased_unless_they_collide() {
        let conn = Connection::open_in_memory().expect("open");
        assert_eq!(migrate(&conn, &MIGRATIONS[..8]).expect("up to 8"), 8);
        conn.execute_batch(
            "INSERT INTO partners (id, name, created_at, updated_at) VALUES ('p', 'P', 0, 0);
             INSERT INTO templates (provisioning_id, partner_id, name, settings_json,
                 provisioning_username, provisioning_password_hash, source, created_at, updated_at)
                 VALUES ('t', 'p', 'T', '{}', 'u', 'h', 'config', 0, 0);",
        )
        .expect("tenancy");
        for (id, user) in [
            ("s1", "Mixed@Acme.example"),
            ("s2", "lower@acme.example"),
            ("s3", "Twin@acme.example"),
            ("s4", "TWIN@acme.example"),
        ] {
            conn.execute(
                "INSERT INTO subscribers (id, provisioning_id, user_id, first_name, last_name,
                     package, status, version, created_at, last_status_change, updated_at)
                 VALUES (?1, 't', ?2, 'F', 'L', 'basic', 'provisioned', 1, 0, 0, 0)",
                [id, user],
            )
            .expect("subscriber");
        }
        assert_eq!(migrate(&conn, &MIGRATIONS[..9]).expect("0009"), 1);
        let users: Vec<String> = conn
            .prepare("SELECT user_id FROM subscribers ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("rows");
        assert_eq!(
            users,
            [
                "mixed@acme.example",
                "lower@acme.example",
                "Twin@acme.example",
                "TWIN@acme.example"
            ]
        );
    }
}
