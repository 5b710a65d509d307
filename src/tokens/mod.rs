//! XSI tokens: the auth service's long-lived bearer tokens
//! (`GET /authService/token/{userId}`, `Authorization: Bearer <JWT>`) and
//! the 60-second login tokens of `POST …/profile/LoginToken`
//! (`Authorization: BroadWorksSSO <token>`), both ES256 JWTs signed with a
//! P-256 key the server generates at first start and keeps `0600` in the
//! data directory (`xsi-token-key.pem`). `bwgate tokens rotate-key` makes
//! a new key: the old one moves to `xsi-token-key.previous.pem` and keeps
//! verifying the tokens it signed until they expire (a server started
//! after the rotation signs with the new key). The public keys are
//! published as a JWKS for other services.
//!
//! Claims: `iss` (configurable, `[xsi] token_issuer`), `sub` (the
//! BroadWorks user id), `iat`, `exp` (seconds), `jti`, and `typ`
//! (`bearer` or `login`: a login token is not a bearer token and the
//! other way round). Revocation is the caller's: a token names a user id,
//! and a user removed (or added again later than the token) is refused by
//! `provision`'s XSI queries.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The signing key's file under the data directory.
pub const KEY_FILE: &str = "xsi-token-key.pem";
/// The key before the last rotation (verifies only).
pub const PREVIOUS_KEY_FILE: &str = "xsi-token-key.previous.pem";

/// How long a login token works (the XSI specification's 60 s).
pub const LOGIN_TOKEN_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token key file {path} is not a P-256 private key: {why}")]
    BadKey { path: PathBuf, why: String },
    #[error("could not sign a token: {0}")]
    Sign(String),
}

/// Why a presented token is refused (all answer 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("the token is not a valid JWT of this service")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is of another kind")]
    WrongKind,
    #[error("the login token was used already")]
    Used,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Bearer,
    Login,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
    typ: TokenKind,
}

/// A token that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The BroadWorks user id.
    pub user_id: String,
    /// When it was issued (unix seconds).
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A login token that checked out, and its id (`jti`): it is good once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginToken {
    pub id: String,
    pub verified: Verified,
}

/// Token settings (`[xsi]` in the config).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub bearer_lifetime_secs: i64,
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn from_pem(path: &Path, pem: &[u8]) -> Result<SigningKey, TokenError> {
        let bad = |why: String| TokenError::BadKey {
            path: path.to_path_buf(),
            why,
        };
        let encoding = EncodingKey::from_ec_pem(pem).map_err(|e| bad(e.to_string()))?;
        let mut jwk =
            Jwk::from_encoding_key(&encoding, Algorithm::ES256).map_err(|e| bad(e.to_string()))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| bad(e.to_string()))?;
        let thumbprint = jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
        let kid: String = thumbprint.chars().take(16).collect();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            kid,
            encoding,
            decoding,
            jwk,
        })
    }
}

/// Signs and checks XSI tokens.
pub struct TokenIssuer {
    current: SigningKey,
    previous: Option<SigningKey>,
    settings: TokenSettings,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.current.kid)
            .field("previous", &self.previous.as_ref().map(|k| &k.kid))
            .finish()
    }
}

