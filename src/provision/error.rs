//! What a face learns when the data layer fails under a use case or a
//! query: whether a retry may help, and whether its input named a row
//! that does not exist. The cause stays inside (`Display`, for the log and
//! for operators); `http::transport::render` maps this to the wire, the
//! one place that does.

use crate::store::StoreError;

/// The data layer failed under a use case or a query.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DataError(#[from] StoreError);

impl DataError {
    /// Retrying the same request later may succeed (busy or closing store).
    pub fn is_retryable(&self) -> bool {
        self.0.is_retryable()
    }

    /// The input named a row that does not exist (an organization import
    /// naming an unknown partner, say): the caller's mistake, not an outage.
    pub fn is_missing_reference(&self) -> bool {
        matches!(self.0, StoreError::MissingReference { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_faces_act_on() {
        let busy = DataError::from(StoreError::Database("locked".into()));
        assert!(busy.is_retryable() && !busy.is_missing_reference());
        assert_eq!(busy.to_string(), "database error: locked");
        let closed = DataError::from(StoreError::Closed);
        assert!(closed.is_retryable());
        let ghost = DataError::from(StoreError::MissingReference {
            entity: "partner",
            id: "ghost".into(),
        });
        assert!(ghost.is_missing_reference() && !ghost.is_retryable());
        let corrupt = DataError::from(StoreError::Corrupt("bad row".into()));
        assert!(!corrupt.is_retryable() && !corrupt.is_missing_reference());
    }
}
