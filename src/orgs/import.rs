//! Parsing and checking existing organizations loaded by operators:
//! one JSON object (`PUT /admin/v1/organizations/{id}`), a JSON array or a
//! CSV file (`POST /admin/v1/organizations/import`).
//!
//! CSV: first line exactly [`CSV_HEADER`]; list cells are `;`-separated;
//! `admin_emails` are users with `isAdmin`, `user_emails` the others;
//! `licenses` are `name:state` (`active|suspended|cancelled`);
//! `email_suppression` is `true|false` (empty = false). Cells may be quoted
//! with `"` (a doubled `""` inside is one quote).

use crate::domain::email::normalize_email;
use crate::domain::organization::{ExistingOrganization, LicenseState, OrgLicense, OrgUser};

pub const CSV_HEADER: &str = "id,name,user_count,admin_emails,user_emails,verified_domains,claimed_domains,licenses,email_suppression";

/// A problem with one organization (or row) of an import.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportProblem {
    /// 1-based row of a CSV file (header = row 1) or index in a JSON array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    pub field: String,
    pub description: String,
}

fn problem(row: Option<usize>, field: &str, description: impl Into<String>) -> ImportProblem {
    ImportProblem {
        row,
        field: field.to_string(),
        description: description.into(),
    }
}

/// Checks and normalizes one organization (emails lower-cased in the
/// domain, domains lower-cased).
pub fn check(
    mut org: ExistingOrganization,
    row: Option<usize>,
) -> Result<ExistingOrganization, Vec<ImportProblem>> {
    let mut problems = Vec::new();
    if org.id.trim().is_empty() || org.id.len() > 128 || org.id.contains('/') {
        problems.push(problem(row, "id", "1..128 characters without '/' expected"));
    }
    if org.name.trim().is_empty() || org.name.len() > 256 {
        problems.push(problem(row, "name", "1..256 characters expected"));
    }
    for (i, u) in org.users.iter_mut().enumerate() {
        match normalize_email(&u.email) {
            Ok(e) => u.email = e,
            Err(e) => problems.push(problem(
                row,
                &format!("users[{i}].email"),
                format!("'{}': {e}", u.email),
            )),
        }
    }
    let listed = u32::try_from(org.users.len()).unwrap_or(u32::MAX);
    if org.user_count < listed {
        problems.push(problem(
            row,
            "userCount",
            format!("{} is less than the {listed} users listed", org.user_count),
        ));
    }
    for (field, list) in [
        ("verifiedDomains", &mut org.verified_domains),
        ("claimedDomains", &mut org.claimed_domains),
    ] {
        for d in list.iter_mut() {
            *d = d.trim().to_ascii_lowercase();
            if d.is_empty() || !d.contains('.') || d.contains(['@', ' ', '/']) {
                problems.push(problem(row, field, format!("'{d}' is not a domain name")));
            }
        }
    }
    for (i, l) in org.licenses.iter().enumerate() {
        if l.name.trim().is_empty() {
            problems.push(problem(row, &format!("licenses[{i}].name"), "empty"));
        }
    }
    if problems.is_empty() {
        Ok(org)
    } else {
        Err(problems)
    }
}

/// One JSON organization (the PUT body); `path_id` must match its `id`.
pub fn parse_one(body: &[u8], path_id: &str) -> Result<ExistingOrganization, Vec<ImportProblem>> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let org: ExistingOrganization = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        vec![problem(None, &field, e.into_inner().to_string())]
    })?;
    if org.id != path_id {
        return Err(vec![problem(
            None,
            "id",
            format!("'{}' does not match the path id '{path_id}'", org.id),
        )]);
    }
    check(org, None)
}

/// A JSON array, or CSV (by content type, else by the first byte).
pub fn parse_import(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Vec<ExistingOrganization>, Vec<ImportProblem>> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let is_json = ct.contains("json") || (!ct.contains("csv") && first == Some(b'['));
    let orgs = if is_json {
        parse_json_array(body)?
    } else {
        let text = std::str::from_utf8(body)
            .map_err(|_| vec![problem(None, "body", "CSV must be UTF-8")])?;
        parse_csv(text)?
    };
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    for (i, org) in orgs.iter().enumerate() {
        if !seen.insert(org.id.clone()) {
            let row = if is_json { i } else { i + 2 };
            problems.push(problem(
                Some(row),
                "id",
                format!("'{}' appears twice", org.id),
            ));
        }
    }
    if problems.is_empty() {
        Ok(orgs)
    } else {
        Err(problems)
    }
}

