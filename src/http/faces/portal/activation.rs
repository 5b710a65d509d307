//! Activation portal pages (portal listener, no client certificates):
//! server-rendered, accessible HTML that works without JavaScript.
//!
//! - `GET /activate?token=…`: the activation page: enter an email, then the
//!   code sent to it.
//! - `POST /activate/email` (`token`, `email`): sends a code to the email.
//! - `POST /activate/verify` (`token`, `code`): checks it; the subscriber is
//!   provisioned.
//! - `GET /activate/verify?token=…&code=…`: the emailed link; a button
//!   confirms (a GET never changes anything, so mail scanners that open
//!   links do not use them up).
//! - `GET /consent?token=…`, `POST /consent` (`token`): consent to move an
//!   email that belongs to another account.
//!
//! Every refusal shows the page again with the reason and its error code;
//! bad input changes nothing (a wrong code counts as an attempt).

use std::sync::Arc;

use hyper::{Response, StatusCode};

use crate::activation::{ActivationClaim, ActivationLinks, CODE_DIGITS};
use crate::app::App;
use crate::domain::activation::ActivationView;
use crate::domain::activation::{self as rules, ActivationPurpose};
use crate::domain::email::normalize_email;
use crate::domain::lifecycle::SubscriberStatus;
use crate::domain::{ErrorCode, Refusal};
use crate::html::escape as esc;
use crate::http::error::html as render;
use crate::http::portal::{html, page, Fields};
use crate::http::ResponseBody;
use crate::links::LinkError;
use crate::provision::now_millis;
use crate::provision::{ActivationAction, ActivationStep};

/// The pages of the activation flows (one route each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationPage {
    Show,
    SubmitEmail,
    ConfirmLink,
    Verify,
    ConsentPage,
    Consent,
}

impl ActivationPage {
    pub fn label(self) -> &'static str {
        match self {
            ActivationPage::Show => "portal:/activate",
            ActivationPage::SubmitEmail => "portal:POST /activate/email",
            ActivationPage::ConfirmLink => "portal:/activate/verify",
            ActivationPage::Verify => "portal:POST /activate/verify",
            ActivationPage::ConsentPage => "portal:/consent",
            ActivationPage::Consent => "portal:POST /consent",
        }
    }
}

pub async fn serve(
    app: &App,
    which: ActivationPage,
    query: Option<&str>,
    body: &[u8],
    tracking_id: &str,
) -> Response<ResponseBody> {
    let fields = match which {
        ActivationPage::Show | ActivationPage::ConfirmLink | ActivationPage::ConsentPage => {
            Fields::parse(query.unwrap_or("").as_bytes())
        }
        _ => Fields::parse(body),
    };
    let token = fields.get("token").trim().to_string();
    let ctx = match Context::load(app, &token, tracking_id).await {
        Ok(ctx) => ctx,
        Err(resp) => return *resp,
    };
    match which {
        ActivationPage::Show | ActivationPage::ConsentPage => ctx.show(None),
        ActivationPage::ConfirmLink => ctx.confirm_link(fields.get("code")),
        ActivationPage::SubmitEmail => ctx.submit_email(app, fields.get("email")).await,
        ActivationPage::Verify => ctx.verify(app, fields.get("code")).await,
        ActivationPage::Consent => ctx.consent(app).await,
    }
}

/// A verified link with the state it points at.
struct Context {
    links: Arc<ActivationLinks>,
    token: String,
    claim: ActivationClaim,
    view: ActivationView,
    tracking_id: String,
    /// The address the user typed, shown again when it is refused.
    typed_email: Option<String>,
}

