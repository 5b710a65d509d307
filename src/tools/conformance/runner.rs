//! Replaying cases against a bwgate server and reporting what differed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, Uri};

use super::case::{Auth, Case, Step};
use super::matcher::{compare, Mismatch};
use super::render::{is_valid_run_token, new_run_token};
use super::ConformanceError;
use crate::client::{ClientResponse, HttpsClient};

/// Logical template names and the provisioningIds they map to by default
/// (override with `--template NAME=ID`).
pub const DEFAULT_TEMPLATES: [(&str, &str); 5] = [
    ("trusted", "conformance-trusted"),
    ("untrusted", "conformance-untrusted"),
    ("group", "conformance-group"),
    ("wholesale", "conformance-wholesale"),
    ("unknown", "no-such-template"),
];

/// Password sent by `auth = "wrong-password"` steps.
pub const WRONG_PASSWORD: &str = "wrong-password-0";

/// Path of the flow-through face under the base URL.
const PROVISIONING_PATH: &str = "/uc-one/v1/provisioning/";
/// Pause between the tries of a `retry_until_ms` step.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How much of an unexpected body a report shows.
const BODY_SHOWN: usize = 1500;

/// The server a replay talks to, and how.
#[derive(Clone)]
pub struct ReplayTarget {
    client: HttpsClient,
    /// `host:port` for the Host header.
    authority: String,
    /// Path prefix of the base URL (usually empty).
    base_path: String,
    templates: BTreeMap<String, String>,
    user: String,
    password: String,
    run_token: String,
    timeout: Duration,
}

