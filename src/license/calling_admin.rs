//! The operator's Webex Calling inventory: an organization's locations,
//! the numbers pre-provisioned in them (free, or assigned to a service),
//! and who has Calling with which number, or why not.

use std::collections::BTreeMap;

use crate::domain::calling::{
    country_code, CallingLocation, CallingNumber, CallingWithheld, NumberHolder,
};
use crate::domain::device::DeviceActivation;
use crate::domain::phone::E164;
use crate::domain::ErrorCode;
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::admin::{check_name, refused, LicenseAdmin, LicenseAdminError};
use super::calling::is_calling;

/// Most numbers one request may add.
pub const MAX_NUMBERS_PER_REQUEST: usize = 10_000;
/// Longest location or service name.
const MAX_LABEL: usize = 256;

/// A number to add to a location, optionally assigned to a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberEntry {
    pub number: String,
    pub service: Option<String>,
}

/// What adding numbers did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumbersAdded {
    pub added: usize,
    /// Already in the location as asked.
    pub unchanged: usize,
}

/// A location and how many of its numbers are free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationUse {
    pub location: CallingLocation,
    pub numbers: usize,
    pub free: usize,
}

/// A user holding a Webex Calling license.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingUser {
    pub subscriber_id: String,
    pub user_id: String,
    pub license: String,
    /// `None`: the organization keeps no inventory here.
    pub number: Option<E164>,
    pub location_id: Option<String>,
}

/// Who has Webex Calling in an organization, and who was provisioned
/// without it (and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallingReport {
    pub entitled: Vec<CallingUser>,
    pub withheld: Vec<CallingWithheld>,
}

impl LicenseAdmin {
    /// Adds or renames a location (`true`: added).
    pub async fn put_location(
        &self,
        org_id: &str,
        location: CallingLocation,
        now: i64,
    ) -> Result<bool, LicenseAdminError> {
        check_name("location id", &location.id)?;
        check_label("location name", &location.name)?;
        let country = country_code(&location.country)
            .map_err(|why| refused(ErrorCode::InvalidParameterValue, why))?;
        let location = CallingLocation {
            country,
            name: location.name.trim().to_string(),
            ..location
        };
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        Ok(self
            .transact(move |tx| {
                let created = tx.calling_location(&org, &location.id)?.is_none();
                tx.put_calling_location(&org, &location, now)?;
                Ok(created)
            })
            .await?)
    }

    /// The organization's locations, with their numbers counted.
    pub async fn locations(&self, org_id: &str) -> Result<Vec<LocationUse>, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        Ok(self
            .transact(move |tx| {
                let numbers = tx.calling_numbers(&org)?;
                Ok(tx
                    .calling_locations(&org)?
                    .into_iter()
                    .map(|location| {
                        let here = numbers.iter().filter(|n| n.location_id == location.id);
                        LocationUse {
                            numbers: here.clone().count(),
                            free: here.filter(|n| n.holder.is_none()).count(),
                            location,
                        }
                    })
                    .collect())
            })
            .await?)
    }

    /// Adds numbers to a location, all or nothing: each must be E.164
    /// (9002), belong to no other organization or location, and a number
    /// a user holds cannot be given to a service (9008). A number already
    /// there as asked is left as it is.
    pub async fn add_numbers(
        &self,
        org_id: &str,
        location_id: &str,
        entries: Vec<NumberEntry>,
        now: i64,
    ) -> Result<NumbersAdded, LicenseAdminError> {
        let wanted = parse_entries(entries)?;
        self.known_org(org_id).await?;
        let (org, location) = (org_id.to_string(), location_id.to_string());
        let outcome = self
            .transact(move |tx| add_numbers_in(tx, &org, &location, &wanted, now))
            .await?;
        outcome
    }

    /// The organization's numbers and who holds them.
    pub async fn numbers(&self, org_id: &str) -> Result<Vec<CallingNumber>, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        Ok(self.transact(move |tx| tx.calling_numbers(&org)).await?)
    }

    /// The device activations the core allowed in the organization (the
    /// codes themselves were emailed, never stored).
    pub async fn device_activations(
        &self,
        org_id: &str,
    ) -> Result<Vec<DeviceActivation>, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        Ok(self
            .transact(move |tx| tx.org_device_activations(&org))
            .await?)
    }

    /// Who has Webex Calling, with which number, and who was provisioned
    /// without it.
    pub async fn calling_report(&self, org_id: &str) -> Result<CallingReport, LicenseAdminError> {
        self.known_org(org_id).await?;
        let org = org_id.to_string();
        Ok(self.transact(move |tx| report_in(tx, &org)).await?)
    }
}

fn check_label(what: &str, label: &str) -> Result<(), LicenseAdminError> {
    let l = label.trim();
    if l.is_empty() || l.chars().count() > MAX_LABEL || l.chars().any(char::is_control) {
        return Err(refused(
            ErrorCode::InvalidParameterValue,
            format!("{what} '{label}': 1 to {MAX_LABEL} characters, no control characters"),
        ));
    }
    Ok(())
}

