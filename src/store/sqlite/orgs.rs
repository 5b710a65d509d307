//! Existing organizations (schema `0004_orgs.sql`): loading, the lookups
//! the attach needs inside the flow-through transaction, partner roles and
//! the operator's report (approve and detach are `provision::orgs`). The link of an organization to an enterprise is
//! its row in `organizations` (origin 'attached', same id).

use rusqlite::{params, Connection, OptionalExtension};

use super::email;
use crate::domain::email::EmailKind;
use crate::domain::organization::{ExistingOrganization, OrgUser, PartnerRole};
use crate::store::rows::{from_json, parse_role, role_as_str, to_json};
use crate::store::{ExistingOrgReport, OrgCommand, OrgLink, PartnerRoleEntry, StoreError};

/// Inserts or replaces each organization and its user list (links and
/// roles are kept). Runs inside the caller's transaction.
pub(super) fn upsert_existing_orgs(
    conn: &Connection,
    orgs: &[ExistingOrganization],
    now: i64,
) -> Result<(), StoreError> {
    for org in orgs {
        conn.prepare_cached(
            "INSERT INTO existing_orgs (id, name, user_count, verified_domains_json,
                 claimed_domains_json, licenses_json, auth_settings_json, email_suppression,
                 branding_json, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (id) DO UPDATE SET
                 name = excluded.name,
                 user_count = excluded.user_count,
                 verified_domains_json = excluded.verified_domains_json,
                 claimed_domains_json = excluded.claimed_domains_json,
                 licenses_json = excluded.licenses_json,
                 auth_settings_json = excluded.auth_settings_json,
                 email_suppression = excluded.email_suppression,
                 branding_json = excluded.branding_json,
                 updated_at = excluded.updated_at",
        )?
        .execute(params![
            org.id,
            org.name,
            org.user_count,
            to_json(&org.verified_domains, "verified domains")?,
            to_json(&org.claimed_domains, "claimed domains")?,
            to_json(&org.licenses, "licenses")?,
            to_json(&org.auth_settings, "auth settings")?,
            org.email_suppression,
            org.branding
                .as_ref()
                .map(|b| to_json(b, "branding"))
                .transpose()?,
            now
        ])?;
        conn.prepare_cached("DELETE FROM existing_org_users WHERE org_id = ?1")?
            .execute([&org.id])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO existing_org_users (org_id, position, email, is_admin)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (i, u) in org.users.iter().enumerate() {
            insert.execute(params![org.id, i as i64, u.email, u.is_admin])?;
        }
    }
    Ok(())
}

pub(super) fn existing_org(
    conn: &Connection,
    id: &str,
) -> Result<Option<ExistingOrganization>, StoreError> {
    type Row = (
        String,
        String,
        u32,
        String,
        String,
        String,
        String,
        bool,
        Option<String>,
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT id, name, user_count, verified_domains_json, claimed_domains_json,
                    licenses_json, auth_settings_json, email_suppression, branding_json
             FROM existing_orgs WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .optional()?;
    let Some((id, name, user_count, verified, claimed, licenses, auth, suppression, branding)) =
        row
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT email, is_admin FROM existing_org_users WHERE org_id = ?1 ORDER BY position",
    )?;
    let users = stmt
        .query_map([&id], |r| {
            Ok(OrgUser {
                email: r.get(0)?,
                is_admin: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ExistingOrganization {
        verified_domains: from_json(&id, "verified_domains_json", &verified)?,
        claimed_domains: from_json(&id, "claimed_domains_json", &claimed)?,
        licenses: from_json(&id, "licenses_json", &licenses)?,
        auth_settings: from_json(&id, "auth_settings_json", &auth)?,
        branding: branding
            .map(|b| from_json(&id, "branding_json", &b))
            .transpose()?,
        id,
        name,
        user_count,
        users,
        email_suppression: suppression,
    }))
}

/// The organization's email-suppression flag (`false` when it is not an
/// existing organization).
pub(super) fn email_suppressed(conn: &Connection, org_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT email_suppression FROM existing_orgs WHERE id = ?1")?
        .query_row([org_id], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// The user holding `email` leaves the organization (its account moved).
pub(super) fn remove_user(
    conn: &Connection,
    org_id: &str,
    email: &str,
) -> Result<bool, StoreError> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM existing_org_users WHERE org_id = ?1 AND email = ?2 COLLATE NOCASE",
        )?
        .execute([org_id, email])?;
    if removed > 0 {
        conn.prepare_cached(
            "UPDATE existing_orgs SET user_count = max(user_count - ?2, 0) WHERE id = ?1",
        )?
        .execute(params![org_id, removed as i64])?;
    }
    Ok(removed > 0)
}

/// Ids of the existing organizations with a user whose email is `email`
/// (case-insensitively), unlinked ones first, then by id.
pub(super) fn orgs_with_user_email(
    conn: &Connection,
    email: &str,
) -> Result<Vec<(String, bool)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT u.org_id,
                EXISTS (SELECT 1 FROM organizations o WHERE o.id = u.org_id) AS linked
         FROM existing_org_users u
         WHERE u.email = ?1 COLLATE NOCASE
         ORDER BY linked, u.org_id",
    )?;
    let rows = stmt
        .query_map([email], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn link(conn: &Connection, org_id: &str) -> Result<Option<OrgLink>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT partner_id, enterprise_key, provisioning_id, created_at
             FROM organizations WHERE id = ?1 AND origin = 'attached'",
        )?
        .query_row([org_id], |r| {
            Ok(OrgLink {
                partner_id: r.get(0)?,
                enterprise_key: r.get(1)?,
                provisioning_id: r.get(2)?,
                linked_at: r.get(3)?,
            })
        })
        .optional()?)
}

