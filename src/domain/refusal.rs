//! The one value every layer returns when it refuses something: a code
//! from the error table plus, optionally, what exactly was wrong (which
//! parameter, which limit) and when to retry. Faces never invent their
//! own (code, message) pairs; `http::transport::render` turns a refusal
//! into each wire format, with the table's HTTP status.

use super::error_code::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({:?}): {}", .code.code(), .code, self.message())]
pub struct Refusal {
    pub code: ErrorCode,
    /// What exactly is wrong, in one line; `None` when the table's
    /// summary says it all.
    pub detail: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal with its one-line reason.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Refusal {
            code,
            detail: Some(detail.into()),
            retry_after: None,
        }
    }

    /// A refusal the table's summary describes on its own.
    pub fn bare(code: ErrorCode) -> Self {
        Refusal {
            code,
            detail: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The reason alone: the detail, or the table's summary without one.
    /// Per-operation lines and portal messages show this.
    pub fn message(&self) -> &str {
        self.detail.as_deref().unwrap_or(self.code.info().summary)
    }

    /// The table's summary followed by the detail: whole-request error
    /// bodies (ErrorInfo, JSON) show this.
    pub fn summary(&self) -> String {
        let base = self.code.info().summary;
        match &self.detail {
            Some(d) => format!("{base} {d}"),
            None => base.to_string(),
        }
    }

    pub const fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

impl From<ErrorCode> for Refusal {
    fn from(code: ErrorCode) -> Self {
        Refusal::bare(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_the_detail_or_the_table_summary() {
        let with = Refusal::new(ErrorCode::InvalidEmail, "no @ in it");
        assert_eq!(with.message(), "no @ in it");
        assert_eq!(with.summary(), "Invalid email address. no @ in it");
        let without = Refusal::bare(ErrorCode::InvalidEmail);
        assert_eq!(without.message(), "Invalid email address.");
        assert_eq!(without.summary(), "Invalid email address.");
    }

    #[test]
    fn status_and_display_come_from_the_table() {
        let r = Refusal::new(ErrorCode::RateLimited, "slow down").retry_after(2);
        assert_eq!(r.http_status(), 429);
        assert_eq!(r.retry_after, Some(2));
        assert_eq!(r.to_string(), "9009 (RateLimited): slow down");
    }
}
