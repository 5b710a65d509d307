//! Client of a BroadWorks XSP (Xsi-Actions): checks a user's BroadWorks
//! credentials and reads the profile, as the activation portal needs for
//! "sign in with your BroadWorks credentials" and self-activation.
//!
//! `GET {xsp}/com.broadsoft.xsi-actions/v2.0/user/{userId}/profile` with
//! Basic auth (user id + web portal password, Xsi spec R21 §3.2.2): 200 and
//! a `Profile` document when the credentials are good, 401 when they are
//! not. `X-BroadWorks-No-AuthChallenge: true` asks for no challenge.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::client::{ClientError, ClientResponse, HttpsClient};
use crate::flowthrough::ParsePool;
use crate::xsi::{ErrorInfo, Profile};

#[derive(Debug, thiserror::Error)]
pub enum XspError {
    #[error("the BroadWorks user id or password is wrong")]
    BadCredentials,
    #[error("the BroadWorks XSP URL '{0}' is not usable: {1}")]
    BadUrl(String, &'static str),
    #[error("the BroadWorks XSP cannot be reached: {0}")]
    Unavailable(String),
    #[error("the BroadWorks XSP answered unexpectedly: {0}")]
    BadAnswer(String),
}

/// Calls XSPs with one TLS configuration (system trust store plus
/// `broadworks.xsp_ca_file`).
#[derive(Clone)]
pub struct XspClient {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    /// Where a large answer is parsed (off the async worker).
    parses: ParsePool,
}

impl std::fmt::Debug for XspClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XspClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `https://host[:port][/base]` split for a connection.
struct Target {
    host: String,
    port: u16,
    base: String,
}

fn target(url: &str) -> Result<Target, XspError> {
    let bad = |why| XspError::BadUrl(url.to_string(), why);
    let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("only https is supported"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    Ok(Target {
        host: host.trim_matches(['[', ']']).to_string(),
        port: uri.port_u16().unwrap_or(443),
        base: uri.path().trim_end_matches('/').to_string(),
    })
}

/// The path segment for a user id: BroadWorks ids are `user@domain`; any
/// other byte outside the unreserved set is percent-encoded.
fn segment(user_id: &str) -> String {
    let mut out = String::with_capacity(user_id.len());
    for b in user_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl XspClient {
    pub fn new(tls: rustls::ClientConfig, timeout: Duration, parses: ParsePool) -> XspClient {
        XspClient {
            tls: Arc::new(tls),
            timeout,
            parses,
        }
    }

    /// The user's profile if `password` is theirs.
    pub async fn profile(
        &self,
        xsp_url: &str,
        user_id: &str,
        password: &str,
    ) -> Result<Profile, XspError> {
        let t = target(xsp_url)?;
        let path = format!(
            "{}/com.broadsoft.xsi-actions/v2.0/user/{}/profile",
            t.base,
            segment(user_id)
        );
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{user_id}:{password}"));
        let call = async {
            let addr = tokio::net::lookup_host((t.host.as_str(), t.port))
                .await
                .map_err(|e| XspError::Unavailable(format!("{}: {e}", t.host)))?
                .next()
                .ok_or_else(|| XspError::Unavailable(format!("{}: no address", t.host)))?;
            let client = HttpsClient::new(addr, &t.host, (*self.tls).clone())
                .map_err(|e| XspError::BadUrl(xsp_url.to_string(), leak_reason(&e)))?;
            let req = crate::client::get_with_headers(
                &t.host,
                &path,
                &[
                    ("authorization", format!("Basic {basic}")),
                    ("accept", "application/xml".to_string()),
                    ("x-broadworks-no-authchallenge", "true".to_string()),
                ],
            );
            client
                .request(req)
                .await
                .map_err(|e| XspError::Unavailable(e.to_string()))
        };
        let resp = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| XspError::Unavailable(format!("no answer in {:?}", self.timeout)))??;
        self.read(resp).await
    }

    /// Reads the answer, on a blocking thread when it is large (XML
    /// parsing, like the flow-through face's).
    async fn read(&self, resp: ClientResponse) -> Result<Profile, XspError> {
        self.parses
            .run(resp.body.len(), move || read_answer(&resp))
            .await
            .map_err(|e| XspError::Unavailable(e.to_string()))?
    }
}

fn read_answer(resp: &ClientResponse) -> Result<Profile, XspError> {
    match resp.status.as_u16() {
        200 => Profile::parse(&resp.body, resp.header("content-type"))
            .map_err(|e| XspError::BadAnswer(format!("profile: {e}"))),
        // 403/404 too: BroadWorks answers them for an unknown user.
        401 | 403 | 404 => Err(XspError::BadCredentials),
        s => Err(XspError::BadAnswer(unexpected_status(s, resp))),
    }
}

fn leak_reason(e: &ClientError) -> &'static str {
    match e {
        ClientError::ServerName(_) => "the host is not a valid TLS server name",
        _ => "cannot connect",
    }
}

/// "HTTP {status}", with what the XSP's `ErrorInfo` body says when it
/// sent one (its summary, bounded, and its error code).
fn unexpected_status(status: u16, resp: &ClientResponse) -> String {
    let mut out = format!("HTTP {status}");
    if let Ok(info) = ErrorInfo::parse(&resp.body, resp.header("content-type")) {
        let message: String = info
            .message()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        if !message.is_empty() {
            out.push_str(": ");
            out.push_str(&message);
        }
        if let Some(code) = info.error_code {
            out.push_str(&format!(" (XSI error {code})"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        assert!(matches!(
            target("http://xsp.example"),
            Err(XspError::BadUrl(..))
        ));
        let t = target("https://xsp.example:8443/base/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.base.as_str()),
            ("xsp.example", 8443, "/base")
        );
        assert_eq!(target("https://xsp.example").unwrap().port, 443);
        assert_eq!(segment("a b/c@d.example"), "a%20b%2Fc@d.example");
    }

    #[test]
    fn an_unexpected_status_says_what_the_error_info_says() {
        let answer = |status: u16, body: &'static [u8]| ClientResponse {
            status: hyper::StatusCode::from_u16(status).unwrap(),
            headers: hyper::HeaderMap::new(),
            body: bytes::Bytes::from_static(body),
        };
        let body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\"><summary>Service d\xe9sactiv\xe9</summary><summaryEnglish>Service disabled\r\n</summaryEnglish><errorCode>4410</errorCode></ErrorInfo>";
        assert_eq!(
            unexpected_status(500, &answer(500, body)),
            "HTTP 500: Service disabled (XSI error 4410)"
        );
        assert_eq!(
            unexpected_status(502, &answer(502, b"<html>Bad gateway</html>")),
            "HTTP 502"
        );
        assert_eq!(unexpected_status(503, &answer(503, b"")), "HTTP 503");
    }

    /// A large answer is parsed off the async worker: a single-threaded
    /// runtime keeps running other tasks while an 800 KB profile (40,000
    /// elements) is read, as it did not when the answer was parsed in
    /// place.
    #[tokio::test(flavor = "current_thread")]
    async fn a_large_answer_does_not_hold_the_runtime() {
        let tls = crate::tls::client::service_client_config(None).unwrap();
        let pool = ParsePool::new(&crate::config::LimitsConfig::default());
        let client = XspClient::new(tls, Duration::from_secs(5), pool);
        let filler = "<x a='1' b='2'>t</x>".repeat(40_000);
        let body = format!(
            "<Profile xmlns='http://schema.broadsoft.com/xsi'><details><userId>big@x.example</userId></details>{filler}</Profile>"
        );
        let resp = ClientResponse {
            status: hyper::StatusCode::OK,
            headers: hyper::HeaderMap::new(),
            body: bytes::Bytes::from(body),
        };
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::task::yield_now().await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        tokio::task::yield_now().await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        let profile = client.read(resp).await.unwrap();
        let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
        ticker.abort();
        assert_eq!(profile.user_id, "big@x.example");
        assert!(
            during > 10,
            "the runtime ran {during} times during the parse"
        );
    }
}
