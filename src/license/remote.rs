//! The gateway's side of a remote license core (`[license] mode =
//! "remote"`): each run of an enterprise's commands is POSTed over mTLS to
//! the core's `/license-core/v1/commands` (`wire.rs`). A failed try
//! (connect, TLS, timeout, a 5xx) is tried again after a short pause,
//! `attempts` times in all; a 4xx or an answer that does not parse is not
//! tried again at once. Either way the run is then `Unavailable` and the
//! outbox's backoff takes over. The core is
//! idempotent by command key, so a run whose answer was lost is simply
//! sent again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::client::{ClientConnection, HttpsClient};
use crate::commands::CommandEnvelope;
use crate::config::RemoteCoreConfig;
use crate::domain::{ErrorCode, Refusal};

use super::wire::{
    CoreAnswer, CoreRequest, Outcome, COMMANDS_PATH, ORGANIZATIONS_PATH, PARTNER_HEADER,
};
use super::{Granted, LicenseCore, LicenseError};

/// First pause between tries; doubled each time.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RemoteCoreError {
    #[error("license.remote.url: {0}")]
    Url(String),
    #[error("license.remote TLS: {0}")]
    Tls(String),
}

pub struct RemoteLicenseCore {
    client: HttpsClient,
    authority: String,
    timeout: Duration,
    attempts: u32,
    /// One kept-alive connection, opened again after a failure. Runs of
    /// different enterprises take turns on it.
    conn: tokio::sync::Mutex<Option<ClientConnection>>,
    /// Kept-alive connections for relayed admin requests: each request
    /// takes one (or opens one), so a long export does not hold up the
    /// others; at most [`RELAY_IDLE`] wait for the next.
    relay_idle: tokio::sync::Mutex<Vec<ClientConnection>>,
}

/// Idle connections kept for relayed admin requests.
const RELAY_IDLE: usize = 4;

