//! Who an XSI request comes from: `Authorization: Basic` (the BroadWorks
//! user id and web portal password, checked at the XSP of the subscriber's
//! template cluster, as the portal sign-in does, then trusted for
//! `[xsi] basic_cache_secs`), `Bearer <JWT>` (the auth service's long-lived
//! token) or `BroadWorksSSO <token>` (a 60-second login token, once).
//! A user acts on itself only: the path's user must be the caller.
//!
//! A token names a user id; it stops working when the subscriber is removed
//! (the user id is gone) or the user id was given to a subscriber created
//! after the token (its `iat` is older than the subscriber).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use base64::Engine;
use dashmap::DashMap;
use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::domain::ids::UserId;
use crate::domain::lifecycle::{SubscriberRecord, SubscriberStatus};
use crate::domain::{CustomerTemplate, ErrorCode, Refusal};
use crate::http::broadworks_credentials::check;
use crate::http::lockout::Realm;
use crate::http::State;
use crate::tokens::Rejected;

/// Which scheme the caller used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Basic,
    Bearer,
    Sso,
}

/// An authenticated caller: the subscriber it is, and its template.
pub struct Caller {
    pub subscriber: SubscriberRecord,
    pub template: Arc<CustomerTemplate>,
    pub scheme: Scheme,
}

/// Basic passwords the XSP accepted lately: user id → (salted digest of
/// the password, until). Only a digest is kept, never the password.
pub struct BasicCache {
    salt: [u8; 16],
    entries: DashMap<String, (Vec<u8>, Instant)>,
    ttl: Duration,
}

impl BasicCache {
    pub fn new(ttl: Duration) -> BasicCache {
        BasicCache {
            salt: rand::random(),
            entries: DashMap::new(),
            ttl,
        }
    }

    fn digest(&self, user: &str, password: &str) -> Vec<u8> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(password.as_bytes());
        ctx.finish().as_ref().to_vec()
    }

    fn hit(&self, user: &str, password: &str) -> bool {
        let Some(entry) = self.entries.get(user) else {
            return false;
        };
        let (digest, until) = entry.value();
        Instant::now() < *until && *digest == self.digest(user, password)
    }

    fn remember(&self, user: &str, password: &str) {
        if self.ttl.is_zero() {
            return;
        }
        if self.entries.len() > 100_000 {
            // Bounded: drop what expired (the rest stays).
            let now = Instant::now();
            self.entries.retain(|_, (_, until)| *until > now);
        }
        self.entries.insert(
            user.to_string(),
            (self.digest(user, password), Instant::now() + self.ttl),
        );
    }
}

pub fn unauthenticated(why: &str) -> Refusal {
    Refusal::new(ErrorCode::BadCredentials, why)
}

fn wrong_credentials() -> Refusal {
    unauthenticated("the BroadWorks user id or password is wrong")
}

fn token_refused(r: Rejected) -> Refusal {
    unauthenticated(&format!("{r}; get a new token"))
}

enum Presented {
    Basic(String, String),
    Bearer(String),
    Sso(String),
}

fn presented(headers: &HeaderMap) -> Result<Presented, Refusal> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(unauthenticated(
            "send credentials: Basic (BroadWorks user id and password), Bearer or BroadWorksSSO",
        ));
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not text"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| unauthenticated("the Basic credentials are not base64 UTF-8"))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| unauthenticated("the Basic credentials have no ':'"))?;
            Ok(Presented::Basic(user.to_string(), password.to_string()))
        }
        "bearer" if !rest.is_empty() => Ok(Presented::Bearer(rest.to_string())),
        "broadworkssso" if !rest.is_empty() => Ok(Presented::Sso(rest.to_string())),
        _ => Err(unauthenticated(
            "unsupported Authorization scheme: use Basic, Bearer or BroadWorksSSO",
        )),
    }
}

fn now_secs() -> i64 {
    crate::provision::now_millis() / 1000
}

/// The subscriber holding `user_id` (not removed) and its template.
async fn subscriber(
    state: &State,
    user_id: &str,
) -> Result<Option<(SubscriberRecord, Arc<CustomerTemplate>)>, Refusal> {
    let Ok(user_id) = UserId::parse(user_id) else {
        return Ok(None);
    };
    let Some(s) = state
        .queries
        .subscriber_by_user_id(user_id.as_str())
        .await?
    else {
        return Ok(None);
    };
    if s.status == SubscriberStatus::Removed {
        return Ok(None);
    }
    let Some(template) = state.provisioning.template(&s.provisioning_id).await? else {
        return Ok(None);
    };
    Ok(Some((s, template)))
}