impl ReplayTarget {
    /// A target for `base_url` (`https://host:port`, optionally with a
    /// path prefix), resolving the host now. Templates start as
    /// [`DEFAULT_TEMPLATES`]; the run token is fresh.
    pub async fn new(
        base_url: &str,
        tls: rustls::ClientConfig,
        user: &str,
        password: &str,
    ) -> Result<ReplayTarget, ConformanceError> {
        let url_error = |message: &str| ConformanceError::Url {
            url: base_url.to_string(),
            message: message.to_string(),
        };
        let uri: Uri = base_url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| url_error(&e.to_string()))?;
        if uri.scheme_str() != Some("https") {
            return Err(url_error("expected https://host:port"));
        }
        let authority = uri.authority().ok_or_else(|| url_error("no host"))?.clone();
        if authority.as_str().contains('@') {
            return Err(url_error(
                "credentials go in --user / --password, not the URL",
            ));
        }
        if uri.query().is_some() {
            return Err(url_error("a query string is not allowed"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ConformanceError::Resolve {
                host: host.clone(),
                message: e.to_string(),
            })?
            .next()
            .ok_or_else(|| ConformanceError::Resolve {
                host: host.clone(),
                message: "no address".into(),
            })?;
        let client = HttpsClient::new(addr, &host, tls)?;
        Ok(ReplayTarget {
            client,
            authority: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
            templates: DEFAULT_TEMPLATES
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user: user.to_string(),
            password: password.to_string(),
            run_token: new_run_token(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Maps a logical template name to a provisioningId.
    pub fn with_template(mut self, name: &str, provisioning_id: &str) -> Self {
        self.templates
            .insert(name.to_string(), provisioning_id.to_string());
        self
    }

    /// Uses a given run token instead of a fresh one (to reproduce a run).
    pub fn with_run_token(mut self, token: &str) -> Result<Self, ConformanceError> {
        if !is_valid_run_token(token) {
            return Err(ConformanceError::RunToken(token.to_string()));
        }
        self.run_token = token.to_string();
        Ok(self)
    }

    /// Time allowed for one request (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn run_token(&self) -> &str {
        &self.run_token
    }

    pub fn templates(&self) -> &BTreeMap<String, String> {
        &self.templates
    }

    fn build(&self, step: &Step, body: Vec<u8>) -> Result<Request<Full<Bytes>>, String> {
        let spec = &step.spec;
        let provisioning_id = self.templates.get(&spec.template).ok_or_else(|| {
            format!(
                "unknown template name {:?} (known: {}; add one with --template NAME=ID)",
                spec.template,
                self.templates
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let mut builder = Request::builder()
            .method(spec.method.as_str())
            .uri(format!(
                "{}{PROVISIONING_PATH}{provisioning_id}",
                self.base_path
            ))
            .header(HOST, &self.authority);
        if !spec.content_type.is_empty() {
            builder = builder.header(CONTENT_TYPE, &spec.content_type);
        }
        let password = match spec.auth {
            Auth::Valid => Some(self.password.as_str()),
            Auth::WrongPassword => Some(WRONG_PASSWORD),
            Auth::None => None,
        };
        if let Some(password) = password {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", self.user));
            builder = builder.header(AUTHORIZATION, format!("Basic {token}"));
        }
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<ClientResponse, String> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

/// `NAME=ID` (a `--template` flag) → (name, id).
pub fn parse_template_flag(flag: &str) -> Result<(String, String), ConformanceError> {
    match flag.split_once('=') {
        Some((name, id))
            if !name.trim().is_empty() && !id.trim().is_empty() && !id.contains('/') =>
        {
            Ok((name.trim().to_string(), id.trim().to_string()))
        }
        _ => Err(ConformanceError::TemplateFlag(flag.to_string())),
    }
}

/// Why a step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The answer differed in a stable field.
    Mismatch(Mismatch),
    /// No answer (connection, TLS, timeout).
    Transport(String),
    /// The step could not be sent (unknown template name, …).
    Setup(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Mismatch(m) => m.fmt(f),
            Problem::Transport(e) => write!(f, "no answer: {e}"),
            Problem::Setup(e) => write!(f, "not sent: {e}"),
        }
    }
}

/// The first failing step of a case (later steps are not sent: they
/// build on it).
#[derive(Debug, Clone)]
pub struct StepFailure {
    pub step: u32,
    pub request_file: PathBuf,
    pub expected_file: PathBuf,
    pub problems: Vec<Problem>,
    /// The answer, when there was one.
    pub actual_status: Option<u16>,
    pub actual_body: Option<String>,
    /// How often the step was sent (> 1 with `retry_until_ms`).
    pub attempts: u32,
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub name: String,
    pub description: String,
    pub steps: usize,
    /// `None`: every step matched.
    pub failure: Option<StepFailure>,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

impl fmt::Display for CaseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        write!(f, "{verdict} {}", self.name)?;
        if !self.description.is_empty() {
            write!(f, " - {}", self.description)?;
        }
        writeln!(f)?;
        let Some(failure) = &self.failure else {
            return Ok(());
        };
        writeln!(
            f,
            "     step {:02} of {} ({} vs {}){}:",
            failure.step,
            self.steps,
            file_name(&failure.request_file),
            file_name(&failure.expected_file),
            if failure.attempts > 1 {
                format!(", {} attempts", failure.attempts)
            } else {
                String::new()
            }
        )?;
        for problem in &failure.problems {
            match problem {
                Problem::Mismatch(m) => {
                    writeln!(f, "       {}", m.what())?;
                    writeln!(f, "         - expected: {}", m.expected())?;
                    writeln!(f, "         + actual:   {}", m.actual())?;
                }
                other => writeln!(f, "       {other}")?,
            }
        }
        if let (Some(status), Some(body)) = (failure.actual_status, &failure.actual_body) {
            writeln!(f, "       actual answer: HTTP {status}")?;
            for line in body.lines() {
                writeln!(f, "         | {line}")?;
            }
        }
        Ok(())
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// Every case's outcome.
#[derive(Debug, Clone)]
pub struct Report {
    pub run_token: String,
    pub cases: Vec<CaseReport>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed()
    }

    pub fn all_passed(&self) -> bool {
        self.failed() == 0
    }

    /// `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            case.fmt(f)?;
        }
        writeln!(f, "{}", self.summary())
    }
}

/// Replays every case, one after the other (steps in order, a fresh
/// connection per request).
pub async fn run(cases: &[Case], target: &ReplayTarget) -> Report {
    run_each(cases, target, |_| {}).await
}

/// As [`run`], calling `on_case` as each case finishes (for progress).
pub async fn run_each(
    cases: &[Case],
    target: &ReplayTarget,
    mut on_case: impl FnMut(&CaseReport),
) -> Report {
    let mut reports = Vec::with_capacity(cases.len());
    for case in cases {
        let report = run_case(case, target).await;
        on_case(&report);
        reports.push(report);
    }
    Report {
        run_token: target.run_token.clone(),
        cases: reports,
    }
}

async fn run_case(case: &Case, target: &ReplayTarget) -> CaseReport {
    let mut failure = None;
    for step in &case.steps {
        if let Err(f) = run_step(step, target).await {
            failure = Some(f);
            break;
        }
    }
    CaseReport {
        name: case.name.clone(),
        description: case.description.clone(),
        steps: case.steps.len(),
        failure,
    }
}

async fn run_step(step: &Step, target: &ReplayTarget) -> Result<(), StepFailure> {
    let fail =
        |problems: Vec<Problem>, attempts: u32, answer: Option<&ClientResponse>| StepFailure {
            step: step.number,
            request_file: step.request_file.clone(),
            expected_file: step.expected_file.clone(),
            problems,
            actual_status: answer.map(|a| a.status.as_u16()),
            actual_body: answer.map(|a| shown_body(&a.body)),
            attempts,
        };
    let run = target.run_token();
    let prepared = step
        .render_request(run)
        .and_then(|body| step.expectation(run).map(|exp| (body, exp)));
    let (body, expected) = match prepared {
        Ok(v) => v,
        Err(e) => return Err(fail(vec![Problem::Setup(e.to_string())], 0, None)),
    };
    let deadline = Instant::now() + Duration::from_millis(step.spec.retry_until_ms);
    let mut attempts = 0;
    loop {
        let req = match target.build(step, body.clone()) {
            Ok(r) => r,
            Err(e) => return Err(fail(vec![Problem::Setup(e)], attempts, None)),
        };
        attempts += 1;
        let (problems, answer) = match target.send(req).await {
            Ok(resp) => {
                let mismatches = compare(&expected, resp.status.as_u16(), &resp.body);
                if mismatches.is_empty() {
                    return Ok(());
                }
                (
                    mismatches.into_iter().map(Problem::Mismatch).collect(),
                    Some(resp),
                )
            }
            Err(e) => (vec![Problem::Transport(e)], None),
        };
        if Instant::now() + RETRY_PAUSE > deadline {
            return Err(fail(problems, attempts, answer.as_ref()));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// A body for a report: lossy UTF-8, at most [`BODY_SHOWN`] characters.
fn shown_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(BODY_SHOWN).collect();
    if text.chars().count() > BODY_SHOWN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_flags() {
        assert_eq!(
            parse_template_flag("trusted=acme-1").unwrap(),
            ("trusted".to_string(), "acme-1".to_string())
        );
        for bad in ["trusted", "=x", "x=", "x=a/b"] {
            assert!(parse_template_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_lines_and_summary() {
        let ok = CaseReport {
            name: "001-ok".into(),
            description: "fine".into(),
            steps: 1,
            failure: None,
        };
        let bad = CaseReport {
            name: "002-bad".into(),
            description: String::new(),
            steps: 2,
            failure: Some(StepFailure {
                step: 2,
                request_file: "x/002-bad/02-request.xml".into(),
                expected_file: "x/002-bad/02-expected.xml".into(),
                problems: vec![
                    Problem::Mismatch(Mismatch::HttpStatus {
                        expected: 200,
                        actual: 400,
                    }),
                    Problem::Transport("reset".into()),
                ],
                actual_status: Some(400),
                actual_body: Some("<ErrorInfo/>".into()),
                attempts: 1,
            }),
        };
        let report = Report {
            run_token: "t".into(),
            cases: vec![ok, bad],
        };
        assert_eq!(report.summary(), "1 passed, 1 failed");
        assert!(!report.all_passed());
        let text = report.to_string();
        assert!(
            text.starts_with("PASS 001-ok - fine\nFAIL 002-bad\n"),
            "{text}"
        );
        assert!(
            text.contains("step 02 of 2 (02-request.xml vs 02-expected.xml):"),
            "{text}"
        );
        assert!(text.contains("- expected: 200\n"), "{text}");
        assert!(text.contains("+ actual:   400\n"), "{text}");
        assert!(text.contains("no answer: reset"), "{text}");
        assert!(text.contains("| <ErrorInfo/>"), "{text}");
        assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(BODY_SHOWN + 10);
        let shown = shown_body(body.as_bytes());
        assert_eq!(shown.chars().count(), BODY_SHOWN + 1);
        assert!(shown.ends_with('…'));
    }
}
