//! The HTTPS listener: accept, bound the number of connections, TLS
//! handshake with a timeout, then HTTP/1.1 or HTTP/2 (ALPN) via hyper-util.
//! Shutdown: stop accepting, let each connection finish in-flight requests
//! (hyper's graceful close), bounded by the caller's grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::http::State;
use crate::tls::{peer_identity, PeerIdentity, TlsReloader};

pub mod connection;
mod control_frames;
pub mod in_memory;

use connection::ConnState;
use control_frames::ControlFrames;

/// What a request knows about the connection it came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub face: crate::http::Face,
    pub peer: SocketAddr,
    pub client: Option<PeerIdentity>,
    pub tls_version: &'static str,
}

/// Runs the accept loop until `shutdown` turns true, then waits for the
/// open connections to finish (the caller bounds this with its grace).
pub async fn serve_https(
    face: crate::http::Face,
    app: Arc<State>,
    tls: Arc<TlsReloader>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
) {
    let limits = app.config.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(http_builder(&app, face));
    let handshake_timeout = Duration::from_millis(limits.handshake_timeout_ms);
    let first_bytes_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    ::metrics::counter!("bwgate_connections_rejected_total", "reason" => "accept_error").increment(1);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            ::metrics::counter!("bwgate_connections_rejected_total", "reason" => "max_connections")
                .increment(1);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.current());
        let app = app.clone();
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            serve_connection(
                face,
                app,
                builder,
                acceptor,
                tcp,
                peer,
                handshake_timeout,
                first_bytes_timeout,
                shutdown,
            )
            .await;
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        open_connections = tracker.len(),
        "https listener closed; draining"
    );
}

/// Memory per connection is bounded on both directions:
/// - reading: the HTTP/1 read buffer is capped by `max_buf_size`
///   (`limits.max_header_bytes`; an oversized head gets 431 and a close),
///   HTTP/2 header lists by `max_header_list_size`, each body by its
///   route's limit and all bodies held at once by the connection's and the
///   process's budgets (see `body.rs`, `body_budget.rs`); slow heads by
///   `header_read_timeout`, slow bodies by `limits.body_read_timeout_ms`.
///   The portal (anonymous clients, small forms) gets fewer HTTP/2
///   streams and smaller flow-control windows: what h2 buffers for streams
///   the handler has not read yet is bounded by the windows.
/// - control frames: h2 answers one PING and one SETTINGS at a time and
///   reads no further frame until the answer is written, so a flood of
///   them is bounded by the socket's buffers and costs CPU like requests.
/// - writing (a client that never reads its responses): hyper serves an
///   HTTP/1 connection one request at a time and does not read the next
///   request while a response is still queued, so at most one response
///   (plus hyper's write buffer) is held; once the client's TCP window and
///   our socket send buffer are full, writes pend and nothing more is read
///   or allocated. On HTTP/2 the same holds per stream through flow-control
///   windows, with at most `limits.max_concurrent_streams` streams. Such a
///   connection still costs one `max_connections` slot until the client
///   goes away or shutdown's grace period ends.
fn http_builder(app: &State, face: crate::http::Face) -> auto::Builder<TokioExecutor> {
    let limits = &app.config.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut http2 = builder.http2();
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .keep_alive_interval(Some(Duration::from_millis(
            limits.http2_keepalive_interval_ms,
        )))
        .keep_alive_timeout(Duration::from_millis(limits.http2_keepalive_timeout_ms));
    match face {
        crate::http::Face::Provisioning | crate::http::Face::LicenseCore => {
            http2.max_concurrent_streams(limits.max_concurrent_streams);
        }
        crate::http::Face::Portal => {
            // A stream's window holds a whole form; the connection's, a few.
            let stream_window = (limits.max_form_body_bytes as u32).max(PORTAL_MIN_WINDOW);
            http2
                .max_concurrent_streams(limits.portal_max_concurrent_streams)
                .initial_stream_window_size(stream_window)
                .initial_connection_window_size(stream_window.saturating_mul(4));
        }
    }
    builder
}

