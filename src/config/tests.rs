use std::path::Path;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn env_overrides_file_and_flags_override_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:1000\"\n[log]\nlevel = \"warn\"\n",
    );
    let cfg = load_from(
        Some(&file),
        env(&[
            ("BWGATE__SERVER__LISTEN", "127.0.0.1:2000"),
            ("BWGATE__LOG__LEVEL", "debug"),
            ("BWGATE__LIMITS__MAX_BODY_BYTES", "4096"),
            ("BWGATE__TLS__CLIENT_AUTH", "optional"),
            ("UNRELATED", "x"),
        ]),
        &Overrides {
            log_level: Some("error".into()),
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(cfg.server.listen.port(), 2000, "env beats file");
    assert_eq!(cfg.log.level, "error", "flag beats env");
    assert_eq!(cfg.limits.max_body_bytes, 4096, "numbers parse");
    assert_eq!(
        cfg.tls.client_auth,
        ClientAuth::Optional,
        "bare words are strings"
    );
}

#[test]
fn env_can_reach_into_arrays_of_tables() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "[[partners]]\nid = \"p\"\nname = \"P\"\n[[templates]]\nprovisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\nprovisioning_username = \"u\"\nprovisioning_password = \"pw\"\n",
    );
    let cfg = load_from(
        Some(&file),
        env(&[
            ("BWGATE__TEMPLATES__0__NAME", "Renamed"),
            ("BWGATE__TEMPLATES__0__SETTINGS__TRUSTED_EMAILS", "false"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(cfg.templates[0].name, "Renamed");
    assert!(!cfg.templates[0].settings.trusted_emails);
    validate(&cfg).unwrap();
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let err = from_toml_str("[tls]\nclient_atuh = \"off\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tls.client_atuh"), "{text}");
    let err = from_toml_str(
        "[[templates]]\nprovisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\nprovisioning_username = \"u\"\nprovisioning_password = \"pw\"\n[templates.settings]\ntrusted = true\n",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("templates[0].settings.trusted"),
        "{err}"
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "[server\nlisten = 1\n");
    let err = load_from(Some(&file), env(&[]), &Overrides::default()).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }));
    assert!(err.to_string().contains("c.toml"), "{err}");
}

#[test]
fn defaults_are_valid_and_problems_are_collected() {
    validate(&Config::default()).unwrap();
    let mut c = Config::default();
    c.server.admin_listen = c.server.listen;
    c.limits.max_header_bytes = 100;
    c.limits.rate_burst = 0;
    c.tls.cert = Some("/nonexistent/cert.pem".into());
    let err = validate(&c).unwrap_err();
    let ConfigError::Invalid(problems) = err else {
        panic!("expected Invalid")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "server.admin_listen",
        "limits.max_header_bytes",
        "limits.rate_burst",
        "tls.cert",
        "tls.key",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn xml_attribute_limits_are_validated() {
    let cfg = from_toml_str(
        "[limits]\nmax_xml_attributes = 7\nmax_xml_namespace_declarations = 0\nmax_parallel_xml_parses = 5000\n",
    )
    .unwrap();
    let ConfigError::Invalid(problems) = validate(&cfg).unwrap_err() else {
        panic!("expected Invalid")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "limits.max_xml_attributes",
            "limits.max_xml_namespace_declarations",
            "limits.max_parallel_xml_parses"
        ]
    );
    let ok = from_toml_str(
        "[limits]\nmax_xml_attributes = 8\nmax_xml_namespace_declarations = 1000000\nmax_parallel_xml_parses = 0\n",
    )
    .unwrap();
    validate(&ok).unwrap();
    let d = Config::default().limits;
    assert_eq!(
        (
            d.max_xml_attributes,
            d.max_xml_namespace_declarations,
            d.max_parallel_xml_parses
        ),
        (64, 64, 0)
    );
}

#[test]
fn xsi_settings_are_validated_by_key() {
    let cfg = from_toml_str(
        "[xsi]\ntoken_issuer = \" \"\ntoken_lifetime_hours = 0\nbasic_cache_secs = 3601\ndirectory_max_results = 1001\n",
    )
    .unwrap();
    let ConfigError::Invalid(problems) = validate(&cfg).unwrap_err() else {
        panic!("expected Invalid")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "xsi.token_issuer",
            "xsi.token_lifetime_hours",
            "xsi.basic_cache_secs",
            "xsi.directory_max_results"
        ]
    );
    let ok = from_toml_str(
        "[xsi]\ntoken_issuer = \"bw\"\ntoken_lifetime_hours = 8760\nbasic_cache_secs = 0\ndirectory_max_results = 1\n",
    )
    .unwrap();
    validate(&ok).unwrap();
    let bad = from_toml_str(
        "[xsi.events]\nheartbeat_timeout_secs = 1\nchannel_queue_len = 0\ncontact_timeout_ms = 10\n",
    )
    .unwrap();
    let ConfigError::Invalid(problems) = validate(&bad).unwrap_err() else {
        panic!("expected Invalid")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "xsi.events.heartbeat_timeout_secs",
            "xsi.events.channel_queue_len",
            "xsi.events.contact_timeout_ms"
        ]
    );
    let d = Config::default().xsi;
    assert_eq!(
        (
            d.token_issuer.as_str(),
            d.token_lifetime_hours,
            d.basic_cache_secs,
            d.directory_max_results
        ),
        ("BroadWorks", 720, 300, 100)
    );
}

