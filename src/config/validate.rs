//! Cross-field validation, run once at start (and by `bwgate config check`).
//! Every problem is collected, so one run explains all of them.

use std::collections::HashSet;

use super::{
    ClientAuth, Config, ConfigError, ConfigProblem, SmtpConfig, SmtpSecurity, StoreBackend,
};
use crate::domain::email::{is_valid_domain, normalize_email};
use crate::domain::template::{
    is_valid_provisioning_id, PROVISIONING_PASSWORD_MAX, PROVISIONING_USERNAME_MAX,
};

struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn check(&mut self, ok: bool, key: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.add(key, message);
        }
    }
}

pub fn validate(c: &Config) -> Result<(), ConfigError> {
    let mut p = Problems(Vec::new());
    server(c, &mut p);
    tls(c, &mut p);
    license(c, &mut p);
    limits(c, &mut p);
    store(c, &mut p);
    log(c, &mut p);
    smtp(c, &mut p);
    orgs(c, &mut p);
    activation(c, &mut p);
    xsi(c, &mut p);
    broadworks(c, &mut p);
    tenancy(c, &mut p);
    if p.0.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(p.0))
    }
}

fn server(c: &Config, p: &mut Problems) {
    let s = &c.server;
    p.check(
        s.listen.port() == 0 || s.listen != s.admin_listen,
        "server.admin_listen",
        format!("must differ from server.listen ({})", s.listen),
    );
    p.check(
        s.portal_listen.port() == 0
            || (s.portal_listen != s.listen && s.portal_listen != s.admin_listen),
        "server.portal_listen",
        "must differ from server.listen and server.admin_listen",
    );
    if let Some(url) = &s.portal_public_url {
        p.check(
            url.starts_with("https://") && !url.ends_with('/'),
            "server.portal_public_url",
            "must start with https:// and have no trailing '/'",
        );
    }
    if let Some(hash) = &s.operator_token_hash {
        p.check(
            argon2::PasswordHash::new(hash).is_ok(),
            "server.operator_token_hash",
            "is not an argon2 PHC string ($argon2id$v=19$...; `bwgate hash-password` makes one)",
        );
    }
    p.check(
        s.admin_listen.ip().is_loopback()
            || s.operator_token_hash.is_some()
            || demo_creates_operator_token(c),
        "server.admin_listen",
        format!(
            "binds beyond loopback ({}) but no server.operator_token_hash is set: \
             anyone who can reach it could change state",
            s.admin_listen
        ),
    );
    if let Some(node) = &s.node_id {
        p.check(
            is_valid_node_id(node),
            "server.node_id",
            "must be 1 to 64 characters from A-Z a-z 0-9 . _ -",
        );
    }
    p.check(
        s.shutdown_grace_secs <= 3600,
        "server.shutdown_grace_secs",
        "must be at most 3600",
    );
    p.check(
        s.worker_threads <= 1024,
        "server.worker_threads",
        "must be at most 1024 (0 = one per core)",
    );
    if let Some(url) = &s.public_url {
        p.check(
            url.starts_with("https://") && !url.ends_with('/'),
            "server.public_url",
            "must start with https:// and have no trailing '/'",
        );
    }
    p.check(
        !s.data_dir.as_os_str().is_empty(),
        "server.data_dir",
        "must not be empty",
    );
}

fn tls(c: &Config, p: &mut Problems) {
    let t = &c.tls;
    for (key, path) in [("tls.cert", &t.cert), ("tls.key", &t.key)] {
        if let Some(path) = path {
            p.check(
                path.is_file(),
                key,
                format!("file {} does not exist", path.display()),
            );
        }
    }
    match (&t.cert, &t.key) {
        (Some(_), None) => p.add("tls.key", "is required when tls.cert is set"),
        (None, Some(_)) => p.add("tls.cert", "is required when tls.key is set"),
        (Some(_), Some(_)) if t.client_auth != ClientAuth::Off => p.check(
            !t.client_ca.is_empty(),
            "tls.client_ca",
            "is required when tls.cert is set and tls.client_auth is not \"off\"",
        ),
        _ => {}
    }
    for (i, ca) in t.client_ca.iter().enumerate() {
        p.check(
            ca.is_file(),
            format!("tls.client_ca[{i}]"),
            format!("file {} does not exist", ca.display()),
        );
    }
    p.check(
        (1..=3600).contains(&t.reload_interval_secs),
        "tls.reload_interval_secs",
        "must be between 1 and 3600",
    );
    p.check(
        t.expiry_warn_days <= 3650,
        "tls.expiry_warn_days",
        "must be at most 3650",
    );
    p.check(
        (1..=10_000_000).contains(&t.session_cache_size),
        "tls.session_cache_size",
        "must be between 1 and 10000000",
    );
}

