//! Loading a conformance directory: `NNN-short-name/` cases, each with
//! numbered `NN-request.xml` / `NN-expected.xml` steps and an optional
//! `case.toml`. Everything is checked at load (placeholders, repeats,
//! that every expected file parses), and each problem names its file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::matcher::{normalize, Document, Expected, PROVISIONING_RESPONSE};
use super::render::{render_document, root_local_name};
use super::ConformanceError;
use crate::domain::ErrorCode;

/// The optional per-case settings file.
pub const CASE_FILE: &str = "case.toml";
/// The subdirectory of XSI cases, which the flow-through loader skips.
pub const XSI_DIR: &str = "xsi";
/// Template name used when a step names none.
pub const DEFAULT_TEMPLATE: &str = "trusted";
/// Largest `repeat` and `pad_bytes` a step may ask for.
pub const MAX_REPEAT: usize = 100_000;
pub const MAX_PAD_BYTES: usize = 64 * 1024 * 1024;
/// Longest `retry_until_ms`.
pub const MAX_RETRY_MS: u64 = 600_000;
/// Run token used to check documents at load time.
const CHECK_TOKEN: &str = "0123456789abcd";

/// How a step authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// HTTP Basic with the replay's `--user` / `--password`.
    #[default]
    Valid,
    /// HTTP Basic with the right user and a wrong password.
    WrongPassword,
    /// No `Authorization` header.
    None,
}

/// One `[[step]]` table of `case.toml`; every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepSpec {
    /// Logical template name (`trusted`, `untrusted`, `group`,
    /// `wholesale`, `unknown`, or one given with `--template`).
    pub template: String,
    pub auth: Auth,
    pub method: String,
    /// `""`: send no Content-Type header.
    pub content_type: String,
    /// Expected HTTP status. Default: 200 for a `ProvisioningResponse`,
    /// the error table's status for an `ErrorInfo`'s errorCode.
    pub status: Option<u16>,
    /// When above 0, the root's content is repeated this many times
    /// (`{{i}}` = 0..N-1), in the request and in a `ProvisioningResponse`
    /// expectation.
    pub repeat: usize,
    /// When above 0, this many spaces are appended after the root.
    pub pad_bytes: usize,
    /// Whether the request must validate against the XSD.
    pub xsd_valid: bool,
    /// When above 0, the step is sent again (every 100 ms) until it
    /// matches, for at most this long. Only for idempotent requests (an
    /// identical AddUser or ModifyUser that reads the current status back).
    pub retry_until_ms: u64,
}

impl Default for StepSpec {
    fn default() -> Self {
        StepSpec {
            template: DEFAULT_TEMPLATE.to_string(),
            auth: Auth::Valid,
            method: "POST".to_string(),
            content_type: "application/xml".to_string(),
            status: None,
            repeat: 0,
            pad_bytes: 0,
            xsd_valid: true,
            retry_until_ms: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    step: Vec<StepSpec>,
}

/// One request/expectation pair of a case.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based, as in the file names.
    pub number: u32,
    pub request_file: PathBuf,
    pub request: Vec<u8>,
    pub expected_file: PathBuf,
    pub expected: Vec<u8>,
    pub spec: StepSpec,
    /// The expected HTTP status (explicit or derived).
    pub status: u16,
}

impl Step {
    /// The bytes to send for run token `run`.
    pub fn render_request(&self, run: &str) -> Result<Vec<u8>, ConformanceError> {
        render_document(&self.request, run, self.spec.repeat, self.spec.pad_bytes).map_err(
            |source| ConformanceError::Render {
                path: self.request_file.clone(),
                source,
            },
        )
    }

    /// The expected document for run token `run` (repeated like the
    /// request when it is a `ProvisioningResponse`).
    pub fn render_expected(&self, run: &str) -> Result<Vec<u8>, ConformanceError> {
        let repeat = if root_local_name(&self.expected) == Some(PROVISIONING_RESPONSE.as_bytes()) {
            self.spec.repeat
        } else {
            0
        };
        render_document(&self.expected, run, repeat, 0).map_err(|source| ConformanceError::Render {
            path: self.expected_file.clone(),
            source,
        })
    }

