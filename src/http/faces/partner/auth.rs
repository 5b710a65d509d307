//! Partner admin authentication: admin tokens (argon2 hashes at rest, one
//! per partner, `[[partners]] admin_token_hash`) verified through a cache
//! so a token pays argon2 once per process, and the status page's session
//! cookie and CSRF tokens (HMAC with the server secret via `LinkSigner`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use dashmap::DashMap;
use hyper::header::{HeaderMap, AUTHORIZATION, COOKIE};
use tokio::sync::Mutex;

use crate::domain::credentials::verify_password;
use crate::links::LinkSigner;
use crate::provision::credentials::dummy_hash;
use crate::provision::verify_queue::VerifyQueue;
use crate::provision::{DataError, Queries};

/// Longest admin token accepted (longer input is refused unhashed).
pub const MAX_TOKEN_LEN: usize = 256;

/// What a presented admin token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Partner(String),
    /// Not any partner's token.
    Denied,
    /// The caller's verification queue is full; nothing was checked.
    Busy,
}

/// `(partner id, PHC)` of every partner with an admin token.
type TokenHashes = Arc<Vec<(String, String)>>;

/// Verified admin tokens, by SHA-256 of the token.
pub struct PartnerAuth {
    /// `(partner id, PHC)` of every partner with a token, read from the
    /// store again when the tenancy generation moves (another node wrote
    /// partners), with the generation they were read under.
    hashes: Mutex<Option<(u64, TokenHashes)>>,
    /// Successful verifications only: at most one entry per partner token.
    verified: DashMap<[u8; 32], (String, String)>,
    /// argon2 verifications run so far (tests check the cache with it).
    argon2_runs: Arc<AtomicUsize>,
}

impl Default for PartnerAuth {
    fn default() -> Self {
        Self::new()
    }
}

impl PartnerAuth {
    pub fn new() -> Self {
        PartnerAuth {
            hashes: Mutex::new(None),
            verified: DashMap::new(),
            argon2_runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    async fn hashes(&self, queries: &Queries) -> Result<TokenHashes, DataError> {
        let generation = queries.tenancy_generation();
        let mut cached = self.hashes.lock().await;
        if let Some((seen, hashes)) = cached.as_ref() {
            if *seen == generation {
                return Ok(Arc::clone(hashes));
            }
        }
        let fresh = Arc::new(queries.partner_admin_tokens().await?);
        *cached = Some((generation, Arc::clone(&fresh)));
        Ok(fresh)
    }

    /// The PHC hash of a partner's admin token.
    pub async fn token_hash(
        &self,
        queries: &Queries,
        partner_id: &str,
    ) -> Result<Option<String>, DataError> {
        Ok(self
            .hashes(queries)
            .await?
            .iter()
            .find(|(p, _)| p == partner_id)
            .map(|(_, h)| h.clone()))
    }

    /// The partner whose admin token `token` is, or why not. A token
    /// verified before costs a hash lookup; a new one waits in `queue`
    /// under `tenant` (the client's address: a token names no partner),
    /// then costs one argon2 verification per partner with a token until
    /// one matches. Empty or over-long tokens are refused at once.
    pub async fn partner_for_token(
        &self,
        queries: &Queries,
        queue: &VerifyQueue,
        tenant: &str,
        token: &str,
    ) -> Result<TokenCheck, DataError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            // Not a token we could have issued: refused unhashed (its
            // length says nothing about which tokens exist).
            return Ok(TokenCheck::Denied);
        }
        let hashes = self.hashes(queries).await?;
        let presented = crate::domain::credentials::secret_digest(token);
        if let Some(hit) = self.verified.get(&presented) {
            let (partner, phc) = hit.value();
            if hashes.iter().any(|(p, h)| p == partner && h == phc) {
                return Ok(TokenCheck::Partner(partner.clone()));
            }
        }
        let Ok(_permit) = queue.enter(tenant).await else {
            return Ok(TokenCheck::Busy);
        };
        // No partner has a token: still one run, so a wrong token costs
        // the same whatever is configured.
        let candidates = if hashes.is_empty() {
            Arc::new(vec![(String::new(), dummy_hash().to_string())])
        } else {
            hashes.clone()
        };
        let secret = token.to_string();
        let runs = self.argon2_runs.clone();
        let found = tokio::task::spawn_blocking(move || {
            candidates
                .iter()
                .find(|(_, phc)| {
                    runs.fetch_add(1, Ordering::Relaxed);
                    verify_password(&secret, phc).unwrap_or(false)
                })
                .cloned()
        })
        .await
        .ok()
        .flatten()
        .filter(|(partner, _)| !partner.is_empty());
        Ok(match found {
            Some((partner, phc)) => {
                self.verified.insert(presented, (partner.clone(), phc));
                TokenCheck::Partner(partner)
            }
            None => TokenCheck::Denied,
        })
    }

