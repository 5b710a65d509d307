//! Tenancy rows (partners, clusters, templates) on any store: round
//! trips, upserts, missing references, undecodable rows, and a closed
//! store.

use std::time::Duration;

use super::*;
use crate::domain::template::TemplateSource;
use crate::domain::{Cluster, CustomerTemplate, Package, Partner, TemplateSettings};
use crate::store::StoreError;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The partner `acme`'s (created_at, updated_at).
async fn timestamps(fx: &Fixture) -> (i64, i64) {
    let row = fx
        .db
        .query(
            "SELECT created_at, updated_at FROM partners WHERE id = 'acme'",
            &[],
        )
        .await;
    let millis = |i: usize| -> i64 {
        row.first()
            .and_then(|r| r.get(i))
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("timestamp {i}: {row:?}"))
    };
    (millis(0), millis(1))
}

pub(crate) fn partner(id: &str) -> Partner {
    Partner {
        id: id.to_string(),
        name: format!("Partner {id}"),
        admin_email: Some(format!("admin@{id}.example")),
    }
}

pub(crate) fn cluster(id: &str, partner_id: &str) -> Cluster {
    Cluster {
        id: id.to_string(),
        partner_id: partner_id.to_string(),
        name: format!("Cluster {id}"),
        xsp_url: Some(format!("https://xsp.{id}.example")),
    }
}

pub(crate) fn full_template(
    pid: &str,
    partner_id: &str,
    cluster_id: Option<&str>,
) -> CustomerTemplate {
    CustomerTemplate {
        provisioning_id: pid.to_string(),
        partner_id: partner_id.to_string(),
        cluster_id: cluster_id.map(str::to_string),
        name: format!("Template {pid}"),
        // Everything away from the defaults, so a lost field shows.
        settings: TemplateSettings {
            enterprise_mode: false,
            default_package: Package::Premium,
            trusted_emails: false,
            provision_admin_first: false,
            allow_self_activation: true,
            provision_existing_orgs: false,
            create_new_orgs: false,
            partner_admin_email: Some("pa@example.com".into()),
            partner_admin_name: Some("Pat Admin".into()),
            email_language: "fr_CA".into(),
            wholesale: true,
        },
        provisioning_username: format!("prov-{pid}"),
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    }
}

pub(crate) async fn round_trip_and_upsert_replaces(factory: &dyn StoreFactory) {
    let store = empty(factory).await;

    let p = partner("acme");
    store.upsert_partner(&p).await.expect("partner");
    store
        .upsert_cluster(&cluster("c1", "acme"))
        .await
        .expect("cluster");
    let t1 = full_template("tpl-1", "acme", Some("c1"));
    let t2 = full_template("tpl-2", "acme", None);
    store.upsert_template(&t1).await.expect("t1");
    store.upsert_template(&t2).await.expect("t2");

    assert_eq!(store.partner("acme").await.expect("get"), Some(p.clone()));
    assert_eq!(store.partner("nobody").await.expect("get"), None);
    assert_eq!(
        store.template("tpl-1").await.expect("get"),
        Some(t1.clone())
    );
    assert_eq!(store.template("tpl-9").await.expect("get"), None);
    assert_eq!(
        store.templates().await.expect("list"),
        vec![t1.clone(), t2.clone()]
    );
    let cluster_row = store
        .db
        .query(
            "SELECT partner_id, name, xsp_url FROM clusters WHERE id = 'c1'",
            &[],
        )
        .await;
    assert_eq!(
        cluster_row,
        [[
            Some("acme".into()),
            Some("Cluster c1".into()),
            Some("https://xsp.c1.example".into())
        ]]
    );
    let (created, updated): (i64, i64) = timestamps(&store).await;
    assert!(created > 1_600_000_000_000, "unix milliseconds: {created}");

    // Upserts replace the content but keep the row (and created_at).
    let p2 = Partner {
        name: "Acme Renamed".into(),
        admin_email: None,
        ..p
    };
    store.upsert_partner(&p2).await.expect("replace partner");
    let mut t1b = t1.clone();
    t1b.settings = TemplateSettings::default();
    t1b.cluster_id = None;
    t1b.source = TemplateSource::Config;
    t1b.name = "Renamed".into();
    store.upsert_template(&t1b).await.expect("replace template");

    assert_eq!(store.partner("acme").await.expect("get"), Some(p2));
    assert_eq!(
        store.template("tpl-1").await.expect("get"),
        Some(t1b.clone())
    );
    assert_eq!(store.templates().await.expect("list"), vec![t1b, t2]);
    assert_eq!(count(&store, "SELECT count(*) FROM partners").await, 1);
    assert_eq!(count(&store, "SELECT count(*) FROM templates").await, 2);
    let (created2, updated2): (i64, i64) = timestamps(&store).await;
    assert_eq!(created2, created, "created_at survives an upsert");
    assert!(
        updated2 >= updated && updated2 >= created,
        "updated_at never goes back: {updated} -> {updated2}"
    );
    store.close().await.expect("close");
}

