//! Secrets in emails (link tokens, verification codes) are never stored:
//! a queued message holds a placeholder where each goes and, beside it,
//! how to make it again from non-secret inputs (a link's purpose, fields
//! and expiry; a code's context). The mailer makes them with the server
//! key (`{data_dir}/secret.key`, not in the database) when it composes the
//! message for sending, so the database alone lets nobody activate,
//! consent or approve, and every retry of one email carries the same link
//! and code (at-least-once delivery).
//!
//! This is the secret half of an email intent: [`MailSecret`] (domain
//! data) says how to make a secret, `links` makes it ([`Reveal`]).

pub use crate::domain::email::MailSecret;
use crate::links::{LinkSigner, Reveal};

/// What stands in a stored subject or body for secret `index`: plain
/// ASCII that HTML escaping, URLs and MIME encoding leave alone.
pub fn placeholder(index: usize) -> String {
    format!("[[bwgate-secret-{index}]]")
}

/// `text` with every placeholder of `secrets` replaced by its secret.
pub fn fill(text: &str, secrets: &[MailSecret], signer: &LinkSigner) -> String {
    secrets
        .iter()
        .enumerate()
        .fold(text.to_string(), |acc, (i, secret)| {
            if acc.contains(&placeholder(i)) {
                acc.replace(&placeholder(i), &secret.reveal(signer))
            } else {
                acc
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_the_same_secrets_every_time() {
        let signer = LinkSigner::from_secret(&[3u8; 32]);
        let secrets = vec![
            MailSecret::SignedToken {
                purpose: "activation".into(),
                fields: vec!["sub-1".into(), "n".into()],
                expires_at: 99,
            },
            MailSecret::DerivedCode {
                context: "sub-1:n:0".into(),
                digits: 6,
            },
        ];
        let stored = format!("t={} c={}", placeholder(0), placeholder(1));
        let sent = fill(&stored, &secrets, &signer);
        let token = signer.issue("activation", &["sub-1", "n"], 99);
        let code = signer.derived_code("sub-1:n:0", 6);
        assert_eq!(sent, format!("t={token} c={code}"));
        assert_eq!(fill(&stored, &secrets, &signer), sent, "retries match");
        assert!(!stored.contains(&token) && !stored.contains(&code));
        // Another key makes other secrets: the inputs alone are useless.
        let other = LinkSigner::from_secret(&[4u8; 32]);
        assert_ne!(fill(&stored, &secrets, &other), sent);
        let json = serde_json::to_string(&secrets).unwrap();
        assert_eq!(
            serde_json::from_str::<Vec<MailSecret>>(&json).unwrap(),
            secrets
        );
        assert_eq!(crate::html::escape(&placeholder(7)), placeholder(7));
    }
}
