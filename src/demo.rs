//! The embedded demo: one partner and one customer template, so `bwgate
//! serve` on a fresh checkout can be called at once. Its secrets (the
//! provisioning password, the demo partner's admin token and, unless one is
//! configured, the operator token) are kept (mode 0600) in
//! `data/demo-template.json`; the start that creates a secret prints it,
//! later starts only say where it is. Only hashes are stored elsewhere:
//! the store for the password and admin token, `data/ops-token.hash` for
//! the operator token.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::credentials::{hash_password, random_secret, verify_password, CredentialError};
use crate::domain::template::{CustomerTemplate, Partner, TemplateSettings, TemplateSource};
use crate::store::{Store, StoreError};

pub const DEMO_PARTNER_ID: &str = "demo-partner";
pub const DEMO_FILE: &str = "demo-template.json";
/// The demo operator token's argon2 hash (the token is in `DEMO_FILE`).
pub const OPS_TOKEN_HASH_FILE: &str = "ops-token.hash";
const DEMO_USERNAME: &str = "bwgate-demo-provisioning";

/// What scripts need to call the demo template (the file's exact shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoTemplate {
    pub provisioning_id: String,
    pub provisioning_url: String,
    pub username: String,
    pub password: String,
    /// The demo partner's admin token (status page, `/partner/v1` API);
    /// its argon2 hash is in the store.
    #[serde(default)]
    pub admin_token: String,
    /// The operator token (`Authorization: Bearer` on the ops listener's
    /// `/admin/...`); empty when `server.operator_token_hash` is configured.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ops_token: String,
}

