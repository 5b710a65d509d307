//! The rules of the activation flows, without I/O: untrusted email input
//! (enter an email, prove it with a code), consent to move an existing
//! account (trusted email already in use), and self-activation. The store
//! runs them inside its transaction; `provision::activation` signs links
//! and writes the emails.

use serde::{Deserialize, Serialize};

use super::error_code::ErrorCode;
use super::lifecycle::{Rejection, SubscriberStatus};

/// Why a subscriber has an activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationPurpose {
    /// Untrusted email flow: the user enters and verifies an email.
    EmailInput,
    /// Trusted email already owned by another account: the user consents
    /// to moving it.
    ConsentMigration,
    /// The user started from the template's self-activation link.
    SelfActivation,
    /// An active subscriber's new email (ModifyUser, untrusted template)
    /// waits until a code sent to it is confirmed; the account keeps the
    /// old address meanwhile.
    EmailChange,
}

impl ActivationPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            ActivationPurpose::EmailInput => "email_input",
            ActivationPurpose::ConsentMigration => "consent_migration",
            ActivationPurpose::SelfActivation => "self_activation",
            ActivationPurpose::EmailChange => "email_change",
        }
    }

    pub fn parse(s: &str) -> Option<ActivationPurpose> {
        [
            ActivationPurpose::EmailInput,
            ActivationPurpose::ConsentMigration,
            ActivationPurpose::SelfActivation,
            ActivationPurpose::EmailChange,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// Limits of the flows (`[activation]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationPolicy {
    /// How long an activation or consent link works.
    pub link_ttl_ms: i64,
    /// How long a verification code works.
    pub code_ttl_ms: i64,
    /// Wrong codes before the activation locks.
    pub max_code_attempts: u32,
    /// How long a lock lasts.
    pub lockout_ms: i64,
    /// Codes one activation may send (each email entry or resend sends one).
    pub max_codes: u32,
}

impl Default for ActivationPolicy {
    fn default() -> Self {
        ActivationPolicy {
            link_ttl_ms: 14 * 24 * 3600 * 1000,
            code_ttl_ms: 30 * 60 * 1000,
            max_code_attempts: 5,
            lockout_ms: 15 * 60 * 1000,
            max_codes: 10,
        }
    }
}

/// One subscriber's activation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    pub subscriber_id: String,
    pub purpose: ActivationPurpose,
    /// Carried by every link; a new link (resend, retry) replaces it, so
    /// older links stop working.
    pub nonce: String,
    pub link_expires_at: i64,
    /// The email entered on the portal, not yet verified.
    pub pending_email: Option<String>,
    /// Keyed hash of the current verification code.
    #[serde(skip_serializing)]
    pub code_hash: Option<String>,
    pub code_expires_at: Option<i64>,
    pub code_attempts: u32,
    pub codes_sent: u32,
    pub locked_until: Option<i64>,
    /// Set when the flow finished: the link is used up.
    pub completed_at: Option<i64>,
    pub created_at: i64,
}

impl Activation {
    pub fn new(
        subscriber_id: &str,
        purpose: ActivationPurpose,
        nonce: String,
        now: i64,
        policy: &ActivationPolicy,
    ) -> Activation {
        Activation {
            subscriber_id: subscriber_id.to_string(),
            purpose,
            nonce,
            link_expires_at: now.saturating_add(policy.link_ttl_ms),
            pending_email: None,
            code_hash: None,
            code_expires_at: None,
            code_attempts: 0,
            codes_sent: 0,
            locked_until: None,
            completed_at: None,
            created_at: now,
        }
    }

    /// A fresh link for the same flow (resend, retry): new nonce and expiry,
    /// no code, attempts reset, lock kept.
    pub fn renewed(&self, nonce: String, now: i64, policy: &ActivationPolicy) -> Activation {
        Activation {
            nonce,
            link_expires_at: now.saturating_add(policy.link_ttl_ms),
            pending_email: None,
            code_hash: None,
            code_expires_at: None,
            code_attempts: 0,
            codes_sent: 0,
            completed_at: None,
            ..self.clone()
        }
    }