#[test]
fn partner_admin_token_hash_must_be_an_argon2_phc_string() {
    let base = |hash: &str| {
        format!("[[partners]]\nid = \"p\"\nname = \"P\"\nadmin_token_hash = \"{hash}\"\n")
    };
    let hash = crate::domain::credentials::hash_password("partner-token").unwrap();
    let ok = from_toml_str(&base(&hash)).unwrap();
    validate(&ok).unwrap();
    assert_eq!(
        ok.partners[0].admin_token_hash.as_deref(),
        Some(hash.as_str())
    );
    let bad = from_toml_str(&base("plain-token")).unwrap();
    let text = validate(&bad).unwrap_err().to_string();
    assert!(text.contains("partners[0].admin_token_hash"), "{text}");
}

#[test]
fn provisioning_account_limits_follow_broadworks() {
    let base = |user: &str, pw: &str| {
        format!(
            "[[partners]]\nid = \"p\"\nname = \"P\"\n[[templates]]\nprovisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\nprovisioning_username = \"{user}\"\nprovisioning_password = \"{pw}\"\n"
        )
    };
    let ok = from_toml_str(&base(&"u".repeat(80), &"p".repeat(20))).unwrap();
    validate(&ok).unwrap();
    let bad = from_toml_str(&base(&"u".repeat(81), &"p".repeat(21))).unwrap();
    let text = validate(&bad).unwrap_err().to_string();
    assert!(
        text.contains("templates[0].provisioning_username"),
        "{text}"
    );
    assert!(
        text.contains("templates[0].provisioning_password"),
        "{text}"
    );
}

/// The example file must mention every key the config has, so it stays the
/// complete reference.
#[test]
fn example_file_documents_every_key() {
    let example = include_str!("../../bwgate.example.toml");
    let parsed = from_toml_str(example).unwrap();
    validate_without_files(&parsed);
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let mut missing = Vec::new();
    let toml::Value::Table(sections) = defaults else {
        unreachable!()
    };
    // Keys of a section, and of its sub-tables (`[xsi.events]`) in turn.
    fn walk(
        example: &str,
        path: &str,
        keys: &toml::map::Map<String, toml::Value>,
        missing: &mut Vec<String>,
    ) {
        for (key, value) in keys {
            let name = format!("{path}.{key}");
            match value {
                toml::Value::Table(sub) => {
                    if !example.contains(&format!("[{name}]")) {
                        missing.push(name.clone());
                    }
                    walk(example, &name, sub, missing);
                }
                _ if !example.contains(&format!("{key} =")) => missing.push(name),
                _ => {}
            }
        }
    }
    for (section, value) in sections {
        if let toml::Value::Table(keys) = value {
            walk(example, &section, &keys, &mut missing);
        }
    }
    assert!(missing.is_empty(), "undocumented keys: {missing:?}");
}

fn validate_without_files(c: &Config) {
    // The example names no files, so full validation applies.
    validate(c).unwrap();
}

#[test]
fn smtp_defaults_spool_and_ports_follow_security() {
    let c = Config::default();
    assert_eq!(c.smtp.host, None, "no relay: the spool");
    assert_eq!(c.smtp.effective_port(), 587);
    let tls = from_toml_str("[smtp]\nsecurity = \"tls\"\n").unwrap();
    assert_eq!(tls.smtp.effective_port(), 465);
    let none = from_toml_str("[smtp]\nsecurity = \"none\"\nport = 2525\n").unwrap();
    assert_eq!(none.smtp.effective_port(), 2525);
    let plain = from_toml_str("[smtp]\nsecurity = \"none\"\n").unwrap();
    assert_eq!(plain.smtp.effective_port(), 25);
}

