//! Email address syntax (the addr-spec subset real mail systems accept:
//! dot-atom local part, DNS host name domain). No quoted local parts or
//! IP-literal domains: BroadWorks and Webex accounts never use them.

pub const EMAIL_MAX_LEN: usize = 254;
const LOCAL_MAX_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address is longer than {EMAIL_MAX_LEN} characters")]
    TooLong,
    #[error("email address must contain exactly one '@'")]
    NoSingleAt,
    #[error("local part of the email address is invalid")]
    BadLocalPart,
    #[error("domain of the email address is invalid")]
    BadDomain,
}

/// Checks syntax and returns the address with the domain lower-cased (the
/// local part is kept as given: it is case-sensitive in principle).
pub fn normalize_email(raw: &str) -> Result<String, EmailError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(EmailError::Empty);
    }
    if s.len() > EMAIL_MAX_LEN {
        return Err(EmailError::TooLong);
    }
    let mut parts = s.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        _ => return Err(EmailError::NoSingleAt),
    };
    if !valid_local(local) {
        return Err(EmailError::BadLocalPart);
    }
    if !is_valid_domain(domain) {
        return Err(EmailError::BadDomain);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= LOCAL_MAX_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || SPECIALS.contains(&b))
}

/// A DNS host name with at least two labels and an alphabetic TLD.
pub fn is_valid_domain(domain: &str) -> bool {
    if domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let tld = labels[labels.len() - 1];
    labels.iter().all(|l| label_ok(l))
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_domain() {
        assert_eq!(
            normalize_email(" Jane.Doe+im@Example.COM ").as_deref(),
            Ok("Jane.Doe+im@example.com")
        );
        assert!(normalize_email("a@b.co").is_ok());
        assert!(normalize_email("o'brien@sub.example-1.org").is_ok());
    }

    #[test]
    fn rejects_malformed_addresses_with_the_reason() {
        assert_eq!(normalize_email(""), Err(EmailError::Empty));
        assert_eq!(normalize_email("plain"), Err(EmailError::NoSingleAt));
        assert_eq!(normalize_email("a@b@c.com"), Err(EmailError::NoSingleAt));
        assert_eq!(normalize_email(".a@b.com"), Err(EmailError::BadLocalPart));
        assert_eq!(normalize_email("a..b@b.com"), Err(EmailError::BadLocalPart));
        assert_eq!(normalize_email("a b@b.com"), Err(EmailError::BadLocalPart));
        assert_eq!(normalize_email("a@localhost"), Err(EmailError::BadDomain));
        assert_eq!(normalize_email("a@-x.com"), Err(EmailError::BadDomain));
        assert_eq!(normalize_email("a@x.c0m"), Err(EmailError::BadDomain));
        assert_eq!(normalize_email("a@x..com"), Err(EmailError::BadDomain));
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(normalize_email(&long), Err(EmailError::BadLocalPart));
        let too_long = format!("a@{}.com", "b".repeat(260));
        assert_eq!(normalize_email(&too_long), Err(EmailError::TooLong));
    }
}
