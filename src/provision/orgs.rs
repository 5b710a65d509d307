//! Existing organizations' use cases outside `accept`: an admin of the
//! organization approves the partner (from the emailed link), and the
//! operator detaches an enterprise from its attached organization.

use crate::commands::Command;
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{self, SubscriberStatus};
use crate::domain::organization::PartnerRole;
use crate::orgs::ApprovalClaim;
use crate::store::tx::{OrgOrigin, Tx};
use crate::store::StoreError;

use super::emit::Emitter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproveOutcome {
    /// The partner is now full admin of the organization.
    Approved { org_name: String },
    /// This token was used before; nothing changed.
    AlreadyUsed,
    /// The organization is gone; nothing changed.
    UnknownOrg,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetachOutcome {
    /// The enterprise has no organization.
    NoOrganization,
    /// Its organization was created here, not attached: nothing to detach.
    NotAttached {
        org_id: String,
    },
    /// The partner is not a full admin of the organization (none, or
    /// only provisioning admin): detaching needs full admin.
    NotAdmin {
        org_id: String,
    },
    Detached(DetachReport),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetachReport {
    pub org_id: String,
    /// Workspaces removed (the gateway has none yet: always 0).
    pub workspaces_removed: usize,
    /// Subscribers (provisioning, provisioned, updating, error) removed
    /// (full deletion: their names, email, language and time zone too).
    pub subscribers_removed: usize,
    /// Pending users (pending_*) removed.
    pub pending_users_removed: usize,
    /// Commands written, in order (`RemoveSubscriber` /
    /// `DiscardPendingSubscriber`…, `DetachOrganization`).
    pub commands: Vec<String>,
}

/// Grants the claim's partner `FullAdmin` on the claim's organization,
/// once per token (by its MAC).
pub fn approve(tx: &dyn Tx, claim: &ApprovalClaim, now: i64) -> Result<ApproveOutcome, StoreError> {
    if tx.approval_used(&claim.signature)? {
        return Ok(ApproveOutcome::AlreadyUsed);
    }
    let Some(org) = tx.existing_org(&claim.org_id)? else {
        return Ok(ApproveOutcome::UnknownOrg);
    };
    tx.record_approval(&claim.signature, &claim.org_id, &claim.partner_id, now)?;
    tx.grant_role(
        &claim.org_id,
        &claim.partner_id,
        PartnerRole::FullAdmin,
        "approval",
        now,
    )?;
    Ok(ApproveOutcome::Approved { org_name: org.name })
}

/// Detaches an enterprise from its attached organization, when the
/// partner is a full admin of it: removes its subscribers and pending
/// users (a full deletion, `lifecycle::full_delete`; `RemoveSubscriber`
/// for those the core knows, `DiscardPendingSubscriber` for pending
/// ones), then the link and the partner's role in the organization (it
/// becomes `none`, source `detach`: attaching again is decided afresh,
/// with the admins' approval where the organization needs one), then
/// emits `DetachOrganization`.
pub fn detach(
    tx: &dyn Tx,
    partner_id: &str,
    enterprise_key: &str,
    tracking_id: &str,
    now: i64,
) -> Result<DetachOutcome, StoreError> {
    let key = EnterpriseKey::from_stored(enterprise_key);
    let Some((org, origin)) = tx.organization_by_key(partner_id, &key)? else {
        return Ok(DetachOutcome::NoOrganization);
    };
    let org_id = org.id;
    if origin != OrgOrigin::Attached {
        return Ok(DetachOutcome::NotAttached { org_id });
    }
    if tx.partner_role(&org_id, partner_id)? < PartnerRole::FullAdmin {
        return Ok(DetachOutcome::NotAdmin { org_id });
    }
    let mut report = DetachReport {
        org_id: org_id.clone(),
        workspaces_removed: 0,
        subscribers_removed: 0,
        pending_users_removed: 0,
        commands: Vec::new(),
    };
    let mut out = Emitter::new(tx, tracking_id, "detach", now);
    // Its workspaces go first (their licenses back to the subscriptions).
    for w in tx.live_workspaces_of_org(&org_id)? {
        super::workspaces::removed(&mut out, w)?;
        report.workspaces_removed += 1;
    }
    for current in tx.subscribers_of_org(&org_id)? {
        if current.status == SubscriberStatus::Removed {
            continue;
        }
        let next = lifecycle::full_delete(&current, now);
        tx.update_subscriber(&next, now)?;
        super::events::subscriber_updated(tx, &current, &next, now)?;
        let (subscriber_id, org_id, subscriber_version) =
            (next.id.clone(), org_id.clone(), next.version);
        if current.status.is_pending_user() {
            // Never sent to the license core: nothing to revoke there, but
            // the removal is still a normalized command.
            report.pending_users_removed += 1;
            out.emit(
                &key,
                Command::DiscardPendingSubscriber {
                    subscriber_id,
                    org_id,
                    subscriber_version,
                },
            )?;
        } else {
            report.subscribers_removed += 1;
            out.emit(
                &key,
                Command::RemoveSubscriber {
                    subscriber_id,
                    org_id,
                    subscriber_version,
                },
            )?;
        }
    }
    // The organization stops being the enterprise's: its subscriber rows
    // (all removed now) let go of it, then the link goes.
    tx.unlink_organization(&org_id)?;
    // The partner's rights in the organization end with the link (an
    // approval given for this attach does not carry over to the next).
    tx.revoke_role(&org_id, partner_id, "detach", now)?;
    out.emit(
        &key,
        Command::DetachOrganization {
            org_id: org_id.clone(),
            enterprise_key: key.clone(),
            partner_id: partner_id.to_string(),
        },
    )?;
    report.commands = out.kinds.iter().map(|k| k.to_string()).collect();
    Ok(DetachOutcome::Detached(report))
}
