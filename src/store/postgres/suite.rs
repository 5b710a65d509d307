//! The store suite (`store::suite`) on PostgreSQL: a fresh schema of the
//! scratch cluster per case (tests/support/pg_cluster.rs), and the probes
//! the cases use, in SQL on a pooled connection of the store opened last.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use tokio_postgres::types::{ToSql, Type};

use super::pg_cluster::PgCluster;
use super::{PgOptions, PgStore};
use crate::store::suite::{store_suite, StoreFactory, TestDatabase};
use crate::store::{OutboxEntry, Store, StoreError};

pub(crate) struct PgFactory;

pub(crate) struct PgDatabase {
    url: String,
    last_opened: Mutex<Weak<PgStore>>,
}

impl PgDatabase {
    fn store(&self) -> Arc<PgStore> {
        self.last_opened
            .lock()
            .expect("lock")
            .upgrade()
            .expect("probes need an open store")
    }
}

#[async_trait]
impl StoreFactory for PgFactory {
    async fn create(&self) -> Box<dyn TestDatabase> {
        let url = tokio::task::spawn_blocking(|| PgCluster::shared().fresh_url())
            .await
            .expect("cluster");
        Box::new(PgDatabase {
            url,
            last_opened: Mutex::new(Weak::new()),
        })
    }
}

/// The suite writes `?1`-style parameters (SQLite's); PostgreSQL's are `$1`.
fn dollar_params(sql: &str) -> String {
    sql.replace('?', "$")
}

/// A text argument as the type the statement expects there.
fn bind(arg: &str, ty: &Type) -> Box<dyn ToSql + Sync + Send> {
    match *ty {
        Type::INT8 => Box::new(arg.parse::<i64>().expect("an integer argument")),
        Type::INT4 => Box::new(arg.parse::<i32>().expect("an integer argument")),
        Type::BOOL => Box::new(arg == "1" || arg == "true"),
        _ => Box::new(arg.to_string()),
    }
}

/// A value as the suite reads values: integers and booleans as digits.
fn render(row: &tokio_postgres::Row, i: usize) -> Option<String> {
    match *row.columns()[i].type_() {
        Type::INT8 => row.get::<_, Option<i64>>(i).map(|v| v.to_string()),
        Type::INT4 => row.get::<_, Option<i32>>(i).map(|v| v.to_string()),
        Type::BOOL => row
            .get::<_, Option<bool>>(i)
            .map(|v| u8::from(v).to_string()),
        _ => row.get::<_, Option<String>>(i),
    }
}

#[async_trait]
impl TestDatabase for PgDatabase {
    async fn open(&self) -> Arc<dyn Store> {
        let store = Arc::new(
            PgStore::open(
                &PgOptions {
                    url: self.url.clone(),
                    pool_size: 8,
                    writers: 2,
                    max_batch: 64,
                },
                None,
            )
            .await
            .expect("open store"),
        );
        *self.last_opened.lock().expect("lock") = Arc::downgrade(&store);
        store
    }

    async fn snapshot(&self) -> Vec<String> {
        let client = self.store().test_client().await;
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
            let sql = format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY 1");
            for row in client.query(&sql, &[]).await.expect("snapshot") {
                out.push(format!("{table}:{}", row.get::<_, String>(0)));
            }
        }
        out
    }

    async fn query(&self, sql: &str, args: &[&str]) -> Vec<Vec<Option<String>>> {
        let client = self.store().test_client().await;
        let stmt = client
            .prepare(&dollar_params(sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let bound: Vec<Box<dyn ToSql + Sync + Send>> = args
            .iter()
            .zip(stmt.params())
            .map(|(a, ty)| bind(a, ty))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client
            .query(&stmt, &refs)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|row| (0..row.len()).map(|i| render(row, i)).collect())
            .collect()
    }

    async fn execute(&self, sql: &str, args: &[&str]) -> Result<(), StoreError> {
        let client = self.store().test_client().await;
        let stmt = client.prepare(&dollar_params(sql)).await?;
        let bound: Vec<Box<dyn ToSql + Sync + Send>> = args
            .iter()
            .zip(stmt.params())
            .map(|(a, ty)| bind(a, ty))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        client.execute(&stmt, &refs).await?;
        Ok(())
    }

    async fn fail_subscriber_inserts_named(&self, first_name: &str) {
        let name = first_name.replace('\'', "''");
        let client = self.store().test_client().await;
        client
            .batch_execute(&format!(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.first_name = '{name}' THEN RAISE EXCEPTION 'boom'; END IF;
                     RETURN NEW;
                 END $$;
                 CREATE TRIGGER boom BEFORE INSERT ON subscribers
                     FOR EACH ROW EXECUTE FUNCTION boom();"
            ))
            .await
            .expect("trigger");
    }

    async fn all_commands(&self) -> Vec<OutboxEntry> {
        let client = self.store().test_client().await;
        super::outbox::all(&client).await.expect("outbox")
    }
}

store_suite!(PgFactory);