impl RemoteLicenseCore {
    /// `certs_dir`: where the dev CA and client certificate are when the
    /// configuration names none.
    pub fn from_config(
        config: &RemoteCoreConfig,
        certs_dir: &Path,
    ) -> Result<Arc<RemoteLicenseCore>, RemoteCoreError> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| RemoteCoreError::Url("not set".into()))?;
        let (addr, host, authority) =
            crate::client::resolve_https(url).map_err(|e| RemoteCoreError::Url(e.to_string()))?;
        let ca = config
            .ca_file
            .clone()
            .unwrap_or_else(|| certs_dir.join("ca.crt"));
        let cert = config
            .client_cert
            .clone()
            .unwrap_or_else(|| certs_dir.join("client.crt"));
        let key = config
            .client_key
            .clone()
            .unwrap_or_else(|| certs_dir.join("client.key"));
        let tls = crate::tls::client_config(&ca, Some(&cert), Some(&key), true)
            .map_err(|e| RemoteCoreError::Tls(e.to_string()))?;
        let client =
            HttpsClient::new(addr, &host, tls).map_err(|e| RemoteCoreError::Url(e.to_string()))?;
        Ok(Arc::new(RemoteLicenseCore {
            client,
            authority,
            timeout: Duration::from_millis(config.timeout_ms),
            attempts: config.attempts.max(1),
            conn: tokio::sync::Mutex::new(None),
            relay_idle: tokio::sync::Mutex::new(Vec::new()),
        }))
    }

    /// One try: the run's answer, or why there is none (and whether
    /// trying again at once may help).
    async fn post(&self, body: Bytes) -> Result<CoreAnswer, Failure> {
        self.exchange(crate::client::post_json(
            &self.authority,
            COMMANDS_PATH,
            body,
        ))
        .await
    }

    /// Sends an operator's or partner admin's request on an
    /// organization's licenses to the core (`path_and_query` under its
    /// `/license-core/v1/organizations/`) and hands back its answer as it
    /// is: the core decides and refuses. One try: an admin is waiting,
    /// and a write must not be sent twice behind its back.
    pub async fn relay(&self, request: Relay) -> Result<Relayed, LicenseError> {
        let mut builder = hyper::Request::builder()
            .method(request.method.as_str())
            .uri(format!("{ORGANIZATIONS_PATH}{}", request.path_and_query))
            .header(hyper::header::HOST, self.authority.as_str());
        if let Some(ct) = &request.content_type {
            builder = builder.header(hyper::header::CONTENT_TYPE, ct.as_str());
        }
        if let Some(partner) = &request.partner {
            builder = builder.header(PARTNER_HEADER, partner.as_str());
        }
        let unavailable = |why: &str| {
            // The detail (the core's address, its answer) is the
            // operator's: logged, not shown to the partner.
            tracing::warn!(error = %why, "license core relay failed");
            LicenseError::Unavailable("the license core does not answer; retry later".into())
        };
        let http = builder
            .body(http_body_util::Full::new(request.body))
            .map_err(|e| unavailable(&e.to_string()))?;
        let answer = self
            .send_relay(http)
            .await
            .map_err(|f| unavailable(&f.why))?;
        if answer.status.is_server_error() && answer.status.as_u16() != 503 {
            return Err(unavailable(&format!(
                "the core answered {}: {}",
                answer.status,
                answer.text().chars().take(300).collect::<String>()
            )));
        }
        let headers = RELAYED_HEADERS
            .iter()
            .filter_map(|name| Some((*name, answer.header(name)?.to_string())))
            .collect();
        Ok(Relayed {
            status: answer.status.as_u16(),
            headers,
            body: answer.body,
        })
    }

    /// One request on the kept-alive connection (opened when there is
    /// none), its JSON answer decoded.
    async fn exchange<T: serde::de::DeserializeOwned>(
        &self,
        request: hyper::Request<http_body_util::Full<Bytes>>,
    ) -> Result<T, Failure> {
        let answer = self.send(request).await?;
        if !answer.status.is_success() {
            *self.conn.lock().await = None;
            let why = format!(
                "the core answered {}: {}",
                answer.status,
                answer.text().chars().take(300).collect::<String>()
            );
            // A 4xx says the request itself is wrong for this core
            // (another wire version, a certificate it does not take): the
            // same request again at once gets the same answer.
            return Err(if answer.status.is_client_error() {
                Failure::lasting(why)
            } else {
                Failure::transient(why)
            });
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| Failure::lasting(format!("unreadable answer: {e}")))
    }

    /// One relayed request on a connection of its own: an idle one, or a
    /// new one. An idle one the core closed meanwhile fails before it
    /// answers; the request then goes once more on a new connection (a
    /// relayed write may be sent again, see `relay`).
    async fn send_relay(
        &self,
        request: hyper::Request<http_body_util::Full<Bytes>>,
    ) -> Result<crate::client::ClientResponse, Failure> {
        let idle = self.relay_idle.lock().await.pop();
        let (conn, answer) = match idle {
            None => self.send_on(None, request).await.map_err(|(f, _)| f)?,
            Some(kept) => match self.send_on(Some(kept), clone_request(&request)).await {
                Ok(done) => done,
                // Not after a timeout: the core may be applying it still.
                Err((_, Broke::Connection)) => {
                    self.send_on(None, request).await.map_err(|(f, _)| f)?
                }
                Err((f, _)) => return Err(f),
            },
        };
        let mut idle = self.relay_idle.lock().await;
        if idle.len() < RELAY_IDLE {
            idle.push(conn);
        }
        Ok(answer)
    }

    /// `request` on `conn` (a new connection when `None`), within the
    /// timeout; the connection comes back with the answer.
    async fn send_on(
        &self,
        conn: Option<ClientConnection>,
        request: hyper::Request<http_body_util::Full<Bytes>>,
    ) -> Result<(ClientConnection, crate::client::ClientResponse), (Failure, Broke)> {
        let exchange = async {
            let mut conn = match conn {
                Some(c) => c,
                None => self.client.connect().await.map_err(|e| e.to_string())?,
            };
            let answer = conn.send(request).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((conn, answer))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => Err((Failure::transient(e), Broke::Connection)),
            Err(_) => Err((
                Failure::transient(format!("no answer within {} ms", self.timeout.as_millis())),
                Broke::Timeout,
            )),
        }
    }

    /// One request on the kept-alive connection (opened when there is
    /// none), whatever its answer's status.
    async fn send(
        &self,
        request: hyper::Request<http_body_util::Full<Bytes>>,
    ) -> Result<crate::client::ClientResponse, Failure> {
        let mut conn = self.conn.lock().await;
        let exchange = async {
            if conn.is_none() {
                *conn = Some(self.client.connect().await.map_err(|e| e.to_string())?);
            }
            let Some(open) = conn.as_mut() else {
                return Err("no connection".to_string());
            };
            open.send(request).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                *conn = None;
                Err(Failure::transient(e))
            }
            Err(_) => {
                *conn = None;
                Err(Failure::transient(format!(
                    "no answer within {} ms",
                    self.timeout.as_millis()
                )))
            }
        }
    }
}