    /// What the step expects for run token `run`.
    pub fn expectation(&self, run: &str) -> Result<Expected, ConformanceError> {
        let bytes = self.render_expected(run)?;
        let document = normalize(&bytes).map_err(|source| ConformanceError::Expected {
            path: self.expected_file.clone(),
            source,
        })?;
        Ok(Expected {
            status: self.status,
            document,
        })
    }

    /// `01`, `02`, … as in the file names.
    pub fn label(&self) -> String {
        format!("{:02}", self.number)
    }
}

/// One case directory.
#[derive(Debug, Clone)]
pub struct Case {
    /// The directory name, `NNN-short-name`.
    pub name: String,
    pub dir: PathBuf,
    pub description: String,
    pub steps: Vec<Step>,
}

/// Loads every `NNN-short-name/` directory under `dir`, in name order.
/// Files directly in `dir` (README, config) and hidden entries are
/// ignored; any other directory name is an error.
pub fn load_cases(dir: &Path) -> Result<Vec<Case>, ConformanceError> {
    let mut dirs = Vec::new();
    for (name, path, is_dir) in entries(dir)? {
        // `xsi/` holds the XSI cases (`bwgate replay --xsi`).
        if !is_dir || name == XSI_DIR {
            continue;
        }
        if case_number(&name).is_none() {
            return Err(invalid(
                &path,
                "not a case directory name: expected NNN-short-name (three digits, '-', letters, digits, '-', '_' or '.')",
            ));
        }
        dirs.push((name, path));
    }
    dirs.sort();
    let mut numbers: BTreeMap<u32, String> = BTreeMap::new();
    let mut cases = Vec::with_capacity(dirs.len());
    for (name, path) in dirs {
        let number = case_number(&name).unwrap_or_default();
        if let Some(other) = numbers.insert(number, name.clone()) {
            return Err(invalid(
                &path,
                format!("case number {number:03} is also used by {other}"),
            ));
        }
        cases.push(load_case(&name, &path)?);
    }
    if cases.is_empty() {
        return Err(ConformanceError::NoCases {
            path: dir.to_path_buf(),
        });
    }
    Ok(cases)
}

/// `NNN-rest` → NNN, when `rest` is a non-empty short name.
fn case_number(name: &str) -> Option<u32> {
    let (digits, rest) = name.split_once('-')?;
    let ok_digits = digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit());
    let ok_rest = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok_digits && ok_rest {
        digits.parse().ok()
    } else {
        None
    }
}

/// `NN-request.xml` / `NN-expected.xml` → (NN, is_request).
fn step_file(name: &str) -> Option<(u32, bool)> {
    let (digits, rest) = name.split_once('-')?;
    if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let is_request = match rest {
        "request.xml" => true,
        "expected.xml" => false,
        _ => return None,
    };
    Some((digits.parse().ok()?, is_request))
}

/// Directory entries as (name, path, is_dir), hidden ones skipped.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, ConformanceError> {
    let io = |source| ConformanceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(invalid(&path, "file name is not UTF-8"));
        };
        if name.starts_with('.') {
            continue;
        }
        let is_dir = entry
            .file_type()
            .map_err(|source| ConformanceError::Io {
                path: path.clone(),
                source,
            })?
            .is_dir();
        out.push((name, path, is_dir));
    }
    Ok(out)
}