pub(crate) async fn missing_references_are_reported_and_nothing_is_written(
    factory: &dyn StoreFactory,
) {
    let store = empty(factory).await;

    let err = store
        .upsert_template(&full_template("t", "ghost", None))
        .await
        .expect_err("no partner");
    assert!(
        matches!(&err, StoreError::MissingReference { entity: "partner", id } if id == "ghost"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "partner 'ghost' does not exist");

    let err = store
        .upsert_cluster(&cluster("c", "ghost"))
        .await
        .expect_err("no partner");
    assert!(matches!(
        err,
        StoreError::MissingReference {
            entity: "partner",
            ..
        }
    ));

    store.upsert_partner(&partner("p")).await.expect("partner");
    let err = store
        .upsert_template(&full_template("t", "p", Some("nope")))
        .await
        .expect_err("no cluster");
    assert!(
        matches!(&err, StoreError::MissingReference { entity: "cluster", id } if id == "nope"),
        "{err:?}"
    );

    assert_eq!(store.templates().await.expect("list"), vec![]);
    assert_eq!(store.template("t").await.expect("get"), None);
    assert_eq!(count(&store, "SELECT count(*) FROM templates").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM clusters").await, 0);
    let stats = store.stats();
    assert_eq!(stats.writes_failed, 3);
    assert_eq!(stats.writes_committed, 1);
}

pub(crate) async fn after_close_operations_fail_with_closed(factory: &dyn StoreFactory) {
    let store = empty(factory).await;
    store.upsert_partner(&partner("p")).await.expect("write");
    store.close().await.expect("close");
    let write = tokio::time::timeout(TIMEOUT, store.upsert_partner(&partner("q")))
        .await
        .expect("no hang");
    assert!(matches!(write, Err(StoreError::Closed)), "{write:?}");
    let flush = tokio::time::timeout(TIMEOUT, store.flush())
        .await
        .expect("no hang");
    assert!(matches!(flush, Err(StoreError::Closed)), "{flush:?}");
    let read = tokio::time::timeout(TIMEOUT, store.partner("p"))
        .await
        .expect("no hang");
    assert!(matches!(read, Err(StoreError::Closed)), "{read:?}");
    assert!(matches!(store.ping().await, Err(StoreError::Closed)));
    assert!(store.close().await.is_ok());
}

pub(crate) async fn undecodable_rows_are_corrupt(factory: &dyn StoreFactory) {
    let store = empty(factory).await;
    store.upsert_partner(&partner("p")).await.expect("partner");
    store
        .upsert_template(&full_template("bad-json", "p", None))
        .await
        .expect("t");
    store
        .upsert_template(&full_template("bad-source", "p", None))
        .await
        .expect("t");
    for damage in [
        "UPDATE templates SET settings_json = '{\"enterprise_mode\": 1' WHERE provisioning_id = 'bad-json'",
        "UPDATE templates SET source = 'carrier-pigeon' WHERE provisioning_id = 'bad-source'",
    ] {
        store.db.execute(damage, &[]).await.expect("damage");
    }
    let err = store.template("bad-json").await.expect_err("corrupt json");
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("bad-json")),
        "{err:?}"
    );
    let err = store.template("bad-source").await.expect_err("bad source");
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("carrier-pigeon")),
        "{err:?}"
    );
    assert!(matches!(
        store.templates().await,
        Err(StoreError::Corrupt(_))
    ));
}

/// XSI login tokens are good once whichever node sees them: the store
/// keeps their ids until they expire.
pub(crate) async fn single_use_keys_are_good_once_until_they_expire(factory: &dyn StoreFactory) {
    let fx = empty(factory).await;
    let s = &fx;
    let now = 1_700_000_000;
    assert!(s
        .use_once("login-token:a", now + 60, now)
        .await
        .expect("first"));
    assert!(!s
        .use_once("login-token:a", now + 60, now + 1)
        .await
        .expect("again"));
    assert!(s
        .use_once("login-token:b", now + 60, now + 1)
        .await
        .expect("another"));
    // Reopened (another node, or after a restart): still used.
    s.close().await.expect("close");
    let reopened = fx.db.open().await;
    assert!(!reopened
        .use_once("login-token:a", now + 60, now + 2)
        .await
        .expect("after reopen"));
    // Once expired it is forgotten (the token itself is refused by then).
    assert!(reopened
        .use_once("login-token:a", now + 200, now + 60)
        .await
        .expect("expired"));
}
