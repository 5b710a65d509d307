//! Signing in to the activation portal with BroadWorks credentials, checked
//! at the XSP of the template's cluster (`xsp::XspClient`):
//!
//! - `POST /activate/signin` (`userId`, `password`): a subscriber waiting
//!   for activation (untrusted email, consent) who has no link at hand is
//!   sent on to its activation page.
//! - `GET /self-activate/{provisioningId}`, `POST …` (same fields):
//!   self-activation, when the template allows it. The user's BroadWorks
//!   profile becomes a new subscriber (like an AddUser without an email),
//!   whose activation asks for an email and its code; on success the
//!   subscriber is `selfActivated`.
//!
//! Wrong credentials and unknown users get the same answer (401, 9004, the
//! same page) after about the same time: a refusal decided without asking
//! the XSP waits as long as XSP calls have lately taken. The log keeps the
//! real reason. Nothing is recorded for a refused sign-in.
//!
//! Guessing is limited (`http::lockout`): wrong credentials count per user
//! id and per client address; a locked key is answered 429 (9027) with
//! Retry-After before the XSP is asked anything.

use std::net::IpAddr;

use hyper::header::{HeaderValue, LOCATION};
use hyper::{Response, StatusCode};

use crate::app::App;
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{SubscriberRecord, SubscriberStatus};
use crate::domain::subscriber::NewSubscriber;
use crate::domain::{ErrorCode, Refusal};
use crate::html::escape as esc;
use crate::http::broadworks_credentials::{check, MAX_PASSWORD};
use crate::http::error::html as render;
use crate::http::lockout::Realm;
use crate::http::portal::{html, page};
use crate::http::ResponseBody;
use crate::http::State;
use crate::xsi::Profile;

/// The sign-in form (also on the portal home page).
pub fn form(action: &str, error: Option<&Refusal>, user_id: &str) -> String {
    let alert = error.map(render::alert).unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"{action}\">\
<label for=\"userId\">BroadWorks user id</label>\
<input id=\"userId\" name=\"userId\" autocomplete=\"username\" required maxlength=\"161\" value=\"{user}\">\
<label for=\"password\">BroadWorks password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"{MAX_PASSWORD}\">\
<button type=\"submit\">Sign in</button></form>",
        action = esc(action),
        user = esc(user_id),
    )
}

struct Credentials {
    user_id: String,
    password: String,
}

fn credentials(body: &[u8]) -> Credentials {
    let mut c = Credentials {
        user_id: String::new(),
        password: String::new(),
    };
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "userId" if c.user_id.is_empty() => c.user_id = v.trim().to_string(),
            "password" if c.password.is_empty() => c.password = v.into_owned(),
            _ => {}
        }
    }
    c
}

fn wrong_credentials() -> Refusal {
    Refusal::new(
        ErrorCode::BadCredentials,
        "the BroadWorks user id or password is wrong, or nothing waits for activation for this user",
    )
}

/// The sign-in form page; with a refusal, its alert above the form and
/// the refusal's status (and `Retry-After`).
fn signin_page(
    title: &str,
    intro: &str,
    action: &str,
    refusal: Option<&Refusal>,
    user_id: &str,
) -> Response<ResponseBody> {
    let shown = page(
        title,
        &format!(
            "<h1>{}</h1><p>{intro}</p>{}",
            esc(title),
            form(action, refusal, user_id)
        ),
    );
    match refusal {
        Some(r) => render::respond(r, shown),
        None => html(StatusCode::OK, shown),
    }
}