#[test]
fn smtp_problems_are_named_by_key() {
    let problems = |text: &str| -> Vec<String> {
        let c = from_toml_str(text).unwrap();
        match validate(&c) {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| p.key).collect(),
            Err(e) => panic!("{e}"),
        }
    };
    let ok = "[smtp]\nhost = \"smtp.example.net\"\nfrom_address = \"noreply@example.net\"\nusername = \"u\"\npassword = \"p\"\nhello_name = \"gw1.example.net\"\n";
    assert_eq!(problems(ok), Vec::<String>::new());
    assert_eq!(
        problems("[smtp]\nhost = \"127.0.0.1\"\nfrom_address = \"a@example.net\"\nsecurity = \"none\"\nhello_name = \"[127.0.0.1]\"\n"),
        Vec::<String>::new()
    );
    assert_eq!(problems("[smtp]\nport = 0\n"), ["smtp.port"]);
    assert_eq!(
        problems("[smtp]\nfrom_address = \"nope\"\n"),
        ["smtp.from_address"]
    );
    assert_eq!(
        problems("[smtp]\nhost = \"smtp.example.net\"\n"),
        ["smtp.from_address"],
        "a real relay needs a real sender"
    );
    assert_eq!(problems("[smtp]\nusername = \"u\"\n"), ["smtp.password"]);
    assert_eq!(problems("[smtp]\npassword = \"p\"\n"), ["smtp.username"]);
    assert_eq!(
        problems("[smtp]\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n"),
        ["smtp.username"]
    );
    assert_eq!(
        problems("[smtp]\nca_file = \"/nonexistent/ca.pem\"\n"),
        ["smtp.ca_file"]
    );
    assert_eq!(
        problems("[smtp]\nhost = \"bad host!\"\nfrom_address = \"a@example.net\"\n"),
        ["smtp.host"]
    );
    assert_eq!(
        problems("[smtp]\nhello_name = \"not valid\"\n"),
        ["smtp.hello_name"]
    );
    assert_eq!(
        problems("[smtp]\nfrom_name = \"a\\nb\"\n"),
        ["smtp.from_name"]
    );
    assert_eq!(
        problems("[smtp]\ntimeout_secs = 0\n"),
        ["smtp.timeout_secs"]
    );
    assert_eq!(
        problems("[smtp]\nretry_initial_ms = 5000\nretry_max_secs = 1\n"),
        ["smtp.retry_max_secs"]
    );
    assert_eq!(
        problems("[smtp]\ngive_up_after_secs = 0\n"),
        ["smtp.give_up_after_secs"]
    );
    // Out of the u16 range: refused while reading, named by key.
    let err = from_toml_str("[smtp]\nport = 70000\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("smtp.port"), "{err}");
    let err = from_toml_str("[smtp]\nsecurity = \"ssl\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("smtp.security"), "{err}");
}

#[test]
fn smtp_password_comes_from_env_and_never_shows_in_debug() {
    let cfg = load_from(
        None,
        env(&[
            ("BWGATE__SMTP__HOST", "smtp.example.net"),
            ("BWGATE__SMTP__FROM_ADDRESS", "noreply@example.net"),
            ("BWGATE__SMTP__USERNAME", "relay-user"),
            ("BWGATE__SMTP__PASSWORD", "s3cret-pa55"),
        ]),
        &Overrides::default(),
    )
    .unwrap();
    validate(&cfg).unwrap();
    assert_eq!(cfg.smtp.password.as_deref(), Some("s3cret-pa55"));
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("s3cret-pa55"), "{debug}");
    assert!(debug.contains("relay-user"), "{debug}");
}

