//! The XSI-style face on the mTLS listener: a subset of Xsi-Actions over
//! bwgate's own subscribers (profile, services and the Integrated IM&P
//! service, the enterprise directory, login tokens, versions) and the
//! auth service (long-lived bearer JWTs, their JWKS). XML in the XSI
//! namespace by default; BadgerFish JSON with `?format=json` or
//! `Accept: application/json`. Every error is an `ErrorInfo` (or its
//! JSON) with the table's code and status; a 401 carries a Basic
//! challenge unless `X-BroadWorks-No-AuthChallenge: true`.

pub mod auth;
mod events;
pub mod routes;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use crate::domain::directory::{self, DirectoryEntry, DirectoryQuery};
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{SubscriberRecord, SubscriberStatus};
use crate::domain::subscriber::{Operation, SubscriberChanges, SubscriberRef};
use crate::domain::subscriber_query::SubscriberQuery;
use crate::domain::{ErrorCode, Refusal};
use crate::http::error::status_of;
use crate::http::{ResponseBody, State};
use crate::tokens::TokenIssuer;
use crate::xsi::{actions, Element, XSI_NAMESPACE};

use auth::{authenticate, Caller, Scheme};
pub use routes::{EventsRoute, XsiRoute};

/// The XSI face's own state: the token issuer and the Basic cache.
pub struct XsiState {
    /// `None`: the token key could not be loaded (tokens refused).
    pub tokens: Option<Arc<TokenIssuer>>,
    pub basic: auth::BasicCache,
    /// Xsi-Events (`None`: not running here; its requests get 503).
    pub events: Option<Arc<crate::events::EventHub>>,
}

impl XsiState {
    pub fn new(tokens: Option<Arc<TokenIssuer>>, basic_cache: Duration) -> XsiState {
        XsiState {
            tokens,
            basic: auth::BasicCache::new(basic_cache),
            events: None,
        }
    }
}

/// Most subscribers one enterprise directory reads (the page is cut from
/// them in memory).
const DIRECTORY_READ_CAP: usize = 20_000;

/// Which body format the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Xml,
    Json,
}

fn format_of(parts: &Parts) -> Format {
    let query_json = parts.uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "format")
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("json"))
    });
    let accept_json = parts
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("application/json"));
    if query_json || accept_json {
        Format::Json
    } else {
        Format::Xml
    }
}

fn document(status: StatusCode, root: &Element, format: Format) -> Response<ResponseBody> {
    let (content_type, body) = match format {
        Format::Xml => (
            "application/xml; charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
                root.to_xml()
            ),
        ),
        Format::Json => (
            "application/json",
            crate::xsi::badgerfish::to_badgerfish(root).to_string(),
        ),
    };
    let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

fn text_element(name: &str, text: impl Into<String>) -> Element {
    let mut e = Element::new(name);
    e.namespace = Some(XSI_NAMESPACE.to_string());
    e.text = text.into();
    e
}

/// `ErrorInfo` (summary, summaryEnglish, errorCode, trackingId).
fn error_info(r: &Refusal, tracking_id: &str) -> Element {
    let summary = r.summary();
    let mut root = Element::new("ErrorInfo");
    root.namespace = Some(XSI_NAMESPACE.to_string());
    root.children = vec![
        text_element("summary", summary.clone()),
        text_element("summaryEnglish", summary),
        text_element("errorCode", r.code.code().to_string()),
        text_element("trackingId", tracking_id),
    ];
    root
}

fn refused(
    r: &Refusal,
    format: Format,
    headers: &HeaderMap,
    tracking_id: &str,
) -> Response<ResponseBody> {
    let mut resp = document(status_of(r), &error_info(r, tracking_id), format);
    if let Some(secs) = r.retry_after {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    let no_challenge = headers
        .get("x-broadworks-no-authchallenge")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if resp.status() == StatusCode::UNAUTHORIZED && !no_challenge {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"BroadWorks\""),
        );
    }
    resp
}

