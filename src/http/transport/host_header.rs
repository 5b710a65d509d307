//! The request's Host: HTTP/1.1 requires exactly one Host header (RFC 9112
//! 3.2: "MUST respond with a 400 ... to any HTTP/1.1 request message that
//! lacks a Host header field and to any request message that contains more
//! than one Host header field"). HTTP/2 carries `:authority` instead; a
//! Host header beside it must name the same authority (RFC 9113 8.3.1).

use hyper::header::HOST;
use hyper::{HeaderMap, Uri, Version};

use crate::domain::ErrorCode;
use crate::domain::Refusal;

pub fn check(version: Version, headers: &HeaderMap, uri: &Uri) -> Result<(), Refusal> {
    let mut hosts = headers.get_all(HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(refused("The request has more than one Host header."));
    }
    match (version, first) {
        (Version::HTTP_11, None) => Err(refused("An HTTP/1.1 request needs a Host header.")),
        (Version::HTTP_2, Some(host)) => match uri.authority() {
            Some(authority)
                if !host
                    .as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes()) =>
            {
                Err(refused("The Host header differs from :authority."))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn refused(detail: &str) -> Refusal {
    ::metrics::counter!("bwgate_malformed_requests_total", "reason" => "host").increment(1);
    Refusal::new(ErrorCode::MalformedRequest, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for host in hosts {
            h.append(HOST, host.parse().unwrap());
        }
        h
    }

    #[test]
    fn exactly_one_host_on_http11() {
        let path: Uri = "/".parse().unwrap();
        assert!(check(Version::HTTP_11, &headers(&["a"]), &path).is_ok());
        for bad in [&[][..], &["a", "a"][..], &["a", "b"][..]] {
            let e = check(Version::HTTP_11, &headers(bad), &path).unwrap_err();
            assert_eq!(e.code, ErrorCode::MalformedRequest, "{bad:?}");
        }
        // HTTP/1.0 predates Host; two are still ambiguous.
        assert!(check(Version::HTTP_10, &headers(&[]), &path).is_ok());
        assert!(check(Version::HTTP_10, &headers(&["a", "b"]), &path).is_err());
    }

    #[test]
    fn http2_host_must_match_authority() {
        let uri: Uri = "https://localhost:8444/".parse().unwrap();
        assert!(check(Version::HTTP_2, &headers(&[]), &uri).is_ok());
        assert!(check(Version::HTTP_2, &headers(&["LOCALHOST:8444"]), &uri).is_ok());
        assert!(check(Version::HTTP_2, &headers(&["evil.example"]), &uri).is_err());
        assert!(check(Version::HTTP_2, &headers(&["a", "a"]), &uri).is_err());
    }
}
