//! `bwgate load --hold-channels N`: opens N Xsi-Events channels, holds them
//! for `--duration` with a heartbeat each every `--heartbeat-every`, reads
//! every chunk, then deletes them and checks each stream ended with a
//! `ChannelTerminatedEvent`.
//!
//! - Transport. HTTP/2: `--connections` connections; channel `i` is a
//!   stream on connection `i mod C`, and its heartbeats, acknowledgements
//!   and DELETE go on the same connection (the server's
//!   `limits.max_concurrent_streams`, 256 by default, bounds the channels
//!   one connection can hold). HTTP/1.1: a streaming response holds its
//!   connection, so every channel opens its own connection, and
//!   heartbeats, acknowledgements and DELETEs go over `--connections`
//!   separate control connections (N + C connections in all).
//! - Opening. At most `--connections` opens are in flight at once (the
//!   rest of the tool's closed-loop model: one request at a time per
//!   connection). The open latency runs from the POST to the first chunk
//!   (the `<Channel>` document with its `channelId`); an HTTP/1.1
//!   channel's own TCP + TLS handshake comes before and is not in it. A
//!   refusal (non-200) is counted by the `errorCode`s of its body.
//! - Holding. `--duration` starts when every open has been answered.
//!   Channel `i`'s heartbeats start at a phase of `i/N` of the period
//!   after it opened, so N channels do not all beat at the same instant.
//!   The round trip of a heartbeat runs from its PUT to the
//!   `<ChannelHeartBeat>` chunk on the stream (heartbeats of a channel
//!   are matched in order; a PUT that failed expects no chunk).
//! - Events. Every `xsi:Event` chunk is read with
//!   [`crate::xsi::events::read_event`] and counted by its `eventData`
//!   type; events that want one are acknowledged (`eventresponse` 200),
//!   as a real client does, so the server does not send them again.
//! - Ending. When the hold is over and a channel's heartbeats have been
//!   answered, it is deleted; its stream must then end, its last chunk a
//!   `ChannelTerminatedEvent`. A stream that ends before its DELETE is
//!   "lost early", by cause.
//! - Channel sets: one per channel by default (`bwgate-load-{run}-{i}`),
//!   as independent clients have; `--channel-set NAME` puts them all in
//!   one set (the server then sends a set's events to one channel only).
//! - `--server-pid PID`: the server's RSS (`VmRSS` of `/proc/PID/status`)
//!   before the first open, at the end of the hold (before the DELETEs),
//!   and once every stream ended, for the memory of a held channel.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::conn::{tls_connect, Negotiated};
use super::report::{
    counts, for_each_error_code, new_histogram, record_us, round3, Latency, TransportError,
};
use super::Plan;
use crate::xsi::events::{self as wire, ChannelRequest, EventType};
use crate::xsi::{Element, XsiLimits};

/// Most channels one run holds (the server's default `max_channels`).
pub const MAX_CHANNELS: usize = 10_000;
pub const DEFAULT_HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// Where channels are added (the specification's async prefix).
pub const ADD_CHANNEL_PATH: &str = "/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel";
/// `{CHANNEL_PATH}/{id}/heartbeat`, `{CHANNEL_PATH}/{id}` (DELETE),
/// `{CHANNEL_PATH}/eventresponse`.
pub const CHANNEL_PATH: &str = "/com.broadsoft.xsi-events/v2.0/channel";
/// `expires` asked for: longer than any `--duration` the tool allows.
const CHANNEL_EXPIRES_SECS: u64 = 3600;
const STREAM_CONTENT_TYPE: &str = "text/xml;charset=UTF-8";
/// Largest document the stream reader buffers.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// What `--hold-channels` and its companions asked for.
#[derive(Debug, Clone)]
pub struct Hold {
    pub channels: usize,
    pub heartbeat_every: Duration,
    /// All channels in this set; `None`: one set per channel.
    pub channel_set: Option<String>,
    pub server_pid: Option<u32>,
}

impl Hold {
    /// Usage errors (exit 2).
    pub fn new(
        channels: usize,
        heartbeat_every: Option<Duration>,
        channel_set: Option<String>,
        server_pid: Option<u32>,
    ) -> Result<Hold, String> {
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(format!("--hold-channels must be 1..={MAX_CHANNELS}"));
        }
        let heartbeat_every = heartbeat_every.unwrap_or(DEFAULT_HEARTBEAT_EVERY);
        if heartbeat_every < Duration::from_millis(100) {
            return Err("--heartbeat-every at least 100ms".into());
        }
        if let Some(set) = &channel_set {
            let bad = set.is_empty()
                || set.chars().count() > wire::MAX_ID_CHARS
                || set.chars().any(char::is_control);
            if bad {
                return Err(format!(
                    "--channel-set: 1 to {} characters, no control characters",
                    wire::MAX_ID_CHARS
                ));
            }
        }
        if let Some(pid) = server_pid {
            rss_kib(pid)?;
        }
        Ok(Hold {
            channels,
            heartbeat_every,
            channel_set,
            server_pid,
        })
    }
}

/// `VmRSS` of `/proc/{pid}/status`, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("--server-pid: {path}: {e}"))?;
    parse_vm_rss(&text).ok_or_else(|| format!("--server-pid: no VmRSS in {path}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        _ => None,
    }
}

// ------------------------------------------------------------------ report

/// The server's RSS, KiB.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerRss {
    pub pid: u32,
    pub before_kib: u64,
    /// At the end of the hold, before the DELETEs.
    pub held_kib: u64,
    /// Once every stream ended.
    pub after_kib: u64,
    /// `(held - before) / opened`, bytes (0 when nothing opened).
    pub per_channel_bytes: f64,
}

