//! Writing a use case's commands to the outbox: one envelope per command,
//! idempotency keys `{trackingId}:{scope}:{n}` numbered in the order the
//! use case emits them (the license core applies each key once).

use crate::commands::{Command, CommandEnvelope, COMMAND_VERSION};
use crate::domain::ids::EnterpriseKey;
use crate::store::tx::Tx;
use crate::store::StoreError;

pub(crate) struct Emitter<'a> {
    tx: &'a dyn Tx,
    tracking_id: &'a str,
    /// The middle of the key: an operation's index in its document, or the
    /// use case (`activation`, `partner`, `detach`).
    scope: String,
    now: i64,
    /// Commands written so far (the `n` of the next key).
    pub(crate) written: usize,
    /// Their types, in order (reports name them).
    pub(crate) kinds: Vec<&'static str>,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(
        tx: &'a dyn Tx,
        tracking_id: &'a str,
        scope: impl ToString,
        now: i64,
    ) -> Emitter<'a> {
        Emitter {
            tx,
            tracking_id,
            scope: scope.to_string(),
            now,
            written: 0,
            kinds: Vec::new(),
        }
    }

    /// The unit of work the commands go to (events go there too).
    pub(crate) fn tx(&self) -> &'a dyn Tx {
        self.tx
    }

    /// The use case's clock.
    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    /// Writes `command` about enterprise `key` as the next command.
    pub(crate) fn emit(&mut self, key: &EnterpriseKey, command: Command) -> Result<(), StoreError> {
        let envelope = CommandEnvelope {
            version: COMMAND_VERSION,
            idempotency_key: format!("{}:{}:{}", self.tracking_id, self.scope, self.written),
            enterprise_key: key.clone(),
            tracking_id: self.tracking_id.to_string(),
            issued_at: self.now,
            command,
        };
        self.tx.insert_command(&envelope)?;
        self.kinds.push(envelope.command.kind());
        self.written += 1;
        Ok(())
    }
}
