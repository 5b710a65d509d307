//! The partner admin status page (portal listener): server-rendered,
//! accessible HTML that works without JavaScript.
//!
//! - `GET /partner/status`: without a session, the sign-in form (admin
//!   token, `POST /partner/session`, which sets an 8-hour HttpOnly, Secure,
//!   SameSite=Strict session cookie); with one, the subscriber table
//!   (BroadWorks user id, name, email, package, status, error text with a
//!   copy button), a filter form (GET parameters as in the JSON API), a CSV
//!   export link with the same filters and per-row actions.
//! - Actions are POST forms carrying the session's CSRF token: retry
//!   activation (`/partner/status/activation`, optional email), change
//!   package (`/partner/status/package`), delete (`GET
//!   /partner/status/delete?id=…` asks for confirmation, its form posts to
//!   `/partner/status/delete`). Each answers with a redirect back to the
//!   filtered table and a notice, or an error page; a refused action
//!   changes nothing.
//! - `POST /partner/signout` ends the session in the browser.
//!
//! The only script (copying the error text) is inline, allowed by its hash
//! in the Content-Security-Policy; without it the text stays selectable.

use std::net::IpAddr;
use std::sync::OnceLock;

use base64::Engine;
use hyper::header::{HeaderValue, LOCATION, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::auth::{self, Session};
use super::view::{self, Filters};
use super::{
    check_template, collect_csv, csv_response, origin, signer, PartnerRoute, TokenRefusal,
};
use crate::app::App;
use crate::domain::lifecycle::{Rejection, SubscriberRecord, SubscriberStatus};
use crate::domain::{ErrorCode, Package, Refusal};
use crate::html::escape as esc;
use crate::http::admin_activation::{self, RenewError};
use crate::http::error::html as render;
use crate::http::portal::{html, Fields};
use crate::http::ResponseBody;
use crate::http::State;
use crate::links::LinkSigner;
use crate::provision::{now_millis, DataError};

/// Rows per page of the table.
const PAGE_SIZE: usize = 50;

/// Copies a row's error text; buttons stay hidden without JavaScript.
const SCRIPT: &str = "document.querySelectorAll('button[data-copy]').forEach(function(b){\
b.hidden=false;b.addEventListener('click',function(){\
var f=document.getElementById(b.getAttribute('data-copy'));\
var s=document.getElementById('copy-status');\
var done=function(){s.textContent='Error text copied.';};\
f.focus();f.select();\
if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(f.value).then(done,function(){document.execCommand('copy');done();});}\
else{document.execCommand('copy');done();}});});";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:80rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5}label{margin-right:.5rem}input,button,select,textarea{font-size:1rem;\
padding:.3rem}table{border-collapse:collapse;width:100%;margin-top:1rem}th,td{border:1px solid #999;\
padding:.4rem;text-align:left;vertical-align:top}form.inline{display:inline-block;margin:.2rem 0}\
.error{color:#a00}.notice{color:#060}.vh{position:absolute;width:1px;height:1px;overflow:hidden;\
clip:rect(0 0 0 0);white-space:nowrap}textarea{width:100%;min-width:12rem}fieldset{margin-top:1rem}";

fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SCRIPT.as_bytes());
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        )
    })
}

/// A whole page around already-escaped `body` HTML.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title}</title><style>{STYLE}</style></head>\
<body><main>{body}</main><script>{SCRIPT}</script></body></html>\n",
        title = esc(title)
    )
}

fn respond(status: StatusCode, page: String) -> Response<ResponseBody> {
    with_page_headers(html(status, page))
}

/// A page showing a refusal: its status (and `Retry-After`) come from
/// the one HTML renderer.
fn respond_refused(refusal: &Refusal, page: String) -> Response<ResponseBody> {
    with_page_headers(render::respond(refusal, page))
}

/// This page's own Content-Security-Policy (the script's hash) and
/// Referrer-Policy.
fn with_page_headers(mut resp: Response<ResponseBody>) -> Response<ResponseBody> {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_security_policy()) {
        h.insert("content-security-policy", v);
    }
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    resp
}

