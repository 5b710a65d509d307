//! Rows as both back-ends read them, before their typed columns are
//! decoded: one decoding (and one set of `Corrupt` messages) whatever the
//! database. A back-end fills a row struct from its driver's row; the
//! decoding here turns it into domain types.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::commands::CommandEnvelope;
use crate::domain::email::{EmailIntent, EmailKind, EmailMessage, PlainMessage};
use crate::domain::event::{EventSubscription, ProvisioningEvent};
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{SubscriberError, SubscriberRecord, SubscriberStatus};
use crate::domain::organization::PartnerRole;
use crate::domain::template::TemplateSource;
use crate::domain::{CustomerTemplate, Package, TemplateSettings};
use crate::store::{EmailRecord, EmailState, OutboxEntry, OutboxState, StoreError};

pub(crate) fn encode_errors(errors: &[SubscriberError]) -> Result<String, StoreError> {
    serde_json::to_string(errors)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode subscriber errors: {e}")))
}

pub(crate) fn decode_errors(id: &str, json: &str) -> Result<Vec<SubscriberError>, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("subscriber '{id}': errors_json: {e}")))
}

/// A subscriber row before its typed columns are decoded.
pub(crate) struct SubscriberRow {
    pub id: String,
    pub provisioning_id: String,
    pub user_id: Option<String>,
    pub enterprise_key: Option<String>,
    pub org_id: Option<String>,
    pub service_provider_id: Option<String>,
    pub group_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub extension: Option<String>,
    pub mobile_phone_number: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub package: String,
    pub status: String,
    pub errors_json: String,
    pub self_activated: bool,
    pub version: i64,
    pub created_at: i64,
    pub last_status_change: i64,
}

impl SubscriberRow {
    pub(crate) fn decode(self) -> Result<SubscriberRecord, StoreError> {
        let id = self.id;
        let package = Package::parse(&self.package).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "subscriber '{id}': unknown package '{}'",
                self.package
            ))
        })?;
        let status = SubscriberStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "subscriber '{id}': unknown status '{}'",
                self.status
            ))
        })?;
        let errors = decode_errors(&id, &self.errors_json)?;
        Ok(SubscriberRecord {
            provisioning_id: self.provisioning_id,
            user_id: stored(&id, "user_id", self.user_id)?,
            enterprise_key: self.enterprise_key.map(EnterpriseKey::from_stored),
            org_id: self.org_id,
            service_provider_id: self.service_provider_id,
            group_id: self.group_id,
            first_name: self.first_name,
            last_name: self.last_name,
            email: self.email,
            phone_number: stored(&id, "phone_number", self.phone_number)?,
            extension: self.extension,
            mobile_phone_number: stored(&id, "mobile_phone_number", self.mobile_phone_number)?,
            language: self.language,
            time_zone: self.time_zone,
            package,
            status,
            errors,
            self_activated: self.self_activated,
            version: self.version,
            created_at: self.created_at,
            last_status_change: self.last_status_change,
            id,
        })
    }
}
/// Rebuilds a string newtype (`UserId`, `E164`) from its stored text through
/// its serde form, which does not re-validate: rows accepted under older
/// rules still load.
fn stored<T: DeserializeOwned>(
    id: &str,
    column: &str,
    value: Option<String>,
) -> Result<Option<T>, StoreError> {
    use serde::de::value::{Error, StringDeserializer};
    value
        .map(|v| T::deserialize(StringDeserializer::<Error>::new(v)))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("subscriber '{id}': {column}: {e}")))
}

/// A template row before its JSON and enum columns are decoded.
pub(crate) struct TemplateRow {
    pub provisioning_id: String,
    pub partner_id: String,
    pub cluster_id: Option<String>,
    pub name: String,
    pub settings_json: String,
    pub provisioning_username: String,
    pub provisioning_password_hash: String,
    pub source: String,
    pub disabled_at: Option<i64>,
}

