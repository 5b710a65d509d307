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
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::client::{ClientError, HttpsClient};

/// What the XSP says about a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XspProfile {
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub group_id: String,
    pub service_provider_id: String,
    /// The service provider is an enterprise (`isEnterprise="true"`).
    pub is_enterprise: bool,
    /// The user's number as BroadWorks holds it (national digits).
    pub number: Option<String>,
    pub extension: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    /// E.164 country code of `number` (`countryCode`).
    pub country_code: Option<String>,
}

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
    pub fn new(tls: rustls::ClientConfig, timeout: Duration) -> XspClient {
        XspClient {
            tls: Arc::new(tls),
            timeout,
        }
    }

    /// The user's profile if `password` is theirs.
    pub async fn profile(
        &self,
        xsp_url: &str,
        user_id: &str,
        password: &str,
    ) -> Result<XspProfile, XspError> {
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
        match resp.status.as_u16() {
            200 => parse_profile(&resp.body, resp.header("content-type")),
            // 403/404 too: BroadWorks answers them for an unknown user.
            401 | 403 | 404 => Err(XspError::BadCredentials),
            s => Err(XspError::BadAnswer(format!("HTTP {s}"))),
        }
    }
}

fn leak_reason(e: &ClientError) -> &'static str {
    match e {
        ClientError::ServerName(_) => "the host is not a valid TLS server name",
        _ => "cannot connect",
    }
}

/// Reads a `Profile` document (namespace-tolerant; ISO-8859-1 or UTF-8).
pub fn parse_profile(body: &[u8], content_type: Option<&str>) -> Result<XspProfile, XspError> {
    let bad = |what: String| XspError::BadAnswer(format!("profile: {what}"));
    let text = crate::flowthrough::charset::decode_body(body, content_type)
        .map_err(|e| bad(e.to_string()))?;
    let mut reader = Reader::from_str(&text);
    let mut path: Vec<String> = Vec::new();
    let mut p = XspProfile::default();
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if name == "serviceProvider" {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().as_ref() == b"isEnterprise" {
                            p.is_enterprise = a.value.as_ref() == b"true";
                        }
                    }
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let value = t.decode().map_err(|e| bad(e.to_string()))?;
                let value = quick_xml::escape::unescape(&value)
                    .map_err(|e| bad(e.to_string()))?
                    .trim()
                    .to_string();
                if value.is_empty() {
                    continue;
                }
                let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
                let field = match (parent.map(String::as_str), path.last().map(String::as_str)) {
                    (Some("details"), Some("userId")) => &mut p.user_id,
                    (Some("details"), Some("firstName")) => &mut p.first_name,
                    (Some("details"), Some("lastName")) => &mut p.last_name,
                    (Some("details"), Some("groupId")) => &mut p.group_id,
                    (Some("details"), Some("serviceProvider")) => &mut p.service_provider_id,
                    (Some("details"), Some("number")) => p.number.get_or_insert_default(),
                    (Some("details"), Some("extension")) => p.extension.get_or_insert_default(),
                    (Some("additionalDetails"), Some("mobile")) => p.mobile.get_or_insert_default(),
                    (Some("additionalDetails"), Some("emailAddress")) => {
                        p.email.get_or_insert_default()
                    }
                    (Some("Profile"), Some("countryCode")) => {
                        p.country_code.get_or_insert_default()
                    }
                    _ => continue,
                };
                *field = value;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if p.user_id.is_empty() {
        return Err(bad("no details/userId".into()));
    }
    Ok(p)
}

impl XspProfile {
    /// The number in E.164 (`+{countryCode}{number}`), when both are known
    /// and make a valid number.
    pub fn e164_number(&self) -> Option<crate::domain::phone::E164> {
        let number = self.number.as_deref()?;
        let raw = if number.starts_with('+') {
            number.to_string()
        } else {
            format!("+{}{}", self.country_code.as_deref()?, number)
        };
        crate::domain::phone::E164::parse(&raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/support/xsp-profile.xml");

    #[test]
    fn reads_the_spec_sample_profile() {
        let p = parse_profile(SAMPLE.as_bytes(), Some("application/xml")).unwrap();
        assert_eq!(p.user_id, "negi001@172.16.25.102");
        assert_eq!(
            (p.first_name.as_str(), p.last_name.as_str()),
            ("Subhash", "Negi")
        );
        assert_eq!(p.group_id, "gp1");
        assert_eq!(p.service_provider_id, "sp1");
        assert!(!p.is_enterprise);
        assert_eq!(p.number.as_deref(), Some("5006007004"));
        assert_eq!(p.extension.as_deref(), Some("7004"));
        assert_eq!(p.email.as_deref(), Some("subhashnegi@gmail.com"));
        assert_eq!(p.mobile, None, "xsi:nil stays empty");
        assert_eq!(p.e164_number().unwrap().as_str(), "+15006007004");
    }

    #[test]
    fn latin1_profiles_decode_and_junk_is_refused() {
        let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Profile xmlns=\"http://schema.broadsoft.com/xsi\"><details><userId>j@x.example</userId><firstName>J\xfcrgen</firstName></details></Profile>";
        let p = parse_profile(doc, None).unwrap();
        assert_eq!(p.first_name, "J\u{fc}rgen");
        assert!(parse_profile(b"<Profile><details/></Profile>", None).is_err());
        assert!(parse_profile(b"<Profile><details>", None).is_err());
    }

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
}
