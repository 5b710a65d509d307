//! `bwgate bench-baseline` (hidden): the ceiling for `scripts/bench.sh`.
//! A bare hyper HTTP/1.1 server over the very rustls `ServerConfig` bwgate
//! builds ([`crate::tls::build_server_config`]: same certificates, same
//! aws-lc-rs provider, mTLS required, same resumption settings), ALPN
//! `http/1.1` only, reading each request body and answering a fixed 200 `ok`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

#[derive(clap::Args, Debug, Clone)]
pub struct BaselineArgs {
    #[arg(long, default_value = "127.0.0.1:8444")]
    pub listen: SocketAddr,
    /// Directory with the dev certificate set (`bwgate certs init --dir`).
    #[arg(long, default_value = "certs")]
    pub certs: PathBuf,
    /// Runtime worker threads (default: one per available core, like `serve`).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The server config bwgate itself would build for `certs_dir`, ALPN http/1.1.
pub fn server_config(certs: PathBuf) -> Result<rustls::ServerConfig, crate::tls::TlsError> {
    let cfg = TlsConfig {
        certs_dir: certs,
        ..TlsConfig::default()
    };
    let paths = crate::tls::resolve_paths(&cfg);
    let resumption = crate::tls::Resumption::new(&cfg)?;
    let mut config = crate::tls::build_server_config(&cfg, &paths, &resumption)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

pub fn cli(args: BaselineArgs) -> ExitCode {
    let config = match server_config(args.certs.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bwgate bench-baseline: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bwgate bench-baseline: runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve(args.listen, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bwgate bench-baseline: {e}");
            ExitCode::from(1)
        }
    }
}

/// Serves until the process is stopped (SIGTERM/SIGINT: default action).
pub async fn serve(listen: SocketAddr, config: rustls::ServerConfig) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    println!("bench-baseline listening on {}", listener.local_addr()?);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(pair) => pair,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), service_fn(ok))
                .await;
        });
    }
}

async fn ok(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let _ = req.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}
