//! `bwgate load`: an mTLS load generator for loopback targets.
//!
//! - N connections (tokio tasks), each sending one request at a time; a
//!   shared counter numbers requests, and the body template's `{{n}}` /
//!   `{{run}}` placeholders make every document new (see [`template`]).
//! - Bounded by `--duration` and `--requests`, whichever comes first.
//! - `--rate R` sends request `n` at `start + n/R` (open model). A request
//!   that goes out late because every connection was busy has its latency
//!   counted from its scheduled time, so a stalled server cannot hide its
//!   stall (no coordinated omission). An idle connection waits for its
//!   slot (see [`pace`]) and its clock starts at the send.
//! - `--mode handshake` opens a new TCP + TLS connection per request with
//!   client-side resumption disabled: every request is a full handshake.
//! - HTTP/1.1 uses a hand-rolled exchange over rustls (pre-rendered head,
//!   reused buffers); HTTP/2 uses hyper's client.
//! - `--hold-channels N` holds N Xsi-Events channels instead of sending
//!   requests (heartbeats, events, DELETE; see [`channels`]).
//! - Only loopback targets: this tool must never load another machine.

pub mod baseline;
pub mod channels;
pub mod conn;
pub mod pace;
pub mod report;
pub mod store_bench;
pub mod template;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::ValueEnum;
use hyper::header::HeaderValue;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use conn::{Conn, Target};
use report::{Report, RunInfo, Tally, TransportError};
use template::Template;

pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);
pub const MAX_DURATION: Duration = Duration::from_secs(600);
pub const DEFAULT_REQUESTS: u64 = 10_000_000;
pub const MAX_REQUESTS: u64 = 100_000_000;
pub const MAX_CONNECTIONS: usize = 1024;
pub const MAX_RATE: f64 = 1_000_000.0;
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Keep connections open; requests follow each other on them.
    Keepalive,
    /// A new TCP + TLS connection (full handshake) for every request.
    Handshake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// POST the rendered template (the default).
    Post,
    /// GET without a body (e.g. `--path-override /` for a cheap request).
    Get,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpVersion {
    #[value(name = "1")]
    Http1,
    #[value(name = "2")]
    Http2,
}

