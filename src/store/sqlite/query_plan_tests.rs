//! The query plans of SQLite's hot reads: due (and so claimed) commands and
//! the partner list walk their indexes, never a whole table, never a sort.

use super::suite::SqliteFactory;
use crate::store::suite::partner::query;
use crate::store::suite::NOW;
use crate::store::SubscriberQuery;

#[tokio::test]
async fn due_commands_and_claims_use_the_pending_indexes_without_sorting() {
    let db = SqliteFactory::database();
    let store = db.open_sqlite().await;
    let plan: Vec<String> = store
        .read(|c| {
            let mut st = c.prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                super::outbox::due_sql_for_tests()
            ))?;
            // Two running leases, as a claim passes them.
            let leases = r#"[["A", 7], ["B", 9]]"#;
            let rows = st.query_map(rusqlite::params![NOW, 10, leases], |r| {
                r.get::<_, String>(3)
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .expect("plan");
    let text = plan.join("\n");
    assert!(text.contains("outbox_pending_by_seq"), "{text}");
    assert!(text.contains("outbox_pending_by_retry"), "{text}");
    assert!(!text.contains("TEMP B-TREE FOR ORDER BY"), "{text}");
    assert!(
        !plan
            .iter()
            .any(|l| l.trim() == "SCAN o" || l.trim() == "SCAN outbox"),
        "no full table scan: {text}"
    );
}

#[tokio::test]
async fn partner_list_of_one_template_walks_the_template_index_without_sorting() {
    let db = SqliteFactory::database();
    let store = db.open_sqlite().await;
    let q = SubscriberQuery {
        provisioning_id: Some("tpl-a".into()),
        exclude_provisioned: true,
        after: Some("0".into()),
        limit: 50,
        ..query("acme")
    };
    let (tail, values) = super::partner_admin::list_sql(&q);
    let plan: Vec<String> = store
        .read(move |c| {
            let mut st = c.prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT id FROM subscribers {tail}"
            ))?;
            let rows = st.query_map(rusqlite::params_from_iter(values), |r| {
                r.get::<_, String>(3)
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .expect("plan");
    let text = plan.join("\n");
    assert!(text.contains("subscribers_by_template"), "{text}");
    assert!(!text.contains("TEMP B-TREE"), "{text}");
}