/// The caller, which must be `path_user` (`None`: any authenticated
/// user). `schemes`: which ones the resource takes.
pub async fn authenticate(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
    path_user: Option<&str>,
    schemes: &[Scheme],
) -> Result<Caller, Refusal> {
    let presented = presented(headers)?;
    let tokens = state.xsi.tokens.as_deref();
    // Basic reads the subscriber first (its template names the XSP);
    // tokens name the user, read after the token checked out.
    let (user_id, scheme, issued_at, found) = match presented {
        Presented::Basic(user, password) if schemes.contains(&Scheme::Basic) => {
            let found = subscriber(state, &user).await?;
            let key = user.to_ascii_lowercase();
            if let (Some(_), true) = (&found, state.xsi.basic.hit(&key, &password)) {
                (user, Scheme::Basic, None, Some(found))
            } else {
                let template = found.as_ref().map(|(_, t)| t.as_ref());
                check(
                    state,
                    peer,
                    Realm::XsiBasic,
                    template,
                    &user,
                    &password,
                    wrong_credentials,
                )
                .await
                .map_err(|r| {
                    // "Not set up" (no XSP for the template) would say the
                    // user id exists here: answered like a wrong password.
                    if r.code == ErrorCode::WrongState {
                        wrong_credentials()
                    } else {
                        r
                    }
                })?;
                state.xsi.basic.remember(&key, &password);
                (user, Scheme::Basic, None, Some(found))
            }
        }
        Presented::Bearer(token) if schemes.contains(&Scheme::Bearer) => {
            let issuer = tokens.ok_or_else(|| unauthenticated("tokens are not available"))?;
            let v = issuer
                .verify_bearer(&token, now_secs())
                .map_err(token_refused)?;
            (v.user_id, Scheme::Bearer, Some(v.issued_at), None)
        }
        Presented::Sso(token) if schemes.contains(&Scheme::Sso) => {
            let issuer = tokens.ok_or_else(|| unauthenticated("tokens are not available"))?;
            let login = issuer
                .check_login(&token, now_secs())
                .map_err(token_refused)?;
            // Good once, whichever node it reaches.
            let first = state
                .provisioning
                .use_once(
                    &format!("login-token:{}", login.id),
                    login.verified.expires_at,
                )
                .await?;
            if !first {
                return Err(token_refused(crate::tokens::Rejected::Used));
            }
            let v = login.verified;
            (v.user_id, Scheme::Sso, Some(v.issued_at), None)
        }
        _ => {
            return Err(unauthenticated(
                "this resource does not take that Authorization scheme",
            ))
        }
    };
    let found = match found {
        Some(found) => found,
        None => subscriber(state, &user_id).await?,
    };
    let Some((subscriber, template)) = found else {
        return Err(match scheme {
            Scheme::Basic => wrong_credentials(),
            _ => unauthenticated("the token's user is not provisioned here any more"),
        });
    };
    if let Some(iat) = issued_at {
        // A user id given again to a newer subscriber: older tokens were
        // another person's.
        if iat.saturating_mul(1000) < subscriber.created_at - 1000 {
            return Err(unauthenticated(
                "the token was issued before this subscriber existed",
            ));
        }
    }
    if let Some(path_user) = path_user {
        let same = UserId::parse(path_user)
            .ok()
            .zip(subscriber.user_id.as_ref())
            .is_some_and(|(p, s)| p == *s);
        if !same {
            return Err(Refusal::new(
                ErrorCode::XsiOtherUser,
                "these credentials are another user's",
            ));
        }
    }
    Ok(Caller {
        subscriber,
        template,
        scheme,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_basic_cache_matches_the_same_password_only_and_expires() {
        let cache = BasicCache::new(Duration::from_millis(50));
        cache.remember("ann@acme.example", "pw-1");
        assert!(cache.hit("ann@acme.example", "pw-1"));
        assert!(!cache.hit("ann@acme.example", "pw-2"));
        assert!(!cache.hit("bob@acme.example", "pw-1"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!cache.hit("ann@acme.example", "pw-1"), "expired");
        let off = BasicCache::new(Duration::ZERO);
        off.remember("ann@acme.example", "pw-1");
        assert!(!off.hit("ann@acme.example", "pw-1"), "0 disables it");
    }

    #[test]
    fn authorization_schemes_are_read_without_case() {
        let mut h = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("ann@acme.example:p:w");
        h.insert(AUTHORIZATION, format!("basic {basic}").parse().unwrap());
        assert!(matches!(
            presented(&h),
            Ok(Presented::Basic(u, p)) if u == "ann@acme.example" && p == "p:w"
        ));
        h.insert(AUTHORIZATION, "Bearer abc.def.ghi".parse().unwrap());
        assert!(matches!(presented(&h), Ok(Presented::Bearer(t)) if t == "abc.def.ghi"));
        h.insert(AUTHORIZATION, "BroadWorksSSO tok".parse().unwrap());
        assert!(matches!(presented(&h), Ok(Presented::Sso(t)) if t == "tok"));
        h.insert(AUTHORIZATION, "Digest x".parse().unwrap());
        assert!(presented(&h).is_err());
        h.insert(AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(presented(&h).is_err());
        assert!(presented(&HeaderMap::new()).is_err());
    }
}