impl TemplateRow {
    pub(crate) fn decode(self) -> Result<CustomerTemplate, StoreError> {
        let settings: TemplateSettings =
            serde_json::from_str(&self.settings_json).map_err(|e| {
                StoreError::Corrupt(format!(
                    "template '{}': settings_json: {e}",
                    self.provisioning_id
                ))
            })?;
        let source = TemplateSource::parse(&self.source).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "template '{}': unknown source '{}'",
                self.provisioning_id, self.source
            ))
        })?;
        Ok(CustomerTemplate {
            provisioning_id: self.provisioning_id,
            partner_id: self.partner_id,
            cluster_id: self.cluster_id,
            name: self.name,
            settings,
            provisioning_username: self.provisioning_username,
            provisioning_password_hash: self.provisioning_password_hash,
            source,
            disabled_at: self.disabled_at,
        })
    }
}

/// An outbox row before its JSON and enum columns are decoded.
pub(crate) struct EntryRow {
    pub seq: i64,
    pub envelope_json: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl EntryRow {
    pub(crate) fn decode(self) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            seq: self.seq,
            envelope: decode_envelope(self.seq, &self.envelope_json)?,
            state: outbox_state(&self.state)?,
            attempts: u32::try_from(self.attempts).map_err(|_| {
                StoreError::Corrupt(format!(
                    "outbox entry {}: attempts {}",
                    self.seq, self.attempts
                ))
            })?,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }
}

/// An email row before its JSON and enum columns are decoded.
pub(crate) struct EmailRow {
    pub id: i64,
    pub kind: String,
    pub to_json: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub subscriber_id: Option<String>,
    pub dedupe_key: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub message_token: String,
    pub message_id: Option<String>,
    pub secrets_json: Option<String>,
    pub intent_json: Option<String>,
}

impl EmailRow {
    pub(crate) fn decode(self) -> Result<EmailRecord, StoreError> {
        let id = self.id;
        let kind = EmailKind::parse(&self.kind).ok_or_else(|| {
            StoreError::Corrupt(format!("email {id}: unknown kind '{}'", self.kind))
        })?;
        let to: Vec<String> = serde_json::from_str(&self.to_json)
            .map_err(|e| StoreError::Corrupt(format!("email {id}: to_json: {e}")))?;
        let intent = match &self.intent_json {
            Some(json) => EmailIntent::from_stored_json(json)
                .map_err(|e| StoreError::Corrupt(format!("email {id}: intent_json: {e}")))?,
            // Queued before intents: its words as stored.
            None => EmailIntent::Plain(PlainMessage {
                subject: self.subject,
                text_body: self.text_body,
                html_body: self.html_body,
                secrets: match &self.secrets_json {
                    None => Vec::new(),
                    Some(json) => serde_json::from_str(json).map_err(|e| {
                        StoreError::Corrupt(format!("email {id}: secrets_json: {e}"))
                    })?,
                },
            }),
        };
        Ok(EmailRecord {
            id,
            message: EmailMessage {
                to,
                kind,
                subscriber_id: self.subscriber_id,
                dedupe_key: self.dedupe_key,
                intent,
            },
            state: email_state(id, &self.state)?,
            attempts: u32::try_from(self.attempts).map_err(|_| {
                StoreError::Corrupt(format!("email {id}: attempts {}", self.attempts))
            })?,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            message_token: self.message_token,
            message_id: self.message_id,
        })
    }
}

pub(crate) fn outbox_state(s: &str) -> Result<OutboxState, StoreError> {
    match s {
        "pending" => Ok(OutboxState::Pending),
        "delivered" => Ok(OutboxState::Delivered),
        "failed" => Ok(OutboxState::Failed),
        other => Err(StoreError::Corrupt(format!(
            "outbox: unknown state '{other}'"
        ))),
    }
}

