//! The store suite (`store::suite`) on SQLite: a fresh database file per
//! case, and the probes the cases use, in SQL on the store's own
//! connections.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use rusqlite::types::ValueRef;

use super::SqliteStore;
use crate::config::StoreConfig;
use crate::store::suite::{store_suite, StoreFactory, TestDatabase};
use crate::store::{OutboxEntry, Store, StoreError};

/// Fresh SQLite databases in temporary directories, default settings.
pub(crate) struct SqliteFactory;

/// One database file; probes go through the store opened last.
pub(crate) struct SqliteDatabase {
    dir: tempfile::TempDir,
    // Weak, so a case that drops its store really closes the database.
    last_opened: Mutex<Weak<SqliteStore>>,
}

impl SqliteFactory {
    /// A fresh database, for SQLite's own tests that also want the
    /// concrete store.
    pub(crate) fn database() -> SqliteDatabase {
        SqliteDatabase {
            dir: tempfile::tempdir().expect("tempdir"),
            last_opened: Mutex::new(Weak::new()),
        }
    }
}

impl SqliteDatabase {
    /// Opens the database (again) as the concrete store.
    pub(crate) async fn open_sqlite(&self) -> Arc<SqliteStore> {
        let store = Arc::new(
            SqliteStore::open(&self.dir.path().join("bwgate.db"), &StoreConfig::default())
                .await
                .expect("open store"),
        );
        *self.last_opened.lock().expect("lock") = Arc::downgrade(&store);
        store
    }

    fn store(&self) -> Arc<SqliteStore> {
        self.last_opened
            .lock()
            .expect("lock")
            .upgrade()
            .expect("probes need an open store")
    }
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn create(&self) -> Box<dyn TestDatabase> {
        Box::new(Self::database())
    }
}

fn render(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(format!("{b:?}")),
    }
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[async_trait]
impl TestDatabase for SqliteDatabase {
    async fn open(&self) -> Arc<dyn Store> {
        self.open_sqlite().await
    }

    async fn snapshot(&self) -> Vec<String> {
        self.store()
            .read(|c| {
                let mut out = Vec::new();
                for table in [
                    "organizations",
                    "subscribers",
                    "outbox",
                    "accepted_requests",
                    "licenses",
                    "license_events",
                    "license_applied",
                    "license_subscriptions",
                    "calling_locations",
                    "calling_numbers",
                    "calling_withheld",
                    "device_activations",
                    "activations",
                ] {
                    let mut stmt = c.prepare(&format!("SELECT * FROM {table} ORDER BY 1"))?;
                    let n = stmt.column_count();
                    let mut rows = stmt.query([])?;
                    while let Some(row) = rows.next()? {
                        let mut line = format!("{table}:");
                        for i in 0..n {
                            let v = match row.get_ref(i)? {
                                ValueRef::Null => "NULL".to_string(),
                                ValueRef::Integer(i) => i.to_string(),
                                ValueRef::Real(f) => f.to_string(),
                                ValueRef::Text(t) => format!("'{}'", String::from_utf8_lossy(t)),
                                ValueRef::Blob(b) => format!("{b:?}"),
                            };
                            line.push_str(&v);
                            line.push('|');
                        }
                        out.push(line);
                    }
                }
                Ok(out)
            })
            .await
            .expect("snapshot")
    }

    async fn query(&self, sql: &str, args: &[&str]) -> Vec<Vec<Option<String>>> {
        let (sql, args) = (sql.to_string(), owned(args));
        self.store()
            .read(move |c| {
                let mut stmt = c.prepare(&sql)?;
                let n = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(
                        (0..n)
                            .map(|i| row.get_ref(i).map(render))
                            .collect::<Result<_, _>>()?,
                    );
                }
                Ok(out)
            })
            .await
            .expect("query")
    }

    async fn execute(&self, sql: &str, args: &[&str]) -> Result<(), StoreError> {
        let (sql, args) = (sql.to_string(), owned(args));
        self.store()
            .write(move |c| {
                c.execute(&sql, rusqlite::params_from_iter(args.iter()))?;
                Ok(())
            })
            .await
    }

    async fn fail_subscriber_inserts_named(&self, first_name: &str) {
        // A TEMP trigger lives on the writer's connection, where the
        // inserts run.
        let sql = format!(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON subscribers
             WHEN NEW.first_name = '{}'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            first_name.replace('\'', "''")
        );
        self.store()
            .write(move |c| {
                c.execute_batch(&sql)?;
                Ok(())
            })
            .await
            .expect("trigger");
    }

    async fn all_commands(&self) -> Vec<OutboxEntry> {
        self.store()
            .read(super::outbox::all_entries)
            .await
            .expect("outbox")
    }
}

store_suite!(SqliteFactory);