/// The demo as `ensure_demo` left it: which secrets this start created
/// (only those are printed), and the operator token's hash to verify with.
#[derive(Debug, Clone)]
pub struct DemoStart {
    pub template: DemoTemplate,
    pub new_password: bool,
    pub new_admin_token: bool,
    pub new_ops_token: bool,
    /// `None` when the demo does not issue the operator token.
    pub ops_token_hash: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Credentials(#[from] CredentialError),
}

pub fn provisioning_url(base_url: &str, provisioning_id: &str) -> String {
    format!("{base_url}/uc-one/v1/provisioning/{provisioning_id}")
}

/// Reuses the demo template recorded in `data_dir` when the store still has
/// it with the same password; otherwise creates (or repairs) it. With
/// `ops_token`, also keeps (or issues) the demo operator token.
pub async fn ensure_demo(
    store: &dyn Store,
    data_dir: &Path,
    base_url: &str,
    ops_token: bool,
) -> Result<DemoStart, DemoError> {
    let file = data_dir.join(DEMO_FILE);
    let previous = read_demo_file(&file);
    let ops = if ops_token {
        let recorded = previous.as_ref().map(|p| p.ops_token.as_str());
        Some(ensure_ops_token(data_dir, recorded)?)
    } else {
        None
    };
    let (ops_token, ops_token_hash, new_ops_token) = match ops {
        Some((token, hash, new)) => (token, Some(hash), new),
        None => (String::new(), None, false),
    };
    if let Some(prev) = &previous {
        if let Some(stored) = store.template(&prev.provisioning_id).await? {
            if stored.source == TemplateSource::Demo
                && stored.provisioning_username == prev.username
                && verify_password(&prev.password, &stored.provisioning_password_hash)?
            {
                let (admin_token, new_admin_token) =
                    ensure_admin_token(store, Some(&prev.admin_token)).await?;
                let demo = DemoTemplate {
                    provisioning_url: provisioning_url(base_url, &prev.provisioning_id),
                    admin_token,
                    ops_token,
                    ..prev.clone()
                };
                write_demo_file(&file, &demo)?;
                return Ok(DemoStart {
                    template: demo,
                    new_password: false,
                    new_admin_token,
                    new_ops_token,
                    ops_token_hash,
                });
            }
        }
    }
    // Keep the id (AS settings may point at it) but issue a new password when
    // the recorded one cannot be verified any more.
    let previous_token = previous.as_ref().map(|p| p.admin_token.clone());
    let provisioning_id = previous
        .map(|p| p.provisioning_id)
        .unwrap_or_else(|| format!("demo-{}", random_secret(10).to_ascii_lowercase()));
    let password = random_secret(crate::domain::template::PROVISIONING_PASSWORD_MAX);
    store
        .upsert_partner(&Partner {
            id: DEMO_PARTNER_ID.into(),
            name: "Demo Service Provider".into(),
            admin_email: Some("partner-admin@demo.bwgate.example".into()),
        })
        .await?;
    store
        .upsert_template(&CustomerTemplate {
            provisioning_id: provisioning_id.clone(),
            partner_id: DEMO_PARTNER_ID.into(),
            cluster_id: None,
            name: "Demo template (trusted emails, enterprise mode)".into(),
            settings: TemplateSettings {
                partner_admin_email: Some("partner-admin@demo.bwgate.example".into()),
                partner_admin_name: Some("Demo Partner Admin".into()),
                ..TemplateSettings::default()
            },
            provisioning_username: DEMO_USERNAME.into(),
            provisioning_password_hash: hash_password(&password)?,
            source: TemplateSource::Demo,
            disabled_at: None,
        })
        .await?;
    let (admin_token, new_admin_token) =
        ensure_admin_token(store, previous_token.as_deref()).await?;
    let demo = DemoTemplate {
        provisioning_url: provisioning_url(base_url, &provisioning_id),
        provisioning_id,
        username: DEMO_USERNAME.into(),
        password,
        admin_token,
        ops_token,
    };
    write_demo_file(&file, &demo)?;
    Ok(DemoStart {
        template: demo,
        new_password: true,
        new_admin_token,
        new_ops_token,
        ops_token_hash,
    })
}

/// Keeps the recorded operator token while `data/ops-token.hash` still
/// verifies it; otherwise issues a new one and writes its hash (0600).
/// `(token, hash, issued now)`.
fn ensure_ops_token(
    data_dir: &Path,
    recorded: Option<&str>,
) -> Result<(String, String, bool), DemoError> {
    let hash_file = data_dir.join(OPS_TOKEN_HASH_FILE);
    let stored = std::fs::read_to_string(&hash_file)
        .ok()
        .map(|h| h.trim().to_string());
    if let (Some(token), Some(hash)) = (recorded.filter(|t| !t.is_empty()), &stored) {
        if verify_password(token, hash).unwrap_or(false) {
            return Ok((token.to_string(), hash.clone(), false));
        }
    }
    let token = random_secret(32);
    let hash = hash_password(&token)?;
    write_private(&hash_file, format!("{hash}\n").as_bytes())?;
    Ok((token, hash, true))
}

/// Keeps the recorded admin token while the store's hash still verifies
/// it; otherwise issues a new one and stores its hash. The demo partner
/// must exist. `(token, issued now)`.
async fn ensure_admin_token(
    store: &dyn Store,
    recorded: Option<&str>,
) -> Result<(String, bool), DemoError> {
    let stored = store
        .partner_admin_tokens()
        .await?
        .into_iter()
        .find(|(p, _)| p == DEMO_PARTNER_ID)
        .map(|(_, hash)| hash);
    if let (Some(token), Some(hash)) = (recorded.filter(|t| !t.is_empty()), &stored) {
        if verify_password(token, hash)? {
            return Ok((token.to_string(), false));
        }
    }
    let token = random_secret(32);
    store
        .set_partner_admin_token(DEMO_PARTNER_ID, Some(&hash_password(&token)?))
        .await?;
    Ok((token, true))
}

fn read_demo_file(path: &Path) -> Option<DemoTemplate> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(demo) => Some(demo),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable demo template file");
            None
        }
    }
}

fn write_demo_file(path: &Path, demo: &DemoTemplate) -> Result<(), DemoError> {
    let mut json = serde_json::to_string_pretty(demo).unwrap_or_default();
    json.push('\n');
    write_private(path, json.as_bytes())
}

/// Written to a temporary file (0600) and renamed, so a reader never sees a
/// half-written secret file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DemoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| DemoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