impl Context {
    /// Checks the token and that its activation still waits for the user;
    /// `Err` is the page to show instead.
    async fn load(
        app: &App,
        token: &str,
        tracking_id: &str,
    ) -> Result<Context, Box<Response<ResponseBody>>> {
        let fail = |r: Refusal| Err(Box::new(problem(&r, tracking_id)));
        let Some(links) = app.provisioning.activations() else {
            return fail(Refusal::new(
                ErrorCode::ActivationLinkInvalid,
                "activation is not enabled on this server",
            ));
        };
        if token.is_empty() {
            return fail(Refusal::new(
                ErrorCode::ActivationLinkInvalid,
                "the link has no token; open the link from the email exactly as sent",
            ));
        }
        let now = now_millis();
        let claim = match links.verify(token, now) {
            Ok(c) => c,
            Err(LinkError::Expired) => {
                return fail(Refusal::new(
                    ErrorCode::ActivationLinkInvalid,
                    "this link has expired; ask your administrator for a new one",
                ))
            }
            Err(LinkError::Invalid) => {
                return fail(Refusal::new(
                    ErrorCode::ActivationLinkInvalid,
                    "this link is not valid (it was altered or was not issued by this service)",
                ))
            }
        };
        let view = match app.queries.activation(&claim.subscriber_id).await {
            Ok(Some(v)) => v,
            Ok(None) => {
                return fail(Refusal::new(
                    ErrorCode::ActivationLinkInvalid,
                    "this link does not belong to a pending activation",
                ))
            }
            Err(e) => return Err(Box::new(unavailable(&e, tracking_id))),
        };
        if let Err(r) = rules::check_link(
            &view.activation,
            claim.purpose,
            &claim.nonce,
            view.subscriber.status,
            now,
        ) {
            return fail(r);
        }
        Ok(Context {
            links: links.clone(),
            token: token.to_string(),
            claim,
            view,
            tracking_id: tracking_id.to_string(),
            typed_email: None,
        })
    }

    fn name(&self) -> String {
        let s = &self.view.subscriber;
        format!("{} {}", s.first_name, s.last_name)
            .trim()
            .to_string()
    }

    fn step(&self, action: ActivationAction) -> ActivationStep {
        ActivationStep {
            links: self.links.clone(),
            claim: self.claim.clone(),
            action,
            tracking_id: self.tracking_id.clone(),
            now: now_millis(),
        }
    }

    /// The page for the current state, with an error above the form (and
    /// the error's status).
    fn show(&self, error: Option<&Refusal>) -> Response<ResponseBody> {
        match self.claim.purpose {
            ActivationPurpose::ConsentMigration => return self.consent_page(error),
            ActivationPurpose::EmailChange => return self.change_page(error),
            ActivationPurpose::EmailInput | ActivationPurpose::SelfActivation => {}
        }
        let s = &self.view.subscriber;
        let a = &self.view.activation;
        let alert = error.map(render::form_alert).unwrap_or_default();
        let who = format!(
            "<p>Hello <strong>{}</strong>. You are activating Webex for the BroadWorks user \
<strong>{}</strong>.</p>",
            esc(&self.name()),
            esc(s.user_id.as_ref().map_or("", |u| u.as_str()))
        );
        let code_sent = s.status == SubscriberStatus::PendingEmailValidation;
        let sent_to = a.pending_email.as_deref().unwrap_or("");
        let prefill = self
            .typed_email
            .as_deref()
            .or(a.pending_email.as_deref())
            .or(s.email.as_deref())
            .unwrap_or("");
        let code_form = if code_sent {
            format!(
                "<h2>Step 2: enter your code</h2>\
<p role=\"status\">We sent a {CODE_DIGITS}-digit code to <strong>{email}</strong>.</p>\
<form method=\"post\" action=\"/activate/verify\">{hidden}\
<label for=\"code\">Verification code</label>\
<input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{{CODE_DIGITS}}}\" \
maxlength=\"{CODE_DIGITS}\" autocomplete=\"one-time-code\" required{invalid}>\
<button type=\"submit\">Verify and activate</button></form>",
                email = esc(sent_to),
                hidden = self.hidden(),
                invalid = aria_invalid(error, &[ErrorCode::VerificationCodeInvalid]),
            )
        } else {
            String::new()
        };
        let email_heading = if code_sent {
            "<h2>Use another address or get a new code</h2>"
        } else {
            "<h2>Step 1: your email address</h2>\
<p>Enter the email address you want to use with Webex. We send a code to it to confirm it is yours.</p>"
        };
        let email_form = format!(
            "{email_heading}<form method=\"post\" action=\"/activate/email\">{hidden}\
<label for=\"email\">Email address</label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" maxlength=\"254\" \
required value=\"{prefill}\"{invalid}>\
<button type=\"submit\">{label}</button></form>",
            hidden = self.hidden(),
            prefill = esc(prefill),
            invalid = aria_invalid(error, &[ErrorCode::InvalidEmail]),
            label = if code_sent {
                "Send a new code"
            } else {
                "Send code"
            },
        );
        answer(
            error,
            page(
                "Activate your account",
                &format!("<h1>Activate your account</h1>{alert}{who}{code_form}{email_form}"),
            ),
        )
    }

