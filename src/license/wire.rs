//! The remote license core's wire: a gateway POSTs a run of one
//! enterprise's commands (the outbox's command JSON, in order) to
//! `/license-core/v1/commands`; the core answers one result per command
//! it attempted, stopping after the first it could not apply for now.
//! Idempotent by command key: a command sent again (the gateway's answer
//! was lost) gets its first answer again.

use serde::{Deserialize, Serialize};

use crate::commands::CommandEnvelope;
use crate::domain::device::IssuedDevice;

/// Where a core takes runs of commands.
pub const COMMANDS_PATH: &str = "/license-core/v1/commands";
/// Where a gateway reads an organization's licenses for its partner
/// admins: `?organization={id}&view=subscriptions|holders`.
pub const READ_PATH: &str = "/license-core/v1/licenses";

/// What a gateway reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadView {
    Subscriptions,
    Holders,
}

impl ReadView {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReadView::Subscriptions => "subscriptions",
            ReadView::Holders => "holders",
        }
    }

    pub fn parse(s: &str) -> Option<ReadView> {
        match s {
            "subscriptions" => Some(ReadView::Subscriptions),
            "holders" => Some(ReadView::Holders),
            _ => None,
        }
    }
}

/// The path and query of a read.
pub fn read_path(org_id: &str, view: ReadView) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("organization", org_id)
        .append_pair("view", view.as_str())
        .finish();
    format!("{READ_PATH}?{query}")
}

/// The organization and view a read's query names.
pub fn parse_read_query(query: Option<&str>) -> Option<(String, ReadView)> {
    let mut org = None;
    let mut view = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "organization" => org = Some(v.into_owned()),
            "view" => view = ReadView::parse(&v),
            _ => return None,
        }
    }
    Some((org.filter(|o| !o.is_empty())?, view?))
}

/// A read's answer: the organization's subscriptions or holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadAnswer {
    #[serde(default)]
    pub subscriptions: Vec<crate::domain::license::SubscriptionUsage>,
    #[serde(default)]
    pub holders: Vec<crate::domain::license::HolderRow>,
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_names_any_organization_id_and_its_view() {
        for org in ["org-1", "a b+c&d=é/x"] {
            for view in [ReadView::Subscriptions, ReadView::Holders] {
                let path = read_path(org, view);
                let (_, query) = path.split_once('?').expect("query");
                assert_eq!(parse_read_query(Some(query)), Some((org.to_string(), view)));
            }
        }
        assert_eq!(parse_read_query(Some("organization=o&view=other")), None);
        assert_eq!(parse_read_query(Some("view=holders")), None);
        assert_eq!(
            parse_read_query(Some("organization=o&view=holders&x=1")),
            None
        );
    }
}
