//! Abuse tests: XML documents on the flow-through face. Attribute and
//! namespace-declaration bombs (quadratic before: 40,000 attributes on one
//! element took 1.9 s in a release build, 100,000 namespace declarations
//! 13 s, on the async workers) are refused with 9013, and hostile documents
//! parsed at length run off the async workers, so /healthz and a small
//! AddUser keep answering.

use std::time::{Duration, Instant};

use crate::flowthrough::{add_user, demo, document, post, Demo};
use crate::harness::{metric_value, Server};

/// ` a0="" a1="" …` or ` xmlns:p0="urn:p0" …`, `n` of them.
fn attribute_run(n: usize, declarations: bool) -> String {
    (0..n)
        .map(|i| {
            if declarations {
                format!(" xmlns:p{i}=\"urn:p{i}\"")
            } else {
                format!(" a{i}=\"\"")
            }
        })
        .collect()
}

/// A flow-through document whose AddUser element carries `attributes`.
fn bomb(attributes: &str, user: &str) -> String {
    document(None, &[add_user(user, "acme", None)]).replacen(
        "<AddUser>",
        &format!("<AddUser{attributes}>"),
        1,
    )
}

/// Asserts a 400 ErrorInfo with errorCode 9013 whose summary names `limit`.
fn assert_too_complex(status: u16, body: &str, limit: &str) {
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<errorCode>9013</errorCode>"), "{body}");
    assert!(body.contains(limit), "{body}");
}

#[tokio::test]
async fn attribute_bomb_is_refused_with_9013_at_once() {
    let server = Server::start();
    let d = demo(&server);
    // 200,000 attributes, 1.9 MB: quadratic, this took tens of seconds.
    let doc = bomb(&attribute_run(200_000, false), "attr@acme.example");
    assert!(doc.len() > 1_800_000);
    let started = Instant::now();
    let resp = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
    let took = started.elapsed();
    assert_too_complex(resp.status.as_u16(), &resp.text(), "max_xml_attributes");
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    // Just under the limit (64 with the root's and nothing else) passes.
    let ok = bomb(&attribute_run(64, false), "under@acme.example");
    let resp = post(&server, &d.path, Some(&d.auth), ok, "application/xml").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn namespace_declaration_bombs_are_refused_with_9013() {
    let server = Server::start();
    let d = demo(&server);
    // 100,000 declarations on one element (3 MB).
    let one_element = bomb(&attribute_run(100_000, true), "ns@acme.example");
    let started = Instant::now();
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        one_element,
        "application/xml",
    )
    .await;
    let took = started.elapsed();
    assert_too_complex(
        resp.status.as_u16(),
        &resp.text(),
        "max_xml_namespace_declarations",
    );
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    // Spread over the document, 40 per element (each element within the
    // attribute limit): the document-wide count refuses it.
    let spread: String = (0..2_000)
        .map(|i| {
            format!(
                "<x{}/>",
                attribute_run(40, true).replace("xmlns:p", &format!("xmlns:e{i}p"))
            )
        })
        .collect();
    let doc = document(None, &[add_user("spread@acme.example", "acme", None)]).replacen(
        "<AddUser>",
        &format!("<AddUser><note>{spread}</note>"),
        1,
    );
    let resp = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
    assert_too_complex(
        resp.status.as_u16(),
        &resp.text(),
        "max_xml_namespace_declarations",
    );
}

#[tokio::test]
async fn a_raw_nul_refuses_the_whole_document_with_9011() {
    let server = Server::start();
    let d = demo(&server);
    let doc = document(
        None,
        &[
            add_user("first@acme.example", "acme", None),
            add_user("sec\0ond@acme.example", "acme", None),
        ],
    );
    let resp = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
    let body = resp.text();
    assert_eq!(resp.status, 400, "{body}");
    assert!(body.contains("<ErrorInfo"), "{body}");
    assert!(body.contains("<errorCode>9011</errorCode>"), "{body}");
    assert!(body.contains("U+0000"), "{body}");
    // Nothing of the document was recorded.
    let (status, _) = crate::flowthrough::subscriber(&server, "first@acme.example").await;
    assert_eq!(status, 404);
}

