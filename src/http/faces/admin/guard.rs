//! What every `/admin/...` request on the ops listener must pass before a
//! route runs (`/healthz`, `/readyz`, `/metrics` skip it):
//!
//! 1. no `Origin` header: the operator API is not for browsers, so any
//!    page's request (even same-host) is refused (403, 9033);
//! 2. a `Host` that is `localhost`, a loopback address or the listener's
//!    own address (any address when it binds all of them), any port: a
//!    DNS-rebinding page reaches the listener under its own name (403, 9033);
//! 3. the operator token as `Authorization: Bearer` (401, 9032; the same
//!    answer for a missing, wrong or unconfigured token);
//! 4. for a state-changing method, `Content-Type: application/json`
//!    (`text/csv` also on the organization import and subscription moves)
//!    (415, 9014): a browser
//!    can send `text/plain` or form bodies cross-site without asking.
//!
//! Every refusal counts in `bwgate_ops_requests_refused_total{reason}`;
//! `refused` renders it (JSON, the table's status, the Bearer challenge
//! with a 401).

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, ORIGIN, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response};

use super::routes::AdminRoute;
use crate::domain::{ErrorCode, Refusal};
use crate::http::admin_auth::OperatorAuth;
use crate::http::ResponseBody;

/// `Ok` when the request may reach an `/admin/...` route; otherwise the
/// refusal to send (`refused`).
pub async fn admit<B>(
    auth: &OperatorAuth,
    listener: SocketAddr,
    req: &Request<B>,
) -> Result<(), Refusal> {
    let headers = req.headers();
    if headers.contains_key(ORIGIN) {
        return Err(refuse(
            "origin",
            ErrorCode::OperatorRequestForbidden,
            "requests carrying an Origin header (browsers) are refused on the ops listener",
        ));
    }
    if let Some(host) = headers.get(HOST) {
        if !host
            .to_str()
            .is_ok_and(|h| is_listener_host(h, listener.ip()))
        {
            return Err(refuse(
                "host",
                ErrorCode::OperatorRequestForbidden,
                "the Host must be localhost or the ops listener's IP address",
            ));
        }
    }
    if let Err(why) = auth
        .check(crate::http::partner::auth::bearer(headers))
        .await
    {
        return Err(refuse(
            why.as_str(),
            ErrorCode::OperatorTokenRequired,
            "send the operator token as Authorization: Bearer <token>",
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let media = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(media_type)
            .unwrap_or_default();
        let csv_ok = media == "text/csv"
            && AdminRoute::parse(req.method(), req.uri().path()).is_ok_and(|r| r.takes_csv());
        if media != "application/json" && !csv_ok {
            return Err(refuse(
                "content_type",
                ErrorCode::UnsupportedMediaType,
                "state-changing requests on the ops listener take Content-Type: application/json",
            ));
        }
    }
    Ok(())
}

/// `localhost`, a loopback address, or `listener`'s address (any address
/// when `listener` is unspecified, `0.0.0.0`/`::`), with or without a port.
/// Host names other than `localhost` are what a DNS-rebinding page sends.
fn is_listener_host(host: &str, listener: IpAddr) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if port.is_empty() || port.strip_prefix(':').is_some_and(is_port) => {
                v6
            }
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == listener || listener.is_unspecified(),
        Err(_) => false,
    }
}

fn is_port(s: &str) -> bool {
    s.parse::<u16>().is_ok()
}

/// `type/subtype` of a Content-Type value, lower-cased, parameters dropped.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Counts a refusal under `reason`.
fn refuse(reason: &'static str, code: ErrorCode, message: &str) -> Refusal {
    ::metrics::counter!("bwgate_ops_requests_refused_total", "reason" => reason).increment(1);
    Refusal::new(code, message)
}