fn redirect(location: &str, cookie: Option<String>) -> Response<ResponseBody> {
    let mut resp = respond(
        StatusCode::SEE_OTHER,
        layout(
            "Redirecting",
            &format!("<p><a href=\"{0}\">Continue</a></p>", esc(location)),
        ),
    );
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(LOCATION, v);
    }
    if let Some(v) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(SET_COOKIE, v);
    }
    resp
}

/// An error page: what went wrong, its code, and the way back.
fn problem(r: &Rejection, tracking_id: &str, back: &str) -> Response<ResponseBody> {
    let body = format!(
        "{}<p><a href=\"{}\">Back to the subscribers</a></p>",
        render::refusal_body("Not done", &render::alert(r), tracking_id),
        esc(back)
    );
    respond_refused(r, layout("Not done", &body))
}

fn store_problem(e: &DataError, tracking_id: &str) -> Response<ResponseBody> {
    tracing::error!(error = %e, tracking_id, "store error on the partner status page");
    problem(
        &Rejection::new(
            ErrorCode::StorageUnavailable,
            "the subscriber store is unavailable; try again in a moment",
        ),
        tracking_id,
        "/partner/status",
    )
}

/// The table's address with the filters of `back` (a query string that
/// is parsed again, never echoed) and an optional notice.
fn table_url(back: &str, done: Option<&str>) -> String {
    let mut query = Filters::parse(Some(back))
        .map(|f| f.to_query(true))
        .unwrap_or_default();
    if let Some(d) = done {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("done=");
        query.push_str(d);
    }
    if query.is_empty() {
        "/partner/status".to_string()
    } else {
        format!("/partner/status?{query}")
    }
}

async fn session(
    app: &State,
    signer: &LinkSigner,
    parts: &Parts,
) -> Result<Option<Session>, DataError> {
    let Some(value) = auth::session_cookie(&parts.headers) else {
        return Ok(None);
    };
    let Ok(signed) = signer.verify("partner-session", value, now_millis()) else {
        return Ok(None);
    };
    let Some(partner) = signed.fields.first() else {
        return Ok(None);
    };
    let hash = app.partner_auth.token_hash(&app.queries, partner).await?;
    Ok(auth::verify_session(signer, value, now_millis(), |_| hash))
}

pub(super) async fn serve(
    app: &State,
    peer: IpAddr,
    route: &PartnerRoute,
    parts: &Parts,
    body: &[u8],
    tracking_id: &str,
) -> Response<ResponseBody> {
    let Some(signer) = signer(app) else {
        return problem(
            &Rejection::new(
                ErrorCode::UnderMaintenance,
                "partner sign-in is not available on this server",
            ),
            tracking_id,
            "/partner/status",
        );
    };
    let session = match session(app, &signer, parts).await {
        Ok(s) => s,
        Err(e) => return store_problem(&e, tracking_id),
    };
    let had_cookie = auth::session_cookie(&parts.headers).is_some();
    let portal_base = app
        .provisioning
        .activations()
        .map(|a| a.portal_base.as_str());
    if parts.method == hyper::Method::POST
        && origin::is_cross_site(&parts.headers, &parts.uri, portal_base)
    {
        tracing::info!(%peer, tracking_id, "cross-site post to the partner status page refused");
        return problem(
            &Rejection::new(
                ErrorCode::FormTokenInvalid,
                "this form did not come from this site; open the status page and try again",
            ),
            tracking_id,
            "/partner/status",
        );
    }
    if *route == PartnerRoute::SignIn {
        return sign_in(app, peer, &signer, &Fields::parse(body), tracking_id).await;
    }
    let Some(session) = session else {
        if *route == PartnerRoute::SignOut {
            return redirect("/partner/status", Some(auth::clear_cookie()));
        }
        return match route {
            PartnerRoute::StatusPage if !had_cookie => sign_in_page(SignInNote::None),
            PartnerRoute::StatusPage => sign_in_page(SignInNote::Ended),
            _ => sign_in_page(SignInNote::Refused(&Refusal::new(
                ErrorCode::BadCredentials,
                "sign in first: your session is missing or has ended",
            ))),
        };
    };
    match route {
        PartnerRoute::StatusPage => {
            status_page(app, &session, parts.uri.query(), tracking_id).await
        }
        PartnerRoute::StatusCsv => {
            let filters = match Filters::parse(parts.uri.query())
                .and_then(|f| check_template(app, &session.partner_id, &f).map(|()| f))
            {
                Ok(f) => f,
                Err(r) => return problem(&r, tracking_id, "/partner/status"),
            };
            match collect_csv(app, &session.partner_id, &filters).await {
                Ok(csv) => csv_response(csv),
                Err(e) => problem(
                    &Rejection::new(e.code, e.summary()),
                    tracking_id,
                    "/partner/status",
                ),
            }
        }
        PartnerRoute::DeleteConfirm => {
            let fields = Fields::parse(parts.uri.query().unwrap_or("").as_bytes());
            delete_confirm(app, &session, &fields, tracking_id).await
        }
        _ => {
            let fields = Fields::parse(body);
            if !auth::csrf_matches(&session, fields.get("csrf")) {
                return problem(
                    &Rejection::new(
                        ErrorCode::FormTokenInvalid,
                        "this form is out of date or did not come from this page; reload the page and try again",
                    ),
                    tracking_id,
                    "/partner/status",
                );
            }
            form_action(app, &session, route, &fields, tracking_id).await
        }
    }
}

