//! Browser tests: headless Chromium (Debian's `chromium`) driven by
//! playwright-core (`tests/browser/`, installed by `scripts/test.sh`) walks
//! the portal pages of the real binary over real HTTPS, JavaScript off.
//! Screenshots of every page state go to `target/test-output/browser/<test>/`.
//!
//! The helpers here (`require_browser`, `output_dir`, `spki_sha256`,
//! `run_script`) run any script in `tests/browser/` with the environment a
//! test gives it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::email::{header, wait_messages, Relay};
use crate::flowthrough::{add_user, document, post, subscriber, wait_status};
use crate::harness::{Server, BIN};

/// The browser scripts and their `node_modules`.
pub const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
/// Debian's Chromium; `CHROMIUM` overrides it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_string())
}

/// Fails (never skips) when Chromium, Node.js or playwright-core is missing.
pub fn require_browser() {
    let mut missing = Vec::new();
    if !Path::new(&chromium()).is_file() {
        missing.push(format!("Chromium ({})", chromium()));
    }
    if !Path::new(BROWSER_DIR)
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push(format!("playwright-core ({BROWSER_DIR}/node_modules)"));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push("Node.js (node on PATH)".to_string());
    }
    assert!(
        missing.is_empty(),
        "browser tests need {}: run scripts/test.sh, which installs them",
        missing.join(", ")
    );
}

/// `target/test-output/browser/<test>/`, emptied: the screenshots and logs
/// of one browser test run.
pub fn output_dir(test: &str) -> PathBuf {
    // BIN is <target>/<profile>/bwgate, so this follows CARGO_TARGET_DIR.
    let target = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("target dir");
    let dir = target.join("test-output").join("browser").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test output dir");
    dir
}

