//! The documents the license resources take (JSON, and CSV for the bulk
//! ones), read into the license use cases' requests. A problem is a
//! sentence naming it (the caller answers 9017 with it).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::domain::calling::CallingLocation;
use crate::domain::ids::UserId;
use crate::domain::license::{AutoLicenseTemplate, LicenseSubscription};
use crate::domain::subscriber::mac_address;
use crate::domain::timestamp::parse_iso_millis;
use crate::license::admin::{SubscriptionMoves, TemplateApplication};
use crate::license::admin_grants::{AdminGrant, GrantAction};
use crate::license::calling_admin::NumberEntry;
use crate::provision::devices::DeviceCodeRequest;

pub type Problem = String;

/// The body of a subscription PUT.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubscriptionDoc {
    /// ISO 8601 instant (`2026-01-01T00:00:00Z`) or date (`2026-01-01`).
    starts_at: String,
    quantities: BTreeMap<String, u32>,
}

/// A template PUT's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TemplateDoc {
    licenses: BTreeSet<String>,
    /// The organization's template only: a user moving to another group
    /// keeps its old group's template licenses (default true).
    #[serde(default)]
    preserve_on_group_move: Option<bool>,
}

/// An apply POST's body (empty, or the key left out: preserve).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyDoc {
    #[serde(default = "preserve_by_default")]
    preserve_licenses: bool,
    /// A user may lose a Webex Calling license (and its voicemail, PIN,
    /// numbers and settings).
    #[serde(default)]
    acknowledge_calling_loss: bool,
}

fn preserve_by_default() -> bool {
    true
}

/// A move POST's JSON body: every holder of the source, the users named,
/// or the users a template applies to.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MoveDoc {
    to: String,
    #[serde(default)]
    users: Option<Vec<String>>,
    /// `org` or `group:{groupId}`.
    #[serde(default)]
    template: Option<String>,
}

/// A grant or revoke POST's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantDoc {
    users: Vec<String>,
    licenses: BTreeSet<String>,
    /// Who asks: kept as the grant's reason (`source_ref`).
    by: String,
    #[serde(default)]
    acknowledge_calling_loss: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LocationDoc {
    name: String,
    country: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumbersDoc {
    numbers: Vec<NumberDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NumberDoc {
    number: String,
    #[serde(default)]
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevicesDoc {
    devices: Vec<DeviceDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeviceDoc {
    user_id: String,
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    mac_address: Option<String>,
}

/// The CSV form of a move: one user per row, each with its target.
const MOVE_CSV_HEADER: [&str; 2] = ["user_id", "to_subscription"];
const NUMBERS_CSV_HEADER: &str = "number";
const DEVICES_CSV_HEADER: [&str; 3] = ["user_id", "device_type", "mac_address"];
/// Longest `deviceType` kept.
const MAX_DEVICE_TYPE: usize = 128;

/// A small JSON document (`None` when the body is empty).
fn json<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<Option<T>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| format!("{what} document: {e}"))
}

/// A JSON document that must be there.
fn required<T: serde::de::DeserializeOwned>(
    what: &str,
    shape: &str,
    body: &[u8],
) -> Result<T, Problem> {
    json(what, body)?.ok_or_else(|| format!("a {what} document {shape} is required"))
}

pub fn subscription(id: &str, body: &[u8]) -> Result<LicenseSubscription, Problem> {
    let doc: SubscriptionDoc = required("subscription", "{\"startsAt\", \"quantities\"}", body)?;
    let starts_at = parse_start(&doc.starts_at).ok_or_else(|| {
        format!(
            "startsAt '{}': an ISO 8601 instant (2026-01-01T00:00:00Z) or date (2026-01-01)",
            doc.starts_at
        )
    })?;
    Ok(LicenseSubscription {
        id: id.to_string(),
        starts_at,
        quantities: doc.quantities,
    })
}

fn parse_start(s: &str) -> Option<i64> {
    parse_iso_millis(s).or_else(|| {
        let date =
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
        Some(date.midnight().assume_utc().unix_timestamp() * 1000)
    })
}

pub fn template(group: Option<&str>, body: &[u8]) -> Result<AutoLicenseTemplate, Problem> {
    let doc: TemplateDoc = required("template", "{\"licenses\": [...]}", body)?;
    if group.is_some() && doc.preserve_on_group_move.is_some() {
        return Err(
            "preserveOnGroupMove is the organization's setting: put it with the organization template"
                .into(),
        );
    }
    Ok(AutoLicenseTemplate {
        licenses: doc.licenses,
        preserve_on_group_move: doc.preserve_on_group_move,
    })
}

pub fn application(body: &[u8]) -> Result<TemplateApplication, Problem> {
    Ok(match json::<ApplyDoc>("apply", body)? {
        Some(doc) => TemplateApplication {
            preserve: doc.preserve_licenses,
            calling_loss_acknowledged: doc.acknowledge_calling_loss,
        },
        None => TemplateApplication::default(),
    })
}

pub fn moves(csv: bool, body: &[u8]) -> Result<SubscriptionMoves, Problem> {
    if csv {
        return moves_from_csv(body);
    }
    match serde_json::from_slice::<MoveDoc>(body) {
        Ok(MoveDoc {
            to,
            users: None,
            template: None,
        }) => Ok(SubscriptionMoves::All { to }),
        Ok(MoveDoc {
            to,
            users: Some(users),
            template: None,
        }) => Ok(SubscriptionMoves::Users(
            users.into_iter().map(|u| (u, to.clone())).collect(),
        )),
        Ok(MoveDoc {
            to,
            users: None,
            template: Some(template),
        }) => Ok(SubscriptionMoves::Template { template, to }),
        Ok(MoveDoc { .. }) => Err("move document: users or template, not both".into()),
        Err(e) => Err(format!("move document: {e}")),
    }
}

/// `user_id,to_subscription` rows (that header first).
fn moves_from_csv(bytes: &[u8]) -> Result<SubscriptionMoves, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    if header.iter().collect::<Vec<_>>() != MOVE_CSV_HEADER {
        return Err(format!(
            "CSV: the first line must be {}",
            MOVE_CSV_HEADER.join(",")
        ));
    }
    let mut pairs = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
        match (row.get(0), row.get(1)) {
            (Some(user), Some(to)) if !user.is_empty() && !to.is_empty() => {
                pairs.push((user.to_string(), to.to_string()))
            }
            _ => {
                return Err(format!(
                    "CSV row {}: a user id and a subscription id",
                    i + 2
                ))
            }
        }
    }
    if pairs.is_empty() {
        return Err("CSV: no row".into());
    }
    Ok(SubscriptionMoves::Users(pairs))
}