async fn sign_in(
    app: &State,
    peer: IpAddr,
    signer: &LinkSigner,
    fields: &Fields,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let token = fields.get("token").trim();
    let partner = match super::partner_for_token(app, peer, token).await {
        Ok(Ok(p)) => p,
        Ok(Err(refusal)) => return refused_sign_in(&refusal),
        Err(e) => return store_problem(&e, tracking_id),
    };
    let hash = match app.partner_auth.token_hash(&app.queries, &partner).await {
        Ok(h) => h,
        Err(e) => return store_problem(&e, tracking_id),
    };
    let Some(hash) = hash else {
        return refused_sign_in(&TokenRefusal::Wrong);
    };
    let (value, _) = auth::issue_session(signer, &partner, &hash, now_millis());
    tracing::info!(partner_id = %partner, tracking_id, "partner admin signed in");
    redirect("/partner/status", Some(auth::set_cookie(&value)))
}

/// The sign-in form again, with why the token was not taken (the wire
/// refusal's code, status and `Retry-After`, in this page's words).
fn refused_sign_in(refusal: &TokenRefusal) -> Response<ResponseBody> {
    let detail = match refusal {
        TokenRefusal::Wrong => "that admin token is not valid; nothing was changed".to_string(),
        TokenRefusal::Locked(secs) => {
            format!("too many wrong admin tokens from your address; try again in {secs} seconds")
        }
        TokenRefusal::Busy => {
            "too many sign-ins are being checked right now; try again in a moment".to_string()
        }
    };
    let shown = Refusal {
        detail: Some(detail),
        ..refusal.wire()
    };
    sign_in_page(SignInNote::Refused(&shown))
}

/// What the sign-in form says above it.
enum SignInNote<'a> {
    None,
    /// The session cookie has expired: a notice, not a refusal (200).
    Ended,
    /// Refused: the alert, and the refusal's status.
    Refused(&'a Refusal),
}

fn sign_in_page(note: SignInNote<'_>) -> Response<ResponseBody> {
    let alert = match &note {
        SignInNote::None => String::new(),
        SignInNote::Ended => {
            "<p class=\"error\" role=\"alert\">Your session has ended. Sign in again.</p>"
                .to_string()
        }
        SignInNote::Refused(r) => render::form_alert(r),
    };
    let invalid = match &note {
        SignInNote::Refused(r) if r.code == ErrorCode::BadCredentials => {
            " aria-invalid=\"true\" aria-describedby=\"form-error\""
        }
        _ => "",
    };
    let body = format!(
        "<h1>Subscriber status: partner admin sign-in</h1>{alert}\
<form method=\"post\" action=\"/partner/session\">\
<p><label for=\"token\">Admin token</label> \
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required{invalid}></p>\
<p><button type=\"submit\">Sign in</button></p></form>\
<p>The admin token is set by your bwgate operator. The session lasts 8 hours.</p>"
    );
    let page = layout("Partner admin sign-in", &body);
    match note {
        SignInNote::Refused(r) => respond_refused(r, page),
        SignInNote::None | SignInNote::Ended => respond(StatusCode::OK, page),
    }
}

