//! Abuse tests: transport. Bodies held open on HTTP/2 streams, bodies over
//! the route's limit and the budgets, idle HTTP/2 connections, peers that
//! never answer PINGs, PING and SETTINGS floods, missing or repeated Host
//! headers, and the portal's security headers. Each attack is bounded in
//! count and time and asserts the refusal (status and error code) or the
//! bound (RSS of the server process, time to close).

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::harness::Server;

type Tls = TlsStream<TcpStream>;

/// A TLS connection to the portal (no client certificate) or, with
/// `mtls`, to the provisioning listener; ALPN offers h2 when asked.
async fn connect(server: &Server, mtls: bool, h2: bool) -> Tls {
    let (addr, tls) = if mtls {
        (server.https, server.dev_tls(h2))
    } else {
        let ca = server.certs().join("ca.crt");
        let tls = bwgate::tls::client_config(&ca, None, None, h2).expect("portal tls config");
        (server.portal, tls)
    };
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("tls handshake")
}

/// An h2 client on a fresh connection (its driver runs in the background).
async fn h2_client(server: &Server, mtls: bool) -> h2::client::SendRequest<Bytes> {
    let io = connect(server, mtls, true).await;
    let (client, driver) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .handshake(io)
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = driver.await;
    });
    client
}

/// A POST whose body is announced as `length` bytes and then only partly
/// sent (`false`: the stream stays open).
fn post(server: &Server, mtls: bool, path: &str, length: usize) -> http::Request<()> {
    let authority = if mtls { server.https } else { server.portal };
    http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost:{}{path}", authority.port()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", length.to_string())
        .body(())
        .unwrap()
}

/// Sends up to `total` bytes on `stream` as flow control allows; stops
/// when the server gives no more window for a second or resets the stream.
async fn send_until_stalled(stream: &mut h2::SendStream<Bytes>, total: usize) -> usize {
    let mut sent = 0;
    while sent < total {
        stream.reserve_capacity((total - sent).min(64 * 1024));
        let capacity = poll_fn(|cx| stream.poll_capacity(cx));
        match tokio::time::timeout(Duration::from_secs(1), capacity).await {
            Ok(Some(Ok(n))) if n > 0 => {
                if stream.send_data(Bytes::from(vec![b'a'; n]), false).is_err() {
                    break;
                }
                sent += n;
            }
            _ => break,
        }
    }
    sent
}

/// Status and body text of a response, within `limit`.
async fn answer(response: h2::client::ResponseFuture, limit: Duration) -> Option<(u16, String)> {
    let response = tokio::time::timeout(limit, response).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(limit, body.data()).await {
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    Some((status, String::from_utf8_lossy(&text).into_owned()))
}

/// `VmRSS` or `VmHWM` (peak) of a process, in KiB.
fn memory_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("memory field")
}

/// Writes `request` on a fresh HTTP/1.1 connection and returns what comes
/// back until the server closes or `limit` passes.
async fn http1(server: &Server, mtls: bool, request: &[u8], limit: Duration) -> String {
    let mut tls = connect(server, mtls, false).await;
    tls.write_all(request).await.expect("write");
    read_for(&mut tls, limit).await
}

