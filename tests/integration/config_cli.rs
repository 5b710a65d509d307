//! `bwgate config check`, config errors at `serve`, env overrides, `certs init`.

use std::process::Command;

use crate::harness::{Server, BIN};

fn run(args: &[&str], envs: &[(&str, &str)], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run bwgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn invalid_key_is_named_by_check_and_by_serve() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\nlisten_port = 8443\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.listen_port"), "{err}");
    assert!(err.contains("unknown field"), "{err}");

    let (code, _, err) = run(
        &["serve", "--config", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("server.listen_port"), "{err}");
    // Refused before anything was created.
    assert!(!dir.path().join("data").exists());
    assert!(!dir.path().join("certs").exists());
}

#[test]
fn config_check_names_every_unknown_key_and_bad_value_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten_port = 8443\n\n[tls]\nclient_auth = \"maybe\"\n\n[log]\nfromat = \"json\"\n",
    )
    .unwrap();
    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("3 problem(s)"), "{err}");
    for key in ["server.listen_port", "tls.client_auth", "log.fromat"] {
        assert!(err.contains(&format!("- {key}: ")), "{key} missing: {err}");
    }
}

#[test]
fn invalid_values_and_cross_field_problems_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
[tls]
client_auth = "maybe"
"#,
    )
    .unwrap();
    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("tls.client_auth"), "{err}");

    std::fs::write(
        &file,
        r#"
[limits]
max_body_bytes = 10

[[partners]]
id = "sp1"
name = "SP One"

[[templates]]
provisioning_id = "t1"
partner = "nobody"
name = "T1"
provisioning_username = "prov"
provisioning_password = "this-password-is-too-long"
"#,
    )
    .unwrap();
    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 2);
    for key in [
        "limits.max_body_bytes",
        "templates[0].partner",
        "templates[0].provisioning_password",
    ] {
        assert!(err.contains(key), "missing {key} in: {err}");
    }
}

#[test]
fn environment_overrides_are_validated_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ok.toml");
    std::fs::write(&file, "").unwrap();
    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[("BWGATE__SERVER__BOGUS", "1")],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("server.bogus"), "{err}");

    let (code, _, err) = run(
        &["config", "check", file.to_str().unwrap()],
        &[("BWGATE__LIMITS__MAX_OPERATIONS", "0")],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("limits.max_operations"), "{err}");
}

#[test]
fn example_config_documents_a_valid_configuration() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/bwgate.example.toml");
    let (code, out, err) = run(
        &["config", "check", example],
        &[],
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("OK"), "{out}");
}

#[tokio::test]
async fn environment_override_changes_the_running_server() {
    // The file says 1 MiB; the environment says 2 KiB and must win.
    let server = Server::start_with_env(
        Some("[limits]\nmax_body_bytes = 1048576\n"),
        &[],
        &[("BWGATE__LIMITS__MAX_BODY_BYTES", "2048")],
    );
    let post = bwgate::client::request(
        "POST",
        "/",
        vec![b'a'; 4096].into(),
        Some("application/xml"),
    );
    assert_eq!(server.client().request(post).await.unwrap().status, 413);
    let small = bwgate::client::request(
        "POST",
        "/",
        vec![b'a'; 1024].into(),
        Some("application/xml"),
    );
    assert_eq!(server.client().request(small).await.unwrap().status, 405);
}

#[test]
fn certs_init_writes_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&["certs", "init", "--dir", "c"], &[], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ca.crt"), "{out}");
    for f in [
        "ca.crt",
        "ca.key",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
    ] {
        assert!(dir.path().join("c").join(f).is_file(), "{f}");
    }
    let first = std::fs::read(dir.path().join("c/server.crt")).unwrap();
    let (code, _, err) = run(&["certs", "init", "--dir", "c"], &[], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("c/server.crt")).unwrap(),
        first
    );
    let (code, _, _) = run(&["certs", "init", "--dir", "c", "--force"], &[], dir.path());
    assert_eq!(code, 0);
    assert_ne!(
        std::fs::read(dir.path().join("c/server.crt")).unwrap(),
        first
    );
}

#[test]
fn published_error_table_matches_the_code() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/errors.md")).unwrap();
    let start = doc.find("<!-- error-table:begin").expect("begin marker");
    let start = start + doc[start..].find("-->").unwrap() + 3;
    let end = doc.find("<!-- error-table:end -->").expect("end marker");
    let published = doc[start..end].trim();
    let (code, out, _) = run(
        &["errors"],
        &[],
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(code, 0);
    assert_eq!(
        published,
        out.trim(),
        "docs/errors.md error table is stale: paste `bwgate errors`"
    );
}