fn limits(c: &Config, p: &mut Problems) {
    let l = &c.limits;
    p.check(
        (1024..=1 << 30).contains(&l.max_body_bytes),
        "limits.max_body_bytes",
        "must be between 1024 and 1073741824",
    );
    p.check(
        (1024..=1 << 30).contains(&l.max_form_body_bytes),
        "limits.max_form_body_bytes",
        "must be between 1024 and 1073741824",
    );
    // A connection must be able to take one largest document, and the
    // process one connection's worth.
    p.check(
        (l.max_body_bytes..=l.max_buffered_body_bytes).contains(&l.max_connection_body_bytes),
        "limits.max_connection_body_bytes",
        "must be between limits.max_body_bytes and limits.max_buffered_body_bytes",
    );
    p.check(
        l.max_buffered_body_bytes <= 1 << 36,
        "limits.max_buffered_body_bytes",
        "must be at most 68719476736",
    );
    // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
    p.check(
        (8192..=1 << 20).contains(&l.max_header_bytes),
        "limits.max_header_bytes",
        "must be between 8192 and 1048576",
    );
    p.check(
        (1..=1_000_000).contains(&l.max_connections),
        "limits.max_connections",
        "must be between 1 and 1000000",
    );
    for (key, v) in [
        ("limits.handshake_timeout_ms", l.handshake_timeout_ms),
        ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
        ("limits.body_read_timeout_ms", l.body_read_timeout_ms),
        ("limits.idle_timeout_ms", l.idle_timeout_ms),
        (
            "limits.http2_keepalive_interval_ms",
            l.http2_keepalive_interval_ms,
        ),
        (
            "limits.http2_keepalive_timeout_ms",
            l.http2_keepalive_timeout_ms,
        ),
    ] {
        p.check(
            (1..=3_600_000).contains(&v),
            key,
            "must be between 1 and 3600000",
        );
    }
    p.check(
        (1..=10_000).contains(&l.max_concurrent_streams),
        "limits.max_concurrent_streams",
        "must be between 1 and 10000",
    );
    p.check(
        (1..=1_000_000).contains(&l.http2_max_control_frames_per_sec),
        "limits.http2_max_control_frames_per_sec",
        "must be between 1 and 1000000",
    );
    p.check(
        (1..=10_000).contains(&l.portal_max_concurrent_streams),
        "limits.portal_max_concurrent_streams",
        "must be between 1 and 10000",
    );
    p.check(
        (4..=256).contains(&l.max_xml_depth),
        "limits.max_xml_depth",
        "must be between 4 and 256",
    );
    p.check(
        (16..=10_000_000).contains(&l.max_xml_elements),
        "limits.max_xml_elements",
        "must be between 16 and 10000000",
    );
    p.check(
        (1..=100_000).contains(&l.max_operations),
        "limits.max_operations",
        "must be between 1 and 100000",
    );
    p.check(
        (8..=1_000_000).contains(&l.max_xml_attributes),
        "limits.max_xml_attributes",
        "must be between 8 and 1000000",
    );
    p.check(
        (8..=1_000_000).contains(&l.max_xml_namespace_declarations),
        "limits.max_xml_namespace_declarations",
        "must be between 8 and 1000000",
    );
    p.check(
        l.max_parallel_xml_parses <= 1024,
        "limits.max_parallel_xml_parses",
        "must be between 0 (half the cores) and 1024",
    );
    p.check(
        l.rate_per_sec <= 1_000_000,
        "limits.rate_per_sec",
        "must be between 0 (off) and 1000000",
    );
    p.check(
        (1..=10_000_000).contains(&l.rate_burst),
        "limits.rate_burst",
        "must be between 1 and 10000000",
    );
    auth_limits(l, p);
}