fn read_key(path: &Path) -> Result<Option<SigningKey>, TokenError> {
    match std::fs::read(path) {
        Ok(pem) => {
            tighten(path)?;
            SigningKey::from_pem(path, &pem).map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TokenError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A key file readable by its owner only (a copy made with a wide mode is
/// tightened, as the link secret is).
fn tighten(path: &Path) -> Result<(), TokenError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let io = |source| TokenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    Ok(())
}

/// Writes a new P-256 key (PKCS#8 PEM) at `path`, created `0600`, never
/// over an existing file.
fn create_key(path: &Path) -> Result<(), TokenError> {
    use std::io::Write;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| TokenError::Sign(e.to_string()))?;
    let pem = key.serialize_pem();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = opts.open(path).map_err(io)?;
    file.write_all(pem.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

impl TokenIssuer {
    /// The keys in `data_dir`; the signing key is created on first start.
    pub fn load_or_create(data_dir: &Path, settings: TokenSettings) -> Result<Self, TokenError> {
        let path = data_dir.join(KEY_FILE);
        let current = match read_key(&path)? {
            Some(k) => k,
            None => {
                create_key(&path)?;
                read_key(&path)?.ok_or_else(|| TokenError::BadKey {
                    path: path.clone(),
                    why: "vanished after it was written".into(),
                })?
            }
        };
        let previous = read_key(&data_dir.join(PREVIOUS_KEY_FILE))?;
        Ok(TokenIssuer {
            current,
            previous,
            settings,
        })
    }

    /// A new signing key: the current one becomes the previous (the one
    /// before is dropped: tokens it signed stop working). Returns the new
    /// key's id. Servers pick it up when they start.
    pub fn rotate(data_dir: &Path) -> Result<String, TokenError> {
        let path = data_dir.join(KEY_FILE);
        let previous = data_dir.join(PREVIOUS_KEY_FILE);
        if path.exists() {
            std::fs::rename(&path, &previous).map_err(|source| TokenError::Io {
                path: previous.clone(),
                source,
            })?;
        }
        create_key(&path)?;
        let key = read_key(&path)?.ok_or_else(|| TokenError::BadKey {
            path: path.clone(),
            why: "vanished after it was written".into(),
        })?;
        Ok(key.kid)
    }

    /// The id (`kid`) of the key new tokens are signed with.
    pub fn key_id(&self) -> &str {
        &self.current.kid
    }

    pub fn bearer_lifetime_secs(&self) -> i64 {
        self.settings.bearer_lifetime_secs
    }

    fn issue(&self, user_id: &str, kind: TokenKind, now_secs: i64) -> Result<String, TokenError> {
        let lifetime = match kind {
            TokenKind::Bearer => self.settings.bearer_lifetime_secs,
            TokenKind::Login => LOGIN_TOKEN_SECS,
        };
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: user_id.to_string(),
            iat: now_secs,
            exp: now_secs.saturating_add(lifetime),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: kind,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.current.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// A long-lived bearer token for `user_id`.
    pub fn issue_bearer(&self, user_id: &str, now_secs: i64) -> Result<String, TokenError> {
        self.issue(user_id, TokenKind::Bearer, now_secs)
    }

    /// A 60-second, single-use login token for `user_id`.
    pub fn issue_login(&self, user_id: &str, now_secs: i64) -> Result<String, TokenError> {
        self.issue(user_id, TokenKind::Login, now_secs)
    }

    fn check(&self, token: &str, kind: TokenKind, now_secs: i64) -> Result<Claims, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Invalid)?;
        if header.alg != Algorithm::ES256 {
            return Err(Rejected::Invalid);
        }
        let key = match header.kid.as_deref() {
            Some(kid) if kid == self.current.kid => &self.current,
            Some(kid) => match &self.previous {
                Some(p) if p.kid == kid => p,
                _ => return Err(Rejected::Invalid),
            },
            None => return Err(Rejected::Invalid),
        };
        let mut validation = Validation::new(Algorithm::ES256);
        // Expiry is checked below against the caller's clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "sub"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| Rejected::Invalid)?
            .claims;
        if claims.typ != kind {
            return Err(Rejected::WrongKind);
        }
        if now_secs >= claims.exp {
            return Err(Rejected::Expired);
        }
        Ok(claims)
    }

    /// Checks a bearer token (signature, issuer, kind, expiry).
    pub fn verify_bearer(&self, token: &str, now_secs: i64) -> Result<Verified, Rejected> {
        let c = self.check(token, TokenKind::Bearer, now_secs)?;
        Ok(Verified {
            user_id: c.sub,
            issued_at: c.iat,
            expires_at: c.exp,
        })
    }

    /// Checks a login token (signature, kind, expiry) and returns it with
    /// its id: using it up is the caller's (`Provisioning::use_once`, in
    /// the store, so it works once whichever node it reaches).
    pub fn check_login(&self, token: &str, now_secs: i64) -> Result<LoginToken, Rejected> {
        let c = self.check(token, TokenKind::Login, now_secs)?;
        Ok(LoginToken {
            id: c.jti,
            verified: Verified {
                user_id: c.sub,
                issued_at: c.iat,
                expires_at: c.exp,
            },
        })
    }

    /// The public keys (current first) as a JWKS document.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: std::iter::once(&self.current)
                .chain(self.previous.as_ref())
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
