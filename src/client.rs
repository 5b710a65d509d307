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