async fn status_page(
    app: &App,
    session: &Session,
    query: Option<&str>,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let partner_id = session.partner_id.as_str();
    let filters =
        match Filters::parse(query).and_then(|f| check_template(app, partner_id, &f).map(|()| f)) {
            Ok(f) => f,
            Err(r) => return problem(&r, tracking_id, "/partner/status"),
        };
    let max = filters.max.unwrap_or(PAGE_SIZE);
    let mut rows = match app
        .queries
        .partner_subscribers(&filters.query(partner_id, max + 1))
        .await
    {
        Ok(rows) => rows,
        Err(e) => return store_problem(&e, tracking_id),
    };
    let more = rows.len() > max;
    rows.truncate(max);
    let partner_name = match app.queries.partner(partner_id).await {
        Ok(p) => p.map(|p| p.name).unwrap_or_else(|| partner_id.to_string()),
        Err(e) => return store_problem(&e, tracking_id),
    };
    let templates: Vec<(String, String)> = app
        .provisioning
        .templates_of_partner(partner_id)
        .iter()
        .map(|t| (t.provisioning_id.clone(), t.name.clone()))
        .collect();
    let done = Fields::parse(query.unwrap_or("").as_bytes())
        .get("done")
        .to_string();
    let page = StatusView {
        partner_name: &partner_name,
        session,
        filters: &filters,
        rows: &rows,
        more,
        templates: &templates,
        done: &done,
    };
    respond(StatusCode::OK, layout("Subscriber status", &page.render()))
}

/// What the table page shows (rendering is pure, so it is unit-tested).
struct StatusView<'a> {
    partner_name: &'a str,
    session: &'a Session,
    filters: &'a Filters,
    rows: &'a [SubscriberRecord],
    more: bool,
    templates: &'a [(String, String)],
    /// The `done` notice of the action that redirected here.
    done: &'a str,
}

fn selected(on: bool) -> &'static str {
    if on {
        " selected"
    } else {
        ""
    }
}

/// Who a row is about, for labels: the BroadWorks user id, else (removed)
/// the email or id.
fn who(r: &SubscriberRecord) -> String {
    match (&r.user_id, &r.email) {
        (Some(u), _) => u.as_str().to_string(),
        (None, Some(e)) => format!("removed subscriber {e}"),
        (None, None) => format!("removed subscriber {}", r.id),
    }
}

impl StatusView<'_> {
    fn hidden(&self, id: &str) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
