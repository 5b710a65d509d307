//! Licenses an administrator gives or takes by hand (source `admin`, the
//! admin named as why): on top of the package and templates, taken from
//! the organization's subscriptions like any other, each user all or
//! nothing. Webex Calling is the package's and needs a number: an admin
//! cannot give it by hand, and taking one an admin could not give but a
//! template did needs the
//! acknowledgement (voicemail, PIN, numbers and settings go with it). A
//! package's licenses are BroadWorks': an admin cannot take them.

use std::collections::BTreeSet;

use crate::domain::license::GrantSource;
use crate::domain::ErrorCode;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::admin::{check_name, refused, settle_holder, LicenseAdmin, LicenseAdminError};
use super::apply::{Orgs, Wanted};
use super::calling::is_calling;
use super::LicensePolicy;

/// Most users one request may name.
const MAX_USERS: usize = 5_000;

/// Give or take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAction {
    Grant,
    Revoke,
}

/// What an admin asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGrant {
    pub action: GrantAction,
    pub users: Vec<String>,
    pub licenses: BTreeSet<String>,
    /// Who asks (kept as the grant's reason).
    pub by: String,
    pub calling_loss_acknowledged: bool,
}

/// What it did: users changed, and users left as they were with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantReport {
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub short: Vec<(String, String)>,
}

impl LicenseAdmin {
    pub async fn admin_grant(
        &self,
        org_id: &str,
        request: AdminGrant,
        now: i64,
    ) -> Result<GrantReport, LicenseAdminError> {
        if request.users.is_empty() || request.licenses.is_empty() {
            return Err(refused(
                ErrorCode::MissingParameter,
                "name at least one user and one license",
            ));
        }
        if request.users.len() > MAX_USERS {
            return Err(refused(
                ErrorCode::TooManyOperations,
                format!("at most {MAX_USERS} users per request"),
            ));
        }
        for license in &request.licenses {
            check_name("license", license)?;
        }
        check_name("by", &request.by)?;
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        let policy = self.policy();
        Ok(self
            .transact(move |tx| grant_in(tx, &org, &request, policy, now))
            .await?)
    }
}

/// The unit of work of [`LicenseAdmin::admin_grant`].
fn grant_in(
    tx: &dyn Tx,
    org_id: &str,
    request: &AdminGrant,
    policy: LicensePolicy,
    now: i64,
) -> Result<GrantReport, StoreError> {
    let holders = tx.org_holders(org_id)?;
    let mut orgs = Orgs::new(now);
    let org = orgs.of(tx, org_id)?;
    let mut report = GrantReport::default();
    let mut seen = BTreeSet::new();
    // Each user once (the holders were read before any change).
    for user in request.users.iter().filter(|u| seen.insert(u.as_str())) {
        let Some(holder) = holders.iter().find(|h| &h.user_id == user) else {
            report.short.push((
                user.clone(),
                "holds no license in this organization (not provisioned here)".into(),
            ));
            continue;
        };
        if crate::domain::workspace::is_workspace(&holder.subscriber_id) {
            report.short.push((
                user.clone(),
                "a workspace holds its workspace license only".into(),
            ));
            continue;
        }
        let mut wanted: Wanted = holder
            .holdings
            .iter()
            .map(|h| (h.license.clone(), (h.source, h.source_ref.clone())))
            .collect();
        let refusal = match request.action {
            GrantAction::Grant => {
                for license in &request.licenses {
                    wanted
                        .entry(license.clone())
                        .or_insert((GrantSource::Admin, request.by.clone()));
                }
                request.licenses.iter().find(|l| is_calling(l)).map(|l| {
                    format!(
                        "{l}: Webex Calling comes with the package (and a number of the \
                         organization's locations), not by hand"
                    )
                })
            }
            GrantAction::Revoke => {
                let package = holder.holdings.iter().find(|h| {
                    h.source == GrantSource::Package && request.licenses.contains(&h.license)
                });
                let loses_calling = holder
                    .holdings
                    .iter()
                    .any(|h| is_calling(&h.license) && request.licenses.contains(&h.license));
                wanted.retain(|license, _| !request.licenses.contains(license));
                match package {
                    Some(h) => Some(format!(
                        "{} comes with the package '{}': change the package in BroadWorks",
                        h.license, h.source_ref
                    )),
                    None if loses_calling && !request.calling_loss_acknowledged => Some(
                        "would lose Webex Calling (voicemail, PIN, numbers and settings go \
                         with it): acknowledge the loss"
                            .into(),
                    ),
                    None => None,
                }
            }
        };
        if let Some(why) = refusal {
            report.short.push((user.clone(), why));
            continue;
        }
        let key = format!("admin:{now}:{}", holder.subscriber_id);
        match settle_holder(
            tx,
            &mut org.pool,
            policy,
            org_id,
            holder,
            &wanted,
            &key,
            now,
        )? {
            Ok(true) => report.changed.push(user.clone()),
            Ok(false) => report.unchanged.push(user.clone()),
            Err(shortage) => report.short.push((user.clone(), shortage)),
        }
    }
    Ok(report)
}