fn load_case(name: &str, dir: &Path) -> Result<Case, ConformanceError> {
    let mut files: BTreeMap<u32, (Option<PathBuf>, Option<PathBuf>)> = BTreeMap::new();
    let mut case_file = None;
    for (file, path, is_dir) in entries(dir)? {
        if file == CASE_FILE && !is_dir {
            case_file = Some(path);
        } else if let Some((n, is_request)) = step_file(&file).filter(|_| !is_dir) {
            let slot = files.entry(n).or_default();
            let target = if is_request { &mut slot.0 } else { &mut slot.1 };
            if let Some(other) = target.replace(path.clone()) {
                return Err(invalid(
                    &path,
                    format!("step {n:02} is also given by {}", other.display()),
                ));
            }
        } else if is_dir || !file.ends_with(".md") {
            return Err(invalid(
                &path,
                "unexpected entry: a case holds NN-request.xml, NN-expected.xml, case.toml (and *.md notes)",
            ));
        }
    }
    if files.is_empty() {
        return Err(invalid(
            dir,
            "no steps: a case needs at least 01-request.xml and 01-expected.xml",
        ));
    }
    let (description, mut specs) = match &case_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
                path: path.clone(),
                source,
            })?;
            let parsed: CaseFile =
                toml::from_str(&text).map_err(|source| ConformanceError::CaseToml {
                    path: path.clone(),
                    source,
                })?;
            (parsed.description.unwrap_or_default(), parsed.step)
        }
        None => (String::new(), Vec::new()),
    };
    let toml_path = dir.join(CASE_FILE);
    if specs.len() > files.len() {
        return Err(invalid(
            &toml_path,
            format!(
                "{} [[step]] tables, but the case has {} step(s)",
                specs.len(),
                files.len()
            ),
        ));
    }
    specs.resize(files.len(), StepSpec::default());

    let mut steps = Vec::with_capacity(files.len());
    for ((expected_number, (number, (request, expected))), spec) in (1u32..).zip(files).zip(specs) {
        if number != expected_number {
            return Err(invalid(
                dir,
                format!(
                    "step {expected_number:02} is missing (steps are numbered 01, 02, … without gaps)"
                ),
            ));
        }
        let request_file = request.ok_or_else(|| {
            invalid(
                dir,
                format!("step {number:02} has no {number:02}-request.xml"),
            )
        })?;
        let expected_file = expected.ok_or_else(|| {
            invalid(
                dir,
                format!("step {number:02} has no {number:02}-expected.xml"),
            )
        })?;
        steps.push(load_step(
            number,
            request_file,
            expected_file,
            spec,
            &toml_path,
        )?);
    }
    Ok(Case {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        description,
        steps,
    })
}

fn load_step(
    number: u32,
    request_file: PathBuf,
    expected_file: PathBuf,
    spec: StepSpec,
    toml_path: &Path,
) -> Result<Step, ConformanceError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| ConformanceError::Io {
            path: path.clone(),
            source,
        })
    };
    let request = read(&request_file)?;
    let expected = read(&expected_file)?;
    check_spec(number, &spec, toml_path)?;
    let mut step = Step {
        number,
        request_file,
        request,
        expected_file,
        expected,
        spec,
        status: 0,
    };
    // Renders both sides once: catches placeholder and repeat problems
    // and unreadable expectations now, with their file names.
    step.render_request(CHECK_TOKEN)?;
    let bytes = step.render_expected(CHECK_TOKEN)?;
    let document = normalize(&bytes).map_err(|source| ConformanceError::Expected {
        path: step.expected_file.clone(),
        source,
    })?;
    step.status = match (step.spec.status, &document) {
        (Some(status), _) => status,
        (None, Document::Provisioning { .. }) => 200,
        (None, Document::ErrorInfo { error_code }) => error_code
            .as_deref()
            .and_then(|c| c.parse().ok())
            .and_then(ErrorCode::from_code)
            .map(ErrorCode::http_status)
            .ok_or_else(|| {
                invalid(
                    toml_path,
                    format!(
                        "step {number:02}: the expected ErrorInfo's errorCode {:?} is not in the error table; give `status` explicitly",
                        error_code.as_deref().unwrap_or("")
                    ),
                )
            })?,
    };
    Ok(step)
}