/// What `--hold-channels` measured (`--json` prints exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct ChannelsReport {
    pub url: String,
    /// What was asked for: "1" or "2".
    pub http: &'static str,
    pub tls: Option<String>,
    pub alpn: Option<String>,
    /// `--connections`.
    pub connections: usize,
    /// TCP + TLS connections made (HTTP/1.1: one per channel plus the
    /// control connections).
    pub connections_opened: u64,
    pub threads: usize,
    pub run: String,
    /// "one per channel" or the shared set's id.
    pub channel_sets: String,
    pub heartbeat_every_secs: f64,
    pub duration_limit_secs: f64,
    pub clock_step_ns: u64,

    pub channels_asked: u64,
    pub channels_opened: u64,
    pub channels_refused: u64,
    /// Refusals by `errorCode` (`http {status}` when the body had none).
    pub refused_by_error_code: BTreeMap<String, u64>,
    /// Opens without an HTTP answer, by kind.
    pub open_errors: BTreeMap<String, u64>,
    pub first_error: Option<String>,
    /// Streams that ended before their DELETE, by cause.
    pub lost_early: u64,
    pub lost_early_by_cause: BTreeMap<String, u64>,
    /// From the first POST until every open was answered.
    pub open_phase_secs: f64,
    /// From then until the DELETEs.
    pub held_secs: f64,
    /// POST to the first chunk, µs.
    pub open_latency_us: Latency,

    pub heartbeats_sent: u64,
    pub heartbeats_ok: u64,
    /// Heartbeat PUTs that failed, by status or transport error.
    pub heartbeat_failures: BTreeMap<String, u64>,
    pub heartbeat_chunks_received: u64,
    /// `ChannelHeartBeat` chunks no sent heartbeat was waiting for.
    pub heartbeat_chunks_unexpected: u64,
    /// PUT to the `ChannelHeartBeat` chunk, µs.
    pub heartbeat_rtt_us: Latency,
    /// PUT to its 200, µs.
    pub heartbeat_put_us: Latency,

    /// `xsi:Event` chunks by `eventData` type (`ChannelTerminatedEvent`s
    /// are in `terminated_by_reason`); `unreadable` for an event
    /// `read_event` refused.
    pub events_received: BTreeMap<String, u64>,
    pub events_acknowledged: u64,
    /// Chunks that were no document, or a document of no known kind.
    pub other_chunks: BTreeMap<String, u64>,

    pub deletes_sent: u64,
    pub deletes_ok: u64,
    pub delete_us: Latency,
    /// Streams that ended after their DELETE with a `ChannelTerminatedEvent`
    /// as their last chunk.
    pub ended_with_channel_terminated: u64,
    /// Deleted streams that did not (no such last chunk, an error, or no
    /// end within `--timeout`), by cause.
    pub end_problems: BTreeMap<String, u64>,
    /// `ChannelTerminatedEvent` reasons seen, on every stream.
    pub terminated_by_reason: BTreeMap<String, u64>,

    pub server_rss: Option<ServerRss>,
}

impl ChannelsReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "bwgate load: hold {} Xsi-Events channel(s) at {} (HTTP/{}, {} connection(s), heartbeat every {} s, channel sets: {}, {} thread(s), run {})",
            self.channels_asked,
            self.url,
            self.http,
            self.connections,
            self.heartbeat_every_secs,
            self.channel_sets,
            self.threads,
            self.run
        );
        if let Some(tls) = &self.tls {
            let _ = writeln!(
                s,
                "tls:        {tls}, ALPN {}; {} connection(s) opened",
                self.alpn.as_deref().unwrap_or("none"),
                self.connections_opened
            );
        }
        let _ = writeln!(
            s,
            "channels:   {} asked, {} opened, {} refused ({}), {} open error(s) ({}), {} lost early ({})",
            self.channels_asked,
            self.channels_opened,
            self.channels_refused,
            counts(&self.refused_by_error_code),
            self.open_errors.values().sum::<u64>(),
            counts(&self.open_errors),
            self.lost_early,
            counts(&self.lost_early_by_cause)
        );
        if let Some(e) = &self.first_error {
            let _ = writeln!(s, "first error: {e}");
        }
        let _ = writeln!(
            s,
            "phases:     opened in {:.3} s, held {:.3} s",
            self.open_phase_secs, self.held_secs
        );
        let _ = writeln!(s, "open µs:    {}", latency(&self.open_latency_us));
        let _ = writeln!(
            s,
            "heartbeats: {} sent, {} ok, failures {}; {} chunk(s) received, {} unexpected",
            self.heartbeats_sent,
            self.heartbeats_ok,
            counts(&self.heartbeat_failures),
            self.heartbeat_chunks_received,
            self.heartbeat_chunks_unexpected
        );
        let _ = writeln!(s, "beat RTT µs: {}", latency(&self.heartbeat_rtt_us));
        let _ = writeln!(s, "beat PUT µs: {}", latency(&self.heartbeat_put_us));
        let _ = writeln!(
            s,
            "events:     {} ({} acknowledged); other chunks: {}",
            counts(&self.events_received),
            self.events_acknowledged,
            counts(&self.other_chunks)
        );
        let _ = writeln!(
            s,
            "deletes:    {} sent, {} ok; {} stream(s) ended with ChannelTerminatedEvent, problems: {}; reasons: {}",
            self.deletes_sent,
            self.deletes_ok,
            self.ended_with_channel_terminated,
            counts(&self.end_problems),
            counts(&self.terminated_by_reason)
        );
        let _ = writeln!(s, "delete µs:  {}", latency(&self.delete_us));
        if let Some(r) = &self.server_rss {
            let _ = writeln!(
                s,
                "server RSS: pid {}: {} KiB before, {} KiB held, {} KiB after = {:.0} bytes per held channel",
                r.pid, r.before_kib, r.held_kib, r.after_kib, r.per_channel_bytes
            );
        }
        s
    }
}

fn latency(l: &Latency) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, mean {:.1}, n {})",
        l.p50, l.p90, l.p99, l.p999, l.max, l.min, l.mean, l.count
    )
}