    /// argon2 verifications run so far.
    pub fn argon2_verifications(&self) -> usize {
        self.argon2_runs.load(Ordering::Relaxed)
    }
}

/// `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The session cookie: `__Host-` makes browsers insist on Secure, Path=/
/// and no Domain.
pub const SESSION_COOKIE: &str = "__Host-bwgate-partner";
/// A session lasts 8 hours.
pub const SESSION_TTL_SECS: i64 = 8 * 3600;
const SESSION_PURPOSE: &str = "partner-session";

/// A signed-in partner admin (from a valid session cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub partner_id: String,
    /// Bound to this session: forms carry it, POSTs check it.
    pub csrf: String,
    pub expires_at: i64,
}

/// Ties a session to the partner's current token hash: a new token (a
/// config change) ends every session issued with the old one.
fn token_fingerprint(signer: &LinkSigner, phc: &str) -> String {
    signer.keyed_hash("partner-session-token", phc)
}

fn csrf_for(signer: &LinkSigner, session_signature: &str) -> String {
    signer.keyed_hash("partner-csrf", session_signature)
}

/// A new session: the cookie value and what it stands for.
pub fn issue_session(
    signer: &LinkSigner,
    partner_id: &str,
    phc: &str,
    now: i64,
) -> (String, Session) {
    let expires_at = now.saturating_add(SESSION_TTL_SECS * 1000);
    let value = signer.issue(
        SESSION_PURPOSE,
        &[partner_id, &token_fingerprint(signer, phc)],
        expires_at,
    );
    let session =
        verify_session(signer, &value, now, |_| Some(phc.to_string())).unwrap_or_else(|| Session {
            partner_id: partner_id.to_string(),
            csrf: String::new(),
            expires_at,
        });
    (value, session)
}

/// Checks a session cookie: MAC, expiry, and that it was issued with the
/// partner's current token (`current_hash`).
pub fn verify_session(
    signer: &LinkSigner,
    value: &str,
    now: i64,
    current_hash: impl FnOnce(&str) -> Option<String>,
) -> Option<Session> {
    let signed = signer.verify(SESSION_PURPOSE, value, now).ok()?;
    let [partner_id, fingerprint] = signed.fields.as_slice() else {
        return None;
    };
    let phc = current_hash(partner_id)?;
    verify_slices_are_equal(
        token_fingerprint(signer, &phc).as_bytes(),
        fingerprint.as_bytes(),
    )
    .ok()?;
    Some(Session {
        partner_id: partner_id.clone(),
        csrf: csrf_for(signer, &signed.signature),
        expires_at: signed.expires_at,
    })
}

/// Whether a form's CSRF field matches the session's (constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    !session.csrf.is_empty()
        && verify_slices_are_equal(session.csrf.as_bytes(), presented.as_bytes()).is_ok()
}

/// The session cookie's value in a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE).then_some(value)
        })
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Strict.
pub fn set_cookie(value: &str) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={SESSION_TTL_SECS}; HttpOnly; Secure; SameSite=Strict"
    )
}