/// `bwgate load` flags.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Only loopback targets (127.0.0.0/8, [::1], localhost) are allowed. \
Exit codes: 0 run completed (see the report for errors), 1 no response at all, 2 usage error."
)]
pub struct LoadArgs {
    /// Target, e.g. https://127.0.0.1:8443/uc-one/v1/provisioning/ID (default: the demo file's).
    #[arg(long)]
    pub url: Option<String>,
    /// demo-template.json written by `bwgate serve`: supplies url, user and password.
    #[arg(long)]
    pub demo: Option<PathBuf>,
    /// Replace the URL's path (e.g. `/` for a fixed-200 server).
    #[arg(long)]
    pub path_override: Option<String>,
    #[arg(long, default_value = "certs/ca.crt")]
    pub cacert: PathBuf,
    /// Client certificate (mTLS).
    #[arg(long, default_value = "certs/client.crt")]
    pub cert: PathBuf,
    #[arg(long, default_value = "certs/client.key")]
    pub key: PathBuf,
    /// HTTP Basic user (the template's provisioning account).
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
    /// Send `Authorization: Bearer TOKEN` instead of Basic (an XSI token
    /// from `/authService/token/{userId}`, e.g. with `--method get` on
    /// `…/com.broadsoft.xsi-actions/v2.0/user/{userId}/profile`).
    #[arg(long, env = "BWGATE_LOAD_BEARER", conflicts_with_all = ["user", "password"])]
    pub bearer: Option<String>,
    #[arg(
        long,
        // Not spelled out: clap turns the request-number placeholder into a line break.
        help = "Body template: a recorded flow-through document in which `n` and `run` in \
                double curly braces become the request number and a per-run token. \
                Default: a built-in AddUser, unique per request"
    )]
    pub template: Option<PathBuf>,
    /// Concurrent connections (at most 1024).
    #[arg(long, short = 'c', default_value_t = 16)]
    pub connections: usize,
    /// Stop after this long (e.g. 10s, 500ms, 2m; at most 10m).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests (at most 100000000).
    #[arg(long, short = 'n', default_value_t = DEFAULT_REQUESTS)]
    pub requests: u64,
    /// Fixed rate in requests/s (latency from the scheduled send time); default: as fast as possible.
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, value_enum, default_value = "keepalive")]
    pub mode: Mode,
    #[arg(long, value_enum, default_value = "1")]
    pub http: HttpVersion,
    #[arg(long, value_enum, default_value = "post")]
    pub method: Method,
    /// Runtime worker threads (default: one per available core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Per-request timeout (at most 60s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not verify the server's certificate or handshake signature
    /// (benchmarks only: about halves the client's cost of a full
    /// handshake, so one client core can saturate one server core in
    /// `--mode handshake`). The client certificate is still presented.
    #[arg(long)]
    pub no_verify: bool,
    /// Instead of the request loop: open N Xsi-Events channels (1..=10000;
    /// needs --bearer or --user/--password), hold them for --duration with
    /// heartbeats, then DELETE them. HTTP/2: spread over --connections
    /// connections; HTTP/1.1: one connection per channel plus
    /// --connections for heartbeats and DELETEs. The URL's path is not used.
    #[arg(
        long,
        value_name = "N",
        conflicts_with_all = ["rate", "template", "path_override", "mode", "method", "requests"]
    )]
    pub hold_channels: Option<usize>,
    /// With --hold-channels: PUT a heartbeat on every channel this often (default 15s).
    #[arg(long, value_parser = parse_duration, requires = "hold_channels")]
    pub heartbeat_every: Option<Duration>,
    /// With --hold-channels: put every channel in this one channel set
    /// (default: one set per channel, `bwgate-load-{run}-{i}`).
    #[arg(long, value_name = "ID", requires = "hold_channels")]
    pub channel_set: Option<String>,
    /// With --hold-channels: the server's pid, to report its RSS
    /// (/proc/PID/status VmRSS) before, while holding and after.
    #[arg(long, value_name = "PID", requires = "hold_channels")]
    pub server_pid: Option<u32>,
}

/// `10s`, `250ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (use e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration unit in '{s}' (ms, s or m)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!("duration '{s}' out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An https URL split up; only what the tool needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        format!("'{url}': only https:// URLs are supported (the target speaks mTLS)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err(format!(
            "'{url}': put credentials in --user/--password, not the URL"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("'{url}': unterminated IPv6 address"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("'{url}': invalid port '{p}'"))?,
        None => 443,
    };
    if host.is_empty() {
        return Err(format!("'{url}': no host"));
    }
    Ok(ParsedUrl {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// The only addresses this tool will send load to.
pub fn loopback_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| refuse(host))?
    };
    if !ip.is_loopback() {
        return Err(refuse(host));
    }
    Ok(SocketAddr::new(ip, port))
}

fn refuse(host: &str) -> String {
    format!(
        "refusing to send load to '{host}': only loopback targets are allowed \
         (127.0.0.0/8, [::1], localhost)"
    )
}

