-- 0013_provisioning_events: the durable log of provisioning events (the
-- Xsi-Events `Provisioning` package), appended by the use cases in the
-- same transaction as the change each reports, and the subscriptions to
-- it (they outlive channels and restarts; `acked_seq` is where delivery
-- resumes). Old events are pruned once every subscription is past them.
CREATE TABLE provisioning_events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    at   INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE event_subscriptions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    body       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    acked_seq  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