/// HTTP/2's default initial window; smaller ones only slow clients down.
const PORTAL_MIN_WINDOW: u32 = 65_535;

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    face: crate::http::Face,
    app: Arc<State>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    handshake_timeout: Duration,
    first_bytes_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(tcp));
    let tls_stream = tokio::select! {
        _ = shutdown.changed() => return,
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "tls handshake failed");
                ::metrics::counter!("bwgate_tls_handshake_failures_total", "reason" => "error").increment(1);
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "tls handshake timed out");
                ::metrics::counter!("bwgate_tls_handshake_failures_total", "reason" => "timeout").increment(1);
                return;
            }
        },
    };
    ::metrics::counter!("bwgate_tls_handshakes_total").increment(1);
    let (_, session) = tls_stream.get_ref();
    let info = Arc::new(ConnInfo {
        face,
        peer,
        client: peer_identity(session),
        tls_version: match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        },
    });
    let idle_timeout = Duration::from_millis(app.config.limits.idle_timeout_ms);
    let keepalive_timeout_ms = app.config.limits.http2_keepalive_timeout_ms;
    let control_frames_per_sec = app.config.limits.http2_max_control_frames_per_sec;
    let state = ConnState::new(&app.config.limits);
    let service = {
        let state = state.clone();
        service_fn(move |req| {
            let app = app.clone();
            let info = info.clone();
            let state = state.clone();
            async move { Ok::<_, Infallible>(crate::http::handler::handle(app, info, state, req).await) }
        })
    };
    let io = FirstBytesDeadline::new(tls_stream, first_bytes_timeout, control_frames_per_sec);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    // h2's graceful close waits for the peer to acknowledge a PING; a peer
    // that never does is dropped after the keep-alive timeout instead.
    let idle_grace = Duration::from_millis(keepalive_timeout_ms);
    let mut idle_closed_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with error");
                }
                break;
            }
            changed = shutdown.changed(), if !closing => {
                // Sender gone also means shutdown.
                let _ = changed;
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            // Keep-alive PINGs only prove the peer is alive; an idle peer
            // would hold its slot forever. HTTP/2 gets a GOAWAY, HTTP/1 is
            // closed between requests.
            () = state.idle_for(idle_timeout), if !closing => {
                tracing::debug!(%peer, "idle connection closed");
                ::metrics::counter!("bwgate_connections_closed_total", "reason" => "idle").increment(1);
                closing = true;
                idle_closed_at = Some(tokio::time::Instant::now());
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_closed_at.unwrap_or_else(tokio::time::Instant::now) + idle_grace),
                if idle_closed_at.is_some() => {
                if state.requests_in_progress() == 0 {
                    tracing::debug!(%peer, "idle connection did not finish closing; dropped");
                    break;
                }
                // A request slipped in before the GOAWAY: let it finish.
                idle_closed_at = None;
            }
        }
    }
}

/// The first request's bytes must start arriving within the header read
/// timeout. hyper-util's auto builder first reads enough bytes to tell
/// HTTP/1 from HTTP/2 and applies no timer while doing so, so without this
/// a client could finish the TLS handshake, send nothing, and hold a
/// connection slot forever. Once the bytes read show HTTP/1 or a whole
/// HTTP/2 preface the deadline is dropped: hyper's `header_read_timeout` (HTTP/1),
/// keep-alive pings (HTTP/2) and the idle timeout take over. On HTTP/2
/// the bytes after the preface are also watched for PING/SETTINGS floods
/// (`control_frames.rs`): over the rate, reading fails and the connection
/// is closed.
struct FirstBytesDeadline<S> {
    inner: S,
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    seen: usize,
    detecting: bool,
    control_frames: Option<ControlFrames>,
}

/// The HTTP/2 connection preface, what version detection looks for.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl<S> FirstBytesDeadline<S> {
    fn new(inner: S, timeout: Duration, control_frames_per_sec: u32) -> Self {
        FirstBytesDeadline {
            inner,
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            seen: 0,
            detecting: true,
            control_frames: Some(ControlFrames::new(control_frames_per_sec)),
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FirstBytesDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        let before = buf.filled().len();
        let result = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        match result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                // Where HTTP/2 frames start in `new`, if they do.
                let mut frames_from = None;
                if this.detecting {
                    let at = this.seen.min(PREFACE.len());
                    let end = (at + new.len()).min(PREFACE.len());
                    let h2_so_far = new[..end - at] == PREFACE[at..end];
                    this.seen += new.len();
                    // HTTP/1 (not the preface), a whole preface, or EOF:
                    // version detection is over; hyper's timers take over.
                    if !h2_so_far || new.is_empty() {
                        this.detecting = false;
                        this.deadline = None;
                        this.control_frames = None;
                    } else if this.seen >= PREFACE.len() {
                        this.detecting = false;
                        this.deadline = None;
                        frames_from = Some(end - at);
                    }
                } else {
                    frames_from = Some(0);
                }
                if let (Some(from), Some(counter)) = (frames_from, this.control_frames.as_mut()) {
                    if counter.feed(&new[from..]).is_err() {
                        ::metrics::counter!("bwgate_connections_closed_total", "reason" => "control_frame_flood")
                            .increment(1);
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "too many HTTP/2 PING/SETTINGS frames",
                        )));
                    }
                }
            }
            Poll::Ready(Err(_)) => this.deadline = None,
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        ::metrics::counter!("bwgate_connections_rejected_total", "reason" => "first_request_timeout")
                            .increment(1);
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no request within the header read timeout",
                        )));
                    }
                }
            }
        }
        result
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FirstBytesDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
