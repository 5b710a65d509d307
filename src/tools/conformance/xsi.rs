//! XSI conformance cases (`bwgate replay --xsi DIR`): recorded Xsi-Actions,
//! Xsi-Events and auth-service requests with the answers a correct server
//! gives, run as one XSI user (`--user` / `--password`: BroadWorks
//! credentials the server's XSP accepts; the user must be provisioned
//! already).
//!
//! A case is `NNN-short-name/` with `case.toml` (a `description` and one
//! `[[step]]` per request: `method` (GET), `path` (required), `auth`
//! (`bearer`, the default: a token fetched once with Basic; `basic`,
//! `wrong-password`, `none`), `accept` (an Accept header), `headers`
//! (extra `[name, value]` pairs), `status` (required)), an optional
//! `NN-request.xml` body, and an optional `NN-expected.xml` or
//! `NN-expected.json`. `{{user}}` stands for the user id everywhere.
//! Documents compare as trees: XML by element name, namespace,
//! attributes, text and children in order; JSON by value. The text
//! `(not compared)` matches anything (tokens, tracking ids); the text
//! `(saved as NAME)` matches any text that is not empty and keeps it as
//! `{{NAME}}` for the case's later steps (paths, bodies, header values,
//! expectations): an id the server makes up, such as a subscription id.
//! A step may also expect answer headers (`expect_headers`, `[name,
//! value]` pairs, the value exact) and an answer without a body
//! (`empty = true`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde::Deserialize;

use crate::client::HttpsClient;
use crate::xsi::{parse_str, Element, XsiLimits};

/// Text that matches any text or JSON value.
pub const NOT_COMPARED: &str = "(not compared)";

/// `(saved as NAME)`: matches any text that is not empty and saves it as
/// `{{NAME}}` for the later steps of the case.
const SAVED_PREFIX: &str = "(saved as ";

/// The `NAME` of a `(saved as NAME)` text (letters, digits, `-`, `_`;
/// not `user`).
fn saved_name(text: &str) -> Option<&str> {
    let name = text.strip_prefix(SAVED_PREFIX)?.strip_suffix(')')?;
    let valid = !name.is_empty()
        && name != USER
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    valid.then_some(name)
}

/// Values saved by `(saved as NAME)` in a case's earlier steps.
pub type Saved = Vec<(String, String)>;

fn save(saved: &mut Saved, name: &str, value: &str) {
    saved.retain(|(n, _)| n != name);
    saved.push((name.to_string(), value.to_string()));
}

/// `{{NAME}}` of each saved value replaced, XML-escaped when `xml`.
fn fill_saved(text: &str, saved: &Saved, xml: bool) -> String {
    let mut out = text.to_string();
    for (name, value) in saved {
        let value = if xml {
            let mut escaped = String::new();
            crate::flowthrough::response::escape_into(&mut escaped, value, true);
            escaped
        } else {
            value.clone()
        };
        out = out.replace(&format!("{{{{{name}}}}}"), &value);
    }
    out
}

/// `fill` applied to every string and key of a JSON value.
fn fill_json(v: &serde_json::Value, fill: &dyn Fn(&str) -> String) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(fill(s)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, fill)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (fill(k), fill_json(x, fill)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value every case starts with: `{{user}}`, the replay's user id.
const USER: &str = "user";

/// Every `NAME` of a `{{NAME}}` in `text`.
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        let name = &rest[..end];
        if name == USER || saved_name(&format!("{SAVED_PREFIX}{name})")).is_some() {
            names.push(name.to_string());
        }
        rest = &rest[end + 2..];
    }
    names
}

