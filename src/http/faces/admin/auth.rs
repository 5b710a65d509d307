//! The operator token of the ops listener's `/admin/...` API: argon2 PHC
//! hashes at rest (`server.operator_token_hash`, or the demo's
//! `data/ops-token.hash`), verified like partner admin tokens
//! (`partner::auth`): a token pays argon2 once per process, then a SHA-256
//! lookup; wrong tokens are never cached and pay argon2 each time, one at
//! a time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashSet;
use tokio::sync::Semaphore;

use crate::domain::credentials::verify_password;
use crate::http::partner::auth::MAX_TOKEN_LEN;

/// Verifies presented operator tokens against the configured hashes.
pub struct OperatorAuth {
    /// PHC strings; empty: the operator API is closed.
    hashes: Arc<Vec<String>>,
    /// SHA-256 of tokens that verified (at most one per hash in practice).
    verified: DashSet<[u8; 32]>,
    /// One argon2 verification at a time: a flood of wrong tokens costs at
    /// most one core, whatever the number of connections.
    slow_path: Arc<Semaphore>,
    argon2_runs: Arc<AtomicUsize>,
}

/// Why a presented token was not accepted (the metric's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that matches no configured hash (or none is configured).
    Wrong,
}

impl TokenRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Missing => "missing_token",
            TokenRefusal::Wrong => "wrong_token",
        }
    }
}

impl OperatorAuth {
    pub fn new(hashes: Vec<String>) -> Self {
        OperatorAuth {
            hashes: Arc::new(hashes),
            verified: DashSet::new(),
            slow_path: Arc::new(Semaphore::new(1)),
            argon2_runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether any operator token is configured (else every `/admin/...`
    /// request is refused).
    pub fn is_configured(&self) -> bool {
        !self.hashes.is_empty()
    }

    /// `Ok` when `presented` (the bearer token, if any) is an operator token.
    pub async fn check(&self, presented: Option<&str>) -> Result<(), TokenRefusal> {
        let token = presented.ok_or(TokenRefusal::Missing)?;
        if token.len() > MAX_TOKEN_LEN || self.hashes.is_empty() {
            return Err(TokenRefusal::Wrong);
        }
        let fingerprint = crate::domain::credentials::secret_digest(token);
        if self.verified.contains(&fingerprint) {
            return Ok(());
        }
        let Ok(_permit) = self.slow_path.clone().acquire_owned().await else {
            return Err(TokenRefusal::Wrong);
        };
        let hashes = self.hashes.clone();
        let runs = self.argon2_runs.clone();
        let secret = token.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            hashes.iter().any(|phc| {
                runs.fetch_add(1, Ordering::Relaxed);
                verify_password(&secret, phc).unwrap_or(false)
            })
        })
        .await
        .unwrap_or(false);
        if ok {
            self.verified.insert(fingerprint);
            Ok(())
        } else {
            Err(TokenRefusal::Wrong)
        }
    }

    /// argon2 verifications run so far.
    pub fn argon2_verifications(&self) -> usize {
        self.argon2_runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credentials::hash_password;

    #[tokio::test]
    async fn the_right_token_is_verified_once_and_wrong_ones_never_cached() {
        let auth = OperatorAuth::new(vec![hash_password("ops-token-1").expect("hash")]);
        assert!(auth.is_configured());
        assert_eq!(auth.check(None).await, Err(TokenRefusal::Missing));
        assert_eq!(auth.check(Some("nope")).await, Err(TokenRefusal::Wrong));
        assert_eq!(auth.argon2_verifications(), 1);
        assert_eq!(auth.check(Some("ops-token-1")).await, Ok(()));
        for _ in 0..3 {
            assert_eq!(auth.check(Some("ops-token-1")).await, Ok(()));
        }
        assert_eq!(auth.argon2_verifications(), 2, "cached after the first");
        assert_eq!(auth.check(Some("nope")).await, Err(TokenRefusal::Wrong));
        assert_eq!(
            auth.argon2_verifications(),
            3,
            "wrong tokens are not cached"
        );
        let long = "x".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(auth.check(Some(&long)).await, Err(TokenRefusal::Wrong));
        assert_eq!(auth.argon2_verifications(), 3, "oversized: never hashed");
    }

    #[tokio::test]
    async fn with_no_hash_every_token_is_refused() {
        let auth = OperatorAuth::new(Vec::new());
        assert!(!auth.is_configured());
        assert_eq!(auth.check(Some("anything")).await, Err(TokenRefusal::Wrong));
        assert_eq!(auth.argon2_verifications(), 0);
    }
}