fn auth_limits(l: &crate::config::LimitsConfig, p: &mut Problems) {
    for (key, v) in [
        (
            "limits.auth_max_failures_per_user",
            l.auth_max_failures_per_user,
        ),
        (
            "limits.auth_max_failures_per_address",
            l.auth_max_failures_per_address,
        ),
    ] {
        p.check(
            (1..=100_000).contains(&v),
            key,
            "must be between 1 and 100000",
        );
    }
    for (key, v) in [
        (
            "limits.auth_failure_window_secs",
            l.auth_failure_window_secs,
        ),
        ("limits.auth_lockout_secs", l.auth_lockout_secs),
        ("limits.auth_lockout_max_secs", l.auth_lockout_max_secs),
    ] {
        p.check(
            (1..=86_400).contains(&v),
            key,
            "must be between 1 and 86400",
        );
    }
    p.check(
        l.auth_lockout_max_secs >= l.auth_lockout_secs,
        "limits.auth_lockout_max_secs",
        "must be at least limits.auth_lockout_secs",
    );
    p.check(
        (1..=256).contains(&l.auth_verify_concurrency),
        "limits.auth_verify_concurrency",
        "must be between 1 and 256",
    );
    p.check(
        (1..=10_000).contains(&l.auth_verify_queue_per_tenant),
        "limits.auth_verify_queue_per_tenant",
        "must be between 1 and 10000",
    );
}

fn store(c: &Config, p: &mut Problems) {
    let s = &c.store;
    p.check(
        (1..=100_000).contains(&s.group_commit_max),
        "store.group_commit_max",
        "must be between 1 and 100000",
    );
    p.check(
        (1..=64).contains(&s.read_connections),
        "store.read_connections",
        "must be between 1 and 64",
    );
    p.check(
        !s.sqlite_path.as_os_str().is_empty(),
        "store.sqlite_path",
        "must not be empty",
    );
    p.check(
        (1..=3600).contains(&s.tenancy_check_secs),
        "store.tenancy_check_secs",
        "must be between 1 and 3600",
    );
    p.check(
        (1..=1024).contains(&s.postgres_pool_size),
        "store.postgres_pool_size",
        "must be between 1 and 1024",
    );
    p.check(
        (1..=64).contains(&s.postgres_writers),
        "store.postgres_writers",
        "must be between 1 and 64",
    );
    if s.backend == StoreBackend::Postgres {
        p.check(
            !s.url.trim().is_empty(),
            "store.url",
            "must name the PostgreSQL database when store.backend is \"postgres\"",
        );
    }
}

fn log(c: &Config, p: &mut Problems) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.level) {
        p.add("log.level", format!("is not a valid filter: {e}"));
    }
}

fn orgs(c: &Config, p: &mut Problems) {
    let o = &c.orgs;
    p.check(
        (1..=366 * 86_400).contains(&o.approval_notify_window_secs),
        "orgs.approval_notify_window_secs",
        "must be between 1 and 31622400 (366 days)",
    );
    p.check(
        (60..=366 * 86_400).contains(&o.approval_token_ttl_secs),
        "orgs.approval_token_ttl_secs",
        "must be between 60 and 31622400 (366 days)",
    );
}

fn license(c: &Config, p: &mut Problems) {
    let l = &c.license;
    let r = &l.remote;
    if l.mode == crate::config::LicenseMode::Remote {
        p.check(
            !l.serve_core,
            "license.mode",
            "a license core runs its rules itself: \"remote\" is for gateways",
        );
        match r.url.as_deref() {
            Some(url) => p.check(
                url.starts_with("https://") && url.len() > "https://".len(),
                "license.remote.url",
                "must be an https:// URL (the core is reached over mTLS)",
            ),
            None => p.add(
                "license.remote.url",
                "required when license.mode = \"remote\"",
            ),
        }
        p.check(
            r.client_cert.is_some() == r.client_key.is_some(),
            "license.remote.client_cert",
            "client_cert and client_key go together",
        );
    }
    p.check(
        (100..=300_000).contains(&r.timeout_ms),
        "license.remote.timeout_ms",
        "must be between 100 and 300000",
    );
    p.check(
        (1..=10).contains(&r.attempts),
        "license.remote.attempts",
        "must be between 1 and 10",
    );
}

