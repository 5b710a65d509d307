//! Email delivery: every due email of the outbox is composed and handed to
//! the transport, at least once. A permanent refusal (SMTP 5xx about the
//! message, or a message that cannot be composed) fails the email; anything
//! else retries with exponential backoff (capped, with a little jitter so a
//! backlog does not hit a recovering relay all at once) until the email is
//! older than `give_up_after`. A crash between the relay's acceptance and
//! the store's update sends that one message again (same Message-ID).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::compose::{compose_draft, ComposeError, Sender};
use super::transport::{MailTransport, SendError};
use super::{Draft, ToDraft};
use crate::config::SmtpConfig;
use crate::domain::now_millis;
use crate::links::LinkSigner;
use crate::store::{EmailOutcome, EmailRecord, Lease, SharedStore, StoreError};

/// Sends in flight at once; also the emails claimed per pass, so a pass
/// lasts about one send and its lease stays short.
const CONCURRENCY: usize = 4;
/// Longest sleep between two looks at the outbox when nothing woke us
/// (retries become due without a wake-up).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Sender identity and retry schedule.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub sender: Sender,
    /// Delay before the first retry; doubles with each attempt.
    pub retry_initial: Duration,
    /// Longest delay between two attempts.
    pub retry_max: Duration,
    /// A transient failure of an email older than this fails it for good.
    pub give_up_after: Duration,
    /// Makes the links and codes of a message as it is sent (they are
    /// not stored, see `secrets.rs`). Without it such a message fails.
    pub signer: Option<Arc<LinkSigner>>,
    /// How long the emails of a pass stay claimed by this node: a send's
    /// timeout twice (connect, then data) and a margin. After a crash they
    /// wait this long for another worker.
    pub lease: Duration,
    /// Who this node's claims name (`server.node_id`, or the random id
    /// the start-up drew): the same owner as the command workers.
    pub node_id: String,
}

impl DeliveryPolicy {
    pub fn from_config(cfg: &SmtpConfig, node_id: &str) -> Result<DeliveryPolicy, ComposeError> {
        Ok(DeliveryPolicy {
            sender: Sender::new(&cfg.from_address, &cfg.from_name)?,
            retry_initial: Duration::from_millis(cfg.retry_initial_ms),
            retry_max: Duration::from_secs(cfg.retry_max_secs),
            give_up_after: Duration::from_secs(cfg.give_up_after_secs),
            signer: None,
            lease: Duration::from_secs(cfg.timeout_secs.saturating_mul(2).saturating_add(10)),
            node_id: node_id.to_string(),
        })
    }

    /// Delay after the `attempts`-th failed attempt (1 = the first):
    /// `retry_initial * 2^(attempts-1)`, at most `retry_max`, plus up to 10%.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let base = self
            .retry_initial
            .saturating_mul(1u32 << exp)
            .min(self.retry_max);
        let jitter = base.mul_f64(rand::random::<f64>() * 0.1);
        base + jitter
    }
}

/// Runs the delivery loop until `shutdown` turns true. Sends in flight
/// then finish (bounded by `smtp.timeout_secs`); what is left stays in the
/// outbox for the next start.
pub fn spawn_mailer(
    store: SharedStore,
    transport: Arc<dyn MailTransport>,
    policy: DeliveryPolicy,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let policy = Arc::new(policy);
    tokio::spawn(async move {
        tracing::info!(
            transport = transport.name(),
            from = %policy.sender.mailbox(),
            "mailer started"
        );
        loop {
            if *shutdown.borrow() {
                break;
            }
            let attempted = match deliver_due(&store, &transport, &policy, &shutdown).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "email delivery pass failed");
                    0
                }
            };
            if attempted == 0 {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
        tracing::info!("mailer stopped");
    })
}