fn parse_json_array(body: &[u8]) -> Result<Vec<ExistingOrganization>, Vec<ImportProblem>> {
    let values: Vec<serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| vec![problem(None, "body", format!("a JSON array expected: {e}"))])?;
    let mut out = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, ExistingOrganization>(v) {
            Ok(org) => match check(org, Some(i)) {
                Ok(org) => out.push(org),
                Err(p) => problems.extend(p),
            },
            Err(e) => {
                let field = e.path().to_string();
                problems.push(problem(Some(i), &field, e.into_inner().to_string()));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Splits one CSV line into cells (quotes allowed; no newlines in cells).
fn csv_cells(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == ',' {
            cells.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return Err("unterminated quoted cell".into());
    }
    cells.push(cur);
    Ok(cells)
}

fn list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_csv(text: &str) -> Result<Vec<ExistingOrganization>, Vec<ImportProblem>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
    if header != CSV_HEADER {
        return Err(vec![problem(
            Some(1),
            "header",
            format!("the first line must be exactly '{CSV_HEADER}'"),
        )]);
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in lines {
        let row = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells = match csv_cells(line) {
            Ok(c) if c.len() == 9 => c,
            Ok(c) => {
                problems.push(problem(
                    Some(row),
                    "row",
                    format!("9 cells expected, found {}", c.len()),
                ));
                continue;
            }
            Err(e) => {
                problems.push(problem(Some(row), "row", e));
                continue;
            }
        };
        let mut row_problems = Vec::new();
        let user_count = match cells[2].trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                row_problems.push(problem(
                    Some(row),
                    "user_count",
                    format!("'{}' is not a non-negative integer", cells[2]),
                ));
                0
            }
        };
        let mut users: Vec<OrgUser> = list(&cells[3])
            .into_iter()
            .map(|email| OrgUser {
                email,
                is_admin: true,
            })
            .collect();
        users.extend(list(&cells[4]).into_iter().map(|email| OrgUser {
            email,
            is_admin: false,
        }));
        let mut licenses = Vec::new();
        for l in list(&cells[7]) {
            let parsed = l.rsplit_once(':').and_then(|(name, state)| {
                let state = match state.trim() {
                    "active" => LicenseState::Active,
                    "suspended" => LicenseState::Suspended,
                    "cancelled" => LicenseState::Cancelled,
                    _ => return None,
                };
                Some(OrgLicense {
                    name: name.trim().to_string(),
                    state,
                })
            });
            match parsed {
                Some(l) => licenses.push(l),
                None => row_problems.push(problem(
                    Some(row),
                    "licenses",
                    format!("'{l}': name:active|suspended|cancelled expected"),
                )),
            }
        }
        let email_suppression = match cells[8].trim() {
            "" | "false" => false,
            "true" => true,
            other => {
                row_problems.push(problem(
                    Some(row),
                    "email_suppression",
                    format!("'{other}': true or false expected"),
                ));
                false
            }
        };
        let org = ExistingOrganization {
            id: cells[0].trim().to_string(),
            name: cells[1].trim().to_string(),
            user_count,
            users,
            verified_domains: list(&cells[5]),
            claimed_domains: list(&cells[6]),
            licenses,
            auth_settings: serde_json::Value::Null,
            email_suppression,
            branding: None,
        };
        if !row_problems.is_empty() {
            problems.extend(row_problems);
            continue;
        }
        match check(org, Some(row)) {
            Ok(org) => out.push(org),
            Err(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_parse_and_errors_name_the_row_and_field() {
        let csv = format!(
            "{CSV_HEADER}\norg-1,\"Big, Co\",120,a@big.example;b@big.example,c@big.example,big.example,,meet:active;call:suspended,true\n"
        );
        let orgs = parse_import(csv.as_bytes(), Some("text/csv")).unwrap();
        assert_eq!(orgs.len(), 1);
        let o = &orgs[0];
        assert_eq!(o.name, "Big, Co");
        assert_eq!(o.users.iter().filter(|u| u.is_admin).count(), 2);
        assert_eq!(o.licenses[1].state, LicenseState::Suspended);
        assert!(o.email_suppression);

        let bad = format!("{CSV_HEADER}\norg-1,A,x,,,,,,\norg-2,B,1,,,,,meet:gone,\n");
        let err = parse_import(bad.as_bytes(), Some("text/csv")).unwrap_err();
        assert_eq!(err[0].row, Some(2));
        assert_eq!(err[0].field, "user_count");
        assert_eq!(err[1].row, Some(3));
        assert_eq!(err[1].field, "licenses");

        let err = parse_import(b"id,name\n", Some("text/csv")).unwrap_err();
        assert_eq!(err[0].field, "header");
    }

    #[test]
    fn json_errors_name_the_index_and_path() {
        let err = parse_import(
            br#"[{"id":"a","name":"A","userCount":1},{"id":"b","name":"B","userCount":"x"}]"#,
            Some("application/json"),
        )
        .unwrap_err();
        assert_eq!(err[0].row, Some(1));
        assert_eq!(err[0].field, "userCount");
        let err = parse_one(br#"{"id":"a","name":"A","userCount":1}"#, "b").unwrap_err();
        assert_eq!(err[0].field, "id");
        let err = parse_one(
            br#"{"id":"a","name":"A","userCount":1,"users":[{"email":"nope"}]}"#,
            "a",
        )
        .unwrap_err();
        assert_eq!(err[0].field, "users[0].email");
    }
}