async fn read_for(tls: &mut Tls, limit: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + limit;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline.into(), tls.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        // One whole answer is enough once its body is in.
        if let Some(len) = content_length(&out) {
            if let Some(head_end) = find(&out, b"\r\n\r\n") {
                if out.len() >= head_end + 4 + len {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn content_length(raw: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

fn status_of(raw: &str) -> u16 {
    raw.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

// ---- raw HTTP/2 frames, for what the h2 client will not do ----

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Opens an HTTP/2 connection by hand: preface and an empty SETTINGS.
async fn raw_h2(server: &Server) -> Tls {
    let mut tls = connect(server, false, true).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    tls.write_all(&hello).await.expect("preface");
    tls
}

/// Frame types read until the server closes the connection, with the time
/// it took; `None` when still open after `limit`. Answers nothing (no
/// SETTINGS or PING acknowledgement).
async fn frames_until_close(tls: &mut Tls, limit: Duration) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, tls.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let mut kinds = Vec::new();
    let mut at = 0;
    while raw.len() >= at + 9 {
        let len = u32::from_be_bytes([0, raw[at], raw[at + 1], raw[at + 2]]) as usize;
        kinds.push(raw[at + 3]);
        at += 9 + len;
    }
    Some((kinds, started.elapsed()))
}

// ---- bodies ----

/// The attack: one anonymous HTTP/2 connection to the portal, 250
/// streams each announcing a 4 MiB form and sending 3.2 MiB of it, never
/// finishing. Before: ~0.8 GiB held. Now the portal reads at most
/// `max_form_body_bytes` per route, so each stream is refused at once
/// (413, 9010) from its declared length, and the server's peak RSS grows by
/// far less than one such body per stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_portal_bodies_on_one_h2_connection_are_refused_and_memory_stays_bounded() {
    let server = Server::start();
    let (status, _) = server.portal_get("/").await;
    assert_eq!(status, 200);
    let pid = server.pid();
    let before = memory_kib(pid, "VmRSS");

    let client = h2_client(&server, false).await;
    let mut attacks = Vec::new();
    for _ in 0..250 {
        let mut client = client.clone();
        let request = post(&server, false, "/activate/signin", 4 << 20);
        attacks.push(tokio::spawn(async move {
            let (response, mut body) = client.send_request(request, false).ok()?;
            let sent = send_until_stalled(&mut body, 3_200_000).await;
            let answered = tokio::time::timeout(Duration::from_secs(20), response).await;
            let outcome = match answered {
                Err(_) => None, // still held after 20 s
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    Some(Ok((status, answer_text(resp).await)))
                }
                Ok(Err(e)) => Some(Err(e)),
            };
            Some((sent, outcome))
        }));
    }
    let mut refused = 0;
    let mut refused_streams = 0;
    let mut sent_total = 0;
    for attack in attacks {
        if let Ok(Some((sent, outcome))) = attack.await {
            sent_total += sent;
            match outcome {
                Some(Ok((status, body))) => {
                    assert_eq!(status, 413, "{body}");
                    assert!(body.contains("9010"), "{body}");
                    refused += 1;
                }
                // Streams opened beyond portal_max_concurrent_streams (the
                // client may open them all before the server's SETTINGS
                // arrive, or just before a slot is freed): the stream limit
                // refuses them.
                Some(Err(e)) if e.reason() == Some(h2::Reason::REFUSED_STREAM) => {
                    refused_streams += 1
                }
                Some(Err(e)) => panic!("stream failed: {e}"),
                None => {}
            }
        }
    }
    let peak = memory_kib(pid, "VmHWM");
    let after = memory_kib(pid, "VmRSS");
    eprintln!(
        "250 unfinished 4 MiB portal bodies: RSS before {before} KiB, peak {peak} KiB, after {after} KiB; \
{sent_total} body bytes accepted by flow control, {refused} streams answered 413, \
{refused_streams} refused by the stream limit"
    );
    drop(client);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = memory_kib(pid, "VmRSS");
    eprintln!("RSS 1 s after the connection closed: {closed} KiB");
    assert_eq!(refused + refused_streams, 250, "every stream is refused");
    assert!(refused >= 16, "{refused} answered 413");
    // 250 × 3.2 MB held would be ~780 MiB; one connection's windows are
    // well under a MiB.
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "peak RSS grew by {} KiB",
        peak - before
    );
    // Still serving.
    let (status, _) = server.portal_get("/").await;
    assert_eq!(status, 200);
}

/// The worst case within the limits: portal connections each holding the
/// most streams allowed, each with a form body one byte short of the limit
/// and never finished. Memory stays within the budgets' reach, and the
/// process budget refuses the excess with 503 / 9036.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_bodies_within_the_limit_are_bounded_by_the_budgets() {
    let server = Server::start_with(
        Some(
            "[limits]\nmax_form_body_bytes = 16384\nmax_body_bytes = 65536\n\
max_connection_body_bytes = 262144\nmax_buffered_body_bytes = 1048576\n\
portal_max_concurrent_streams = 16\nbody_read_timeout_ms = 60000\n",
        ),
        &[],
    );
    let pid = server.pid();
    let before = memory_kib(pid, "VmRSS");
    let mut held = Vec::new();
    let mut over_connection = 0;
    let mut over_process = 0;
    for _ in 0..40 {
        let client = h2_client(&server, false).await;
        let mut streams = Vec::new();
        for _ in 0..16 {
            let mut client = client.clone();
            let request = post(&server, false, "/activate/signin", 16384);
            let Ok((response, mut body)) = client.send_request(request, false) else {
                continue;
            };
            let _ = send_until_stalled(&mut body, 16383).await;
            streams.push((response, body));
        }
        // A stream that got an answer was refused; the others are held.
        for (response, body) in streams {
            let waiting = tokio::time::timeout(Duration::from_millis(50), response).await;
            match waiting {
                Err(pending) => {
                    let _ = pending;
                    held.push(body);
                }
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let text = answer_text(resp).await;
                    match status {
                        413 if text.contains("9010") => over_connection += 1,
                        503 if text.contains("9036") => over_process += 1,
                        _ => panic!("unexpected {status}: {text}"),
                    }
                }
                Ok(Err(e)) => panic!("stream failed: {e}"),
            }
        }
    }
    let peak = memory_kib(pid, "VmHWM");
    eprintln!(
        "40 portal connections × 16 unfinished 16 KiB bodies: RSS before {before} KiB, peak {peak} KiB; \
{} held, {over_connection} over a connection's budget, {over_process} over the process budget",
        held.len()
    );
    // 1 MiB process budget / 16 KiB = 64 bodies held, the rest refused;
    // 16 streams × 16 KiB fit one connection's budget.
    assert!(held.len() <= 64, "{} held", held.len());
    assert_eq!(over_connection, 0);
    assert!(
        over_process >= 500,
        "{over_process} refused by the process budget"
    );
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "peak RSS grew by {} KiB",
        peak - before
    );
    let (status, _) = server.portal_get("/").await;
    assert_eq!(status, 200);
}

