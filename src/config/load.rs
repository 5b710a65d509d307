//! Loading: TOML file (optional), then `BWGATE__SECTION__KEY` environment
//! overrides, then CLI flags. Every error names the key or variable.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_path_to_error::Segment;
use toml::{Table, Value};

use super::{ClientAuth, Config, LogFormat, StoreBackend};

pub const ENV_PREFIX: &str = "BWGATE__";

/// One problem found in the configuration, named by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{}", format_problems(.0))]
    Invalid(Vec<ConfigProblem>),
}

fn format_problems(problems: &[ConfigProblem]) -> String {
    let mut out = format!("configuration has {} problem(s):", problems.len());
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

/// Values given as command-line flags; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub portal_listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub certs_dir: Option<PathBuf>,
    pub client_auth: Option<ClientAuth>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub store_backend: Option<StoreBackend>,
    pub store_url: Option<String>,
}

/// Loads the configuration from `path` (or defaults), the process
/// environment and `flags`, without validating cross-field rules.
pub fn load(path: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
    load_from(path, std::env::vars(), flags)
}

/// As `load`, with the environment given explicitly (for tests).
pub fn load_from(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let mut table = match path {
        Some(p) => read_file(p)?,
        None => Table::new(),
    };
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    // Deterministic order: later variables never depend on iteration order.
    env.sort();
    for (var, raw) in &env {
        apply_env(&mut table, var, raw)?;
    }
    let mut config = deserialize(table)?;
    apply_flags(&mut config, flags);
    Ok(config)
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<Table>().map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// `BWGATE__TLS__CLIENT_AUTH=optional` sets `tls.client_auth`; a numeric
/// segment indexes an array of tables (`BWGATE__TEMPLATES__0__NAME`).
fn apply_env(table: &mut Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_string(),
        message,
    };
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(env_err("empty key segment".into()));
    }
    let value = parse_env_value(raw);
    let (last, parents) = match path.split_last() {
        Some(split) => split,
        None => return Err(env_err("no key after the prefix".into())),
    };
    let mut root = Value::Table(std::mem::take(table));
    let mut cursor = &mut root;
    for seg in parents {
        cursor = descend(cursor, seg).map_err(env_err)?;
    }
    match cursor {
        Value::Table(t) => {
            t.insert(last.clone(), value);
        }
        Value::Array(items) => {
            let idx: usize = last
                .parse()
                .map_err(|_| env_err(format!("'{last}' is not an array index")))?;
            if idx < items.len() {
                items[idx] = value;
            } else if idx == items.len() {
                items.push(value);
            } else {
                return Err(env_err(format!("index {idx} is past the end")));
            }
        }
        _ => return Err(env_err("cannot set a key inside a plain value".into())),
    }
    if let Value::Table(t) = root {
        *table = t;
    }
    Ok(())
}

fn descend<'a>(value: &'a mut Value, seg: &str) -> Result<&'a mut Value, String> {
    match value {
        Value::Table(t) => Ok(t
            .entry(seg.to_string())
            .or_insert_with(|| Value::Table(Table::new()))),
        Value::Array(items) => {
            let idx: usize = seg
                .parse()
                .map_err(|_| format!("'{seg}' is not an array index"))?;
            if idx == items.len() {
                items.push(Value::Table(Table::new()));
            }
            items
                .get_mut(idx)
                .ok_or_else(|| format!("index {idx} is past the end"))
        }
        _ => Err(format!("'{seg}' is inside a plain value")),
    }
}

/// A TOML literal when it parses as one (`8443`, `true`, `["a"]`), else the
/// raw text as a string (`127.0.0.1:8443`, `optional`).
fn parse_env_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

/// At most this many problems are collected from one file.
const MAX_PROBLEMS: usize = 100;

/// Deserializes the merged table and reports every unknown key and bad
/// value, not only the first: after each error the offending key (or array
/// element) is taken out and deserialization runs again, until it succeeds
/// or the error cannot be taken out. Keys are named as in the input, even
/// after an array element before them was taken out.
fn deserialize(table: Table) -> Result<Config, ConfigError> {
    let mut value = Value::Table(table);
    let mut problems = Vec::new();
    // Array elements taken out, by the array's dotted key: original indexes.
    let mut removed: HashMap<String, BTreeSet<usize>> = HashMap::new();
    loop {
        let err = match serde_path_to_error::deserialize::<_, Config>(value.clone()) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => return Err(ConfigError::Invalid(problems)),
            Err(err) => err,
        };
        let segments: Vec<Segment> = err.path().iter().cloned().collect();
        let key = original_key(&segments, &removed);
        problems.push(ConfigProblem {
            key: if key.is_empty() {
                "(top level)".to_string()
            } else {
                key
            },
            message: err.into_inner().to_string(),
        });
        if problems.len() >= MAX_PROBLEMS || !take_out(&mut value, &segments, &mut removed) {
            return Err(ConfigError::Invalid(problems));
        }
    }
}