fn broadworks(c: &Config, p: &mut Problems) {
    let b = &c.broadworks;
    if let Some(ca) = &b.xsp_ca_file {
        p.check(
            ca.is_file(),
            "broadworks.xsp_ca_file",
            format!("file {} does not exist", ca.display()),
        );
    }
    p.check(
        (1..=120).contains(&b.xsp_timeout_secs),
        "broadworks.xsp_timeout_secs",
        "must be between 1 and 120",
    );
}

fn xsi(c: &Config, p: &mut Problems) {
    let x = &c.xsi;
    p.check(
        !x.token_issuer.trim().is_empty() && x.token_issuer.len() <= 200,
        "xsi.token_issuer",
        "must be 1 to 200 characters",
    );
    p.check(
        (1..=8_760).contains(&x.token_lifetime_hours),
        "xsi.token_lifetime_hours",
        "must be between 1 and 8760 (one year)",
    );
    p.check(
        x.basic_cache_secs <= 3_600,
        "xsi.basic_cache_secs",
        "must be between 0 and 3600",
    );
    p.check(
        (1..=1_000).contains(&x.directory_max_results),
        "xsi.directory_max_results",
        "must be between 1 and 1000",
    );
    let e = &x.events;
    let ranges: [(&str, u64, u64, u64); 12] = [
        ("heartbeat_timeout_secs", e.heartbeat_timeout_secs, 5, 3_600),
        (
            "channel_max_expires_secs",
            e.channel_max_expires_secs,
            60,
            7 * 86_400,
        ),
        (
            "subscription_max_expires_secs",
            e.subscription_max_expires_secs,
            60,
            7 * 86_400,
        ),
        (
            "max_channels_per_owner",
            e.max_channels_per_owner as u64,
            1,
            1_000,
        ),
        ("max_channels", e.max_channels as u64, 1, 1_000_000),
        (
            "max_subscriptions_per_channel_set",
            e.max_subscriptions_per_channel_set as u64,
            1,
            10_000,
        ),
        ("channel_queue_len", e.channel_queue_len as u64, 8, 100_000),
        (
            "subscription_backlog",
            e.subscription_backlog as u64,
            8,
            100_000,
        ),
        ("ack_timeout_secs", e.ack_timeout_secs, 1, 3_600),
        (
            "max_delivery_attempts",
            u64::from(e.max_delivery_attempts),
            1,
            1_000,
        ),
        ("retention_hours", e.retention_hours, 1, 24 * 366),
        ("poll_interval_ms", e.poll_interval_ms, 10, 60_000),
    ];
    for (key, value, min, max) in ranges {
        p.check(
            (min..=max).contains(&value),
            format!("xsi.events.{key}"),
            format!("must be between {min} and {max}"),
        );
    }
    p.check(
        (100..=120_000).contains(&e.contact_timeout_ms),
        "xsi.events.contact_timeout_ms",
        "must be between 100 and 120000",
    );
}

fn activation(c: &Config, p: &mut Problems) {
    let a = &c.activation;
    p.check(
        (300..=366 * 86_400).contains(&a.link_ttl_secs),
        "activation.link_ttl_secs",
        "must be between 300 and 31622400 (366 days)",
    );
    p.check(
        (60..=86_400).contains(&a.code_ttl_secs),
        "activation.code_ttl_secs",
        "must be between 60 and 86400 (one day)",
    );
    p.check(
        (1..=20).contains(&a.max_code_attempts),
        "activation.max_code_attempts",
        "must be between 1 and 20",
    );
    p.check(
        (1..=7 * 86_400).contains(&a.lockout_secs),
        "activation.lockout_secs",
        "must be between 1 and 604800 (7 days)",
    );
    p.check(
        (1..=100).contains(&a.max_codes_per_link),
        "activation.max_codes_per_link",
        "must be between 1 and 100",
    );
}