/// Every `NAME` of a `(saved as NAME)` in an expected document.
fn saved_names(expected: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expected;
    while let Some(start) = rest.find(SAVED_PREFIX) {
        let tail = &rest[start..];
        if let Some(end) = tail.find(')') {
            if let Some(name) = saved_name(&tail[..=end]) {
                names.push(name.to_string());
            }
        }
        rest = &tail[SAVED_PREFIX.len()..];
    }
    names
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XsiAuth {
    #[default]
    Bearer,
    Basic,
    WrongPassword,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XsiStepSpec {
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub auth: XsiAuth,
    #[serde(default)]
    pub accept: Option<String>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// Headers the answer must carry (name without case, value exact).
    #[serde(default)]
    pub expect_headers: Vec<(String, String)>,
    /// The answer has no body.
    #[serde(default)]
    pub empty: bool,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    description: String,
    step: Vec<XsiStepSpec>,
}

#[derive(Debug, Clone)]
pub enum Expected {
    Xml(String),
    Json(serde_json::Value),
    Nothing,
}

#[derive(Debug, Clone)]
pub struct XsiStep {
    pub spec: XsiStepSpec,
    pub body: Option<String>,
    pub expected: Expected,
}

#[derive(Debug, Clone)]
pub struct XsiCase {
    pub name: String,
    pub description: String,
    pub steps: Vec<XsiStep>,
}

fn problem(path: &Path, what: impl std::fmt::Display) -> String {
    format!("{}: {what}", path.display())
}

fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(problem(path, e)),
    }
}

/// Every `NNN-short-name/` case under `dir`, in name order; every
/// expected document is checked to parse.
pub fn load(dir: &Path) -> Result<Vec<XsiCase>, String> {
    let mut dirs: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| problem(dir, e))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for (name, path) in dirs {
        let valid = name.len() > 4
            && name.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && name.as_bytes()[3] == b'-';
        if !valid {
            return Err(problem(&path, "not a case directory name (NNN-short-name)"));
        }
        let toml_path = path.join("case.toml");
        let text = read(&toml_path)?.ok_or_else(|| problem(&toml_path, "missing"))?;
        let file: CaseFile = toml::from_str(&text).map_err(|e| problem(&toml_path, e))?;
        let mut steps = Vec::new();
        // `{{NAME}}`s the earlier steps save.
        let mut known: Vec<String> = vec![USER.to_string()];
        for (i, spec) in file.step.into_iter().enumerate() {
            let n = format!("{:02}", i + 1);
            let body = read(&path.join(format!("{n}-request.xml")))?;
            let xml_path = path.join(format!("{n}-expected.xml"));
            let json_path = path.join(format!("{n}-expected.json"));
            let expected = match (read(&xml_path)?, read(&json_path)?) {
                (Some(_), Some(_)) => {
                    return Err(problem(&path, format!("step {n} has two expected files")))
                }
                (Some(x), None) => {
                    parse_str(&x.replace("{{user}}", "u@x.example"), &limits())
                        .map_err(|e| problem(&xml_path, e))?;
                    Expected::Xml(x)
                }
                (None, Some(j)) => {
                    Expected::Json(serde_json::from_str(&j).map_err(|e| problem(&json_path, e))?)
                }
                (None, None) => Expected::Nothing,
            };
            let expected_text = match &expected {
                Expected::Xml(x) => x.clone(),
                Expected::Json(j) => j.to_string(),
                Expected::Nothing => String::new(),
            };
            if spec.empty && !matches!(expected, Expected::Nothing) {
                return Err(problem(
                    &path,
                    format!("step {n}: empty = true and an expected document"),
                ));
            }
            let mut used = placeholders(&spec.path);
            used.extend(placeholders(body.as_deref().unwrap_or("")));
            used.extend(placeholders(&expected_text));
            for (_, v) in spec.headers.iter().chain(&spec.expect_headers) {
                used.extend(placeholders(v));
            }
            if let Some(name) = used.iter().find(|u| !known.contains(u)) {
                return Err(problem(
                    &path,
                    format!("step {n}: {{{{{name}}}}} is not saved by an earlier step"),
                ));
            }
            known.extend(saved_names(&expected_text));
            steps.push(XsiStep {
                spec,
                body,
                expected,
            });
        }
        if steps.is_empty() {
            return Err(problem(&toml_path, "no [[step]]"));
        }
        cases.push(XsiCase {
            name,
            description: file.description,
            steps,
        });
    }
    if cases.is_empty() {
        return Err(problem(dir, "no cases"));
    }
    Ok(cases)
}

