//! Email: a durable outbox and its delivery (DESIGN.md, "Domain rules":
//! activation links, verification codes, consent-migration mails and org
//! attach approval notifications all go through here).
//!
//! * Flows build an [`EmailMessage`] holding an [`EmailIntent`] (what to
//!   send: the kind's parameters; plain data in `domain::email`) and hand it to [`Mailer::send`], which
//!   writes it to the store's email outbox (`Store::enqueue_email`) and wakes
//!   the delivery worker. Code that must send "if and only if" a state change
//!   commits writes the row in the same transaction instead (the SQLite
//!   helper `store::sqlite::email::enqueue_email` takes a `&Connection`) and
//!   then calls [`Mailer::wake`].
//! * The worker ([`spawn_mailer`], `worker.rs`) delivers every due message at
//!   least once: a permanent SMTP refusal (5xx) fails it, a transient one
//!   (4xx, connection or TLS trouble, timeouts) retries with capped
//!   exponential backoff until `smtp.give_up_after_secs`.
//! * The store keeps the intent and never composes: the worker composes
//!   subject and bodies when it sends ([`ToDraft::draft`], `intent/`), with a
//!   placeholder for each link token and code and how to make them
//!   (`secrets.rs`), then makes them with the server key. Nothing secret
//!   is stored.
//! * Messages are built with lettre's builder (`compose.rs`); a
//!   [`MailTransport`] (`transport.rs`) sends them: SMTP through a relay
//!   (`[smtp] host`), or, when no relay is configured, a spool of `.eml`
//!   files under `{data_dir}/mail/`.

pub mod admin;
mod compose;
pub mod intent;
pub mod secrets;
mod transport;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::store::{SharedStore, StoreError};

pub use crate::store::{EmailFilter, EmailOutcome, EmailRecord, EmailState};
pub use compose::{compose, ComposeError, Sender};
// The data types are domain's (the store writes and reads them); composing
// them is this module's (`intent`: `Draft`, `ToDraft`).
pub use crate::domain::email::{
    ApprovalIntent, CodeIntent, Contact, EmailIntent, EmailKind, EmailMessage, InvalidMessage,
    LinkIntent, MailSecret, PlainMessage,
};
pub use intent::{Draft, ToDraft};
pub use transport::{
    transport_from_config, MailTransport, SendError, SmtpTransport, SpoolTransport, TransportError,
    SPOOL_DIR,
};
pub use worker::{deliver_due, spawn_mailer, DeliveryPolicy};

/// The handle flows call: enqueue durably, then wake the delivery worker.
pub struct Mailer {
    store: SharedStore,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(store: SharedStore, wake: Arc<Notify>) -> Arc<Mailer> {
        Arc::new(Mailer { store, wake })
    }

    /// Writes `msg` to the email outbox and wakes the worker. Returns the
    /// email id once it is committed (so it will be delivered, even across a
    /// crash), or `None` when a message with the same `dedupe_key` was
    /// enqueued before (nothing is written). The message is not checked
    /// here: see [`EmailMessage::validate`].
    pub async fn send(&self, msg: EmailMessage) -> Result<Option<i64>, StoreError> {
        let id = self
            .store
            .enqueue_email(&msg, crate::domain::now_millis())
            .await?;
        if id.is_some() {
            self.wake.notify_one();
        }
        Ok(id)
    }

    /// Wakes the worker after messages were enqueued another way (in the
    /// same transaction as a state change).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The worker's wake-up, for `spawn_mailer`.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }
}
