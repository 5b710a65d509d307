//! What the partner API and page show: list filters (query parameters),
//! the Subscriber JSON object (Cisco's field names), the error text, and
//! the CSV export (RFC 4180, formula-injection safe).

use serde_json::{json, Value};

use crate::domain::lifecycle::{Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::subscriber_query::SubscriberQuery;
use crate::domain::ErrorCode;

/// Page size when `max` is not given.
pub const DEFAULT_MAX: usize = 50;
/// Largest `max`.
pub const MAX_MAX: usize = 1000;
/// Longest `after` cursor (subscriber ids are 36 characters).
const MAX_CURSOR_LEN: usize = 64;

/// The list filters, from `status`, `excludeProvisioned`, `provisioningId`,
/// `after` and `max`. Empty values count as absent (an HTML form's "any").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub statuses: Vec<SubscriberStatus>,
    pub exclude_provisioned: bool,
    pub provisioning_id: Option<String>,
    pub after: Option<String>,
    pub max: Option<usize>,
}

fn invalid(name: &str, why: impl std::fmt::Display) -> Rejection {
    Rejection::new(ErrorCode::InvalidParameterValue, format!("{name}: {why}"))
}

impl Filters {
    pub fn parse(query: Option<&str>) -> Result<Filters, Rejection> {
        let mut f = Filters::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match name.as_ref() {
                "status" => {
                    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let status = SubscriberStatus::parse(part).ok_or_else(|| {
                            invalid(
                                "status",
                                format!(
                                    "unknown status '{part}'; one of {}",
                                    SubscriberStatus::ALL.map(|s| s.as_str()).join(", ")
                                ),
                            )
                        })?;
                        if !f.statuses.contains(&status) {
                            f.statuses.push(status);
                        }
                    }
                }
                "excludeProvisioned" => {
                    f.exclude_provisioned = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("excludeProvisioned", "must be true or false")),
                    }
                }
                "provisioningId" => f.provisioning_id = Some(value.to_string()),
                "after" => {
                    if value.len() > MAX_CURSOR_LEN {
                        return Err(Rejection::new(
                            ErrorCode::InvalidParameterSize,
                            format!("after: at most {MAX_CURSOR_LEN} characters"),
                        ));
                    }
                    f.after = Some(value.to_string());
                }
                "max" => {
                    let n = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_MAX).contains(n))
                        .ok_or_else(|| invalid("max", format!("must be 1-{MAX_MAX}")))?;
                    f.max = Some(n);
                }
                // Anything else (a page's `done` notice, …) is not a filter.
                _ => {}
            }
        }
        Ok(f)
    }

    /// The store query for `partner_id`, at most `limit` rows.
    pub fn query(&self, partner_id: &str, limit: usize) -> SubscriberQuery {
        SubscriberQuery {
            partner_id: partner_id.to_string(),
            statuses: self.statuses.clone(),
            exclude_provisioned: self.exclude_provisioned,
            provisioning_id: self.provisioning_id.clone(),
            enterprise_key: None,
            after: self.after.clone(),
            limit,
        }
    }

    /// The filters as a query string (without `after` and `max` unless
    /// asked), in a fixed order; empty when nothing is filtered.
    pub fn to_query(&self, with_position: bool) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if !self.statuses.is_empty() {
            let names: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            q.append_pair("status", &names.join(","));
        }
        if self.exclude_provisioned {
            q.append_pair("excludeProvisioned", "true");
        }
        if let Some(p) = &self.provisioning_id {
            q.append_pair("provisioningId", p);
        }
        if with_position {
            if let Some(a) = &self.after {
                q.append_pair("after", a);
            }
            if let Some(m) = self.max {
                q.append_pair("max", &m.to_string());
            }
        }
        q.finish()
    }
}

/// Unix milliseconds as ISO 8601 UTC with milliseconds, as Cisco writes
/// them (`2019-10-18T14:26:16.000Z`).
pub fn iso(ms: i64) -> String {
    crate::domain::timestamp::iso_millis(ms)
}

/// The Subscriber object (names as in Cisco's Webex for BroadWorks API).
pub fn subscriber_json(r: &SubscriberRecord) -> Value {
    json!({
        "id": r.id,
        "userId": r.user_id.as_ref().map(|u| u.as_str()),
        "spEnterpriseId": r.enterprise_key.as_ref().map(|k| k.as_str()),
        "firstName": r.first_name,
        "lastName": r.last_name,
        "email": r.email,
        "primaryPhoneNumber": r.phone_number.as_ref().map(|p| p.as_str()),
        "mobilePhoneNumber": r.mobile_phone_number.as_ref().map(|p| p.as_str()),
        "extension": r.extension,
        "package": r.package,
        "status": r.status,
        "errors": r.errors,
        "created": iso(r.created_at),
        "lastStatusChange": iso(r.last_status_change),
        "provisioningId": r.provisioning_id,
        "selfActivated": r.self_activated,
    })
}