pub fn grant(revoke: bool, body: &[u8]) -> Result<AdminGrant, Problem> {
    let doc: GrantDoc = required("grant", "{\"users\", \"licenses\", \"by\"}", body)?;
    Ok(AdminGrant {
        action: if revoke {
            GrantAction::Revoke
        } else {
            GrantAction::Grant
        },
        users: doc.users,
        licenses: doc.licenses,
        by: doc.by,
        calling_loss_acknowledged: doc.acknowledge_calling_loss,
    })
}

pub fn location(id: &str, body: &[u8]) -> Result<CallingLocation, Problem> {
    let doc: LocationDoc = required("location", "{\"name\", \"country\"}", body)?;
    Ok(CallingLocation {
        id: id.to_string(),
        name: doc.name,
        country: doc.country,
    })
}

pub fn numbers(csv: bool, body: &[u8]) -> Result<Vec<NumberEntry>, Problem> {
    if csv {
        return numbers_from_csv(body);
    }
    let doc: NumbersDoc =
        serde_json::from_slice(body).map_err(|e| format!("numbers document: {e}"))?;
    Ok(doc
        .numbers
        .into_iter()
        .map(|n| NumberEntry {
            number: n.number,
            service: n.service,
        })
        .collect())
}

/// `number[,service]` rows, that header first.
fn numbers_from_csv(bytes: &[u8]) -> Result<Vec<NumberEntry>, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    let columns: Vec<&str> = header.iter().collect();
    if columns != [NUMBERS_CSV_HEADER] && columns != [NUMBERS_CSV_HEADER, "service"] {
        return Err("CSV: the first line must be number or number,service".into());
    }
    let mut out = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
        match row.get(0) {
            Some(number) if !number.is_empty() && row.len() <= 2 => out.push(NumberEntry {
                number: number.to_string(),
                service: row.get(1).filter(|s| !s.is_empty()).map(str::to_string),
            }),
            _ => {
                return Err(format!(
                    "CSV row {}: a number, then a service or nothing",
                    i + 2
                ))
            }
        }
    }
    Ok(out)
}

type DeviceRow = (String, Option<String>, Option<String>);

pub fn devices(csv: bool, body: &[u8]) -> Result<Vec<DeviceCodeRequest>, Problem> {
    let rows = if csv {
        devices_from_csv(body)?
    } else {
        serde_json::from_slice::<DevicesDoc>(body)
            .map_err(|e| format!("devices document: {e}"))?
            .devices
            .into_iter()
            .map(|d| (d.user_id, d.device_type, d.mac_address))
            .collect()
    };
    device_requests(rows)
}