    /// An active account's new address, sent by the service provider,
    /// waits for the code mailed to it.
    fn change_page(&self, error: Option<&Refusal>) -> Response<ResponseBody> {
        let body = format!(
            "<h1>Confirm your new email address</h1>{alert}<p>Hello <strong>{name}</strong>. \
Your service provider changed your email address to <strong>{email}</strong>. We sent a \
{CODE_DIGITS}-digit code to it; enter it to confirm. Until then your account keeps its \
current address.</p><form method=\"post\" action=\"/activate/verify\">{hidden}\
<label for=\"code\">Verification code</label>\
<input id=\"code\" name=\"code\" inputmode=\"numeric\" pattern=\"[0-9]{{{CODE_DIGITS}}}\" \
maxlength=\"{CODE_DIGITS}\" autocomplete=\"one-time-code\" required{invalid}>\
<button type=\"submit\">Confirm</button></form>",
            alert = error.map(render::form_alert).unwrap_or_default(),
            name = esc(&self.name()),
            email = esc(self.view.activation.pending_email.as_deref().unwrap_or("")),
            hidden = self.hidden(),
            invalid = aria_invalid(error, &[ErrorCode::VerificationCodeInvalid]),
        );
        answer(error, page("Confirm your new email address", &body))
    }

    /// The address the flow is about: a change's new one, else the
    /// subscriber's.
    fn address(&self) -> &str {
        let v = &self.view;
        v.activation
            .pending_email
            .as_deref()
            .filter(|_| v.activation.changes_email())
            .or(v.subscriber.email.as_deref())
            .unwrap_or("")
    }

    fn consent_page(&self, error: Option<&Refusal>) -> Response<ResponseBody> {
        let body = format!(
            "<h1>Move your account</h1>{alert}<p>Hello <strong>{name}</strong>. Your service \
provider is moving you to its Webex service.</p><p>The address <strong>{email}</strong> already \
belongs to an existing account. If you continue, that account is removed and your new account \
uses the same address.</p><form method=\"post\" action=\"/consent\">{hidden}\
<button type=\"submit\">Activate account</button></form>\
<p>If you do not want this, close this page: nothing changes without your consent.</p>",
            alert = error.map(render::form_alert).unwrap_or_default(),
            name = esc(&self.name()),
            email = esc(self.address()),
            hidden = self.hidden(),
        );
        answer(error, page("Move your account", &body))
    }

