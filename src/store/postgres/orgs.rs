//! Existing organizations (org attach), partner roles, approvals, and the
//! organization report.

use deadpool_postgres::GenericClient;

use super::sql::{exec, get, row, rows};
use super::{email, outbox};
use crate::domain::email::EmailKind;
use crate::domain::organization::{ExistingOrganization, OrgUser, PartnerRole};
use crate::store::rows::{from_json, parse_role, role_as_str, to_json};
use crate::store::{ExistingOrgReport, OrgCommand, OrgLink, PartnerRoleEntry, StoreError};

pub(super) async fn upsert<C: GenericClient>(
    c: &C,
    orgs: &[ExistingOrganization],
    now: i64,
) -> Result<(), StoreError> {
    for org in orgs {
        let user_count = i64::from(org.user_count);
        let branding = org
            .branding
            .as_ref()
            .map(|b| to_json(b, "branding"))
            .transpose()?;
        exec(
            c,
            "INSERT INTO existing_orgs (id, name, user_count, verified_domains_json,
                 claimed_domains_json, licenses_json, auth_settings_json, email_suppression,
                 branding_json, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
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
            &[
                &org.id,
                &org.name,
                &user_count,
                &to_json(&org.verified_domains, "verified domains")?,
                &to_json(&org.claimed_domains, "claimed domains")?,
                &to_json(&org.licenses, "licenses")?,
                &to_json(&org.auth_settings, "auth settings")?,
                &org.email_suppression,
                &branding,
                &now,
            ],
        )
        .await?;
        exec(
            c,
            "DELETE FROM existing_org_users WHERE org_id = $1",
            &[&org.id],
        )
        .await?;
        for (i, u) in org.users.iter().enumerate() {
            let position = i64::try_from(i).unwrap_or(i64::MAX);
            exec(
                c,
                "INSERT INTO existing_org_users (org_id, position, email, is_admin)
                 VALUES ($1, $2, $3, $4)",
                &[&org.id, &position, &u.email, &u.is_admin],
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn existing<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<ExistingOrganization>, StoreError> {
    let Some(r) = row(
        c,
        "SELECT id, name, user_count, verified_domains_json, claimed_domains_json,
                licenses_json, auth_settings_json, email_suppression, branding_json
         FROM existing_orgs WHERE id = $1",
        &[&id],
    )
    .await?
    else {
        return Ok(None);
    };
    let id: String = get(&r, 0)?;
    let user_count: i64 = get(&r, 2)?;
    let branding: Option<String> = get(&r, 8)?;
    let users = rows(
        c,
        "SELECT email, is_admin FROM existing_org_users WHERE org_id = $1 ORDER BY position",
        &[&id],
    )
    .await?
    .iter()
    .map(|u| {
        Ok(OrgUser {
            email: get(u, 0)?,
            is_admin: get(u, 1)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(ExistingOrganization {
        verified_domains: from_json(&id, "verified_domains_json", &get::<String>(&r, 3)?)?,
        claimed_domains: from_json(&id, "claimed_domains_json", &get::<String>(&r, 4)?)?,
        licenses: from_json(&id, "licenses_json", &get::<String>(&r, 5)?)?,
        auth_settings: from_json(&id, "auth_settings_json", &get::<String>(&r, 6)?)?,
        branding: branding
            .map(|b| from_json(&id, "branding_json", &b))
            .transpose()?,
        name: get(&r, 1)?,
        user_count: u32::try_from(user_count)
            .map_err(|_| StoreError::Corrupt(format!("existing org '{id}': user_count")))?,
        users,
        email_suppression: get(&r, 7)?,
        id,
    }))
}

/// The organization's email-suppression flag (`false` when it is not an
/// existing organization).
pub(super) async fn email_suppressed<C: GenericClient>(
    c: &C,
    org_id: &str,
) -> Result<bool, StoreError> {
    match row(
        c,
        "SELECT email_suppression FROM existing_orgs WHERE id = $1",
        &[&org_id],
    )
    .await?
    {
        Some(r) => get(&r, 0),
        None => Ok(false),
    }
}

/// The user holding `email` leaves the organization (its account moved).
pub(super) async fn remove_user<C: GenericClient>(
    c: &C,
    org_id: &str,
    email: &str,
) -> Result<bool, StoreError> {
    let removed = exec(
        c,
        "DELETE FROM existing_org_users WHERE org_id = $1 AND lower(email) = lower($2)",
        &[&org_id, &email],
    )
    .await?;
    if removed > 0 {
        let n = i64::try_from(removed).unwrap_or(i64::MAX);
        exec(
            c,
            "UPDATE existing_orgs SET user_count = greatest(user_count - $2, 0) WHERE id = $1",
            &[&org_id, &n],
        )
        .await?;
    }
    Ok(removed > 0)
}

/// Existing organizations with a user holding `email` (without case), each
/// with whether an enterprise is linked to it already; unlinked first.
pub(super) async fn with_user_email<C: GenericClient>(
    c: &C,
    email: &str,
) -> Result<Vec<(String, bool)>, StoreError> {
    rows(
        c,
        "SELECT DISTINCT u.org_id,
                EXISTS (SELECT 1 FROM organizations o WHERE o.id = u.org_id) AS linked
         FROM existing_org_users u
         WHERE lower(u.email) = lower($1)
         ORDER BY linked, u.org_id",
        &[&email],
    )
    .await?
    .iter()
    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
    .collect()
}

pub(super) async fn role<C: GenericClient>(
    c: &C,
    org_id: &str,
    partner_id: &str,
) -> Result<PartnerRole, StoreError> {
    match row(
        c,
        "SELECT role FROM org_partner_roles WHERE org_id = $1 AND partner_id = $2",
        &[&org_id, &partner_id],
    )
    .await?
    {
        Some(r) => parse_role(&get::<String>(&r, 0)?),
        None => Ok(PartnerRole::None),
    }
}

/// Grants `granted` unless the partner holds it or a higher role already.
pub(super) async fn grant_role<C: GenericClient>(
    c: &C,
    org_id: &str,
    partner_id: &str,
    granted: PartnerRole,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    let current = role(c, org_id, partner_id).await?;
    if current >= granted && current != PartnerRole::None {
        return Ok(());
    }
    exec(
        c,
        "INSERT INTO org_partner_roles (org_id, partner_id, role, source, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id, partner_id) DO UPDATE SET
             role = excluded.role, source = excluded.source, updated_at = excluded.updated_at",
        &[&org_id, &partner_id, &role_as_str(granted), &source, &now],
    )
    .await?;
    Ok(())
}

/// Sets the partner's role to `none` (a detach: the only way down).
pub(super) async fn revoke_role<C: GenericClient>(
    c: &C,
    org_id: &str,
    partner_id: &str,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO org_partner_roles (org_id, partner_id, role, source, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id, partner_id) DO UPDATE SET
             role = excluded.role, source = excluded.source, updated_at = excluded.updated_at",
        &[
            &org_id,
            &partner_id,
            &role_as_str(PartnerRole::None),
            &source,
            &now,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn approval_used<C: GenericClient>(
    c: &C,
    signature: &str,
) -> Result<bool, StoreError> {
    Ok(row(
        c,
        "SELECT 1 FROM org_approvals WHERE signature = $1",
        &[&signature],
    )
    .await?
    .is_some())
}

pub(super) async fn record_approval<C: GenericClient>(
    c: &C,
    signature: &str,
    org_id: &str,
    partner_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        c,
        "INSERT INTO org_approvals (signature, org_id, partner_id, approved_at)
         VALUES ($1, $2, $3, $4)",
        &[&signature, &org_id, &partner_id, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn report<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<ExistingOrgReport>, StoreError> {
    let Some(organization) = existing(c, id).await? else {
        return Ok(None);
    };
    let prefix = crate::domain::organization::approval_email_key_prefix(id);
    let mut approval_emails = Vec::new();
    for email_id in email::ids_with_key_prefix(c, EmailKind::OrgAttachApproval, &prefix).await? {
        if let Some(e) = email::one(c, email_id).await? {
            approval_emails.push(e);
        }
    }
    let mut commands = Vec::new();
    for (seq, kind, state, json) in outbox::of_org(c, id).await? {
        commands.push(OrgCommand {
            seq,
            kind,
            state,
            envelope: from_json(id, "outbox envelope_json", &json)?,
        });
    }
    let link = row(
        c,
        "SELECT partner_id, enterprise_key, provisioning_id, created_at
         FROM organizations WHERE id = $1 AND origin = 'attached'",
        &[&id],
    )
    .await?
    .map(|r| {
        Ok::<_, StoreError>(OrgLink {
            partner_id: get(&r, 0)?,
            enterprise_key: get(&r, 1)?,
            provisioning_id: get(&r, 2)?,
            linked_at: get(&r, 3)?,
        })
    })
    .transpose()?;
    let partner_roles = rows(
        c,
        "SELECT partner_id, role, source, updated_at FROM org_partner_roles
         WHERE org_id = $1 ORDER BY partner_id",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(PartnerRoleEntry {
            partner_id: get(r, 0)?,
            role: parse_role(&get::<String>(r, 1)?)?,
            source: get(r, 2)?,
            updated_at: get(r, 3)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(ExistingOrgReport {
        organization,
        link,
        partner_roles,
        approval_emails,
        commands,
    }))
}