async fn answer_text(resp: http::Response<h2::RecvStream>) -> String {
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout(Duration::from_secs(5), body.data()).await
    {
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// HTTP/2 streams of one mTLS client share the connection's budget: two
/// flow-through documents in progress at once fit, a third is 413 / 9010
/// (which of the three depends on the order the server reads them in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_one_connection_share_its_body_budget() {
    let server = Server::start_with(
        Some(
            "[limits]\nmax_body_bytes = 16384\nmax_form_body_bytes = 4096\n\
max_connection_body_bytes = 32768\nbody_read_timeout_ms = 60000\n",
        ),
        &[],
    );
    let client = h2_client(&server, true).await;
    let path = "/uc-one/v1/provisioning/demo";
    let mut streams = Vec::new();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let (response, mut body) = client
            .clone()
            .send_request(post(&server, true, path, 16384), false)
            .expect("stream");
        send_until_stalled(&mut body, 100).await;
        bodies.push(body);
        streams.push(tokio::spawn(answer(response, Duration::from_secs(5))));
    }
    let mut refused = Vec::new();
    let mut waiting = 0;
    for stream in streams {
        match stream.await.unwrap() {
            Some(answered) => refused.push(answered),
            None => waiting += 1,
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    let (status, text) = &refused[0];
    assert_eq!(*status, 413, "{text}");
    assert!(text.contains("<errorCode>9010</errorCode>"), "{text}");
    assert!(text.contains("connection"), "{text}");
    // The other two are still waiting for their bodies, not refused.
    assert_eq!(waiting, 2);
    drop(bodies);
}

/// Bodies over the route's own limit: a portal form announcing more than
/// `max_form_body_bytes` is refused from its Content-Length before a byte
/// of it is sent (the flow-through limit no longer applies on the portal).
#[tokio::test]
async fn portal_bodies_over_the_form_limit_are_refused_before_they_are_read() {
    let server = Server::start();
    let big = 4 << 20;
    let head = format!(
        "POST /activate/signin HTTP/1.1\r\nHost: localhost\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {big}\r\n\r\n"
    );
    let started = Instant::now();
    let answer = http1(&server, false, head.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("9010"), "{answer}");
    assert!(answer.contains("16384"), "names the limit: {answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // Just over the limit, sent in full: read and discarded, then 413.
    let mut request = b"POST /activate/signin HTTP/1.1\r\nHost: localhost\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16385\r\n\r\n"
        .to_vec();
    request.extend(std::iter::repeat_n(b'a', 16385));
    let answer = http1(&server, false, &request, Duration::from_secs(5)).await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("9010"), "{answer}");
}

/// The process-wide budget over HTTP/1.1: connections holding unfinished
/// bodies use it up; the next body is refused with 503, errorCode 9036 and
/// Retry-After, and is accepted again once a holder finishes.
#[tokio::test]
async fn the_process_budget_refuses_with_503_and_recovers() {
    let server = Server::start_with(
        Some(
            "[limits]\nmax_body_bytes = 16384\nmax_form_body_bytes = 16384\n\
max_connection_body_bytes = 16384\nmax_buffered_body_bytes = 40000\n\
body_read_timeout_ms = 60000\n",
        ),
        &[],
    );
    // Any portal route reads its body first; POST / then answers 405.
    let head = "POST / HTTP/1.1\r\nHost: localhost\r\n\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\n";
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut tls = connect(&server, false, false).await;
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.write_all(b"user=a").await.unwrap();
        tls.flush().await.unwrap();
        holders.push(tls);
    }
    // Let the server reserve both before the third asks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = http1(&server, false, head.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&refused), 503, "{refused}");
    assert!(refused.contains("9036"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    // One holder finishes its body: its bytes go back to the budget.
    let mut first = holders.remove(0);
    first
        .write_all(&vec![b'a'; 16000 - "user=a".len()])
        .await
        .unwrap();
    let finished = read_for(&mut first, Duration::from_secs(10)).await;
    assert_eq!(status_of(&finished), 405, "{finished}");
    let mut request = head.as_bytes().to_vec();
    request.extend(std::iter::repeat_n(b'a', 16000));
    let accepted = http1(&server, false, &request, Duration::from_secs(10)).await;
    assert_eq!(status_of(&accepted), 405, "{accepted}");
}

// ---- idle HTTP/2 connections, PING deadline, control-frame floods ----

/// An HTTP/2 connection with no request in progress is closed with a
/// GOAWAY after `idle_timeout_ms`, so idle clients cannot hold every
/// `max_connections` slot (before: still open after 100 s; 10 idle
/// connections locked out a server limited to 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_with_goaway() {
    let server = Server::start_with(
        // A client that never acknowledges the GOAWAY's PING is dropped
        // after the keep-alive timeout.
        Some("[limits]\nidle_timeout_ms = 1000\nhttp2_keepalive_timeout_ms = 1000\nmax_connections = 3\n"),
        &[],
    );
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(raw_h2(&server).await);
    }
    for mut conn in idle {
        let (kinds, _) = frames_until_close(&mut conn, Duration::from_secs(10))
            .await
            .expect("idle connection closed within 10 s");
        assert!(kinds.contains(&GOAWAY), "{kinds:?}");
        let took = opened.elapsed();
        assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    }
    // The slots are free again.
    let (status, _) = server.portal_get("/").await;
    assert_eq!(status, 200);
}

/// A well-behaved client (hyper's, answering PINGs) that sends one request
/// and then nothing is closed too: its next request on the connection fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_that_answers_pings_is_closed_too() {
    let server = Server::start_with(Some("[limits]\nidle_timeout_ms = 1000\n"), &[]);
    let ca = server.certs().join("ca.crt");
    let tls = bwgate::tls::client_config(&ca, None, None, true).unwrap();
    let client = bwgate::client::HttpsClient::new(server.portal, "localhost", tls).unwrap();
    let mut conn = client.connect().await.expect("connect");
    assert!(conn.is_h2());
    let first = conn.send(bwgate::client::get("/")).await.expect("first");
    assert_eq!(first.status.as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        conn.send(bwgate::client::get("/")).await.is_err(),
        "the idle connection was closed"
    );
}

