//! The whole request path without TLS: raw bytes on one in-memory
//! connection → hyper (HTTP/1.1, or HTTP/2 after its preface) with the
//! listener's settings → TrackingID, body limits, router → flow-through
//! handler (Basic auth, parse, validation) → durable accept in SQLite →
//! answer. See `bwgate::http::server::in_memory`.
//!
//! The gateway is the same for the whole run: templates `fuzz-trusted`,
//! `fuzz-untrusted`, `fuzz-group`, `fuzz-wholesale`, account
//! `fuzz`/`fuzz-pw` (`Authorization: Basic ZnV6ejpmdXp6LXB3`). State
//! (subscribers, replayed requestIds) accumulates across inputs.
//!
//! Invariants (a violation is a finding):
//! - no panic anywhere (handlers on HTTP/2 streams run on spawned tasks;
//!   libFuzzer's panic hook aborts the process for those too);
//! - no answer is a 500: whatever a client sends, an internal error is a bug;
//! - every answer of the gateway (it has a Content-Type) carries a
//!   TrackingID; XML answers are well-formed XML 1.0, JSON answers parse.

#![no_main]

use libfuzzer_sys::fuzz_target;

use bwgate_fuzz::{check_answer_xml, gateway};

fuzz_target!(|data: &[u8]| {
    let answer = gateway().exchange(data);
    if data.starts_with(b"PRI ") {
        return; // HTTP/2 frames: no panic and no hang is what is checked
    }
    check_http1_answers(&answer);
});

/// Walks the HTTP/1.1 answers in order. Stops quietly where the stream
/// cannot be followed further (hyper's own bodyless error answers).
fn check_http1_answers(mut rest: &[u8]) {
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => panic!(
                "truncated answer head: {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(400)])
            ),
            Err(e) => panic!(
                "answer is not HTTP ({e}): {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(400)])
            ),
        };
        let status = resp.code.unwrap_or(0);
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        let content_type = header("content-type").map(|v| String::from_utf8_lossy(v).into_owned());
        let length: usize = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let tracking = header("trackingid").is_some();
        rest = &rest[head_len..];
        assert_ne!(
            status,
            500,
            "internal error answer: {:?}",
            String::from_utf8_lossy(rest)
        );
        if status < 200 {
            continue; // 100 Continue
        }
        if content_type.is_some() {
            assert!(tracking, "gateway answer {status} without a TrackingID");
        }
        // An answer to HEAD announces a length but has no body.
        if length > 0 && (rest.starts_with(b"HTTP/1.") || rest.is_empty()) {
            continue;
        }
        if rest.len() < length {
            panic!(
                "answer body shorter than its Content-Length ({} < {length})",
                rest.len()
            );
        }
        let (body, next) = rest.split_at(length);
        rest = next;
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        if ct.starts_with("application/xml") {
            let text = std::str::from_utf8(body).expect("XML answer is not UTF-8");
            check_answer_xml(text);
        } else if ct.starts_with("application/json") {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(body) {
                panic!(
                    "JSON answer does not parse ({e}): {:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
}