/// The subscriber's `errors[]` as one line of text: `code: description`,
/// `; `-separated (empty without errors).
pub fn error_text(r: &SubscriberRecord) -> String {
    r.errors
        .iter()
        .map(|e| format!("{}: {}", e.error_code, e.description))
        .collect::<Vec<_>>()
        .join("; ")
}

pub const CSV_HEADER: [&str; 16] = [
    "id",
    "userId",
    "spEnterpriseId",
    "firstName",
    "lastName",
    "email",
    "primaryPhoneNumber",
    "mobilePhoneNumber",
    "extension",
    "package",
    "status",
    "errors",
    "created",
    "lastStatusChange",
    "provisioningId",
    "selfActivated",
];

/// One CSV cell: a value a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`; a cell with a
/// comma, quote or line break is quoted, quotes doubled (RFC 4180).
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn csv_line(out: &mut String, cells: &[&str]) {
    let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The header line.
pub fn csv_start() -> String {
    let mut out = String::new();
    csv_line(&mut out, &CSV_HEADER);
    out
}

/// Appends one subscriber's line.
pub fn csv_row(out: &mut String, r: &SubscriberRecord) {
    let errors = error_text(r);
    let created = iso(r.created_at);
    let changed = iso(r.last_status_change);
    csv_line(
        out,
        &[
            &r.id,
            r.user_id.as_ref().map_or("", |u| u.as_str()),
            r.enterprise_key.as_ref().map_or("", |k| k.as_str()),
            &r.first_name,
            &r.last_name,
            r.email.as_deref().unwrap_or(""),
            r.phone_number.as_ref().map_or("", |p| p.as_str()),
            r.mobile_phone_number.as_ref().map_or("", |p| p.as_str()),
            r.extension.as_deref().unwrap_or(""),
            r.package.as_str(),
            r.status.as_str(),
            &errors,
            &created,
            &changed,
            &r.provisioning_id,
            if r.self_activated { "true" } else { "false" },
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_validate_and_round_trip() {
        let f = Filters::parse(Some(
            "status=error,pending_email_input&status=error&excludeProvisioned=true&provisioningId=t%201&after=abc&max=20&done=x",
        ))
        .unwrap();
        assert_eq!(
            f.statuses,
            [SubscriberStatus::Error, SubscriberStatus::PendingEmailInput]
        );
        assert!(f.exclude_provisioned);
        assert_eq!(f.provisioning_id.as_deref(), Some("t 1"));
        assert_eq!((f.after.as_deref(), f.max), (Some("abc"), Some(20)));
        assert_eq!(Filters::parse(Some(&f.to_query(true))).unwrap(), f);
        assert_eq!(
            f.to_query(false),
            "status=error%2Cpending_email_input&excludeProvisioned=true&provisioningId=t+1"
        );
        // An HTML form's empty choices mean "any".
        assert_eq!(
            Filters::parse(Some("status=&provisioningId=&max=")).unwrap(),
            Filters::default()
        );
        for (bad, code) in [
            ("status=done", ErrorCode::InvalidParameterValue),
            ("excludeProvisioned=yes", ErrorCode::InvalidParameterValue),
            ("max=0", ErrorCode::InvalidParameterValue),
            ("max=1001", ErrorCode::InvalidParameterValue),
            ("max=-1", ErrorCode::InvalidParameterValue),
            ("max=ten", ErrorCode::InvalidParameterValue),
        ] {
            assert_eq!(Filters::parse(Some(bad)).unwrap_err().code, code, "{bad}");
        }
        let long = format!("after={}", "a".repeat(65));
        assert_eq!(
            Filters::parse(Some(&long)).unwrap_err().code,
            ErrorCode::InvalidParameterSize
        );
    }

    #[test]
    fn csv_cells_are_quoted_and_formula_safe() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=1+2"), "'=1+2");
        assert_eq!(csv_cell("+12405550100"), "'+12405550100");
        assert_eq!(csv_cell("-x"), "'-x");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_start(), format!("{}\r\n", CSV_HEADER.join(",")));
    }

    #[test]
    fn timestamps_are_iso_8601_utc_with_milliseconds() {
        assert_eq!(iso(1_571_408_776_000), "2019-10-18T14:26:16.000Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