<input type=\"hidden\" name=\"back\" value=\"{}\">",
            esc(&self.session.csrf),
            esc(id),
            esc(&self.filters.to_query(true))
        )
    }

    fn render(&self) -> String {
        let mut out = format!(
            "<h1>Subscriber status</h1><p>Signed in for <strong>{}</strong>.</p>\
<form method=\"post\" action=\"/partner/signout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Sign out</button></form>",
            esc(self.partner_name),
            esc(&self.session.csrf)
        );
        let notice = match self.done {
            "activation" => Some("A new activation link was issued and sent."),
            "package" => Some("The package was changed."),
            "deleted" => Some("The subscriber was deleted."),
            _ => None,
        };
        if let Some(n) = notice {
            out.push_str(&format!("<p class=\"notice\" role=\"status\">{n}</p>"));
        }
        out.push_str(&self.filter_form());
        let filter_query = self.filters.to_query(false);
        out.push_str(&format!(
            "<p><a href=\"/partner/status.csv{}{}\">Export these subscribers as CSV</a></p>",
            if filter_query.is_empty() { "" } else { "?" },
            esc(&filter_query)
        ));
        out.push_str(
            "<p id=\"copy-status\" class=\"vh\" role=\"status\" aria-live=\"polite\"></p>",
        );
        if self.rows.is_empty() {
            out.push_str("<p role=\"status\">No subscribers match these filters.</p>");
        } else {
            out.push_str(&format!(
                "<table><caption>{} subscriber{}{}</caption><thead><tr>\
<th scope=\"col\">BroadWorks user id</th><th scope=\"col\">Name</th><th scope=\"col\">Email</th>\
<th scope=\"col\">Package</th><th scope=\"col\">Status</th><th scope=\"col\">Error text</th>\
<th scope=\"col\">Actions</th></tr></thead><tbody>",
                self.rows.len(),
                if self.rows.len() == 1 { "" } else { "s" },
                if self.filters.after.is_some() || self.more {
                    " on this page"
                } else {
                    ""
                }
            ));
            for (i, r) in self.rows.iter().enumerate() {
                out.push_str(&self.row(i, r));
            }
            out.push_str("</tbody></table>");
        }
        let mut nav = Vec::new();
        if self.filters.after.is_some() {
            let first = Filters {
                after: None,
                ..self.filters.clone()
            };
            nav.push(format!(
                "<a href=\"{}\">First page</a>",
                esc(&table_url(&first.to_query(true), None))
            ));
        }
        if let (true, Some(last)) = (self.more, self.rows.last()) {
            let next = Filters {
                after: Some(last.id.clone()),
                ..self.filters.clone()
            };
            nav.push(format!(
                "<a href=\"{}\" rel=\"next\">Next page</a>",
                esc(&table_url(&next.to_query(true), None))
            ));
        }
        if !nav.is_empty() {
            out.push_str(&format!(
                "<nav aria-label=\"Pages\"><p>{}</p></nav>",
                nav.join(" · ")
            ));
        }
        out
    }

    fn filter_form(&self) -> String {
        let f = self.filters;
        let one = (f.statuses.len() == 1).then(|| f.statuses[0]);
        let mut statuses = format!(
            "<option value=\"\"{}>Any (not removed)</option>",
            selected(f.statuses.is_empty())
        );
        for s in SubscriberStatus::ALL {
            statuses.push_str(&format!(
                "<option value=\"{0}\"{1}>{0}</option>",
                s.as_str(),
                selected(one == Some(s))
            ));
        }
        let mut templates = format!(
            "<option value=\"\"{}>All templates</option>",
            selected(f.provisioning_id.is_none())
        );
        for (pid, name) in self.templates {
            templates.push_str(&format!(
                "<option value=\"{}\"{}>{} ({})</option>",
                esc(pid),
                selected(f.provisioning_id.as_deref() == Some(pid.as_str())),
                esc(name),
                esc(pid)
            ));
        }
        format!(
            "<form method=\"get\" action=\"/partner/status\"><fieldset><legend>Filter</legend>\
<label for=\"f-status\">Status</label> <select id=\"f-status\" name=\"status\">{statuses}</select> \
<label for=\"f-template\">Template</label> <select id=\"f-template\" name=\"provisioningId\">{templates}</select> \
<label><input type=\"checkbox\" name=\"excludeProvisioned\" value=\"true\"{}> Exclude provisioned</label> \
<button type=\"submit\">Filter</button></fieldset></form>",
            if f.exclude_provisioned { " checked" } else { "" }
        )
    }

    fn row(&self, i: usize, r: &SubscriberRecord) -> String {
        let who = who(r);
        let user_cell = match &r.user_id {
            Some(u) => esc(u.as_str()),
            None => "<em>removed</em>".to_string(),
        };
        let errors = view::error_text(r);
        let error_cell = if errors.is_empty() {
            "<span aria-hidden=\"true\">—</span><span class=\"vh\">none</span>".to_string()
        } else {
            format!(
                "<textarea id=\"err-{i}\" readonly rows=\"2\" aria-label=\"Error text of {w}\">{t}</textarea>\
<button type=\"button\" data-copy=\"err-{i}\" hidden>Copy<span class=\"vh\"> error text of {w}</span></button>",
                w = esc(&who),
                t = esc(&errors)
            )
        };
        let mut actions = String::new();
        if r.status != SubscriberStatus::Removed {
            let mut options = String::new();
            for p in Package::ALL {
                options.push_str(&format!(
                    "<option value=\"{0}\"{1}>{0}</option>",
                    p.as_str(),
                    selected(p == r.package)
                ));
            }
            actions.push_str(&format!(
                "<form method=\"post\" action=\"/partner/status/package\" class=\"inline\">{h}\
<label for=\"pkg-{i}\" class=\"vh\">Package for {w}</label><select id=\"pkg-{i}\" name=\"package\">{options}</select> \
<button type=\"submit\">Change package<span class=\"vh\"> of {w}</span></button></form>",
                h = self.hidden(&r.id),
                w = esc(&who)
            ));
            // Waiting users get a new link; failed ones start again.
            if r.status.is_pending_user() || r.status == SubscriberStatus::Error {
                let (field, label) = if r.status == SubscriberStatus::PendingUserMigration {
                    (String::new(), "Resend consent email")
                } else {
                    (
                        format!(
                            "<label for=\"em-{i}\" class=\"vh\">Email to send the activation link of {w} to</label>\
<input id=\"em-{i}\" type=\"email\" name=\"email\" value=\"{e}\" placeholder=\"email (optional)\" autocomplete=\"off\"> ",
                            w = esc(&who),
                            e = esc(r.email.as_deref().unwrap_or(""))
                        ),
                        "Retry activation",
                    )
                };
                actions.push_str(&format!(
                    "<form method=\"post\" action=\"/partner/status/activation\" class=\"inline\">{h}{field}\
<button type=\"submit\">{label}<span class=\"vh\"> of {w}</span></button></form>",
                    h = self.hidden(&r.id),
                    w = esc(&who)
                ));
            }
            let confirm = form_urlencoded::Serializer::new(String::new())
                .append_pair("id", &r.id)
                .append_pair("back", &self.filters.to_query(true))
                .finish();
            actions.push_str(&format!(
                " <a href=\"/partner/status/delete?{}\">Delete<span class=\"vh\"> {}</span>…</a>",
                esc(&confirm),
                esc(&who)
            ));
        }
        format!(
            "<tr><td>{user_cell}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{error_cell}</td><td>{actions}</td></tr>",
            esc(&r.first_name),
            esc(&r.last_name),
            esc(r.email.as_deref().unwrap_or("")),
            r.package.as_str(),
            r.status.as_str(),
        )
    }
}