/// Latencies of the whole run, shared by the channels (a histogram is
/// ~50 KiB: one per channel would cost more than the channels).
struct Hists {
    open: Histogram<u64>,
    rtt: Histogram<u64>,
    put: Histogram<u64>,
    delete: Histogram<u64>,
}

impl Hists {
    fn new() -> Hists {
        Hists {
            open: new_histogram(),
            rtt: new_histogram(),
            put: new_histogram(),
            delete: new_histogram(),
        }
    }
}

/// One channel's (or the whole run's) counts.
struct Tally {
    connections: u64,
    asked: u64,
    opened: u64,
    refused: BTreeMap<String, u64>,
    open_errors: BTreeMap<String, u64>,
    first_error: Option<String>,
    lost: BTreeMap<String, u64>,
    beats_sent: u64,
    beats_ok: u64,
    beat_failures: BTreeMap<String, u64>,
    beat_chunks: u64,
    beat_unexpected: u64,
    events: BTreeMap<String, u64>,
    acks: u64,
    other: BTreeMap<String, u64>,
    deletes_sent: u64,
    deletes_ok: u64,
    ended_terminated: u64,
    end_problems: BTreeMap<String, u64>,
    terminated: BTreeMap<String, u64>,
}

fn bump(m: &mut BTreeMap<String, u64>, key: impl Into<String>) {
    *m.entry(key.into()).or_insert(0) += 1;
}

fn merge_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

impl Tally {
    fn new() -> Tally {
        Tally {
            connections: 0,
            asked: 0,
            opened: 0,
            refused: BTreeMap::new(),
            open_errors: BTreeMap::new(),
            first_error: None,
            lost: BTreeMap::new(),
            beats_sent: 0,
            beats_ok: 0,
            beat_failures: BTreeMap::new(),
            beat_chunks: 0,
            beat_unexpected: 0,
            events: BTreeMap::new(),
            acks: 0,
            other: BTreeMap::new(),
            deletes_sent: 0,
            deletes_ok: 0,
            ended_terminated: 0,
            end_problems: BTreeMap::new(),
            terminated: BTreeMap::new(),
        }
    }

    fn error(&mut self, detail: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(detail());
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.connections += o.connections;
        self.asked += o.asked;
        self.opened += o.opened;
        merge_map(&mut self.refused, &o.refused);
        merge_map(&mut self.open_errors, &o.open_errors);
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
        merge_map(&mut self.lost, &o.lost);
        self.beats_sent += o.beats_sent;
        self.beats_ok += o.beats_ok;
        merge_map(&mut self.beat_failures, &o.beat_failures);
        self.beat_chunks += o.beat_chunks;
        self.beat_unexpected += o.beat_unexpected;
        merge_map(&mut self.events, &o.events);
        self.acks += o.acks;
        merge_map(&mut self.other, &o.other);
        self.deletes_sent += o.deletes_sent;
        self.deletes_ok += o.deletes_ok;
        self.ended_terminated += o.ended_terminated;
        merge_map(&mut self.end_problems, &o.end_problems);
        merge_map(&mut self.terminated, &o.terminated);
    }
}

