//! HTML refusals: the alert paragraph every portal and partner page shows,
//! the page that only says what was refused, the response around any page
//! that shows a refusal (status and `Retry-After` from the refusal), and
//! the error page of a request refused before any face saw it. Faces
//! choose the words and the layout; the code, the status and the
//! reference line come from here.

use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::Response;

use super::status_of;
use crate::domain::Refusal;
use crate::html::escape as esc;
use crate::http::portal::{html, page};
use crate::http::ResponseBody;

/// `<p class="error" role="alert">reason (error N)</p>`.
pub fn alert(refusal: &Refusal) -> String {
    format!(
        "<p class=\"error\" role=\"alert\">{} (error {})</p>",
        esc(refusal.message()),
        refusal.code.code()
    )
}

/// The alert of a form the page shows again: sentence-cased, and the
/// target of the fields' `aria-describedby="form-error"`.
pub fn form_alert(refusal: &Refusal) -> String {
    format!(
        "<p class=\"error\" role=\"alert\" id=\"form-error\">{} (error {})</p>",
        esc(&capitalized(refusal.message())),
        refusal.code.code()
    )
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A whole HTML page (`page_html`, in the face's own layout) that shows
/// `refusal`: the table's status, and `Retry-After` when the refusal says
/// when to retry. Every page that refuses something answers through here.
pub fn respond(refusal: &Refusal, page_html: String) -> Response<ResponseBody> {
    let mut resp = html(status_of(refusal), page_html);
    if let Some(secs) = refusal.retry_after {
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The body of a page that only reports a refusal: heading, the given
/// alert (`alert` or `form_alert`), and the tracking id as a reference.
pub fn refusal_body(heading: &str, alert_html: &str, tracking_id: &str) -> String {
    format!(
        "<h1>{}</h1>{alert_html}<p>Nothing was changed. Reference: <code>{}</code></p>",
        esc(heading),
        esc(tracking_id)
    )
}

/// A portal page that only reports a refusal (no form to show again):
/// `refusal_body` in the portal layout, through `respond`.
pub fn refusal_page(
    refusal: &Refusal,
    heading: &str,
    alert_html: &str,
    tracking_id: &str,
) -> Response<ResponseBody> {
    respond(
        refusal,
        page(heading, &refusal_body(heading, alert_html, tracking_id)),
    )
}

/// The page for a request refused by the transport (routing, limits)
/// on the portal listener.
pub fn error_page(code: u32, summary: &str, tracking_id: &str) -> String {
    page(
        "Something went wrong",
        &format!(
            "<h1>Something went wrong</h1><p class=\"error\" role=\"alert\">{}</p>\
<p>Error {code}. Reference: <code>{}</code></p>",
            esc(summary),
            esc(tracking_id)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ErrorCode;

    #[test]
    fn alerts_escape_and_carry_the_code() {
        let r = Refusal::new(ErrorCode::InvalidEmail, "no <b> here");
        assert_eq!(
            alert(&r),
            "<p class=\"error\" role=\"alert\">no &lt;b&gt; here (error 9001)</p>"
        );
        assert!(form_alert(&r).contains(">No &lt;b&gt; here (error 9001)<"));
    }

    #[test]
    fn refusal_page_status_comes_from_the_table() {
        let r = Refusal::new(ErrorCode::WrongState, "used");
        let resp = refusal_page(&r, "Done <already>", &alert(&r), "T1");
        assert_eq!(resp.status().as_u16(), 409);
        assert!(!resp.headers().contains_key(RETRY_AFTER));
    }

    #[test]
    fn pages_carry_retry_after_when_the_refusal_has_one() {
        let r = Refusal::new(ErrorCode::TooManyAttempts, "wait").retry_after(7);
        let resp = respond(&r, page("Locked", "<p>x</p>"));
        assert_eq!(resp.status().as_u16(), 429);
        assert_eq!(resp.headers()[RETRY_AFTER], "7");
        assert_eq!(
            resp.headers()[hyper::header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn refusal_body_escapes_and_gives_the_reference() {
        let body = refusal_body("A <b>", "<p>alert</p>", "T&2");
        assert_eq!(
            body,
            "<h1>A &lt;b&gt;</h1><p>alert</p><p>Nothing was changed. Reference: <code>T&amp;2</code></p>"
        );
    }

    #[test]
    fn error_page_escapes() {
        let p = error_page(9015, "No <such> page", "T&1");
        assert!(p.contains("No &lt;such&gt; page"));
        assert!(p.contains("T&amp;1"));
        assert!(p.starts_with("<!doctype html>"));
    }
}