pub(crate) fn decode_envelope(seq: i64, json: &str) -> Result<CommandEnvelope, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("outbox entry {seq}: envelope_json: {e}")))
}

pub(crate) fn email_state(id: i64, s: &str) -> Result<EmailState, StoreError> {
    EmailState::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("email {id}: unknown state '{s}'")))
}

pub(crate) fn role_as_str(role: PartnerRole) -> &'static str {
    match role {
        PartnerRole::None => "none",
        PartnerRole::ProvisioningAdmin => "provisioning_admin",
        PartnerRole::FullAdmin => "full_admin",
    }
}

pub(crate) fn parse_role(s: &str) -> Result<PartnerRole, StoreError> {
    Ok(match s {
        "none" => PartnerRole::None,
        "provisioning_admin" => PartnerRole::ProvisioningAdmin,
        "full_admin" => PartnerRole::FullAdmin,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown partner role '{other}'"
            )))
        }
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode {what}: {e}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    id: &str,
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("existing org '{id}': {what}: {e}")))
}

/// A provisioning event as its row's `body`.
pub(crate) fn encode_event(event: &ProvisioningEvent) -> Result<String, StoreError> {
    to_json(event, "provisioning event")
}

/// A provisioning event row (`seq` is the row's, not the body's).
pub(crate) fn decode_event(seq: i64, body: &str) -> Result<ProvisioningEvent, StoreError> {
    let mut event: ProvisioningEvent = serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("provisioning event {seq}: {e}")))?;
    event.seq = seq;
    Ok(event)
}

pub(crate) fn encode_subscription(s: &EventSubscription) -> Result<String, StoreError> {
    to_json(s, "event subscription")
}

/// A subscription row; its `acked_seq` column is the truth (cursor moves
/// do not rewrite the body).
pub(crate) fn decode_subscription(
    body: &str,
    acked_seq: i64,
) -> Result<EventSubscription, StoreError> {
    let mut s: EventSubscription = serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("event subscription: {e}")))?;
    s.acked_seq = acked_seq;
    Ok(s)
}

/// A license subscription's `quantities_json` (`{"license": n}`).
pub(crate) fn encode_quantities(q: &BTreeMap<String, u32>) -> Result<String, StoreError> {
    to_json(q, "subscription quantities")
}

pub(crate) fn decode_quantities(id: &str, json: &str) -> Result<BTreeMap<String, u32>, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!("license subscription '{id}': quantities_json: {e}"))
    })
}

/// An auto-license template's `licenses_json`.
pub(crate) fn decode_license_template(
    org_id: &str,
    json: &str,
) -> Result<crate::domain::license::AutoLicenseTemplate, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Corrupt(format!("license template of organization '{org_id}': {e}"))
    })
}

/// A stored Calling number (written canonical, so it parses).
pub(crate) fn stored_number(number: &str) -> Result<crate::domain::phone::E164, StoreError> {
    crate::domain::phone::E164::parse(number)
        .map_err(|e| StoreError::Corrupt(format!("calling number '{number}': {}", e.message)))
}

/// A Calling number's holder from its columns (kind, reference, user id).
pub(crate) fn number_holder(
    number: &str,
    kind: Option<String>,
    reference: Option<String>,
    user_id: Option<String>,
) -> Result<Option<crate::domain::calling::NumberHolder>, StoreError> {
    use crate::domain::calling::NumberHolder;
    match (kind.as_deref(), reference) {
        (None, _) => Ok(None),
        (Some("user"), Some(subscriber_id)) => Ok(Some(NumberHolder::User {
            subscriber_id,
            user_id: user_id.unwrap_or_default(),
        })),
        (Some("service"), Some(name)) => Ok(Some(NumberHolder::Service { name })),
        (Some(other), _) => Err(StoreError::Corrupt(format!(
            "calling number '{number}': holder kind '{other}'"
        ))),
    }
}