/// How a try on a connection ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broke {
    /// The connection failed (a closed idle one fails before it answers).
    Connection,
    /// No answer in time: the request may still be applied.
    Timeout,
}

/// A copy of a request with a whole body (sent again on a new connection).
fn clone_request(
    r: &hyper::Request<http_body_util::Full<Bytes>>,
) -> hyper::Request<http_body_util::Full<Bytes>> {
    let mut copy = hyper::Request::new(r.body().clone());
    *copy.method_mut() = r.method().clone();
    *copy.uri_mut() = r.uri().clone();
    *copy.headers_mut() = r.headers().clone();
    copy
}

/// An admin request for the core: method, path and query under
/// `/license-core/v1/organizations/`, body and its type.
#[derive(Debug, Clone)]
pub struct Relay {
    pub method: hyper::Method,
    pub path_and_query: String,
    pub content_type: Option<String>,
    /// The partner admin it is for (the core applies a partner's rules).
    pub partner: Option<String>,
    pub body: Bytes,
}

/// The headers of the core's answer a relay passes on (what the body is,
/// whether it may be kept, when to try again).
const RELAYED_HEADERS: [&str; 4] = [
    "content-type",
    "content-disposition",
    "cache-control",
    "retry-after",
];

/// The core's answer to a [`Relay`], as it came.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub status: u16,
    /// Those of [`RELAYED_HEADERS`] it had.
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// Why a try got no answer.
struct Failure {
    why: String,
    /// Trying again at once may help (connection, timeout, 5xx).
    transient: bool,
}

impl Failure {
    fn transient(why: String) -> Failure {
        Failure {
            why,
            transient: true,
        }
    }

    fn lasting(why: String) -> Failure {
        Failure {
            why,
            transient: false,
        }
    }
}

/// The answer as one result per command, in order; a result that does not
/// belong to its command ends the list there (the rest is tried again).
fn results(
    envelopes: &[CommandEnvelope],
    answer: CoreAnswer,
) -> Vec<Result<Granted, LicenseError>> {
    let mut out = Vec::with_capacity(answer.results.len());
    for (env, r) in envelopes.iter().zip(answer.results) {
        if r.idempotency_key != env.idempotency_key {
            out.push(Err(LicenseError::Unavailable(format!(
                "the core answered for '{}' in the place of '{}'",
                r.idempotency_key, env.idempotency_key
            ))));
            break;
        }
        let why = r.description.unwrap_or_default();
        let device = r.device;
        out.push(match r.outcome {
            // With a code: applied with a notice (Calling withheld). One
            // this gateway does not know is logged, not shown.
            Outcome::Applied => Ok(Granted {
                notice: r.error_code.and_then(|c| match ErrorCode::from_code(c) {
                    Some(code) => Some(Refusal::new(code, why.clone())),
                    None => {
                        tracing::warn!(code = c, notice = %why, "unknown notice from the license core");
                        None
                    }
                }),
                device,
            }),
            // A refusal whose code this gateway does not know (a newer
            // core) waits instead of failing the subscriber for good.
            Outcome::Refused => match r.error_code.and_then(ErrorCode::from_code) {
                Some(code) => Err(LicenseError::Rejected(Refusal::new(code, why))),
                None => Err(LicenseError::Unavailable(format!(
                    "the core refused with an unknown code {:?}: {why}",
                    r.error_code
                ))),
            },
            Outcome::Unavailable => Err(LicenseError::Unavailable(why)),
        });
        if matches!(out.last(), Some(Err(LicenseError::Unavailable(_)))) {
            break;
        }
    }
    if out.is_empty() {
        out.push(Err(LicenseError::Unavailable(
            "the core answered no result".into(),
        )));
    }
    out
}

