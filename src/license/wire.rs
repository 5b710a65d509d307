//! The remote license core's wire: a gateway POSTs a run of one
//! enterprise's commands (the outbox's command JSON, in order) to
//! `/license-core/v1/commands`; the core answers one result per command
//! it attempted, stopping after the first it could not apply for now.
//! Idempotent by command key: a command sent again (the gateway's answer
//! was lost) gets its first answer again. Admin requests on an
//! organization's licenses are relayed as they came, under
//! [`ORGANIZATIONS_PATH`].

use serde::{Deserialize, Serialize};

use crate::commands::CommandEnvelope;
use crate::domain::device::IssuedDevice;

/// Where a core takes runs of commands.
pub const COMMANDS_PATH: &str = "/license-core/v1/commands";
/// Where a core answers an operator's or partner admin's requests on an
/// organization's licenses, relayed by a gateway (the same resources as
/// the operator API's `/admin/v1/organizations/`).
pub const ORGANIZATIONS_PATH: &str = "/license-core/v1/organizations/";
/// The header a relayed request names its partner admin in (the core
/// applies a partner's rules: subscriptions are not its to change, its
/// grants are recorded under its name).
pub const PARTNER_HEADER: &str = "bwgate-partner";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CoreRequest {
    pub commands: Vec<CommandEnvelope>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreAnswer {
    pub results: Vec<CoreResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreResult {
    pub idempotency_key: String,
    pub outcome: Outcome,
    /// For `refused`: the error table's code. For `applied`: a notice's
    /// (9043: provisioned without Webex Calling), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    /// For `refused`, `unavailable` and a notice: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// For an applied device activation: the device and when its code
    /// stops working (the gateway derives and emails the code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<IssuedDevice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Applied now or before (the same key).
    Applied,
    /// Never applicable (the subscriber goes to `error`).
    Refused,
    /// Try again later (the commands after it were not attempted).
    Unavailable,
}