/// Answers one XSI request.
pub async fn serve(
    state: &State,
    peer: IpAddr,
    route: &XsiRoute,
    parts: &Parts,
    body: &[u8],
    tracking_id: &str,
) -> Response<ResponseBody> {
    let format = format_of(parts);
    match handle(state, peer, route, parts, body, format, tracking_id).await {
        Ok(resp) => resp,
        Err(r) => {
            let mut resp = refused(&r, format, &parts.headers, tracking_id);
            if let XsiRoute::MethodNotAllowed { allow } = route {
                resp.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            resp
        }
    }
}

async fn handle(
    state: &State,
    peer: IpAddr,
    route: &XsiRoute,
    parts: &Parts,
    body: &[u8],
    format: Format,
    tracking_id: &str,
) -> Result<Response<ResponseBody>, Refusal> {
    let user = route.user();
    let caller = |schemes: &'static [Scheme]| async move {
        authenticate(state, peer, &parts.headers, user, schemes).await
    };
    const ANY: &[Scheme] = &[Scheme::Basic, Scheme::Bearer, Scheme::Sso];
    match route {
        XsiRoute::Versions => Ok(document(StatusCode::OK, &actions::versions(), format)),
        XsiRoute::Jwks => {
            let tokens = tokens(state)?;
            let body = serde_json::to_string(&tokens.jwks())
                .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
            let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            Ok(resp)
        }
        XsiRoute::AuthToken { .. } => {
            // A long-lived token is given for a password only.
            let c = caller(&[Scheme::Basic]).await?;
            let tokens = tokens(state)?;
            let user_id = user_id_of(&c.subscriber)?;
            let token = tokens
                .issue_bearer(&user_id, crate::provision::now_millis() / 1000)
                .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
            tracing::info!(user_id, kid = tokens.key_id(), "XSI bearer token issued");
            let body = serde_json::json!({"token": {"bearer": token}}).to_string();
            let mut resp = Response::new(ResponseBody::new(Bytes::from(body)));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(resp)
        }
        XsiRoute::LoginToken { .. } => {
            let c = caller(&[Scheme::Basic, Scheme::Bearer]).await?;
            let tokens = tokens(state)?;
            let token = tokens
                .issue_login(
                    &user_id_of(&c.subscriber)?,
                    crate::provision::now_millis() / 1000,
                )
                .map_err(|e| Refusal::new(ErrorCode::Internal, e.to_string()))?;
            Ok(document(
                StatusCode::CREATED,
                &actions::login_token(&token),
                format,
            ))
        }
        XsiRoute::Profile { .. } => {
            let c = caller(ANY).await?;
            let view = profile_view(state, &c).await?;
            Ok(document(StatusCode::OK, &actions::profile(&view), format))
        }
        XsiRoute::Services { .. } => {
            let c = caller(ANY).await?;
            let user_id = user_id_of(&c.subscriber)?;
            Ok(document(
                StatusCode::OK,
                &actions::services(&user_id, assigned(&c.subscriber)),
                format,
            ))
        }
        XsiRoute::IntegratedImp { put: false, .. } => {
            let c = caller(ANY).await?;
            Ok(document(
                StatusCode::OK,
                &actions::integrated_imp(assigned(&c.subscriber)),
                format,
            ))
        }
        XsiRoute::IntegratedImp { put: true, .. } => {
            let c = caller(ANY).await?;
            let active = read_put_body(state, parts, body)?;
            set_integrated_imp(state, &c, active, tracking_id).await?;
            Ok(empty(StatusCode::OK))
        }
        XsiRoute::EnterpriseDirectory { .. } => {
            let c = caller(ANY).await?;
            let pairs: Vec<(String, String)> = parts
                .uri
                .query()
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let query = DirectoryQuery::from_pairs(&pairs, state.config.xsi.directory_max_results)?;
            let entries = enterprise(state, &c).await?;
            let page = directory::search(&entries, &query);
            Ok(document(
                StatusCode::OK,
                &actions::enterprise_directory(&page),
                format,
            ))
        }
        XsiRoute::Events(e) => events::handle(state, peer, e, parts, body, format).await,
        XsiRoute::NotFound => Err(Refusal::new(
            ErrorCode::NotFound,
            format!(
                "{} is not an XSI resource served here",
                truncate(parts.uri.path())
            ),
        )),
        XsiRoute::MethodNotAllowed { allow } => Err(Refusal::new(
            ErrorCode::MethodNotAllowed,
            format!("Allowed: {allow}."),
        )),
        XsiRoute::BadUserId => Err(Refusal::new(
            ErrorCode::InvalidParameterValue,
            "the user id in the path is not valid percent-encoded UTF-8",
        )),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

fn tokens(state: &State) -> Result<&TokenIssuer, Refusal> {
    state.xsi.tokens.as_deref().ok_or_else(|| {
        Refusal::new(
            ErrorCode::UnderMaintenance,
            "the token service is not available on this node",
        )
    })
}

fn user_id_of(s: &SubscriberRecord) -> Result<String, Refusal> {
    s.user_id
        .as_ref()
        .map(|u| u.as_str().to_string())
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "the subscriber was removed"))
}

/// The service is assigned while the subscriber is not removed.
fn assigned(s: &SubscriberRecord) -> bool {
    s.status != SubscriberStatus::Removed
}

