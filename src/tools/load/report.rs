//! What a load run measured: per-connection tallies merged at the end into
//! one [`Report`] (text or JSON), with an HDR latency histogram in µs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above this (µs) are recorded as this; 60 s is far above any
/// request timeout the tool allows.
pub const HIST_MAX_US: u64 = 60_000_000;

/// Transport failures, by kind (no HTTP response was read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportError {
    Connect,
    TlsHandshake,
    Write,
    Read,
    /// The server closed the connection before a whole response.
    Closed,
    Timeout,
    /// An unparseable or oversized HTTP response.
    Protocol,
    Http2,
}

impl TransportError {
    pub const ALL: [TransportError; 8] = [
        TransportError::Connect,
        TransportError::TlsHandshake,
        TransportError::Write,
        TransportError::Read,
        TransportError::Closed,
        TransportError::Timeout,
        TransportError::Protocol,
        TransportError::Http2,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransportError::Connect => "connect",
            TransportError::TlsHandshake => "tls_handshake",
            TransportError::Write => "write",
            TransportError::Read => "read",
            TransportError::Closed => "closed_early",
            TransportError::Timeout => "timeout",
            TransportError::Protocol => "bad_response",
            TransportError::Http2 => "http2",
        }
    }
}

/// One connection task's tallies: no sharing, no locks on the hot path.
pub struct Tally {
    pub hist: Histogram<u64>,
    /// Indexed by status code (100..=599 used).
    pub status: Vec<u64>,
    pub error_codes: BTreeMap<u32, u64>,
    pub transport: [u64; TransportError::ALL.len()],
    pub ok: u64,
    pub connections: u64,
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
    /// Fixed rate: requests sent after their scheduled time because every
    /// connection was busy (their latency counts from the schedule).
    pub late: u64,
    pub first_error: Option<String>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            hist: new_histogram(),
            status: vec![0; 600],
            error_codes: BTreeMap::new(),
            transport: [0; TransportError::ALL.len()],
            ok: 0,
            connections: 0,
            full_handshakes: 0,
            resumed_handshakes: 0,
            late: 0,
            first_error: None,
        }
    }

    pub fn record_latency(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.hist.saturating_record(us.clamp(1, HIST_MAX_US));
    }

    pub fn record_status(&mut self, status: u16) {
        if let Some(slot) = self.status.get_mut(status as usize) {
            *slot += 1;
        }
    }

    pub fn record_transport(&mut self, kind: TransportError, detail: impl FnOnce() -> String) {
        self.transport[kind as usize] += 1;
        if self.first_error.is_none() {
            self.first_error = Some(detail());
        }
    }

    /// Counts every `errorCode` found in a response body (XML attribute
    /// `errorCode="9001"`, ErrorInfo `<errorCode>9004</errorCode>` or JSON
    /// `"errorCode":"9004"`); returns how many were found.
    pub fn record_error_codes(&mut self, body: &[u8]) -> usize {
        let mut found = 0;
        for_each_error_code(body, |code| {
            *self.error_codes.entry(code).or_insert(0) += 1;
            found += 1;
        });
        found
    }

    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        for (a, b) in self.status.iter_mut().zip(&other.status) {
            *a += b;
        }
        for (code, n) in &other.error_codes {
            *self.error_codes.entry(*code).or_insert(0) += n;
        }
        for (a, b) in self.transport.iter_mut().zip(other.transport) {
            *a += b;
        }
        self.ok += other.ok;
        self.connections += other.connections;
        self.full_handshakes += other.full_handshakes;
        self.resumed_handshakes += other.resumed_handshakes;
        self.late += other.late;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    pub fn responses(&self) -> u64 {
        self.status.iter().sum()
    }

    pub fn transport_errors(&self) -> u64 {
        self.transport.iter().sum()
    }
}