async fn delete_confirm(
    app: &App,
    session: &Session,
    fields: &Fields,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let back = table_url(fields.get("back"), None);
    let id = fields.get("id");
    let subscriber = match app
        .queries
        .partner_subscriber(&session.partner_id, id)
        .await
    {
        Ok(Some(s)) if s.status != SubscriberStatus::Removed => s,
        Ok(_) => {
            return problem(
                &Rejection::new(ErrorCode::NotFound, "no such subscriber"),
                tracking_id,
                &back,
            )
        }
        Err(e) => return store_problem(&e, tracking_id),
    };
    let back_query = Filters::parse(Some(fields.get("back")))
        .map(|f| f.to_query(true))
        .unwrap_or_default();
    let body = format!(
        "<h1>Delete {w}?</h1>\
<dl><dt>BroadWorks user id</dt><dd>{w}</dd><dt>Name</dt><dd>{first} {last}</dd>\
<dt>Email</dt><dd>{email}</dd><dt>Status</dt><dd>{status}</dd></dl>\
<p>Deleting removes the BroadWorks user id, numbers and extension from the subscriber \
and its licenses; the email, names and language stay. It cannot be undone here.</p>\
<form method=\"post\" action=\"/partner/status/delete\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
<input type=\"hidden\" name=\"back\" value=\"{back_query}\">\
<button type=\"submit\">Delete {w}</button> <a href=\"{back}\">Cancel</a></form>",
        w = esc(&who(&subscriber)),
        first = esc(&subscriber.first_name),
        last = esc(&subscriber.last_name),
        email = esc(subscriber.email.as_deref().unwrap_or("")),
        status = subscriber.status.as_str(),
        csrf = esc(&session.csrf),
        id = esc(&subscriber.id),
        back_query = esc(&back_query),
        back = esc(&back),
    );
    respond(StatusCode::OK, layout("Delete a subscriber", &body))
}

