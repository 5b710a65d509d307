//! Cross-site form posts to the status page (login CSRF on the sign-in
//! form: a foreign page signing the victim in as the attacker's partner;
//! the other forms also carry a CSRF token). A browser says where a POST
//! comes from in `Sec-Fetch-Site` and `Origin`; a post is refused when
//! either names another site. Clients that send neither (not browsers,
//! so no victim's browser to ride on) pass.

use hyper::header::{HeaderMap, HOST, ORIGIN};
use hyper::Uri;

/// Whether the request's browser headers say it came from another site.
/// `own_origins` are this portal's origins (`https://host[:port]`): its
/// public URL and the address the request was sent to.
pub fn is_cross_site(headers: &HeaderMap, uri: &Uri, portal_base: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none")) {
            return true;
        }
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    let origin = origin.trim().trim_end_matches('/');
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| headers.get(HOST)?.to_str().ok().map(str::to_string));
    let mut own = Vec::with_capacity(2);
    if let Some(base) = portal_base.and_then(origin_of) {
        own.push(base);
    }
    if let Some(h) = host {
        own.push(format!("https://{h}"));
    }
    !own.iter().any(|o| o.eq_ignore_ascii_case(origin))
}

/// `scheme://authority` of a URL (the serialized origin).
fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!(
        "{}://{}",
        uri.scheme_str()?,
        uri.authority()?.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_site_posts_pass_and_foreign_ones_are_refused() {
        let uri: Uri = "/partner/session".parse().unwrap();
        let base = Some("https://portal.example/");
        let cross = |pairs: &[(&'static str, &str)]| is_cross_site(&headers(pairs), &uri, base);
        // No browser headers: not a browser, nothing to ride on.
        assert!(!cross(&[]));
        assert!(!cross(&[("origin", "https://portal.example")]));
        assert!(!cross(&[
            ("host", "127.0.0.1:8444"),
            ("origin", "https://127.0.0.1:8444")
        ]));
        assert!(!cross(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://PORTAL.example")
        ]));
        assert!(cross(&[("origin", "https://evil.example")]));
        assert!(cross(&[("origin", "null")]));
        assert!(
            cross(&[("origin", "http://portal.example")]),
            "other scheme"
        );
        assert!(
            cross(&[("origin", "https://portal.example:444")]),
            "other port"
        );
        assert!(cross(&[("sec-fetch-site", "cross-site")]));
        assert!(cross(&[("sec-fetch-site", "same-site")]));
        assert!(cross(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://evil.example")
        ]));
        let h2: Uri = "https://127.0.0.1:8444/partner/session".parse().unwrap();
        assert!(!is_cross_site(
            &headers(&[("origin", "https://127.0.0.1:8444")]),
            &h2,
            None
        ));
    }
}
