//! Start-up artefacts, restart durability and graceful shutdown.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{admin_get, Server};

#[tokio::test]
async fn demo_template_file_is_private_and_survives_restart() {
    let mut server = Server::start();
    let file = server.path("data/demo-template.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let id = first["provisioningId"].as_str().unwrap().to_string();
    let password = first["password"].as_str().unwrap().to_string();
    assert!(
        password.len() <= 20 && !password.is_empty(),
        "BroadWorks caps it at 20"
    );
    assert!(first["username"].as_str().unwrap().len() <= 80);
    assert_eq!(
        first["provisioningUrl"].as_str().unwrap(),
        format!("https://{}/uc-one/v1/provisioning/{id}", server.https)
    );
    let stdout = std::fs::read_to_string(server.path("stdout.log")).unwrap();
    assert!(
        stdout.contains(&password),
        "credentials printed at start: {stdout}"
    );
    assert!(stdout.contains("curl --cacert"), "{stdout}");
    assert!(server.path("data/bwgate.db").is_file());

    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    server.spawn();
    let second: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(second["provisioningId"], first["provisioningId"]);
    assert_eq!(second["password"], first["password"]);
    assert_eq!(server.get("/").await.status, 200);
}

#[tokio::test]
async fn sigterm_lets_a_slow_request_finish() {
    let mut server = Server::start();
    let demo = crate::flowthrough::demo(&server);
    let body = crate::flowthrough::document(
        None,
        &[crate::flowthrough::add_user(
            "slow@acme.example",
            "acme",
            Some("slow@acme.example"),
        )],
    );
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = server.raw_tls().await;
    // A slow AS: the head and half the document now, the rest later.
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
        demo.path,
        demo.auth,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.is_running(), "must wait for the in-flight request");
    // Draining: readiness fails, new connections are refused.
    assert_eq!(
        admin_get(server.admin, "/readyz").await,
        (503, "draining\n".to_string())
    );
    assert!(
        tokio::net::TcpStream::connect(server.https).await.is_err(),
        "listener must be closed while draining"
    );

    stream.write_all(rest).await.unwrap();
    stream.flush().await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("response in time")
        .ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_lowercase().contains("trackingid: "), "{text}");
    assert!(text.contains("status=\"provisioning\""), "{text}");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "clean exit after drain: {status}");

    // What was acknowledged during the drain was recorded and completes.
    server.spawn();
    crate::flowthrough::wait_status(&server, "slow@acme.example", "provisioned").await;
}

#[tokio::test]
async fn grace_period_bounds_the_drain() {
    let mut server = Server::start_with(Some("[server]\nshutdown_grace_secs = 1\n"), &[]);
    let mut stream = server.raw_tls().await;
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n1")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    server.signal("TERM");
    // The client never finishes; the server must still stop after ~1 s.
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "stopped before the grace: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "grace not enforced: {took:?}"
    );
}

/// Two templates of one partner; `with_gone` declares the second.
fn two_templates(with_gone: bool) -> String {
    let mut cfg = String::from(
        "[server]\nshutdown_grace_secs = 1\n\n[[partners]]\nid = \"sp\"\nname = \"SP\"\n\n\
         [[templates]]\nprovisioning_id = \"t-keep\"\npartner = \"sp\"\nname = \"Keep\"\n\
         provisioning_username = \"prov\"\nprovisioning_password = \"prov-pw-1\"\n",
    );
    if with_gone {
        cfg.push_str(
            "\n[[templates]]\nprovisioning_id = \"t-gone\"\npartner = \"sp\"\nname = \"Gone\"\n\
             provisioning_username = \"prov\"\nprovisioning_password = \"prov-pw-1\"\n",
        );
    }
    cfg
}

async fn add_on(server: &Server, template: &str, user: &str) -> bwgate::client::ClientResponse {
    crate::flowthrough::post(
        server,
        &format!("/uc-one/v1/provisioning/{template}"),
        Some("Basic cHJvdjpwcm92LXB3LTE="), // prov:prov-pw-1
        crate::flowthrough::document(
            None,
            &[crate::flowthrough::add_user(
                user,
                "ent-gone",
                Some(&user.replace('@', ".m@")),
            )],
        ),
        "application/xml",
    )
    .await
}

fn restart_with(server: &mut Server, config: &str) {
    server.signal("TERM");
    let status = server.wait_exit(std::time::Duration::from_secs(15));
    assert!(status.success(), "{status}: {}", server.logs());
    std::fs::write(server.path("bwgate.toml"), config).expect("config");
    server.spawn();
}

#[tokio::test]
async fn a_template_removed_from_the_config_refuses_provisioning_and_keeps_its_subscribers() {
    let mut server = Server::start_with(Some(&two_templates(true)), &[]);
    let resp = add_on(&server, "t-gone", "g1@bw.example").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    crate::flowthrough::wait_status(&server, "g1@bw.example", "provisioned").await;

    // Restarted without it: refused like an unknown provisioningId (401,
    // 9004: nothing says the template exists), its subscriber stays.
    restart_with(&mut server, &two_templates(false));
    let gone = add_on(&server, "t-gone", "g2@bw.example").await;
    let unknown = add_on(&server, "t-never", "g2@bw.example").await;
    assert_eq!(gone.status, 401, "{}", gone.text());
    assert!(gone.text().contains("9004"), "{}", gone.text());
    assert_eq!(unknown.status, 401, "{}", unknown.text());
    assert!(unknown.text().contains("9004"), "{}", unknown.text());
    assert_eq!(
        gone.header("www-authenticate"),
        unknown.header("www-authenticate"),
        "the same answer as for an unknown provisioningId"
    );
    let (code, v) = crate::flowthrough::subscriber(&server, "g1@bw.example").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["subscriber"]["status"], "provisioned", "{v}");
    assert_eq!(v["template"]["provisioningId"], "t-gone", "{v}");
    assert_eq!(v["template"]["disabled"], true, "{v}");
    assert!(v["template"]["disabledAt"].is_i64(), "{v}");
    assert_eq!(
        crate::flowthrough::subscriber(&server, "g2@bw.example")
            .await
            .0,
        404
    );
    // The other template still works.
    let kept = add_on(&server, "t-keep", "k1@bw.example").await;
    assert_eq!(kept.status, 200, "{}", kept.text());
    assert!(server
        .logs()
        .contains("template removed from the configuration"));

    // Declared again: enabled, provisioning works.
    restart_with(&mut server, &two_templates(true));
    let back = add_on(&server, "t-gone", "g2@bw.example").await;
    assert_eq!(back.status, 200, "{}", back.text());
    assert!(
        back.text().contains("status=\"provisioning\""),
        "{}",
        back.text()
    );
    let (_, v) = crate::flowthrough::subscriber(&server, "g1@bw.example").await;
    assert_eq!(v["template"]["disabled"], false, "{v}");
}