async fn form_action(
    app: &App,
    session: &Session,
    route: &PartnerRoute,
    fields: &Fields,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let partner = session.partner_id.as_str();
    let back = fields.get("back");
    let id = fields.get("id");
    let fail = |r: Rejection| problem(&r, tracking_id, &table_url(back, None));
    let now = now_millis();
    match route {
        PartnerRoute::SignOut => {
            tracing::info!(
                partner_id = partner,
                tracking_id,
                "partner admin signed out"
            );
            redirect("/partner/status", Some(auth::clear_cookie()))
        }
        PartnerRoute::FormPackage => {
            let Some(package) = Package::parse(fields.get("package")) else {
                return fail(Rejection::new(
                    ErrorCode::InvalidParameterValue,
                    "package: choose softphone, basic, standard or premium",
                ));
            };
            match app
                .provisioning
                .partner_change_package(partner, id, package, tracking_id, now)
                .await
            {
                Ok(Ok(change)) => {
                    tracing::info!(partner_id = partner, subscriber_id = %change.subscriber.id, "package changed by a partner admin");
                    redirect(&table_url(back, Some("package")), None)
                }
                Ok(Err(r)) => fail(r),
                Err(e) => store_problem(&e, tracking_id),
            }
        }
        PartnerRoute::FormDelete => {
            match app
                .provisioning
                .partner_delete_subscriber(partner, id, tracking_id, now)
                .await
            {
                Ok(Ok(change)) => {
                    tracing::info!(partner_id = partner, subscriber_id = %change.subscriber.id, "subscriber deleted by a partner admin");
                    redirect(&table_url(back, Some("deleted")), None)
                }
                Ok(Err(r)) => fail(r),
                Err(e) => store_problem(&e, tracking_id),
            }
        }
        PartnerRoute::FormActivation => {
            let email = fields.get("email").trim();
            let email = match admin_activation::checked_email((!email.is_empty()).then_some(email))
            {
                Ok(e) => e,
                Err(r) => return fail(r),
            };
            match app.queries.partner_subscriber(partner, id).await {
                Ok(Some(_)) => {}
                Ok(None) => return fail(Rejection::new(ErrorCode::NotFound, "no such subscriber")),
                Err(e) => return store_problem(&e, tracking_id),
            }
            match admin_activation::renew(app, id, email).await {
                Ok(_) => redirect(&table_url(back, Some("activation")), None),
                Err(RenewError::Refused(r)) => fail(r),
                Err(RenewError::Store(e)) => store_problem(&e, tracking_id),
            }
        }
        _ => fail(Rejection::new(ErrorCode::NotFound, "no such page")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;
    use crate::domain::lifecycle::SubscriberError;

    fn record(user: Option<&str>, status: SubscriberStatus) -> SubscriberRecord {
        SubscriberRecord {
            id: "0190-abc".into(),
            provisioning_id: "tpl".into(),
            user_id: user.map(|u| UserId::parse(u).expect("user id")),
            enterprise_key: None,
            org_id: None,
            service_provider_id: None,
            group_id: None,
            first_name: "<b>Ann</b>".into(),
            last_name: "O'Neil & \"Co\"".into(),
            email: Some("ann@acme.example".into()),
            phone_number: None,
            extension: Some("100".into()),
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            package: Package::Basic,
            status,
            errors: Vec::new(),
            self_activated: false,
            version: 1,
            created_at: 0,
            last_status_change: 0,
        }
    }

    fn session() -> Session {
        Session {
            partner_id: "acme".into(),
            csrf: "CSRF\"x".into(),
            expires_at: 1,
        }
    }

    #[test]
    fn table_escapes_everything_and_offers_copy_and_actions() {
        let mut failed = record(Some("ann@acme.example"), SubscriberStatus::Error);
        failed.errors = vec![SubscriberError {
            error_code: 9008,
            description: "<script>alert(1)</script> already assigned".into(),
        }];
        let waiting = SubscriberRecord {
            id: "0190-def".into(),
            ..record(
                Some("bob@acme.example"),
                SubscriberStatus::PendingEmailInput,
            )
        };
        let consent = SubscriberRecord {
            id: "0190-ghi".into(),
            ..record(
                Some("cy@acme.example"),
                SubscriberStatus::PendingUserMigration,
            )
        };
        let removed = SubscriberRecord {
            id: "0190-jkl".into(),
            ..record(None, SubscriberStatus::Removed)
        };
        let filters = Filters {
            exclude_provisioned: true,
            ..Filters::default()
        };
        let rows = vec![failed, waiting, consent, removed];
        let s = session();
        let html = StatusView {
            partner_name: "Acme <SP>",
            session: &s,
            filters: &filters,
            rows: &rows,
            more: true,
            templates: &[("tpl".into(), "T & 1".into())],
            done: "package",
        }
        .render();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>Ann"), "{html}");
        assert!(html.contains("&lt;b&gt;Ann&lt;/b&gt; O&#39;Neil &amp; &quot;Co&quot;"));
        assert!(html.contains("Acme &lt;SP&gt;"));
        assert!(html.contains("T &amp; 1 (tpl)"));
        // The error text: a read-only field plus a copy button that only
        // script reveals.
        assert!(html.contains(
            "<textarea id=\"err-0\" readonly rows=\"2\" aria-label=\"Error text of ann@acme.example\">\
9008: &lt;script&gt;alert(1)&lt;/script&gt; already assigned</textarea>"
        ));
        assert!(html.contains("<button type=\"button\" data-copy=\"err-0\" hidden>"));
        // CSRF on every form, escaped.
        assert_eq!(
            html.matches("name=\"csrf\" value=\"CSRF&quot;x\"").count(),
            1 + 3 + 3,
            "sign-out, three package forms, three activation forms (the failed user retries too)"
        );
        assert!(html.contains("action=\"/partner/status/activation\""));
        assert!(html.contains("Resend consent email"));
        assert_eq!(html.matches("type=\"email\" name=\"email\"").count(), 2);
        assert!(html.contains("<em>removed</em>"));
        assert_eq!(html.matches("/partner/status/delete?").count(), 3);
        assert!(html.contains("href=\"/partner/status.csv?excludeProvisioned=true\""));
        assert!(html.contains("name=\"excludeProvisioned\" value=\"true\" checked"));
        assert!(html.contains("role=\"status\">The package was changed."));
        assert!(html.contains("rel=\"next\""));
        assert!(html.contains("after=0190-jkl"));
    }

    #[test]
    fn the_script_is_allowed_by_its_hash_and_nothing_else() {
        let csp = content_security_policy();
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap_or_default();
        assert!(!script_src.contains("unsafe"), "{csp}");
        let page = layout("t", "");
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
    }

    #[test]
    fn table_urls_keep_only_parsed_filters() {
        assert_eq!(table_url("", None), "/partner/status");
        assert_eq!(
            table_url("status=error&evil=%3Cx%3E", Some("deleted")),
            "/partner/status?status=error&done=deleted"
        );
        assert_eq!(
            table_url("status=bogus", Some("package")),
            "/partner/status?done=package"
        );
    }

    async fn text(resp: Response<ResponseBody>) -> String {
        use http_body_util::BodyExt;
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn refused_sign_ins_take_status_code_and_retry_after_from_the_refusal() {
        let locked = refused_sign_in(&TokenRefusal::Locked(12));
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(locked.headers()[hyper::header::RETRY_AFTER], "12");
        assert!(locked.headers().contains_key("content-security-policy"));
        let page = text(locked).await;
        assert!(
            page.contains("try again in 12 seconds (error 9027)"),
            "{page}"
        );
        assert!(!page.contains("aria-invalid"), "{page}");

        let wrong = refused_sign_in(&TokenRefusal::Wrong);
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(!wrong.headers().contains_key(hyper::header::RETRY_AFTER));
        let page = text(wrong).await;
        assert!(page.contains("(error 9004)") && page.contains("role=\"alert\""));
        assert!(page.contains("aria-invalid=\"true\""), "{page}");

        let busy = refused_sign_in(&TokenRefusal::Busy);
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.headers().contains_key(hyper::header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn problem_pages_carry_the_code_reference_and_way_back() {
        let r = Rejection::new(ErrorCode::FormTokenInvalid, "reload <it>");
        let resp = problem(&r, "T-3", "/partner/status?status=error");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let page = text(resp).await;
        assert!(page.contains("reload &lt;it&gt; (error 9031)"), "{page}");
        assert!(page.contains("Reference: <code>T-3</code>"), "{page}");
        assert!(
            page.contains("href=\"/partner/status?status=error\""),
            "{page}"
        );
    }
}