    /// It changes an active subscriber's email (to `pending_email`) rather
    /// than activating a waiting one.
    pub fn changes_email(&self) -> bool {
        self.purpose == ActivationPurpose::EmailChange
            || (self.purpose == ActivationPurpose::ConsentMigration && self.pending_email.is_some())
    }

    pub fn locked(&self, now: i64) -> Option<i64> {
        self.locked_until.filter(|until| *until > now)
    }
}

fn link_invalid(why: &str) -> Rejection {
    Rejection::new(ErrorCode::ActivationLinkInvalid, why)
}

fn locked_out(until: i64, now: i64) -> Rejection {
    let minutes = ((until - now) + 59_999) / 60_000;
    Rejection::new(
        ErrorCode::TooManyAttempts,
        format!(
            "too many attempts: this activation is locked; try again in {minutes} minute{}",
            if minutes == 1 { "" } else { "s" }
        ),
    )
}

/// The link's nonce and purpose still name this activation, which is not
/// finished, and the subscriber still waits for the user — or, for a
/// change of an active subscriber's email (an [`ActivationPurpose::
/// EmailChange`], or a consent carrying the new address), is not removed.
pub fn check_link(
    activation: &Activation,
    purpose: ActivationPurpose,
    nonce: &str,
    status: SubscriberStatus,
    now: i64,
) -> Result<(), Rejection> {
    if activation.purpose != purpose {
        return Err(link_invalid("this link is for another step"));
    }
    if activation.completed_at.is_some() {
        return Err(link_invalid("this link was already used"));
    }
    if activation.nonce != nonce {
        return Err(link_invalid(
            "a newer link was sent since this one; use the newest email",
        ));
    }
    if now >= activation.link_expires_at {
        return Err(link_invalid("this link has expired"));
    }
    let changing = activation.changes_email() && status != SubscriberStatus::Removed;
    if !(status.is_pending_user() || changing) {
        return Err(Rejection::new(
            ErrorCode::WrongState,
            format!(
                "the subscriber is {} and no longer waits for activation",
                status.as_str()
            ),
        ));
    }
    Ok(())
}

/// An email was entered: a new code goes to it. `code_hash` is the keyed
/// hash of the code that will be emailed.
pub fn submit_email(
    activation: &Activation,
    email: &str,
    code_hash: String,
    now: i64,
    policy: &ActivationPolicy,
) -> Result<Activation, Rejection> {
    if let Some(until) = activation.locked(now) {
        return Err(locked_out(until, now));
    }
    if activation.codes_sent >= policy.max_codes {
        return Err(Rejection::new(
            ErrorCode::TooManyAttempts,
            "too many codes were sent for this activation; ask your administrator for a new activation link",
        ));
    }
    Ok(Activation {
        pending_email: Some(email.to_string()),
        code_hash: Some(code_hash),
        code_expires_at: Some(now.saturating_add(policy.code_ttl_ms)),
        code_attempts: 0,
        codes_sent: activation.codes_sent + 1,
        locked_until: None,
        ..activation.clone()
    })
}

/// What a code check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right code: the email is verified.
    Verified { email: String },
    /// Wrong code: the attempt is counted (store the activation); the
    /// rejection says how many are left or that it locked.
    Wrong {
        activation: Activation,
        rejection: Rejection,
    },
}

