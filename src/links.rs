//! Signed links for people: org-attach approvals, activation, consent and
//! email verification. A token is `base64url(payload).base64url(mac)` where
//! the payload is the JSON array `[purpose, fields…, expiresAt]` and the MAC
//! is HMAC-SHA256 with the server secret in `{data_dir}/secret.key`. The
//! purpose is inside the MAC, so a token issued for one page is refused by
//! every other. Single use is the caller's business (the store records what
//! a token was used for, or rotates the nonce it carries).

use std::io::Write;
use std::path::Path;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::email::MailSecret;

/// File under `data_dir` holding the server secret (32 random bytes, 0600).
pub const SECRET_FILE: &str = "secret.key";

/// Signs and checks link tokens (and keyed hashes of short codes).
pub struct LinkSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedLink {
    pub fields: Vec<String>,
    /// Unix milliseconds.
    pub expires_at: i64,
    /// The token's MAC (base64url): identifies the token once used.
    pub signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not valid (it was altered or was not issued by this service)")]
    Invalid,
    #[error("this link has expired")]
    Expired,
}

impl LinkSigner {
    /// Names the secret without revealing it: nodes sharing a database
    /// compare this to find one that signs with another secret.
    pub fn fingerprint(&self) -> String {
        let tag = hmac::sign(&self.key, b"bwgate link secret fingerprint v1");
        tag.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn from_secret(secret: &[u8]) -> LinkSigner {
        LinkSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Loads `{data_dir}/secret.key`, creating it (0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<LinkSigner> {
        Self::load_or_create_file(&data_dir.join(SECRET_FILE))
    }

    /// Loads the secret in `path`, creating it (0600) on first use.
    pub fn load_or_create_file(path: &Path) -> std::io::Result<LinkSigner> {
        let path = path.to_path_buf();
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => {
                // Whoever reads the key can forge every link and code.
                use crate::store::private_files::{tighten_logged, FILE_MODE};
                tighten_logged(&path, FILE_MODE);
                return Ok(Self::from_secret(&bytes));
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is shorter than 32 bytes", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| std::io::Error::other("system random generator failed"))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(&secret)?;
                f.sync_all()?;
                Ok(Self::from_secret(&secret))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Self::from_secret(&std::fs::read(&path)?))
            }
            Err(e) => Err(e),
        }
    }

    fn payload(purpose: &str, fields: &[&str], expires_at: i64) -> String {
        let mut items: Vec<serde_json::Value> = Vec::with_capacity(fields.len() + 2);
        items.push(purpose.into());
        items.extend(fields.iter().map(|f| serde_json::Value::from(*f)));
        items.push(expires_at.into());
        serde_json::Value::Array(items).to_string()
    }

    /// A token for `purpose` carrying `fields`, valid until `expires_at`.
    pub fn issue(&self, purpose: &str, fields: &[&str], expires_at: i64) -> String {
        let payload = Self::payload(purpose, fields, expires_at);
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// Checks the MAC (constant time), the purpose and the expiry.
    pub fn verify(&self, purpose: &str, token: &str, now: i64) -> Result<SignedLink, LinkError> {
        let (p, s) = token.trim().split_once('.').ok_or(LinkError::Invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(s).map_err(|_| LinkError::Invalid)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| LinkError::Invalid)?;
        let items: Vec<serde_json::Value> =
            serde_json::from_slice(&payload).map_err(|_| LinkError::Invalid)?;
        let (Some(first), Some(last)) = (items.first(), items.last()) else {
            return Err(LinkError::Invalid);
        };
        if first.as_str() != Some(purpose) || items.len() < 2 {
            return Err(LinkError::Invalid);
        }
        let expires_at = last.as_i64().ok_or(LinkError::Invalid)?;
        let fields = items[1..items.len() - 1]
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or(LinkError::Invalid))
            .collect::<Result<Vec<String>, LinkError>>()?;
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok(SignedLink {
            fields,
            expires_at,
            signature: URL_SAFE_NO_PAD.encode(&tag),
        })
    }

    /// A keyed hash of a short secret (a verification code) bound to
    /// `context`: the stored value is useless without the server secret,
    /// so a copy of the database does not give away live codes.
    pub fn keyed_hash(&self, context: &str, secret: &str) -> String {
        let tag = hmac::sign(&self.key, format!("code\0{context}\0{secret}").as_bytes());
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    }
}

impl LinkSigner {
    /// A decimal code of `digits` digits (at most 18; leading zeros kept)
    /// that only the key holder can make from `context`: emails store the
    /// context, the mailer makes the code when it sends (the same on every
    /// retry) and the store keeps only [`Self::keyed_hash`] of it.
    pub fn derived_code(&self, context: &str, digits: u32) -> String {
        let digits = digits.clamp(1, 18);
        let tag = hmac::sign(&self.key, format!("derived-code\0{context}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag.as_ref()[..8]);
        // 2^64 is over 10^18 times 10^digits: the modulo bias is negligible.
        let n = u64::from_be_bytes(first) % 10u64.pow(digits);
        format!("{n:0width$}", width = digits as usize)
    }
}

/// Makes the secret an email stores the recipe of ([`MailSecret`], domain
/// data): the signing stays here. A trait so a `MailSecret` reads as
/// `secret.reveal(&signer)` and code that reveals names `links`.
pub trait Reveal {
    /// The secret itself.
    fn reveal(&self, signer: &LinkSigner) -> String;
}

impl Reveal for MailSecret {
    fn reveal(&self, signer: &LinkSigner) -> String {
        match self {
            MailSecret::SignedToken {
                purpose,
                fields,
                expires_at,
            } => {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                signer.issue(purpose, &fields, *expires_at)
            }
            MailSecret::DerivedCode { context, digits } => signer.derived_code(context, *digits),
        }
    }
}

/// Random URL-safe text (`bytes` of entropy).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // aws-lc's generator fails only if the OS has no entropy at all; the
    // fallback keeps the process alive with rand's OS-seeded generator.
    if SystemRandom::new().fill(&mut buf).is_err() {
        use rand::RngCore;
        rand::rng().fill_bytes(&mut buf);
    }
    URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_forgery_purpose_and_expiry() {
        let s = LinkSigner::from_secret(&[7u8; 32]);
        let t = s.issue("org-approval", &["org-1", "p-1"], 1_000);
        let c = s.verify("org-approval", &t, 999).expect("valid");
        assert_eq!(c.fields, ["org-1", "p-1"]);
        assert_eq!(c.expires_at, 1_000);
        assert_eq!(s.verify("org-approval", &t, 1_000), Err(LinkError::Expired));
        assert_eq!(s.verify("activation", &t, 0), Err(LinkError::Invalid));
        let other = LinkSigner::from_secret(&[8u8; 32]);
        assert_eq!(other.verify("org-approval", &t, 0), Err(LinkError::Invalid));
        // Another payload with the original MAC.
        let forged = URL_SAFE_NO_PAD.encode(br#"["org-approval","org-2","p-1",1000]"#);
        let mac = t.split_once('.').unwrap().1;
        assert_eq!(
            s.verify("org-approval", &format!("{forged}.{mac}"), 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            s.verify("org-approval", "garbage", 0),
            Err(LinkError::Invalid)
        );
        assert_eq!(s.verify("org-approval", "a.b", 0), Err(LinkError::Invalid));
    }

    #[test]
    fn secret_file_is_created_once_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = LinkSigner::load_or_create(dir.path()).unwrap();
        let b = LinkSigner::load_or_create(dir.path()).unwrap();
        let t = a.issue("x", &["o"], 10);
        assert!(b.verify("x", &t, 0).is_ok());
        assert_eq!(a.keyed_hash("s1", "123456"), b.keyed_hash("s1", "123456"));
        assert_ne!(a.keyed_hash("s1", "123456"), a.keyed_hash("s2", "123456"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(SECRET_FILE);
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            // A key an older start left readable by others is tightened.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let c = LinkSigner::load_or_create(dir.path()).unwrap();
            assert!(c.verify("x", &t, 0).is_ok(), "same key");
            assert_eq!(mode(&path), 0o600);
        }
    }

    #[test]
    fn derived_codes_need_the_key_and_differ_per_context() {
        let s = LinkSigner::from_secret(&[7u8; 32]);
        let code = s.derived_code("sub:nonce:0", 6);
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(s.derived_code("sub:nonce:0", 6), code, "repeatable");
        let others: std::collections::HashSet<String> = (1..50)
            .map(|i| s.derived_code(&format!("sub:nonce:{i}"), 6))
            .collect();
        assert!(others.len() > 40 && !others.contains(&code), "{others:?}");
        let other_key = LinkSigner::from_secret(&[8u8; 32]);
        assert_ne!(other_key.derived_code("sub:nonce:0", 6), code);
    }

    #[test]
    fn random_tokens_have_fixed_width_and_vary() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(16).len(), 22);
    }
}
