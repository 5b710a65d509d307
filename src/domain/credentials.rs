//! Provisioning-account passwords: argon2id PHC strings at rest. Verifying
//! costs a hash, so callers cache successful verifications (flow-through
//! auth) instead of hashing per request.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::distr::{Alphanumeric, SampleString};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("stored password hash is not a PHC string: {0}")]
    BadHash(String),
}

pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

pub fn verify_password(password: &str, phc: &str) -> Result<bool, CredentialError> {
    let parsed = PasswordHash::new(phc).map_err(|e| CredentialError::BadHash(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// A random alphanumeric secret of `len` characters (BroadWorks caps the
/// provisioning password at 20).
pub fn random_secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// SHA-256 of a presented secret: what the credential caches remember of a
/// secret that passed argon2 (never the secret itself).
pub fn secret_digest(secret: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let h = hash_password("s3cret-pass").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret-pass", &h).unwrap());
        assert!(!verify_password("s3cret-pasS", &h).unwrap());
        assert!(verify_password("x", "not-a-hash").is_err());
    }

    #[test]
    fn random_secret_has_length_and_varies() {
        let a = random_secret(20);
        assert_eq!(a.len(), 20);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_secret(20));
    }
}