pub(super) fn role(
    conn: &Connection,
    org_id: &str,
    partner_id: &str,
) -> Result<PartnerRole, StoreError> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM org_partner_roles WHERE org_id = ?1 AND partner_id = ?2")?
        .query_row([org_id, partner_id], |r| r.get(0))
        .optional()?;
    role.map_or(Ok(PartnerRole::None), |r| parse_role(&r))
}

/// Sets the partner's role (never lowers it).
pub(super) fn grant_role(
    conn: &Connection,
    org_id: &str,
    partner_id: &str,
    granted: PartnerRole,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    let current = role(conn, org_id, partner_id)?;
    if current >= granted && current != PartnerRole::None {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO org_partner_roles (org_id, partner_id, role, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (org_id, partner_id) DO UPDATE SET
             role = excluded.role, source = excluded.source, updated_at = excluded.updated_at",
    )?
    .execute(params![
        org_id,
        partner_id,
        role_as_str(granted),
        source,
        now
    ])?;
    Ok(())
}

/// Sets the partner's role to `none` (a detach: the only way down).
pub(super) fn revoke_role(
    conn: &Connection,
    org_id: &str,
    partner_id: &str,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO org_partner_roles (org_id, partner_id, role, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (org_id, partner_id) DO UPDATE SET
             role = excluded.role, source = excluded.source, updated_at = excluded.updated_at",
    )?
    .execute(params![
        org_id,
        partner_id,
        role_as_str(PartnerRole::None),
        source,
        now
    ])?;
    Ok(())
}

fn roles(conn: &Connection, org_id: &str) -> Result<Vec<PartnerRoleEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT partner_id, role, source, updated_at FROM org_partner_roles
         WHERE org_id = ?1 ORDER BY partner_id",
    )?;
    let rows = stmt
        .query_map([org_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(partner_id, role, source, updated_at)| {
            Ok(PartnerRoleEntry {
                partner_id,
                role: parse_role(&role)?,
                source,
                updated_at,
            })
        })
        .collect()
}

pub(super) fn report(conn: &Connection, id: &str) -> Result<Option<ExistingOrgReport>, StoreError> {
    let Some(organization) = existing_org(conn, id)? else {
        return Ok(None);
    };
    let prefix = crate::domain::organization::approval_email_key_prefix(id);
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM emails WHERE kind = ?1 AND substr(dedupe_key, 1, length(?2)) = ?2
         ORDER BY id DESC",
    )?;
    let ids = stmt
        .query_map(
            params![EmailKind::OrgAttachApproval.as_str(), prefix],
            |r| r.get::<_, i64>(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut approval_emails = Vec::new();
    for email_id in ids {
        if let Some(e) = email::email(conn, email_id)? {
            approval_emails.push(e);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, kind, state, envelope_json FROM outbox
         WHERE json_extract(envelope_json, '$.command.orgId') = ?1
         ORDER BY seq",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut commands = Vec::with_capacity(rows.len());
    for (seq, kind, state, json) in rows {
        commands.push(OrgCommand {
            seq,
            kind,
            state,
            envelope: from_json(id, "outbox envelope_json", &json)?,
        });
    }
    Ok(Some(ExistingOrgReport {
        commands,
        link: link(conn, id)?,
        partner_roles: roles(conn, id)?,
        organization,
        approval_emails,
    }))
}