/// Everything resolved from the flags before any connection is made.
pub struct Plan {
    pub url: String,
    pub addr: SocketAddr,
    pub host_header: String,
    pub server_name: ServerName<'static>,
    pub path: String,
    pub auth: Option<String>,
    pub template: Template,
    pub tls: rustls::ClientConfig,
    pub connections: usize,
    pub duration: Duration,
    pub requests: u64,
    pub rate: Option<f64>,
    pub mode: Mode,
    pub http: HttpVersion,
    pub method: Method,
    pub threads: usize,
    pub timeout: Duration,
    /// `--hold-channels`: hold Xsi-Events channels instead of the request loop.
    pub hold: Option<channels::Hold>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DemoFile {
    provisioning_url: String,
    username: String,
    password: String,
}

impl Plan {
    /// Usage errors (exit 2): bad or non-loopback URL, limits out of range,
    /// unreadable demo/template/certificate files.
    pub fn from_args(a: &LoadArgs) -> Result<Plan, String> {
        let demo = match &a.demo {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| format!("--demo {}: {e}", p.display()))?;
                Some(
                    serde_json::from_str::<DemoFile>(&text)
                        .map_err(|e| format!("--demo {}: {e}", p.display()))?,
                )
            }
            None => None,
        };
        let url = a
            .url
            .clone()
            .or_else(|| demo.as_ref().map(|d| d.provisioning_url.clone()))
            .ok_or("give --url or --demo FILE")?;
        let parsed = parse_url(&url)?;
        let addr = loopback_addr(&parsed.host, parsed.port)?;
        let path = a.path_override.clone().unwrap_or(parsed.path);
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("invalid path '{path}'"));
        }
        let user = a
            .user
            .clone()
            .or_else(|| demo.as_ref().map(|d| d.username.clone()));
        let password = a
            .password
            .clone()
            .or_else(|| demo.as_ref().map(|d| d.password.clone()));
        let auth = match (user, password) {
            _ if a.bearer.is_some() => a.bearer.as_ref().map(|t| format!("Bearer {}", t.trim())),
            (Some(u), Some(p)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )),
            (None, None) => None,
            _ => return Err("give both --user and --password (or --demo)".into()),
        };
        let template = match &a.template {
            Some(p) => Template::parse(
                &std::fs::read(p).map_err(|e| format!("--template {}: {e}", p.display()))?,
            ),
            None => Template::builtin(),
        };
        if a.connections == 0 || a.connections > MAX_CONNECTIONS {
            return Err(format!("--connections must be 1..={MAX_CONNECTIONS}"));
        }
        if a.duration > MAX_DURATION {
            return Err(format!("--duration at most {}s", MAX_DURATION.as_secs()));
        }
        if a.requests == 0 || a.requests > MAX_REQUESTS {
            return Err(format!("--requests must be 1..={MAX_REQUESTS}"));
        }
        if let Some(r) = a.rate {
            if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
                return Err(format!("--rate must be in (0, {MAX_RATE}]"));
            }
        }
        if a.timeout > MAX_TIMEOUT {
            return Err(format!("--timeout at most {}s", MAX_TIMEOUT.as_secs()));
        }
        let threads = match a.threads {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => n.min(256),
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };
        let mut tls = crate::tls::client_config(
            &a.cacert,
            Some(&a.cert),
            Some(&a.key),
            a.http == HttpVersion::Http2,
        )
        .map_err(|e| format!("TLS client configuration: {e}"))?;
        if a.mode == Mode::Handshake {
            // Every connection must pay for a full handshake.
            tls.resumption = rustls::client::Resumption::disabled();
        }
        if a.no_verify {
            tls.dangerous()
                .set_certificate_verifier(Arc::new(conn::NoVerify::new()));
        }
        let hold = match a.hold_channels {
            Some(n) => {
                if auth.is_none() {
                    return Err("--hold-channels needs --bearer or --user/--password".into());
                }
                Some(channels::Hold::new(
                    n,
                    a.heartbeat_every,
                    a.channel_set.clone(),
                    a.server_pid,
                )?)
            }
            None => None,
        };
        let server_name = ServerName::try_from(parsed.host.clone())
            .map_err(|_| format!("invalid server name '{}'", parsed.host))?;
        let host_header = if parsed.host.contains(':') {
            format!("[{}]:{}", parsed.host, parsed.port)
        } else {
            format!("{}:{}", parsed.host, parsed.port)
        };
        Ok(Plan {
            url: format!("https://{host_header}{path}"),
            addr,
            host_header,
            server_name,
            path,
            auth,
            template,
            tls,
            connections: a.connections,
            duration: a.duration,
            requests: a.requests,
            rate: a.rate,
            mode: a.mode,
            http: a.http,
            method: a.method,
            threads,
            timeout: a.timeout,
            hold,
        })
    }
}