    fn hidden(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"token\" value=\"{}\">",
            esc(&self.token)
        )
    }

    /// The emailed link: shows the code in a form to confirm.
    fn confirm_link(&self, code: &str) -> Response<ResponseBody> {
        if !is_code(code) {
            return self.refused(&bad_code_format());
        }
        let email = self.view.activation.pending_email.as_deref().unwrap_or("");
        let body = format!(
            "<h1>Confirm your email address</h1><p>Confirm <strong>{email}</strong> to \
activate your account.</p><form method=\"post\" action=\"/activate/verify\">{hidden}\
<input type=\"hidden\" name=\"code\" value=\"{code}\">\
<button type=\"submit\">Confirm and activate</button></form>",
            email = esc(email),
            hidden = self.hidden(),
            code = esc(code),
        );
        html(StatusCode::OK, page("Confirm your email address", &body))
    }

    async fn submit_email(mut self, app: &App, raw: &str) -> Response<ResponseBody> {
        self.typed_email = Some(raw.trim().to_string());
        let email = match normalize_email(raw) {
            Ok(e) => e,
            Err(e) => {
                return self.refused(&Refusal::new(
                    ErrorCode::InvalidEmail,
                    format!("'{}' is not a valid email address: {e}", raw.trim()),
                ))
            }
        };
        let action = ActivationAction::SubmitEmail { email };
        self.run(app, action).await
    }

    async fn verify(self, app: &App, code: &str) -> Response<ResponseBody> {
        let code = code.trim();
        if !is_code(code) {
            return self.refused(&bad_code_format());
        }
        let action = ActivationAction::VerifyCode {
            code: code.to_string(),
        };
        self.run(app, action).await
    }

    async fn consent(self, app: &App) -> Response<ResponseBody> {
        self.run(app, ActivationAction::Consent).await
    }

    async fn run(mut self, app: &App, action: ActivationAction) -> Response<ResponseBody> {
        let step = self.step(action);
        match app.provisioning.activation_step(step).await {
            Ok(Ok(view)) => {
                let done = view.activation.completed_at.is_some();
                let became_consent = view.activation.purpose == ActivationPurpose::ConsentMigration
                    && self.claim.purpose != ActivationPurpose::ConsentMigration;
                self.view = view;
                if done {
                    tracing::info!(subscriber_id = %self.view.subscriber.id, tracking_id = %self.tracking_id, "activation completed");
                    self.completed()
                } else if became_consent {
                    self.consent_sent()
                } else {
                    self.show(None)
                }
            }
            Ok(Err(rejection)) => {
                // A counted attempt or a lock changed the activation: show
                // the state as it is now.
                if let Ok(Some(view)) = app.queries.activation(&self.claim.subscriber_id).await {
                    self.view = view;
                }
                self.refused(&rejection)
            }
            Err(e) => unavailable(&e, &self.tracking_id),
        }
    }

    fn refused(&self, r: &Refusal) -> Response<ResponseBody> {
        self.show(Some(r))
    }

    /// The verified address belongs to another account: the move waits
    /// for the user's consent, asked at that address.
    fn consent_sent(&self) -> Response<ResponseBody> {
        let email = self.address();
        html(
            StatusCode::OK,
            page(
                "Confirm the move",
                &format!(
                    "<h1>Confirm the move</h1><p role=\"status\">The address <strong>{e}</strong> \
belongs to an existing account. We sent an email to <strong>{e}</strong>: open the link in it to \
move that account to your new service. Nothing changes until you do.</p>",
                    e = esc(email)
                ),
            ),
        )
    }

    fn completed(&self) -> Response<ResponseBody> {
        let email = self.view.subscriber.email.as_deref().unwrap_or("");
        if self.view.activation.changes_email() {
            return html(
                StatusCode::OK,
                page(
                    "Email address changed",
                    &format!(
                        "<h1>Email address changed</h1><p role=\"status\">Your account now uses \
<strong>{}</strong>.</p>",
                        esc(email)
                    ),
                ),
            );
        }
        html(
            StatusCode::OK,
            page(
                "Account activated",
                &format!(
                    "<h1>Account activated</h1><p role=\"status\">Thank you. Your Webex account \
for <strong>{}</strong> is being set up now; you can sign in with it in a few minutes.</p>",
                    esc(email)
                ),
            ),
        )
    }
}

fn is_code(code: &str) -> bool {
    code.len() == CODE_DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

fn bad_code_format() -> Refusal {
    Refusal::new(
        ErrorCode::VerificationCodeInvalid,
        format!("the code has {CODE_DIGITS} digits; copy it from the email"),
    )
}

/// A page of the flow: 200, or the refusal's status when it shows one.
fn answer(error: Option<&Refusal>, page_html: String) -> Response<ResponseBody> {
    match error {
        Some(r) => render::respond(r, page_html),
        None => html(StatusCode::OK, page_html),
    }
}

fn aria_invalid(error: Option<&Refusal>, codes: &[ErrorCode]) -> &'static str {
    match error {
        Some(r) if codes.contains(&r.code) => {
            " aria-invalid=\"true\" aria-describedby=\"form-error\""
        }
        _ => "",
    }
}

/// A page without a form: the link itself is the problem.
fn problem(r: &Refusal, tracking_id: &str) -> Response<ResponseBody> {
    let heading = match r.code {
        ErrorCode::WrongState => "Nothing to activate",
        _ => "Activation link not valid",
    };
    render::refusal_page(r, heading, &render::form_alert(r), tracking_id)
}

/// The store failed: the page says so (9021, 503); the log keeps the
/// error with the tracking id.
fn unavailable(e: &dyn std::fmt::Display, tracking_id: &str) -> Response<ResponseBody> {
    tracing::warn!(tracking_id, error = %e, "activation step failed in the store");
    let r = Refusal::new(
        ErrorCode::StorageUnavailable,
        "the service cannot record your step right now",
    );
    render::refusal_page(&r, "Try again later", &render::form_alert(&r), tracking_id)
}