/// The answer to a refused request: the operator JSON, and the Bearer
/// challenge when the token is what is missing.
pub fn refused(refusal: &Refusal) -> Response<ResponseBody> {
    let mut resp = crate::http::error::json::operator(refusal);
    if refusal.code == ErrorCode::OperatorTokenRequired {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"bwgate-ops\""),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::super::routes::ORGS_IMPORT;
    use super::*;
    use crate::domain::credentials::hash_password;

    #[test]
    fn hosts_allowed_are_localhost_loopback_and_the_listeners_address() {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let lan: IpAddr = [10, 1, 2, 3].into();
        let any: IpAddr = [0, 0, 0, 0].into();
        for (host, listener) in [
            ("localhost", loopback),
            ("LOCALHOST:9090", loopback),
            ("127.0.0.1", loopback),
            ("127.0.0.1:9090", lan),
            ("[::1]", loopback),
            ("[::1]:9090", loopback),
            ("10.1.2.3:9090", lan),
            ("10.9.9.9:9090", any),
        ] {
            assert!(is_listener_host(host, listener), "{host} on {listener}");
        }
        for (host, listener) in [
            ("evil.example", any),
            ("evil.example:9090", loopback),
            ("localhost.evil.example", loopback),
            ("127.0.0.1.nip.io:9090", loopback),
            ("10.9.9.9:9090", lan),
            ("10.1.2.3", loopback),
            ("[::1]x", loopback),
            ("[::1]9090", loopback),
            ("localhost:", loopback),
            ("localhost:99999", loopback),
            ("", loopback),
        ] {
            assert!(!is_listener_host(host, listener), "{host} on {listener}");
        }
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    fn code(r: &Refusal) -> u16 {
        r.http_status()
    }

    #[tokio::test]
    async fn each_check_refuses_with_its_status() {
        let auth = OperatorAuth::new(vec![hash_password("tok").expect("hash")]);
        let bearer = ("authorization", "Bearer tok");
        let json_ct = ("content-type", "application/json; charset=utf-8");
        let p = "/admin/v1/organizations/x";
        let admit = |r: Request<()>| {
            let auth = &auth;
            async move { admit(auth, SocketAddr::from(([127, 0, 0, 1], 9090)), &r).await }
        };
        assert!(admit(request("PUT", p, &[bearer, json_ct])).await.is_ok());
        assert!(admit(request("GET", p, &[bearer])).await.is_ok());
        let origin = admit(request(
            "PUT",
            p,
            &[bearer, json_ct, ("origin", "http://127.0.0.1:9090")],
        ))
        .await;
        assert_eq!(origin.map_err(|r| code(&r)), Err(403));
        let host = admit(request(
            "PUT",
            p,
            &[bearer, json_ct, ("host", "rebind.evil.example:9090")],
        ))
        .await;
        assert_eq!(host.map_err(|r| code(&r)), Err(403));
        let none = admit(request("GET", p, &[])).await.expect_err("no token");
        assert_eq!(code(&none), 401);
        let answer = refused(&none);
        assert_eq!(answer.status().as_u16(), 401);
        assert!(answer.headers().contains_key(WWW_AUTHENTICATE));
        let wrong = admit(request("GET", p, &[("authorization", "Bearer nope")])).await;
        assert_eq!(wrong.map_err(|r| code(&r)), Err(401));
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/csv",
        ] {
            let r = admit(request("PUT", p, &[bearer, ("content-type", ct)])).await;
            assert_eq!(r.map_err(|r| code(&r)), Err(415), "{ct}");
        }
        let missing_ct = admit(request("POST", p, &[bearer])).await;
        assert_eq!(missing_ct.map_err(|r| code(&r)), Err(415));
        // CSV where the route takes it (the import, subscription moves),
        // nowhere else.
        for path in [
            ORGS_IMPORT,
            "/admin/v1/organizations/o/subscriptions/s/move",
        ] {
            let csv = request("POST", path, &[bearer, ("content-type", "text/csv")]);
            assert!(admit(csv).await.is_ok(), "{path}");
        }
        let put = request(
            "PUT",
            "/admin/v1/organizations/o/subscriptions/s",
            &[bearer, ("content-type", "text/csv")],
        );
        assert_eq!(admit(put).await.map_err(|r| code(&r)), Err(415));
    }
}