fn check_spec(number: u32, spec: &StepSpec, toml_path: &Path) -> Result<(), ConformanceError> {
    let problem = |msg: String| invalid(toml_path, format!("step {number:02}: {msg}"));
    if spec.template.trim().is_empty() {
        return Err(problem("template must not be empty".into()));
    }
    if hyper::Method::from_bytes(spec.method.as_bytes()).is_err() || spec.method.is_empty() {
        return Err(problem(format!(
            "method {:?} is not an HTTP method",
            spec.method
        )));
    }
    if hyper::header::HeaderValue::from_str(&spec.content_type).is_err() {
        return Err(problem(format!(
            "content_type {:?} is not a valid header value",
            spec.content_type
        )));
    }
    if let Some(status) = spec.status {
        if !(100..=599).contains(&status) {
            return Err(problem(format!("status {status} is not an HTTP status")));
        }
    }
    if spec.repeat > MAX_REPEAT {
        return Err(problem(format!("repeat must be at most {MAX_REPEAT}")));
    }
    if spec.pad_bytes > MAX_PAD_BYTES {
        return Err(problem(format!(
            "pad_bytes must be at most {MAX_PAD_BYTES}"
        )));
    }
    if spec.retry_until_ms > MAX_RETRY_MS {
        return Err(problem(format!(
            "retry_until_ms must be at most {MAX_RETRY_MS}"
        )));
    }
    Ok(())
}

