//! Serving one connection over an in-memory byte stream: no socket, no
//! TLS, but the listener's own HTTP settings (this module sits under
//! `server` to share its builder), router, handlers and store. The TLS
//! part of the connection is described by the caller's [`ConnInfo`].
//!
//! Used by the fuzz targets (`fuzz/`) to drive the whole request path with
//! arbitrary bytes, and usable by any test that wants a request served
//! without certificates.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{http_builder, ConnInfo, ConnState};
use crate::http::State;

/// Error of a connection that ended badly (malformed HTTP, a reset, …).
pub type ConnError = Box<dyn std::error::Error + Send + Sync>;

/// Serves HTTP/1.1 or HTTP/2 (told apart by the first bytes, as on the
/// listener) on `io` until the peer closes it or the connection fails.
pub async fn serve_io<I>(app: Arc<State>, conn: Arc<ConnInfo>, io: I) -> Result<(), ConnError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let builder = http_builder(&app, conn.face);
    serve_with(builder, app, conn, io).await
}

async fn serve_with<I>(
    builder: auto::Builder<TokioExecutor>,
    app: Arc<State>,
    conn: Arc<ConnInfo>,
    io: I,
) -> Result<(), ConnError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = ConnState::new(&app.config.limits);
    let service = service_fn(move |req| {
        let app = app.clone();
        let conn = conn.clone();
        let state = state.clone();
        async move { Ok::<_, Infallible>(crate::http::handler::handle(app, conn, state, req).await) }
    });
    builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await
}

/// Writes `request` (raw bytes: one or more HTTP/1.1 requests, or an
/// HTTP/2 preface and frames) on a fresh in-memory connection, closes the
/// sending side, and returns every byte the server wrote back before it
/// closed the connection, with how the connection ended.
pub async fn exchange(
    app: Arc<State>,
    conn: Arc<ConnInfo>,
    request: &[u8],
) -> (Vec<u8>, Result<(), ConnError>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut rx, mut tx) = tokio::io::split(client);
    // The one difference from the listener: the end of `request` is a
    // half-close (shutdown of the sending side), and hyper's default takes
    // a read EOF as the client going away, dropping pipelined requests it
    // has already buffered. Here every buffered request is still answered.
    let mut builder = http_builder(&app, conn.face);
    builder.http1().half_close(true);
    let serve = serve_with(builder, app, conn, server);
    // The server may answer (and fill the pipe) before it has read the
    // whole request: write, read and serve concurrently.
    let send = async {
        // A server that stops reading (it closed after an error) makes the
        // rest of the write fail; what it answered is still read below.
        let _ = tx.write_all(request).await;
        let _ = tx.shutdown().await;
    };
    let mut answer = Vec::new();
    let receive = rx.read_to_end(&mut answer);
    let (served, _, _) = tokio::join!(serve, send, receive);
    (answer, served)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;

    use tokio::sync::Notify;

    use crate::config::Config;
    use crate::http::Face;
    use crate::notify::Mailer;
    use crate::provision::Provisioning;
    use crate::store::sqlite::SqliteStore;
    use crate::store::SharedStore;

    async fn app(dir: &std::path::Path) -> Arc<State> {
        let config = Arc::new(Config::default());
        let store: SharedStore = Arc::new(
            SqliteStore::open(&dir.join("bwgate.db"), &config.store)
                .await
                .unwrap(),
        );
        let mailer = Mailer::new(store.clone(), Arc::new(Notify::new()));
        State::new(crate::app::App::new(
            config,
            store.clone(),
            crate::telemetry::metrics_handle(),
            Provisioning::new(store),
            mailer,
        ))
    }

    fn conn() -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            face: Face::Provisioning,
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            client: None,
            tls_version: "none",
        })
    }

    #[tokio::test]
    async fn pipelined_requests_are_all_answered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path()).await;
        let (answer, served) = exchange(
            app,
            conn(),
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        served.unwrap();
        let text = String::from_utf8_lossy(&answer);
        let ok = text.find("HTTP/1.1 200 OK").expect("GET / answered");
        let not_found = text.find("HTTP/1.1 404 Not Found").expect("404 answered");
        assert!(ok < not_found, "{text}");
        assert!(text.contains("\"service\":\"bwgate\""), "{text}");
        assert_eq!(text.matches("trackingid: ").count(), 2, "{text}");
    }

    #[tokio::test]
    async fn garbage_gets_a_400_and_a_close() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path()).await;
        let (answer, served) = exchange(app, conn(), b"\x00\x01 not http\r\n\r\n").await;
        assert!(served.is_err());
        assert!(answer.starts_with(b"HTTP/1.1 400 Bad Request"));
    }
}
