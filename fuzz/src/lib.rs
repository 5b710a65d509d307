//! Shared pieces of the fuzz targets: the input conventions, the in-process
//! gateway the HTTP target talks to, and the checks every XML answer must
//! pass (well-formed, only XML 1.0 characters, echoed values intact).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use quick_xml::events::Event;
use quick_xml::Reader;

use bwgate::app::App;
use bwgate::config::{Config, SqliteSync};
use bwgate::domain::{CustomerTemplate, Partner, TemplateSettings};
use bwgate::http::{ConnInfo, Face, State};
use bwgate::notify::Mailer;
use bwgate::provision::Provisioning;
use bwgate::store::sqlite::SqliteStore;
use bwgate::store::{SharedStore, Store};
use bwgate::tls::PeerIdentity;

/// Flow-through input convention: an optional first line
/// `Content-Type: VALUE\n`, then the body bytes. Corpus files without that
/// line are plain XML documents.
pub fn split_content_type(data: &[u8]) -> (Option<&str>, &[u8]) {
    const PREFIX: &[u8] = b"Content-Type: ";
    if let Some(rest) = data.strip_prefix(PREFIX) {
        if let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if let Ok(ct) = std::str::from_utf8(&rest[..end]) {
                return (Some(ct), &rest[end + 1..]);
            }
        }
    }
    (None, data)
}

/// XML 1.0 `Char`. Written here again on purpose rather than taken from
/// `bwgate::xml`: the oracle must not share the code it checks.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// What an attribute or text value looks like after it went through the
/// gateway's escaping and an XML parser: characters XML cannot carry are
/// replaced by U+FFFD.
pub fn as_echoed(s: &str) -> String {
    s.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// One parsed element of an answer: local name, attributes (unescaped),
/// and its direct text (unescaped, concatenated).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub depth: usize,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses an answer the gateway produced and panics (a fuzzer finding)
/// unless it is a well-formed XML 1.0 document made of XML characters.
/// Returns its elements in document order.
pub fn check_answer_xml(xml: &str) -> Vec<Element> {
    if let Some(bad) = xml.chars().find(|c| !is_xml_char(*c)) {
        panic!("answer carries {bad:?}, which XML 1.0 does not allow:\n{xml}");
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut out: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("answer is not well-formed XML ({e}):\n{xml}"));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut el = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    depth: open.len() + 1,
                    ..Element::default()
                };
                if open.is_empty() {
                    roots += 1;
                }
                for attr in e.attributes() {
                    let attr = attr.unwrap_or_else(|err| panic!("bad attribute ({err}):\n{xml}"));
                    let value = attr
                        .unescape_value()
                        .unwrap_or_else(|err| panic!("bad attribute value ({err}):\n{xml}"));
                    el.attributes.push((
                        String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                out.push(el);
                if matches!(event, Event::Start(_)) {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .unwrap_or_else(|e| panic!("bad text ({e}):\n{xml}"));
                match open.last() {
                    Some(&i) => out[i].text.push_str(&text),
                    None => assert!(
                        text.trim().is_empty(),
                        "text outside the root element:\n{xml}"
                    ),
                }
            }
            Event::GeneralRef(r) => {
                let ch: Cow<'_, str> = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => {
                            assert!(is_xml_char(c), "reference to {c:?} in:\n{xml}");
                            Cow::Owned(c.to_string())
                        }
                        other => panic!("bad character reference {other:?}:\n{xml}"),
                    }
                } else {
                    let name: &[u8] = &r;
                    Cow::Borrowed(match name {
                        b"lt" => "<",
                        b"gt" => ">",
                        b"amp" => "&",
                        b"apos" => "'",
                        b"quot" => "\"",
                        other => panic!(
                            "reference to undeclared entity {:?}:\n{xml}",
                            String::from_utf8_lossy(other)
                        ),
                    })
                };
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&ch);
                }
            }
            Event::CData(c) => {
                if let Some(&i) = open.last() {
                    out[i].text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::DocType(_) => panic!("answer has a DOCTYPE:\n{xml}"),
        }
    }
    assert!(open.is_empty(), "answer ends inside an element:\n{xml}");
    assert_eq!(
        roots, 1,
        "answer must have exactly one root element:\n{xml}"
    );
    out
}