/// `user_id,device_type,mac_address` rows, that header first (the last
/// two may be empty).
fn devices_from_csv(bytes: &[u8]) -> Result<Vec<DeviceRow>, Problem> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader.headers().map_err(|e| format!("CSV: {e}"))?;
    if header.iter().collect::<Vec<_>>() != DEVICES_CSV_HEADER {
        return Err(format!(
            "CSV: the first line must be {}",
            DEVICES_CSV_HEADER.join(",")
        ));
    }
    let some = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    reader
        .records()
        .enumerate()
        .map(|(i, row)| {
            let row = row.map_err(|e| format!("CSV row {}: {e}", i + 2))?;
            Ok((
                row.get(0).unwrap_or("").to_string(),
                some(row.get(1)),
                some(row.get(2)),
            ))
        })
        .collect()
}

/// The rows checked: user ids, MAC addresses (canonical), device types.
fn device_requests(rows: Vec<DeviceRow>) -> Result<Vec<DeviceCodeRequest>, Problem> {
    rows.into_iter()
        .enumerate()
        .map(|(i, (user, device_type, mac))| {
            let row = i + 1;
            let user_id = UserId::parse(&user).map_err(|e| format!("row {row}: {e}"))?;
            let mac_address = mac
                .as_deref()
                .map(mac_address)
                .transpose()
                .map_err(|e| format!("row {row}: {e}"))?;
            if let Some(t) = &device_type {
                if t.chars().count() > MAX_DEVICE_TYPE || t.chars().any(char::is_control) {
                    return Err(format!(
                        "row {row}: deviceType: 1 to {MAX_DEVICE_TYPE} characters, no control characters"
                    ));
                }
            }
            Ok(DeviceCodeRequest {
                user_id,
                device_type,
                mac_address,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_an_instant_or_a_date() {
        let s =
            subscription("s1", br#"{"startsAt":"2026-01-01","quantities":{"a":1}}"#).expect("date");
        assert_eq!(s.starts_at, 1_767_225_600_000);
        let s = subscription(
            "s1",
            br#"{"startsAt":"2026-01-01T00:00:01Z","quantities":{}}"#,
        )
        .expect("instant");
        assert_eq!(s.starts_at, 1_767_225_601_000);
        assert!(
            subscription("s1", br#"{"startsAt":"soon","quantities":{}}"#)
                .expect_err("bad start")
                .contains("startsAt 'soon'")
        );
        assert!(subscription("s1", b" ")
            .expect_err("empty")
            .contains("required"));
    }

    #[test]
    fn a_move_names_all_users_or_a_template() {
        assert_eq!(
            moves(false, br#"{"to":"s2"}"#),
            Ok(SubscriptionMoves::All { to: "s2".into() })
        );
        assert_eq!(
            moves(false, br#"{"to":"s2","users":["a","b"]}"#),
            Ok(SubscriptionMoves::Users(vec![
                ("a".into(), "s2".into()),
                ("b".into(), "s2".into())
            ]))
        );
        assert!(moves(false, br#"{"to":"s2","users":[],"template":"org"}"#).is_err());
        assert_eq!(
            moves(true, b"user_id,to_subscription\na, s3\n"),
            Ok(SubscriptionMoves::Users(vec![("a".into(), "s3".into())]))
        );
        assert!(moves(true, b"user_id,to_subscription\n")
            .expect_err("no row")
            .contains("no row"));
        assert!(moves(true, b"user,to\na,b\n").is_err());
    }

    #[test]
    fn an_empty_apply_preserves_and_a_group_template_has_no_move_setting() {
        assert_eq!(application(b""), Ok(TemplateApplication::default()));
        assert!(
            !application(br#"{"preserveLicenses":false}"#)
                .expect("doc")
                .preserve
        );
        assert!(template(Some("g"), br#"{"licenses":[],"preserveOnGroupMove":false}"#).is_err());
        assert_eq!(
            template(None, br#"{"licenses":["a"],"preserveOnGroupMove":false}"#)
                .expect("org")
                .preserve_on_group_move,
            Some(false)
        );
    }

    #[test]
    fn numbers_and_devices_by_csv() {
        assert_eq!(
            numbers(true, b"number,service\n+12025550100,\n+12025550101,hunt\n")
                .expect("csv")
                .iter()
                .map(|n| n.service.clone())
                .collect::<Vec<_>>(),
            vec![None, Some("hunt".to_string())]
        );
        assert!(numbers(true, b"num\n1\n").is_err());
        let d = devices(
            true,
            b"user_id,device_type,mac_address\nann@acme.example,webex-go,00-11-22-aa-bb-cc\n",
        )
        .expect("devices");
        assert_eq!(d[0].mac_address.as_deref(), Some("001122AABBCC"));
        assert!(devices(true, b"user_id,device_type,mac_address\n,x,\n")
            .expect_err("no user")
            .starts_with("row 1"));
    }
}
