//! Credential guessing against the real binary (issue 10, points 3 and 7,
//! and the partner sign-in's cross-site check): wrong passwords and tokens
//! are locked out with 429/9027 and Retry-After before anything is checked
//! (no XSP call, no argon2), wrong-credential answers do not tell which
//! users, user names or provisioningIds exist, and a flood of wrong tokens
//! from one caller is shed instead of delaying another partner.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::email::Relay;
use crate::flowthrough::{add_user, demo, document, post};
use crate::harness::{metric_value, Server};
use crate::signin::{self, Xsp};

/// A raw HTTP/1.1 exchange: (status, head, body).
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One request on the portal listener from a chosen loopback source
/// address (the server counts and queues per client address), over a new
/// TLS connection, `Connection: close`.
async fn from_address(server: &Server, source: IpAddr, request: String) -> Raw {
    let tls = bwgate::tls::client_config(&server.certs().join("ca.crt"), None, None, false)
        .expect("tls config");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind source");
    let tcp = socket.connect(server.portal).await.expect("connect");
    let mut stream = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("handshake");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Raw {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn api_get(token: &str) -> String {
    format!(
        "GET /partner/v1/subscribers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
}

fn json_code(body: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["errors"][0]["errorCode"].as_u64().unwrap_or(0)
}

fn retry_after(r: &Raw) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// The error code in a portal page ("(error 9004)").
fn page_code(page: &str) -> Option<&str> {
    let at = page.find("(error ")? + "(error ".len();
    page.get(at..at + 4)
}

#[tokio::test]
async fn portal_sign_in_guesses_are_locked_without_reaching_the_xsp() {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    // A third template without an XSP: its waiting users used to be told
    // 409/9029 "not set up" where everybody else got 401/9004.
    let config = format!(
        "{}\n[[templates]]\nprovisioning_id = \"noxsp\"\npartner = \"sp\"\nname = \"No XSP\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n",
        signin::config(&relay, receiver.port, xsp.port)
    );
    let server = Server::start_with(Some(&config), &[]);
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noxsp",
        Some(signin::AUTH),
        document(None, &[add_user("wait@bw.example", "initech", None)]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // No enumeration: an unknown user and a waiting user whose template has
    // no XSP get the same status, code and page (the typed id aside).
    let mut pages = Vec::new();
    for user in ["nobody@bw.example", "wait@bw.example"] {
        let (status, _, page) = server
            .portal_form(
                "/activate/signin",
                &[("userId", user), ("password", "guess-1")],
            )
            .await;
        assert_eq!(
            (status, page_code(&page)),
            (401, Some("9004")),
            "{user}: {page}"
        );
        pages.push(page.replace(user, "USER"));
    }
    assert_eq!(pages[0], pages[1]);

    // Guessing kim's password: the 10th wrong one still reaches the XSP
    // (and locks); from then on nothing does, not even the right one.
    for n in 1..=10 {
        let (status, _, page) = server
            .portal_form(
                "/self-activate/selfact",
                &[
                    ("userId", "kim@bw.example"),
                    ("password", &format!("guess-{n}")),
                ],
            )
            .await;
        assert_eq!(
            (status, page_code(&page)),
            (401, Some("9004")),
            "guess {n}: {page}"
        );
    }
    assert_eq!(xsp.requests().len(), 10);
    for password in ["guess-11", "Kim-secret-1"] {
        let r = server
            .portal_client()
            .request(bwgate::client::request(
                "POST",
                "/self-activate/selfact",
                format!("userId=KIM%40bw.example&password={password}").into(),
                Some("application/x-www-form-urlencoded"),
            ))
            .await
            .expect("post");
        let page = r.text();
        assert_eq!(
            (r.status.as_u16(), page_code(&page)),
            (429, Some("9027")),
            "{page}"
        );
        let wait: u64 = r.header("retry-after").unwrap_or("0").parse().unwrap_or(0);
        assert!((1..=30).contains(&wait), "Retry-After {wait}");
    }
    assert_eq!(xsp.requests().len(), 10, "no XSP call while locked");
    // Another user from the same address still gets through (the address
    // allows more failures than one user id).
    let (status, location, page) = server
        .portal_form(
            "/self-activate/selfact",
            &[("userId", "lee@bw.example"), ("password", "Lee-secret-1")],
        )
        .await;
    assert_eq!(status, 303, "{page}");
    assert!(location.starts_with("/activate?token="), "{location}");
    assert_eq!(xsp.requests().len(), 11);
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn argon2_runs(server: &Server) -> f64 {
    let (_, metrics) = server.admin_get("/metrics").await;
    ["ok", "denied"]
        .iter()
        .filter_map(|r| {
            metric_value(
                &metrics,
                &format!("bwgate_credential_argon2_verifications_total{{result=\"{r}\"}}"),
            )
        })
        .sum()
}

fn error_code(xml: &str) -> Option<&str> {
    let at = xml.find("<errorCode>")? + "<errorCode>".len();
    let end = xml[at..].find('<')? + at;
    Some(&xml[at..end])
}

#[tokio::test]
async fn provisioning_basic_auth_reveals_nothing_and_locks_out_guessers() {
    let server = Server::start();
    let d = demo(&server);
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(server.path("data/demo-template.json")).unwrap(),
    )
    .unwrap();
    let user = v["username"].as_str().unwrap().to_string();
    let doc = document(None, &[add_user("ann@bw.example", "acme", None)]);

    // The AS's password is verified once (and cached).
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // Wrong password, wrong user name, unknown provisioningId: one answer,
    // and about the same time (each costs an argon2 run).
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for i in 0..4 {
        for (what, path, auth) in [
            (
                "wrong password",
                d.path.clone(),
                basic(&user, &format!("wrong-{i}")),
            ),
            (
                "wrong user",
                d.path.clone(),
                basic(&format!("nobody{i}"), "wrong"),
            ),
            (
                "unknown provisioningId",
                "/uc-one/v1/provisioning/no-such-template".to_string(),
                basic(&user, "wrong"),
            ),
        ] {
            let started = Instant::now();
            let resp = post(&server, &path, Some(&auth), doc.clone(), "application/xml").await;
            timings.push((what, started.elapsed()));
            let text = resp.text();
            assert_eq!(
                (resp.status.as_u16(), error_code(&text)),
                (401, Some("9004")),
                "{what}: {text}"
            );
            assert!(resp.header("www-authenticate").is_some(), "{what}");
        }
    }
    let median = |what: &str| {
        let mut t: Vec<Duration> = timings
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, d)| *d)
            .collect();
        t.sort();
        t[t.len() / 2]
    };
    let known = median("wrong password");
    for what in ["wrong user", "unknown provisioningId"] {
        let other = median(what);
        eprintln!("median {what}: {other:?}; wrong password: {known:?}");
        // Before: a wrong user name took 0.14 ms against 21 ms.
        assert!(
            other * 3 >= known && other <= known * 3,
            "{what} {other:?} vs wrong password {known:?}"
        );
    }

    // 4 failures for the user so far; 6 more lock it (the 10th still 401).
    for i in 0..6 {
        let resp = post(
            &server,
            &d.path,
            Some(&basic(&user, &format!("x{i}"))),
            doc.clone(),
            "application/xml",
        )
        .await;
        assert_eq!(resp.status, 401, "{i}: {}", resp.text());
    }
    let runs = argon2_runs(&server).await;
    for password in ["x-again", "x-and-again"] {
        let auth = basic(&user, password);
        let resp = post(
            &server,
            &d.path,
            Some(&auth),
            doc.clone(),
            "application/xml",
        )
        .await;
        let text = resp.text();
        assert_eq!(
            (resp.status.as_u16(), error_code(&text)),
            (429, Some("9027")),
            "{text}"
        );
        let wait: u64 = resp
            .header("retry-after")
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        assert!((1..=30).contains(&wait), "Retry-After {wait}");
    }
    // Whoever locked the user name, the AS with its verified password
    // goes on provisioning (the lock is no denial of service for it).
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Guessing on through the user lock counts against the address: 16
    // failures so far (4 x 2 + 6 + 2); at 30 the address locks, and then
    // this address is refused even the right password.
    for i in 0..14 {
        let auth = basic(&user, &format!("y{i}"));
        let resp = post(
            &server,
            &d.path,
            Some(&auth),
            doc.clone(),
            "application/xml",
        )
        .await;
        assert_eq!(resp.status, 429, "{i}: {}", resp.text());
    }
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert_eq!(argon2_runs(&server).await, runs, "no argon2 while locked");
    // Oversized secrets are refused unhashed, with the wrong-password answer.
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/other",
        Some(&basic(&user, &"p".repeat(21))),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(
        (resp.status.as_u16(), error_code(&resp.text())),
        (401, Some("9004"))
    );
    assert_eq!(argon2_runs(&server).await, runs);
}

#[tokio::test]
async fn partner_token_guesses_lock_the_address_and_a_flood_does_not_delay_another_partner() {
    const A: &str = "partner-a-admin-token-0123456789";
    const B: &str = "partner-b-admin-token-0123456789";
    const C: &str = "partner-c-admin-token-0123456789";
    let hash = |t: &str| bwgate::domain::credentials::hash_password(t).expect("hash");
    let config = format!(
        "[limits]\nauth_verify_queue_per_tenant = 4\nauth_max_failures_per_address = 5\n\n\
[[partners]]\nid = \"a\"\nname = \"A\"\nadmin_token_hash = \"{}\"\n\n\
[[partners]]\nid = \"b\"\nname = \"B\"\nadmin_token_hash = \"{}\"\n\n\
[[partners]]\nid = \"c\"\nname = \"C\"\nadmin_token_hash = \"{}\"\n",
        hash(A),
        hash(B),
        hash(C)
    );
    let server = Arc::new(Server::start_with(Some(&config), &[]));
    let quiet = loopback(1);
    let flooder = loopback(2);

    // Baseline: C's first request (argon2 against up to three hashes) alone.
    let started = Instant::now();
    let r = from_address(&server, quiet, api_get(C)).await;
    let baseline = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);

    // A flood of wrong tokens from one address for two seconds, 24 at once
    // (at most 40 each, pausing after each answer).
    let flood_until = Instant::now() + Duration::from_secs(2);
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..24 {
        let server = server.clone();
        flood.spawn(async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while Instant::now() < flood_until && n < 40 {
                n += 1;
                let r =
                    from_address(&server, flooder, api_get(&format!("guess-{worker}-{n}"))).await;
                answers.push((r.status, json_code(&r.body), retry_after(&r)));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = from_address(&server, quiet, api_get(B)).await;
    let during_flood = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut answers = Vec::new();
    while let Some(a) = flood.join_next().await {
        answers.extend(a.expect("flood task"));
    }
    let count = |status: u16, code: u64| {
        answers
            .iter()
            .filter(|(s, c, _)| *s == status && *c == code)
            .count()
    };
    let (wrong, locked, shed) = (count(401, 9004), count(429, 9027), count(503, 9035));
    eprintln!(
        "baseline {baseline:?}, B during the flood {during_flood:?}; flood: {} answers, \
{wrong} 401, {locked} 429, {shed} 503",
        answers.len()
    );
    let summary = format!("{wrong} 401, {locked} 429, {shed} 503 of {}", answers.len());
    assert_eq!(wrong + locked + shed, answers.len(), "{summary}");
    assert!(shed > 0, "{summary}");
    assert!(
        answers
            .iter()
            .filter(|(s, _, _)| *s != 401)
            .all(|(_, _, wait)| *wait >= 1),
        "every refusal says when to retry"
    );
    // Before: B queued behind every wrong token (250 delayed it 5.5 s).
    assert!(
        during_flood <= baseline * 4 + Duration::from_millis(500),
        "B waited {during_flood:?} (alone: {baseline:?})"
    );

    // Wrong tokens go on until the address is locked: at most 5 verified
    // in all, plus what was already queued (4) when the lock fell.
    let mut verified = wrong;
    let mut lock = None;
    for n in 0..10 {
        let r = from_address(&server, flooder, api_get(&format!("more-{n}"))).await;
        match (r.status, json_code(&r.body)) {
            (401, 9004) => verified += 1,
            (429, 9027) => {
                lock = Some(retry_after(&r));
                break;
            }
            other => panic!("{other:?}: {}", r.body),
        }
    }
    assert!(lock.is_some_and(|wait| wait >= 1), "{lock:?}");
    assert!(
        verified <= 9,
        "wrong tokens verified from one address: {verified}"
    );

    // The flooder's address is locked, even for a right token; the quiet
    // address is not.
    let r = from_address(&server, flooder, api_get(A)).await;
    assert_eq!((r.status, json_code(&r.body)), (429, 9027), "{}", r.body);
    assert!(retry_after(&r) >= 1);
    let r = from_address(&server, quiet, api_get(A)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn partner_sign_in_refuses_cross_site_posts() {
    const TOKEN: &str = "sp-admin-token-0123456789";
    let hash = bwgate::domain::credentials::hash_password(TOKEN).expect("hash");
    let server = Server::start_with(
        Some(&format!(
            "[[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_token_hash = \"{hash}\"\n"
        )),
        &[],
    );
    let sign_in = |headers: &str| {
        let body = format!("token={TOKEN}");
        format!(
            "POST /partner/session HTTP/1.1\r\nHost: localhost\r\n{headers}\
Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let own = format!("https://{}", server.portal);
    for headers in [
        "Origin: https://evil.example\r\n".to_string(),
        "Origin: null\r\n".to_string(),
        format!("Origin: {own}\r\nSec-Fetch-Site: cross-site\r\n"),
        "Sec-Fetch-Site: same-site\r\n".to_string(),
    ] {
        let r = from_address(&server, loopback(1), sign_in(&headers)).await;
        assert_eq!(
            (r.status, page_code(&r.body)),
            (403, Some("9031")),
            "{headers}: {}",
            r.body
        );
        assert!(r.header("set-cookie").is_none(), "{headers}");
    }
    // From the portal's own origin (and from non-browsers) it signs in.
    for headers in [
        format!("Origin: {own}\r\nSec-Fetch-Site: same-origin\r\n"),
        String::new(),
    ] {
        let r = from_address(&server, loopback(1), sign_in(&headers)).await;
        assert_eq!(r.status, 303, "{headers}: {}", r.body);
        let cookie = r.header("set-cookie").unwrap_or("");
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    }
}