/// The gateway the HTTP target talks to: one per process, on a fresh
/// SQLite database, with four templates sharing the account
/// [`USERNAME`]/[`PASSWORD`].
pub struct Gateway {
    pub runtime: tokio::runtime::Runtime,
    /// The App with the HTTPS transport's state, as a listener has it.
    pub app: Arc<State>,
    pub conn: Arc<ConnInfo>,
    _dir: TempDir,
}

pub const USERNAME: &str = "fuzz";
pub const PASSWORD: &str = "fuzz-pw";
/// `trusted` (enterprise mode, trusted emails), `untrusted`, `group`
/// (group mode) and `wholesale` (always refused).
pub const TEMPLATES: [&str; 4] = [
    "fuzz-trusted",
    "fuzz-untrusted",
    "fuzz-group",
    "fuzz-wholesale",
];

/// Limits small enough that a fuzzer reaches each of them with inputs of
/// a few kilobytes.
pub fn fuzz_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = data_dir.to_path_buf();
    config.store.sqlite_synchronous = SqliteSync::Normal;
    config.store.read_connections = 2;
    config.limits.max_body_bytes = 16 * 1024;
    config.limits.max_header_bytes = 8 * 1024;
    config.limits.max_xml_depth = 8;
    config.limits.max_xml_elements = 1000;
    config.limits.max_operations = 20;
    // Time-dependent answers would make runs irreproducible.
    config.limits.rate_per_sec = 0;
    config
}

pub fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(Gateway::start)
}

impl Gateway {
    fn start() -> Gateway {
        let dir = TempDir::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = Arc::new(fuzz_config(&dir.0));
        let app = runtime.block_on(async {
            let store: SharedStore = Arc::new(
                SqliteStore::open(&dir.0.join("bwgate.db"), &config.store)
                    .await
                    .expect("open store"),
            );
            seed_tenancy(store.as_ref()).await;
            let provisioning = Provisioning::new(store.clone());
            provisioning.load_templates().await.expect("load templates");
            let mailer = Mailer::new(store.clone(), Arc::new(tokio::sync::Notify::new()));
            State::new(App::new(
                config,
                store,
                bwgate::telemetry::metrics_handle(),
                provisioning,
                mailer,
            ))
        });
        let conn = Arc::new(ConnInfo {
            face: Face::Provisioning,
            peer: SocketAddr::from(([127, 0, 0, 1], 50000)),
            client: Some(PeerIdentity {
                subject_cn: Some("bwgate-fuzz-as".into()),
                serial_hex: "01".into(),
            }),
            tls_version: "TLSv1.3",
        });
        Gateway {
            runtime,
            app,
            conn,
            _dir: dir,
        }
    }

    /// Serves `request` on a fresh in-memory connection; returns what the
    /// server wrote back.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let (answer, _ended) = self
            .runtime
            .block_on(bwgate::http::server::in_memory::exchange(
                self.app.clone(),
                self.conn.clone(),
                request,
            ));
        answer
    }
}

async fn seed_tenancy(store: &dyn Store) {
    store
        .upsert_partner(&Partner {
            id: "fuzz".into(),
            name: "Fuzz partner".into(),
            admin_email: Some("partner-admin@fuzz.example".into()),
        })
        .await
        .expect("partner");
    let hash = cheap_hash(PASSWORD);
    for id in TEMPLATES {
        let mut settings = TemplateSettings::default();
        match id {
            "fuzz-untrusted" => settings.trusted_emails = false,
            "fuzz-group" => settings.enterprise_mode = false,
            "fuzz-wholesale" => settings.wholesale = true,
            _ => {}
        }
        store
            .upsert_template(&CustomerTemplate {
                provisioning_id: id.into(),
                partner_id: "fuzz".into(),
                cluster_id: None,
                name: format!("Fuzz template {id}"),
                settings,
                provisioning_username: USERNAME.into(),
                provisioning_password_hash: hash.clone(),
                source: bwgate::domain::template::TemplateSource::Config,
                disabled_at: None,
            })
            .await
            .expect("template");
    }
}

/// An argon2id PHC string with the smallest parameters: verification
/// reads the parameters from the hash, so a wrong password (which the
/// fuzzer sends often) costs microseconds instead of the production
/// milliseconds, while still going through the real verification path.
fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).expect("argon2 params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("YndnYXRlZnV6enNhbHQ").expect("salt");
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// A per-process scratch directory under the system temp dir, removed at
/// start-up once its process is gone (libFuzzer ends with `exit`, which
/// skips destructors of statics).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let base = std::env::temp_dir();
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("bwgate-fuzz-"))
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("bwgate-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
