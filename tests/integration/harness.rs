//! Starts and stops `bwgate serve` in a temporary directory and gives tests
//! clients for both listeners.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bwgate::client::{ClientResponse, HttpsClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const BIN: &str = env!("CARGO_BIN_EXE_bwgate");

/// The operator token servers started with a config file get (through
/// `BWGATE__SERVER__OPERATOR_TOKEN_HASH`, unless the test sets its own).
pub const HARNESS_OPS_TOKEN: &str = "harness-operator-token-0123456789abcdef";
/// `echo -n "$HARNESS_OPS_TOKEN" | bwgate hash-password`, computed once.
const HARNESS_OPS_TOKEN_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$9R4EGvcgNOjUXBoHfecn2g$ctdOppSTZN9+Kyiluau8loTAjFhDOpyG02ZDOi2RNOo";
const OPS_TOKEN_ENV: &str = "BWGATE__SERVER__OPERATOR_TOKEN_HASH";

pub struct Server {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub portal: SocketAddr,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    /// The subcommand (`serve`, or `license-core serve`).
    command: Vec<String>,
    /// Where the HTTPS listener binds (an ephemeral port unless set).
    https_listen: String,
    /// The operator token when the harness configured it; `None`: the demo
    /// issued one (in `data/demo-template.json`) or the test chose its own.
    ops_token: Option<String>,
}

impl Server {
    /// Starts with the embedded defaults (dev certs, demo template).
    pub fn start() -> Server {
        Self::start_with(None, &[])
    }

    /// Starts with an optional config file body and extra `serve` flags.
    pub fn start_with(config: Option<&str>, args: &[&str]) -> Server {
        Self::start_with_env(config, args, &[])
    }

    /// As `start_with`, plus environment variables for the process.
    pub fn start_with_env(config: Option<&str>, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut server = Self::unstarted(config, args, envs);
        server.spawn();
        server
    }

    /// Everything `start_with_env` prepares, without starting the process:
    /// the test puts files into its directory first, then calls `spawn`.
    pub fn unstarted(config: Option<&str>, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut extra_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if let Some(cfg) = config {
            let path = dir.path().join("bwgate.toml");
            std::fs::write(&path, cfg).expect("write config");
            extra_args.push("--config".into());
            extra_args.push(path.display().to_string());
        }
        let mut envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // With a config file the demo may not run: give the server a known
        // operator token, unless the test configures the token itself.
        let own_token = config.is_some_and(|c| c.contains("operator_token_hash"))
            || envs.iter().any(|(k, _)| k == OPS_TOKEN_ENV);
        let ops_token = (config.is_some() && !own_token).then(|| {
            envs.push((OPS_TOKEN_ENV.into(), HARNESS_OPS_TOKEN_HASH.into()));
            HARNESS_OPS_TOKEN.to_string()
        });
        Server {
            dir,
            child: None,
            https: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            portal: SocketAddr::from(([127, 0, 0, 1], 0)),
            extra_args,
            envs,
            command: vec!["serve".into()],
            https_listen: "127.0.0.1:0".into(),
            ops_token,
        }
    }

    /// Runs `bwgate license-core serve` instead of `bwgate serve`, its
    /// HTTPS listener on `listen` (a fixed port, so gateways find it again
    /// after a restart).
    pub fn into_license_core(mut self, listen: SocketAddr) -> Server {
        self.command = vec!["license-core".into(), "serve".into()];
        self.https_listen = listen.to_string();
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn certs(&self) -> PathBuf {
        self.path("certs")
    }

    /// (Re)starts the process on the same directory and waits until it
    /// has written its listen file.
    pub fn spawn(&mut self) {
        if let Err(status) = self.try_spawn() {
            panic!("bwgate exited early ({status}): {}", self.logs());
        }
    }

    /// As `spawn`, but a process that exits before it listens is an
    /// answer (its exit status), not a test failure.
    pub fn try_spawn(&mut self) -> Result<(), ExitStatus> {
        let listen_file = self.path("data/listen.json");
        let _ = std::fs::remove_file(&listen_file);
        let stdout = std::fs::File::create(self.path("stdout.log")).expect("stdout log");
        let stderr = std::fs::File::create(self.path("stderr.log")).expect("stderr log");
        let child = Command::new(BIN)
            .current_dir(self.dir.path())
            .args(&self.command)
            .args([
                "--listen",
                self.https_listen.as_str(),
                "--admin-listen",
                "127.0.0.1:0",
                "--portal-listen",
                "127.0.0.1:0",
            ])
            .args(&self.extra_args)
            .env("RUST_LOG", "info")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn bwgate");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&listen_file) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    self.https = v["https"].as_str().unwrap().parse().unwrap();
                    self.admin = v["admin"].as_str().unwrap().parse().unwrap();
                    self.portal = v["portal"].as_str().unwrap().parse().unwrap();
                    return Ok(());
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(status);
            }
            assert!(
                Instant::now() < deadline,
                "bwgate did not start: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn logs(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(self.path("stdout.log")).unwrap_or_default(),
            std::fs::read_to_string(self.path("stderr.log")).unwrap_or_default()
        )
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "bwgate did not exit: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An mTLS client presenting the dev client certificate.
    pub fn client(&self) -> HttpsClient {
        HttpsClient::new(self.https, "localhost", self.dev_tls(true)).expect("client")
    }

    /// TLS client config presenting the dev client certificate.
    pub fn dev_tls(&self, h2: bool) -> rustls::ClientConfig {
        let certs = self.certs();
        bwgate::tls::client_config(
            &certs.join("ca.crt"),
            Some(&certs.join("client.crt")),
            Some(&certs.join("client.key")),
            h2,
        )
        .expect("client tls config")
    }

    /// A raw HTTP/1.1-over-mTLS stream, for tests that write bytes by hand.
    pub async fn raw_tls(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(self.dev_tls(false)));
        let tcp = tokio::net::TcpStream::connect(self.https)
            .await
            .expect("connect");
        connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .expect("tls handshake")
    }

