//! Leases on due commands, kept in memory. A SQLite database has one node
//! (one process writes it), so who holds which command need not be written
//! down: writing the lease into the outbox row cost the single writer two
//! index updates per command (about 4 µs per AddUser, `bench-store`), and
//! a node that restarts starts with no leases, which is what a lease
//! expiring would give anyway. (PostgreSQL, shared by several nodes, keeps
//! them in the rows.)
//!
//! Claims read on a reader connection, one at a time (the claim lock), and
//! record what they took here. A command's lease ends when its lease runs
//! out, when its node releases its leases, or when a unit of work that
//! settles it (delivered, failed, retry later) commits: the writer releases
//! those right after its commit, before it answers.

use std::collections::HashMap;
use std::sync::Mutex;

/// One held command.
#[derive(Debug, Clone)]
struct Held {
    owner: String,
    until: i64,
    enterprise_key: String,
}

#[derive(Debug, Default)]
pub(super) struct LeaseBook {
    commands: Mutex<HashMap<i64, Held>>,
    /// Claims take turns: each sees what the one before it took.
    pub(super) claim: tokio::sync::Mutex<()>,
}

impl LeaseBook {
    /// The leases still running at `now`, as the due query reads them: a
    /// JSON array of `[enterprise_key, seq]` (an enterprise whose command
    /// is held gives nothing from that command on).
    pub(super) fn running_json(&self, now: i64) -> String {
        let held = self.lock();
        let running: Vec<(&str, i64)> = held
            .iter()
            .filter(|(_, h)| h.until > now)
            .map(|(seq, h)| (h.enterprise_key.as_str(), *seq))
            .collect();
        serde_json::to_string(&running).unwrap_or_else(|_| "[]".into())
    }

    /// Records that `owner` holds `taken` (seq, enterprise) until `until`,
    /// and forgets leases that ran out.
    pub(super) fn hold(&self, owner: &str, now: i64, until: i64, taken: &[(i64, String)]) {
        let mut held = self.lock();
        held.retain(|_, h| h.until > now);
        for (seq, enterprise_key) in taken {
            held.insert(
                *seq,
                Held {
                    owner: owner.to_string(),
                    until,
                    enterprise_key: enterprise_key.clone(),
                },
            );
        }
    }

    /// Ends the leases of settled commands (after their commit).
    pub(super) fn settled(&self, seqs: &[i64]) {
        if seqs.is_empty() {
            return;
        }
        let mut held = self.lock();
        for seq in seqs {
            held.remove(seq);
        }
    }

    /// Ends every lease `owner` holds; returns how many.
    pub(super) fn release_owner(&self, owner: &str) -> usize {
        let mut held = self.lock();
        let before = held.len();
        held.retain(|_, h| h.owner != owner);
        before - held.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Held>> {
        // A panic while holding this lock cannot leave the map half
        // changed (each change is one map operation): use it as it is.
        self.commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