fn see_other(location: &str) -> Response<ResponseBody> {
    let mut resp = html(
        StatusCode::SEE_OTHER,
        page(
            "Continue",
            &format!(
                "<h1>Continue</h1><p><a href=\"{0}\">Continue to your activation</a></p>",
                esc(location)
            ),
        ),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// Where a signed-in user goes next.
enum Next {
    /// The page of its activation link (relative).
    Page(String),
    /// It was in `error` and is being provisioned again (trusted email).
    Retried,
}

/// Whether a signed-in user has something to do on the portal: it waits
/// for activation, or it failed and may retry.
fn may_continue(s: &SubscriberRecord) -> bool {
    s.status.is_pending_user() || s.status == SubscriberStatus::Error
}

/// The page of the subscriber's current activation link (a new link when
/// the old one expired); a user in `error` retries its activation first.
async fn to_activation(app: &App, s: &SubscriberRecord) -> Result<Next, Refusal> {
    let Some(links) = app.provisioning.activations().cloned() else {
        return Err(wrong_credentials());
    };
    let unavailable = |e: crate::provision::DataError| {
        tracing::warn!(error = %e, "sign-in: store unavailable");
        Refusal::new(ErrorCode::StorageUnavailable, "try again in a few minutes")
    };
    let now = crate::provision::now_millis();
    let activation = if s.status == SubscriberStatus::Error {
        // The user is here: no email with the link it is about to see.
        let retry = app
            .provisioning
            .retry_activation(links.clone(), &s.id, None, false, now)
            .await
            .map_err(unavailable)??;
        tracing::info!(subscriber_id = %s.id, status = %retry.subscriber.status.as_str(), "a failed user retried its activation on the portal");
        match retry.activation {
            Some(a) => a,
            None => return Ok(Next::Retried),
        }
    } else {
        let view = app
            .queries
            .activation(&s.id)
            .await
            .map_err(unavailable)?
            .ok_or_else(wrong_credentials)?;
        if now >= view.activation.link_expires_at {
            app.provisioning
                .retry_activation(links.clone(), &s.id, None, true, now)
                .await
                .map_err(unavailable)??
                .activation
                .ok_or_else(wrong_credentials)?
        } else {
            view.activation
        }
    };
    // Relative: the portal may sit behind a proxy with another base URL.
    let url = links.url(&activation);
    Ok(Next::Page(
        match url.find("/activate?").or_else(|| url.find("/consent?")) {
            Some(i) => url[i..].to_string(),
            None => url,
        },
    ))
}

/// The page for what comes next.
fn next_page(next: Next) -> Response<ResponseBody> {
    match next {
        Next::Page(location) => see_other(&location),
        Next::Retried => html(
            StatusCode::OK,
            page(
                "Activation retried",
                "<h1>Activation retried</h1><p role=\"status\">Your Webex account is being \
set up again now; you can sign in with it in a few minutes.</p>",
            ),
        ),
    }
}

/// `POST /activate/signin`. An unknown user id, one with nothing waiting,
/// and one whose template has no XSP all get the wrong-password answer.
pub async fn signin(app: &State, peer: IpAddr, body: &[u8]) -> Response<ResponseBody> {
    let c = credentials(body);
    let refuse = |r: Refusal| {
        signin_page(
            "Sign in",
            "Sign in with your BroadWorks user id and password to continue your activation.",
            "/activate/signin",
            Some(&r),
            &c.user_id,
        )
    };
    let subscriber = match UserId::parse(&c.user_id) {
        Ok(user_id) => match app.queries.subscriber_by_user_id(user_id.as_str()).await {
            Ok(Some(s)) if may_continue(&s) => Some(s),
            Ok(_) => None,
            Err(_) => {
                return refuse(Refusal::new(
                    ErrorCode::StorageUnavailable,
                    "try again in a few minutes",
                ))
            }
        },
        Err(_) => None,
    };
    let template = match &subscriber {
        Some(s) => match app.provisioning.template(&s.provisioning_id).await {
            Ok(t) => t,
            Err(_) => {
                return refuse(Refusal::new(
                    ErrorCode::StorageUnavailable,
                    "try again in a few minutes",
                ))
            }
        },
        None => None,
    };
    if let Err(mut r) = check(
        app,
        peer,
        Realm::PortalSignIn,
        template.as_deref(),
        &c.user_id,
        &c.password,
        wrong_credentials,
    )
    .await
    {
        if r.code == ErrorCode::WrongState {
            // Telling "not set up for your provider" would say the user
            // id waits for activation here.
            tracing::warn!(user_id = %c.user_id.chars().take(200).collect::<String>(), "BroadWorks sign-in: the user's template has no XSP");
            r = wrong_credentials();
        }
        return refuse(r);
    }
    let Some(subscriber) = subscriber else {
        return refuse(wrong_credentials());
    };
    match to_activation(app, &subscriber).await {
        Ok(next) => next_page(next),
        Err(r) => refuse(r),
    }
}

/// `GET` / `POST /self-activate/{provisioningId}`.
pub async fn self_activate(
    app: &State,
    peer: IpAddr,
    provisioning_id: &str,
    body: Option<&[u8]>,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let action = format!("/self-activate/{provisioning_id}");
    // A disabled template's link is answered like an unknown one's.
    let template = match app.provisioning.active_template(provisioning_id).await {
        Ok(Some(t)) if t.settings.allow_self_activation && !t.settings.wholesale => t,
        _ => {
            let r = Refusal::new(
                ErrorCode::NotFound,
                "this self-activation link is not valid; ask your service provider for the right one",
            );
            return render::refusal_page(&r, "Self-activation", &render::alert(&r), tracking_id);
        }
    };
    let intro = "Activate Webex yourself: sign in with your BroadWorks user id and password, \
then enter your email address and confirm it with the code we send you.";
    let Some(body) = body else {
        return signin_page("Self-activation", intro, &action, None, "");
    };
    let c = credentials(body);
    let refuse = |r: &Refusal| signin_page("Self-activation", intro, &action, Some(r), &c.user_id);
    let profile = match check(
        app,
        peer,
        Realm::PortalSignIn,
        Some(&template),
        &c.user_id,
        &c.password,
        wrong_credentials,
    )
    .await
    {
        Ok(p) => p,
        Err(r) => return refuse(&r),
    };
    let Ok(user_id) = UserId::parse(&c.user_id) else {
        return refuse(&wrong_credentials());
    };
    match app.queries.subscriber_by_user_id(user_id.as_str()).await {
        Ok(Some(s)) if may_continue(&s) => {
            return match to_activation(app, &s).await {
                Ok(next) => next_page(next),
                Err(r) => refuse(&r),
            }
        }
        Ok(Some(_)) => {
            return refuse(&Refusal::new(
                ErrorCode::WrongState,
                "your account is already active; sign in to Webex",
            ))
        }
        Ok(None) => {}
        Err(_) => {
            return refuse(&Refusal::new(
                ErrorCode::StorageUnavailable,
                "try again in a few minutes",
            ))
        }
    }
    let key = user_id.as_str().to_string();
    let subscriber = match new_subscriber(user_id, &profile) {
        Ok(s) => s,
        Err(r) => return refuse(&r),
    };
    let outcome = match app
        .provisioning
        .self_activate(&template, subscriber, tracking_id)
        .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(error = %e, tracking_id, "self-activation not recorded");
            return refuse(&Refusal::new(
                ErrorCode::StorageUnavailable,
                "try again in a few minutes",
            ));
        }
    };
    if let Some(line) = outcome.results.first() {
        if let Some(code) = line.error_code.and_then(ErrorCode::from_code) {
            return refuse(&Refusal::new(
                code,
                line.error_message.clone().unwrap_or_default(),
            ));
        }
    }
    tracing::info!(user_id = %key, provisioning_id, tracking_id, "self-activation started");
    match app.queries.subscriber_by_user_id(&key).await {
        Ok(Some(s)) => match to_activation(app, &s).await {
            Ok(next) => next_page(next),
            Err(r) => refuse(&r),
        },
        _ => refuse(&Refusal::new(
            ErrorCode::StorageUnavailable,
            "try again in a few minutes",
        )),
    }
}

/// The AddUser a self-activation stands for, from the BroadWorks profile.
fn new_subscriber(user_id: UserId, p: &Profile) -> Result<NewSubscriber, Refusal> {
    if p.service_provider_id.is_empty() || p.group_id.is_empty() {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            "your BroadWorks profile names no service provider or group; ask your administrator",
        ));
    }
    let phone_number = p
        .e164_number()
        .map(crate::domain::phone::DirectoryNumber::from);
    let extension = p.extension.clone().filter(|e| !e.is_empty());
    if phone_number.is_none() && extension.is_none() {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            "your BroadWorks profile has neither a phone number nor an extension; ask your administrator",
        ));
    }
    Ok(NewSubscriber {
        user_id,
        service_provider_id: p.service_provider_id.clone(),
        group_id: p.group_id.clone(),
        first_name: p.first_name.clone(),
        last_name: p.last_name.clone(),
        email: None,
        phone_number,
        extension,
        mobile_phone_number: p
            .mobile
            .as_deref()
            .and_then(|m| crate::domain::phone::DirectoryNumber::parse(m).ok()),
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    })
}
