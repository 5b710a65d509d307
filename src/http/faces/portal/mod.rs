//! Pages of the portal listener (no client certificates): server-rendered,
//! accessible HTML that works without JavaScript. The activation flows and
//! organization approval add their pages here.

pub mod activation;
pub mod org_approval;
pub mod signin;

use bytes::Bytes;
use hyper::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::{HeaderMap, Response};

use crate::html::escape as esc;
use crate::http::ResponseBody;

/// Form or query fields (`application/x-www-form-urlencoded`), first value
/// of each name.
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The first value of `name`, or "" when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A whole page around already-escaped `body` HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
label{{display:block;margin-top:1rem}}input,button{{font-size:1rem;padding:.4rem;margin:.25rem .5rem .25rem 0}}\
input:not([type=hidden],[type=checkbox],[type=radio]){{box-sizing:border-box;width:min(100%,22rem)}}\
[aria-invalid=true]{{border:2px solid #a00}}.error{{color:#a00}}h1,h2{{line-height:1.2}}</style></head>\
<body><main>{body}</main></body></html>\n",
        title = esc(title)
    )
}

pub fn html(status: hyper::StatusCode, body: String) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    resp
}

/// Headers every portal response carries (pages carry tokens in their
/// URLs, and the portal is only ever served over HTTPS). A page that
/// needs its own policy (the partner page's script hash, its
/// Referrer-Policy) sets it and keeps it; the rest get these defaults.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let defaults: [(HeaderName, &'static str); 2] = [
        // Non-HTML answers (JSON, CSV, errors) need nothing at all.
        (
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in defaults {
        h.entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

pub fn home() -> Response<ResponseBody> {
    html(
        hyper::StatusCode::OK,
        page(
            "bwgate activation portal",
            &format!(
                "<h1>Activation portal</h1><p>Open the activation link you received by email, \
or the self-activation link from your service provider.</p><h2>No link?</h2>\
<p>Sign in with your BroadWorks user id and password to continue your activation.</p>{}",
                crate::http::signin::form("/activate/signin", None, "")
            ),
        ),
    )
}