// --------------------------------------------------------------- transport

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One control connection: HTTP/2 multiplexes; an HTTP/1.1 one is used by
/// one request at a time and reconnected after a failure.
enum Link {
    H1(tokio::sync::Mutex<Option<http1::SendRequest<Full<Bytes>>>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

struct Net {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

type Failure = (TransportError, String);

async fn connect(net: &Net) -> Result<(Sender, Negotiated), Failure> {
    let (tls, negotiated) = tls_connect(net.addr, &net.server_name, &net.connector).await?;
    if negotiated.alpn == "h2" {
        let (sender, driver) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| (TransportError::Http2, format!("HTTP/2 handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok((Sender::H2(sender), negotiated))
    } else {
        let (sender, driver) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| (TransportError::Protocol, format!("HTTP/1.1: {e}")))?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok((Sender::H1(sender), negotiated))
    }
}

fn hyper_failure(e: hyper::Error) -> Failure {
    let kind = if e.is_timeout() {
        TransportError::Timeout
    } else if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        TransportError::Closed
    } else if e.is_parse() {
        TransportError::Protocol
    } else {
        TransportError::Read
    };
    (kind, e.to_string())
}

async fn send_h1(
    s: &mut http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, Failure> {
    s.ready().await.map_err(hyper_failure)?;
    s.send_request(req).await.map_err(hyper_failure)
}

async fn send_h2(
    s: &mut http2::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, Failure> {
    let h2 = |e: hyper::Error| (TransportError::Http2, format!("HTTP/2: {e}"));
    s.ready().await.map_err(h2)?;
    s.send_request(req).await.map_err(h2)
}

/// The status of a whole (non-streaming) answer; its body is read and
/// dropped.
async fn read_status(resp: Response<Incoming>) -> Result<u16, Failure> {
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| (TransportError::Read, format!("body: {e}")))?;
    Ok(status)
}

// ------------------------------------------------------------- the stream

/// What one chunk of a channel's stream held.
enum Doc {
    Xml(Element),
    /// Not a well-formed document.
    Bad(String),
}

/// Reads a channel's stream as documents. Every chunk is one document
/// starting with the XML declaration; chunks are split or joined again
/// whatever the transport's framing (HTTP/2 DATA frames and HTTP/1.1
/// reads need not match the server's chunks). Cancel-safe: bytes read
/// stay in the buffer.
struct DocReader {
    body: Incoming,
    buf: Vec<u8>,
    ended: bool,
    limits: XsiLimits,
}

impl DocReader {
    fn new(body: Incoming) -> DocReader {
        DocReader {
            body,
            buf: Vec::new(),
            ended: false,
            limits: XsiLimits::default(),
        }
    }

    /// The next document; `None` once the stream ended cleanly.
    async fn next(&mut self) -> Result<Option<Doc>, String> {
        loop {
            if let Some(doc) = take_doc(&mut self.buf, self.ended, &self.limits)? {
                return Ok(Some(doc));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Err(format!("stream: {e}"));
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Takes the first whole document off the front of `buf`: up to the next
/// XML declaration, or all of it when it parses (or the stream `ended`).
fn take_doc(buf: &mut Vec<u8>, ended: bool, limits: &XsiLimits) -> Result<Option<Doc>, String> {
    let Some(start) = buf.iter().position(|b| !b.is_ascii_whitespace()) else {
        buf.clear();
        return Ok(None);
    };
    let rest = &buf[start..];
    let next_decl = find(rest.get(1..).unwrap_or_default(), b"<?xml").map(|i| i + 1);
    let end = next_decl.unwrap_or(rest.len());
    let parsed = crate::xsi::parse(&rest[..end], Some(STREAM_CONTENT_TYPE), limits);
    let doc = match parsed {
        Ok(el) => Doc::Xml(el),
        Err(e) if next_decl.is_some() || ended => Doc::Bad(e.to_string()),
        Err(_) if rest.len() > MAX_DOCUMENT => {
            return Err(format!("a chunk of more than {MAX_DOCUMENT} bytes"))
        }
        Err(_) => return Ok(None),
    };
    buf.drain(..start + end);
    Ok(Some(doc))
}

/// What a document on a channel's stream is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Channel(String),
    Heartbeat,
    /// An event, by `eventData` type; `Some(eventID)` when it wants an
    /// `eventresponse`.
    Event(String, Option<String>),
    Terminated(String),
    Other(String),
}

fn classify(doc: &Element) -> Kind {
    match doc.name.as_str() {
        "Channel" => match doc.child_text("channelId") {
            Some(id) => Kind::Channel(id.to_string()),
            None => Kind::Other("Channel without channelId".into()),
        },
        "ChannelHeartBeat" => Kind::Heartbeat,
        "Event" => match wire::read_event(doc) {
            Ok((env, _)) => match &env.event_type {
                EventType::ChannelTerminated { reason } => Kind::Terminated(reason.clone()),
                EventType::SubscriptionTerminated => Kind::Event(
                    "SubscriptionTerminatedEvent".into(),
                    env.needs_response().then(|| env.event_id.clone()),
                ),
                EventType::Provisioning(kind) => Kind::Event(
                    format!("{}Event", kind.as_str()),
                    env.needs_response().then(|| env.event_id.clone()),
                ),
            },
            Err(_) => Kind::Event("unreadable".into(), None),
        },
        other => Kind::Other(other.chars().take(60).collect()),
    }
}

// --------------------------------------------------------------- the run

struct Ctx {
    net: Net,
    /// `host:port` (Host header, HTTP/2 authority).
    authority: String,
    auth: Option<HeaderValue>,
    /// Channels are streams on the control connections.
    h2: bool,
    links: Vec<Link>,
    timeout: Duration,
    heartbeat_every: Duration,
    channels: usize,
    channel_set: Option<String>,
    run: String,
    /// Opens and DELETEs in flight at once: `--connections`.
    in_flight: Semaphore,
    hists: std::sync::Mutex<Hists>,
}

/// What a request sent beside the stream came back with.
enum Side {
    Beat {
        seq: u64,
        started: Instant,
        finished: Instant,
        result: Result<u16, Failure>,
    },
    Ack(Result<u16, Failure>),
    Delete {
        started: Instant,
        finished: Instant,
        result: Result<u16, Failure>,
    },
}

impl Ctx {
    fn record(&self, which: impl FnOnce(&mut Hists) -> &mut Histogram<u64>, d: Duration) {
        // A panic elsewhere leaves plain counts: go on with them.
        let mut h = self.hists.lock().unwrap_or_else(|p| p.into_inner());
        record_us(which(&mut h), d);
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let uri = if self.h2 {
            format!("https://{}{path}", self.authority)
        } else {
            path.to_string()
        };
        let with_body = !body.is_empty();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        // The path is ours: a fixed prefix and a UUID.
        *req.uri_mut() = uri.parse().unwrap_or_default();
        let h = req.headers_mut();
        if !self.h2 {
            if let Ok(v) = HeaderValue::from_str(&self.authority) {
                h.insert(HOST, v);
            }
        }
        h.insert(USER_AGENT, HeaderValue::from_static("bwgate-load"));
        if let Some(a) = &self.auth {
            h.insert(AUTHORIZATION, a.clone());
        }
        if with_body {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        }
        req
    }

    /// One request on control link `i`; its status (the body is read and
    /// dropped), within `--timeout`. An HTTP/1.1 control connection that
    /// failed or timed out is dropped and made again by the next request.
    async fn control(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<u16, Failure> {
        let req = self.request(method, path, body);
        let timed_out = || {
            Err((
                TransportError::Timeout,
                format!("no answer within {:?}", self.timeout),
            ))
        };
        match &self.links[i % self.links.len()] {
            Link::H2(s) => {
                let exchange = async {
                    let resp = send_h2(&mut s.clone(), req).await?;
                    read_status(resp).await
                };
                tokio::time::timeout(self.timeout, exchange)
                    .await
                    .unwrap_or_else(|_| timed_out())
            }
            Link::H1(slot) => {
                let mut slot = slot.lock().await;
                let exchange = async {
                    if slot.is_none() {
                        match connect(&self.net).await? {
                            (Sender::H1(s), _) => *slot = Some(s),
                            (Sender::H2(_), _) => {
                                return Err((TransportError::Protocol, "ALPN changed to h2".into()))
                            }
                        }
                    }
                    let Some(s) = slot.as_mut() else {
                        return Err((TransportError::Connect, "no connection".into()));
                    };
                    let resp = send_h1(s, req).await?;
                    read_status(resp).await
                };
                let result = tokio::time::timeout(self.timeout, exchange)
                    .await
                    .unwrap_or_else(|_| timed_out());
                if result.is_err() {
                    *slot = None;
                }
                result
            }
        }
    }

    fn channel_set(&self, i: usize) -> String {
        match &self.channel_set {
            Some(set) => set.clone(),
            None => format!("bwgate-load-{}-{i}", self.run),
        }
    }
}

/// One channel, from its POST to the end of its stream.
async fn channel(
    ctx: Arc<Ctx>,
    i: usize,
    stop: watch::Receiver<bool>,
    answered: mpsc::UnboundedSender<()>,
) -> Tally {
    let mut t = Tally::new();
    t.asked = 1;
    let opened = {
        let _permit = ctx.in_flight.acquire().await;
        open(&ctx, i, &mut t).await
    };
    let _ = answered.send(());
    drop(answered);
    if let Some((reader, channel_id, _sender)) = opened {
        hold(&ctx, i, &mut t, reader, &channel_id, stop).await;
    }
    t
}

/// POSTs the channel and reads its first chunk; the stream, the
/// channelId and the sender the stream came on (an HTTP/1.1 channel's own
/// connection lives as long as it).
async fn open(ctx: &Ctx, i: usize, t: &mut Tally) -> Option<(DocReader, String, Sender)> {
    let fail = |t: &mut Tally, (kind, detail): Failure| {
        bump(&mut t.open_errors, kind.as_str());
        t.error(|| detail);
        None
    };
    let body = wire::channel_request(&ChannelRequest {
        channel_set_id: ctx.channel_set(i),
        priority: 1,
        weight: 50,
        expires: CHANNEL_EXPIRES_SECS,
    })
    .to_xml();
    let req = ctx.request(Method::POST, ADD_CHANNEL_PATH, Bytes::from(body));
    let mut sender = if ctx.h2 {
        match &ctx.links[i % ctx.links.len()] {
            Link::H2(s) => Sender::H2(s.clone()),
            Link::H1(_) => return fail(t, (TransportError::Protocol, "not HTTP/2".into())),
        }
    } else {
        match tokio::time::timeout(ctx.timeout, connect(&ctx.net)).await {
            Ok(Ok((s, _))) => {
                t.connections += 1;
                s
            }
            Ok(Err(f)) => return fail(t, f),
            Err(_) => return fail(t, (TransportError::Timeout, "connect timed out".into())),
        }
    };
    let started = Instant::now();
    let exchange = async {
        let resp = match &mut sender {
            Sender::H1(s) => send_h1(s, req).await?,
            Sender::H2(s) => send_h2(s, req).await?,
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Ok(Err((status, body)));
        }
        let mut reader = DocReader::new(resp.into_body());
        let first = reader.next().await.map_err(|e| (TransportError::Read, e))?;
        Ok(Ok((reader, first)))
    };
    let answer = match tokio::time::timeout(ctx.timeout, exchange).await {
        Err(_) => {
            return fail(
                t,
                (
                    TransportError::Timeout,
                    format!("no first chunk within {:?}", ctx.timeout),
                ),
            )
        }
        Ok(Err(f)) => return fail(t, f),
        Ok(Ok(answer)) => answer,
    };
    match answer {
        Err((status, body)) => {
            let mut code = None;
            for_each_error_code(&body, |c| {
                code.get_or_insert(c);
            });
            bump(
                &mut t.refused,
                code.map_or_else(|| format!("http {status}"), |c| c.to_string()),
            );
            None
        }
        Ok((reader, Some(Doc::Xml(doc)))) => match classify(&doc) {
            Kind::Channel(id) => {
                ctx.record(|h| &mut h.open, started.elapsed());
                t.opened = 1;
                Some((reader, id, sender))
            }
            other => fail(
                t,
                (
                    TransportError::Protocol,
                    format!("the first chunk is not a <Channel>: {other:?}"),
                ),
            ),
        },
        Ok((_, Some(Doc::Bad(e)))) => fail(
            t,
            (TransportError::Protocol, format!("the first chunk: {e}")),
        ),
        Ok((_, None)) => fail(
            t,
            (
                TransportError::Closed,
                "the stream ended before its first chunk".into(),
            ),
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Holding,
    /// The hold is over: waiting for the heartbeats' answers.
    Draining,
    /// DELETE sent: waiting for the stream's end.
    Deleting,
}

/// Holds an open channel until `stop`, then deletes it and reads its
/// stream to the end.
async fn hold(
    ctx: &Arc<Ctx>,
    i: usize,
    t: &mut Tally,
    mut reader: DocReader,
    channel_id: &str,
    mut stop: watch::Receiver<bool>,
) {
    let every = ctx.heartbeat_every;
    let phase_offset = every.mul_f64(i as f64 / ctx.channels as f64);
    let mut next_beat = tokio::time::Instant::now() + phase_offset;
    // Heartbeats sent and not yet seen on the stream: (number, sent at).
    let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
    let mut beats = 0u64;
    let mut side: JoinSet<Side> = JoinSet::new();
    let beat_path: Arc<str> = format!("{CHANNEL_PATH}/{channel_id}/heartbeat").into();
    let mut phase = Phase::Holding;
    // Once the DELETE is answered: when the stream must have ended.
    let mut end_by: Option<tokio::time::Instant> = None;
    // The reason of the last chunk, when it was a ChannelTerminatedEvent.
    let mut last_terminated: Option<String> = None;
    let ended: Result<(), String> = loop {
        if phase == Phase::Draining && side.is_empty() {
            t.deletes_sent += 1;
            let c = ctx.clone();
            let path = format!("{CHANNEL_PATH}/{channel_id}");
            side.spawn(async move {
                // As many DELETEs in flight as opens were.
                let _permit = c.in_flight.acquire().await;
                let started = Instant::now();
                let result = c.control(i, Method::DELETE, &path, Bytes::new()).await;
                Side::Delete {
                    started,
                    finished: Instant::now(),
                    result,
                }
            });
            phase = Phase::Deleting;
        }
        tokio::select! {
            doc = reader.next() => match doc {
                Ok(Some(Doc::Xml(doc))) => {
                    last_terminated = None;
                    match classify(&doc) {
                        Kind::Heartbeat => {
                            t.beat_chunks += 1;
                            match pending.pop_front() {
                                Some((_, sent)) => ctx.record(|h| &mut h.rtt, sent.elapsed()),
                                None => t.beat_unexpected += 1,
                            }
                        }
                        Kind::Event(kind, ack) => {
                            bump(&mut t.events, kind);
                            if let Some(event_id) = ack {
                                let c = ctx.clone();
                                side.spawn(async move {
                                    let body = wire::event_response(&wire::EventResponse {
                                        event_id,
                                        status_code: 200,
                                        reason: String::new(),
                                    })
                                    .to_xml();
                                    let path = format!("{CHANNEL_PATH}/eventresponse");
                                    let body = Bytes::from(body);
                                    Side::Ack(c.control(i, Method::POST, &path, body).await)
                                });
                            }
                        }
                        Kind::Terminated(reason) => {
                            bump(&mut t.terminated, reason.as_str());
                            last_terminated = Some(reason);
                        }
                        Kind::Channel(_) => bump(&mut t.other, "Channel (a second one)"),
                        Kind::Other(name) => bump(&mut t.other, name),
                    }
                }
                Ok(Some(Doc::Bad(e))) => {
                    last_terminated = None;
                    bump(&mut t.other, "not well-formed");
                    t.error(|| format!("a chunk: {e}"));
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            },
            _ = tokio::time::sleep_until(next_beat), if phase == Phase::Holding => {
                beats += 1;
                let sent = Instant::now();
                pending.push_back((beats, sent));
                t.beats_sent += 1;
                let c = ctx.clone();
                let path = beat_path.clone();
                side.spawn(async move {
                    let result = c.control(i, Method::PUT, &path, Bytes::new()).await;
                    Side::Beat {
                        seq: beats,
                        started: sent,
                        finished: Instant::now(),
                        result,
                    }
                });
                next_beat += every;
                let now = tokio::time::Instant::now();
                if next_beat < now {
                    // Behind (a stalled client): no burst to catch up.
                    next_beat = now + every;
                }
            }
            Some(done) = side.join_next(), if !side.is_empty() => {
                if on_side(ctx, t, done, &mut pending) {
                    end_by = Some(tokio::time::Instant::now() + ctx.timeout);
                }
            }
            _ = stop.wait_for(|s| *s), if phase == Phase::Holding => {
                phase = Phase::Draining;
            }
            _ = sleep_until_some(end_by), if end_by.is_some() => {
                let waited = ctx.timeout;
                break Err(format!("no end of the stream within {waited:?} of its DELETE's answer"));
            }
        }
    };
    // The answers still out (each bounded by --timeout).
    while let Some(done) = side.join_next().await {
        on_side(ctx, t, done, &mut pending);
    }
    if phase == Phase::Deleting {
        match (ended, last_terminated) {
            (Ok(()), Some(_)) => t.ended_terminated += 1,
            (Ok(()), None) => bump(&mut t.end_problems, "ended without ChannelTerminatedEvent"),
            (Err(e), _) => {
                bump(&mut t.end_problems, "stream error or no end");
                t.error(|| e);
            }
        }
    } else {
        let cause = match (ended, last_terminated) {
            (Ok(()), Some(reason)) => format!("ChannelTerminatedEvent {reason}"),
            (Ok(()), None) => "stream ended".into(),
            (Err(e), _) => {
                t.error(|| e);
                "stream error".into()
            }
        };
        bump(&mut t.lost, cause);
    }
}

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Counts a request sent beside the stream; true when it was the DELETE.
fn on_side(
    ctx: &Ctx,
    t: &mut Tally,
    done: Result<Side, tokio::task::JoinError>,
    pending: &mut VecDeque<(u64, Instant)>,
) -> bool {
    let side = match done {
        Ok(side) => side,
        Err(e) => {
            t.error(|| format!("request task: {e}"));
            return false;
        }
    };
    let delete = matches!(side, Side::Delete { .. });
    match side {
        Side::Beat {
            seq,
            started,
            finished,
            result,
        } => match result {
            Ok(200) => {
                t.beats_ok += 1;
                ctx.record(|h| &mut h.put, finished.saturating_duration_since(started));
            }
            other => {
                // No chunk will come for it.
                pending.retain(|(n, _)| *n != seq);
                let key = match other {
                    Ok(status) => format!("http {status}"),
                    Err((kind, detail)) => {
                        t.error(|| format!("heartbeat: {detail}"));
                        kind.as_str().to_string()
                    }
                };
                bump(&mut t.beat_failures, key);
            }
        },
        Side::Ack(result) => match result {
            Ok(200) => t.acks += 1,
            Ok(status) => bump(&mut t.other, format!("eventresponse http {status}")),
            Err((kind, detail)) => {
                t.error(|| format!("eventresponse: {detail}"));
                bump(&mut t.other, format!("eventresponse {}", kind.as_str()));
            }
        },
        Side::Delete {
            started,
            finished,
            result,
        } => match result {
            Ok(200) => {
                t.deletes_ok += 1;
                ctx.record(
                    |h| &mut h.delete,
                    finished.saturating_duration_since(started),
                );
            }
            Ok(status) => bump(&mut t.end_problems, format!("DELETE http {status}")),
            Err((kind, detail)) => {
                t.error(|| format!("DELETE: {detail}"));
                bump(&mut t.end_problems, format!("DELETE {}", kind.as_str()));
            }
        },
    }
    delete
}

/// Streams one HTTP/2 connection should hold at most (the server's
/// default `limits.max_concurrent_streams` is 256; heartbeats need some).
const STREAMS_PER_H2_CONNECTION: usize = 200;

/// Opens, holds and ends the channels; returns the report (`clock_step_ns`
/// left 0 for the caller).
pub async fn run(plan: &Plan, hold_plan: &Hold) -> Result<ChannelsReport, String> {
    let net = Net {
        addr: plan.addr,
        server_name: plan.server_name.clone(),
        connector: TlsConnector::from(Arc::new(plan.tls.clone())),
    };
    let rss_before = hold_plan.server_pid.map(rss_kib).transpose()?;

    // The control connections (HTTP/2: the channels' connections too).
    let mut connecting = JoinSet::new();
    let net = Arc::new(net);
    for _ in 0..plan.connections {
        let net = net.clone();
        let timeout = plan.timeout;
        connecting.spawn(async move {
            tokio::time::timeout(timeout, connect(&net))
                .await
                .unwrap_or_else(|_| Err((TransportError::Timeout, "connect timed out".into())))
        });
    }
    let mut total = Tally::new();
    let mut links = Vec::with_capacity(plan.connections);
    let mut negotiated: Option<Negotiated> = None;
    while let Some(r) = connecting.join_next().await {
        match r.map_err(|e| e.to_string())? {
            Ok((sender, n)) => {
                total.connections += 1;
                negotiated.get_or_insert(n);
                links.push(match sender {
                    Sender::H1(s) => Link::H1(tokio::sync::Mutex::new(Some(s))),
                    Sender::H2(s) => Link::H2(s),
                });
            }
            Err((kind, e)) => {
                bump(&mut total.open_errors, kind.as_str());
                total.error(|| e);
            }
        }
    }
    if links.is_empty() {
        return Err(total.first_error.unwrap_or_else(|| "no connection".into()));
    }
    // Connection failures are not channel failures.
    total.open_errors.clear();
    let h2 = matches!(links[0], Link::H2(_));
    let per_connection = hold_plan.channels.div_ceil(links.len());
    if h2 && per_connection > STREAMS_PER_H2_CONNECTION {
        eprintln!(
            "bwgate load: warning: {per_connection} channels per HTTP/2 connection, but the server \
             allows limits.max_concurrent_streams (default 256) streams per connection: \
             use more --connections"
        );
    }
    let net = Arc::try_unwrap(net).map_err(|_| "connect tasks still running")?;
    let run_token = super::template::run_token();
    let ctx = Arc::new(Ctx {
        net,
        authority: plan.host_header.clone(),
        auth: plan
            .auth
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|e| format!("Authorization header: {e}"))?,
        h2,
        links,
        timeout: plan.timeout,
        heartbeat_every: hold_plan.heartbeat_every,
        channels: hold_plan.channels,
        channel_set: hold_plan.channel_set.clone(),
        run: run_token.clone(),
        in_flight: Semaphore::new(plan.connections),
        hists: std::sync::Mutex::new(Hists::new()),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let (answered_tx, mut answered_rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..hold_plan.channels {
        tasks.spawn(channel(
            ctx.clone(),
            i,
            stop_rx.clone(),
            answered_tx.clone(),
        ));
    }
    drop(answered_tx);
    drop(stop_rx);
    let mut answered = 0;
    while answered < hold_plan.channels && answered_rx.recv().await.is_some() {
        answered += 1;
    }
    let hold_start = Instant::now();
    tokio::time::sleep(plan.duration).await;
    let rss_held = hold_plan.server_pid.map(|pid| rss_kib(pid).unwrap_or(0));
    let hold_end = Instant::now();
    let _ = stop_tx.send(true);

    // Every step of a channel's end is bounded by --timeout; this only
    // guards against a bug.
    let hard_stop = tokio::time::Instant::now() + plan.timeout * 4 + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(hard_stop, tasks.join_next()).await {
            Ok(Some(Ok(t))) => total.merge(&t),
            Ok(Some(Err(e))) => return Err(format!("channel task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len() as u64;
                tasks.abort_all();
                *total
                    .end_problems
                    .entry("still open at the hard stop".into())
                    .or_insert(0) += left;
                break;
            }
        }
    }
    let rss_after = hold_plan.server_pid.map(|pid| rss_kib(pid).unwrap_or(0));

    let server_rss = match (hold_plan.server_pid, rss_before, rss_held, rss_after) {
        (Some(pid), Some(before), Some(held), Some(after)) => Some(ServerRss {
            pid,
            before_kib: before,
            held_kib: held,
            after_kib: after,
            per_channel_bytes: if total.opened == 0 {
                0.0
            } else {
                ((held as f64 - before as f64) * 1024.0 / total.opened as f64).round()
            },
        }),
        _ => None,
    };
    let (tls, alpn) = negotiated.map(|n| (n.tls, n.alpn)).unzip();
    let hists = ctx.hists.lock().unwrap_or_else(|p| p.into_inner());
    Ok(ChannelsReport {
        url: format!("https://{}", plan.host_header),
        http: match plan.http {
            super::HttpVersion::Http1 => "1",
            super::HttpVersion::Http2 => "2",
        },
        tls,
        alpn,
        connections: plan.connections,
        connections_opened: total.connections,
        threads: plan.threads,
        run: run_token,
        channel_sets: hold_plan
            .channel_set
            .clone()
            .unwrap_or_else(|| "one per channel".into()),
        heartbeat_every_secs: hold_plan.heartbeat_every.as_secs_f64(),
        duration_limit_secs: plan.duration.as_secs_f64(),
        clock_step_ns: 0,
        channels_asked: total.asked,
        channels_opened: total.opened,
        channels_refused: total.refused.values().sum(),
        refused_by_error_code: total.refused.clone(),
        open_errors: total.open_errors.clone(),
        first_error: total.first_error.clone(),
        lost_early: total.lost.values().sum(),
        lost_early_by_cause: total.lost.clone(),
        open_phase_secs: round3(hold_start.saturating_duration_since(start).as_secs_f64()),
        held_secs: round3(hold_end.saturating_duration_since(hold_start).as_secs_f64()),
        open_latency_us: Latency::from_histogram(&hists.open),
        heartbeats_sent: total.beats_sent,
        heartbeats_ok: total.beats_ok,
        heartbeat_failures: total.beat_failures.clone(),
        heartbeat_chunks_received: total.beat_chunks,
        heartbeat_chunks_unexpected: total.beat_unexpected,
        heartbeat_rtt_us: Latency::from_histogram(&hists.rtt),
        heartbeat_put_us: Latency::from_histogram(&hists.put),
        events_received: total.events.clone(),
        events_acknowledged: total.acks,
        other_chunks: total.other.clone(),
        deletes_sent: total.deletes_sent,
        deletes_ok: total.deletes_ok,
        delete_us: Latency::from_histogram(&hists.delete),
        ended_with_channel_terminated: total.ended_terminated,
        end_problems: total.end_problems.clone(),
        terminated_by_reason: total.terminated.clone(),
        server_rss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventKind, ProvisioningEvent};
    use crate::xsi::events::{EventDestination, EventEnvelope};

    fn docs(buf: &mut Vec<u8>, ended: bool) -> Vec<Doc> {
        let limits = XsiLimits::default();
        let mut out = Vec::new();
        while let Some(d) = take_doc(buf, ended, &limits).unwrap() {
            out.push(d);
        }
        out
    }

    fn names(docs: &[Doc]) -> Vec<String> {
        docs.iter()
            .map(|d| match d {
                Doc::Xml(e) => e.name.clone(),
                Doc::Bad(_) => "bad".into(),
            })
            .collect()
    }

    #[test]
    fn chunks_are_split_and_joined_whatever_the_framing() {
        let first = wire::to_chunk(&wire::channel("c-1", 3600));
        let beat = wire::to_chunk(&wire::channel_heartbeat());
        let end = wire::to_chunk(&wire::channel_terminated("c-1", "ChannelDeleted"));
        // Two documents in one frame.
        let mut buf = [&first[..], &beat[..]].concat();
        assert_eq!(
            names(&docs(&mut buf, false)),
            ["Channel", "ChannelHeartBeat"]
        );
        assert!(buf.is_empty());
        // One document over three frames: nothing until it is whole.
        let mut buf = Vec::new();
        for part in end.chunks(end.len() / 3 + 1) {
            buf.extend_from_slice(part);
            let got = docs(&mut buf, false);
            if buf.is_empty() {
                assert_eq!(names(&got), ["Event"]);
            } else {
                assert!(got.is_empty());
            }
        }
        // A broken document before the next one is reported, not fatal.
        let mut buf = [&b"<?xml version=\"1.0\"?><Oops>"[..], &beat[..]].concat();
        assert_eq!(names(&docs(&mut buf, false)), ["bad", "ChannelHeartBeat"]);
        // An unfinished one at the end of the stream too.
        let mut buf = b"<?xml version=\"1.0\"?><Oops>".to_vec();
        assert!(docs(&mut buf, false).is_empty());
        assert_eq!(names(&docs(&mut buf, true)), ["bad"]);
        let mut buf = b"\r\n ".to_vec();
        assert!(docs(&mut buf, true).is_empty());
    }

    fn parse(chunk: &[u8]) -> Element {
        crate::xsi::parse(chunk, Some(STREAM_CONTENT_TYPE), &XsiLimits::default()).unwrap()
    }

    #[test]
    fn chunks_are_classified_with_the_wire_readers() {
        assert_eq!(
            classify(&parse(&wire::to_chunk(&wire::channel("c-1", 60)))),
            Kind::Channel("c-1".into())
        );
        assert_eq!(
            classify(&parse(&wire::to_chunk(&wire::channel_heartbeat()))),
            Kind::Heartbeat
        );
        assert_eq!(
            classify(&parse(&wire::to_chunk(&wire::channel_terminated(
                "c-1",
                "ChannelDeleted"
            )))),
            Kind::Terminated("ChannelDeleted".into())
        );
        let env = EventEnvelope {
            event_id: "s-1.7",
            sequence_number: 1,
            user_id: "kim@bw.example",
            external_application_id: None,
            subscription_id: "s-1",
            destination: EventDestination::Channel("c-1"),
            target_id: Some("kim@bw.example"),
        };
        let event = ProvisioningEvent {
            seq: 7,
            service_provider_id: Some("sp".into()),
            user_id: Some("kim@bw.example".into()),
            ..ProvisioningEvent::bare(EventKind::SubscriberAccepted, 1_700_000_000_000, "p")
        };
        let chunk = wire::to_chunk(&wire::subscription_event(&env, &event));
        assert_eq!(
            classify(&parse(&chunk)),
            Kind::Event("SubscriberAcceptedEvent".into(), Some("s-1.7".into()))
        );
        let chunk = wire::to_chunk(&wire::subscription_terminated(&env));
        assert_eq!(
            classify(&parse(&chunk)),
            Kind::Event("SubscriptionTerminatedEvent".into(), Some("s-1.7".into()))
        );
        assert_eq!(
            classify(&parse(b"<Event><nothing/></Event>")),
            Kind::Event("unreadable".into(), None)
        );
        assert_eq!(
            classify(&parse(b"<Something/>")),
            Kind::Other("Something".into())
        );
    }

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tbwgate\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn hold_flags_are_checked() {
        assert!(Hold::new(0, None, None, None).is_err());
        assert!(Hold::new(MAX_CHANNELS + 1, None, None, None).is_err());
        let h = Hold::new(20, None, None, None).unwrap();
        assert_eq!(h.heartbeat_every, DEFAULT_HEARTBEAT_EVERY);
        assert!(Hold::new(1, Some(Duration::from_millis(10)), None, None).is_err());
        assert!(Hold::new(1, None, Some(String::new()), None).is_err());
        assert!(Hold::new(1, None, Some("set".into()), None).is_ok());
    }
}