#[async_trait]
impl LicenseCore for RemoteLicenseCore {
    async fn apply(&self, envelope: &CommandEnvelope) -> Result<Granted, LicenseError> {
        let mut out = self.apply_in_order(std::slice::from_ref(envelope)).await;
        out.pop()
            .unwrap_or_else(|| Err(LicenseError::Unavailable("no answer".into())))
    }

    fn name(&self) -> &'static str {
        "remote"
    }

    async fn apply_in_order(
        &self,
        envelopes: &[CommandEnvelope],
    ) -> Vec<Result<Granted, LicenseError>> {
        let body = match serde_json::to_vec(&CoreRequest {
            commands: envelopes.to_vec(),
        }) {
            Ok(b) => Bytes::from(b),
            Err(e) => return vec![Err(LicenseError::Unavailable(e.to_string()))],
        };
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                tokio::time::sleep(FIRST_PAUSE * 2u32.pow(attempt - 1)).await;
            }
            match self.post(body.clone()).await {
                Ok(answer) => return results(envelopes, answer),
                Err(failure) => {
                    metrics::counter!("bwgate_license_core_request_failures_total").increment(1);
                    last = failure.why;
                    if !failure.transient {
                        // Left to the outbox's backoff (and an operator).
                        tracing::error!(error = %last, "license core refused the run");
                        break;
                    }
                    tracing::debug!(attempt, error = %last, "license core request failed");
                }
            }
        }
        vec![Err(LicenseError::Unavailable(format!(
            "license core: {last}"
        )))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::license::wire::CoreResult;

    fn env(key: &str) -> CommandEnvelope {
        serde_json::from_value(serde_json::json!({
            "version": 1, "idempotencyKey": key, "enterpriseKey": "e", "trackingId": "t",
            "issuedAt": 0,
            "command": {"type": "RemoveSubscriber", "subscriberId": "s", "orgId": "o", "subscriberVersion": 1}
        }))
        .expect("envelope")
    }

    fn result(key: &str, outcome: Outcome, code: Option<u32>) -> CoreResult {
        CoreResult {
            idempotency_key: key.into(),
            outcome,
            error_code: code,
            description: Some("why".into()),
            device: None,
        }
    }

    #[test]
    fn answers_map_in_order_and_stop_at_the_first_unavailable_or_stranger() {
        let envs = [env("a"), env("b"), env("c")];
        let out = results(
            &envs,
            CoreAnswer {
                results: vec![
                    result("a", Outcome::Applied, None),
                    result("b", Outcome::Refused, Some(9041)),
                    result("c", Outcome::Unavailable, None),
                ],
            },
        );
        assert!(matches!(&out[0], Ok(Granted { notice: None, .. })));
        assert!(
            matches!(&out[1], Err(LicenseError::Rejected(r)) if r.code == ErrorCode::LicenseShortage && r.message() == "why")
        );
        assert!(matches!(&out[2], Err(LicenseError::Unavailable(_))));
        // A result for another key: that command and the rest wait.
        let out = results(
            &envs,
            CoreAnswer {
                results: vec![
                    result("a", Outcome::Applied, None),
                    result("x", Outcome::Applied, None),
                ],
            },
        );
        assert_eq!(out.len(), 2);
        assert!(matches!(&out[1], Err(LicenseError::Unavailable(m)) if m.contains("'x'")));
        // Applied with a notice (Calling withheld): kept with its reason;
        // a notice code this gateway does not know is left out.
        let out = results(
            &envs[..2],
            CoreAnswer {
                results: vec![
                    result("a", Outcome::Applied, Some(9043)),
                    result("b", Outcome::Applied, Some(99_999)),
                ],
            },
        );
        assert!(
            matches!(&out[0], Ok(Granted { notice: Some(n), .. }) if n.code == ErrorCode::CallingWithheld && n.message() == "why")
        );
        assert!(matches!(&out[1], Ok(Granted { notice: None, .. })));
        // A refusal with a code this gateway does not know waits.
        let out = results(
            &envs[..1],
            CoreAnswer {
                results: vec![result("a", Outcome::Refused, Some(99_999))],
            },
        );
        assert!(matches!(&out[..], [Err(LicenseError::Unavailable(m))] if m.contains("99999")));
        // No result at all is not success.
        let out = results(&envs, CoreAnswer { results: vec![] });
        assert!(matches!(&out[..], [Err(LicenseError::Unavailable(_))]));
    }
}
