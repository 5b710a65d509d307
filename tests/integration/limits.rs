//! Limits and abuse against the real server: request rate, header size,
//! connection count, slow clients, TLS handshake timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::flowthrough::{add_user, demo, document, post, subscriber};
use crate::harness::{eventually, metric_value, Server};

/// Reads until EOF or error; true when the peer closed within `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(s: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

/// Reads one response head and (Content-Length) body as text.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return;
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("response in time");
    String::from_utf8_lossy(&buf).into_owned()
}

async fn metric(server: &Server, name_and_labels: &str) -> f64 {
    let (_, text) = server.admin_get("/metrics").await;
    metric_value(&text, name_and_labels).unwrap_or(0.0)
}

/// Polls a counter until it reaches `at_least` (metrics are recorded just
/// after the event the test observes).
async fn wait_metric(server: &Server, name_and_labels: &str, at_least: f64) -> f64 {
    eventually(
        format!("{name_and_labels} >= {at_least}"),
        Duration::from_secs(5),
        || async {
            let v = metric(server, name_and_labels).await;
            if v >= at_least {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await
}

#[tokio::test]
async fn flowthrough_rate_limit_per_template_and_client_identity() {
    let server = Server::start_with(Some("[limits]\nrate_per_sec = 5\nrate_burst = 5\n"), &[]);
    let d = demo(&server);
    let doc = |n: usize| {
        document(
            None,
            &[add_user(
                &format!("u{n}@acme.example"),
                "acme",
                Some(&format!("u{n}@acme.example")),
            )],
        )
    };
    let req = |n: usize| {
        let mut req =
            bwgate::client::request("POST", &d.path, doc(n).into(), Some("application/xml"));
        req.headers_mut()
            .insert("authorization", d.auth.parse().unwrap());
        req
    };
    // One connection, requests back to back: the burst of 5 passes, the
    // next is refused. The bucket refills at 5/s, so a slow machine may
    // see a few more pass; the bound below allows exactly that refill.
    // A second AS identity: another CN issued by the same (dev) CA,
    // connected before the burst so its requests follow the refusal at once.
    let certs = server.certs();
    let ca = bwgate::tls::GeneratedCa::load(&certs.join("ca.crt"), &certs.join("ca.key")).unwrap();
    let (cert, key) = bwgate::tls::issue_client_cert(&ca, "second-as", 30).unwrap();
    let (cert_path, key_path) = (server.path("second.crt"), server.path("second.key"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let mut other = server
        .client_with(Some((&cert_path, &key_path)), true)
        .connect()
        .await
        .unwrap();

    let mut conn = server.client().connect().await.unwrap();
    let started = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let resp = conn.send(req(passed + 1)).await.unwrap();
        if resp.status == 429 {
            break resp;
        }
        assert_eq!(resp.status, 200, "request {}: {}", passed + 1, resp.text());
        passed += 1;
        assert!(passed <= 50, "never rate limited");
    };
    let refill = (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    assert!(
        (5..=5 + refill).contains(&passed),
        "{passed} passed in {:?}",
        started.elapsed()
    );
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let text = refused.text();
    assert!(text.contains("<errorCode>9009</errorCode>"), "{text}");
    // The other identity has its own full bucket.
    for n in 100..105 {
        let resp = other.send(req(n)).await.unwrap();
        assert_eq!(resp.status, 200, "other identity: {}", resp.text());
    }
    // Accepted work shows up (delivery runs in the background)...
    let last_ok = format!("u{passed}@acme.example");
    eventually(
        "accepted work is recorded",
        Duration::from_secs(10),
        || async {
            match subscriber(&server, &last_ok).await.0 {
                200 => Ok(()),
                code => Err(code),
            }
        },
    )
    .await;
    // ...the refused one never does.
    let refused_user = format!("u{}@acme.example", passed + 1);
    assert_eq!(
        subscriber(&server, &refused_user).await.0,
        404,
        "nothing recorded"
    );
    assert!(wait_metric(&server, "bwgate_rate_limited_total", 1.0).await >= 1.0);

    // After waiting out Retry-After the first client passes again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let resp = post(&server, &d.path, Some(&d.auth), doc(200), "application/xml").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn oversized_request_head_gets_431_and_close() {
    let server = Server::start_with(Some("[limits]\nmax_header_bytes = 8192\n"), &[]);
    let mut s = server.raw_tls().await;
    // One write (one TLS record) so the server consumes all of it.
    let head = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "connection closed"
    );

    // A normal request on a new connection still works.
    let mut s = server.raw_tls().await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn connections_beyond_max_connections_are_refused() {
    let server = Server::start_with(Some("[limits]\nmax_connections = 2\n"), &[]);
    let before = metric(
        &server,
        "bwgate_connections_rejected_total{reason=\"max_connections\"}",
    )
    .await;
    let mut a = server.raw_tls().await;
    let mut b = server.raw_tls().await;

    // The third: the accept loop drops it, so the handshake fails.
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(server.dev_tls(false)));
    let tcp = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let third = tokio::time::timeout(
        Duration::from_secs(5),
        connector.connect("localhost".try_into().unwrap(), tcp),
    )
    .await
    .expect("refused in time");
    assert!(third.is_err(), "third connection must be refused");
    let after = wait_metric(
        &server,
        "bwgate_connections_rejected_total{reason=\"max_connections\"}",
        before + 1.0,
    )
    .await;
    assert!(after >= before + 1.0, "rejections {before} -> {after}");

    // The first two still work.
    for s in [&mut a, &mut b] {
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let text = read_response(s).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    // Once one closes, a new connection gets its slot.
    a.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut a).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(closed_within(&mut a, Duration::from_secs(5)).await);
    drop(a);
    // The slot frees when the server side of the connection finishes.
    let mut s = eventually("a slot freed", Duration::from_secs(5), || async {
        let tcp = tokio::net::TcpStream::connect(server.https).await.unwrap();
        connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
    })
    .await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_cut_off() {
    let server = Server::start_with(
        Some("[limits]\nheader_read_timeout_ms = 500\nbody_read_timeout_ms = 500\n"),
        &[],
    );
    // Slowloris: one byte of the head every 100 ms, never finishing in 500 ms.
    let mut s = server.raw_tls().await;
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for byte in head.iter() {
        if s.write_all(std::slice::from_ref(byte)).await.is_err() || s.flush().await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut probe)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            // hyper may answer 408 before closing; keep reading until EOF.
            Ok(Ok(_)) => {
                cut = closed_within(&mut s, Duration::from_secs(3)).await;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(cut, "slow head must be cut off");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // Idle keep-alive: after one answer, silence closes the connection.
    let mut s = server.raw_tls().await;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let text = read_response(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let idle = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(6)).await,
        "idle connection closed"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(100),
        "{:?}",
        idle.elapsed()
    );

    // A connection that never sends a first request is closed as well.
    let mut s = server.raw_tls().await;
    assert!(
        closed_within(&mut s, Duration::from_secs(6)).await,
        "silent connection closed"
    );

    // Nor does a client stalling inside the HTTP/2 preface (before hyper
    // knows which protocol it speaks) keep its connection.
    let mut s = server.raw_tls().await;
    s.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(6)).await,
        "stalled preface closed"
    );
    assert!(
        wait_metric(
            &server,
            "bwgate_connections_rejected_total{reason=\"first_request_timeout\"}",
            2.0
        )
        .await
            >= 2.0
    );

    // A body dribbled slower than body_read_timeout_ms: 408 with 9023.
    let d = demo(&server);
    let mut s = server.raw_tls().await;
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/xml\r\nContent-Length: 100\r\n\r\n<",
        d.path, d.auth
    );
    s.write_all(req.as_bytes()).await.unwrap();
    // Read while dribbling, and stop sending once the answer arrives: bytes
    // sent after the server closed would make it reset the connection, and a
    // reset discards the unread 408.
    let (mut reader, mut writer) = tokio::io::split(s);
    let dribble = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let mut first = [0u8; 1];
    tokio::select! {
        _ = dribble => unreachable!(),
        n = reader.read_exact(&mut first) => { n.expect("an answer"); }
    }
    let text = format!("{}{}", first[0] as char, read_response(&mut reader).await);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("<errorCode>9023</errorCode>"), "{text}");
}

#[tokio::test]
async fn silent_tcp_clients_are_dropped_after_the_handshake_timeout() {
    let server = Server::start_with(Some("[limits]\nhandshake_timeout_ms = 300\n"), &[]);
    let key = "bwgate_tls_handshake_failures_total{reason=\"timeout\"}";
    let before = metric(&server, key).await;
    let mut tcp = tokio::net::TcpStream::connect(server.https).await.unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(3)).await,
        "not disconnected"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    let after = wait_metric(&server, key, before + 1.0).await;
    assert!(after >= before + 1.0, "timeouts {before} -> {after}");
}