/// Posts `doc` again and again from `connections` concurrent clients until
/// `until`; returns the answers' status codes.
fn hammer(
    server: &Server,
    d: &Demo,
    doc: String,
    connections: usize,
    until: Instant,
) -> Vec<tokio::task::JoinHandle<Vec<u16>>> {
    let doc = bytes::Bytes::from(doc);
    (0..connections)
        .map(|_| {
            let client = server.client();
            let (path, auth, doc) = (d.path.clone(), d.auth.clone(), doc.clone());
            tokio::spawn(async move {
                let mut conn = client.connect().await.expect("connect");
                let mut statuses = Vec::new();
                while Instant::now() < until {
                    let mut req = bwgate::client::request(
                        "POST",
                        &path,
                        doc.clone(),
                        Some("application/xml"),
                    );
                    req.headers_mut()
                        .insert("authorization", auth.parse().unwrap());
                    match conn.send(req).await {
                        Ok(resp) => statuses.push(resp.status.as_u16()),
                        Err(_) => break,
                    }
                }
                statuses
            })
        })
        .collect()
}

/// Three clients post 4 MB attribute bombs back to back for a few seconds,
/// under limits raised so that each is parsed to its end (about 400,000
/// attributes: most of a second of parsing each in the dev build).
/// Meanwhile /healthz on the ops listener and a one-operation AddUser keep
/// answering within a generous bound. Measured here (dev build, 2 cores):
/// worst /healthz 3 ms and AddUser 21 ms over 32 probes; with the same
/// linear parser run on the async workers instead, 1.6 s and 1.3 s over 3
/// probes (and the issue saw /healthz stall 7 s behind two 870 KB
/// documents with the quadratic one).
#[tokio::test]
async fn concurrent_bombs_do_not_stall_healthz_or_a_small_add_user() {
    let server = Server::start_with(
        Some(
            "[limits]\nmax_xml_attributes = 1000000\nmax_xml_namespace_declarations = 1000000\n\
             rate_per_sec = 0\n",
        ),
        &[],
    );
    let d = demo(&server);
    let per_attribute = " a100000=\"\"".len();
    let n = (4 << 20) / per_attribute - 1_000;
    let doc = bomb(&attribute_run(n, false), "big@acme.example");
    assert!(doc.len() < 4 << 20);
    let until = Instant::now() + Duration::from_secs(4);
    let posters = hammer(&server, &d, doc, 3, until);
    // Let the bombs arrive and start parsing.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut worst_healthz = Duration::ZERO;
    let mut worst_add = Duration::ZERO;
    let mut i = 0;
    while Instant::now() < until {
        let started = Instant::now();
        let (status, _) = server.admin_get("/healthz").await;
        assert_eq!(status, 200);
        worst_healthz = worst_healthz.max(started.elapsed());

        i += 1;
        let small = document(
            None,
            &[add_user(&format!("small{i}@acme.example"), "acme", None)],
        );
        let started = Instant::now();
        let resp = post(&server, &d.path, Some(&d.auth), small, "application/xml").await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        worst_add = worst_add.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut bombs = Vec::new();
    for p in posters {
        bombs.extend(p.await.unwrap());
    }
    eprintln!(
        "{} bombs of {n} attributes; {i} probes: worst /healthz {worst_healthz:?}, worst AddUser {worst_add:?}",
        bombs.len()
    );
    assert!(bombs.len() >= 3, "the bombs were not posted: {bombs:?}");
    // Accepted: the raised limits let them through, and the AddUser in
    // them is the same user each time (a replay or an update).
    assert!(bombs.iter().all(|s| *s == 200), "{bombs:?}");
    assert!(i >= 10, "only {i} probes in the window");
    assert!(
        worst_healthz < Duration::from_millis(500),
        "/healthz took {worst_healthz:?} while bombs were parsed"
    );
    assert!(
        worst_add < Duration::from_secs(1),
        "a small AddUser took {worst_add:?} while bombs were parsed"
    );
    let (_, metrics) = server.admin_get("/metrics").await;
    let offloaded = metric_value(&metrics, "bwgate_xml_parses_offloaded_total").unwrap_or(0.0);
    assert!(offloaded >= bombs.len() as f64, "{offloaded} offloaded");
}