    /// A client with a chosen identity (or none), trusting the dev CA.
    pub fn client_with(&self, cert_key: Option<(&Path, &Path)>, h2: bool) -> HttpsClient {
        let tls = bwgate::tls::client_config(
            &self.certs().join("ca.crt"),
            cert_key.map(|c| c.0),
            cert_key.map(|c| c.1),
            h2,
        )
        .expect("client tls config");
        HttpsClient::new(self.https, "localhost", tls).expect("client")
    }

    pub async fn get(&self, path: &str) -> ClientResponse {
        self.client()
            .request(bwgate::client::get(path))
            .await
            .expect("request")
    }

    /// The operator token for this server's `/admin/...` routes: the
    /// harness's, or the one the demo issued.
    pub fn ops_token(&self) -> String {
        if let Some(token) = &self.ops_token {
            return token.clone();
        }
        // No demo file (another data dir) or no opsToken in it: the harness
        // token, which then simply fails on /admin routes.
        std::fs::read_to_string(self.path("data/demo-template.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|demo| demo["opsToken"].as_str().map(str::to_string))
            .unwrap_or_else(|| HARNESS_OPS_TOKEN.to_string())
    }

    /// Plain HTTP/1.0 GET on the admin listener with the operator token:
    /// (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        self.admin_send("GET", path, None, "").await
    }

    /// A request on the admin listener with the operator token: (status, body).
    pub async fn admin_send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let auth = format!("Bearer {}", self.ops_token());
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("Content-Type", ct));
        }
        admin_http(self.admin, method, path, &headers, body).await
    }

    /// A JSON request (`application/json`) on the admin listener with the
    /// operator token: (status, body).
    pub async fn admin_json(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.admin_send(method, path, Some("application/json"), body)
            .await
    }

    /// A client of the portal listener (HTTPS, no client certificate).
    pub fn portal_client(&self) -> HttpsClient {
        let tls = bwgate::tls::client_config(&self.certs().join("ca.crt"), None, None, false)
            .expect("portal tls config");
        HttpsClient::new(self.portal, "localhost", tls).expect("portal client")
    }

    /// `GET` on the portal: (status, body).
    pub async fn portal_get(&self, path: &str) -> (u16, String) {
        let r = self
            .portal_client()
            .request(bwgate::client::get(path))
            .await
            .expect("portal get");
        (r.status.as_u16(), r.text())
    }

    /// A form `POST` on the portal: (status, `Location` header, body).
    pub async fn portal_form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let r = self
            .portal_client()
            .request(bwgate::client::request(
                "POST",
                path,
                body.into(),
                Some("application/x-www-form-urlencoded"),
            ))
            .await
            .expect("portal post");
        let location = r.header("location").unwrap_or("").to_string();
        (r.status.as_u16(), location, r.text())
    }
}

/// GET on the admin listener without credentials (the open routes, or a
/// refusal): (status, body).
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    admin_request(addr, "GET", path, None, "").await
}

/// Plain HTTP/1.0 request on the admin listener without credentials:
/// (status, body).
pub async fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let ct: Vec<(&str, &str)> = content_type
        .map(|ct| ("Content-Type", ct))
        .into_iter()
        .collect();
    admin_http(addr, method, path, &ct, body).await
}

/// Plain HTTP/1.0 request on the admin listener with `Host: localhost`
/// unless `headers` names one: (status, body).
pub async fn admin_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = admin_http_with_head(addr, method, path, headers, body).await;
    (status, body)
}

/// [`admin_http`], also returning the response head (status line and
/// headers) as text: (status, head, body).
pub async fn admin_http_with_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("admin connect");
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    (status, head.to_string(), body.to_string())
}

/// How often [`eventually`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The one way an integration test waits for a condition: calls `observe`
/// until it returns `Ok(value)` (every 50 ms), and returns the value. At
/// `timeout` it panics naming `what` and the last observation (the last
/// `Err`), so a test that waits in vain says what it saw.
pub async fn eventually<T, O, F, Fut>(
    what: impl std::fmt::Display,
    timeout: Duration,
    mut observe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, O>>,
    O: std::fmt::Debug,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = match observe().await {
            Ok(value) => return value,
            Err(observed) => observed,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?}; last observation: {last:?}\nwaiting for: {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `what` for [`eventually`] that adds the server's logs to a timeout's
/// message (read only then).
pub struct WithLogs<'a> {
    what: String,
    server: &'a Server,
}

impl std::fmt::Display for WithLogs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.what, self.server.logs())
    }
}

impl Server {
    pub fn with_logs(&self, what: impl Into<String>) -> WithLogs<'_> {
        WithLogs {
            what: what.into(),
            server: self,
        }
    }
}

/// The value of a Prometheus sample line `name{labels} value`, if present.
pub fn metric_value(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name_and_labels)?;
        rest.trim().parse().ok()
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn eventually_returns_the_first_ok_value() {
    let mut looks = 0;
    let seen = eventually("three looks", Duration::from_secs(5), || {
        looks += 1;
        let n = looks;
        async move {
            if n >= 3 {
                Ok(n)
            } else {
                Err(n)
            }
        }
    })
    .await;
    assert_eq!(seen, 3);
}

#[tokio::test]
#[should_panic(
    expected = "last observation: \"still nothing\"\nwaiting for: a thing that never comes"
)]
async fn eventually_panics_with_what_and_the_last_observation() {
    eventually(
        "a thing that never comes",
        Duration::from_millis(120),
        || async { Err::<(), _>("still nothing") },
    )
    .await;
}