/// Records `d` in µs, clamped to the histogram's bounds.
pub fn record_us(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us.clamp(1, HIST_MAX_US));
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits: ~0.1% resolution, ~50 KiB.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Calls `f` with every numeric error code in `body`. A plain byte scan:
/// bodies are small and this runs on the load generator's hot path.
pub fn for_each_error_code(body: &[u8], mut f: impl FnMut(u32)) {
    const NEEDLE: &[u8] = b"errorCode";
    let mut i = 0;
    while i + NEEDLE.len() <= body.len() {
        if body[i] != b'e' || &body[i..i + NEEDLE.len()] != NEEDLE {
            i += 1;
            continue;
        }
        let mut j = i + NEEDLE.len();
        // Separators between the name and the value: `="`, `>`, `":"`, spaces.
        let mut skipped = 0;
        while j < body.len()
            && skipped < 4
            && matches!(body[j], b'=' | b'"' | b'\'' | b'>' | b':' | b' ')
        {
            j += 1;
            skipped += 1;
        }
        let start = j;
        let mut code: u32 = 0;
        while j < body.len() && body[j].is_ascii_digit() && j - start < 9 {
            code = code * 10 + u32::from(body[j] - b'0');
            j += 1;
        }
        if j > start {
            f(code);
        }
        i = j.max(i + NEEDLE.len());
    }
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency {
                count: 0,
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        Latency {
            count: h.len(),
            min: h.min(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// How the run was set up, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub url: String,
    pub method: &'static str,
    pub mode: &'static str,
    /// What was asked for: "1" or "2".
    pub http: &'static str,
    pub connections: usize,
    pub threads: usize,
    /// Fixed rate in requests/s; `None` = as fast as possible.
    pub rate: Option<f64>,
    pub duration_limit_secs: f64,
    pub request_limit: u64,
    pub run: String,
    /// Negotiated on the first connection, e.g. `TLSv1.3 TLS13_AES_256_GCM_SHA384 X25519`.
    pub tls: Option<String>,
    /// ALPN the server chose on the first connection.
    pub alpn: Option<String>,
    /// Smallest step of the client's monotonic clock (see `clock_step`).
    pub clock_step_ns: u64,
}

/// The whole result, as printed (`--json` prints exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    /// Requests finished: with an HTTP response or a transport error.
    pub requests: u64,
    pub responses: u64,
    /// 2xx responses without any `errorCode` in their body.
    pub ok: u64,
    pub duration_secs: f64,
    /// `requests / duration_secs`.
    pub throughput: f64,
    /// `ok / duration_secs`.
    pub ok_throughput: f64,
    pub status: BTreeMap<String, u64>,
    /// Occurrences of each `errorCode` in response bodies (one per failed
    /// operation for flow-through answers, one per ErrorInfo).
    pub error_codes: BTreeMap<String, u64>,
    pub transport_errors: BTreeMap<String, u64>,
    pub first_transport_error: Option<String>,
    pub connections_opened: u64,
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
    /// Fixed rate only: requests that left after their scheduled time
    /// because all connections were busy.
    pub late_requests: u64,
    /// Microseconds; from the scheduled send time with `--rate`.
    pub latency_us: Latency,
}

impl Report {
    pub fn new(info: RunInfo, t: &Tally, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let responses = t.responses();
        let requests = responses + t.transport_errors();
        let status = t
            .status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        let transport_errors = TransportError::ALL
            .iter()
            .filter(|k| t.transport[**k as usize] > 0)
            .map(|k| (k.as_str().to_string(), t.transport[*k as usize]))
            .collect();
        Report {
            info,
            requests,
            responses,
            ok: t.ok,
            duration_secs: round3(secs),
            throughput: round1(requests as f64 / secs),
            ok_throughput: round1(t.ok as f64 / secs),
            status,
            error_codes: t
                .error_codes
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            transport_errors,
            first_transport_error: t.first_error.clone(),
            connections_opened: t.connections,
            full_handshakes: t.full_handshakes,
            resumed_handshakes: t.resumed_handshakes,
            late_requests: t.late,
            latency_us: Latency::from_histogram(&t.hist),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let i = &self.info;
        let mut s = String::new();
        let rate = match i.rate {
            Some(r) => format!("fixed rate {r} req/s"),
            None => "max rate".into(),
        };
        let _ = writeln!(
            s,
            "bwgate load: {} {} ({}, HTTP/{}, {} connection(s), {rate}, {} thread(s), run {})",
            i.method, i.url, i.mode, i.http, i.connections, i.threads, i.run
        );
        if let Some(tls) = &i.tls {
            let _ = writeln!(
                s,
                "tls:        {tls}, ALPN {}; {} connection(s): {} full handshake(s), {} resumed",
                i.alpn.as_deref().unwrap_or("none"),
                self.connections_opened,
                self.full_handshakes,
                self.resumed_handshakes
            );
        }
        let _ = writeln!(
            s,
            "requests:   {} in {:.3} s = {:.1} req/s ({} ok = {:.1} req/s)",
            self.requests, self.duration_secs, self.throughput, self.ok, self.ok_throughput
        );
        let _ = writeln!(s, "status:     {}", counts(&self.status));
        let _ = writeln!(s, "errorCodes: {}", counts(&self.error_codes));
        let _ = write!(s, "transport:  {}", counts(&self.transport_errors));
        if let Some(e) = &self.first_transport_error {
            let _ = write!(s, " (first: {e})");
        }
        s.push('\n');
        if i.rate.is_some() {
            let _ = writeln!(
                s,
                "late:       {} request(s) sent behind schedule (latency counted from the schedule)",
                self.late_requests
            );
        }
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "latency µs: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (min {}, mean {:.1}, n {})",
            l.p50, l.p90, l.p99, l.p999, l.max, l.min, l.mean, l.count
        );
        s
    }
}

/// `k=v k=v` (or `none`), as the text report prints counts.
pub fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            url: "https://127.0.0.1:1/".into(),
            method: "POST",
            mode: "keepalive",
            http: "1",
            connections: 2,
            threads: 1,
            rate: None,
            duration_limit_secs: 10.0,
            request_limit: 100,
            run: "r".into(),
            tls: None,
            alpn: None,
            clock_step_ns: 50,
        }
    }

    #[test]
    fn percentiles_of_a_known_histogram() {
        // 1..=1000 µs once each: below 2048 the histogram is exact.
        let mut t = Tally::new();
        for us in 1..=1000u64 {
            t.record_latency(Duration::from_micros(us));
        }
        let l = Latency::from_histogram(&t.hist);
        assert_eq!(l.count, 1000);
        assert_eq!(l.min, 1);
        assert_eq!(l.p50, 500);
        assert_eq!(l.p90, 900);
        assert_eq!(l.p99, 990);
        assert_eq!(l.p999, 999);
        assert_eq!(l.max, 1000);
        assert!((l.mean - 500.5).abs() < 0.01, "{}", l.mean);
    }

    #[test]
    fn outlier_shows_in_the_tail_only_and_large_values_keep_3_digits() {
        let mut t = Tally::new();
        for _ in 0..999 {
            t.record_latency(Duration::from_micros(100));
        }
        t.record_latency(Duration::from_millis(250));
        let l = Latency::from_histogram(&t.hist);
        assert_eq!((l.p50, l.p99), (100, 100));
        assert!(l.max >= 250_000 && l.max <= 250_000 + 250, "{}", l.max);
        assert_eq!(l.p999, 100);
        // Zero and absurd values are clamped, never lost.
        t.record_latency(Duration::ZERO);
        t.record_latency(Duration::from_secs(3600));
        assert_eq!(t.hist.len(), 1002);
        assert!(t.hist.max() >= HIST_MAX_US);
    }

    #[test]
    fn merge_and_throughput() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        for _ in 0..30 {
            a.record_status(200);
            a.ok += 1;
            a.record_latency(Duration::from_micros(10));
        }
        for _ in 0..10 {
            b.record_status(401);
            b.record_error_codes(b"<errorCode>9004</errorCode>");
            b.record_latency(Duration::from_micros(20));
        }
        b.record_transport(TransportError::Timeout, || "timed out".into());
        a.merge(&b);
        let r = Report::new(info(), &a, Duration::from_secs(2));
        assert_eq!(r.requests, 41);
        assert_eq!(r.responses, 40);
        assert_eq!(r.ok, 30);
        assert_eq!(r.throughput, 20.5);
        assert_eq!(r.ok_throughput, 15.0);
        assert_eq!(r.status["200"], 30);
        assert_eq!(r.status["401"], 10);
        assert_eq!(r.error_codes["9004"], 10);
        assert_eq!(r.transport_errors["timeout"], 1);
        assert_eq!(r.first_transport_error.as_deref(), Some("timed out"));
        assert_eq!(r.latency_us.p50, 10);
        assert_eq!(r.latency_us.max, 20);
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["requests"], 41);
        assert_eq!(json["latency_us"]["p99"], 20);
        assert_eq!(json["mode"], "keepalive");
        assert!(
            r.to_text().contains("status:     200=30 401=10"),
            "{}",
            r.to_text()
        );
    }

    #[test]
    fn error_codes_in_every_shape() {
        let mut got = Vec::new();
        let body = br#"<result><error errorCode="9001">x</error></result><result><error errorCode="1001">y</error></result>
<ErrorInfo><errorCode>9004</errorCode></ErrorInfo> {"errorCode":"4003"} {"errorCode": 12} errorCode="" errorCode"#;
        for_each_error_code(body, |c| got.push(c));
        assert_eq!(got, vec![9001, 1001, 9004, 4003, 12]);
        let mut none = Vec::new();
        for_each_error_code(b"<result status=\"provisioning\"/>", |c| none.push(c));
        assert!(none.is_empty());
    }

    #[test]
    fn empty_run_reports_zeros() {
        let r = Report::new(info(), &Tally::new(), Duration::ZERO);
        assert_eq!(r.requests, 0);
        assert_eq!(r.latency_us.max, 0);
        assert_eq!(r.throughput, 0.0);
    }
}