#[test]
fn ops_listener_beyond_loopback_needs_an_operator_token_and_is_warned_about() {
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$9R4EGvcgNOjUXBoHfecn2g$ctdOppSTZN9+Kyiluau8loTAjFhDOpyG02ZDOi2RNOo";
    let template = "[[partners]]\nid = \"p\"\nname = \"P\"\n\n[[templates]]\n\
                    provisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\n\
                    provisioning_username = \"u\"\nprovisioning_password = \"pw\"\n";
    let server = |listen: &str, hash: Option<&str>| {
        let hash = hash.map_or(String::new(), |h| {
            format!("operator_token_hash = \"{h}\"\n")
        });
        format!("[server]\nadmin_listen = \"{listen}\"\n{hash}\n{template}")
    };
    // Beyond loopback, no token, no demo to issue one: refused.
    let open = from_toml_str(&server("0.0.0.0:9090", None)).unwrap();
    let text = validate(&open).unwrap_err().to_string();
    assert!(text.contains("server.admin_listen"), "{text}");
    // With a token: starts, with a warning about the plain-HTTP listener.
    let guarded = from_toml_str(&server("0.0.0.0:9090", Some(HASH))).unwrap();
    validate(&guarded).unwrap();
    let w = warnings(&guarded);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].key, "server.admin_listen");
    // Loopback without a token: fine, but the operator API is closed.
    let local = from_toml_str(&server("127.0.0.1:9090", None)).unwrap();
    validate(&local).unwrap();
    let w = warnings(&local);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].key, "server.operator_token_hash");
    // The embedded demo issues a token: no refusal, no warning on loopback.
    assert!(warnings(&Config::default()).is_empty());
    let demo = from_toml_str("[server]\nadmin_listen = \"0.0.0.0:9090\"\n").unwrap();
    validate(&demo).unwrap();
    assert!(demo_creates_operator_token(&demo));
    // Not a PHC string: refused.
    let bad = from_toml_str(&server("127.0.0.1:9090", Some("plain"))).unwrap();
    let text = validate(&bad).unwrap_err().to_string();
    assert!(text.contains("server.operator_token_hash"), "{text}");
}

#[test]
fn node_id_is_optional_and_checked() {
    let mut cfg = Config::default();
    assert!(validate(&cfg).is_ok(), "unset: random per start");
    cfg.server.node_id = Some("bwgate-1.eu_west".into());
    assert!(validate(&cfg).is_ok());
    for bad in ["", "has space", "ünï", &"x".repeat(65)] {
        cfg.server.node_id = Some(bad.to_string());
        let ConfigError::Invalid(problems) = validate(&cfg).unwrap_err() else {
            panic!("invalid expected for {bad:?}");
        };
        assert!(
            problems.iter().any(|p| p.key == "server.node_id"),
            "{bad:?}: {problems:?}"
        );
    }
}

#[test]
fn configured_paths_resolve_under_the_data_dir_unless_absolute() {
    let data = Path::new("/var/lib/bwgate");
    assert_eq!(
        resolve_under(data, Path::new("bwgate.db")),
        Path::new("/var/lib/bwgate/bwgate.db")
    );
    assert_eq!(
        resolve_under(data, Path::new("/srv/db/bwgate.db")),
        Path::new("/srv/db/bwgate.db")
    );
}

#[test]
fn a_remote_license_core_needs_an_https_url_and_a_core_runs_its_rules_itself() {
    let problems = |text: &str, core: bool| -> Vec<String> {
        let mut c = from_toml_str(text).unwrap();
        c.license.serve_core = core;
        match validate(&c) {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid(p)) => p.into_iter().map(|p| p.key).collect(),
            Err(e) => panic!("{e}"),
        }
    };
    let remote = |rest: &str| format!("[license]\nmode = \"remote\"\n[license.remote]\n{rest}");
    assert_eq!(
        problems(&remote("url = \"https://core.example:8443\"\n"), false),
        Vec::<String>::new()
    );
    assert_eq!(problems(&remote(""), false), ["license.remote.url"]);
    assert_eq!(
        problems(&remote("url = \"http://core.example\"\n"), false),
        ["license.remote.url"]
    );
    assert_eq!(
        problems(
            &remote("url = \"https://c.example\"\nclient_cert = \"c.pem\"\n"),
            false
        ),
        ["license.remote.client_cert"]
    );
    assert_eq!(
        problems(&remote("url = \"https://c.example\"\n"), true),
        ["license.mode"],
        "a core forwarding to another core"
    );
    assert_eq!(
        problems("[license.remote]\ntimeout_ms = 5\nattempts = 0\n", false),
        ["license.remote.timeout_ms", "license.remote.attempts"]
    );
    let c = from_toml_str("[license]\nmode = \"bogus\"\n");
    assert!(
        c.is_err(),
        "an unknown mode is refused when the file is read"
    );
}