/// Entry point of `bwgate load`.
pub fn cli(args: LoadArgs) -> ExitCode {
    let plan = match Plan::from_args(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bwgate load: {e}");
            return ExitCode::from(2);
        }
    };
    if plan.hold.is_none() && plan.method == Method::Post && !plan.template.is_unique_per_request()
    {
        eprintln!(
            "bwgate load: warning: the template has no {{{{n}}}} placeholder; every request sends the same document"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bwgate load: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = args.json;
    let step = clock_step();
    if step > Duration::from_micros(100) {
        eprintln!(
            "bwgate load: warning: the monotonic clock on this CPU advances in {step:?} steps; \
             latencies are quantized to that (try pinning to another CPU)"
        );
    }
    if let Some(hold) = plan.hold.clone() {
        return match rt.block_on(channels::run(&plan, &hold)) {
            Ok(mut report) => {
                report.clock_step_ns = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
                let answered = report.channels_opened + report.channels_refused > 0;
                conclude(
                    json,
                    || (report.to_json(), report.to_text()),
                    answered.then_some(()).ok_or_else(|| {
                        format!(
                            "no channel answered at all{}",
                            detail(report.first_error.as_deref())
                        )
                    }),
                )
            }
            Err(e) => {
                eprintln!("bwgate load: {e}");
                ExitCode::from(1)
            }
        };
    }
    match rt.block_on(run(plan)) {
        Ok(mut report) => {
            report.info.clock_step_ns = u64::try_from(step.as_nanos()).unwrap_or(u64::MAX);
            let answered = report.responses > 0;
            conclude(
                json,
                || (report.to_json(), report.to_text()),
                answered.then_some(()).ok_or_else(|| {
                    format!(
                        "no response at all{}",
                        detail(report.first_transport_error.as_deref())
                    )
                }),
            )
        }
        Err(e) => {
            eprintln!("bwgate load: {e}");
            ExitCode::from(1)
        }
    }
}

struct Shared {
    target: Target,
    template: Template,
    run: String,
    next: AtomicU64,
    max_requests: u64,
    rate: Option<f64>,
    start: Instant,
    deadline: Instant,
    timeout: Duration,
    handshake_mode: bool,
    negotiated: OnceLock<(String, String)>,
    pacer: Option<pace::Pacer>,
}

/// Runs the load and returns the merged report.
pub async fn run(plan: Plan) -> Result<Report, String> {
    let handshake_mode = plan.mode == Mode::Handshake;
    let target = Target {
        addr: plan.addr,
        server_name: plan.server_name.clone(),
        connector: TlsConnector::from(Arc::new(plan.tls.clone())),
        post: plan.method == Method::Post,
        h1_head: Target::render_h1_head(
            plan.method == Method::Post,
            &plan.path,
            &plan.host_header,
            plan.auth.as_deref(),
            handshake_mode,
        ),
        h2_uri: plan
            .url
            .parse()
            .map_err(|e| format!("URL '{}': {e}", plan.url))?,
        h2_auth: plan
            .auth
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|e| format!("Authorization header: {e}"))?,
    };

    // Keep-alive: open every connection before the clock starts, so the
    // run measures requests, not the ramp-up.
    let mut warm: Vec<(Option<Conn>, Tally)> = Vec::with_capacity(plan.connections);
    let negotiated = OnceLock::new();
    if !handshake_mode {
        let mut set = tokio::task::JoinSet::new();
        let target = Arc::new(target);
        let timeout = plan.timeout;
        for _ in 0..plan.connections {
            let t = target.clone();
            set.spawn(async move {
                tokio::time::timeout(timeout, conn::connect(&t))
                    .await
                    .unwrap_or_else(|_| Err((TransportError::Timeout, "connect timed out".into())))
            });
        }
        let mut first_err = None;
        while let Some(r) = set.join_next().await {
            let mut tally = Tally::new();
            match r.map_err(|e| e.to_string())? {
                Ok((c, n)) => {
                    count_handshake(&mut tally, &n);
                    let _ = negotiated.set((n.tls, n.alpn));
                    warm.push((Some(c), tally));
                }
                Err((_, e)) => {
                    first_err.get_or_insert(e);
                    warm.push((None, tally));
                }
            }
        }
        if warm.iter().all(|(c, _)| c.is_none()) {
            return Err(first_err.unwrap_or_else(|| "no connection".into()));
        }
        let target = Arc::try_unwrap(target).map_err(|_| "connect tasks still running")?;
        return drive(plan, target, warm, negotiated).await;
    }
    for _ in 0..plan.connections {
        warm.push((None, Tally::new()));
    }
    drive(plan, target, warm, negotiated).await
}