fn smtp(c: &Config, p: &mut Problems) {
    let s = &c.smtp;
    if let Some(host) = &s.host {
        p.check(
            is_valid_host(host),
            "smtp.host",
            "must be a host name or an IP address",
        );
        p.check(
            s.from_address != SmtpConfig::default().from_address,
            "smtp.from_address",
            "must be set to the relay's accepted sender address when smtp.host is set",
        );
    }
    if s.port == Some(0) {
        p.add("smtp.port", "must be between 1 and 65535");
    }
    if let Err(e) = normalize_email(&s.from_address) {
        p.add("smtp.from_address", e.to_string());
    }
    p.check(
        !s.from_name.contains(['\r', '\n']),
        "smtp.from_name",
        "must be one line",
    );
    match (&s.username, &s.password) {
        (Some(user), Some(_)) => {
            p.check(!user.is_empty(), "smtp.username", "must not be empty");
            p.check(
                s.security != SmtpSecurity::None,
                "smtp.username",
                "credentials are only sent over TLS: set smtp.security to \"starttls\" or \"tls\"",
            );
        }
        (Some(_), None) => p.add("smtp.password", "is required when smtp.username is set"),
        (None, Some(_)) => p.add("smtp.username", "is required when smtp.password is set"),
        (None, None) => {}
    }
    if let Some(ca) = &s.ca_file {
        p.check(
            ca.is_file(),
            "smtp.ca_file",
            format!("file {} does not exist", ca.display()),
        );
        p.check(
            s.security != SmtpSecurity::None,
            "smtp.ca_file",
            "has no effect with smtp.security = \"none\"",
        );
    }
    if let Some(name) = &s.hello_name {
        p.check(
            is_valid_host(name) || is_address_literal(name),
            "smtp.hello_name",
            "must be a host name or an address literal like [192.0.2.1]",
        );
    }
    p.check(
        (1..=600).contains(&s.timeout_secs),
        "smtp.timeout_secs",
        "must be between 1 and 600",
    );
    p.check(
        (10..=3_600_000).contains(&s.retry_initial_ms),
        "smtp.retry_initial_ms",
        "must be between 10 and 3600000",
    );
    p.check(
        (1..=86_400).contains(&s.retry_max_secs),
        "smtp.retry_max_secs",
        "must be between 1 and 86400",
    );
    p.check(
        s.retry_max_secs.saturating_mul(1000) >= s.retry_initial_ms,
        "smtp.retry_max_secs",
        "must not be shorter than smtp.retry_initial_ms",
    );
    p.check(
        (1..=30 * 86_400).contains(&s.give_up_after_secs),
        "smtp.give_up_after_secs",
        "must be between 1 and 2592000 (30 days)",
    );
}

/// A DNS name (one label is fine: `localhost`, `mailhub`) or an IP address.
fn is_valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    host.len() <= 253 && (is_valid_domain(host) || host.split('.').all(label_ok))
}

/// The embedded demo runs (and generates an operator token) when it is
/// enabled and no template is configured.
pub fn demo_creates_operator_token(c: &Config) -> bool {
    c.demo.enabled && c.templates.is_empty() && c.server.operator_token_hash.is_none()
}

/// What `config check` and `serve` warn about without refusing.
pub fn warnings(c: &Config) -> Vec<ConfigProblem> {
    let mut w = Vec::new();
    let admin = c.server.admin_listen;
    if !admin.ip().is_loopback() {
        w.push(ConfigProblem {
            key: "server.admin_listen".into(),
            message: format!(
                "the ops listener ({admin}) binds beyond loopback: it is plain HTTP, so the \
                 operator token and subscriber data cross the network in clear; keep it on \
                 loopback or a private management network"
            ),
        });
    }
    if c.server.operator_token_hash.is_none() && !demo_creates_operator_token(c) {
        w.push(ConfigProblem {
            key: "server.operator_token_hash".into(),
            message: "not set: the operator API (/admin/...) refuses every request; \
                      /healthz, /readyz and /metrics stay open"
                .into(),
        });
    }
    w
}

fn is_address_literal(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok())
}

