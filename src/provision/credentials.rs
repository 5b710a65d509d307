//! Verified provisioning credentials. argon2 verification costs
//! milliseconds by design; a BroadWorks AS sends the same account on every
//! request, so a successful verification is remembered as a SHA-256 of the
//! presented secret, tied to the stored hash it was checked against.
//! Failures are never cached, and the expensive path goes through the
//! shared per-tenant `VerifyQueue`, so wrong passwords cannot take every
//! core nor delay other tenants.
//!
//! A wrong user name, or no template at all (an unknown provisioningId),
//! still costs one argon2 verification, against a dummy hash with the
//! same parameters: the answer's timing does not tell whether a user name
//! or a provisioningId exists.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};
use dashmap::DashMap;
use tokio::sync::OnceCell;

use super::verify_queue::VerifyQueue;
use crate::domain::credentials::{hash_password, random_secret, verify_password};
use crate::domain::CustomerTemplate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Ok,
    /// Wrong user, wrong password, no such template, or a template
    /// without a usable hash.
    Denied,
    /// The tenant's verification queue is full; nothing was checked.
    Busy,
}

/// An argon2id hash of a random secret, made with the same parameters as
/// every stored hash (`hash_password`), verified when there is nothing
/// real to verify against.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret(20)).unwrap_or_default())
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
    /// Checks in progress, by (tenant, user name, secret): identical
    /// requests arriving together (every connection of a starting AS) wait
    /// for the first one's answer instead of taking queue places.
    flights: DashMap<[u8; 32], Arc<OnceCell<AuthResult>>>,
    /// argon2 verifications run so far (the slow path), also exported as
    /// `bwgate_credential_argon2_verifications_total{result}`.
    argon2_verifications: AtomicU64,
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
            flights: DashMap::new(),
            argon2_verifications: AtomicU64::new(0),
        }
    }

    /// How many argon2 verifications (cache misses with the right user
    /// name) this cache has run.
    pub fn argon2_verifications(&self) -> u64 {
        self.argon2_verifications.load(Ordering::Relaxed)
    }

    /// Checks `username`/`password` against the template (`None`: an
    /// unknown provisioningId, always denied after the same work). The
    /// slow path waits in `queue` under `tenant`.
    pub async fn check(
        &self,
        queue: &VerifyQueue,
        tenant: &str,
        template: Option<&CustomerTemplate>,
        username: &str,
        password: &str,
    ) -> AuthResult {
        // A disabled template authenticates nobody: checked like an
        // unknown provisioningId (same work, same answer).
        let template = template.filter(|t| !t.is_disabled());
        let presented = crate::domain::credentials::secret_digest(password);
        if template.is_some_and(|t| self.is_cached(t, username, &presented)) {
            return AuthResult::Ok;
        }
        // Requests that arrive together on a cold cache (every connection
        // of a starting AS) share one check. Each argon2 run takes 19 MiB
        // that the allocator keeps in the blocking thread's arena
        // afterwards, so a herd of 32 used to leave ~200 MiB resident.
        let key = flight_key(tenant, username, &presented);
        let flight = self.flights.entry(key).or_default().clone();
        let result = *flight
            .get_or_init(|| self.verify(queue, tenant, template, username, password, presented))
            .await;
        self.flights.remove_if(&key, |_, f| Arc::ptr_eq(f, &flight));
        result
    }

    /// The slow path: a place in the tenant's queue, then argon2.
    async fn verify(
        &self,
        queue: &VerifyQueue,
        tenant: &str,
        template: Option<&CustomerTemplate>,
        username: &str,
        password: &str,
        presented: [u8; 32],
    ) -> AuthResult {
        let Ok(_permit) = queue.enter(tenant).await else {
            return AuthResult::Busy;
        };
        if template.is_some_and(|t| self.is_cached(t, username, &presented)) {
            return AuthResult::Ok;
        }
        // Whom to check against: the template's account, or the dummy when
        // the template or the user name is wrong (same cost, never true).
        let real = template.filter(|t| {
            verify_slices_are_equal(username.as_bytes(), t.provisioning_username.as_bytes()).is_ok()
        });
        let phc = match real {
            Some(t) => t.provisioning_password_hash.clone(),
            None => dummy_hash().to_string(),
        };
        let pw = password.to_string();
        self.argon2_verifications.fetch_add(1, Ordering::Relaxed);
        let verified =
            tokio::task::spawn_blocking(move || verify_password(&pw, &phc).unwrap_or(false))
                .await
                .unwrap_or(false);
        let ok = verified && real.is_some();
        metrics::counter!(
            "bwgate_credential_argon2_verifications_total",
            "result" => if ok { "ok" } else { "denied" }
        )
        .increment(1);
        let Some(template) = real.filter(|_| ok) else {
            return AuthResult::Denied;
        };
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

    /// Whether `username`/`password` were verified before against the
    /// template's current hash (a digest compare, no argon2).
    pub fn is_verified(&self, template: &CustomerTemplate, username: &str, password: &str) -> bool {
        !template.is_disabled()
            && self.is_cached(
                template,
                username,
                &crate::domain::credentials::secret_digest(password),
            )
    }

    /// Whether this exact secret was verified against the template's
    /// current hash.
    fn is_cached(&self, template: &CustomerTemplate, username: &str, presented: &[u8; 32]) -> bool {
        self.verified
            .get(&template.provisioning_id)
            .is_some_and(|v| {
                v.phc == template.provisioning_password_hash
                    && v.username == username
                    && verify_slices_are_equal(&v.secret_digest, presented).is_ok()
            })
    }
}

