//! Request bodies: a document with `{{n}}` (the request's sequence number)
//! and `{{run}}` (a token per run) placeholders, parsed once and rendered
//! per request into a reused buffer.

use std::io::Write;

/// The built-in body: one AddUser whose userId, email and requestId are
/// unique per request and per run, so every request provisions a new
/// subscriber instead of replaying an earlier document.
pub const BUILTIN_ADD_USER: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<ProvisioningRequest xmlns=\"urn:bwgate:flowthrough:1\" requestId=\"load-{{run}}-{{n}}\">",
    "<AddUser>",
    "<userId>load-{{run}}-{{n}}@load.bwgate.example</userId>",
    "<serviceProviderId>loadsp</serviceProviderId>",
    "<groupId>loadgrp</groupId>",
    "<firstName>Load</firstName>",
    "<lastName>User{{n}}</lastName>",
    "<emailAddress>load-{{run}}-{{n}}@load.bwgate.example</emailAddress>",
    "<phoneNumber>+1-240-555-0100</phoneNumber>",
    "<package>standard</package>",
    "</AddUser>",
    "</ProvisioningRequest>\n",
);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Vec<u8>),
    N,
    Run,
}

/// A parsed body template. Bytes are kept as given (a recorded document
/// may be ISO-8859-1); only the two placeholders are replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
}

impl Template {
    pub fn parse(bytes: &[u8]) -> Template {
        const N: &[u8] = b"{{n}}";
        const RUN: &[u8] = b"{{run}}";
        let mut segments = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let (found, len) = if rest.starts_with(N) {
                (Some(Segment::N), N.len())
            } else if rest.starts_with(RUN) {
                (Some(Segment::Run), RUN.len())
            } else {
                (None, 1)
            };
            match found {
                Some(seg) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(seg);
                }
                None => literal.push(bytes[i]),
            }
            i += len;
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Template { segments }
    }

    pub fn builtin() -> Template {
        Template::parse(BUILTIN_ADD_USER.as_bytes())
    }

    /// Whether any `{{n}}` appears, i.e. whether requests differ.
    pub fn is_unique_per_request(&self) -> bool {
        self.segments.contains(&Segment::N)
    }

    /// Appends the body for request `n` of run `run` to `out`.
    pub fn render_into(&self, n: u64, run: &str, out: &mut Vec<u8>) {
        for seg in &self.segments {
            match seg {
                Segment::Literal(b) => out.extend_from_slice(b),
                // Writing to a Vec cannot fail and does not allocate
                // beyond the buffer's growth.
                Segment::N => {
                    let _ = write!(out, "{n}");
                }
                Segment::Run => out.extend_from_slice(run.as_bytes()),
            }
        }
    }

    pub fn render(&self, n: u64, run: &str) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(n, run, &mut out);
        out
    }
}

/// A per-run token: 8 lowercase alphanumerics, valid in user ids, email
/// local parts and requestIds.
pub fn run_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_n_and_run_everywhere() {
        let t = Template::parse(b"<a>{{n}}</a><b>{{run}}-{{n}}</b>{{x}}{{n");
        assert_eq!(
            String::from_utf8(t.render(42, "r1")).unwrap(),
            "<a>42</a><b>r1-42</b>{{x}}{{n"
        );
        assert!(t.is_unique_per_request());
    }

    #[test]
    fn keeps_non_utf8_bytes_and_appends() {
        let t = Template::parse(b"caf\xe9 {{n}}");
        let mut out = b"head:".to_vec();
        t.render_into(7, "r", &mut out);
        assert_eq!(out, b"head:caf\xe9 7");
        assert!(!Template::parse(b"<x>{{run}}</x>").is_unique_per_request());
        assert!(Template::parse(b"").render(1, "r").is_empty());
    }

    #[test]
    fn builtin_add_user_is_unique_per_request_and_run() {
        let t = Template::builtin();
        let a = String::from_utf8(t.render(0, "abc")).unwrap();
        let b = String::from_utf8(t.render(1, "abc")).unwrap();
        let c = String::from_utf8(t.render(0, "xyz")).unwrap();
        assert!(a.contains("<userId>load-abc-0@load.bwgate.example</userId>"));
        assert!(a.contains("requestId=\"load-abc-0\""));
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert!(!a.contains("{{"));
        let parsed = crate::flowthrough::parse_request(
            a.as_bytes(),
            Some("application/xml"),
            &crate::flowthrough::ParseLimits::from(&crate::config::LimitsConfig::default()),
        )
        .expect("built-in template parses");
        assert_eq!(parsed.operations.len(), 1);
        assert!(
            parsed.operations[0].result.is_ok(),
            "{:?}",
            parsed.operations[0].result
        );
    }

    #[test]
    fn run_tokens_differ() {
        let a = run_token();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, run_token());
    }
}
