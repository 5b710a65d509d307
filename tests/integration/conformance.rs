//! The conformance suite (`tests/conformance/`) against the real server:
//! through the library (the code path of `bwgate replay`), through the
//! `bwgate replay` binary, and every document it sends or expects checked
//! against the published XSD.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use bwgate::tools::conformance::{self, Case, ReplayTarget};

use crate::harness::{Server, BIN};

const USER: &str = "conformance";
const PASSWORD: &str = "conformance-pw1";
/// Cases the suite must keep (the brief's floor).
const MIN_CASES: usize = 40;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn cases() -> Vec<Case> {
    conformance::load_cases(&suite_dir()).unwrap_or_else(|e| panic!("loading the suite: {e}"))
}

/// One server for the tests of this file that run at the same time (the
/// last user's drop stops it), started with the suite's own config file.
fn server() -> Arc<Server> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let config = std::fs::read_to_string(suite_dir().join("bwgate.toml"))
        .expect("tests/conformance/bwgate.toml");
    let server = Arc::new(Server::start_with(Some(&config), &[]));
    import_existing_orgs(&server);
    *slot = Arc::downgrade(&server);
    server
}

/// Case 090 needs an existing organization to match: load the suite's
/// `existing-orgs.json` through the admin API, as an operator would.
fn import_existing_orgs(server: &Server) {
    use std::io::{Read, Write};
    let body = std::fs::read(suite_dir().join("existing-orgs.json")).expect("existing-orgs.json");
    let mut s = std::net::TcpStream::connect(server.admin).expect("admin listener");
    let head = format!(
        "POST /admin/v1/organizations/import HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.ops_token(),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "import: {answer}"
    );
}

fn base_url(server: &Server) -> String {
    format!("https://127.0.0.1:{}", server.https.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_the_real_server_twice() {
    let cases = cases();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} conformance cases",
        cases.len()
    );
    let server = tokio::task::spawn_blocking(server).await.expect("server");
    // Twice against the same (stateful) server: {{run}} keeps runs apart.
    let mut tokens = Vec::new();
    for round in 1..=2 {
        let target = ReplayTarget::new(&base_url(&server), server.dev_tls(true), USER, PASSWORD)
            .await
            .expect("replay target");
        let report = conformance::run(&cases, &target).await;
        assert_eq!(report.cases.len(), cases.len());
        assert!(
            report.all_passed(),
            "conformance failures in round {round} (run token {}):\n{report}\nserver {}",
            report.run_token,
            server.logs()
        );
        tokens.push(report.run_token);
    }
    assert_ne!(tokens[0], tokens[1], "each run has its own token");
}

#[test]
fn bwgate_replay_cli_passes_against_the_real_server() {
    let n = cases().len();
    let server = server();
    let certs = server.certs();
    // Relative paths, from the server's directory, like an operator would.
    let out = Command::new(BIN)
        .current_dir(server.dir.path())
        .arg("replay")
        .arg(suite_dir())
        .args(["--url", &base_url(&server)])
        .args(["--cacert", "certs/ca.crt"])
        .args(["--cert", "certs/client.crt", "--key", "certs/client.key"])
        .args(["--user", USER, "--password", PASSWORD])
        .output()
        .expect("run bwgate replay");
    assert!(certs.join("ca.crt").is_file());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bwgate replay failed ({}):\n{stdout}\n{stderr}\nserver {}",
        out.status,
        server.logs()
    );
    let summary = format!("{n} passed, 0 failed");
    assert!(
        stdout.lines().any(|l| l == summary),
        "no '{summary}' line:\n{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        n,
        "{stdout}"
    );
}