/// The entries checked and canonical: number → service.
fn parse_entries(
    entries: Vec<NumberEntry>,
) -> Result<BTreeMap<E164, Option<String>>, LicenseAdminError> {
    if entries.is_empty() {
        return Err(refused(ErrorCode::MissingParameter, "no number to add"));
    }
    if entries.len() > MAX_NUMBERS_PER_REQUEST {
        return Err(refused(
            ErrorCode::TooManyOperations,
            format!(
                "{} numbers in one request; at most {MAX_NUMBERS_PER_REQUEST}",
                entries.len()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for e in entries {
        let number = E164::parse(&e.number).map_err(|err| {
            refused(
                ErrorCode::InvalidPhoneNumber,
                format!("'{}' {}", e.number, err.message),
            )
        })?;
        let service = match e.service.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                check_label("service", s)?;
                Some(s.to_string())
            }
        };
        if out.insert(number.clone(), service).is_some() {
            return Err(refused(
                ErrorCode::InvalidParameterValue,
                format!("{number} is listed twice"),
            ));
        }
    }
    Ok(out)
}

/// The unit of work of [`LicenseAdmin::add_numbers`].
fn add_numbers_in(
    tx: &dyn Tx,
    org_id: &str,
    location_id: &str,
    wanted: &BTreeMap<E164, Option<String>>,
    now: i64,
) -> Result<Result<NumbersAdded, LicenseAdminError>, StoreError> {
    if tx.calling_location(org_id, location_id)?.is_none() {
        return Ok(Err(refused(
            ErrorCode::NotFound,
            format!("no location '{location_id}' in organization '{org_id}'"),
        )));
    }
    let mut report = NumbersAdded::default();
    let mut writes = Vec::new();
    for (number, service) in wanted {
        let holder = service.clone().map(|name| NumberHolder::Service { name });
        match tx.calling_number(number.as_str())? {
            None => writes.push(CallingNumber {
                number: number.clone(),
                location_id: location_id.to_string(),
                assigned_at: holder.as_ref().map(|_| now),
                holder,
            }),
            Some((owner, _)) if owner != org_id => {
                return Ok(Err(refused(
                    ErrorCode::NumberAlreadyAssigned,
                    format!(
                        "{number} is in another organization's inventory (the operator's to move)"
                    ),
                )))
            }
            Some((_, found)) if found.location_id != location_id => {
                return Ok(Err(refused(
                    ErrorCode::NumberAlreadyAssigned,
                    format!("{number} is in location '{}'", found.location_id),
                )))
            }
            // Listed without a service: there already, whoever holds it.
            Some(_) if holder.is_none() => report.unchanged += 1,
            Some((_, found)) if found.holder == holder => report.unchanged += 1,
            Some((_, found)) => match &found.holder {
                Some(NumberHolder::User { user_id, .. }) => {
                    return Ok(Err(refused(
                        ErrorCode::NumberAlreadyAssigned,
                        format!("{number} is assigned to the user {user_id}"),
                    )))
                }
                // Free, or another service's: given to this service.
                None | Some(NumberHolder::Service { .. }) => writes.push(CallingNumber {
                    assigned_at: Some(now),
                    holder,
                    ..found
                }),
            },
        }
    }
    for n in &writes {
        tx.put_calling_number(org_id, n, now)?;
    }
    report.added = writes.len();
    Ok(Ok(report))
}

/// The unit of work of [`LicenseAdmin::calling_report`].
fn report_in(tx: &dyn Tx, org_id: &str) -> Result<CallingReport, StoreError> {
    let numbers: BTreeMap<String, CallingNumber> = tx
        .calling_numbers(org_id)?
        .into_iter()
        .filter_map(|n| match &n.holder {
            Some(NumberHolder::User { subscriber_id, .. }) => Some((subscriber_id.clone(), n)),
            _ => None,
        })
        .collect();
    let mut entitled = Vec::new();
    // One row per subscriber.
    for holder in tx.org_holders(org_id)? {
        let Some(license) = holder.holdings.iter().find(|h| is_calling(&h.license)) else {
            continue;
        };
        let number = numbers.get(&holder.subscriber_id);
        entitled.push(CallingUser {
            license: license.license.clone(),
            number: number.map(|n| n.number.clone()),
            location_id: number.map(|n| n.location_id.clone()),
            subscriber_id: holder.subscriber_id,
            user_id: holder.user_id,
        });
    }
    entitled.sort_by(|a, b| (&a.user_id, &a.subscriber_id).cmp(&(&b.user_id, &b.subscriber_id)));
    Ok(CallingReport {
        entitled,
        withheld: tx.org_calling_withheld(org_id)?,
    })
}