/// The dotted key of `segments` with array indexes as in the input.
fn original_key(segments: &[Segment], removed: &HashMap<String, BTreeSet<usize>>) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Seq { index } => {
                let index = removed
                    .get(&out)
                    .map_or(*index, |gone| nth_kept(*index, gone));
                out.push_str(&format!("[{index}]"));
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// The original index of the `index`-th element still present, when the
/// original indexes in `gone` were taken out.
fn nth_kept(index: usize, gone: &BTreeSet<usize>) -> usize {
    let mut original = index;
    for &g in gone {
        if g <= original {
            original += 1;
        } else {
            break;
        }
    }
    original
}

/// Takes the value at `segments` out of `root`; false when there is
/// nothing to take out there (the error is then reported and the
/// collection stops, so it always ends).
fn take_out(
    root: &mut Value,
    segments: &[Segment],
    removed: &mut HashMap<String, BTreeSet<usize>>,
) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut cursor = root;
    for seg in parents {
        let next = match (seg, cursor) {
            (Segment::Map { key }, Value::Table(t)) => t.get_mut(key),
            (Segment::Seq { index }, Value::Array(items)) => items.get_mut(*index),
            _ => None,
        };
        match next {
            Some(v) => cursor = v,
            None => return false,
        }
    }
    match (last, cursor) {
        (Segment::Map { key }, Value::Table(t)) => t.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(items)) if *index < items.len() => {
            let array = original_key(parents, removed);
            let original = removed
                .get(&array)
                .map_or(*index, |gone| nth_kept(*index, gone));
            items.remove(*index);
            removed.entry(array).or_default().insert(original);
            true
        }
        _ => false,
    }
}

fn apply_flags(config: &mut Config, flags: &Overrides) {
    if let Some(v) = flags.listen {
        config.server.listen = v;
    }
    if let Some(v) = flags.admin_listen {
        config.server.admin_listen = v;
    }
    if let Some(v) = flags.portal_listen {
        config.server.portal_listen = v;
    }
    if let Some(v) = &flags.data_dir {
        config.server.data_dir = v.clone();
    }
    if let Some(v) = &flags.certs_dir {
        config.tls.certs_dir = v.clone();
    }
    if let Some(v) = flags.client_auth {
        config.tls.client_auth = v;
    }
    if let Some(v) = flags.log_format {
        config.log.format = v;
    }
    if let Some(v) = &flags.log_level {
        config.log.level = v.clone();
    }
    if let Some(v) = flags.store_backend {
        config.store.backend = v;
    }
    if let Some(v) = &flags.store_url {
        config.store.url = v.clone();
    }
}

/// Parses a config from TOML text (used by tests and `config check`).
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    let table = text.parse::<Table>().map_err(|e| ConfigError::Syntax {
        path: PathBuf::from("(inline)"),
        message: e.to_string(),
    })?;
    deserialize(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        match from_toml_str(text) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(problems)) => problems.into_iter().map(|p| p.key).collect(),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_reported() {
        let text = "[server]\nlisten_port = 8443\n\n[tls]\nclient_auth = \"maybe\"\nclient_atuh = \"off\"\n\n[limits]\nmax_body_bytes = \"big\"\n";
        let err = from_toml_str(text).unwrap_err();
        let ConfigError::Invalid(problems) = &err else {
            panic!("expected Invalid: {err}")
        };
        let mut got: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "limits.max_body_bytes",
                "server.listen_port",
                "tls.client_atuh",
                "tls.client_auth"
            ],
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("4 problem(s)"), "{text}");
        assert!(text.contains("unknown variant `maybe`"), "{text}");
        assert!(text.contains("unknown field `listen_port`"), "{text}");
    }

    #[test]
    fn array_elements_keep_their_input_index() {
        // templates[0] lacks mandatory fields (taken out whole); the keys of
        // templates[1] and [2] are still named by their input index.
        let tpl = |extra: &str| {
            format!(
                "[[templates]]\nprovisioning_id = \"t\"\npartner = \"p\"\nname = \"T\"\nprovisioning_username = \"u\"\nprovisioning_password = \"pw\"\n{extra}"
            )
        };
        let text = format!(
            "[[templates]]\nname = \"no id\"\n{}{}",
            tpl("bogus = 1\n"),
            tpl("[templates.settings]\ntrusted = true\n")
        );
        assert_eq!(
            keys(&text),
            [
                "templates[0]",
                "templates[1].bogus",
                "templates[2].settings.trusted"
            ]
        );
    }

    #[test]
    fn nth_kept_skips_removed_indexes() {
        let gone: BTreeSet<usize> = [0, 2, 3].into_iter().collect();
        let kept: Vec<usize> = (0..3).map(|i| nth_kept(i, &gone)).collect();
        assert_eq!(kept, [1, 4, 5]);
        assert_eq!(nth_kept(4, &BTreeSet::new()), 4);
    }
}
