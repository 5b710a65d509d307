//! Certificates replaced on disk are served without a restart.

use std::path::Path;
use std::time::Duration;

use crate::harness::{eventually, Server};

/// Serial of the certificate the server presents on a fresh handshake.
async fn served_serial(server: &Server) -> String {
    let stream = server.raw_tls().await;
    let (_, session) = stream.get_ref();
    let leaf = &session.peer_certificates().expect("server certificate")[0];
    bwgate::tls::identity_from_der(leaf.as_ref())
        .expect("parse")
        .serial_hex
}

/// Issues a new server certificate from the dev CA and swaps it in
/// atomically (key first, then certificate, each by rename).
fn replace_server_cert(certs: &Path) {
    let ca = bwgate::tls::GeneratedCa::load(&certs.join("ca.crt"), &certs.join("ca.key")).unwrap();
    let (cert, key) = bwgate::tls::issue_server_cert(&ca, &["localhost", "127.0.0.1"], 30).unwrap();
    std::fs::write(certs.join("server.key.new"), key).unwrap();
    std::fs::write(certs.join("server.crt.new"), cert).unwrap();
    std::fs::rename(certs.join("server.key.new"), certs.join("server.key")).unwrap();
    std::fs::rename(certs.join("server.crt.new"), certs.join("server.crt")).unwrap();
}

async fn wait_for_new_serial(server: &Server, old: &str, within: Duration) -> String {
    eventually(
        server.with_logs(format!("a serial other than {old}")),
        within,
        || async {
            let serial = served_serial(server).await;
            if serial != old {
                Ok(serial)
            } else {
                Err(serial)
            }
        },
    )
    .await
}

#[tokio::test]
async fn replaced_certificate_is_picked_up_by_polling() {
    let server = Server::start_with(Some("[tls]\nreload_interval_secs = 1\n"), &[]);
    let before = served_serial(&server).await;
    replace_server_cert(&server.certs());
    let after = wait_for_new_serial(&server, &before, Duration::from_secs(10)).await;
    assert_ne!(before, after);
    // The process never restarted and still serves requests.
    assert_eq!(server.get("/").await.status, 200);
    let (_, metrics) = server.admin_get("/metrics").await;
    assert!(
        crate::harness::metric_value(&metrics, "bwgate_tls_reloads_total{result=\"ok\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn sighup_reloads_at_once() {
    // Polling effectively off: only the signal can explain the change.
    let server = Server::start_with(Some("[tls]\nreload_interval_secs = 3600\n"), &[]);
    let before = served_serial(&server).await;
    replace_server_cert(&server.certs());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served_serial(&server).await,
        before,
        "no reload before SIGHUP"
    );
    server.signal("HUP");
    let after = wait_for_new_serial(&server, &before, Duration::from_secs(5)).await;
    assert_ne!(before, after);
}

#[tokio::test]
async fn a_broken_certificate_keeps_the_old_one_serving() {
    let server = Server::start_with(Some("[tls]\nreload_interval_secs = 3600\n"), &[]);
    let before = served_serial(&server).await;
    std::fs::write(server.certs().join("server.crt"), "not a certificate").unwrap();
    server.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served_serial(&server).await, before);
    let (_, metrics) = server.admin_get("/metrics").await;
    assert!(
        crate::harness::metric_value(&metrics, "bwgate_tls_reloads_total{result=\"error\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
}