/// One pass over the due emails; returns how many were attempted.
pub async fn deliver_due(
    store: &SharedStore,
    transport: &Arc<dyn MailTransport>,
    policy: &Arc<DeliveryPolicy>,
    shutdown: &watch::Receiver<bool>,
) -> Result<usize, StoreError> {
    let now = now_millis();
    let lease = Lease {
        owner: policy.node_id.clone(),
        now,
        until: now.saturating_add(i64::try_from(policy.lease.as_millis()).unwrap_or(i64::MAX / 2)),
    };
    // One statement claims the pass; the lease ends when each settles.
    let due = store.claim_emails(&lease, CONCURRENCY).await?;
    let mut attempted = 0;
    let mut tasks = JoinSet::new();
    for email in due {
        if *shutdown.borrow() {
            break;
        }
        while tasks.len() >= CONCURRENCY {
            join_one(&mut tasks).await;
        }
        let (store, transport, policy) = (store.clone(), transport.clone(), policy.clone());
        tasks.spawn(async move { deliver_one(&store, transport.as_ref(), &policy, email).await });
        attempted += 1;
    }
    while !tasks.is_empty() {
        join_one(&mut tasks).await;
    }
    Ok(attempted)
}

async fn join_one(tasks: &mut JoinSet<Result<(), StoreError>>) {
    match tasks.join_next().await {
        Some(Ok(Ok(()))) | None => {}
        // The email stays pending and is sent again: at least once.
        Some(Ok(Err(e))) => tracing::warn!(error = %e, "cannot record email delivery"),
        Some(Err(e)) => tracing::error!(error = %e, "email delivery task panicked"),
    }
}

async fn deliver_one(
    store: &SharedStore,
    transport: &dyn MailTransport,
    policy: &DeliveryPolicy,
    email: EmailRecord,
) -> Result<(), StoreError> {
    let kind = email.message.kind.as_str();
    // Composed now, from the stored intent; the secrets made last.
    let composed = with_secrets(email.message.draft(), policy.signer.as_deref())
        .and_then(|draft| compose_draft(&policy.sender, &email, &draft));
    let outcome = match composed {
        Err(e) => EmailOutcome::Failed {
            error: e.to_string(),
        },
        Ok((message, message_id)) => match transport.send(email.id, &message).await {
            Ok(()) => EmailOutcome::Sent { message_id },
            Err(SendError::Permanent(error)) => EmailOutcome::Failed { error },
            Err(SendError::Transient(error)) => {
                let now = now_millis();
                let attempts = email.attempts + 1;
                let age = Duration::from_millis(u64::try_from(now - email.created_at).unwrap_or(0));
                if age >= policy.give_up_after {
                    EmailOutcome::Failed {
                        error: format!(
                            "gave up after {attempts} attempts in {}s: {error}",
                            age.as_secs()
                        ),
                    }
                } else {
                    let delay = policy.backoff(attempts);
                    EmailOutcome::Retry {
                        error,
                        retry_at: now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
                    }
                }
            }
        },
    };
    match &outcome {
        EmailOutcome::Sent { message_id } => {
            metrics::counter!("bwgate_email_sent_total", "kind" => kind).increment(1);
            tracing::info!(
                email_id = email.id,
                kind,
                recipients = email.message.to.len(),
                transport = transport.name(),
                message_id = %message_id,
                attempts = email.attempts + 1,
                "email sent"
            );
        }
        EmailOutcome::Retry { error, retry_at } => {
            metrics::counter!("bwgate_email_failures_total", "kind" => kind, "result" => "retry")
                .increment(1);
            tracing::warn!(
                email_id = email.id,
                kind,
                attempts = email.attempts + 1,
                retry_in_ms = retry_at - now_millis(),
                error = %error,
                "email not sent; will retry"
            );
        }
        EmailOutcome::Failed { error } => {
            metrics::counter!("bwgate_email_failures_total", "kind" => kind, "result" => "failed")
                .increment(1);
            tracing::error!(
                email_id = email.id,
                kind,
                attempts = email.attempts + 1,
                error = %error,
                "email failed for good"
            );
        }
    }
    store.complete_email(email.id, outcome, now_millis()).await
}

/// `draft` with its links and codes made (in memory only: the stored row
/// keeps the intent, which holds none).
fn with_secrets(draft: Draft, signer: Option<&LinkSigner>) -> Result<Draft, ComposeError> {
    if draft.secrets.is_empty() {
        return Ok(draft);
    }
    let signer = signer.ok_or(ComposeError::NoSigner)?;
    let fill = |text: &str| super::secrets::fill(text, &draft.secrets, signer);
    Ok(Draft {
        subject: fill(&draft.subject),
        text_body: fill(&draft.text_body),
        html_body: draft.html_body.as_deref().map(fill),
        secrets: Vec::new(),
    })
}