async fn profile_view(state: &State, c: &Caller) -> Result<actions::ProfileView, Refusal> {
    let s = &c.subscriber;
    let org = match &s.org_id {
        Some(id) => state.queries.organization(id).await?,
        None => None,
    };
    Ok(actions::ProfileView {
        user_id: user_id_of(s)?,
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        group_id: s.group_id.clone(),
        service_provider_id: s.service_provider_id.clone(),
        is_enterprise: c.template.settings.enterprise_mode,
        number: s.phone_number.as_ref().map(|n| n.as_str().to_string()),
        extension: s.extension.clone(),
        mobile: s
            .mobile_phone_number
            .as_ref()
            .map(|n| n.as_str().to_string()),
        email: s.email.clone(),
        status: s.status.as_str().to_string(),
        package: s.package.as_str().to_string(),
        organization_id: org.as_ref().map(|(o, _)| o.id.clone()),
        organization_name: org.map(|(o, _)| o.name),
        errors: s
            .errors
            .iter()
            .map(|e| (e.error_code, e.description.clone()))
            .collect(),
    })
}

/// The caller's enterprise (same partner, same enterprise key), live
/// subscribers only, as directory entries.
async fn enterprise(state: &State, c: &Caller) -> Result<Vec<DirectoryEntry>, Refusal> {
    let Some(key) = c.subscriber.enterprise_key.clone() else {
        return Ok(Vec::new());
    };
    let query = SubscriberQuery {
        partner_id: c.template.partner_id.clone(),
        enterprise_key: Some(key),
        limit: DIRECTORY_READ_CAP,
        ..SubscriberQuery::default()
    };
    let members = state.queries.partner_subscribers(&query).await?;
    Ok(members
        .into_iter()
        .filter_map(|s| {
            Some(DirectoryEntry {
                user_id: s.user_id?.as_str().to_string(),
                first_name: s.first_name,
                last_name: s.last_name,
                group_id: s.group_id,
                number: s.phone_number.map(|n| n.as_str().to_string()),
                extension: s.extension,
                mobile: s.mobile_phone_number.map(|n| n.as_str().to_string()),
                email: s.email,
                imp_id: None,
            })
        })
        .collect())
}

/// The PUT body: `<IntegratedIMP><active>…</active></IntegratedIMP>`, or
/// its BadgerFish JSON.
fn read_put_body(state: &State, parts: &Parts, body: &[u8]) -> Result<bool, Refusal> {
    if body.is_empty() {
        return Err(Refusal::new(
            ErrorCode::MissingParameter,
            "the body is missing: send <IntegratedIMP><active>true|false</active></IntegratedIMP>",
        ));
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let json = content_type.is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    if json {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::new(ErrorCode::InvalidParameterValue, e.to_string()))?;
        let imp = &v["IntegratedIMP"];
        let active = imp["active"]["$"]
            .as_str()
            .or_else(|| imp["isActive"]["$"].as_str())
            .ok_or_else(|| Refusal::new(ErrorCode::MissingParameter, "IntegratedIMP.active"))?;
        return match active {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(Refusal::new(
                ErrorCode::InvalidParameterValue,
                format!("active: '{other}' is not true or false"),
            )),
        };
    }
    actions::read_integrated_imp(&xml_body(state, content_type, body)?)
}

/// A request body as an XSI document, within the configured limits.
fn xml_body(
    state: &State,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<crate::xsi::Element, Refusal> {
    let limits = crate::xsi::XsiLimits::from(&state.config.limits);
    crate::xsi::parse(body, content_type, &limits).map_err(|e| e.to_refusal())
}

/// Assigning or removing the service, through the flow-through's use
/// case: removing it is a `DeleteUser` (partial deletion); assigning it
/// to a subscriber whose provisioning failed retries it (a `ModifyUser`
/// with nothing changed); otherwise there is nothing to do.
async fn set_integrated_imp(
    state: &State,
    c: &Caller,
    active: bool,
    tracking_id: &str,
) -> Result<(), Refusal> {
    if c.template.is_disabled() {
        return Err(Refusal::bare(ErrorCode::TemplateDisabled));
    }
    let s = &c.subscriber;
    let user_id: UserId = s
        .user_id
        .clone()
        .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "the subscriber was removed"))?;
    let operation = match (active, s.status) {
        (false, _) => Operation::DeleteUser(SubscriberRef {
            user_id,
            service_provider_id: s.service_provider_id.clone(),
            group_id: s.group_id.clone(),
        }),
        (true, SubscriberStatus::Error) => Operation::ModifyUser(SubscriberChanges::only_ids(
            user_id,
            s.service_provider_id.clone().unwrap_or_default(),
            s.group_id.clone().unwrap_or_default(),
        )),
        (true, _) => return Ok(()),
    };
    let outcome = state
        .provisioning
        .one_operation(&c.template, operation, tracking_id)
        .await?;
    match outcome.results.first() {
        Some(line) => match line.error_code.and_then(ErrorCode::from_code) {
            Some(code) => Err(Refusal::new(
                code,
                line.error_message.clone().unwrap_or_default(),
            )),
            None => Ok(()),
        },
        None => Err(Refusal::new(
            ErrorCode::Internal,
            "no answer for the operation",
        )),
    }
}
