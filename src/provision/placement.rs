//! Which organization an enterprise's first onboarded user goes into,
//! decided on an email the gateway may rely on (trusted from BroadWorks,
//! or verified by the user): an existing organization with a user holding
//! that email (attach), refused with 9007 (linked to another enterprise)
//! or 2017 (its admins must approve; the approval request goes out even
//! though the step is refused), else a new organization. Shared by
//! `accept` (trusted emails) and `activation` (the first verified email).

use crate::commands::Command;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{OrganizationRef, Rejection};
use crate::domain::organization::{self, AttachDecision, ExistingOrganization, PartnerRole};
use crate::domain::{CustomerTemplate, ErrorCode};
use crate::orgs::{ApprovalLinks, ApprovalRequest};
use crate::store::tx::{OrgOrigin, Tx};
use crate::store::StoreError;

use super::emit::Emitter;

/// An existing organization the enterprise attaches to.
pub(crate) struct Attach {
    pub(crate) org: ExistingOrganization,
    pub(crate) partner_role: PartnerRole,
}

/// A refusal of the placement, with the approval request to queue even
/// though the step that asked is undone.
pub(crate) struct Refused {
    pub(crate) rejection: Rejection,
    pub(crate) notify: Option<EmailMessage>,
}

impl From<Rejection> for Refused {
    fn from(rejection: Rejection) -> Self {
        Refused {
            rejection,
            notify: None,
        }
    }
}

/// The existing organization a user with `email` would attach the
/// enterprise to: `Ok(None)` when no existing organization lists the
/// email (or the template does not attach to existing ones).
pub(crate) fn attach_candidate(
    tx: &dyn Tx,
    template: &CustomerTemplate,
    email: &str,
    approvals: Option<&ApprovalLinks>,
    now: i64,
) -> Result<Result<Option<Attach>, Refused>, StoreError> {
    let settings = &template.settings;
    if settings.wholesale || !settings.provision_existing_orgs {
        return Ok(Ok(None));
    }
    let candidates = tx.orgs_with_user_email(email)?;
    let Some((org_id, linked)) = candidates.into_iter().next() else {
        return Ok(Ok(None));
    };
    if linked {
        return Ok(Err(Rejection::new(
            ErrorCode::EnterpriseLinkedElsewhere,
            format!("the existing organization of {email} is already linked to another enterprise"),
        )
        .into()));
    }
    let org = tx
        .existing_org(&org_id)?
        .ok_or_else(|| StoreError::Corrupt(format!("existing org '{org_id}' vanished")))?;
    let granted = tx.partner_role(&org.id, &template.partner_id)?;
    let notify = match organization::decide_attach(&org, granted) {
        AttachDecision::Attach { partner_role } => {
            return Ok(Ok(Some(Attach { org, partner_role })))
        }
        AttachDecision::NeedsApproval { notify, .. } => notify,
    };
    let mut message = None;
    if let Some(links) = approvals {
        // At most one notification per (org, partner) per window, counted
        // from the last one queued.
        let prefix = ApprovalLinks::key_prefix(&org.id, &template.partner_id);
        let last = tx.last_email_with_key_prefix(EmailKind::OrgAttachApproval, &prefix)?;
        message = links
            .may_notify(last, now)
            .then(|| {
                links.message(
                    &ApprovalRequest {
                        org_id: &org.id,
                        org_name: &org.name,
                        partner_id: &template.partner_id,
                        partner_admin_email: settings.partner_admin_email.as_deref(),
                        partner_admin_name: settings.partner_admin_name.as_deref(),
                        to: &notify,
                    },
                    now,
                )
            })
            .flatten();
    }
    let admin = settings
        .partner_admin_email
        .as_deref()
        .unwrap_or("the partner administrator");
    Ok(Err(Refused {
        rejection: Rejection::new(
            ErrorCode::ExistingOrgNeedsApproval,
            format!(
                "unable to provision subscriber in existing Webex organization '{}': \
                 its administrators must approve {admin} as external full admin \
                 (approval requested)",
                org.name
            ),
        ),
        notify: message,
    }))
}