/// Checks a code against the activation. `matches` is whether the keyed
/// hash of the submitted code equals the stored one.
pub fn check_code(
    activation: &Activation,
    matches: bool,
    now: i64,
    policy: &ActivationPolicy,
) -> Result<CodeCheck, Rejection> {
    if let Some(until) = activation.locked(now) {
        return Err(locked_out(until, now));
    }
    let (Some(email), Some(expires)) = (&activation.pending_email, activation.code_expires_at)
    else {
        return Err(Rejection::new(
            ErrorCode::WrongState,
            "no code was sent yet: enter your email address first",
        ));
    };
    if now >= expires {
        return Err(Rejection::new(
            ErrorCode::VerificationCodeInvalid,
            "the code has expired: request a new one",
        ));
    }
    if matches {
        return Ok(CodeCheck::Verified {
            email: email.clone(),
        });
    }
    let attempts = activation.code_attempts + 1;
    if attempts >= policy.max_code_attempts {
        let until = now.saturating_add(policy.lockout_ms);
        return Ok(CodeCheck::Wrong {
            activation: Activation {
                code_attempts: 0,
                code_hash: None,
                code_expires_at: None,
                locked_until: Some(until),
                ..activation.clone()
            },
            rejection: locked_out(until, now),
        });
    }
    let left = policy.max_code_attempts - attempts;
    Ok(CodeCheck::Wrong {
        activation: Activation {
            code_attempts: attempts,
            ..activation.clone()
        },
        rejection: Rejection::new(
            ErrorCode::VerificationCodeInvalid,
            format!(
                "the code is wrong; {left} attempt{} left",
                if left == 1 { "" } else { "s" }
            ),
        ),
    })
}

/// "Provision admin first": a user other than the organization's admin
/// cannot finish while the admin is not active yet. A removed admin holds
/// nobody (whoever finishes next becomes the admin, see
/// `provision::activation::claim_org_admin`).
pub fn admin_first_gate(
    provision_admin_first: bool,
    subscriber_id: &str,
    admin: Option<(&str, SubscriberStatus)>,
) -> Result<(), Rejection> {
    match admin {
        Some((admin_id, status))
            if provision_admin_first
                && admin_id != subscriber_id
                && !matches!(
                    status,
                    SubscriberStatus::Provisioned
                        | SubscriberStatus::Updating
                        | SubscriberStatus::Removed
                ) =>
        {
            Err(Rejection::new(
                ErrorCode::AdminNotActive,
                "your organization's administrator has not activated yet; try again once they have",
            ))
        }
        _ => Ok(()),
    }
}

