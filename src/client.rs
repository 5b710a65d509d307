//! bwgate's own HTTPS client over mTLS (HTTP/1.1 or HTTP/2 by ALPN), used
//! by the integration tests, `bwgate replay` and `bwgate load`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tls handshake with {addr}: {source}")]
    Handshake {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid server name '{0}'")]
    ServerName(String),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("unusable URL '{0}': {1}")]
    Url(String, &'static str),
    #[error("resolve {0}: {1}")]
    Resolve(String, String),
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl ClientResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Where and how to connect; cheap to clone, one per target.
#[derive(Clone)]
pub struct HttpsClient {
    addr: SocketAddr,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One open (keep-alive) connection.
pub struct ClientConnection {
    sender: Sender,
    /// Whether the TLS session was resumed rather than fully negotiated.
    pub resumed: bool,
}

impl HttpsClient {
    pub fn new(
        addr: SocketAddr,
        server_name: &str,
        tls: rustls::ClientConfig,
    ) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| ClientError::ServerName(server_name.to_string()))?;
        Ok(HttpsClient {
            addr,
            server_name,
            connector: TlsConnector::from(Arc::new(tls)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// TCP connect, TLS handshake, then HTTP/2 when the server chose `h2`.
    pub async fn connect(&self) -> Result<ClientConnection, ClientError> {
        let addr = self.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        let (_, session) = tls.get_ref();
        let resumed = session.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let h2 = session.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H2(sender)
        } else {
            let (sender, conn) = http1::handshake(io).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Sender::H1(sender)
        };
        Ok(ClientConnection { sender, resumed })
    }

    /// One request on a fresh connection.
    pub async fn request(&self, req: Request<Full<Bytes>>) -> Result<ClientResponse, ClientError> {
        self.connect().await?.send(req).await
    }
}

impl ClientConnection {
    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<ClientResponse, ClientError> {
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(absolute_uri(req)).await?
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(ClientResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// HTTP/2 carries scheme and authority as pseudo-headers: give the request
/// an absolute URI built from its Host header.
fn absolute_uri(mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    if req.uri().scheme().is_none() {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_string();
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        if let Ok(uri) = format!("https://{host}{path}").parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// A GET request for `path` with the Host header set.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    request("GET", path, Bytes::new(), None)
}

/// A GET to another service: `Host` is `host`, plus `headers`.
pub fn get_with_headers(
    host: &str,
    path: &str,
    headers: &[(&'static str, String)],
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method("GET")
        .uri(path)
        .header(hyper::header::HOST, host);
    for (name, value) in headers {
        b = b.header(*name, value.as_str());
    }
    b.body(Full::new(Bytes::new())).unwrap_or_else(|_| {
        // An invalid header value (a control character in a password):
        // sent without it, the service answers 401.
        Request::new(Full::new(Bytes::new()))
    })
}

pub fn request(
    method: &str,
    path: &str,
    body: Bytes,
    content_type: Option<&str>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost");
    if let Some(ct) = content_type {
        b = b.header(hyper::header::CONTENT_TYPE, ct);
    }
    b.body(Full::new(body)).unwrap_or_else(|_| {
        // Only an invalid method or path gets here; callers pass constants.
        Request::new(Full::new(Bytes::new()))
    })
}

/// One `POST` of `body` to `url` (`http://` or `https://`, HTTP/1.1, a
/// fresh connection, `tls` for https): the answer's status (its body is
/// read and dropped). For callbacks to other services (Xsi-Events HTTP
/// contacts).
pub async fn post_once(
    url: &str,
    content_type: &str,
    body: Bytes,
    tls: Arc<rustls::ClientConfig>,
) -> Result<StatusCode, ClientError> {
    let Target {
        https,
        host,
        port,
        authority,
        path,
    } = Target::parse(url)?;
    let bad = |why| ClientError::Url(url.chars().take(200).collect(), why);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| ClientError::Resolve(host.clone(), e.to_string()))?
        .next()
        .ok_or_else(|| ClientError::Resolve(host.clone(), "no address".into()))?;
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .map_err(|_| bad("not a usable request target"))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| ClientError::Connect { addr, source })?;
    let _ = tcp.set_nodelay(true);
    let resp = if https {
        let name = ServerName::try_from(host.clone()).map_err(|_| ClientError::ServerName(host))?;
        let stream = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Handshake { addr, source })?;
        send_http1(TokioIo::new(stream), req).await?
    } else {
        send_http1(TokioIo::new(tcp), req).await?
    };
    Ok(resp)
}

async fn send_http1<I>(io: I, req: Request<Full<Bytes>>) -> Result<StatusCode, ClientError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    // Read to the end so the server sees its answer taken.
    let _ = resp.into_body().collect().await;
    Ok(status)
}

/// Where an `https://host[:port]` URL points, resolved now (for clients
/// made at start-up): the address, the server name for TLS, and the
/// authority for the `Host` header.
pub fn resolve_https(url: &str) -> Result<(SocketAddr, String, String), ClientError> {
    let target = Target::parse(url)?;
    if !target.https {
        return Err(ClientError::Url(
            url.chars().take(200).collect(),
            "only https",
        ));
    }
    let Target {
        host,
        port,
        authority,
        ..
    } = target;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .map_err(|e| ClientError::Resolve(host.clone(), e.to_string()))?
        .next()
        .ok_or_else(|| ClientError::Resolve(host.clone(), "no address".into()))?;
    Ok((addr, host, authority))
}

/// An `http://` or `https://` URL taken apart.
struct Target {
    https: bool,
    host: String,
    port: u16,
    /// For the `Host` header.
    authority: String,
    /// Path and query (`/` when none).
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |why| ClientError::Url(url.chars().take(200).collect(), why);
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("only http and https")),
        };
        let host = uri
            .host()
            .ok_or_else(|| bad("no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            https,
            host,
            port,
            authority,
            path,
        })
    }
}

/// A `POST` of a JSON body to `path` on `authority`.
pub fn post_json(authority: &str, path: &str, body: Bytes) -> Request<Full<Bytes>> {
    let mut req = request("POST", path, body, Some("application/json"));
    if let Ok(v) = hyper::header::HeaderValue::from_str(authority) {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    req
}