fn limits() -> XsiLimits {
    XsiLimits::from(&crate::config::LimitsConfig::default())
}

/// The first difference between an expected and an actual element tree.
pub fn compare_xml(expected: &Element, actual: &Element, at: &str) -> Result<(), String> {
    compare_xml_saving(expected, actual, at, &mut Saved::new())
}

/// [`compare_xml`], keeping the texts of `(saved as NAME)` in `saved`.
pub fn compare_xml_saving(
    expected: &Element,
    actual: &Element,
    at: &str,
    saved: &mut Saved,
) -> Result<(), String> {
    let here = format!("{at}/{}", expected.name);
    if expected.name != actual.name || expected.namespace != actual.namespace {
        return Err(format!(
            "{here}: expected <{}> in {:?}, got <{}> in {:?}",
            expected.name, expected.namespace, actual.name, actual.namespace
        ));
    }
    if let Some(name) = saved_name(&expected.text) {
        if actual.text.is_empty() {
            return Err(format!(
                "{here}: expected a text to save as {{{{{name}}}}}, got none"
            ));
        }
        save(saved, name, &actual.text);
    } else if expected.text != NOT_COMPARED && expected.text != actual.text {
        return Err(format!(
            "{here}: expected text {:?}, got {:?}",
            expected.text, actual.text
        ));
    }
    if expected.attributes != actual.attributes || expected.nil != actual.nil {
        return Err(format!(
            "{here}: expected attributes {:?} (nil {}), got {:?} (nil {})",
            expected.attributes, expected.nil, actual.attributes, actual.nil
        ));
    }
    let names = |e: &Element| {
        e.children
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    if expected.children.len() != actual.children.len() {
        return Err(format!(
            "{here}: expected children {:?}, got {:?}",
            names(expected),
            names(actual)
        ));
    }
    for (e, a) in expected.children.iter().zip(&actual.children) {
        compare_xml_saving(e, a, &here, saved)?;
    }
    Ok(())
}

/// The first difference between an expected and an actual JSON value.
pub fn compare_json(
    expected: &serde_json::Value,
    actual: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    compare_json_saving(expected, actual, at, &mut Saved::new())
}

/// [`compare_json`], keeping the strings of `(saved as NAME)` in `saved`.
pub fn compare_json_saving(
    expected: &serde_json::Value,
    actual: &serde_json::Value,
    at: &str,
    saved: &mut Saved,
) -> Result<(), String> {
    use serde_json::Value;
    match (expected, actual) {
        (Value::String(s), _) if s == NOT_COMPARED => Ok(()),
        (Value::String(s), _) if saved_name(s).is_some() => {
            let name = saved_name(s).unwrap_or_default();
            match actual {
                Value::String(a) if !a.is_empty() => save(saved, name, a),
                Value::Number(n) => save(saved, name, &n.to_string()),
                _ => {
                    return Err(format!(
                        "{at}: expected a string to save as {{{{{name}}}}}, got {actual}"
                    ))
                }
            }
            Ok(())
        }
        (Value::Object(e), Value::Object(a)) => {
            let ek: Vec<&String> = e.keys().collect();
            let ak: Vec<&String> = a.keys().collect();
            if ek != ak {
                return Err(format!("{at}: expected keys {ek:?}, got {ak:?}"));
            }
            for (k, v) in e {
                compare_json_saving(v, &a[k], &format!("{at}.{k}"), saved)?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare_json_saving(ev, av, &format!("{at}[{i}]"), saved)?;
            }
            Ok(())
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {actual}")),
    }
}

/// A server to replay against, as one XSI user.
pub struct XsiTarget {
    pub client: HttpsClient,
    pub user: String,
    pub password: String,
    pub timeout: Duration,
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl XsiTarget {
    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> Result<crate::client::ClientResponse, String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut b = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        for (k, v) in headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if body.is_some() {
            b = b.header("content-type", "application/xml");
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())
    }

    /// A bearer token for the user, from the auth service (Basic).
    pub async fn bearer(&self) -> Result<String, String> {
        let resp = self
            .send(
                "GET",
                &format!("/authService/token/{}", self.user),
                Some(&basic(&self.user, &self.password)),
                &[],
                None,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("the token answer ({}) is not JSON: {e}", resp.status))?;
        v["token"]["bearer"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no token.bearer in {v}"))
    }

    /// Runs one case; `Err` names the step and the first difference.
    pub async fn run(&self, case: &XsiCase, bearer: &str) -> Result<(), String> {
        // `{{user}}` is a value saved before the first step.
        let mut saved: Saved = vec![(USER.to_string(), self.user.clone())];
        for (i, step) in case.steps.iter().enumerate() {
            let n = i + 1;
            let s = &step.spec;
            let fill = |t: &str| fill_saved(t, &saved, false);
            let fill_xml = |t: &str| fill_saved(t, &saved, true);
            let auth = match s.auth {
                XsiAuth::Bearer => Some(format!("Bearer {bearer}")),
                XsiAuth::Basic => Some(basic(&self.user, &self.password)),
                XsiAuth::WrongPassword => Some(basic(&self.user, "not-the-password")),
                XsiAuth::None => None,
            };
            let mut headers: Vec<(String, String)> = s
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), fill(v)))
                .collect();
            if let Some(a) = &s.accept {
                headers.push(("accept".into(), a.clone()));
            }
            let body = step.body.as_deref().map(fill_xml);
            let resp = self
                .send(
                    &s.method,
                    &fill(&s.path),
                    auth.as_deref(),
                    &headers,
                    body.as_deref(),
                )
                .await
                .map_err(|e| format!("step {n:02}: {e}"))?;
            let text = String::from_utf8_lossy(&resp.body).into_owned();
            if resp.status.as_u16() != s.status {
                return Err(format!(
                    "step {n:02}: expected status {}, got {}\n{text}",
                    s.status, resp.status
                ));
            }
            for (name, value) in &s.expect_headers {
                let value = fill(value);
                let got: Vec<&str> = resp
                    .headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                if !got.contains(&value.as_str()) {
                    return Err(format!(
                        "step {n:02}: expected header {name}: {value:?}, got {got:?}\n{text}"
                    ));
                }
            }
            if s.empty && !resp.body.is_empty() {
                return Err(format!(
                    "step {n:02}: expected no body, got {} bytes\n{text}",
                    resp.body.len()
                ));
            }
            match &step.expected {
                Expected::Nothing => {}
                Expected::Xml(x) => {
                    let expected = parse_str(&fill_xml(x), &limits())
                        .map_err(|e| format!("step {n:02}: expected document: {e}"))?;
                    let actual = parse_str(&text, &limits())
                        .map_err(|e| format!("step {n:02}: the answer is not XML: {e}\n{text}"))?;
                    compare_xml_saving(&expected, &actual, "", &mut saved)
                        .map_err(|d| format!("step {n:02}: {d}\n{text}"))?;
                }
                Expected::Json(j) => {
                    let expected = fill_json(j, &fill);
                    let actual: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("step {n:02}: the answer is not JSON: {e}\n{text}"))?;
                    compare_json_saving(&expected, &actual, "$", &mut saved)
                        .map_err(|d| format!("step {n:02}: {d}\n{text}"))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(x: &str) -> Element {
        parse_str(x, &limits()).unwrap()
    }

    #[test]
    fn xml_trees_compare_with_a_wildcard_for_text() {
        let e = tree("<a xmlns='n'><b>(not compared)</b><c k='1'>x</c></a>");
        assert!(compare_xml(&e, &tree("<a xmlns='n'><b>zz</b><c k='1'>x</c></a>"), "").is_ok());
        let d = compare_xml(&e, &tree("<a xmlns='n'><b>zz</b><c k='2'>x</c></a>"), "").unwrap_err();
        assert!(d.contains("/a/c"), "{d}");
        assert!(compare_xml(&e, &tree("<a xmlns='n'><b/></a>"), "").is_err());
        assert!(
            compare_xml(&e, &tree("<a><b>zz</b><c k='1'>x</c></a>"), "").is_err(),
            "namespace"
        );
    }

    #[test]
    fn json_values_compare_with_a_wildcard() {
        let e = serde_json::json!({"t": {"bearer": "(not compared)"}, "n": [1, 2]});
        assert!(compare_json(
            &e,
            &serde_json::json!({"t": {"bearer": "x.y.z"}, "n": [1, 2]}),
            "$"
        )
        .is_ok());
        let d = compare_json(
            &e,
            &serde_json::json!({"t": {"bearer": "x"}, "n": [1, 3]}),
            "$",
        )
        .unwrap_err();
        assert!(d.contains("$.n[1]"), "{d}");
        assert!(compare_json(&e, &serde_json::json!({"t": {}, "n": [1, 2]}), "$").is_err());
    }

    #[test]
    fn saved_texts_are_kept_for_later_steps_and_filled_in() {
        let e = tree("<s xmlns='n'><id>(saved as sub)</id><x>(not compared)</x></s>");
        let mut saved = Saved::new();
        compare_xml_saving(
            &e,
            &tree("<s xmlns='n'><id>a&amp;b</id><x>1</x></s>"),
            "",
            &mut saved,
        )
        .unwrap();
        assert_eq!(saved, vec![("sub".to_string(), "a&b".to_string())]);
        let d = compare_xml_saving(&e, &tree("<s xmlns='n'><id/><x>1</x></s>"), "", &mut saved)
            .unwrap_err();
        assert!(d.contains("/s/id") && d.contains("{{sub}}"), "{d}");
        assert_eq!(fill_saved("/x/{{sub}}", &saved, false), "/x/a&b");
        assert_eq!(fill_saved("<i>{{sub}}</i>", &saved, true), "<i>a&amp;b</i>");
        assert_eq!(saved_name("(saved as user)"), None);
        assert_eq!(saved_name("(saved as a b)"), None);

        let mut saved = Saved::new();
        let j = serde_json::json!({"s": {"id": "(saved as sub)"}});
        compare_json_saving(&j, &serde_json::json!({"s": {"id": "x"}}), "$", &mut saved).unwrap();
        assert_eq!(saved, vec![("sub".to_string(), "x".to_string())]);
        assert!(
            compare_json_saving(&j, &serde_json::json!({"s": {"id": null}}), "$", &mut saved)
                .is_err()
        );
        let filled = fill_json(&serde_json::json!({"p": ["{{sub}}", 1]}), &|t: &str| {
            fill_saved(t, &saved, false)
        });
        assert_eq!(filled, serde_json::json!({"p": ["x", 1]}));
    }

    #[test]
    fn a_placeholder_must_be_saved_by_an_earlier_step() {
        let dir = tempfile::tempdir().unwrap();
        let case = dir.path().join("001-save-then-use");
        std::fs::create_dir(&case).unwrap();
        std::fs::write(
            case.join("case.toml"),
            "description = \"d\"\n[[step]]\nmethod = \"POST\"\npath = \"/a\"\nstatus = 200\n\
             [[step]]\npath = \"/a/{{sub}}\"\nstatus = 200\nempty = true\n\
             expect_headers = [[\"Allow\", \"{{sub}}\"]]\n",
        )
        .unwrap();
        std::fs::write(
            case.join("01-expected.xml"),
            "<S xmlns='n'><id>(saved as sub)</id></S>",
        )
        .unwrap();
        let cases = load(dir.path()).unwrap();
        assert!(cases[0].steps[1].spec.empty);
        assert_eq!(cases[0].steps[1].spec.expect_headers.len(), 1);

        std::fs::write(case.join("01-expected.xml"), "<S xmlns='n'><id>x</id></S>").unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.contains("step 02") && e.contains("{{sub}}"), "{e}");

        std::fs::write(
            case.join("02-expected.xml"),
            "<S xmlns='n'><id>(saved as sub)</id></S>",
        )
        .unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.contains("empty = true"), "{e}");
    }
}