/// Base64 SHA-256 of the certificate's SubjectPublicKeyInfo: what
/// Chromium's `--ignore-certificate-errors-spki-list` pins.
pub fn spki_sha256(cert_pem: &Path) -> String {
    let pem = std::fs::read(cert_pem).expect("read certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM certificate");
    let cert = pem.parse_x509().expect("X.509 certificate");
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        cert.tbs_certificate.subject_pki.raw,
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// What a browser script did.
pub struct ScriptRun {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ScriptRun {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Asserts it exited 0; otherwise fails with its output (and `context`,
    /// e.g. the server's logs).
    pub fn assert_success(&self, script: &str, context: &str) {
        assert!(
            self.success(),
            "{script} failed ({}) after {:.1?}\n--- stdout\n{}\n--- stderr\n{}\n--- context\n{context}",
            self.status
                .map_or("timed out".to_string(), |s| s.to_string()),
            self.elapsed,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `node tests/browser/<script>` with `envs` (plus `CHROMIUM`),
/// blocking, and kills it after `timeout`. Its stdout and stderr are also
/// kept as `<script>.stdout.log` / `.stderr.log` in `logs`.
pub fn run_script(
    script: &str,
    envs: &[(&str, String)],
    logs: &Path,
    timeout: Duration,
) -> ScriptRun {
    require_browser();
    let out_path = logs.join(format!("{script}.stdout.log"));
    let err_path = logs.join(format!("{script}.stderr.log"));
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(Path::new(BROWSER_DIR).join(script))
        .current_dir(BROWSER_DIR)
        .env("CHROMIUM", chromium())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout log"))
        .stderr(std::fs::File::create(&err_path).expect("stderr log"))
        .spawn()
        .expect("spawn node");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait node") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            // SIGTERM first: playwright then closes the browser it started.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let grace = Instant::now();
            while child.try_wait().expect("wait node").is_none() {
                if grace.elapsed() > Duration::from_secs(5) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ScriptRun {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Asserts `dir` holds exactly `names` as PNG files of real pages: the PNG
/// signature, a plausible size in the header and more than a blank page's
/// bytes.
pub fn assert_screenshots(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("screenshot dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    found.sort();
    assert_eq!(found, names, "screenshots in {}", dir.display());
    for name in names {
        let bytes = std::fs::read(dir.join(name)).expect("read screenshot");
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
            "{name} is not a PNG"
        );
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert!(width >= 320 && height >= 200, "{name} is {width}x{height}");
        assert!(
            bytes.len() > 8_000,
            "{name} has {} bytes: a blank page?",
            bytes.len()
        );
    }
}

const AUTH: &str = "Basic YWN0OmFjdC1wdy0x"; // act:act-pw-1

fn untrusted_config(smtp: &str) -> String {
    format!(
        "{smtp}\n[activation]\nmax_code_attempts = 3\n\n\
[[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_email = \"admin@sp.example\"\n\n\
[[templates]]\nprovisioning_id = \"untrusted\"\npartner = \"sp\"\nname = \"Untrusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n"
    )
}

/// The message body as text: quoted-printable soft breaks and `=3D` undone,
/// base64 parts decoded.
fn mail_text(data: &str) -> String {
    let mut text = data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    for block in data.split("\r\n\r\n") {
        let joined: String = block.lines().map(str::trim).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined.as_bytes()) {
            text.push('\n');
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[tokio::test]
async fn untrusted_flow_in_a_real_browser_from_add_user_to_provisioned() {
    require_browser();
    let out = output_dir("untrusted_flow");
    println!("browser screenshots: {}", out.display());

    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let server = Server::start_with(
        Some(&untrusted_config(&relay.smtp_config(receiver.port, false))),
        &[],
    );

    // The AS adds a user without a trusted email: the activation link goes
    // to the address BroadWorks has.
    let user = "ann@acme.example";
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/untrusted",
        Some(AUTH),
        document(None, &[add_user(user, "acme", Some("ann@bw.example"))]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (code, v) = subscriber(&server, user).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["subscriber"]["status"], "pending_email_input");
    let link = v["activation"]["activationUrl"]
        .as_str()
        .expect("activationUrl")
        .to_string();
    let got = wait_messages(&receiver, 1, Duration::from_secs(20)).await;
    let mail = got[0]["data"].as_str().unwrap();
    assert_eq!(got[0]["rcpt_tos"], serde_json::json!(["ann@bw.example"]));
    assert_eq!(
        header(mail, "X-Bwgate-Kind").as_deref(),
        Some("activation_link")
    );
    assert!(
        mail_text(mail).contains(&link),
        "the email carries the link {link}: {mail}"
    );

    // The user opens it in a browser and does the rest there.
    let email = "Ann.Lee@Home.example";
    let envs = [
        ("BWGATE_ACTIVATION_URL", link),
        ("BWGATE_MAIL_DIR", receiver.out_dir().display().to_string()),
        ("BWGATE_EMAIL", email.to_string()),
        ("BWGATE_SCREENSHOT_DIR", out.display().to_string()),
        (
            "BWGATE_SPKI",
            spki_sha256(&server.certs().join("server.crt")),
        ),
    ];
    let logs = out.clone();
    let run = tokio::task::spawn_blocking(move || {
        run_script("untrusted_flow.mjs", &envs, &logs, Duration::from_secs(120))
    })
    .await
    .expect("browser script");
    run.assert_success("untrusted_flow.mjs", &server.logs());
    println!(
        "untrusted_flow.mjs passed in {:.1?}\n{}",
        run.elapsed, run.stdout
    );

    // Provisioned with the verified (normalized) address.
    let v = wait_status(&server, user, "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "Ann.Lee@home.example", "{v}");
    let kinds: Vec<&str> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ProvisionSubscriber"], "{v}");

    assert_screenshots(
        &out,
        &[
            "01-activation.png",
            "02-email-blocked-by-browser.png",
            "03-email-refused.png",
            "04-code-sent.png",
            "05-emailed-link.png",
            "06-code-wrong.png",
            "07-activated.png",
            "08-link-used.png",
        ],
    );
}