fn invalid(path: &Path, message: impl Into<String>) -> ConformanceError {
    ConformanceError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "<ProvisioningRequest xmlns=\"urn:bwgate:flowthrough:1\"><AddUser><userId>u-{{run}}@x.example</userId></AddUser></ProvisioningRequest>";
    const EXP: &str = "<ProvisioningResponse xmlns=\"urn:bwgate:flowthrough:1\" trackingId=\"(not compared)\"><result operation=\"AddUser\" userId=\"u-{{run}}@x.example\" status=\"provisioning\"/></ProvisioningResponse>";
    const ERR: &str = "<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\"><errorCode>9004</errorCode></ErrorInfo>";

    fn write(dir: &Path, rel: &str, body: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    fn message(e: ConformanceError) -> String {
        e.to_string()
    }

    #[test]
    fn loads_cases_in_order_with_defaults_and_derived_statuses() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        write(d, "README.md", "notes");
        write(d, "bwgate.toml", "");
        write(d, "002-second/01-request.xml", REQ);
        write(d, "002-second/01-expected.xml", ERR);
        write(d, "001-first/01-request.xml", REQ);
        write(d, "001-first/01-expected.xml", EXP);
        write(d, "001-first/02-request.xml", REQ);
        write(d, "001-first/02-expected.xml", ERR);
        write(
            d,
            "001-first/case.toml",
            "description = \"first\"\n[[step]]\n[[step]]\nauth = \"wrong-password\"\nstatus = 403\ncontent_type = \"\"\n",
        );
        let cases = load_cases(d).unwrap();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["001-first", "002-second"]);
        let first = &cases[0];
        assert_eq!(first.description, "first");
        assert_eq!(first.steps.len(), 2);
        assert_eq!(first.steps[0].spec, StepSpec::default());
        assert_eq!(first.steps[0].status, 200, "ProvisioningResponse → 200");
        assert_eq!(first.steps[1].spec.auth, Auth::WrongPassword);
        assert_eq!(first.steps[1].spec.content_type, "");
        assert_eq!(first.steps[1].status, 403, "explicit status wins");
        assert_eq!(cases[1].steps[0].status, 401, "9004 → the table's 401");
        let exp = first.steps[0].expectation("tok").unwrap();
        match exp.document {
            Document::Provisioning { results, .. } => {
                assert_eq!(results[0].user_id.as_deref(), Some("u-tok@x.example"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repeat_applies_to_provisioning_response_expectations_only() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let req = REQ.replace("u-{{run}}", "u{{i}}-{{run}}");
        let exp = EXP.replace("u-{{run}}", "u{{i}}-{{run}}");
        write(d, "001-bulk/01-request.xml", &req);
        write(d, "001-bulk/01-expected.xml", &exp);
        write(d, "001-bulk/02-request.xml", &req);
        write(
            d,
            "001-bulk/02-expected.xml",
            "<ErrorInfo><errorCode>9018</errorCode></ErrorInfo>",
        );
        write(
            d,
            "001-bulk/case.toml",
            "[[step]]\nrepeat = 3\n[[step]]\nrepeat = 4\npad_bytes = 10\n",
        );
        let cases = load_cases(d).unwrap();
        let steps = &cases[0].steps;
        let sent = String::from_utf8(steps[0].render_request("r").unwrap()).unwrap();
        assert_eq!(sent.matches("<AddUser>").count(), 3);
        assert!(sent.contains("u2-r@x.example"), "{sent}");
        match steps[0].expectation("r").unwrap().document {
            Document::Provisioning { results, .. } => {
                let ids: Vec<_> = results.iter().map(|r| r.user_id.clone().unwrap()).collect();
                assert_eq!(
                    ids,
                    vec!["u0-r@x.example", "u1-r@x.example", "u2-r@x.example"]
                );
            }
            other => panic!("{other:?}"),
        }
        let sent = steps[1].render_request("r").unwrap();
        assert!(sent.ends_with(&[b' '; 10]));
        assert_eq!(
            steps[1].expectation("r").unwrap().document,
            Document::ErrorInfo {
                error_code: Some("9018".into())
            }
        );
        assert_eq!(steps[1].status, 413);
    }

    #[test]
    fn errors_name_the_file() {
        let exp_with_index = EXP.replace("{{run}}", "{{i}}");
        type Files<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(&str, Files<'_>, &str)> = vec![
            (
                "bad dir name",
                vec![("01-x/01-request.xml", REQ)],
                "01-x: not a case directory name",
            ),
            (
                "missing expected",
                vec![("001-a/01-request.xml", REQ)],
                "001-a: step 01 has no 01-expected.xml",
            ),
            (
                "gap",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/03-request.xml", REQ),
                    ("001-a/03-expected.xml", EXP),
                ],
                "001-a: step 02 is missing",
            ),
            (
                "stray file",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/01-expect.xml", EXP),
                ],
                "01-expect.xml: unexpected entry",
            ),
            (
                "unknown key",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/case.toml", "[[step]]\nmethdo = \"GET\"\n"),
                ],
                "case.toml: ",
            ),
            (
                "too many step tables",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/case.toml", "[[step]]\n[[step]]\n"),
                ],
                "case.toml: 2 [[step]] tables, but the case has 1 step(s)",
            ),
            (
                "bad auth",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/case.toml", "[[step]]\nauth = \"maybe\"\n"),
                ],
                "case.toml: ",
            ),
            (
                "unknown placeholder",
                vec![
                    ("001-a/01-request.xml", "<r>{{rnu}}</r>"),
                    ("001-a/01-expected.xml", EXP),
                ],
                "01-request.xml: unknown placeholder {{rnu}}",
            ),
            (
                "index outside repeat",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", &exp_with_index),
                ],
                "01-expected.xml: {{i}} is only meaningful with repeat > 0",
            ),
            (
                "unreadable expectation",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", "<result/>"),
                ],
                "01-expected.xml: the root element is <result>",
            ),
            (
                "unknown error code without status",
                vec![
                    ("001-a/01-request.xml", REQ),
                    (
                        "001-a/01-expected.xml",
                        "<ErrorInfo><errorCode>77</errorCode></ErrorInfo>",
                    ),
                ],
                "give `status` explicitly",
            ),
            (
                "bad method",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-a/case.toml", "[[step]]\nmethod = \"GE T\"\n"),
                ],
                "step 01: method \"GE T\" is not an HTTP method",
            ),
            (
                "duplicate number",
                vec![
                    ("001-a/01-request.xml", REQ),
                    ("001-a/01-expected.xml", EXP),
                    ("001-b/01-request.xml", REQ),
                    ("001-b/01-expected.xml", EXP),
                ],
                "001-b: case number 001 is also used by 001-a",
            ),
        ];
        for (what, files, want) in cases {
            let t = tempfile::tempdir().unwrap();
            for (rel, body) in files {
                write(t.path(), rel, body);
            }
            let err = message(load_cases(t.path()).expect_err(what));
            assert!(err.contains(want), "{what}: {err}");
        }
        let t = tempfile::tempdir().unwrap();
        let err = message(load_cases(t.path()).unwrap_err());
        assert!(err.contains("no case directories"), "{err}");
        let err = message(load_cases(&t.path().join("nope")).unwrap_err());
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn the_shipped_suite_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
        let cases = load_cases(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(cases.len() >= 40, "{} cases", cases.len());
        for case in &cases {
            assert!(
                !case.description.is_empty(),
                "{}: no description",
                case.name
            );
        }
    }
}