/// One check's identity: who asks (tenant), as whom, with which secret.
fn flight_key(tenant: &str, username: &str, presented: &[u8; 32]) -> [u8; 32] {
    let mut input = Vec::with_capacity(tenant.len() + username.len() + 34);
    input.extend_from_slice(tenant.as_bytes());
    input.push(0);
    input.extend_from_slice(username.as_bytes());
    input.push(0);
    input.extend_from_slice(presented);
    let d = digest(&SHA256, &input);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credentials::hash_password;
    use crate::domain::template::TemplateSource;
    use crate::domain::TemplateSettings;

    fn queue() -> VerifyQueue {
        VerifyQueue::new(2, 32)
    }

    fn template(password: &str) -> CustomerTemplate {
        CustomerTemplate {
            provisioning_id: "tpl".into(),
            partner_id: "p".into(),
            cluster_id: None,
            name: "T".into(),
            settings: TemplateSettings::default(),
            provisioning_username: "prov".into(),
            provisioning_password_hash: hash_password(password).expect("hash"),
            source: TemplateSource::Api,
            disabled_at: None,
        }
    }

    #[tokio::test]
    async fn good_credentials_cost_one_argon2_verification() {
        let cache = CredentialCache::new();
        let q = queue();
        let t = template("right-pass-1");
        for _ in 0..20 {
            assert_eq!(
                cache
                    .check(&q, "tpl", Some(&t), "prov", "right-pass-1")
                    .await,
                AuthResult::Ok
            );
        }
        assert_eq!(cache.argon2_verifications(), 1, "20 requests, one hash");
    }

    #[tokio::test]
    async fn a_wrong_user_or_unknown_template_costs_the_same_hash() {
        let cache = CredentialCache::new();
        let q = queue();
        let t = template("right-pass-1");
        // A wrong user name with the right password: refused after an
        // argon2 run against the dummy (no shortcut to time).
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&t), "other", "right-pass-1")
                .await,
            AuthResult::Denied
        );
        assert_eq!(cache.argon2_verifications(), 1);
        // No template at all: the same.
        assert_eq!(
            cache.check(&q, "tpl", None, "prov", "right-pass-1").await,
            AuthResult::Denied
        );
        assert_eq!(cache.argon2_verifications(), 2);
        assert!(dummy_hash().starts_with("$argon2id$"));
        let params = |h: &str| h.split('$').nth(3).map(str::to_string);
        assert_eq!(params(dummy_hash()), params(&t.provisioning_password_hash));
    }

    #[tokio::test]
    async fn a_full_tenant_queue_is_busy_without_hashing() {
        let cache = CredentialCache::new();
        let q = VerifyQueue::new(1, 1);
        let t = template("right-pass-1");
        let _held = q.enter("tpl").await.expect("slot");
        assert_eq!(
            cache.check(&q, "tpl", Some(&t), "prov", "wrong").await,
            AuthResult::Busy
        );
        assert_eq!(cache.argon2_verifications(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_requests_share_the_verification() {
        let cache = Arc::new(CredentialCache::new());
        // A queue far shorter than the herd: they share one check instead
        // of taking places (before, 60 of 64 were shed).
        let q = Arc::new(VerifyQueue::new(2, 4));
        let t = Arc::new(template("right-pass-1"));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (cache, t, q) = (cache.clone(), t.clone(), q.clone());
            tasks.spawn(async move {
                cache
                    .check(&q, "tpl", Some(&t), "prov", "right-pass-1")
                    .await
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.expect("task"), AuthResult::Ok);
        }
        // At most one per slow-path permit, not one per request.
        assert!(
            cache.argon2_verifications() <= 2,
            "{} argon2 runs for 64 concurrent requests",
            cache.argon2_verifications()
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_never_cached() {
        let cache = CredentialCache::new();
        let q = queue();
        let t = template("right-pass-1");
        for n in 1..=3 {
            assert_eq!(
                cache.check(&q, "tpl", Some(&t), "prov", "wrong-pass").await,
                AuthResult::Denied
            );
            assert_eq!(cache.argon2_verifications(), n, "verified every time");
        }
        // A cached good password does not let a wrong one through, and the
        // wrong one is still verified (and refused) every time.
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&t), "prov", "right-pass-1")
                .await,
            AuthResult::Ok
        );
        assert_eq!(cache.argon2_verifications(), 4);
        assert_eq!(
            cache.check(&q, "tpl", Some(&t), "prov", "wrong-pass").await,
            AuthResult::Denied
        );
        assert_eq!(cache.argon2_verifications(), 5);
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&t), "prov", "right-pass-1")
                .await,
            AuthResult::Ok
        );
        assert_eq!(cache.argon2_verifications(), 5, "the good one stays cached");
    }

    #[tokio::test]
    async fn a_changed_password_is_verified_again() {
        let cache = CredentialCache::new();
        let q = queue();
        let old = template("right-pass-1");
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&old), "prov", "right-pass-1")
                .await,
            AuthResult::Ok
        );
        assert_eq!(cache.argon2_verifications(), 1);
        // The template's password changes (a new hash): the cached secret
        // no longer counts, the old password is refused after a hash...
        let new = template("right-pass-2");
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&new), "prov", "right-pass-1")
                .await,
            AuthResult::Denied
        );
        assert_eq!(cache.argon2_verifications(), 2);
        // ...and the new one is verified once, then cached.
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&new), "prov", "right-pass-2")
                .await,
            AuthResult::Ok
        );
        assert_eq!(
            cache
                .check(&q, "tpl", Some(&new), "prov", "right-pass-2")
                .await,
            AuthResult::Ok
        );
        assert_eq!(cache.argon2_verifications(), 3);
    }
}
