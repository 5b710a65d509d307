//! Partners, clusters, customer templates, partner admin tokens and the
//! partner's subscriber list.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::sql::{exec, get, limit, row, rows};
use super::subscribers;
use crate::domain::lifecycle::SubscriberRecord;
use crate::domain::{Cluster, CustomerTemplate, Partner};
use crate::store::rows::TemplateRow;
use crate::store::{StoreError, SubscriberQuery};

pub(super) async fn upsert_partner<C: GenericClient>(
    c: &C,
    p: &Partner,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO partners (id, name, admin_email, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (id) DO UPDATE SET
             name = excluded.name,
             admin_email = excluded.admin_email,
             revision = nextval('tenancy_revision'),
             updated_at = greatest(partners.updated_at, excluded.updated_at)",
        &[&p.id, &p.name, &p.admin_email, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn upsert_cluster<C: GenericClient>(
    c: &C,
    cl: &Cluster,
    now: i64,
) -> Result<(), StoreError> {
    require(
        c,
        "SELECT 1 FROM partners WHERE id = $1",
        "partner",
        &cl.partner_id,
    )
    .await?;
    exec(
        c,
        "INSERT INTO clusters (id, partner_id, name, xsp_url, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (id) DO UPDATE SET
             partner_id = excluded.partner_id,
             name = excluded.name,
             xsp_url = excluded.xsp_url,
             revision = nextval('tenancy_revision'),
             updated_at = greatest(clusters.updated_at, excluded.updated_at)",
        &[&cl.id, &cl.partner_id, &cl.name, &cl.xsp_url, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn upsert_template<C: GenericClient>(
    c: &C,
    t: &CustomerTemplate,
    now: i64,
) -> Result<(), StoreError> {
    require(
        c,
        "SELECT 1 FROM partners WHERE id = $1",
        "partner",
        &t.partner_id,
    )
    .await?;
    if let Some(cluster_id) = &t.cluster_id {
        require(
            c,
            "SELECT 1 FROM clusters WHERE id = $1",
            "cluster",
            cluster_id,
        )
        .await?;
    }
    let settings = serde_json::to_string(&t.settings)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode template settings: {e}")))?;
    exec(
        c,
        "INSERT INTO templates (provisioning_id, partner_id, cluster_id, name, settings_json,
                                provisioning_username, provisioning_password_hash, source,
                                disabled_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9, $9)
         ON CONFLICT (provisioning_id) DO UPDATE SET
             partner_id = excluded.partner_id,
             cluster_id = excluded.cluster_id,
             name = excluded.name,
             settings_json = excluded.settings_json,
             provisioning_username = excluded.provisioning_username,
             provisioning_password_hash = excluded.provisioning_password_hash,
             source = excluded.source,
             disabled_at = excluded.disabled_at,
             revision = nextval('tenancy_revision'),
             updated_at = greatest(templates.updated_at, excluded.updated_at)",
        &[
            &t.provisioning_id,
            &t.partner_id,
            &t.cluster_id,
            &t.name,
            &settings,
            &t.provisioning_username,
            &t.provisioning_password_hash,
            &t.source.as_str(),
            &now,
            &t.disabled_at,
        ],
    )
    .await?;
    Ok(())
}

/// A clear `MissingReference` instead of the server's anonymous foreign
/// key error.
async fn require<C: GenericClient>(
    c: &C,
    sql: &str,
    entity: &'static str,
    id: &str,
) -> Result<(), StoreError> {
    match row(c, sql, &[&id]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::MissingReference {
            entity,
            id: id.to_string(),
        }),
    }
}

pub(super) async fn partner<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<Partner>, StoreError> {
    row(
        c,
        "SELECT id, name, admin_email FROM partners WHERE id = $1",
        &[&id],
    )
    .await?
    .map(|r| {
        Ok(Partner {
            id: get(&r, 0)?,
            name: get(&r, 1)?,
            admin_email: get(&r, 2)?,
        })
    })
    .transpose()
}

const TEMPLATE_COLUMNS: &str = "provisioning_id, partner_id, cluster_id, name, settings_json,
     provisioning_username, provisioning_password_hash, source, disabled_at";

fn template_row(r: &Row) -> Result<TemplateRow, StoreError> {
    Ok(TemplateRow {
        provisioning_id: get(r, 0)?,
        partner_id: get(r, 1)?,
        cluster_id: get(r, 2)?,
        name: get(r, 3)?,
        settings_json: get(r, 4)?,
        provisioning_username: get(r, 5)?,
        provisioning_password_hash: get(r, 6)?,
        source: get(r, 7)?,
        disabled_at: get(r, 8)?,
    })
}

pub(super) async fn template<C: GenericClient>(
    c: &C,
    provisioning_id: &str,
) -> Result<Option<CustomerTemplate>, StoreError> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates WHERE provisioning_id = $1");
    row(c, &sql, &[&provisioning_id])
        .await?
        .map(|r| template_row(&r)?.decode())
        .transpose()
}

pub(super) async fn templates<C: GenericClient>(
    c: &C,
) -> Result<Vec<CustomerTemplate>, StoreError> {
    let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM templates ORDER BY provisioning_id");
    rows(c, &sql, &[])
        .await?
        .iter()
        .map(|r| template_row(r)?.decode())
        .collect()
}

/// Disables every `config` template whose id is not in `keep` and enables
/// those that are; returns the ids disabled by this call. `demo` and `api`
/// templates are left alone.
pub(super) async fn sync_config_templates<C: GenericClient>(
    c: &C,
    keep: &[String],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    exec(
        c,
        "UPDATE templates SET disabled_at = NULL, revision = nextval('tenancy_revision'),
                             updated_at = greatest(updated_at, $2)
         WHERE source = 'config' AND disabled_at IS NOT NULL
           AND provisioning_id = ANY($1)",
        &[&keep, &now],
    )
    .await?;
    let mut ids: Vec<String> = rows(
        c,
        "UPDATE templates SET disabled_at = $2, revision = nextval('tenancy_revision'),
                             updated_at = greatest(updated_at, $2)
         WHERE source = 'config' AND disabled_at IS NULL
           AND NOT (provisioning_id = ANY($1))
         RETURNING provisioning_id",
        &[&keep, &now],
    )
    .await?
    .iter()
    .map(|r| get(r, 0))
    .collect::<Result<_, _>>()?;
    ids.sort();
    Ok(ids)
}

pub(super) async fn set_admin_token<C: GenericClient>(
    c: &C,
    partner_id: &str,
    token_hash: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let changed = exec(
        c,
        "UPDATE partners SET admin_token_hash = $2, updated_at = greatest(updated_at, $3),
                            revision = nextval('tenancy_revision')
         WHERE id = $1",
        &[&partner_id, &token_hash, &now],
    )
    .await?;
    if changed != 1 {
        return Err(StoreError::MissingReference {
            entity: "partner",
            id: partner_id.to_string(),
        });
    }
    Ok(())
}

pub(super) async fn admin_tokens<C: GenericClient>(
    c: &C,
) -> Result<Vec<(String, String)>, StoreError> {
    rows(
        c,
        "SELECT id, admin_token_hash FROM partners
         WHERE admin_token_hash IS NOT NULL ORDER BY id",
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
    .collect()
}

/// The partner's subscribers matching `q`, in id order.
pub(super) async fn partner_subscribers<C: GenericClient>(
    c: &C,
    q: &SubscriberQuery,
) -> Result<Vec<SubscriberRecord>, StoreError> {
    let mut statuses: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let max = limit(q.limit);
    let mut clauses = vec![
        "provisioning_id IN (SELECT provisioning_id FROM templates WHERE partner_id = $1)"
            .to_string(),
    ];
    let key = q.enterprise_key.as_ref().map(|k| k.as_str());
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![&q.partner_id];
    if let Some(pid) = &q.provisioning_id {
        values.push(pid);
        clauses.push(format!("provisioning_id = ${}", values.len()));
    }
    if let Some(key) = &key {
        values.push(key);
        clauses.push(format!("enterprise_key = ${}", values.len()));
    }
    if statuses.is_empty() {
        clauses.push("status <> 'removed'".into());
    } else {
        values.push(&statuses);
        clauses.push(format!("status = ANY(${})", values.len()));
    }
    if q.exclude_provisioned {
        clauses.push("status <> 'provisioned'".into());
    }
    if let Some(after) = &q.after {
        values.push(after);
        clauses.push(format!("id > ${}", values.len()));
    }
    values.push(&max);
    let tail = format!(
        "WHERE {} ORDER BY id LIMIT ${}",
        clauses.join(" AND "),
        values.len()
    );
    subscribers::query_subscribers(c, &tail, &values).await
}

/// One subscriber of one of the partner's templates; `None` for another's.
pub(super) async fn partner_subscriber<C: GenericClient>(
    c: &C,
    partner_id: &str,
    subscriber_id: &str,
) -> Result<Option<SubscriberRecord>, StoreError> {
    subscribers::query_subscribers(
        c,
        "WHERE id = $1
           AND provisioning_id IN (SELECT provisioning_id FROM templates WHERE partner_id = $2)",
        &[&subscriber_id, &partner_id],
    )
    .await
    .map(|found| found.into_iter().next())
}

/// The sequence every tenancy write bumps (`last_value`: no lock, no row).
pub(super) async fn revision<C: GenericClient>(c: &C) -> Result<i64, StoreError> {
    match row(c, "SELECT last_value FROM tenancy_revision", &[]).await? {
        Some(r) => get(&r, 0),
        None => Ok(0),
    }
}

/// The recorded link-secret fingerprint (`fingerprint` when none was).
pub(super) async fn link_secret_fingerprint<C: GenericClient>(
    c: &C,
    fingerprint: &str,
) -> Result<String, StoreError> {
    exec(
        c,
        "INSERT INTO bwgate_settings (key, value) VALUES ('link_secret_fingerprint', $1)
         ON CONFLICT (key) DO NOTHING",
        &[&fingerprint],
    )
    .await?;
    match row(
        c,
        "SELECT value FROM bwgate_settings WHERE key = 'link_secret_fingerprint'",
        &[],
    )
    .await?
    {
        Some(r) => get(&r, 0),
        None => Ok(fingerprint.to_string()),
    }
}