/// A Calling number holder's columns: kind, reference, user id.
pub(crate) fn holder_columns(
    holder: Option<&crate::domain::calling::NumberHolder>,
) -> (Option<&str>, Option<&str>, Option<&str>) {
    match holder {
        None => (None, None, None),
        Some(h @ crate::domain::calling::NumberHolder::User { user_id, .. }) => {
            (Some(h.kind()), Some(h.reference()), Some(user_id.as_str()))
        }
        Some(h @ crate::domain::calling::NumberHolder::Service { .. }) => {
            (Some(h.kind()), Some(h.reference()), None)
        }
    }
}

/// A command key's outcome from its columns: (refused code, detail),
/// (notice code, detail).
pub(crate) fn key_outcome(
    refused: (Option<u32>, Option<String>),
    notice: (Option<u32>, Option<String>),
) -> crate::store::license_rows::KeyOutcome {
    use crate::domain::license::StoredRefusal;
    use crate::store::license_rows::KeyOutcome;
    let stored = |(code, detail): (Option<u32>, Option<String>)| {
        code.map(|code| StoredRefusal {
            code,
            detail: detail.unwrap_or_default(),
        })
    };
    match stored(refused) {
        Some(r) => KeyOutcome::Refused(r),
        None => KeyOutcome::Applied {
            notice: stored(notice),
        },
    }
}

/// The columns of a command key's outcome (see [`key_outcome`]).
pub(crate) type OutcomeColumns<'a> = (
    (Option<u32>, Option<&'a str>),
    (Option<u32>, Option<&'a str>),
);

pub(crate) fn outcome_columns(
    outcome: &crate::store::license_rows::KeyOutcome,
) -> OutcomeColumns<'_> {
    use crate::store::license_rows::KeyOutcome;
    fn columns(r: &crate::domain::license::StoredRefusal) -> (Option<u32>, Option<&str>) {
        (Some(r.code), Some(r.detail.as_str()))
    }
    match outcome {
        KeyOutcome::Refused(r) => (columns(r), (None, None)),
        KeyOutcome::Applied { notice } => {
            ((None, None), notice.as_ref().map_or((None, None), columns))
        }
    }
}

/// A workspace row before its typed columns are decoded (both back-ends
/// read the same columns, [`WORKSPACE_COLUMNS`]).
pub(crate) struct WorkspaceRow {
    pub id: String,
    pub provisioning_id: String,
    pub partner_id: String,
    pub sp_enterprise_id: String,
    pub enterprise_key: String,
    pub org_id: String,
    pub user_id: String,
    pub display_name: String,
    pub phone_number: Option<String>,
    pub extension: Option<String>,
    pub status: String,
    pub errors_json: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const WORKSPACE_COLUMNS: &str = "id, provisioning_id, partner_id, sp_enterprise_id, \
     enterprise_key, org_id, user_id, display_name, phone_number, extension, status, \
     errors_json, version, created_at, updated_at";

impl WorkspaceRow {
    pub(crate) fn into_record(
        self,
    ) -> Result<crate::domain::workspace::WorkspaceRecord, StoreError> {
        use crate::domain::workspace::{WorkspaceRecord, WorkspaceStatus};
        let id = self.id;
        let status = WorkspaceStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!("workspace '{id}': status '{}'", self.status))
        })?;
        Ok(WorkspaceRecord {
            user_id: stored(&id, "user_id", Some(self.user_id))?
                .ok_or_else(|| StoreError::Corrupt(format!("workspace '{id}': user_id")))?,
            phone_number: stored(&id, "phone_number", self.phone_number)?,
            errors: decode_errors(&id, &self.errors_json)?,
            provisioning_id: self.provisioning_id,
            partner_id: self.partner_id,
            sp_enterprise_id: self.sp_enterprise_id,
            enterprise_key: EnterpriseKey::from_stored(self.enterprise_key),
            org_id: self.org_id,
            display_name: self.display_name,
            extension: self.extension,
            status,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            id,
        })
    }
}
