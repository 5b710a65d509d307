//! XSI conformance cases (`bwgate replay --xsi DIR`): recorded Xsi-Actions
//! and auth-service requests with the answers a correct server gives, run
//! as one XSI user (`--user` / `--password`: BroadWorks credentials the
//! server's XSP accepts; the user must be provisioned already).
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
//! `(not compared)` matches anything (tokens, tracking ids).

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
    let here = format!("{at}/{}", expected.name);
    if expected.name != actual.name || expected.namespace != actual.namespace {
        return Err(format!(
            "{here}: expected <{}> in {:?}, got <{}> in {:?}",
            expected.name, expected.namespace, actual.name, actual.namespace
        ));
    }
    if expected.text != NOT_COMPARED && expected.text != actual.text {
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
        compare_xml(e, a, &here)?;
    }
    Ok(())
}

/// The first difference between an expected and an actual JSON value.
pub fn compare_json(
    expected: &serde_json::Value,
    actual: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    match (expected, actual) {
        (Value::String(s), _) if s == NOT_COMPARED => Ok(()),
        (Value::Object(e), Value::Object(a)) => {
            let ek: Vec<&String> = e.keys().collect();
            let ak: Vec<&String> = a.keys().collect();
            if ek != ak {
                return Err(format!("{at}: expected keys {ek:?}, got {ak:?}"));
            }
            for (k, v) in e {
                compare_json(v, &a[k], &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare_json(ev, av, &format!("{at}[{i}]"))?;
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
        for (i, step) in case.steps.iter().enumerate() {
            let n = i + 1;
            let s = &step.spec;
            let fill = |t: &str| t.replace("{{user}}", &self.user);
            let auth = match s.auth {
                XsiAuth::Bearer => Some(format!("Bearer {bearer}")),
                XsiAuth::Basic => Some(basic(&self.user, &self.password)),
                XsiAuth::WrongPassword => Some(basic(&self.user, "not-the-password")),
                XsiAuth::None => None,
            };
            let mut headers: Vec<(String, String)> = s.headers.clone();
            if let Some(a) = &s.accept {
                headers.push(("accept".into(), a.clone()));
            }
            let body = step.body.as_deref().map(fill);
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
            match &step.expected {
                Expected::Nothing => {}
                Expected::Xml(x) => {
                    let expected = parse_str(&fill(x), &limits())
                        .map_err(|e| format!("step {n:02}: expected document: {e}"))?;
                    let actual = parse_str(&text, &limits())
                        .map_err(|e| format!("step {n:02}: the answer is not XML: {e}\n{text}"))?;
                    compare_xml(&expected, &actual, "")
                        .map_err(|d| format!("step {n:02}: {d}\n{text}"))?;
                }
                Expected::Json(j) => {
                    let expected: serde_json::Value =
                        serde_json::from_str(&fill(&j.to_string())).map_err(|e| e.to_string())?;
                    let actual: serde_json::Value = serde_json::from_str(&text)
                        .map_err(|e| format!("step {n:02}: the answer is not JSON: {e}\n{text}"))?;
                    compare_json(&expected, &actual, "$")
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
}