/// HTTP/1.1 keep-alive: after its answer, a connection that sends no next
/// request is closed after `idle_timeout_ms` too, even when the head
/// timeout (which hyper counts from the previous response) is longer.
#[tokio::test]
async fn idle_http1_keepalive_connections_are_closed() {
    let server = Server::start_with(
        Some("[limits]\nidle_timeout_ms = 1000\nheader_read_timeout_ms = 600000\n"),
        &[],
    );
    let mut tls = connect(&server, false, false).await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let first = read_for(&mut tls, Duration::from_secs(5)).await;
    assert_eq!(status_of(&first), 200, "{first}");
    let answered = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed within 10 s: {read:?}"
    );
    assert!(answered.elapsed() >= Duration::from_millis(800));
}

/// A peer that stops answering PINGs while a request is in progress (so
/// the idle timeout does not apply) is dropped after the keep-alive
/// interval plus its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_pings_is_dropped() {
    let server = Server::start_with(
        Some(
            "[limits]\nhttp2_keepalive_interval_ms = 500\nhttp2_keepalive_timeout_ms = 500\n\
idle_timeout_ms = 600000\nbody_read_timeout_ms = 600000\n",
        ),
        &[],
    );
    let mut conn = raw_h2(&server).await;
    // HEADERS for POST /activate/signin with a body to come (no
    // END_STREAM): literal header fields, no Huffman, no indexing.
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/activate/signin"),
        (":authority", "localhost"),
        ("content-length", "100"),
    ] {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    conn.write_all(&frame(0x1, 0x4, 1, &block)).await.unwrap();
    let (kinds, took) = frames_until_close(&mut conn, Duration::from_secs(10))
        .await
        .expect("closed within 10 s");
    assert!(kinds.contains(&PING), "{kinds:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

/// PING and SETTINGS floods. h2 answers one at a time and reads no further
/// frame until the answer is written, so a flooder that never reads stalls
/// on the socket buffers; one that reads its answers would make the server
/// answer at line rate. Both are closed once they pass
/// `http2_max_control_frames_per_sec`; others are served meanwhile and the
/// server's memory does not grow with the flood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_settings_floods_are_closed_and_others_are_served() {
    let server = Server::start();
    let pid = server.pid();
    let (status, _) = server.portal_get("/").await;
    assert_eq!(status, 200);
    let before = memory_kib(pid, "VmRSS");
    let mut flood = Vec::new();
    for i in 0..4096u64 {
        flood.extend(frame(PING, 0, 0, &i.to_be_bytes()));
        // SETTINGS_MAX_CONCURRENT_STREAMS (0x3) = 100, again and again.
        flood.extend(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]));
    }
    let mut flooders = Vec::new();
    for reads_answers in [false, false, true, true] {
        let conn = raw_h2(&server).await;
        let (mut rx, mut tx) = tokio::io::split(conn);
        if reads_answers {
            tokio::spawn(async move {
                let mut sink = vec![0u8; 65536];
                while matches!(rx.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        } else {
            std::mem::forget(rx); // never read, never closed by us
        }
        let flood = flood.clone();
        // Writes floods until the server closes the connection.
        flooders.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut written = 0usize;
            while tx.write_all(&flood).await.is_ok() {
                written += flood.len();
            }
            (written, started.elapsed())
        }));
    }
    // Others are served while the floods run.
    let started = Instant::now();
    for _ in 0..5 {
        let (status, _) = server.portal_get("/").await;
        assert_eq!(status, 200);
    }
    let served_in = started.elapsed();
    let mut closed_in = Vec::new();
    let mut written = 0;
    for f in flooders {
        let (n, took) = tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("flooder disconnected within 10 s")
            .unwrap();
        written += n;
        closed_in.push(took);
    }
    let after = memory_kib(pid, "VmRSS");
    eprintln!(
        "PING+SETTINGS flood: 4 clients (2 never read) wrote {written} bytes, closed after {closed_in:?}; \
5 portal GETs in {served_in:?}; RSS {before} KiB -> {after} KiB"
    );
    assert!(served_in < Duration::from_secs(5), "{served_in:?}");
    assert!(
        after.saturating_sub(before) < 32 * 1024,
        "RSS grew by {} KiB",
        after - before
    );
}