/// Links the enterprise to the existing organization (in place of its
/// pending organization, `replacing`, when it has one), grants the
/// partner its role and emits `AttachOrganization`.
pub(crate) fn attach(
    tx: &dyn Tx,
    template: &CustomerTemplate,
    key: &EnterpriseKey,
    a: &Attach,
    replacing: Option<&str>,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<OrganizationRef, StoreError> {
    let org = OrganizationRef {
        id: a.org.id.clone(),
        enterprise_key: key.clone(),
        name: a.org.name.clone(),
    };
    match replacing {
        Some(pending) => tx.replace_pending_organization(
            pending,
            &org,
            &template.partner_id,
            &template.provisioning_id,
            now,
        )?,
        None => tx.insert_organization(
            &org,
            &template.partner_id,
            &template.provisioning_id,
            OrgOrigin::Attached,
            now,
        )?,
    }
    tx.grant_role(&org.id, &template.partner_id, a.partner_role, "attach", now)?;
    super::events::organization_attached(tx, template, &org, now)?;
    out.emit(
        key,
        Command::AttachOrganization {
            org_id: org.id.clone(),
            enterprise_key: key.clone(),
            partner_id: template.partner_id.clone(),
            partner_role: a.partner_role,
            keep_name: true,
            keep_auth_settings: true,
            keep_email_suppression: true,
            first_user_admin: false,
            restricted_by_partner: false,
        },
    )?;
    Ok(org)
}

/// Announces a created organization to the license core.
pub(crate) fn announce(
    template: &CustomerTemplate,
    org: &OrganizationRef,
    out: &mut Emitter<'_>,
) -> Result<(), StoreError> {
    super::events::organization_attached(out.tx(), template, org, out.now())?;
    out.emit(
        &org.enterprise_key,
        Command::EnsureOrganization {
            org_id: org.id.clone(),
            enterprise_key: org.enterprise_key.clone(),
            partner_id: template.partner_id.clone(),
            provisioning_id: template.provisioning_id.clone(),
            name: org.name.clone(),
        },
    )
}

/// Where the enterprise's user who just proved `email` goes, when the
/// enterprise's organization is still pending (or missing): attached to
/// an existing organization listing the email, else the pending one,
/// announced now (or a new one). Returns the organization and whether
/// this user is the first of an organization created here (who becomes
/// its admin and has another account moved at once).
pub(crate) fn settle_first(
    tx: &dyn Tx,
    template: &CustomerTemplate,
    key: &EnterpriseKey,
    email: &str,
    approvals: Option<&ApprovalLinks>,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<Result<(OrganizationRef, bool), Refused>, StoreError> {
    let current = tx.organization_by_key(&template.partner_id, key)?;
    let pending = match current {
        Some((org, OrgOrigin::Created | OrgOrigin::Attached)) => return Ok(Ok((org, false))),
        Some((org, OrgOrigin::Pending)) => Some(org),
        None => None,
    };
    match attach_candidate(tx, template, email, approvals, now)? {
        Err(refused) => return Ok(Err(refused)),
        Ok(Some(a)) => {
            let org = attach(
                tx,
                template,
                key,
                &a,
                pending.as_ref().map(|p| p.id.as_str()),
                out,
                now,
            )?;
            return Ok(Ok((org, false)));
        }
        Ok(None) => {}
    }
    let org = match pending {
        Some(org) => {
            tx.settle_pending_organization(&org.id)?;
            org
        }
        None => {
            if !template.settings.create_new_orgs {
                return Ok(Err(no_new_orgs().into()));
            }
            // No BroadWorks name at hand here: the key.
            let name = key.as_str().to_string();
            return Ok(Ok((create(tx, template, key, name, true, out, now)?, true)));
        }
    };
    announce(template, &org, out)?;
    Ok(Ok((org, true)))
}

/// A new organization for the enterprise: announced to the license core
/// now (`announce`), or pending until its first user's address is known
/// good (`OrgOrigin::Pending`).
pub(crate) fn create(
    tx: &dyn Tx,
    template: &CustomerTemplate,
    key: &EnterpriseKey,
    name: String,
    announce_now: bool,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<OrganizationRef, StoreError> {
    let org = OrganizationRef {
        id: super::new_id(),
        enterprise_key: key.clone(),
        name,
    };
    let origin = if announce_now {
        OrgOrigin::Created
    } else {
        OrgOrigin::Pending
    };
    tx.insert_organization(
        &org,
        &template.partner_id,
        &template.provisioning_id,
        origin,
        now,
    )?;
    if announce_now {
        announce(template, &org, out)?;
    }
    Ok(org)
}

pub(crate) fn no_new_orgs() -> Rejection {
    Rejection::new(
        ErrorCode::NewOrgNotAllowed,
        "the template does not create new organizations and none is linked to this enterprise",
    )
}