async fn drive(
    plan: Plan,
    target: Target,
    warm: Vec<(Option<Conn>, Tally)>,
    negotiated: OnceLock<(String, String)>,
) -> Result<Report, String> {
    let start = Instant::now();
    let run = template::run_token();
    let shared = Arc::new(Shared {
        target,
        template: plan.template.clone(),
        run: run.clone(),
        next: AtomicU64::new(0),
        max_requests: plan.requests,
        rate: plan.rate,
        start,
        deadline: start + plan.duration,
        timeout: plan.timeout,
        handshake_mode: plan.mode == Mode::Handshake,
        negotiated,
        pacer: match plan.rate {
            Some(_) => Some(pace::Pacer::start().map_err(|e| format!("pacer thread: {e}"))?),
            None => None,
        },
    });
    let mut set = tokio::task::JoinSet::new();
    for (conn, tally) in warm {
        set.spawn(worker(shared.clone(), conn, tally));
    }
    // Every request is bounded by the timeout and no request starts after
    // the deadline, so this only guards against a bug.
    let hard_stop = tokio::time::Instant::from_std(
        start + plan.duration + plan.timeout * 2 + Duration::from_secs(2),
    );
    let mut total = Tally::new();
    let mut last = start;
    loop {
        match tokio::time::timeout_at(hard_stop, set.join_next()).await {
            Ok(Some(Ok((tally, finished)))) => {
                total.merge(&tally);
                last = last.max(finished);
            }
            Ok(Some(Err(e))) => return Err(format!("load task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                last = Instant::now();
                break;
            }
        }
    }
    let (tls, alpn) = shared.negotiated.get().cloned().unzip();
    let info = RunInfo {
        url: plan.url.clone(),
        method: match plan.method {
            Method::Post => "POST",
            Method::Get => "GET",
        },
        mode: match plan.mode {
            Mode::Keepalive => "keepalive",
            Mode::Handshake => "handshake",
        },
        http: match plan.http {
            HttpVersion::Http1 => "1",
            HttpVersion::Http2 => "2",
        },
        connections: plan.connections,
        threads: plan.threads,
        rate: plan.rate,
        duration_limit_secs: plan.duration.as_secs_f64(),
        request_limit: plan.requests,
        run,
        tls,
        alpn,
        clock_step_ns: 0,
    };
    Ok(Report::new(
        info,
        &total,
        last.saturating_duration_since(start),
    ))
}

fn count_handshake(t: &mut Tally, n: &conn::Negotiated) {
    t.connections += 1;
    if n.resumed {
        t.resumed_handshakes += 1;
    } else {
        t.full_handshakes += 1;
    }
}

/// One connection's loop; returns its tally and when it finished its last request.
async fn worker(s: Arc<Shared>, mut conn: Option<Conn>, mut t: Tally) -> (Tally, Instant) {
    let mut body: Vec<u8> = Vec::with_capacity(2048);
    let mut request: Vec<u8> = Vec::with_capacity(2048 + s.target.h1_head.len());
    let mut last = Instant::now();
    loop {
        if s.rate.is_none() && Instant::now() >= s.deadline {
            break;
        }
        let n = s.next.fetch_add(1, Ordering::Relaxed);
        if n >= s.max_requests {
            break;
        }
        if s.target.post {
            body.clear();
            s.template.render_into(n, &s.run, &mut body);
            request.clear();
            request.extend_from_slice(&s.target.h1_head);
            push_decimal(&mut request, body.len() as u64);
            request.extend_from_slice(b"\r\n\r\n");
            request.extend_from_slice(&body);
        }
        let request_bytes: &[u8] = if s.target.post {
            &request
        } else {
            &s.target.h1_head
        };

        let started = match s.rate {
            None => Instant::now(),
            Some(rate) => {
                let scheduled = s.start + Duration::from_secs_f64(n as f64 / rate);
                if scheduled >= s.deadline {
                    break;
                }
                if scheduled > Instant::now() {
                    match &s.pacer {
                        Some(p) => p.until(scheduled).await,
                        None => tokio::time::sleep_until(scheduled.into()).await,
                    }
                    // The connection was idle: any lateness here is the
                    // client's own scheduling, not the server's.
                    Instant::now()
                } else {
                    // Every connection was busy: count from the schedule.
                    t.late += 1;
                    scheduled
                }
            }
        };

        let result = tokio::time::timeout(s.timeout, async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => {
                    let (c, n) = conn::connect(&s.target).await?;
                    count_handshake(&mut t, &n);
                    if s.negotiated.get().is_none() {
                        let _ = s.negotiated.set((n.tls, n.alpn));
                    }
                    conn.insert(c)
                }
            };
            c.exchange(&s.target, request_bytes, &body, &mut t).await
        })
        .await
        .unwrap_or_else(|_| {
            Err((
                TransportError::Timeout,
                format!("no response within {:?}", s.timeout),
            ))
        });
        let done = Instant::now();
        last = done;
        match result {
            Ok(outcome) => {
                t.record_status(outcome.status);
                t.record_latency(done.saturating_duration_since(started));
                if (200..300).contains(&outcome.status) && outcome.error_codes == 0 {
                    t.ok += 1;
                }
                if outcome.close || s.handshake_mode {
                    conn = None;
                }
            }
            Err((kind, detail)) => {
                conn = None;
                let connect_failed =
                    matches!(kind, TransportError::Connect | TransportError::TlsHandshake);
                t.record_transport(kind, || detail);
                if connect_failed {
                    // Do not spin on a target that refuses connections.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    (t, last)
}

/// The smallest step of the monotonic clock seen on this thread within
/// ~30 ms. Some virtual machines give a CPU a clock that only advances
/// with the scheduler tick (e.g. 4 ms), which makes latency figures useless.
pub fn clock_step() -> Duration {
    let begin = Instant::now();
    let mut prev = begin;
    let mut smallest = Duration::MAX;
    let mut changes = 0;
    while changes < 200 {
        let now = Instant::now();
        if now != prev {
            smallest = smallest.min(now - prev);
            changes += 1;
            prev = now;
        }
        if now - begin > Duration::from_millis(30) {
            break;
        }
    }
    smallest.min(Instant::now() - begin)
}

fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Prints a report (JSON or text); exit 1 with `nothing`'s message when
/// nothing answered, else 0.
fn conclude(
    json: bool,
    render: impl FnOnce() -> (String, String),
    nothing: Result<(), String>,
) -> ExitCode {
    let (as_json, as_text) = render();
    if json {
        println!("{as_json}");
    } else {
        print!("{as_text}");
    }
    match nothing {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bwgate load: {message}");
            ExitCode::from(1)
        }
    }
}

/// ` (first error)` when there is one.
fn detail(first_error: Option<&str>) -> String {
    first_error.map(|e| format!(" ({e})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_loopback_only() {
        let u = parse_url("https://127.0.0.1:8443/uc-one/v1/provisioning/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8443, "/uc-one/v1/provisioning/x")
        );
        let u = parse_url("https://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(parse_url("https://localhost").unwrap().path, "/");
        assert!(parse_url("http://127.0.0.1/").is_err());
        assert!(parse_url("https://u:p@127.0.0.1/").is_err());

        assert!(loopback_addr("127.0.0.1", 1).is_ok());
        assert!(loopback_addr("127.9.8.7", 1).is_ok());
        assert!(loopback_addr("::1", 1).is_ok());
        assert_eq!(
            loopback_addr("localhost", 7).unwrap(),
            "127.0.0.1:7".parse().unwrap()
        );
        for bad in [
            "10.0.0.1",
            "192.168.1.1",
            "8.8.8.8",
            "example.com",
            "0.0.0.0",
            "::",
        ] {
            let e = loopback_addr(bad, 1).unwrap_err();
            assert!(e.contains("only loopback"), "{e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn decimal() {
        for v in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, v);
            assert_eq!(out, format!("x{v}").into_bytes());
        }
    }
}