// ---- Host ----

/// RFC 9112 3.2: an HTTP/1.1 request without Host or with two is 400, on
/// both HTTPS listeners, with errorCode 9034; one Host is served.
#[tokio::test]
async fn http11_requests_need_exactly_one_host() {
    let server = Server::start();
    for mtls in [false, true] {
        for (head, want) in [
            ("GET / HTTP/1.1\r\n\r\n", 400),
            (
                "GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
                400,
            ),
            (
                "GET / HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n",
                400,
            ),
            ("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 200),
        ] {
            let answer = http1(&server, mtls, head.as_bytes(), Duration::from_secs(5)).await;
            assert_eq!(status_of(&answer), want, "mtls={mtls} {head:?}: {answer}");
            if want == 400 {
                assert!(answer.contains("9034"), "{answer}");
            }
        }
    }
}

/// The ops listener (plain HTTP/1) applies the same Host rule; HTTP/1.0
/// probes without Host still get their answer.
#[tokio::test]
async fn the_ops_listener_needs_exactly_one_host_too() {
    let server = Server::start();
    for (head, want) in [
        ("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
        (
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            400,
        ),
        ("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", 200),
        ("GET /healthz HTTP/1.0\r\n\r\n", 200),
    ] {
        let mut tcp = TcpStream::connect(server.admin).await.unwrap();
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut raw))
            .await
            .expect("answered")
            .unwrap();
        let answer = String::from_utf8_lossy(&raw);
        assert_eq!(status_of(&answer), want, "{head:?}: {answer}");
        if want == 400 {
            assert!(answer.contains("9034"), "{answer}");
        }
    }
}