/// `Set-Cookie` that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_end_with_expiry_forgery_or_a_new_token() {
        let signer = LinkSigner::from_secret(&[3u8; 32]);
        let (value, s) = issue_session(&signer, "acme", "$argon2id$one", 1_000);
        assert_eq!(s.partner_id, "acme");
        assert_eq!(s.expires_at, 1_000 + SESSION_TTL_SECS * 1000);
        assert!(!s.csrf.is_empty());
        let hash = |p: &str| (p == "acme").then(|| "$argon2id$one".to_string());
        assert_eq!(
            verify_session(&signer, &value, 2_000, hash),
            Some(s.clone())
        );
        assert!(csrf_matches(&s, &s.csrf));
        assert!(!csrf_matches(&s, ""));
        assert!(!csrf_matches(&s, "x"));
        // Expired, forged, signed by another server, or an old token's.
        assert_eq!(verify_session(&signer, &value, s.expires_at, hash), None);
        assert_eq!(verify_session(&signer, "a.b", 2_000, hash), None);
        let other = LinkSigner::from_secret(&[4u8; 32]);
        assert_eq!(verify_session(&other, &value, 2_000, hash), None);
        let rotated = |_: &str| Some("$argon2id$two".to_string());
        assert_eq!(verify_session(&signer, &value, 2_000, rotated), None);
        assert_eq!(verify_session(&signer, &value, 2_000, |_| None), None);
        // A token for another purpose (an activation link) is no session.
        let link = signer.issue("activation", &["acme", "x"], 9_999_999);
        assert_eq!(verify_session(&signer, &link, 2_000, hash), None);
        // Two sessions have different CSRF tokens.
        let (_, s2) = issue_session(&signer, "acme", "$argon2id$one", 1_001);
        assert_ne!(s.csrf, s2.csrf);
    }

    #[tokio::test]
    async fn tokens_are_verified_once_then_served_from_the_cache() {
        use crate::domain::credentials::hash_password;
        use crate::domain::Partner;
        use crate::store::Store;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::sqlite::SqliteStore::open(
            &dir.path().join("db"),
            &crate::config::StoreConfig::default(),
        )
        .await
        .expect("store");
        for (id, token) in [("acme", "acme-token-1"), ("globex", "globex-token-1")] {
            store
                .upsert_partner(&Partner {
                    id: id.into(),
                    name: id.into(),
                    admin_email: None,
                })
                .await
                .expect("partner");
            let hash = hash_password(token).expect("hash");
            store
                .set_partner_admin_token(id, Some(&hash))
                .await
                .expect("token");
        }
        let queries = Queries::new(std::sync::Arc::new(store));
        let auth = PartnerAuth::new();
        let queue = VerifyQueue::new(2, 32);
        let who = |t: &'static str| {
            let (auth, queries, queue) = (&auth, &queries, &queue);
            async move {
                match auth
                    .partner_for_token(queries, queue, "ip:127.0.0.1", t)
                    .await
                    .expect("store")
                {
                    TokenCheck::Partner(p) => Some(p),
                    TokenCheck::Denied => None,
                    TokenCheck::Busy => panic!("busy"),
                }
            }
        };
        assert_eq!(who("globex-token-1").await.as_deref(), Some("globex"));
        let first = auth.argon2_verifications();
        assert!((1..=2).contains(&first), "{first}");
        for _ in 0..5 {
            assert_eq!(who("globex-token-1").await.as_deref(), Some("globex"));
        }
        assert_eq!(
            auth.argon2_verifications(),
            first,
            "cached: no argon2 again"
        );
        assert_eq!(who("acme-token-1").await.as_deref(), Some("acme"));
        let known = auth.argon2_verifications();
        // Wrong tokens are never cached, and oversized ones never hashed.
        assert_eq!(who("acme-token-2").await, None);
        assert_eq!(auth.argon2_verifications(), known + 2);
        assert_eq!(who("").await, None);
        let long: &'static str = Box::leak("x".repeat(MAX_TOKEN_LEN + 1).into_boxed_str());
        assert_eq!(who(long).await, None);
        assert_eq!(auth.argon2_verifications(), known + 2);
        assert_eq!(auth.verified.len(), 2);
        assert!(auth
            .token_hash(&queries, "acme")
            .await
            .expect("hash")
            .is_some());
        assert_eq!(
            auth.token_hash(&queries, "nobody").await.expect("hash"),
            None
        );
    }

    #[test]
    fn cookie_headers_and_parsing() {
        let set = set_cookie("v.w");
        for attr in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=28800",
        ] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(set.starts_with("__Host-bwgate-partner=v.w;"));
        assert!(clear_cookie().contains("Max-Age=0"));
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            "a=1; __Host-bwgate-partner=tok.en; b=2".parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some("tok.en"));
        h.insert(AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
}