/// A subscriber and its activation, after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationView {
    pub subscriber: super::lifecycle::SubscriberRecord,
    pub activation: Activation,
    /// Emails and commands the step wrote (to wake their workers).
    pub emails_enqueued: usize,
    pub commands_written: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ActivationPolicy {
        ActivationPolicy {
            link_ttl_ms: 1_000,
            code_ttl_ms: 100,
            max_code_attempts: 3,
            lockout_ms: 500,
            max_codes: 2,
        }
    }

    fn fresh() -> Activation {
        Activation::new(
            "s1",
            ActivationPurpose::EmailInput,
            "n1".into(),
            0,
            &policy(),
        )
    }

    #[test]
    fn links_check_purpose_nonce_use_expiry_and_state() {
        let a = fresh();
        let wait = SubscriberStatus::PendingEmailInput;
        assert!(check_link(&a, ActivationPurpose::EmailInput, "n1", wait, 10).is_ok());
        let code = |r: Result<(), Rejection>| r.unwrap_err().code;
        assert_eq!(
            code(check_link(
                &a,
                ActivationPurpose::ConsentMigration,
                "n1",
                wait,
                10
            )),
            ErrorCode::ActivationLinkInvalid
        );
        assert_eq!(
            code(check_link(
                &a,
                ActivationPurpose::EmailInput,
                "n0",
                wait,
                10
            )),
            ErrorCode::ActivationLinkInvalid
        );
        assert_eq!(
            code(check_link(
                &a,
                ActivationPurpose::EmailInput,
                "n1",
                wait,
                1_000
            )),
            ErrorCode::ActivationLinkInvalid
        );
        let used = Activation {
            completed_at: Some(5),
            ..a.clone()
        };
        assert_eq!(
            code(check_link(
                &used,
                ActivationPurpose::EmailInput,
                "n1",
                wait,
                10
            )),
            ErrorCode::ActivationLinkInvalid
        );
        assert_eq!(
            code(check_link(
                &a,
                ActivationPurpose::EmailInput,
                "n1",
                SubscriberStatus::Provisioned,
                10
            )),
            ErrorCode::WrongState
        );
    }

    #[test]
    fn codes_verify_count_attempts_and_lock() {
        let p = policy();
        let a = submit_email(&fresh(), "u@x.example", "h".into(), 0, &p).unwrap();
        assert_eq!(a.codes_sent, 1);
        assert_eq!(
            check_code(&a, true, 50, &p).unwrap(),
            CodeCheck::Verified {
                email: "u@x.example".into()
            }
        );
        // Expired code.
        assert_eq!(
            check_code(&a, true, 100, &p).unwrap_err().code,
            ErrorCode::VerificationCodeInvalid
        );
        // Two wrong codes are counted, the third locks and clears the code.
        let CodeCheck::Wrong {
            activation: a,
            rejection,
        } = check_code(&a, false, 1, &p).unwrap()
        else {
            panic!("wrong code accepted")
        };
        assert!(
            rejection.message().contains("2 attempts left"),
            "{rejection:?}"
        );
        let CodeCheck::Wrong { activation: a, .. } = check_code(&a, false, 2, &p).unwrap() else {
            panic!()
        };
        let CodeCheck::Wrong {
            activation: a,
            rejection,
        } = check_code(&a, false, 3, &p).unwrap()
        else {
            panic!()
        };
        assert_eq!(rejection.code, ErrorCode::TooManyAttempts);
        assert_eq!(a.locked_until, Some(503));
        assert!(a.code_hash.is_none());
        // While locked, even the right code and a new email are refused.
        assert_eq!(
            check_code(&a, true, 10, &p).unwrap_err().code,
            ErrorCode::TooManyAttempts
        );
        let err = submit_email(&a, "u@x.example", "h2".into(), 10, &p).unwrap_err();
        assert!(err.message().contains("1 minute"), "{err:?}");
        // After the lock a new code may be sent, but only up to max_codes.
        let a = submit_email(&a, "u@x.example", "h2".into(), 503, &p).unwrap();
        assert_eq!(a.codes_sent, 2);
        assert_eq!(
            submit_email(&a, "u@x.example", "h3".into(), 600, &p)
                .unwrap_err()
                .code,
            ErrorCode::TooManyAttempts
        );
    }

    #[test]
    fn no_code_before_an_email_is_entered() {
        assert_eq!(
            check_code(&fresh(), true, 1, &policy()).unwrap_err().code,
            ErrorCode::WrongState
        );
    }

    #[test]
    fn admin_first_blocks_others_until_the_admin_is_active() {
        let pending = Some(("admin", SubscriberStatus::PendingEmailInput));
        assert_eq!(
            admin_first_gate(true, "other", pending).unwrap_err().code,
            ErrorCode::AdminNotActive
        );
        assert!(admin_first_gate(true, "admin", pending).is_ok());
        assert!(admin_first_gate(false, "other", pending).is_ok());
        assert!(admin_first_gate(true, "other", None).is_ok());
        assert!(admin_first_gate(
            true,
            "other",
            Some(("admin", SubscriberStatus::Provisioned))
        )
        .is_ok());
        // A deleted admin holds nobody.
        assert!(
            admin_first_gate(true, "other", Some(("admin", SubscriberStatus::Removed))).is_ok()
        );
    }

    #[test]
    fn renewal_rotates_the_nonce_and_keeps_the_lock() {
        let p = policy();
        let locked = Activation {
            locked_until: Some(900),
            codes_sent: 2,
            ..fresh()
        };
        let r = locked.renewed("n2".into(), 100, &p);
        assert_eq!(r.nonce, "n2");
        assert_eq!(r.link_expires_at, 1_100);
        assert_eq!(r.codes_sent, 0);
        assert_eq!(r.locked_until, Some(900));
        assert_eq!(
            ActivationPurpose::parse("consent_migration"),
            Some(ActivationPurpose::ConsentMigration)
        );
    }
}
