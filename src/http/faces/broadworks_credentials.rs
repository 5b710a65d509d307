//! BroadWorks credentials (user id + web portal password) checked at the
//! XSP of the subscriber's template cluster (`xsp::XspClient`), shared by
//! the portal sign-in (`portal::signin`) and XSI Basic auth (`xsi`).
//!
//! Wrong credentials and unknown users get the same answer after about the
//! same time: a refusal decided without asking the XSP waits as long as
//! XSP calls have lately taken. Guessing is limited (`http::lockout`):
//! wrong credentials count per user id and per client address in the
//! caller's realm; a locked key is refused (9027, Retry-After) before the
//! XSP is asked anything.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::ids::UserId;
use crate::domain::{CustomerTemplate, ErrorCode, Refusal};
use crate::http::lockout::{AttemptKey, KeyKind, Realm};
use crate::http::State;
use crate::xsi::Profile;
use crate::xsp::XspError;

/// BroadWorks' longest web portal password is well under this.
pub const MAX_PASSWORD: usize = 128;

/// Why credentials were not accepted, for the log and the counts.
enum Verdict {
    /// Wrong credentials as far as the caller may know; `asked_xsp` says
    /// whether the XSP took part (else the answer is padded to its time).
    Wrong {
        reason: &'static str,
        asked_xsp: bool,
    },
    /// Not the caller's fault (no XSP set up, XSP down): not counted.
    Unavailable(Refusal),
}

/// Moving average of XSP sign-in calls, in microseconds: how long a
/// refusal decided without the XSP waits, so it looks like one with it.
static XSP_MICROS: AtomicU64 = AtomicU64::new(0);
/// Padding never exceeds this, whatever the XSP's latency.
const MAX_PADDING: Duration = Duration::from_secs(3);

fn record_xsp_time(took: Duration) {
    let new = took.as_micros().min(u128::from(u64::MAX)) as u64;
    let old = XSP_MICROS.load(Ordering::Relaxed);
    let avg = if old == 0 { new } else { (old * 7 + new) / 8 };
    XSP_MICROS.store(avg, Ordering::Relaxed);
}

async fn pad_like_xsp(started: Instant) {
    let typical = Duration::from_micros(XSP_MICROS.load(Ordering::Relaxed)).min(MAX_PADDING);
    tokio::time::sleep_until((started + typical).into()).await;
}

/// Checks `user_id`/`password` at the template's XSP (`template: None`:
/// nobody with this user id may sign in here: always refused, like a
/// wrong password). Locks and counts guesses in `realm`; the profile on
/// success; `wrong()` is the caller's answer to wrong credentials.
pub async fn check(
    app: &State,
    peer: IpAddr,
    realm: Realm,
    template: Option<&CustomerTemplate>,
    user_id: &str,
    password: &str,
    wrong: fn() -> Refusal,
) -> Result<Profile, Refusal> {
    let started = Instant::now();
    let user_key: String = user_id.chars().take(200).collect::<String>().to_lowercase();
    let address = crate::http::lockout::client_address(peer);
    let keys = [
        AttemptKey {
            realm,
            scope: "",
            kind: KeyKind::User,
            value: &user_key,
        },
        AttemptKey {
            realm,
            scope: "",
            kind: KeyKind::Address,
            value: &address,
        },
    ];
    if let Err(secs) = app.lockout.check(&keys) {
        metrics::counter!("bwgate_auth_locked_refusals_total", "realm" => realm.label())
            .increment(1);
        return Err(Refusal::new(
            ErrorCode::TooManyAttempts,
            format!("too many wrong sign-ins; try again in {secs} seconds"),
        )
        .retry_after(secs));
    }
    match verify(app, template, user_id, password).await {
        Ok(profile) => {
            app.lockout.success(&keys[0]);
            Ok(profile)
        }
        Err(Verdict::Wrong { reason, asked_xsp }) => {
            tracing::info!(user_id = %user_key, %peer, reason, realm = realm.label(), "BroadWorks credentials refused");
            let _ = app.lockout.failure(&keys);
            if !asked_xsp {
                pad_like_xsp(started).await;
            }
            Err(wrong())
        }
        Err(Verdict::Unavailable(r)) => Err(r),
    }
}

/// Asks the template's XSP whether the credentials are good.
async fn verify(
    app: &State,
    template: Option<&CustomerTemplate>,
    user_id: &str,
    password: &str,
) -> Result<Profile, Verdict> {
    let wrong = |reason| Verdict::Wrong {
        reason,
        asked_xsp: false,
    };
    let Some(template) = template else {
        return Err(wrong(
            "no subscriber waits for activation with this user id",
        ));
    };
    let Ok(user_id) = UserId::parse(user_id) else {
        return Err(wrong("not a BroadWorks user id"));
    };
    if password.is_empty()
        || password.chars().count() > MAX_PASSWORD
        || password.chars().any(char::is_control)
    {
        return Err(wrong("password empty, too long or with control characters"));
    }
    let xsp_url = template
        .cluster_id
        .as_deref()
        .and_then(|id| app.config.clusters.iter().find(|c| c.id == id))
        .and_then(|c| c.xsp_url.as_deref());
    let (Some(xsp), Some(url)) = (app.xsp.as_ref(), xsp_url) else {
        return Err(Verdict::Unavailable(not_set_up()));
    };
    let asked = Instant::now();
    let answer = xsp.profile(url, user_id.as_str(), password).await;
    match answer {
        Ok(p) if p.user_id.eq_ignore_ascii_case(user_id.as_str()) => {
            record_xsp_time(asked.elapsed());
            Ok(p)
        }
        Ok(_) | Err(XspError::BadCredentials) => {
            record_xsp_time(asked.elapsed());
            Err(Verdict::Wrong {
                reason: "the XSP refused the credentials",
                asked_xsp: true,
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, xsp = url, "BroadWorks sign-in: XSP call failed");
            Err(Verdict::Unavailable(Refusal::new(
                ErrorCode::UnderMaintenance,
                "BroadWorks cannot check your credentials right now; try again in a few minutes",
            )))
        }
    }
}

pub fn not_set_up() -> Refusal {
    Refusal::new(
        ErrorCode::WrongState,
        "signing in with BroadWorks credentials is not set up for your service provider; \
use the activation link you received",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_without_the_xsp_take_as_long_as_xsp_calls() {
        // The only test touching the average: XSP calls of about 60 ms.
        for _ in 0..8 {
            record_xsp_time(Duration::from_millis(60));
        }
        let started = Instant::now();
        pad_like_xsp(started).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(55), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        // An XSP that hangs does not make every refusal hang.
        for _ in 0..64 {
            record_xsp_time(Duration::from_secs(60));
        }
        let started = Instant::now()
            .checked_sub(MAX_PADDING)
            .unwrap_or_else(Instant::now);
        pad_like_xsp(started).await;
        assert!(started.elapsed() < MAX_PADDING + Duration::from_secs(1));
    }
}