fn tenancy(c: &Config, p: &mut Problems) {
    let mut partners = HashSet::new();
    for (i, partner) in c.partners.iter().enumerate() {
        let key = format!("partners[{i}]");
        p.check(
            is_valid_provisioning_id(&partner.id),
            format!("{key}.id"),
            "must be 1-64 characters of letters, digits, '-', '_' or '.'",
        );
        p.check(
            partners.insert(partner.id.as_str()),
            format!("{key}.id"),
            format!("duplicate partner id '{}'", partner.id),
        );
        p.check(
            !partner.name.trim().is_empty(),
            format!("{key}.name"),
            "must not be empty",
        );
        if let Some(email) = &partner.admin_email {
            if let Err(e) = normalize_email(email) {
                p.add(format!("{key}.admin_email"), e.to_string());
            }
        }
        if let Some(hash) = &partner.admin_token_hash {
            p.check(
                argon2::PasswordHash::new(hash).is_ok(),
                format!("{key}.admin_token_hash"),
                "is not an argon2 PHC string ($argon2id$v=19$...)",
            );
        }
    }

    let mut clusters = HashSet::new();
    for (i, cluster) in c.clusters.iter().enumerate() {
        let key = format!("clusters[{i}]");
        p.check(
            clusters.insert(cluster.id.as_str()),
            format!("{key}.id"),
            format!("duplicate cluster id '{}'", cluster.id),
        );
        p.check(
            partners.contains(cluster.partner.as_str()),
            format!("{key}.partner"),
            format!("no partner with id '{}' is declared", cluster.partner),
        );
        if let Some(url) = &cluster.xsp_url {
            p.check(
                url.starts_with("https://"),
                format!("{key}.xsp_url"),
                "must be an https:// URL (Xsi over TLS)",
            );
        }
    }

    let mut ids = HashSet::new();
    for (i, t) in c.templates.iter().enumerate() {
        let key = format!("templates[{i}]");
        p.check(
            is_valid_provisioning_id(&t.provisioning_id),
            format!("{key}.provisioning_id"),
            "must be 1-64 characters of letters, digits, '-', '_' or '.'",
        );
        p.check(
            ids.insert(t.provisioning_id.as_str()),
            format!("{key}.provisioning_id"),
            format!("duplicate provisioning_id '{}'", t.provisioning_id),
        );
        p.check(
            partners.contains(t.partner.as_str()),
            format!("{key}.partner"),
            format!("no partner with id '{}' is declared", t.partner),
        );
        if let Some(cluster) = &t.cluster {
            p.check(
                clusters.contains(cluster.as_str()),
                format!("{key}.cluster"),
                format!("no cluster with id '{cluster}' is declared"),
            );
        }
        let user_len = t.provisioning_username.chars().count();
        p.check(
            (1..=PROVISIONING_USERNAME_MAX).contains(&user_len)
                && !t.provisioning_username.contains(':'),
            format!("{key}.provisioning_username"),
            format!("must be 1-{PROVISIONING_USERNAME_MAX} characters without ':' (BroadWorks provisioningUserId)"),
        );
        match (&t.provisioning_password, &t.provisioning_password_hash) {
            (Some(pw), None) => {
                let n = pw.chars().count();
                p.check(
                    (1..=PROVISIONING_PASSWORD_MAX).contains(&n),
                    format!("{key}.provisioning_password"),
                    format!("must be 1-{PROVISIONING_PASSWORD_MAX} characters (BroadWorks provisioningPassword)"),
                );
            }
            (None, Some(hash)) => {
                p.check(
                    argon2::PasswordHash::new(hash).is_ok(),
                    format!("{key}.provisioning_password_hash"),
                    "is not an argon2 PHC string ($argon2id$v=19$...)",
                );
            }
            (Some(_), Some(_)) => p.add(
                format!("{key}.provisioning_password"),
                "set either provisioning_password or provisioning_password_hash, not both",
            ),
            (None, None) => p.add(
                format!("{key}.provisioning_password_hash"),
                "one of provisioning_password or provisioning_password_hash is required",
            ),
        }
        if let Some(email) = &t.settings.partner_admin_email {
            if let Err(e) = normalize_email(email) {
                p.add(format!("{key}.settings.partner_admin_email"), e.to_string());
            }
        }
    }
}

/// A node id names a lease owner in logs and rows: short and printable.
pub fn is_valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