#[test]
fn bwgate_replay_reports_mismatches_and_exits_1() {
    // A one-case directory whose expectation is wrong on purpose.
    let dir = tempfile::tempdir().expect("tempdir");
    let case = dir.path().join("001-wrong-expectation");
    std::fs::create_dir(&case).expect("case dir");
    let source = suite_dir().join("030-9004-unknown-template-answers-like-bad-credentials");
    std::fs::copy(source.join("01-request.xml"), case.join("01-request.xml")).expect("copy");
    std::fs::write(
        case.join("01-expected.xml"),
        "<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\"><errorCode>9003</errorCode></ErrorInfo>",
    )
    .expect("write");
    std::fs::write(
        case.join("case.toml"),
        "description = \"wrong on purpose\"\n[[step]]\ntemplate = \"unknown\"\nstatus = 404\n",
    )
    .expect("write");
    let server = server();
    let out = Command::new(BIN)
        .current_dir(server.dir.path())
        .arg("replay")
        .arg(dir.path())
        .args(["--url", &base_url(&server)])
        .args(["--cacert", "certs/ca.crt"])
        .args(["--cert", "certs/client.crt", "--key", "certs/client.key"])
        .args(["--user", USER])
        .env("BWGATE_REPLAY_PASSWORD", PASSWORD)
        .output()
        .expect("run bwgate replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for want in [
        "FAIL 001-wrong-expectation - wrong on purpose",
        "HTTP status",
        "- expected: 404",
        "+ actual:   401",
        "ErrorInfo errorCode",
        "- expected: \"9003\"",
        "+ actual:   \"9004\"",
        "0 passed, 1 failed",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

#[test]
fn bwgate_replay_rejects_a_bad_directory_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("1-bad-name")).expect("dir");
    let out = Command::new(BIN)
        .arg("replay")
        .arg(dir.path())
        .args(["--url", "https://127.0.0.1:1", "--cacert", "nope.crt"])
        .args(["--user", USER, "--password", PASSWORD])
        .output()
        .expect("run bwgate replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("1-bad-name") && stderr.contains("NNN-short-name"),
        "{stderr}"
    );
}

/// `xmllint --noout --schema schemas/flowthrough-v1.xsd FILE`.
fn xmllint(file: &Path) -> Result<(), String> {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/flowthrough-v1.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&xsd)
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint is required for this test (apt-get install libxml2-utils): {e}")
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `status="a|b"` → `status="a"`: alternatives are a replay feature, the
/// XSD's Status type has one value.
fn first_alternatives(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find("status=\"") {
        let (head, tail) = rest.split_at(at + "status=\"".len());
        out.push_str(head);
        let end = tail.find('"').unwrap_or(tail.len());
        let value = &tail[..end];
        out.push_str(value.split('|').next().unwrap_or(value));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn requests_and_expected_responses_validate_against_the_xsd() {
    let token = "0123456789abcd";
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let (mut requests, mut responses, mut outside) = (0, 0, 0);
    for case in cases() {
        for step in &case.steps {
            let label = format!("{}/{}", case.name, step.label());
            if step.spec.xsd_valid {
                let body = step.render_request(token).expect("render request");
                let file = tmp
                    .path()
                    .join(format!("{}-{}-request.xml", case.name, step.label()));
                std::fs::write(&file, body).expect("write");
                requests += 1;
                if let Err(e) = xmllint(&file) {
                    failures.push(format!("{label} request (xsd_valid = true): {e}"));
                }
            } else {
                // Marked as outside the schema: xmllint must refuse it,
                // else the mark hides a request that should be checked.
                let body = step.render_request(token).expect("render request");
                let file = tmp
                    .path()
                    .join(format!("{}-{}-outside.xml", case.name, step.label()));
                std::fs::write(&file, body).expect("write");
                outside += 1;
                if xmllint(&file).is_ok() {
                    failures.push(format!(
                        "{label} request is marked xsd_valid = false but validates against the XSD"
                    ));
                }
            }
            let expected = step.render_expected(token).expect("render expected");
            let text = String::from_utf8(expected).expect("expected files are UTF-8");
            if matches!(
                conformance::normalize(text.as_bytes()),
                Ok(conformance::Document::Provisioning { .. })
            ) {
                let file = tmp
                    .path()
                    .join(format!("{}-{}-expected.xml", case.name, step.label()));
                std::fs::write(&file, first_alternatives(&text)).expect("write");
                responses += 1;
                if let Err(e) = xmllint(&file) {
                    failures.push(format!("{label} expected ProvisioningResponse: {e}"));
                }
            }
        }
    }
    assert!(
        requests >= 40 && responses >= 40 && outside >= 15,
        "{requests} requests, {responses} responses, {outside} requests outside the schema checked"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn alternatives_are_reduced_for_the_xsd() {
    assert_eq!(
        first_alternatives(r#"<r status="a|b"/><r status="c"/><r x="1|2"/>"#),
        r#"<r status="a"/><r status="c"/><r x="1|2"/>"#
    );
}
