//! Outbox delivery: commands go to the license core at least once, in order
//! per enterprise. Enterprises are delivered concurrently; within one, a
//! command waits for its predecessor. A retryable failure backs off
//! exponentially (capped) and holds that enterprise's later commands.
//!
//! Due commands are claimed with a lease (`Store::claim_commands`: this
//! node's id, until [`LEASE`] from now) in one statement per pass, so
//! several nodes can run this worker on one store: a claim takes an
//! enterprise's due commands in order and none of its later ones while
//! earlier ones are leased elsewhere. A node that dies leaves its leases to
//! expire; another worker then takes them (the core applies a command at
//! most once per idempotency key, so a late duplicate changes nothing).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::delivery::{self, Attempt, DeliveryOutcome};
use super::now_millis;
use crate::domain::lifecycle::SubscriberError;
use crate::license::{LicenseCore, LicenseError};
use crate::store::{Lease, OutboxEntry, SharedStore};

const BATCH: usize = 512;
const IDLE_POLL: Duration = Duration::from_millis(500);
/// After a wake-up or a pass that found work, the next pass waits this
/// long so commands accepted meanwhile are delivered as one run, not one
/// pass (two commits, two fsyncs) per acceptance commit under light load:
/// a 16-connection handshake load went from 5,980 to 4,100 commits for the
/// same work. Provisioning completes at most this much later.
const GATHER: Duration = Duration::from_millis(10);
const MAX_BACKOFF_MS: i64 = 60_000;
/// How long a claimed run stays this node's. A pass settles its run in
/// milliseconds (the core is in-process); after a crash the run waits this
/// long for another worker (or this node restarted under another id), so
/// it stays short (the crash test restarts and expects completion within
/// 30 s).
pub const LEASE: Duration = Duration::from_secs(10);

static NODE_ID: OnceLock<String> = OnceLock::new();

/// Sets this process's node id (`server.node_id`; `None`: random) before
/// the workers start. Returns the id in use (the first one set wins).
pub fn init_node_id(configured: Option<&str>) -> &'static str {
    NODE_ID.get_or_init(|| match configured {
        Some(id) => id.to_string(),
        None => format!("node-{}", uuid::Uuid::new_v4().simple()),
    })
}

/// The owner this process's workers claim work as.
pub fn node_id() -> &'static str {
    init_node_id(None)
}

pub fn spawn_delivery(
    store: SharedStore,
    core: Arc<dyn LicenseCore>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let delivered = match deliver_due(&store, &core).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox delivery pass failed");
                    0
                }
            };
            if delivered >= BATCH {
                continue; // a backlog: go on at once
            }
            if delivered == 0 {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(GATHER) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!("outbox delivery stopped");
    })
}

/// One pass over the due commands; returns how many were settled.
pub async fn deliver_due(
    store: &SharedStore,
    core: &Arc<dyn LicenseCore>,
) -> Result<usize, crate::store::StoreError> {
    let now = now_millis();
    let lease = Lease {
        owner: node_id().to_string(),
        now,
        until: now.saturating_add(LEASE.as_millis() as i64),
    };
    let due = store.claim_commands(&lease, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut by_enterprise: BTreeMap<String, Vec<OutboxEntry>> = BTreeMap::new();
    for entry in due {
        by_enterprise
            .entry(entry.envelope.enterprise_key.as_str().to_string())
            .or_default()
            .push(entry);
    }
    let mut tasks = JoinSet::new();
    for (_, entries) in by_enterprise {
        let store = store.clone();
        let core = core.clone();
        tasks.spawn(async move { deliver_in_order(&store, &core, entries).await });
    }
    let mut settled = 0;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(n)) => settled += n,
            Ok(Err(e)) => tracing::warn!(error = %e, "outbox delivery failed"),
            Err(e) => tracing::error!(error = %e, "outbox delivery task panicked"),
        }
    }
    Ok(settled)
}

/// Delivers one enterprise's due commands, in order: the core takes the
/// run at once (`apply_in_order`) and the outcomes are recorded in one
/// transaction, so a backlog costs two commits per pass, not two per
/// command. A retryable failure stops the run; the rest waits for it.
async fn deliver_in_order(
    store: &SharedStore,
    core: &Arc<dyn LicenseCore>,
    entries: Vec<OutboxEntry>,
) -> Result<usize, crate::store::StoreError> {
    let (meta, envelopes): (Vec<(i64, u32)>, Vec<_>) = entries
        .into_iter()
        .map(|e| ((e.seq, e.attempts), e.envelope))
        .unzip();
    let results = core.apply_in_order(&envelopes).await;
    let mut outcomes = Vec::with_capacity(results.len());
    let mut settled = 0;
    // The envelopes move into the attempts (the core is done with them).
    for ((&(seq, attempts), envelope), result) in meta.iter().zip(envelopes).zip(results) {
        let outcome = match result {
            Ok(granted) => DeliveryOutcome::Delivered {
                notice: granted.notice.map(|n| SubscriberError {
                    error_code: n.code.code(),
                    description: n.message().to_string(),
                }),
                device: granted.device,
            },
            Err(LicenseError::Rejected(refusal)) => DeliveryOutcome::Rejected {
                error_code: refusal.code.code(),
                description: refusal.message().to_string(),
            },
            Err(LicenseError::Unavailable(error)) => {
                let backoff = (250i64 << attempts.min(10)).min(MAX_BACKOFF_MS);
                DeliveryOutcome::Retry {
                    error,
                    retry_at: now_millis() + backoff,
                }
            }
        };
        let label = match &outcome {
            DeliveryOutcome::Delivered { .. } => "delivered",
            DeliveryOutcome::Rejected { .. } => "rejected",
            DeliveryOutcome::Retry { .. } => "retry",
        };
        metrics::counter!("bwgate_outbox_deliveries_total", "command" => envelope.command.kind(), "result" => label)
            .increment(1);
        let retry = matches!(outcome, DeliveryOutcome::Retry { .. });
        outcomes.push(Attempt {
            seq,
            command: envelope.command,
            outcome,
        });
        if retry {
            // Later commands of this enterprise wait for this one.
            break;
        }
        settled += 1;
    }
    let now = now_millis();
    let outcomes: Arc<[Attempt]> = outcomes.into();
    if let Err(e) = delivery::record(store.as_ref(), Arc::clone(&outcomes), now).await {
        // One outcome that cannot be recorded must not hold the others.
        tracing::warn!(error = %e, "recording a delivery run failed; recording one by one");
        for outcome in outcomes.iter() {
            delivery::record(store.as_ref(), Arc::new([outcome.clone()]), now).await?;
        }
    }
    Ok(settled)
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
