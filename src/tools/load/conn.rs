//! One load connection: TCP + rustls, then either a lean hand-rolled
//! HTTP/1.1 exchange (pre-rendered request bytes out, a reused read buffer
//! in, no per-request allocation) or hyper's HTTP/2 client.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::report::{Tally, TransportError};

/// Largest response the HTTP/1 reader buffers.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

pub type Failure = (TransportError, String);

/// Where to connect and what to send; shared by every connection task.
pub struct Target {
    pub addr: SocketAddr,
    pub server_name: ServerName<'static>,
    pub connector: TlsConnector,
    /// POST: the HTTP/1.1 request head up to and including
    /// `Content-Length: `; GET: the whole request.
    pub h1_head: Vec<u8>,
    pub post: bool,
    pub h2_uri: Uri,
    pub h2_auth: Option<HeaderValue>,
}

impl Target {
    /// Renders the fixed part of the HTTP/1.1 request head once.
    pub fn render_h1_head(
        post: bool,
        path: &str,
        host: &str,
        auth: Option<&str>,
        close: bool,
    ) -> Vec<u8> {
        let mut h = Vec::with_capacity(256);
        h.extend_from_slice(if post { b"POST " } else { b"GET " });
        h.extend_from_slice(path.as_bytes());
        h.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        h.extend_from_slice(host.as_bytes());
        h.extend_from_slice(b"\r\nUser-Agent: bwgate-load\r\n");
        if let Some(a) = auth {
            h.extend_from_slice(b"Authorization: ");
            h.extend_from_slice(a.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        if close {
            h.extend_from_slice(b"Connection: close\r\n");
        }
        if post {
            h.extend_from_slice(b"Content-Type: application/xml\r\nContent-Length: ");
        } else {
            h.extend_from_slice(b"\r\n");
        }
        h
    }
}

/// `--no-verify`: accepts any server certificate and handshake signature
/// without computing anything (benchmark clients only; loopback targets).
#[derive(Debug)]
pub struct NoVerify {
    schemes: Vec<rustls::SignatureScheme>,
}

impl NoVerify {
    pub fn new() -> NoVerify {
        NoVerify {
            schemes: rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

impl Default for NoVerify {
    fn default() -> Self {
        NoVerify::new()
    }
}

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &rustls::pki_types::CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.schemes.clone()
    }
}

/// What the handshake negotiated, for the report.
pub struct Negotiated {
    pub resumed: bool,
    pub tls: String,
    pub alpn: String,
}

pub enum Conn {
    H1(Box<H1Conn>),
    H2(http2::SendRequest<Full<Bytes>>),
}

pub struct H1Conn {
    io: TlsStream<TcpStream>,
    rbuf: Vec<u8>,
    len: usize,
    chunked: Vec<u8>,
}

/// A response as far as the report cares.
pub struct Outcome {
    pub status: u16,
    /// Number of `errorCode`s found in the body.
    pub error_codes: usize,
    /// The server will not take another request on this connection.
    pub close: bool,
}

/// TCP connect and TLS handshake (no HTTP yet), and what was negotiated.
pub(super) async fn tls_connect(
    addr: SocketAddr,
    server_name: &ServerName<'static>,
    connector: &TlsConnector,
) -> Result<(TlsStream<TcpStream>, Negotiated), Failure> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| (TransportError::Connect, format!("connect {addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let tls = connector
        .connect(server_name.clone(), tcp)
        .await
        .map_err(|e| {
            (
                TransportError::TlsHandshake,
                format!("TLS handshake with {addr}: {e}"),
            )
        })?;
    let (_, session) = tls.get_ref();
    let negotiated = Negotiated {
        resumed: session.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        tls: format!(
            "{} {} {}",
            session
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            session
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            session
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_default()
        ),
        alpn: session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| "none".into()),
    };
    Ok((tls, negotiated))
}

pub async fn connect(target: &Target) -> Result<(Conn, Negotiated), Failure> {
    let (tls, negotiated) =
        tls_connect(target.addr, &target.server_name, &target.connector).await?;
    if negotiated.alpn == "h2" {
        let (sender, driver) = http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| (TransportError::Http2, format!("HTTP/2 handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok((Conn::H2(sender), negotiated))
    } else {
        Ok((
            Conn::H1(Box::new(H1Conn {
                io: tls,
                rbuf: vec![0; READ_CHUNK],
                len: 0,
                chunked: Vec::new(),
            })),
            negotiated,
        ))
    }
}

impl Conn {
    /// Sends one request. `h1_request` is the whole HTTP/1.1 request;
    /// `body` the body alone (for HTTP/2). Error codes found in the
    /// response body are counted into `tally`.
    pub async fn exchange(
        &mut self,
        target: &Target,
        h1_request: &[u8],
        body: &[u8],
        tally: &mut Tally,
    ) -> Result<Outcome, Failure> {
        match self {
            Conn::H1(c) => c.exchange(h1_request, tally).await,
            Conn::H2(sender) => {
                sender
                    .ready()
                    .await
                    .map_err(|e| (TransportError::Http2, format!("HTTP/2: {e}")))?;
                let mut req = Request::new(Full::new(Bytes::copy_from_slice(body)));
                *req.uri_mut() = target.h2_uri.clone();
                let h = req.headers_mut();
                if target.post {
                    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
                    *req.method_mut() = Method::POST;
                }
                let h = req.headers_mut();
                h.insert(USER_AGENT, HeaderValue::from_static("bwgate-load"));
                if let Some(a) = &target.h2_auth {
                    h.insert(AUTHORIZATION, a.clone());
                }
                let resp = sender
                    .send_request(req)
                    .await
                    .map_err(|e| (TransportError::Http2, format!("HTTP/2: {e}")))?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| (TransportError::Http2, format!("HTTP/2 body: {e}")))?
                    .to_bytes();
                Ok(Outcome {
                    status,
                    error_codes: tally.record_error_codes(&body),
                    close: false,
                })
            }
        }
    }
}

impl H1Conn {
    async fn exchange(&mut self, request: &[u8], tally: &mut Tally) -> Result<Outcome, Failure> {
        let write = async {
            self.io.write_all(request).await?;
            self.io.flush().await
        };
        write
            .await
            .map_err(|e| (TransportError::Write, format!("write: {e}")))?;
        let mut eof = false;
        loop {
            if self.len > 0 || eof {
                match parse_response(&self.rbuf[..self.len], eof, &mut self.chunked) {
                    Err(e) => return Err((TransportError::Protocol, e.to_string())),
                    Ok(Parse::Informational(consumed)) => {
                        self.consume(consumed);
                        continue;
                    }
                    Ok(Parse::Complete(r)) => {
                        let body = match r.body {
                            Body::Range(a, b) => &self.rbuf[a..b],
                            Body::Chunked => &self.chunked[..],
                        };
                        let error_codes = tally.record_error_codes(body);
                        self.consume(r.consumed);
                        return Ok(Outcome {
                            status: r.status,
                            error_codes,
                            close: r.close,
                        });
                    }
                    Ok(Parse::Partial) if eof => {
                        return Err((
                            TransportError::Closed,
                            "server closed the connection before a whole response".into(),
                        ))
                    }
                    Ok(Parse::Partial) => {}
                }
            }
            if self.len == self.rbuf.len() {
                if self.rbuf.len() >= MAX_RESPONSE {
                    return Err((TransportError::Protocol, "response too large".into()));
                }
                self.rbuf.resize(self.rbuf.len() * 2, 0);
            }
            let n = self
                .io
                .read(&mut self.rbuf[self.len..])
                .await
                .map_err(|e| (TransportError::Read, format!("read: {e}")))?;
            if n == 0 {
                eof = true;
            }
            self.len += n;
        }
    }

    fn consume(&mut self, n: usize) {
        self.rbuf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    Range(usize, usize),
    /// Decoded into the caller's chunk buffer.
    Chunked,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub status: u16,
    pub consumed: usize,
    pub body: Body,
    pub close: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    Partial,
    /// A 1xx head of this length, to skip.
    Informational(usize),
    Complete(Parsed),
}

enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Parses one HTTP/1.x response from the front of `buf`. `eof`: no more
/// bytes will come (completes a close-delimited body).
pub fn parse_response(
    buf: &[u8],
    eof: bool,
    chunk_out: &mut Vec<u8>,
) -> Result<Parse, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        Err(_) => return Err("unparseable HTTP response head"),
    };
    let status = resp.code.unwrap_or(0);
    if (100..200).contains(&status) && status != 101 {
        return Ok(Parse::Informational(head_len));
    }
    let mut close = resp.version == Some(0);
    let mut framing = Framing::UntilClose;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("bad Content-Length")?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if contains_token(h.value, b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                close = true;
            } else if contains_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    if status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    let parsed = |consumed, body, close| {
        Ok(Parse::Complete(Parsed {
            status,
            consumed,
            body,
            close,
        }))
    };
    match framing {
        Framing::Length(n) => {
            if n > MAX_RESPONSE {
                return Err("response too large");
            }
            if buf.len() >= head_len + n {
                parsed(head_len + n, Body::Range(head_len, head_len + n), close)
            } else {
                Ok(Parse::Partial)
            }
        }
        Framing::Chunked => match decode_chunked(&buf[head_len..], chunk_out)? {
            Some(used) => parsed(head_len + used, Body::Chunked, close),
            None => Ok(Parse::Partial),
        },
        Framing::UntilClose if eof => parsed(buf.len(), Body::Range(head_len, buf.len()), true),
        Framing::UntilClose => Ok(Parse::Partial),
    }
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Decodes a chunked body at the front of `buf` into `out`; returns the
/// bytes used (through the trailer's empty line) or `None` if incomplete.
pub fn decode_chunked(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, &'static str> {
    out.clear();
    let mut pos = 0;
    loop {
        let Some(line_len) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let line = &buf[pos..pos + line_len];
        let size_part = line
            .split(|b| *b == b';')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        let size = std::str::from_utf8(size_part)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or("bad chunk size")?;
        if size > MAX_RESPONSE || out.len() + size > MAX_RESPONSE {
            return Err("response too large");
        }
        pos += line_len + 2;
        if size == 0 {
            loop {
                let Some(l) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += l + 2;
                if l == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err("bad chunk terminator");
        }
        pos += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8], eof: bool) -> (Parsed, Vec<u8>) {
        let mut chunks = Vec::new();
        match parse_response(buf, eof, &mut chunks).unwrap() {
            Parse::Complete(p) => {
                let body = match p.body {
                    Body::Range(a, b) => buf[a..b].to_vec(),
                    Body::Chunked => chunks.clone(),
                };
                (p, body)
            }
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn content_length_response_and_pipelined_rest() {
        let buf = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1";
        let (p, body) = complete(buf, false);
        assert_eq!((p.status, p.close), (200, false));
        assert_eq!(body, b"ok");
        assert_eq!(p.consumed, buf.len() - 8);
        let mut c = Vec::new();
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nok",
                false,
                &mut c
            ),
            Ok(Parse::Partial)
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncont", false, &mut c),
            Ok(Parse::Partial)
        );
    }

    #[test]
    fn chunked_close_delimited_and_informational() {
        let buf = b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4;x=y\r\n<err\r\n3\r\nor>\r\n0\r\nA: b\r\n\r\n";
        let (p, body) = complete(buf, false);
        assert_eq!((p.status, p.close, p.consumed), (401, true, buf.len()));
        assert_eq!(body, b"<error>");
        let (p, body) = complete(b"HTTP/1.0 200 OK\r\n\r\nuntil close", true);
        assert_eq!((p.status, p.close), (200, true));
        assert_eq!(body, b"until close");
        let mut c = Vec::new();
        assert_eq!(
            parse_response(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", false, &mut c),
            Ok(Parse::Informational(25))
        );
        assert!(parse_response(b"garbage\r\n\r\n", false, &mut c).is_err());
        assert!(decode_chunked(b"zz\r\n", &mut c).is_err());
        assert_eq!(decode_chunked(b"5\r\nab", &mut c), Ok(None));
    }

    #[test]
    fn request_head_is_prerendered() {
        let h = Target::render_h1_head(true, "/p", "localhost:1", Some("Basic eA=="), true);
        let text = String::from_utf8(h).unwrap();
        assert!(text.starts_with("POST /p HTTP/1.1\r\nHost: localhost:1\r\n"));
        assert!(text.contains("Authorization: Basic eA==\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("Content-Type: application/xml\r\nContent-Length: "));
        let get = Target::render_h1_head(false, "/", "h:1", None, false);
        assert_eq!(
            String::from_utf8(get).unwrap(),
            "GET / HTTP/1.1\r\nHost: h:1\r\nUser-Agent: bwgate-load\r\n\r\n"
        );
    }
}
