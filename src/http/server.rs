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

use crate::app::App;
use crate::tls::{peer_identity, PeerIdentity, TlsReloader};

/// What a request knows about the connection it came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub face: super::Face,
    pub peer: SocketAddr,
    pub client: Option<PeerIdentity>,
    pub tls_version: &'static str,
}

/// Runs the accept loop until `shutdown` turns true, then waits for the
/// open connections to finish (the caller bounds this with its grace).
pub async fn serve_https(
    face: super::Face,
    app: Arc<App>,
    tls: Arc<TlsReloader>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
) {
    let limits = app.config.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let builder = Arc::new(http_builder(&app));
    let handshake_timeout = Duration::from_millis(limits.handshake_timeout_ms);
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

fn http_builder(app: &App) -> auto::Builder<TokioExecutor> {
    let limits = &app.config.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    face: super::Face,
    app: Arc<App>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    handshake_timeout: Duration,
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
    let service = service_fn(move |req| {
        let app = app.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(super::handler::handle(app, info, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
    tokio::pin!(conn);
    let mut closing = *shutdown.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
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
        }
    }
}
