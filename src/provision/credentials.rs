//! Verified provisioning credentials. argon2 verification costs
//! milliseconds by design; a BroadWorks AS sends the same account on every
//! request, so a successful verification is remembered as a SHA-256 of the
//! presented secret, tied to the stored hash it was checked against.
//! Failures are never cached, and the expensive path is bounded in
//! concurrency so wrong passwords cannot take every core.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::domain::credentials::verify_password;
use crate::domain::CustomerTemplate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Ok,
    /// Wrong user, wrong password, or a template without a usable hash.
    Denied,
}

struct Verified {
    username: String,
    /// The PHC hash the secret was verified against (a changed template
    /// password invalidates the entry).
    phc: String,
    secret_digest: [u8; 32],
}

pub struct CredentialCache {
    verified: DashMap<String, Arc<Verified>>,
    slow_path: Arc<Semaphore>,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialCache {
    pub fn new() -> Self {
        CredentialCache {
            verified: DashMap::new(),
            slow_path: Arc::new(Semaphore::new(2)),
        }
    }

    pub async fn check(
        &self,
        template: &CustomerTemplate,
        username: &str,
        password: &str,
    ) -> AuthResult {
        let presented = sha256(password);
        if let Some(v) = self.verified.get(&template.provisioning_id) {
            if v.phc == template.provisioning_password_hash
                && v.username == username
                && verify_slices_are_equal(&v.secret_digest, &presented).is_ok()
            {
                return AuthResult::Ok;
            }
        }
        if username != template.provisioning_username {
            return AuthResult::Denied;
        }
        let Ok(_permit) = self.slow_path.clone().acquire_owned().await else {
            return AuthResult::Denied;
        };
        let phc = template.provisioning_password_hash.clone();
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc).unwrap_or(false))
            .await
            .unwrap_or(false);
        if !ok {
            return AuthResult::Denied;
        }
        self.verified.insert(
            template.provisioning_id.clone(),
            Arc::new(Verified {
                username: username.to_string(),
                phc: template.provisioning_password_hash.clone(),
                secret_digest: presented,
            }),
        );
        AuthResult::Ok
    }
}

fn sha256(s: &str) -> [u8; 32] {
    let d = digest(&SHA256, s.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