/// HTTP/2: a Host header that names another authority than `:authority`
/// is 400 / 9034; a matching one is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_host_must_match_authority() {
    let server = Server::start();
    let client = h2_client(&server, false).await;
    let port = server.portal.port();
    for (host, want) in [
        (format!("localhost:{port}"), 200),
        ("evil.example".to_string(), 400),
    ] {
        let request = http::Request::builder()
            .uri(format!("https://localhost:{port}/"))
            .header("host", host.as_str())
            .body(())
            .unwrap();
        let (response, _) = client.clone().send_request(request, true).unwrap();
        let (status, text) = answer(response, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, want, "{host}: {text}");
        if want == 400 {
            assert!(text.contains("9034"), "{text}");
        }
    }
}

// ---- portal response headers ----

/// Every portal answer (pages, errors, redirects, JSON) carries HSTS,
/// nosniff, a CSP that forbids framing, and a Referrer-Policy; the pages
/// themselves need no more than the CSP allows (checked in a browser by
/// tests/integration/browser.rs).
#[tokio::test]
async fn portal_responses_carry_security_headers() {
    let server = Server::start();
    let client = server.portal_client();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/activate?token=x"),
        ("POST", "/activate/signin"),
        ("GET", "/partner/status"),
        ("GET", "/partner/v1/subscribers"),
    ] {
        let request = bwgate::client::request(
            method,
            path,
            Bytes::new(),
            Some("application/x-www-form-urlencoded"),
        );
        let r = client.request(request).await.expect("portal request");
        let h = |n: &str| r.header(n).unwrap_or("").to_string();
        assert!(
            h("strict-transport-security").starts_with("max-age="),
            "{path}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        let csp = h("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            ["no-referrer", "same-origin"].contains(&h("referrer-policy").as_str()),
            "{path}: {}",
            h("referrer-policy")
        );
    }
    // The activation pages (tokens in their URLs) send no referrer at all.
    let r = client
        .request(bwgate::client::get("/activate?token=x"))
        .await
        .unwrap();
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
}
